"""``hwctl demo``: a small quantum network on software twins, through the real transports.

One command, no hardware. The demo starts a lab twin of the topology (default: the ESP paper's
2x2 grid; :class:`hwctl.sim.twin.lab.LabServer`): a node device per node, each on its own
pseudo-terminal (a real serial link: pyserial, COBS frames, CRCs, retries), and a heralding
station per edge, all on one device clock (the shared reference, :mod:`hwctl.timebase`). A node
service per node runs the ESP core; node services talk to each other over ZeroMQ on loopback. The ESP paper's workload (§VI-B: one request at a time per edge,
1-6 pairs, exponential back-off) runs for ``--duration`` seconds in real time with live progress;
then the demo writes

- ``requests.parquet``  one row per request in the shared schema (docs/data.md: times in s,
  herald cycles as integers) with the metadata inside (parameters, seed, code version, twin
  settings, link health, per-node counters),
- ``requests.pairs.parquet`` the verified pairs, same metadata,
- ``demo.png``          request latency distribution and completions over time,

and prints a summary. The stations' per-attempt success probability comes from
:mod:`hwctl.physics.heralding` for the requested fidelity (p = 2(1-F)*eta, eta calibrated on K2),
scaled by each node's simulated bench (``--bench``, :mod:`hwctl.physics.bench`): the VOA on each
end's arm and the SNSPD bias of the station's detectors. Every node service opens its bench,
applies the settings and stores the snapshot, which the metadata holds (``instruments``, per
node; ``bench``: the bench file and each station's physics).
Per request each end sends one SCHEDULE_PAIRS; the station heralds to both ends
(docs/physical-layer.md). With the pty transport (default) or unix the lab and every node service
run in processes of their own (:mod:`hwctl.sim.twin.labproc`, :mod:`hwctl.node.proc`), as in a
lab: one interpreter lock shared by four services and the lab was most of the demo's overhead over
the simulator; the lab serves each node device on a pseudo-terminal, opened as a serial port
(``serial://``, the code path of a bench's UART), or, with ``--transport unix``, on a Unix stream
socket (``unix://``, the same bytes and pacing without the pty's kernel worker, which makes
every command and DONE wait for a CPU on a busy machine: benchmarks/RESULTS.md, twelfth
session); ``--transport inproc`` keeps everything in this process (docs/node.md).

Pair verification (pair-verification paper §II-C2) runs next to ESP: the nodes are paired along a
matching of the topology's edges (2x2: A-B and C-D), each pair gets one midpoint source
(:class:`hwctl.sim.twin.header.HeaderSource`, ``--header-rate`` pairs/s) whose two arms feed the two
twins: same sequence numbers at the same instants (all twins share one time origin), independent
losses per arm from the loss budget of half the edge's fibre (:mod:`hwctl.physics.loss`). The node
services verify pairs against ``--memory`` / ``--f-th``; verified pairs go to ``pairs.parquet``.

Above ``LEGACY_HEADER_RATE`` the devices run in block mode (wire v4, docs/header-path.md): the
arrivals of every pulse in ``HDR_BLOCK`` events and a slot ring, so the paper's 1.3 MHz source fits
the 3 Mbaud link (``hwctl demo --topology K2 --header-rate 1300000 --arm-km 10``); a rate whose
blocks would need more than ``MAX_LINE_SHARE`` of the line is refused with one line.

Ctrl-C (SIGINT) or SIGTERM ends the run early the way ``--duration`` does: the node services stop,
the results so far are written (the metadata says ``stopped_early``) and the summary covers the
time that ran; a second Ctrl-C interrupts without writing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path

from hwctl import argtypes
from hwctl.errors import UserError
from hwctl.live import web_addr

TRANSPORTS = ("pty", "unix", "inproc")
#: HEADER mode (one event per stored photon) up to this source rate, block mode above
LEGACY_HEADER_RATE = 5000.0
#: the lab's twins more than this behind real time (s) make the demo warn (hwctl.sim.twin.lab
#: LabServer.lag_max_s; benchmarks/bench_hdr_block.py has the same goal for its twin lag)
LAB_LAG_WARN_S = 0.05
#: block mode: the most of the device -> host line the header blocks may take (the rest: PAIR,
#: DONE and command responses)
MAX_LINE_SHARE = 0.9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=argtypes.duration(what="--duration"), default=20.0,
                        help="seconds of ESP traffic (default 20; Ctrl-C ends the run early and "
                             "still writes the results)")
    parser.add_argument("--min-completed", type=int, default=0, metavar="N",
                        help="after --duration, go on until every node has completed at least N "
                             "of its own requests (a slow or loaded machine; at most --max-extend "
                             "more, then stop with a warning; default 0)")
    parser.add_argument("--min-verified", type=int, default=0, metavar="N",
                        help="after --duration, go on until every node that verifies pairs has "
                             "verified at least N (same bound and warning as --min-completed; "
                             "default 0)")
    parser.add_argument("--max-extend", type=float, default=None, metavar="S",
                        help="the most --min-completed / --min-verified extend the run, in seconds: "
                             "a bound for a hang, not a budget (default 10x --duration)")
    parser.add_argument("--topology", default="2x2", help="NxM, Kn, Km,n, Fn, Wn, Cn, at most 32 nodes (default 2x2)")
    parser.add_argument("--edges", default=None, help="explicit edges, e.g. A-B,B-C (overrides --topology)")
    parser.add_argument("--fidelity", type=float, default=0.75, help="requested fidelity (default 0.75)")
    parser.add_argument("--transport", choices=TRANSPORTS, default="pty",
                        help="node <-> device link: pty (serial ports on pseudo-terminals, as "
                             "a bench's UART; default), unix (the lab's devices on Unix stream "
                             "sockets) or inproc (everything in this process)")
    parser.add_argument("--mean-backoff", default=0.05,
                        type=argtypes.real(0.0, 3600.0, lo_open=True, what="--mean-backoff"),
                        help="mean back-off between requests on an edge, s (default 0.05, ESP Table IV)")
    parser.add_argument("--memory", default="nv",
                        help="memory for pair verification, a Table I short name (default nv)")
    parser.add_argument("--f-th", type=float, default=0.81,
                        help="verification fidelity threshold F_th (default 0.81, QKD)")
    parser.add_argument("--header-rate", type=float, default=250.0,
                        help="midpoint source pairs/s per verification pair (default 250; 0 = no "
                             f"verification; above {LEGACY_HEADER_RATE:.0f} the devices use block "
                             "mode: HDR_BLOCK events, up to the paper's 1.3e6 at 10 km arms)")
    parser.add_argument("--arm-km", type=float, default=None,
                        help="fibre of each source arm, km (default: half the edge; with 4+4 dB "
                             "node losses and 0.2 dB/km, 10 km gives p = 0.1 per arm)")
    parser.add_argument("--hold", type=float, default=0.0,
                        help="block mode: the application holds verified pairs this long, s "
                             "(their slots pinned meanwhile; default 0: consumed at verification)")
    parser.add_argument("--lead", type=argtypes.real(0.0, 1.0, lo_open=True, what="--lead"),
                        default=0.0005, help="least margin (s) between now and the attempt-grid "
                        "point an end joins; above it the margin follows the measured command "
                        "round trips (hwctl.pljoin; default 0.0005)")
    parser.add_argument("--seed", type=argtypes.seed, default=1, help="random seed (>= 0; default 1)")
    parser.add_argument("--bench", default=None, metavar="FILE",
                        help="bench template of every node (node n: {n} in its resource strings, "
                             "simulated bench n); its VOAs and SNSPD bias set the stations' physics "
                             "(default: hwctl's demo bench, 0 dB; 'none': no bench, calibrated eta)")
    parser.add_argument("--out", default=None, type=argtypes.out_dir, help="output directory: requests.parquet and requests.pairs.parquet "
                             "(shared schema, run metadata inside; docs/data.md) and demo.png "
                             "(default ./hwctl-demo; when that holds an earlier run's results, "
                             "the next free ./hwctl-demo-N, named on stderr)")
    parser.add_argument("--force", action="store_true", help=argtypes.FORCE_HELP)
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--web", metavar="[HOST:]PORT", type=web_addr, default="127.0.0.1:8765",
                        help="serve the live view (network graph, per-node ESP state, latency, "
                             "heralds, verified pairs, link health) at http://HOST:PORT/; "
                             "default 127.0.0.1:8765 (loopback; a free port if that one is taken)")
    parser.add_argument("--no-web", action="store_true", help="no live view in the browser")
    parser.add_argument("--json", action="store_true",
                        help="print the summary figures as one JSON document on stdout")
    parser.add_argument("--record", metavar="DIR", default=None,
                        type=argtypes.out_path("--record", directory=True),
                        help="record each node's session to DIR/NAME.rec for `hwctl replay` "
                             "(docs/twin.md, \"Record and replay\")")




def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DEFAULT_OUT = "hwctl-demo"
#: a running demo's claim on its output directory (its pid): another demo does not write there
CLAIM = ".hwctl-demo.pid"


def claimed_by(d: Path) -> int | None:
    """The pid of a running demo that claimed ``d`` (None: no claim, or its process is gone)."""
    try:
        pid = int((Path(d) / CLAIM).read_text().strip())
        os.kill(pid, 0)
    except PermissionError:  # another user's process: it runs
        return pid
    except (OSError, ValueError):  # no file, not a pid, no such process
        return None
    return pid


def claim(d: Path) -> Path | None:
    """Claim ``d`` for this run (created if needed): the claim file, or None when a running
    demo holds it. A claim whose process is gone is taken over."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    f = d / CLAIM
    for _ in range(2):
        try:
            fd = os.open(f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if claimed_by(d) is not None:
                return None
            f.unlink(missing_ok=True)  # stale: its demo ended without removing it
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        return f
    return None


def default_out_dir(results_in: Callable[[Path], list[Path]], *, force: bool) -> Path:
    """The demo's output directory when ``--out`` is not given: ``./hwctl-demo``, or, when that
    holds an earlier run's results (and not ``--force``) or a running demo's claim, the first
    ``./hwctl-demo-N`` (N = 2, 3, ...) that holds neither, named on stderr. Running the README's
    demo command twice, one after the other or at once, keeps both runs and needs no flag (an
    explicit ``--out`` with results in it is refused instead)."""
    base = Path(DEFAULT_OUT)
    d, n = base, 2
    while (not force and any(p.exists() for p in results_in(d))) or claimed_by(d) is not None:
        d, n = Path(f"{DEFAULT_OUT}-{n}"), n + 1
    if d != base:
        busy = claimed_by(base) is not None
        why = (": another hwctl demo is writing there" if busy
               else " holds an earlier run's results")
        print(f"hwctl demo: ./{base}{why}; this run writes ./{d} (--out DIR chooses the "
              f"directory{'' if busy else f', --force replaces ./{base}'})", file=sys.stderr)
    return argtypes.check_out_path(d, "--out", directory=True)


def run(args: argparse.Namespace) -> int:
    from hwctl.sim import topologies

    if args.duration <= 0:
        raise UserError("--duration must be > 0")
    if not 0 <= args.min_completed <= 1_000_000:
        raise UserError("--min-completed must be in [0, 1000000]")
    if not 0 <= args.min_verified <= 1_000_000:
        raise UserError("--min-verified must be in [0, 1000000]")
    if args.max_extend is not None and not 0 <= args.max_extend <= 86_400:
        raise UserError("--max-extend must be in [0, 86400] s")
    if not 0.5 <= args.fidelity < 1.0:
        raise UserError("--fidelity must be in [0.5, 1)")
    if not 0.5 < args.f_th < 1.0:
        raise UserError("--f-th must be in (0.5, 1)")
    check_header_rate(args)
    from hwctl.physics.memory import memory_by_short

    try:
        memory_by_short(args.memory)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    g = topologies.from_edges(args.edges) if args.edges else topologies.by_name(args.topology)
    if g.number_of_nodes() > MAX_NODES:  # a node service (and process) per node, a device each
        raise UserError(f"{args.edges or args.topology!r} has {g.number_of_nodes()} nodes: the "
                        f"demo runs a node service per node, at most {MAX_NODES}; larger networks "
                        f"in `hwctl sim --topology ...`")
    bench_configs(args, sorted(g.nodes))  # a bad --bench is said before the output is chosen

    def results_in(d: Path) -> list[Path]:
        return [d / "requests.parquet", d / "requests.pairs.parquet",
                *([] if args.no_plot else [d / "demo.png"])]

    if args.record:
        argtypes.refuse_existing([Path(args.record) / f"{n}.rec" for n in g.nodes], "--record",
                                 force=args.force)
    # the output directory is claimed while the demo runs: two demos at once in one directory
    # both chose ./hwctl-demo, and the last to end replaced the other's results
    default = args.out is None
    while True:
        if default:  # the default never replaces an earlier run (nor asks for --force)
            args.out = default_out_dir(results_in, force=args.force)
        out = Path(args.out)
        argtypes.refuse_existing(results_in(out), "--out", force=args.force)
        made = not out.exists()
        held = claim(out)
        if held is not None or not default:
            break  # (default: another demo claimed it since it was chosen; choose again)
    if held is None:
        raise UserError(f"--out {str(out)!r}: another hwctl demo (pid {claimed_by(out)}) is "
                        f"writing its results there; choose another --out (no such demo "
                        f"running? remove {out / CLAIM})")
    try:
        return _run(g, args)
    finally:
        held.unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):  # a run that failed before writing anything
                out.rmdir()


def _run(g, args: argparse.Namespace) -> int:  # noqa: ANN001
    """The demo's run and summary, once its output directory is claimed."""
    from rich.console import Console

    # soft_wrap: a summary line is one line, also redirected to a file or a pipe (rich wrapped it
    # at 80 columns there, mid-figure); a terminal wraps long lines itself
    console = Console(soft_wrap=True)
    with stop_on_first_signal() as stop:
        args._stop = stop
        result = asyncio.run(run_demo(g, args, console))
    if args.json:
        from hwctl.output import print_json

        print_json(figures(result))
        return 0
    summarize(result, console)
    return 0


@contextlib.contextmanager
def stop_on_first_signal() -> Iterator[threading.Event]:
    """An event set by the first SIGINT or SIGTERM while the block runs: the demo then ends its run
    early and still writes its results. A second SIGINT raises KeyboardInterrupt (a stop that
    hangs can still be interrupted). Outside the main thread: an event nothing sets."""
    ev = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield ev
        return

    def handler(signum: int, frame: object) -> None:
        if ev.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        ev.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield ev
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def figures(result: dict) -> dict:
    """The demo's summary figures (what :func:`summarize` prints) with proper types."""
    rows = result["rows"]
    done = [r for r in rows if r["latency"] is not None]
    lat = sorted(r["latency"] for r in done)
    hs = sorted(r["t_ack"] - r["t_syn"] for r in done
                if r["t_ack"] is not None and r["t_syn"] is not None)
    nodes = result["meta"]["nodes"]
    links = [n["link"] for n in nodes.values()]
    pairs = sum(r["pairs"] for r in done)

    def pct(xs: list[float], q: float) -> float | None:
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None

    def total(key: str, of: list[dict]) -> int:
        return int(sum(x[key] for x in of))

    return {
        "requests_completed": len(done), "requests_submitted": len(rows), "pairs": pairs,
        "links": result["edges"], "duration_s": result["duration"],
        "stopped_early": bool(result["meta"].get("stopped_early", False)),
        "throughput_per_link_s": pairs / result["edges"] / result["duration"],
        "latency_ms": {"mean": 1e3 * statistics.fmean(lat) if lat else None,
                       "p50": 1e3 * pct(lat, 0.5) if lat else None,  # type: ignore[operator]
                       "p99": 1e3 * pct(lat, 0.99) if lat else None,  # type: ignore[operator]
                       "jitter": 1e3 * statistics.pstdev(lat) if lat else None},
        "handshake_us": {"p50": 1e6 * pct(hs, 0.5) if hs else None,  # type: ignore[operator]
                         "p99": 1e6 * pct(hs, 0.99) if hs else None},  # type: ignore[operator]
        "link": {k: total(k, links) for k in ("commands", "events", "retries",
                                              "rx_frame_errors", "events_lost")},
        "physical": {k: total(k, list(nodes.values()))
                     for k in ("schedules", "heralds", "pair_checks", "disagree", "one_sided",
                               "late")},
        "verification": {f"{u}-{v}": {"verified": min(nodes[u]["verification"]["verified"],
                                                      nodes[v]["verification"]["verified"])}
                         for u, v in result["meta"].get("verification", {}).get("pairs", [])
                         if nodes[u].get("verification") and nodes[v].get("verification")},
        "results": [str(result["parquet"])]
        + ([str(result["pairs_parquet"])] if result["meta"].get("verification", {}).get("pairs")
           else []),
    }


async def run_demo(g, args: argparse.Namespace, console=None) -> dict:
    """Start twins + node services, run the workload, return rows/meta/snapshots."""
    from rich.console import RenderableType
    from rich.live import Live

    from hwctl import timebase
    from hwctl.instruments.bench import edge_physics
    from hwctl.node import NodeConfig, NodeService, code_version, write_results
    from hwctl.node.proc import NodeProcess
    from hwctl.output import fit_table, stderr_console
    from hwctl.physics import heralding
    from hwctl.protocols.verification import Cause
    from hwctl.recovery import patient
    from hwctl.sim.twin.lab import Lab, LabServer
    from hwctl.sim.twin.labproc import LabProcess
    from hwctl.sim.twin.station import StationModel
    from hwctl.transport import Backend, LabLink
    from hwctl.wire import CLOCK_HZ, ControlBit

    names = sorted(g.nodes)
    ports = {n: _free_port() for n in names}
    # every node's bench, opened, applied and snapshotted before the clock starts (it takes a few
    # 100 ms per node); the node services adopt them
    benches, opened = demo_benches(args, names)
    # one device clock for every device: the shared reference; both arms of a midpoint source
    # deliver seq N at the same cycle
    start = timebase.cycle_now()
    vpairs = verification_pairs(g) if args.header_rate > 0 else []
    sources = {}
    arm_of: dict[str, tuple[object, int, str]] = {}
    for k, (u, v) in enumerate(vpairs):
        src = header_source(g, u, v, args.header_rate, seed=args.seed * 7919 + k,
                            arm_km=getattr(args, "arm_km", None),
                            phase=start + CLOCK_HZ // 2)
        sources[f"{u}-{v}"] = asdict(src)
        arm_of[u], arm_of[v] = (src, 0, v), (src, 1, u)
    node_kw = {n: arm_of[n][0].arm(arm_of[n][1]) for n in names if n in arm_of}  # type: ignore[attr-defined]
    # node services may start slower than the first header (0.5 s), in processes or one after the
    # other in this one: the header decoders start off and each node's is turned on once every
    # node is up (hwctl.node.proc; inproc below). A device nobody reads yet fills its event FIFO;
    # the HEADERs lost there keep their slots, and a pool run out verifies nothing for the run
    for n in node_kw:
        node_kw[n]["control_reset"] = 1 << ControlBit.HERALD_EN
    if args.header_rate > LEGACY_HEADER_RATE:  # block mode from reset (docs/header-path.md):
        for kw in node_kw.values():           # never a per-photon HEADER flood
            kw["control_reset"] = kw.get("control_reset", 0b11) | 1 << ControlBit.HDR_BLOCK
    p_photon = heralding.success_probability(args.fidelity)
    lab = Lab(g, p_photon=p_photon, seed=args.seed, start=start, node_kw=node_kw)
    bench_physics = edge_physics(
        {n: b.physics_inputs(from_instruments=True) for n, (b, _) in opened.items()},
        list(lab.stations), args.fidelity) if opened else {}
    for (u, v), lp in bench_physics.items():  # the stations take their physics from the benches
        lab.stations[u, v] = StationModel(replace(lab.stations[u, v].cfg, p_photon=lp.p_photon,
                                                  dark_prob=lp.dark_prob), now=start)
    twin_cfgs = {n: asdict(lab.nodes[n].cfg) for n in names}
    lab_meta = {"p_photon": p_photon, "stations": {f"{u}-{v}": asdict(st.cfg)
                                                    for (u, v), st in lab.stations.items()}}
    # pty / unix: the lab in its own process (as separately started `hwctl twin --lab` would be), so its
    # devices answer without waiting for the node services' interpreter lock (hwctl.sim.twin.labproc)
    server: LabServer | LabProcess = (LabProcess(lab, device_link=args.transport)
                                      if args.transport != "inproc"
                                      else LabServer(lab, pty=False)).start()
    urls = dict(server.urls) if args.transport != "inproc" else {n: f"lab://{n}" for n in names}
    # pty / unix: every node service in a process of its own too (hwctl.node.proc), as in a lab; their
    # mirrors feed the table, the live view and the result files. inproc: all in this process.
    nodes: list[NodeService | NodeProcess] = []
    recorders = []  # in-process nodes' (a node process records in the child)
    record = getattr(args, "record", None)
    try:
        for i, n in enumerate(names):
            cfg = NodeConfig.from_dict(node_dict(g, n, i, urls[n], ports, args, arm_of) | (
                {"bench": str(benches[n].source), "bench_index": i} if benches else {}))
            node: NodeService | NodeProcess = (
                NodeService(cfg, rid_base=(i + 1) * 1_000_000) if isinstance(server, LabServer)
                else NodeProcess(cfg, rid_base=(i + 1) * 1_000_000, enable_headers=n in node_kw,
                                 record=str(Path(record) / f"{n}.rec") if record else None))
            if n in opened:
                node.bench, node.bench_snapshot = opened.pop(n)
            if isinstance(node, NodeService) and isinstance(server, LabServer):  # inproc
                backend = Backend(LabLink(server, n), urls[n])
                async with patient(backend):  # the lab is in this process: a late answer is load
                    await backend.handshake()
                if record:
                    from hwctl.record import Recorder

                    rec = Recorder(Path(record) / f"{n}.rec", node)
                    recorders.append(rec)
                    await node.start(rec.tap_backend(backend))
                    rec.tap_sockets()
                else:
                    await node.start(backend)
            else:
                await node.start()
            nodes.append(node)
        for nd in nodes:  # inproc: every node is up, its header decoder goes on (as proc.py's)
            if isinstance(nd, NodeService) and nd.cfg.name in node_kw:
                assert nd.backend is not None
                async with patient(nd.backend):  # before run(): not yet supervised
                    await nd.enable_headers()  # (the node owns HEADER_EN: node/verify.py)
        t0 = time.monotonic()
        runs = [asyncio.create_task(nd.run()) for nd in nodes if isinstance(nd, NodeService)]
        procs = [nd for nd in nodes if isinstance(nd, NodeProcess)]
        for p in procs:
            p.go()

        title = (f"hwctl demo: {len(names)} nodes, {g.number_of_edges()} links, "
                 f"{args.transport} transport, F={args.fidelity}")
        live_console = stderr_console() if console else None
        if live_console is not None and not live_console.is_terminal:
            # redirected (`2> demo.log`): the table is printed once at the end; as wide as it
            # needs, one line per node, instead of wrapped at rich's default 80 columns
            from rich.console import Console

            live_console = Console(stderr=True, width=1000)

        def table() -> RenderableType:
            el = time.monotonic() - t0
            rows = []
            for nd in nodes:
                c = nd.counters
                lat = [r.latency for r in nd.records.values() if r.latency is not None]
                st = nd.backend.stats if nd.backend else None
                v = nd.vcore.metrics if nd.vcore is not None else None
                rows.append((nd.cfg.name, nd.core.state.value, f"{c.completed}/{c.requests}",
                          str(c.heralds),
                          f"{1e3 * statistics.fmean(lat):.0f} ms" if lat else "-",
                          str(c.disagree),
                          f"{v.verified} w/{nd.partner}" if v else "-",
                          f"{v.mean_fidelity:.4f}" if v and v.verified else "-",
                          "/".join(str(v.discards[k]) for k in (Cause.PARTNER_MISSING, Cause.TIMEOUT,
                                                                Cause.PARTNER_TIMEOUT)) if v else "-",
                          f"{st.commands + st.events}" if st else "-",
                          f"{st.retries}/{st.events_lost + st.rx_frame_errors}" if st else "-"))
            return fit_table(("node", "state", "done", "heralds", "mean L", "PL dis", "verified",
                              "F ver", "disc m/t/p", "frames", "retry/lost"), rows,
                             title=f"{title} [{min(el, args.duration):5.1f}/{args.duration:.0f} s]",
                             width=live_console.width if live_console else 80)

        web = None
        if not getattr(args, "no_web", True):
            from hwctl.live import LiveServer, layout, snapshot

            pos = layout(names, list(g.edges))
            web = LiveServer(lambda: snapshot(nodes, title=title, t0=t0, duration=args.duration,
                                              edges=list(g.edges), pos=pos), args.web)
            await web.start()
            print(web.announce(), file=sys.stderr, flush=True)
        live_ctx = Live(table(), console=live_console, refresh_per_second=4, transient=False) \
            if live_console else _NullLive()
        try:
            with live_ctx as live:
                extend = 10 * args.duration if args.max_extend is None else args.max_extend
                stop = getattr(args, "_stop", None)

                def more() -> bool:
                    el = time.monotonic() - t0
                    if stop is not None and stop.is_set():
                        print(f"hwctl demo: stopping early at {el:.1f} s (Ctrl-C again to "
                              f"interrupt without results); writing the results so far",
                              file=sys.stderr, flush=True)
                        return False
                    if el < args.duration:
                        return True
                    done = min(nd.counters.completed for nd in nodes)
                    ver = [nd.vcore.metrics.verified for nd in nodes if nd.vcore is not None]
                    least = min(ver, default=args.min_verified)
                    if done >= args.min_completed and least >= args.min_verified:
                        return False
                    if el < args.duration + extend:
                        return True
                    print(f"warning: at least {done} of --min-completed {args.min_completed} "
                          f"requests completed and {least} of --min-verified "
                          f"{args.min_verified} pairs verified per node in {el:.0f} s; stopping",
                          file=sys.stderr, flush=True)
                    return False

                while more():
                    for r in runs:
                        if r.done() and r.exception():
                            raise r.exception()  # type: ignore[misc]
                    for p in procs:
                        p.poll()  # the child's counters and finished requests; its error
                    await asyncio.sleep(0.25)
                    live.update(table())
                for nd in nodes:
                    nd.stop()
                await asyncio.gather(*runs, return_exceptions=True)
                for p in procs:
                    await p.finish()
                live.update(table())
        finally:
            if live_console is not None and not live_console.is_terminal:
                live_console.print()  # redirected, the table's last line ends without one
            if web is not None:
                await web.close()
        for r in runs:
            if r.exception() is not None:
                raise r.exception()  # type: ignore[misc]
        for rec in recorders:  # the end record: each node's final counters
            rec.close()
        for p in procs:
            if p.error is not None:
                raise p.error
        if isinstance(server, LabProcess):
            server.stop()  # the final counters, and the child's error if it had one
            lab_meta["station_counters"] = server.station_counters()
        else:
            with server.lock:
                lab_meta["station_counters"] = {f"{u}-{v}": {r.name: st.reg(r) for r in st.regs}
                                                for (u, v), st in lab.stations.items()}
        if server.error is not None:
            raise server.error
        lab_meta["lag_max_s"] = lag = server.lag_max_s
        lab_meta["server_counts"] = dict(server.counts)
        if lag > LAB_LAG_WARN_S:
            print(f"warning: the lab's twins ran up to {lag:.2f} s behind real time (the machine "
                  f"did not give the lab process the CPU it needs): their events reached the "
                  f"node services and their answers came that late (a device is declared lost "
                  f"past its link's retries)"
                  + (", and photons that late are TIMEOUT discards" if vpairs else "")
                  + "; the run's figures measure the machine, not the devices", file=sys.stderr,
                  flush=True)
        rows = [row for nd in nodes for row in nd.result_rows()]
        pair_rows = [row for nd in nodes for row in nd.pair_rows()]
        stop = getattr(args, "_stop", None)
        stopped_early = stop is not None and stop.is_set()
        ran = time.monotonic() - t0
        meta = {
            "command": "hwctl demo",
            "parameters": {k: v for k, v in vars(args).items() if not k.startswith("_")},
            "seed": args.seed,
            "version": code_version(),
            "topology": "custom" if args.edges else args.topology,
            "edges": sorted(tuple(sorted(e)) for e in g.edges),
            "backends": urls,
            "twins": twin_cfgs,
            "lab": lab_meta,
            "nodes": {nd.cfg.name: nd.snapshot() for nd in nodes},
            "bench": {"file": str(next(iter(benches.values())).source) if benches else None,
                      "physics": {f"{u}-{v}": asdict(lp) for (u, v), lp in bench_physics.items()}},
            "instruments": {nd.cfg.name: nd.bench_snapshot for nd in nodes} if benches else None,
            "verification": {"pairs": [list(p) for p in vpairs], "sources": sources,
                             "memory": args.memory, "f_th": args.f_th},
            "wall_seconds": ran,
            "stopped_early": stopped_early,
        }
        out = Path(args.out)
        path = write_results(rows, meta, out, pairs=pair_rows, source="demo")
        png = None if args.no_plot else plot(rows, out / "demo.png", args)
        # stopped early: the figures (throughput) cover the time that ran, not --duration
        return {"rows": rows, "meta": meta, "parquet": path, "png": png,
                "duration": min(ran, args.duration) if stopped_early else args.duration,
                "edges": g.number_of_edges(), "pairs_parquet": out / "requests.pairs.parquet"}
    finally:
        for rec in recorders:
            rec.abandon()  # (nothing when closed above)
        for nd in nodes:
            await nd.close()
        for b, _ in opened.values():  # benches no node service adopted
            b.close()
        server.stop()


#: benches n = 0..31 in hwctl/instruments/sim/bench.yaml (one per demo node)
SIM_BENCHES = 32
#: the most nodes a demo runs: each is a node service (a process of its own, but inproc) with
#: its device on a pty and a station per edge (a 30x30 grid started 900 processes)
MAX_NODES = 32


def bench_configs(args: argparse.Namespace, names: list[str]) -> dict:
    """Each node's bench config from ``--bench`` (read and checked, nothing opened; empty with
    ``--bench none``): a missing or bad file is a UserError."""
    from hwctl.instruments import DEMO_BENCH
    from hwctl.instruments.bench import BenchConfig

    if args.bench == "none":
        return {}
    if args.bench is None and len(names) > SIM_BENCHES:
        raise UserError(f"the built-in simulated bench has {SIM_BENCHES} benches, the topology has "
                        f"{len(names)} nodes: use --bench none (calibrated eta) or your own bench")
    path = Path(args.bench or DEMO_BENCH).resolve()
    return {n: BenchConfig.load(path, index=i) for i, n in enumerate(names)}


def demo_benches(args: argparse.Namespace, names: list[str]) -> tuple[dict, dict]:
    """Each node's bench config (the ``--bench`` template, node i on simulated bench i) and the
    bench opened, applied and snapshotted (:func:`hwctl.instruments.bench.start_bench`). The
    stations then take their physics from what the instruments read back
    (:func:`hwctl.instruments.bench.edge_physics`: VOA of u on arm A, of v on arm B, detectors
    biased by u's bench). Empty with ``--bench none``."""
    from hwctl.instruments.bench import start_bench

    benches = bench_configs(args, names)
    opened: dict = {}
    try:
        for n, cfg in benches.items():
            opened[n] = start_bench(cfg)
    except BaseException:
        for b, _ in opened.values():
            b.close()
        raise
    return benches, opened


def node_dict(g, n: str, i: int, url: str, ports: dict[str, int], args: argparse.Namespace,
              arm_of: dict) -> dict:
    """The node config of node ``n`` (the i-th in name order) as a TOML-shaped dict."""
    peers = {m: {"endpoint": f"tcp://127.0.0.1:{ports[m]}",
                 "length_m": g.edges[n, m].get("length_m", 2000.0)} for m in g.neighbors(n)}
    d = {
        "name": n, "listen": f"tcp://127.0.0.1:{ports[n]}", "backend": url, "peers": peers,
        # the simulator's workload rule: per edge one request at a time, random initiator,
        # back-off after each completion (both ends draw it from the same seeded sequence)
        "workload": {"fidelity": args.fidelity, "pairs": [1, 6], "rule": "edge",
                     "mean_backoff": args.mean_backoff, "seed": args.seed},
        "physical": {"lead_s": args.lead},
    }
    if n in arm_of:
        d["verification"] = {"partner": arm_of[n][2], "memory": args.memory, "f_th": args.f_th,
                             "report_interval_s": 0.001, "window_bits": 16}
        if args.header_rate > LEGACY_HEADER_RATE:  # block mode (docs/header-path.md)
            d["verification"] |= {"header_blocks": True, "hold_s": getattr(args, "hold", 0.0),
                                  "source_hz": args.header_rate, "window_bits": 18}
    return d


def verification_pairs(g) -> list[tuple[str, str]]:
    """Disjoint node pairs along the edges (greedy over sorted edges): each twin has one header
    input, so a node verifies with at most one partner (2x2 grid: A-B, C-D)."""
    used: set[str] = set()
    out = []
    for u, v in sorted(tuple(sorted(e)) for e in g.edges):
        if u not in used and v not in used:
            out.append((u, v))
            used |= {u, v}
    return out


def check_header_rate(args: argparse.Namespace, edge_m: float = 2000.0) -> None:
    """``--header-rate`` / ``--arm-km`` / ``--hold``: one clear line when they cannot work."""
    from hwctl.hdrblock import line_utilisation
    from hwctl.physics.loss import arrival_probability

    rate = args.header_rate
    arm = getattr(args, "arm_km", None)
    if arm is not None and not 0 <= arm <= 1000:
        raise UserError("--arm-km must be in [0, 1000] km")
    if not 0 <= getattr(args, "hold", 0.0) <= 10:
        raise UserError("--hold must be in [0, 10] s")
    if not 0 <= rate <= 1e8:
        raise UserError("--header-rate must be in [0, 1e8] pairs/s")
    if rate <= LEGACY_HEADER_RATE:
        if getattr(args, "hold", 0.0):
            raise UserError(f"--hold needs block mode (--header-rate > {LEGACY_HEADER_RATE:.0f})")
        return
    km = arm if arm is not None else edge_m / 2000
    p = arrival_probability(km)
    u = line_utilisation(rate, p)
    if u > MAX_LINE_SHARE:
        lo = next((x / 10 for x in range(0, 10_001) if line_utilisation(
            rate, arrival_probability(x / 10)) <= MAX_LINE_SHARE), None)
        hint = f"; use --arm-km >= {lo:.1f}" if lo is not None else ""
        raise UserError(f"--header-rate {rate:.0f} cannot be carried by the 3 Mbaud device link "
                        f"with {km:g} km arms (p = {p:.3f}): header blocks need {u:.2f} of the "
                        f"line, at most {MAX_LINE_SHARE}{hint}")


def expected_pairs(a: dict, b: dict, arrival) -> tuple[int, float, float, float]:
    """The verified pairs a run should give (docs/verification.md, "How many pairs to expect"):
    E = N * p_A * p_B, N the source pulses both verification cores covered (each core's own
    stream: stored headers + sequence numbers inferred missing, ``headers + missing_local`` of
    its summary; the smaller of the two), p_A, p_B the arms' arrival probabilities of the source
    (the loss budget, ``HeaderSource.arrival``). It assumes every pair both ends stored is
    judged within the timeout (the HAVE round trip far below it): TIMEOUT and OVERWRITTEN
    discards are what falls short of it. Returns (N, p_A, p_B, E)."""
    n = min(a["headers"] + a["missing_local"], b["headers"] + b["missing_local"])
    pa, pb = float(arrival[0]), float(arrival[1])
    return n, pa, pb, n * pa * pb


def header_source(g, u: str, v: str, rate_hz: float, seed: int, phase: int = 0,
                  arm_km: float | None = None):
    """The midpoint source of pair u-v: ``rate_hz`` pairs/s, first pair at cycle ``phase`` (the
    demo: 0.5 s after the lab starts, the services are up by then), each arm ``arm_km`` (default
    half the edge's fibre), paper §IV losses."""
    from hwctl.physics.loss import arrival_probability
    from hwctl.sim.twin.header import HeaderSource
    from hwctl.wire import CLOCK_HZ

    if arm_km is None:
        arm_km = g.edges[u, v].get("length_m", 2000.0) / 2 / 1000
    eta = arrival_probability(arm_km)
    return HeaderSource(period=max(1, round(CLOCK_HZ / rate_hz)), seed=seed, phase=phase,
                        arrival=(eta, eta))


class _NullLive:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, _t) -> None:
        pass


def plot(rows: list[dict], path: Path, args: argparse.Namespace) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["latency"] is not None]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    edges: dict[str, list[dict]] = {}
    for r in done:
        edges.setdefault("-".join(sorted((r["initiator"], r["remote"]))), []).append(r)
    for e, rs in sorted(edges.items()):
        lat = sorted(1e3 * r["latency"] for r in rs)
        ax1.step(lat, [(i + 1) / len(lat) for i in range(len(lat))], where="post", label=e)
        fin = sorted(r["t_finish"] for r in rs)
        ax2.step(fin, range(1, len(fin) + 1), where="post", label=e)
    ax1.set_xlabel("request latency L (ms)")
    ax1.set_ylabel("CDF")
    ax1.set_title(f"ESP request latency, F={args.fidelity}")
    ax2.set_xlabel("time (s)")
    ax2.set_ylabel("completed requests")
    ax2.set_title("completions per link")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if edges:
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _of_slots(result: dict, node: str, ver: dict) -> str:
    """`` of N``: the device's slots (per-photon pool, or block mode's ring), from the twin's
    config in the metadata ("" without it)."""
    twin = result["meta"].get("twins", {}).get(node, {})
    n = twin.get("ring_slots" if ver.get("block_path") is not None else "n_slots")
    return f" of {n}" if n else ""


def summarize(result: dict, console) -> None:
    from hwctl.wire import CLOCK_HZ

    rows = result["rows"]
    done = [r for r in rows if r["latency"] is not None]
    lat = sorted(r["latency"] for r in done)
    pairs = sum(r["pairs"] for r in done)
    nodes = result["meta"]["nodes"]
    links = [n["link"] for n in nodes.values()]
    hs = [r["t_ack"] - r["t_syn"] for r in done if r["t_ack"] is not None and r["t_syn"] is not None]

    if console.is_terminal:  # the live table on the terminal leaves the cursor at its end
        console.print()  # (redirected, stdout's first line is the summary's)
    def pct(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

    meta = result["meta"]
    early = (f", stopped early (Ctrl-C / SIGTERM) at {result['duration']:.0f} s of --duration "
             f"{meta.get('parameters', {}).get('duration', 0):g}"
             if meta.get("stopped_early") else "")  # (stdout alone, `> summary.txt`, says it)
    console.print(f"[bold]requests[/]: {len(done)} completed of {len(rows)} submitted; "
                  f"{pairs} pairs on {result['edges']} links in {result['duration']:.0f} s "
                  f"(T = {pairs / result['edges'] / result['duration']:.1f} pairs/s per link)"
                  f"{early}")
    if lat:
        console.print(f"[bold]latency L[/]: mean {1e3 * statistics.fmean(lat):.1f} ms, "
                      f"p50 {1e3 * pct(lat, 0.5):.1f} ms, p99 {1e3 * pct(lat, 0.99):.1f} ms, "
                      f"jitter J {1e3 * statistics.pstdev(lat):.1f} ms")
    if hs:
        hs.sort()
        console.print(f"[bold]handshake[/] SYN->SYNACK->ACK: p50 {1e6 * pct(hs, 0.5):.0f} us, "
                      f"p99 {1e6 * pct(hs, 0.99):.0f} us")
    console.print(f"[bold]links[/]: {sum(x['commands'] for x in links)} commands, "
                  f"{sum(x['events'] for x in links)} events, {sum(x['retries'] for x in links)} retries, "
                  f"{sum(x['rx_frame_errors'] for x in links)} bad frames, "
                  f"{sum(x['events_lost'] for x in links)} events lost; "
                  f"{sum(n['late'] for n in nodes.values())} LATE schedules; devices lost "
                  f"{sum(n.get('recovery', {}).get('device_lost', 0) for n in nodes.values())}"
                  " (the counts above are each node's current link: a reconnect starts new ones)")
    n_req = sum(n["generations"] for n in nodes.values()) // 2
    console.print(f"[bold]physical layer[/]: {sum(n['schedules'] for n in nodes.values())} "
                  f"SCHEDULE_PAIRS over {n_req} requests (one per end per request"
                  f"{', plus restarts' if any(r['restarts'] for r in rows) else ''}), "
                  f"{sum(n['heralds'] for n in nodes.values())} pairs recorded at the ends; "
                  f"pair lists compared for {sum(n['pair_checks'] for n in nodes.values())} "
                  f"(request, end) couples: disagreements "
                  f"{sum(n['disagree'] for n in nodes.values())}, one-sided pairs (a generation "
                  f"only one end finished) {sum(n.get('one_sided', 0) for n in nodes.values())}"
                  f" (goal 0 for both)")
    ver = result["meta"].get("verification", {})
    for u, v in ver.get("pairs", []):
        a, b = nodes[u].get("verification"), nodes[v].get("verification")
        if a is None or b is None:
            continue
        n_ver = min(a["verified"], b["verified"])
        fids = [x for x in (a["fidelity_mean"], b["fidelity_mean"]) if x is not None]
        fmin = [x for x in (a["fidelity_min"], b["fidelity_min"]) if x is not None]
        disc = {k: a["discards"][k] + b["discards"][k] for k in a["discards"]}
        src = ver.get("sources", {}).get(f"{u}-{v}")
        exp = ""
        if src is not None:
            n, pa, pb, e = expected_pairs(a, b, src["arrival"])
            exp = (f" (expected {e:.0f} = N {n} pulses both cores covered x pA {pa:.4f} x pB "
                   f"{pb:.4f}: {n_ver / e if e else 0:.3f} of it)")
        console.print(
            f"[bold]verified pairs {u}-{v}[/]: {n_ver} ({n_ver / result['duration']:.1f}/s){exp} of "
            f"{a['headers']} ({u}) / {b['headers']} ({v}) headers stored; F at verification mean "
            + (f"{statistics.fmean(fids):.4f}, min {min(fmin):.4f}" if fids else "-")
            + f" ({a['memory']}, F_th {a['f_th']}, timeout {1e3 * a['timeout_s']:.1f} ms); discards "
            + ", ".join(f"{k.lower()} {x}" for k, x in disc.items())
            + f"; max slots in use {max(a['max_occupancy'], b['max_occupancy'])}"
            + _of_slots(result, u, a) + ", "
              f"NO_SLOT {a['no_slot'] + b['no_slot']}, revoked {a['revoked'] + b['revoked']}")
        late = []
        for name, x in ((u, a), (v, b)):
            bp = x.get("block_path")
            if bp is not None:
                lag_mean = bp.get("decode_lag_mean_cycles", 0) / CLOCK_HZ
                lag_max = bp.get("decode_lag_max_cycles", 0) / CLOCK_HZ
                if lag_max > x["timeout_s"]:
                    late.append(f"{name} {1e3 * lag_max:.0f} ms")
                console.print(
                    f"  [bold]{name} block mode[/]: {bp['arrivals']} arrivals in {bp['blocks']} "
                    f"HDR_BLOCKs; link losses: {bp['lost_blocks']} blocks lost "
                    f"({bp['unknown_pulses']} pulses unknown), {bp['malformed']} malformed, "
                    f"{bp['slot_mismatches']} slot0 mismatches, {bp['bad_headers']} bad headers; "
                    f"pins {bp['pins_sent']}/{bp['unpins_sent']} (pin/unpin), NAKs {bp['pin_naks']}; "
                    f"decode lag mean {1e3 * lag_mean:.1f} ms, max {1e3 * lag_max:.1f} ms (an "
                    f"arrival's age when its host decoded it: twin, link and host)")
        if late:  # photons judged late by the machine, not by the protocol: say so
            console.print(
                f"warning: arrivals reached the host older than the verification timeout "
                f"({1e3 * a['timeout_s']:.1f} ms): decode lag max {', '.join(late)}. This machine "
                f"did not keep up with the source in real time (load, or other work at the same "
                f"time), so the TIMEOUT discards and the verified fraction above are the machine's, "
                f"not the protocol's: measure at this rate on an idle machine, or lower "
                f"--header-rate", style="yellow", highlight=False)
    console.print(f"results: {result['parquet']}"
                  + (f", {result['pairs_parquet']}" if ver.get("pairs") else "")
                  + (f", plot: {result['png']}" if result["png"] else ""))
