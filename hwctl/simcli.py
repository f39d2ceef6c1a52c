"""``hwctl sim``: run the network simulator, or regenerate ESP paper Table V.

Examples::

    hwctl sim --topology 3x3 --protocol esp --fidelity 0.75 --duration 120 --seed 1
    hwctl sim --edges A-B,B-C,C-A --protocol dqp --out run.parquet
    hwctl sim --table5 --out-dir results/table5

The same seed gives the same result. Per-request metrics (ESP paper §VI-A) go to Parquet with the
run's parameters, seed and code version in the file's metadata.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from hwctl import argtypes
from hwctl.errors import UserError
from hwctl.output import progress as progress_bar

METRIC_LABELS = [
    ("requests", "requests completed", "{:.0f}"),
    ("open_requests", "requests still open at the end", "{:.0f}"),
    ("mean_latency_ms", "mean latency L (ms)", "{:.2f}"),
    ("jitter_ms", "jitter J (ms)", "{:.2f}"),
    ("mean_scaled_latency_ms", "mean scaled latency SL (ms)", "{:.2f}"),
    ("mean_busy_ms", "mean busy time B (ms)", "{:.2f}"),
    ("mean_queue_ms", "mean queueing time W (ms)", "{:.2f}"),
    ("throughput_per_edge_s", "scaled throughput T (pairs/edge/s)", "{:.2f}"),
    ("messages", "control messages", "{:.0f}"),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topology", default=None,
                   help="NxM, Kn, Km,n, Fn, Wn, Cn (paper: 2x2 2x3 3x3 K2 K3 K4 K2,3 K1,3 K1,4 "
                        "F2 F3 W6 C5 C6); default 2x2")
    p.add_argument("--edges", help="custom graph: 'A-B,B-C' or a file with one 'u v' per line ('#' comments)")
    p.add_argument("--protocol", default=None, choices=["esp", "dqp", "greedy", "oracle"],
                   help="esp (default), dqp, or greedy: the centralized greedy scheduler with zero "
                        "control delay (simulator only; 'oracle' is its deprecated old name)")
    p.add_argument("--fidelity", type=argtypes.fidelity, default=0.75,
                   help="requested fidelity F in [0.5, 1) (default 0.75)")
    p.add_argument("--duration", type=argtypes.duration(argtypes.MAX_SIM_S), default=120.0,
                   help=f"simulated seconds, at most {argtypes.MAX_SIM_S:g} (default 120)")
    p.add_argument("--seed", type=argtypes.seed, default=1, help="random seed (>= 0; default 1)")
    p.add_argument("--out", type=Path, help="write the requests to this Parquet file (shared schema, run "
                        "metadata inside; docs/data.md)")
    p.add_argument("--json", action="store_true",
                   help="print the figures as one JSON document on stdout (with --table5: the "
                        "rows, growth fits and, with --sweep-fidelity, the sweep)")
    p.add_argument("--table5", action="store_true",
                   help="run the 14 paper topologies x (DQP, ESP, greedy) at --fidelity and print "
                        "the Table V comparison")
    p.add_argument("--sweep-fidelity", action="store_true",
                   help="with --table5: repeat for F = 0.50, 0.55, ..., 0.90 and print the latency "
                        "range per topology (ESP paper Fig. 11); slow (9x the runs)")
    p.add_argument("--no-greedy", "--no-oracle", dest="no_greedy", action="store_true",
                   help="with --table5: skip the centralized greedy scheduler's runs")
    p.add_argument("--jobs", type=argtypes.integer(1, 256, what="--jobs"), default=None,
                   help="worker processes for --table5 (default: all cores)")
    p.add_argument("--out-dir", type=Path, help="with --table5: write one Parquet per run, "
                                                "table5.json and plots (fig8.png, fig11.png) here")
    p.add_argument("--force", action="store_true", help=argtypes.FORCE_HELP)


def _config(args: argparse.Namespace, protocol: str | None = None, seed: int | None = None):
    from hwctl.sim.network import SimConfig

    cfg = SimConfig(protocol=protocol or args.protocol, fidelity=args.fidelity,
                    duration=args.duration, seed=args.seed if seed is None else seed)
    try:
        cfg.validate()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return cfg


def _graph(args: argparse.Namespace):
    from hwctl.sim import topologies

    if args.edges:
        return topologies.from_edges(args.edges), "custom"
    return topologies.by_name(args.topology), topologies.canonical(args.topology)


#: options of one run that --table5 does not take, and options only --table5 takes
ONE_RUN_ONLY = {"topology": "--topology", "edges": "--edges", "protocol": "--protocol",
                "out": "--out"}
TABLE5_ONLY = {"sweep_fidelity": "--sweep-fidelity", "no_greedy": "--no-greedy",
               "jobs": "--jobs", "out_dir": "--out-dir"}


def _check_mode(args: argparse.Namespace) -> None:
    """An option the chosen mode would ignore is refused (a user who writes --topology K4 with
    --table5, or --jobs 8 for one run, expects it to do something), then the defaults are set."""
    if args.table5:
        given = [flag for key, flag in ONE_RUN_ONLY.items()
                 if getattr(args, key) not in (None, False)]
        if given:
            raise UserError(f"{', '.join(given)}: not with --table5 (it runs the 14 paper "
                            f"topologies with DQP, ESP and greedy; --out-dir keeps one Parquet "
                            f"per run)")
        if args.jobs is None:
            args.jobs = os.cpu_count() or 1
    else:
        given = [flag for key, flag in TABLE5_ONLY.items()
                 if getattr(args, key) not in (None, False)]
        if given:
            raise UserError(f"{', '.join(given)}: only with --table5 (one run: --out FILE)")
        if args.topology is None:
            args.topology = "2x2"
        if args.protocol is None:
            args.protocol = "esp"


def _check_outputs(args: argparse.Namespace) -> None:
    """An unwritable --out / --out-dir is found before the run, not after it."""
    try:
        if args.out is not None:
            argtypes.check_out_path(args.out, "--out")
            if args.out.suffix.lower() not in (".parquet", ".pq"):
                # a Parquet file named run.csv is a surprise for whoever opens it later
                raise ValueError(f"--out writes Parquet: name the file .parquet, got "
                                 f"{str(args.out)!r} (`hwctl export FILE.parquet --hdf5` makes "
                                 f"HDF5)")
        if args.out_dir is not None:
            argtypes.check_out_path(args.out_dir, "--out-dir", directory=True)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.out is not None:
        argtypes.refuse_existing([args.out], "--out", force=args.force)
    if args.out_dir is not None:
        d = args.out_dir
        argtypes.refuse_existing([d / "table5.json", d / "fidelity_sweep.json",
                                  *sorted(d.glob("*.parquet"))], "--out-dir", force=args.force)


def run(args: argparse.Namespace) -> int:
    if args.protocol == "oracle":
        print("hwctl sim: --protocol oracle is deprecated: it is the centralized greedy scheduler "
              "(zero control delay), not a bound; use --protocol greedy", file=sys.stderr)
        args.protocol = "greedy"
    _check_outputs(args)
    _check_mode(args)
    if args.table5:
        return _table5(args)
    from hwctl.sim.network import simulate

    graph, name = _graph(args)
    cfg = _config(args)
    # a long run (a 3x3 hour is minutes of wall time) shows simulated seconds on stderr; the bar
    # goes away at the end, so a short run's output is just the figures (redirected: a line now
    # and then, none for a short run, hwctl.output.LineProgress)
    with progress_bar(True, eta=True, transient=True) as bar:
        task = bar.add_task(f"{name} {cfg.protocol.upper()}, simulated s", total=cfg.duration)
        res = simulate(graph, cfg, name,
                       on_progress=lambda t: bar.update(task, completed=round(t, 1)))
    if args.out:
        _write_new(res, args.out, force=args.force)
    if args.json:
        from hwctl.output import print_json
        from hwctl.schema import SCHEMA_VERSION

        print_json({"schema_version": SCHEMA_VERSION, "topology": name, "nodes": len(res.nodes),
                    "edges": len(res.edges), "protocol": cfg.protocol, "fidelity": cfg.fidelity,
                    "duration_s": cfg.duration, "seed": cfg.seed, **res.summary,
                    "wall_s": res.wall_seconds, "out": str(args.out) if args.out else None})
    else:
        print(f"{name} ({len(res.nodes)} nodes, {len(res.edges)} edges), {cfg.protocol.upper()}, "
              f"F = {cfg.fidelity}, {cfg.duration:g} s simulated, seed {cfg.seed}")
        for key, label, fmt in METRIC_LABELS:
            v = res.summary[key]
            shown = ("- (no request completed)" if isinstance(v, float) and math.isnan(v)
                     else fmt.format(v))
            print(f"  {label:38s} {shown}")
        print(f"  {'wall time (s)':38s} {res.wall_seconds:.2f}  "
              f"({_speed(cfg.duration / max(res.wall_seconds, 1e-9))} real time)")
        if args.out:
            print(f"  per-request metrics written to {args.out}")
    return 0


def _write_new(res: Any, out: Path, *, force: bool) -> None:
    """``res`` to ``out`` without replacing a file another run wrote there meanwhile (two
    `hwctl sim --out run.parquet` at once both passed the check at the start): written beside
    it, then linked into place; if ``out`` appeared, this run's file stays beside it, said in
    one line. ``--force`` replaces."""
    if force:
        res.to_parquet(out)
        return
    side = out.with_name(f"{out.stem}.{os.getpid()}.parquet")
    res.to_parquet(side)
    try:
        os.link(side, out)
    except FileExistsError:
        raise UserError(f"--out {str(out)!r} was written by another run while this one ran "
                        f"(not replaced); this run's results are in {side}") from None
    except OSError:  # a file system without hard links
        if out.exists():
            raise UserError(f"--out {str(out)!r} was written by another run while this one "
                            f"ran (not replaced); this run's results are in {side}") from None
        os.replace(side, out)
        return
    side.unlink()


def _speed(x: float) -> str:
    """A speed-up as the one figure that matters: ``46x``, ``1.5x``, ``0.29x`` (slower than real
    time showed as ``0x``)."""
    return f"{x:.0f}x" if x >= 10 else f"{x:.2g}x"


def _one(job: tuple[str, str, float, float, int, str | None]) -> dict[str, Any]:
    from hwctl.sim import topologies
    from hwctl.sim.network import SimConfig, simulate

    topo, proto, fidelity, duration, seed, out_dir = job
    g = topologies.by_name(topo)
    res = simulate(g, SimConfig(protocol=proto, fidelity=fidelity, duration=duration, seed=seed),
                   topo)
    if out_dir:
        res.to_parquet(Path(out_dir) / f"{topo.replace(',', '_')}_{proto}.parquet")
    return {"topology": topo, "protocol": proto, "edges": len(res.edges),
            "matching_number": topologies.matching_number(g), "wall_s": res.wall_seconds,
            **res.summary}


def _one_indexed(item: tuple[int, tuple[str, str, float, float, int, str | None]]
                 ) -> tuple[int, dict[str, Any]]:
    return item[0], _one(item[1])


def table5_rows(fidelity: float = 0.75, duration: float = 120.0, seed: int = 1, jobs: int = 1,
                greedy: bool = True, out_dir: Path | None = None, progress: bool = False
                ) -> list[dict[str, Any]]:
    """Run every paper topology with DQP, ESP (and the centralized greedy scheduler); rows in
    paper order."""
    from hwctl.sim.topologies import PAPER_TOPOLOGIES

    protos = ["dqp", "esp"] + (["greedy"] if greedy else [])
    jobs_list = [(t, p, fidelity, duration, seed, str(out_dir) if out_dir else None)
                 for t in PAPER_TOPOLOGIES for p in protos]
    # Longest runs first so the pool stays busy.
    order = sorted(range(len(jobs_list)), key=lambda k: -_cost(jobs_list[k]))
    results: dict[int, dict[str, Any]] = {}
    bar = progress_bar(progress, transient=True)
    with bar:
        task = bar.add_task("Table V runs", total=len(jobs_list))
        if jobs <= 1:
            for k in order:
                results[k] = _one(jobs_list[k])
                bar.advance(task)
        else:
            from hwctl.pool import stoppable_pool

            # (stops at once on Ctrl-C; the job's index comes back with its row)
            kept = (f"finished runs are kept in {out_dir}" if out_dir else
                    "no table is printed")
            with stoppable_pool(jobs, len(order), prog="hwctl sim", kept=kept) as imap:
                for k, row in imap(_one_indexed, [(k, jobs_list[k]) for k in order]):
                    results[k] = row
                    bar.advance(task)
    return [results[k] for k in range(len(jobs_list))]


def _cost(job: tuple[str, str, float, float, int, str | None]) -> float:
    from hwctl.sim.topologies import by_name

    return by_name(job[0]).number_of_edges() * (0.3 if job[1] == "greedy" else 1.0)


def format_table5(rows: list[dict[str, Any]]) -> str:
    """Table V layout plus throughput, matching number and the distance to the centralized greedy
    scheduler (zero control delay; a reference point, not a bound)."""
    by = {(r["topology"], r["protocol"]): r for r in rows}
    topos = list(dict.fromkeys(r["topology"] for r in rows))
    has_greedy = any(r["protocol"] == "greedy" for r in rows)
    head = (f"{'Topology':9s} {'|E|':>3s} {'nu':>2s} {'Protocol':8s} {'Mean L (ms)':>11s} "
            f"{'Jitter (ms)':>11s} {'T (/edge/s)':>11s} {'Requests':>8s}")
    if has_greedy:
        head += f" {'vs greedy':>9s}"
    lines = [head, "-" * len(head)]
    for t in topos:
        greedy = by.get((t, "greedy"))
        for proto in ("dqp", "esp"):
            r = by[(t, proto)]
            line = (f"{t if proto == 'dqp' else '':9s} {r['edges'] if proto == 'dqp' else '':>3} "
                    f"{r['matching_number'] if proto == 'dqp' else '':>2} {proto.upper():8s} "
                    f"{r['mean_latency_ms']:11.2f} {r['jitter_ms']:11.2f} "
                    f"{r['throughput_per_edge_s']:11.2f} {r['requests']:8.0f}")
            if greedy:
                gap = (r["mean_latency_ms"] / greedy["mean_latency_ms"] - 1) * 100
                line += f" {gap:+8.1f}%"
            lines.append(line)
        if greedy:
            lines.append(f"{'':9s} {'':>3} {'':>2} {'GREEDY':8s} {greedy['mean_latency_ms']:11.2f} "
                         f"{greedy['jitter_ms']:11.2f} {greedy['throughput_per_edge_s']:11.2f} "
                         f"{greedy['requests']:8.0f}")
    return "\n".join(lines)


def latency_growth(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    """Least-squares fit of mean latency (ms) against |E_Q| per protocol (ESP paper Fig. 8):
    protocol -> (slope ms/edge, intercept ms, R^2)."""
    import numpy as np

    fits = {}
    for proto in dict.fromkeys(r["protocol"] for r in rows):
        xs = np.array([r["edges"] for r in rows if r["protocol"] == proto], dtype=float)
        ys = np.array([r["mean_latency_ms"] for r in rows if r["protocol"] == proto])
        slope, icept = np.polyfit(xs, ys, 1)
        resid = ys - (slope * xs + icept)
        r2 = 1 - float(resid @ resid) / float(((ys - ys.mean()) ** 2).sum())
        fits[proto] = (float(slope), float(icept), r2)
    return fits


def growth_lines(rows: list[dict[str, Any]]) -> list[str]:
    fits = latency_growth(rows)
    lines = [f"latency growth {p.upper():6s}: {m:7.2f} ms per edge (intercept {c:6.2f} ms, "
             f"R^2 {r2:.2f})" for p, (m, c, r2) in fits.items()]
    if "dqp" in fits and "esp" in fits and fits["esp"][0] > 0:
        lines.append(f"DQP/ESP growth ratio: {fits['dqp'][0] / fits['esp'][0]:.1f}x "
                     "(paper: about sixfold)")
    return lines


def _table5(args: argparse.Namespace) -> int:
    _config(args, protocol="esp")  # validates fidelity/duration
    import time

    t0 = time.perf_counter()
    try:
        rows = table5_rows(args.fidelity, args.duration, args.seed, args.jobs, not args.no_greedy,
                           args.out_dir, progress=True)
    except KeyboardInterrupt:
        if args.out_dir is None:
            raise
        from hwctl.sim.topologies import PAPER_TOPOLOGIES

        planned = len(PAPER_TOPOLOGIES) * (2 if args.no_greedy else 3)
        there = len(list(args.out_dir.glob("*.parquet"))) if args.out_dir.is_dir() else 0
        print(f"hwctl sim: interrupted: {there} of {planned} runs' Parquet files are in "
              f"{args.out_dir}, no table5.json (the table is written at the end); the same "
              f"command with --force runs the table again there", file=sys.stderr)
        return 130
    wall = time.perf_counter() - t0
    sweep = fidelity_sweep(args.duration, args.seed, args.jobs, progress=True) \
        if args.sweep_fidelity else None
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / "table5.json").write_text(json.dumps(rows, indent=2))
        plot_fig8(rows, args.out_dir / "fig8.png")
        if sweep is not None:
            (args.out_dir / "fidelity_sweep.json").write_text(json.dumps(sweep, indent=2))
            plot_fig11(sweep, args.out_dir / "fig11.png")
    if args.json:
        from hwctl.output import print_json

        print_json({"fidelity": args.fidelity, "duration_s": args.duration, "seed": args.seed,
                    "rows": rows, "growth": growth_lines(rows), "fidelity_sweep": sweep,
                    "runs": len(rows), "wall_s": wall,
                    "out_dir": str(args.out_dir) if args.out_dir else None})
        return 0
    print(f"Table V: F = {args.fidelity}, {args.duration:g} s simulated per run, seed {args.seed}")
    print(format_table5(rows))
    print("Paper (Table V, K2 row, the calibration point): DQP 18.82 ms / 13.89 ms, "
          "ESP 18.75 ms / 13.47 ms")
    for line in growth_lines(rows):
        print(line)
    print(f"{len(rows)} runs in {wall:.1f} s wall on {args.jobs} worker(s)")
    if args.out_dir:
        print(f"per-run Parquet files, table5.json and fig8.png written to {args.out_dir}")
    if sweep is not None:
        print(format_sweep(sweep))
        if args.out_dir:
            print(f"fidelity_sweep.json and fig11.png written to {args.out_dir}")
    return 0


FIDELITIES = [round(0.5 + 0.05 * k, 2) for k in range(9)]


def fidelity_sweep(duration: float = 120.0, seed: int = 1, jobs: int = 1,
                   fidelities: list[float] | None = None, progress: bool = False
                   ) -> list[dict[str, Any]]:
    """Table V rows for every F in ``fidelities`` (default 0.50..0.90 in 0.05 steps)."""
    rows: list[dict[str, Any]] = []
    for f in fidelities or FIDELITIES:
        for r in table5_rows(f, duration, seed, jobs, greedy=False, progress=progress):
            rows.append({"fidelity": f, **r})
    return rows


def format_sweep(rows: list[dict[str, Any]]) -> str:
    """Range of mean latency between the lowest and highest F per topology (Fig. 11)."""
    lines = [f"{'Topology':9s} {'DQP range (ms)':>22s} {'ESP range (ms)':>22s}"]
    topos = list(dict.fromkeys(r["topology"] for r in rows))
    for t in topos:
        cells = []
        for proto in ("dqp", "esp"):
            lat = [r["mean_latency_ms"] for r in rows if r["topology"] == t
                   and r["protocol"] == proto]
            cells.append(f"{min(lat):7.1f} .. {max(lat):7.1f} ({max(lat) - min(lat):6.1f})")
        lines.append(f"{t:9s} {cells[0]:>22s} {cells[1]:>22s}")
    return "\n".join(lines)


def plot_fig8(rows: list[dict[str, Any]], path: Path) -> None:
    """Mean latency against |E_Q| with least-squares lines per protocol (ESP paper Fig. 8)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fits = latency_growth(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    for proto, (m, c, r2) in fits.items():
        pts = [(r["edges"], r["mean_latency_ms"]) for r in rows if r["protocol"] == proto]
        xs, ys = zip(*pts, strict=True)
        line = ax.scatter(xs, ys, label=f"{proto.upper()}: {m:.2f} ms/edge, R$^2$={r2:.2f}", s=18)
        xx = np.linspace(min(xs), max(xs), 10)
        ax.plot(xx, m * xx + c, "--", color=line.get_facecolor()[0])
    ax.set_xlabel("edges |E_Q|")
    ax.set_ylabel("mean request latency (ms)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_fig11(rows: list[dict[str, Any]], path: Path) -> None:
    """Latency range between F = 0.5 and 0.9 per topology and protocol (ESP paper Fig. 11)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    topos = list(dict.fromkeys(r["topology"] for r in rows))
    x = np.arange(len(topos))
    fig, ax = plt.subplots(figsize=(8, 4))
    for k, proto in enumerate(("dqp", "esp")):
        ranges = []
        for t in topos:
            lat = [r["mean_latency_ms"] for r in rows if r["topology"] == t
                   and r["protocol"] == proto]
            ranges.append(max(lat) - min(lat))
        ax.bar(x + (k - 0.5) * 0.4, ranges, 0.4, label=proto.upper())
    ax.set_xticks(x, topos, rotation=45)
    ax.set_ylabel("latency range F=0.5..0.9 (ms)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
