"""``hwctl demo``: a small quantum network on software twins, through the real transports.

One command, no hardware. For every node of the topology (default: the ESP paper's 2x2 grid) the
demo starts a software twin of the FPGA on its own pseudo-terminal (a real serial link: pyserial,
COBS frames, CRCs, retries) and a node service running the ESP core; node services talk to each
other over ZeroMQ on loopback. The ESP paper's workload (§VI-B: one request at a time per edge,
1-6 pairs, exponential back-off) runs for ``--duration`` seconds in real time with live progress;
then the demo writes

- ``requests.parquet``  one row per request (times in s, herald timestamps as integer cycles),
- ``requests.meta.json`` parameters, code version, twin settings and link health,
- ``demo.png``          request latency distribution and completions over time,

and prints a summary. The twins' per-attempt success probability comes from
:mod:`hwctl.physics.heralding` for the requested fidelity (p = 2(1-F)*eta, eta calibrated on K2).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from dataclasses import asdict
from pathlib import Path

from hwctl.errors import UserError

TRANSPORTS = ("pty", "zmq", "inproc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of ESP traffic (default 20)")
    parser.add_argument("--topology", default="2x2", help="NxM, Kn, Km,n, Fn, Wn, Cn (default 2x2)")
    parser.add_argument("--edges", default=None, help="explicit edges, e.g. A-B,B-C (overrides --topology)")
    parser.add_argument("--fidelity", type=float, default=0.75, help="requested fidelity (default 0.75)")
    parser.add_argument("--transport", choices=TRANSPORTS, default="pty",
                        help="node <-> twin link: pty (serial over a pseudo-terminal, default), "
                             "zmq (twin behind a ZeroMQ socket, as with the board bridge) or inproc")
    parser.add_argument("--mean-backoff", type=float, default=0.05,
                        help="mean back-off between requests on an edge, s (ESP Table IV: 0.05)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="hwctl-demo", help="output directory (default ./hwctl-demo)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sim import topologies

    if args.duration <= 0:
        raise UserError("--duration must be > 0")
    if not 0.5 <= args.fidelity < 1.0:
        raise UserError("--fidelity must be in [0.5, 1)")
    g = topologies.from_edges(args.edges) if args.edges else topologies.by_name(args.topology)
    console = Console()
    result = asyncio.run(run_demo(g, args, console))
    summarize(result, console)
    return 0


async def run_demo(g, args: argparse.Namespace, console=None) -> dict:
    """Start twins + node services, run the workload, return rows/meta/snapshots."""
    from rich.live import Live
    from rich.table import Table

    from hwctl.node import NodeConfig, NodeService, code_version, write_results
    from sim.twin import TwinConfig, TwinModel
    from sim.twin.serve import PtyTwinServer, ZmqTwinServer

    names = sorted(g.nodes)
    ports = {n: _free_port() for n in names}
    twins: dict[str, object] = {}
    servers = []
    urls: dict[str, str] = {}
    twin_cfgs = {}
    for i, n in enumerate(names):
        cfg = TwinConfig.for_fidelity(args.fidelity, seed=args.seed * 1000 + i)
        twin_cfgs[n] = asdict(cfg)
        model = TwinModel(cfg)
        twins[n] = model
        if args.transport == "pty":
            srv = PtyTwinServer(model, mode="realtime").start()
            servers.append(srv)
            urls[n] = srv.url
        elif args.transport == "zmq":
            srv = ZmqTwinServer(model, mode="realtime").start()
            servers.append(srv)
            urls[n] = srv.url
        else:
            urls[n] = "twin://?mode=realtime"
    nodes: list[NodeService] = []
    epoch = time.monotonic()
    try:
        for i, n in enumerate(names):
            peers = {m: {"endpoint": f"tcp://127.0.0.1:{ports[m]}",
                         "length_m": g.edges[n, m].get("length_m", 2000.0)} for m in g.neighbors(n)}
            cfg = NodeConfig.from_dict({
                "name": n, "listen": f"tcp://127.0.0.1:{ports[n]}", "backend": urls[n],
                "peers": peers,
                # each end of an edge initiates at half the edge's request rate
                "workload": {"fidelity": args.fidelity, "pairs": [1, 6],
                             "mean_backoff": 2 * args.mean_backoff, "seed": args.seed * 1000 + i},
            })
            node = NodeService(cfg, epoch=epoch, rid_base=(i + 1) * 1_000_000)
            if args.transport == "inproc":
                # share the model so meta/snapshots see it (twin:// builds its own otherwise)
                from hwctl.transport import Backend, TwinLink

                backend = Backend(TwinLink(twins[n], mode="realtime"), urls[n])
                await backend.handshake()
                await node.start(backend)
            else:
                await node.start()
            nodes.append(node)
        t0 = time.monotonic()
        runs = [asyncio.create_task(nd.run()) for nd in nodes]

        def table() -> Table:
            el = time.monotonic() - t0
            t = Table(title=f"hwctl demo: {len(names)} nodes, {g.number_of_edges()} links, "
                            f"{args.transport} transport, F={args.fidelity} "
                            f"[{min(el, args.duration):5.1f}/{args.duration:.0f} s]")
            for col in ("node", "state", "done", "heralds", "attempts",
                        "mean L", "frames", "retry", "lost"):
                t.add_column(col, justify="right")
            for nd in nodes:
                c = nd.counters
                lat = [r.latency for r in nd.records.values() if r.latency is not None]
                st = nd.backend.stats if nd.backend else None
                t.add_row(nd.cfg.name, nd.core.state.value, f"{c.completed}/{c.requests}",
                          str(c.heralds), f"{c.attempts / 1e6:.1f}M",
                          f"{1e3 * statistics.fmean(lat):.1f} ms" if lat else "-",
                          f"{st.commands + st.events}" if st else "-",
                          str(st.retries) if st else "-",
                          str(st.events_lost + st.rx_frame_errors) if st else "-")
            return t

        live_ctx = Live(table(), console=console, refresh_per_second=4, transient=False) if console \
            else _NullLive()
        with live_ctx as live:
            while time.monotonic() - t0 < args.duration:
                for r in runs:
                    if r.done() and r.exception():
                        raise r.exception()  # type: ignore[misc]
                await asyncio.sleep(0.25)
                live.update(table())
            for nd in nodes:
                nd.stop()
            await asyncio.gather(*runs, return_exceptions=True)
            live.update(table())
        for r in runs:
            if r.exception() is not None:
                raise r.exception()  # type: ignore[misc]
        rows = [row for nd in nodes for row in nd.result_rows()]
        meta = {
            "command": "hwctl demo",
            "args": vars(args) | {"_module": None},
            "version": code_version(),
            "topology": sorted(tuple(sorted(e)) for e in g.edges),
            "backends": urls,
            "twins": twin_cfgs,
            "nodes": {nd.cfg.name: nd.snapshot() for nd in nodes},
            "wall_seconds": time.monotonic() - t0,
        }
        out = Path(args.out)
        path = write_results(rows, meta, out)
        png = None if args.no_plot else plot(rows, out / "demo.png", args)
        return {"rows": rows, "meta": meta, "parquet": path, "png": png, "duration": args.duration,
                "edges": g.number_of_edges()}
    finally:
        for nd in nodes:
            await nd.close()
        for srv in servers:
            srv.stop()


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


def summarize(result: dict, console) -> None:
    rows = result["rows"]
    done = [r for r in rows if r["latency"] is not None]
    lat = sorted(r["latency"] for r in done)
    pairs = sum(r["pairs"] for r in done)
    nodes = result["meta"]["nodes"]
    links = [n["link"] for n in nodes.values()]
    hs = [r["t_ack"] - r["t_syn"] for r in done if r["t_ack"] is not None and r["t_syn"] is not None]

    def pct(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

    console.print(f"[bold]requests[/]: {len(done)} completed of {len(rows)} submitted; "
                  f"{pairs} pairs on {result['edges']} links in {result['duration']:.0f} s "
                  f"(T = {pairs / result['edges'] / result['duration']:.1f} pairs/s per link)")
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
                  f"{sum(n['late'] for n in nodes.values())} LATE schedules")
    console.print(f"results: {result['parquet']}" + (f", plot: {result['png']}" if result["png"] else ""))
