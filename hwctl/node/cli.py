"""``hwctl node --config node.toml``: arguments, the run, status lines and the live view."""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import asdict
from pathlib import Path

from hwctl import argtypes, timebase
from hwctl.errors import LinkError, UserError
from hwctl.journal import RequestJournal
from hwctl.live import web_addr
from hwctl.node.config import NodeConfig
from hwctl.node.results import (
    requests_schema,
    write_results,
)
from hwctl.node.service import NodeService


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True,
                        help="node TOML file; examples/node.toml in the repository shows and "
                             "explains every key (docs/node.md)")
    parser.add_argument("--duration", type=argtypes.duration(), default=None,
                        help="seconds to run; overrides the config's duration (default: the config's, else until "
                             "Ctrl-C / SIGTERM)")
    parser.add_argument("--device-wait", type=argtypes.real(0.0, 3600.0, what="--device-wait"),
                        default=None, metavar="S",
                        help="wait up to S seconds at start for the device to answer (a twin or "
                             "bridge started after the node); overrides the config's "
                             "device_wait_s (default 60; 0: one try)")
    parser.add_argument("--out", type=argtypes.out_dir, default=None, metavar="DIR",
                        help="write the results to DIR/NAME.parquet (requests) and, with "
                             "[verification], DIR/NAME.pairs.parquet, run metadata inside "
                             "(docs/data.md); overrides the config's out; default: the config's "
                             "out, else nothing is written")
    parser.add_argument("--report-every", type=argtypes.real(0.0, 3600.0, lo_open=True,
                                                             what="--report-every"), default=2.0,
                        help="seconds between status lines on stderr (default 2)")
    parser.add_argument("--web", metavar="[HOST:]PORT", nargs="?", const="127.0.0.1:8765",
                        default=None, type=web_addr,
                        help="serve a live view of this node (ESP state, requests, heralds, "
                             "latency, verified pairs, link health) at http://HOST:PORT/; "
                             "--web alone: 127.0.0.1:8765 (loopback; a free port if taken)")
    parser.add_argument("--json", action="store_true",
                        help="at the end, print the node's counters as one JSON document on stdout")
    parser.add_argument("--record", metavar="FILE", default=None,
                        type=argtypes.out_path("--record"),
                        help="record the session to FILE (device events and answers, peer "
                             "messages, clock readings; written as it happens) for `hwctl replay "
                             "FILE` (docs/twin.md, \"Record and replay\")")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier --record FILE (default: refuse, exit 2; --out "
                             "never replaces: a later run's results get the run id in their name)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    cfg = NodeConfig.load(args.config)
    if args.duration is not None:
        cfg.duration = args.duration
    if args.out:
        cfg.out = str(args.out)  # (as from the config: the recording's header is JSON)
    if args.device_wait is not None:
        cfg.device_wait_s = args.device_wait
    if args.record:
        argtypes.refuse_existing([Path(args.record)], "--record", force=args.force)
    console = Console(stderr=True)

    writer = None
    if cfg.out:
        from hwctl import schema
        from hwctl.results import ResultsWriter

        writer = ResultsWriter(Path(cfg.out), cfg.name, requests_schema(),
                               schema.run_metadata("node", asdict(cfg), seed=cfg.seed)
                               | {"schema": "hwctl.requests"})

    async def main() -> NodeService:
        node = NodeService(cfg)
        node.results = writer
        if cfg.out:  # the request journal: a restarted node resumes or expires its requests
            node.journal = RequestJournal(Path(cfg.out) / f"{cfg.name}.journal.jsonl")
        recorder = None
        if args.record:  # taps the backend, sockets, clock and waits (hwctl.record)
            from hwctl.record import Recorder

            recorder = Recorder(args.record, node)
            try:
                await recorder.start()
            except BaseException:  # the node never ran (no device, a port in use...): nothing
                recorder.abandon()  # to replay, and no empty file left to refuse the next try
                Path(args.record).unlink(missing_ok=True)
                raise
        else:
            await node.start()
        loop = asyncio.get_running_loop()
        t_run = loop.time()

        def on_signal(sig: signal.Signals) -> None:
            stopped.setdefault("by", sig.name)
            stopped.setdefault("at_s", loop.time() - t_run)
            node.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):  # stop cleanly: results are still written
            loop.add_signal_handler(sig, on_signal, sig)
        console.print(start_line(node), soft_wrap=True, highlight=False, markup=False)
        if writer is not None:  # (said once the node runs: a start that fails leaves nothing)
            console.print(f"results of run {writer.run_id}: {writer.partial_path} (flushed "
                          f"each second), final Parquet when the node stops", soft_wrap=True)
        reporter = asyncio.create_task(_report(node, console, args.report_every))
        web = await _start_web(node, args.web) if args.web else None
        if web is not None:
            console.print(web.announce(), soft_wrap=True, highlight=False, markup=False)
        try:
            await node.run()
        except BaseException:
            if recorder is not None:
                recorder.abandon()  # no end record: the replay says where it stops
            raise
        finally:
            reporter.cancel()
            if web is not None:
                await web.close()
        if recorder is not None:
            recorder.close()
            console.print(f"recording: {recorder.path} ({recorder.entries} entries)",
                          soft_wrap=True)
        return node

    stopped: dict = {}  # the signal that stopped the running node, and when (on_signal)

    def terminated(signum, frame) -> None:  # noqa: ANN001
        raise KeyboardInterrupt  # (the running node replaces this with node.stop, below)

    # SIGTERM before the node runs (waiting for its device, connecting): as Ctrl-C there, not
    # the default action, which left an empty partial results file for every try and no word
    old_term = signal.signal(signal.SIGTERM, terminated)
    try:
        try:
            node = asyncio.run(main())
        finally:  # (the process's own handler again: a test's, or the default)
            signal.signal(signal.SIGTERM, old_term)
    except BaseException as exc:
        if writer is not None:  # what was flushed stays readable (hwctl.results.read_partial)
            writer.abandon()
            if writer.rows_written:
                console.print(f"results so far: {writer.partial_path}", soft_wrap=True)
            else:  # nothing ran (no device, a port in use...): no empty file left behind
                writer.partial_path.unlink(missing_ok=True)
        if isinstance(exc, LinkError):
            raise UserError(f"link failed: {exc}") from None
        raise
    # stopped by a signal before its duration: said at the end and in the results (a run with
    # no duration ends by a signal: that is its end, not an early one)
    early = bool(stopped) and cfg.duration is not None and stopped["at_s"] < cfg.duration
    if args.json:
        from hwctl.output import print_json

        print_json(node.snapshot() | {"stopped_early": early})
    else:  # the figures a user reads; every counter is in the results' metadata and --json
        how = (f"stopped early by {stopped['by']} at {stopped['at_s']:.1f} s of --duration "
               f"{cfg.duration:g} s" if early else "")
        console.print(final_summary(node, how), soft_wrap=True, highlight=False, markup=False)
    if writer is not None:
        end = {"summary": node.snapshot(), "instruments": node.bench_snapshot,
               "stopped_early": early, "stopped_by": stopped.get("by")}
        path = writer.close(final_rows=node.unwritten_rows(), metadata=end)
        if node.vcore is not None:
            write_results([], {"parameters": asdict(cfg), "seed": cfg.seed,
                               "run_id": writer.run_id, "requests_file": path.name, **end},
                          Path(cfg.out), path.name.removesuffix(".parquet"),
                          pairs=node.pair_rows(), requests=False)
        console.print(f"results: {path}", soft_wrap=True)
    return 0


def start_line(node) -> str:
    """The node's first line: where it listens, its device, its peers and how it reaches them
    (every node of a network must use the same peer transport and [security], docs/node.md)."""
    cfg = node.cfg
    how = ("ZeroMQ with CurveZMQ keys" if cfg.key is not None
           else "plain TCP/Unix streams (no keys)" if node.peer_transport == "stream"
           else "ZeroMQ (no keys)")
    return (f"node {cfg.name} on {cfg.listen}, backend {cfg.backend}, peers "
            f"{', '.join(p.name for p in cfg.peers)} over {how}, device clock {node.clock_sync}")


async def _start_web(node: NodeService, addr: str):
    """The live view of this node (hwctl.live) on ``addr``, served from the node's loop."""
    import time

    from hwctl.live import LiveServer, snapshot

    t0 = time.monotonic()
    server = LiveServer(lambda: snapshot([node], title=f"hwctl node {node.cfg.name}", t0=t0,
                                         duration=node.cfg.duration), addr)
    await server.start()
    return server


def final_summary(node, stopped: str = "") -> str:
    """The node's end-of-run line: requests, latency, pairs, the checks that must stay 0, link
    health (not the whole nested counter dict: ``--json`` prints that); ``stopped`` says how a
    run stopped before its duration."""
    import statistics

    c = node.counters
    lat = [r.latency for r in node.records.values() if r.latency is not None]
    mean = f"mean latency {1e3 * statistics.fmean(lat):.1f} ms" if lat else "no latency yet"
    text = (f"node {node.cfg.name}: {c.completed} of {c.requests} requests completed, {mean}, "
            f"{c.heralds} pairs recorded; {c.disagree} PL disagreements, {c.one_sided} one-sided "
            f"pairs (goal 0 for both), {c.late} LATE, {c.device_errors} device errors")
    v = node.verification_summary()
    if v is not None:
        text += f"; {v['verified']} verified pairs with {v['partner']} of {v['headers']} headers"
    link = _link_words(node)
    if link:
        text += f"; {link}"
    never = [f"{p.name} at {p.endpoint}" for p in node.cfg.peers
             if node.liveness.inc[p.name] is None]
    if never:  # why there were no requests: the peer never came (or speaks another transport)
        text += (f"; never heard from {', '.join(never)} (not started, a wrong endpoint, or "
                 "another peer_transport / [security])")
    if stopped:
        text += f"; {stopped}"
    return text + " (every counter: --json)"


def _link_words(node) -> str:
    """``link N commands, N events, N retries, N lost or bad`` of the node's current device link
    ("" before it opened)."""
    st = node.backend.stats if node.backend is not None else None
    if st is None:
        return ""
    return (f"link {st.commands} commands, {st.events} events, {st.retries} retries, "
            f"{st.events_lost + st.rx_frame_errors} lost or bad")


async def _report(node: NodeService, console, every: float = 2.0) -> None:
    """One status line per ``every`` seconds: ``NAME: done/requests requests, ...``. Printed
    plain (no markup, no highlighting): it runs on the node's event loop, and rich's regex
    highlighter took 0.5 ms (p50) to 2 ms (mean) per line on the loaded 2-core machine, a stall of
    every request step waiting behind it."""
    while True:
        await asyncio.sleep(every)
        c = node.counters
        # the core's metrics as they are: verification_summary() first settles the core (ingests
        # staged HEADERs, carries out frees and reports), an act of the node, not of a display
        m = node.vcore.metrics if node.vcore is not None else None
        vtxt = "" if m is None else (
            f", {m.verified} verified pairs with {node.partner} of {m.headers} headers, "
            "discards " + ", ".join(f"{k.name.lower()} {n}" for k, n in m.discards.items()))
        live = node.liveness  # a peer never heard (not started, wrong endpoint): say so
        quiet = [f"{p.name} at {p.endpoint}" for p in node.cfg.peers if live.inc[p.name] is None]
        wait = f" (no word yet from {', '.join(quiet)})" if quiet else ""
        # a peer heard once, then declared dead (stopped, crashed, unreachable): say so, or the
        # line goes on with "state SYN_SENT" and no reason
        now = timebase.seconds()  # node time, not node.now(): a recorded session's replay must
        # see only the node's own clock readings, not the status line's (hwctl.record)
        gone = [f"{p.name} at {p.endpoint} silent for {now - live.last[p.name]:.0f} s"
                for p in node.cfg.peers
                if live.inc[p.name] is not None and not live.alive[p.name]]
        if gone:
            wait += f" (peer gone: {', '.join(gone)})"
        rec = node.recovery
        if not rec.up.is_set():  # between 'device lost' and 'device back': say it on every line
            wait += f" (device lost: reconnecting; {rec.counters.last_reason})"
        link = _link_words(node)
        console.print(f"{node.cfg.name}: {c.completed}/{c.requests} requests{wait}, {c.heralds} heralds, "
                      f"{c.disagree} PL disagreements, {c.one_sided} one-sided pairs (goal 0 "
                      f"for both){vtxt}, state "
                      f"{node.core.state.value}, {c.late} LATE" + (f"; {link}" if link else ""),
                      soft_wrap=True, highlight=False, markup=False)  # plain: rich's highlighter
                      # took 0.5-2 ms

