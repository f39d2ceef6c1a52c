"""``hwctl study verification``: regenerate the pair-verification paper's Figs. 3-5.

* Fig. 3 — fidelity at verification vs classical latency for the six Table I memories
  (closed form F(t_lat + skew, t_lat), paper §III), the fitted metro latency density (pink) and the
  QKD threshold 0.81; dots are simulated mean fidelities from the two-node simulation.
* Fig. 4 — buffer size (memory slots in use) vs latency for the node pairs C-E and B-D at the
  paper's 1.3 MHz source, from the simulation, with the Little's-law line R * eta * t_lat.
* Fig. 5 — verified-pair rate vs timeout, averaged over the metro latency distribution, with the
  timeouts t(F_th) of every memory marked for F_th in {0.81, 0.9, 0.95, 0.99}.

Every simulated number comes from :mod:`hwctl.sim.verification`, i.e. from two
:class:`hwctl.protocols.verification.VerificationCore` instances exchanging real messages.
Outputs go to ``--out`` (PNG, CSV, Parquet, and ``params.json`` with parameters and code version).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwctl import argtypes
from hwctl.errors import UserError

F_THRESHOLDS = (0.81, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class StudyConfig:
    """Sizes of the verification study; :meth:`quick` is the test-sized version."""

    fig3_sim_latencies_s: tuple[float, ...] = (1e-3, 5e-3, 10e-3, 20e-3, 30e-3)
    fig4_latencies_s: tuple[float, ...] = (1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 30e-3, 50e-3)
    fig5_timeouts_s: tuple[float, ...] = tuple(float(x) for x in np.geomspace(1e-3, 1.0, 16))
    fig5_latency_quantiles: int = 10
    emit_s: float = 40e-3
    rate_hz: float = 1.3e6
    seed: int = 1

    @classmethod
    def quick(cls) -> StudyConfig:
        return cls(
            fig3_sim_latencies_s=(2e-3, 10e-3),
            fig4_latencies_s=(1e-3, 5e-3),
            fig5_timeouts_s=(2e-3, 20e-3, 200e-3),
            fig5_latency_quantiles=2,
            emit_s=4e-3,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    p = sub.add_parser(
        "verification",
        help="pair-verification paper Figs. 3-5 (fidelity, buffer size, rate vs timeout)",
        description=__doc__.splitlines()[0].replace("``", ""),  # (--help is plain text)
    )
    p.add_argument("--out", type=Path, default=Path("study-verification"),
                   help="output directory (created; default: ./study-verification)")
    p.add_argument("--quick", action="store_true",
                   help="small grids and short runs (seconds instead of minutes)")
    p.add_argument("--seed", type=argtypes.seed, default=1, help="random seed of the simulations (>= 0; default 1)")
    p.add_argument("--no-plots", action="store_true", help="write data files only")
    p.add_argument("--json", action="store_true",
                   help="print the study's figures (params.json: memories, timeouts, F at 10 ms, "
                        "Fig. 5 points) as one JSON document on stdout")


def run(args: argparse.Namespace) -> int:
    if args.study != "verification":  # pragma: no cover - argparse restricts choices
        raise UserError(f"unknown study {args.study!r}")
    cfg = StudyConfig.quick() if args.quick else StudyConfig()
    cfg = StudyConfig(**{**cfg.__dict__, "seed": args.seed})
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output directory {out}: {exc}") from None
    from hwctl.output import progress as progress_bar

    # (a bar on a terminal; redirected, a line now and then: hwctl.output.LineProgress)
    with progress_bar(True, eta=True) as progress:
        task = progress.add_task("verification study", total=None)

        def tick(total: int, label: str) -> None:
            progress.update(task, total=total, description=label)
            progress.advance(task)

        try:
            summary = run_study(cfg, out, plots=not args.no_plots, progress=tick)
        except KeyboardInterrupt:  # params.json is written last (run_study): none, incomplete
            progress.stop()
            print(f"hwctl study verification: interrupted: {out} holds an incomplete study (no "
                  f"params.json, which is written last); run the command again to regenerate "
                  f"it", file=sys.stderr)
            return 130
    if args.json:
        import json

        from hwctl.output import print_json

        print_json(json.loads((out / "params.json").read_text()))
        return 0
    for line in summary:
        print(line)
    return 0


# ------------------------------------------------------------------------------------ study


def _code_version() -> str:
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _write_table(out: Path, name: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    with open(out / f"{name}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {h: [r[i] for r in rows] for i, h in enumerate(header)}
    pq.write_table(pa.table(cols), out / f"{name}.parquet")


def run_study(
    cfg: StudyConfig,
    out: Path,
    plots: bool = True,
    progress: Callable[[int, str], None] | None = None,
) -> list[str]:
    """Run all three figures; write data (+ plots) into ``out``; return summary lines."""
    from hwctl import __version__
    from hwctl.physics import memory as mem
    from hwctl.physics.latency import DUBLIN_Q1_2024 as LAT
    from hwctl.physics.loss import PATHS
    from hwctl.sim.verification import Scenario, simulate

    t0 = time.perf_counter()
    # an earlier study's params.json goes first: until this one writes its own (last), the
    # directory's mix of new and old figure files is not taken for a finished study
    (out / "params.json").unlink(missing_ok=True)
    ce = PATHS["C-E"]
    mems = mem.TABLE_I
    n_q = cfg.fig5_latency_quantiles
    lat_q = [LAT.quantile((i + 0.5) / n_q) for i in range(n_q)]
    # memories that verify at all at a latency: others give no fidelity points
    fig3_jobs = [(m, L) for m in mems for L in cfg.fig3_sim_latencies_s if mem.timeout(m, 0.5, ce.skew) > L]
    fig5_points = [(m, f) for m in mems for f in F_THRESHOLDS]
    total = len(fig3_jobs) + 2 * len(cfg.fig4_latencies_s) + n_q * (len(cfg.fig5_timeouts_s) + len(fig5_points))
    done = 0

    def step(label: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(total, label)

    base = dict(rate_hz=cfg.rate_hz, emit_s=cfg.emit_s, seed=cfg.seed)

    # ---- Fig. 3: closed form + simulated dots
    lat = np.linspace(0.0, 50e-3, 501)
    f3 = {m.short: np.asarray(mem.fidelity(m, lat + ce.skew, lat)) for m in mems}
    _write_table(out, "fig3_fidelity_vs_latency", ["latency_s", "latency_pdf", *f3],
                 [[float(lat[i]), float(LAT.pdf(lat[i : i + 1])[0]), *(float(f3[k][i]) for k in f3)]
                  for i in range(lat.size)])
    rows3 = []
    for m, L in fig3_jobs:
        r = simulate(Scenario(memory=m, f_th=0.5, pair=ce, latency_s=L, **base))
        rows3.append([m.short, L, r.fidelity_mean, float(mem.fidelity(m, L + ce.skew, L)), r.verified_pairs])
        step(f"Fig. 3 {m.short} {L * 1e3:.0f} ms")
    _write_table(out, "fig3_sim_points",
                 ["memory", "latency_s", "fidelity_sim", "fidelity_closed_form", "pairs"], rows3)

    # ---- Fig. 4: buffer occupancy vs latency (no timeouts: Yb+ ion memory)
    yb = mems[0]
    rows4 = []
    for name, pair in PATHS.items():
        for L in cfg.fig4_latencies_s:
            sc = Scenario(memory=yb, pair=pair, latency_s=L, **{**base, "emit_s": max(cfg.emit_s, 3 * L, 10e-3)})
            r = simulate(sc)
            for node, path, st in (("a", pair.a, r.nodes[0]), ("b", pair.b, r.nodes[1])):
                little = cfg.rate_hz * path.eta * (L + 0.5 * sc.report_interval_s + 0.5 * sc.chunk_s)
                rows4.append([name, node, L, st.occupancy_mean, st.occupancy_p99, st.occupancy_max, little,
                              st.messages, st.bytes_sent])
            step(f"Fig. 4 {name} {L * 1e3:.0f} ms")
    _write_table(out, "fig4_buffer_vs_latency",
                 ["node_pair", "node", "latency_s", "occupancy_mean", "occupancy_p99", "occupancy_max",
                  "littles_law", "messages", "bytes_sent"], rows4)

    # ---- Fig. 5: rate vs timeout over the latency distribution
    def ensemble(tau: float, m: mem.Memory, label: str) -> tuple[float, float]:
        rates, fids = [], []
        for L in lat_q:
            r = simulate(Scenario(memory=m, timeout_s=tau, pair=ce, latency_s=L, **base))
            rates.append(r.rate_hz)
            if r.verified_pairs:
                fids.append(r.fidelity_mean)
            step(label)
        return float(np.mean(rates)), float(np.mean(fids)) if fids else float("nan")

    rows5 = []
    for tau in cfg.fig5_timeouts_s:
        rate, _ = ensemble(tau, yb, f"Fig. 5 tau={tau * 1e3:.1f} ms")
        rows5.append([tau, rate])
    _write_table(out, "fig5_rate_vs_timeout", ["timeout_s", "rate_hz"], rows5)
    rows5p = []
    for m, f in fig5_points:
        tau = mem.timeout(m, f, ce.skew)
        rate, fid = ensemble(tau, m, f"Fig. 5 {m.short} F>={f}")
        rows5p.append([m.short, f, tau, rate, fid])
    _write_table(out, "fig5_memory_points",
                 ["memory", "f_th", "timeout_s", "rate_hz", "fidelity_mean"], rows5p)

    params = {
        "study": "verification",
        "hwctl_version": __version__,
        "code_version": _code_version(),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()},
        "latency_model": {"kind": "shifted-lognormal", "loc_s": LAT.loc, "mu": LAT.mu, "sigma": LAT.sigma,
                          "median_s": LAT.median, "p95_s": LAT.quantile(0.95)},
        "latency_quantiles_s": lat_q,
        "paths": {k: {"a_km": p.a.length_km, "a_nodes": p.a.intermediate_nodes, "b_km": p.b.length_km,
                      "b_nodes": p.b.intermediate_nodes, "eta_a": p.a.eta, "eta_b": p.b.eta,
                      "skew_s": p.skew} for k, p in PATHS.items()},
        "memories": [{"name": m.name, "short": m.short, "t1_s": m.t1, "t2_s": m.t2,
                      "timeout_f081_s": mem.timeout(m, 0.81, ce.skew),
                      "f_at_10ms": float(mem.fidelity(m, 10e-3 + ce.skew, 10e-3))} for m in mems],
        "fig5_memory_points": [dict(zip(["memory", "f_th", "timeout_s", "rate_hz", "fidelity_mean"],
                                        [r[0], *map(float, r[1:])], strict=True)) for r in rows5p],
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    if plots:
        _plots(out, lat, f3, LAT, rows3, rows4, rows5, rows5p)
    # last: a directory with params.json holds a whole study (an interrupted one has none)
    (out / "params.json").write_text(json.dumps(params, indent=2))

    summary = [wrote_line(out, plots, params["wall_s"])]
    for m in mems:
        f10 = float(mem.fidelity(m, 10e-3 + ce.skew, 10e-3))
        summary.append(f"  {m.short:11s} F(10 ms) = {f10:.4f} {'>= 0.81' if f10 >= 0.81 else '<  0.81'}"
                       f"   timeout(F=0.81) = {mem.timeout(m, 0.81, ce.skew):.4g} s")
    return summary


def wrote_line(out: Path, plots: bool, wall_s: float) -> str:
    """The summary's first line: what was written where."""
    kinds = ".png .csv .parquet" if plots else ".csv .parquet"
    return f"wrote {out}/ (fig3/4/5 {kinds}, params.json) in {wall_s} s"


def _plots(out: Path, lat, f3, LAT, rows3, rows4, rows5, rows5p) -> None:  # noqa: ANN001
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwctl.physics import memory as mem

    names = {m.short: m.name for m in mem.TABLE_I}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, f in f3.items():
        (line,) = ax.plot(lat * 1e3, f, label=names[k])
        pts = [(r[1], r[2]) for r in rows3 if r[0] == k]
        if pts:
            ax.plot([p[0] * 1e3 for p in pts], [p[1] for p in pts], "o", color=line.get_color(), ms=4)
    ax.axhline(mem.F_QKD, color="k", ls="--", lw=1, label="QKD threshold 0.81")
    ax.set_xlabel("classical latency t_lat (ms)")
    ax.set_ylabel("fidelity at verification")
    ax.set_ylim(0, 1.02)
    ax2 = ax.twinx()
    ax2.fill_between(lat * 1e3, LAT.pdf(lat), color="pink", alpha=0.5)
    ax2.set_ylabel("latency density (1/s), Dublin metro fit")
    ax2.set_ylim(bottom=0)
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("Fig. 3: fidelity vs latency (lines: closed form, dots: simulation)")
    fig.tight_layout()
    fig.savefig(out / "fig3_fidelity_vs_latency.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for pair in sorted({r[0] for r in rows4}):
        for node in ("a", "b"):
            rs = [r for r in rows4 if r[0] == pair and r[1] == node]
            x = [r[2] * 1e3 for r in rs]
            (line,) = ax.plot(x, [r[3] for r in rs], "o-", label=f"{pair} node {node.upper()} (mean)")
            ax.plot(x, [r[5] for r in rs], "^:", color=line.get_color(), ms=4)
            ax.plot(x, [r[6] for r in rs], "-", color=line.get_color(), lw=0.5)
    ax.set_xlabel("classical latency t_lat (ms)")
    ax.set_ylabel("buffer size (memory slots in use)")
    ax.set_title("Fig. 4: buffer vs latency, 1.3 MHz (▲ max, thin: R·η·t)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fig4_buffer_vs_latency.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.semilogx([r[0] for r in rows5], [r[1] for r in rows5], "k-", lw=1, label="rate(timeout), metro latency")
    markers = dict(zip(F_THRESHOLDS, "os^D", strict=True))
    for f in F_THRESHOLDS:
        rs = [r for r in rows5p if r[1] == f and r[2] > 0]
        ax.semilogx([r[2] for r in rs], [r[3] for r in rs], markers[f], ls="", label=f"memories at F_th={f}")
        for r in rs:
            ax.annotate(r[0], (r[2], r[3]), fontsize=5, xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel("timeout (s)")
    ax.set_ylabel("verified pairs per second (C-E)")
    ax.set_title("Fig. 5: verified-pair rate vs timeout")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "fig5_rate_vs_timeout.png", dpi=120)
    plt.close(fig)


