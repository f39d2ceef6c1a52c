"""``hwctl report``: the ESP paper's Table V and Figs. 6-11 from a ``hwctl sweep`` dataset, with the
mean and a 95 % confidence interval over replicates.

Outputs (in ``--out``, default ``DIR/report``), each figure as PNG plus the CSV of what it plots:

- ``table5.md`` / ``table5.csv``: Table V at F = 0.75 (``--fidelity``): per topology and protocol
  mean latency L (eq. 3), jitter J (eq. 4), scaled throughput T (eq. 6), messages per request, with
  95 % CIs; ESP's paired difference to the centralized greedy scheduler; the provable lower bound of
  :mod:`hwctl.sim.bound`.
- ``fig6``: scaled throughput T per topology (§VI-C, Fig. 6).
- ``fig7``: scaled latency SL (eq. 5) over time on 2x2, rolling mean k = 256 (Fig. 7).
- ``fig8`` / ``fig9``: mean latency / jitter against |E_Q| with least-squares lines and slopes
  (with 95 % CIs of the slopes) per protocol (Figs. 8, 9).
- ``fig10``: ESP's latency difference to DQP in %, by matching number nu(G) (Fig. 10).
- ``fig11``: latency range between the lowest and highest F per topology (Fig. 11).
- ``bound.csv``: every cell against the lower bound.
- ``index.md``: one page with the table, the figures, the fits and the bound check.

Confidence intervals: Student t over the N replicates (each replicate's run gives one value per
metric), mean +- t_{0.975, N-1} s / sqrt(N); with one replicate the CI is not defined and shown as
"n/a". Differences (ESP vs greedy, ESP vs DQP) are paired by replicate: replicate r of every
protocol uses the same seed.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwctl import argtypes
from hwctl.errors import UserError

PROTO_ORDER = ("dqp", "esp", "greedy")
LABEL = {"dqp": "DQP", "esp": "ESP", "greedy": "Greedy (zero delay)"}
ROLLING_K = 256  # Fig. 7


@dataclass(frozen=True)
class Stat:
    mean: float
    half: float  # 95 % CI half-width (nan with one replicate)
    n: int

    def fmt(self, digits: int = 2) -> str:
        if math.isnan(self.mean):
            return "n/a"
        if math.isnan(self.half):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.half:.{digits}f}"


def stat(values: Sequence[float]) -> Stat:
    """Mean and 95 % Student-t half-width of ``values``."""
    import numpy as np
    from scipy import stats as sst

    xs = np.array([v for v in values if not math.isnan(v)], dtype=float)
    n = len(xs)
    if n == 0:
        return Stat(math.nan, math.nan, 0)
    if n == 1:
        return Stat(float(xs[0]), math.nan, 1)
    half = float(sst.t.ppf(0.975, n - 1) * xs.std(ddof=1) / math.sqrt(n))
    return Stat(float(xs.mean()), half, n)


# ------------------------------------------------------------------------------------------------
# loading

def load_runs(sweep_dir: Path) -> list[dict[str, Any]]:
    import pyarrow.dataset as ds

    require_dataset(sweep_dir)
    return ds.dataset(Path(sweep_dir) / "runs", format="parquet").to_table().to_pylist()


def require_dataset(sweep_dir: Path) -> None:
    """A UserError unless ``sweep_dir`` holds a sweep dataset (``runs/*.parquet``)."""
    runs = Path(sweep_dir) / "runs"
    if Path(sweep_dir).is_file():
        raise UserError(f"{sweep_dir}: no sweep dataset here: a file, not a `hwctl sweep --out` "
                        "directory (a single `hwctl sim --out` run has no replicates to report; "
                        "run `hwctl sweep --out DIR` first)")
    if not runs.is_dir() or not any(runs.glob("*.parquet")):
        here = Path(sweep_dir)
        if here.name == "runs" and (here.parent / "sweep.json").exists() or (
                here.name in ("runs", "requests") and any(here.glob("*__*.parquet"))):
            raise UserError(f"{sweep_dir}: this is a sweep dataset's {here.name} folder; give "
                            f"the dataset directory: hwctl report {here.parent}")
        if (here / "requests.parquet").exists() or any(here.glob("*.journal.jsonl")):
            raise UserError(f"{sweep_dir}: a demo or node output (requests.parquet), not a sweep "
                            "dataset: its figures are in the command's summary (and demo.png); "
                            "`hwctl export FILE.parquet --hdf5` converts a run file. `hwctl "
                            "report` reads `hwctl sweep --out DIR`")
        raise UserError(f"{sweep_dir}: no sweep dataset here (expected {runs}/*.parquet; "
                        "run `hwctl sweep --out DIR` first)")


def incomplete(sweep_dir: Path) -> str | None:
    """Why the dataset is not a finished sweep, or None: ``sweep.json`` says the last ``hwctl
    sweep`` into it did not finish (Ctrl-C, a lost worker) and some of its runs are missing.
    (A dataset without ``sweep.json``, or from a sweep that finished, says nothing.)"""
    import json

    from hwctl.sweep import pending, plan

    try:
        m = json.loads((Path(sweep_dir) / "sweep.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or m.get("complete", True):
        return None
    try:
        specs = plan(m["topologies"], m["fidelities"], m["protocols"], m["replicates"],
                     m["base_seed"], m["duration_s"], version="")
    except (KeyError, TypeError, ValueError, UserError):
        return None
    missing = len(pending(specs, Path(sweep_dir)))
    if not missing:
        return None
    return (f"incomplete dataset: the last `hwctl sweep` into it stopped with "
            f"{len(specs) - missing} of its {len(specs)} runs done; the tables and figures use "
            f"the runs that are there (finish it with: {m.get('command', 'the same command')})")


class Grid:
    """Runs indexed by (topology, protocol, fidelity) -> {replicate: row}."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.cells: dict[tuple[str, str, float], dict[int, dict[str, Any]]] = defaultdict(dict)
        for r in rows:
            self.cells[r["topology"], r["protocol"], r["fidelity"]][r["replicate"]] = r
        self.topologies = _topology_order({r["topology"] for r in rows})
        self.protocols = [p for p in PROTO_ORDER if any(r["protocol"] == p for r in rows)]
        self.fidelities = sorted({r["fidelity"] for r in rows})
        self.info = {r["topology"]: (r["nodes"], r["edges"], r["matching_number"]) for r in rows}
        self.versions = sorted({r["code_version"] for r in rows})
        self.durations = sorted({r["duration_s"] for r in rows})

    def values(self, topo: str, proto: str, f: float, metric: str) -> dict[int, float]:
        return {k: float(r[metric]) for k, r in self.cells.get((topo, proto, f), {}).items()}

    def stat(self, topo: str, proto: str, f: float, metric: str) -> Stat:
        return stat(list(self.values(topo, proto, f, metric).values()))

    def paired(self, topo: str, a: str, b: str, f: float, metric: str = "mean_latency_ms") -> Stat:
        """(a / b - 1) * 100 per replicate present in both, then mean and CI."""
        va, vb = self.values(topo, a, f, metric), self.values(topo, b, f, metric)
        return stat([(va[k] / vb[k] - 1) * 100 for k in sorted(va.keys() & vb.keys())])

    def has(self, topo: str, proto: str, f: float) -> bool:
        return (topo, proto, f) in self.cells


def _topology_order(names: set[str]) -> list[str]:
    from hwctl.sim.topologies import PAPER_TOPOLOGIES

    paper = [t for t in PAPER_TOPOLOGIES if t in names]
    return paper + sorted(names - set(paper))


def _nearest(values: Sequence[float], target: float) -> float:
    return min(values, key=lambda v: abs(v - target))


# ------------------------------------------------------------------------------------------------
# Table V and the bound

def _bound_ms(topo: str, f: float) -> float:
    from hwctl.sim.bound import latency_lower_bound
    from hwctl.sweep import _graph, _matching_number

    return latency_lower_bound(_graph(topo), f,
                               matching_number=_matching_number(topo)).latency_s * 1e3


def table5(grid: Grid, f: float) -> tuple[list[str], list[list[str]], list[dict[str, Any]]]:
    """Markdown header, markdown rows and CSV records of Table V at fidelity ``f``."""
    head = ["Topology", "\\|E\\|", "ν", "Protocol", "Mean L (ms)", "Jitter J (ms)",
            "T (pairs/edge/s)", "Msgs/request", "Requests", "L vs greedy (%)", "Bound (ms)"]
    md: list[list[str]] = []
    recs: list[dict[str, Any]] = []
    for t in grid.topologies:
        if not any(grid.has(t, p, f) for p in grid.protocols):
            continue
        _, e, nu = grid.info[t]
        bound = _bound_ms(t, f)
        first = True
        for p in grid.protocols:
            if not grid.has(t, p, f):
                continue
            lat, jit = grid.stat(t, p, f, "mean_latency_ms"), grid.stat(t, p, f, "jitter_ms")
            thr = grid.stat(t, p, f, "throughput_per_edge_s")
            msg = grid.stat(t, p, f, "messages_per_request")
            req = grid.stat(t, p, f, "requests")
            vs = (grid.paired(t, p, "greedy", f) if p != "greedy" and grid.has(t, "greedy", f)
                  else Stat(math.nan, math.nan, 0))
            md.append([t if first else "", str(e) if first else "", str(nu) if first else "",
                       LABEL[p], lat.fmt(), jit.fmt(), thr.fmt(), msg.fmt(), f"{req.mean:.0f}",
                       vs.fmt(1) if p != "greedy" else "", f"{bound:.2f}" if first else ""])
            first = False
            recs.append({"topology": t, "edges": e, "matching_number": nu, "protocol": p,
                         "fidelity": f, "replicates": lat.n,
                         "mean_latency_ms": lat.mean, "mean_latency_ci95": lat.half,
                         "jitter_ms": jit.mean, "jitter_ci95": jit.half,
                         "throughput_per_edge_s": thr.mean, "throughput_ci95": thr.half,
                         "messages_per_request": msg.mean, "messages_per_request_ci95": msg.half,
                         "requests": req.mean, "vs_greedy_pct": vs.mean,
                         "vs_greedy_ci95": vs.half, "lower_bound_ms": bound})
    return head, md, recs


def bound_check(grid: Grid) -> list[dict[str, Any]]:
    """Every (topology, F, protocol) cell against the lower bound."""
    out = []
    for t in grid.topologies:
        for f in grid.fidelities:
            if not any(grid.has(t, p, f) for p in grid.protocols):
                continue
            b = _bound_ms(t, f)
            for p in grid.protocols:
                if not grid.has(t, p, f):
                    continue
                s = grid.stat(t, p, f, "mean_latency_ms")
                upper = s.mean + (0.0 if math.isnan(s.half) else s.half)
                out.append({"topology": t, "fidelity": f, "protocol": p, "replicates": s.n,
                            "mean_latency_ms": s.mean, "ci95": s.half, "lower_bound_ms": b,
                            "ratio_to_bound": s.mean / b,
                            "below_bound_beyond_ci": bool(upper < b) and s.n > 1})
    return out


# ------------------------------------------------------------------------------------------------
# figures

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _write_csv(path: Path, records: list[dict[str, Any]]) -> None:
    if not records:
        path.write_text("")
        return
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(records[0]))
        w.writeheader()
        for r in records:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def _err(s: Stat) -> float:
    return 0.0 if math.isnan(s.half) else s.half


def fig6(grid: Grid, f: float, out: Path) -> list[dict[str, Any]]:
    import numpy as np

    plt = _plt()
    topos = [t for t in grid.topologies if any(grid.has(t, p, f) for p in grid.protocols)]
    recs = []
    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(topos))
    w = 0.8 / len(grid.protocols)
    for k, p in enumerate(grid.protocols):
        ss = [grid.stat(t, p, f, "throughput_per_edge_s") for t in topos]
        ax.bar(x + (k - (len(grid.protocols) - 1) / 2) * w, [s.mean for s in ss], w,
               yerr=[_err(s) for s in ss], label=LABEL[p], capsize=2)
        recs += [{"topology": t, "protocol": p, "fidelity": f, "throughput_per_edge_s": s.mean,
                  "ci95": s.half, "replicates": s.n} for t, s in zip(topos, ss, strict=True)]
    ax.set_xticks(x, topos, rotation=45)
    ax.set_ylabel("scaled throughput T (pairs / edge / s)")
    ax.set_title(f"Fig. 6: scaled throughput, F = {f:g}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "fig6.png", dpi=120)
    plt.close(fig)
    _write_csv(out / "fig6.csv", recs)
    return recs


def fig7(sweep_dir: Path, grid: Grid, f: float, out: Path, topo: str = "2x2"
         ) -> list[dict[str, Any]] | None:
    """SL over time with a rolling mean of k = 256 requests (replicate 0 of each protocol)."""
    import numpy as np
    import pyarrow.dataset as ds

    req_dir = Path(sweep_dir) / "requests"
    if not req_dir.is_dir() or not any(req_dir.glob("*.parquet")):
        return None
    dset = ds.dataset(req_dir, format="parquet")
    rep0 = min((r["replicate"] for r in grid.rows), default=0)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    recs: list[dict[str, Any]] = []
    for p in grid.protocols:
        filt = ((ds.field("topology") == topo) & (ds.field("protocol") == p)
                & (ds.field("fidelity") == f) & (ds.field("replicate") == rep0))
        tab = dset.to_table(filter=filt, columns=["t_request_s", "t_finish_s", "pairs"])
        if tab.num_rows == 0:
            continue
        t_fin = tab["t_finish_s"].to_numpy(zero_copy_only=False)
        done = ~np.isnan(t_fin)
        order = np.argsort(t_fin[done], kind="stable")
        t_done = t_fin[done][order]
        sl = ((t_fin - tab["t_request_s"].to_numpy(zero_copy_only=False))[done][order]
              / tab["pairs"].to_numpy(zero_copy_only=False)[done][order]) * 1e3
        if len(sl) < ROLLING_K:
            continue
        roll = np.convolve(sl, np.ones(ROLLING_K) / ROLLING_K, mode="valid")
        tt = t_done[ROLLING_K - 1:]
        ax.plot(tt, roll, lw=0.8, label=f"{LABEL[p]} (mean SL {sl.mean():.2f} ms)")
        step = max(1, len(roll) // 2000)  # the CSV keeps at most ~2000 points per protocol
        recs += [{"protocol": p, "t_s": float(a), "rolling_sl_ms": float(b)}
                 for a, b in zip(tt[::step], roll[::step], strict=True)]
    if not recs:
        plt.close(fig)
        return None
    ax.set_xlabel("simulated time (s), at request completion")
    ax.set_ylabel(f"scaled latency SL (ms), rolling mean k = {ROLLING_K}")
    ax.set_title(f"Fig. 7: {topo}, F = {f:g}, replicate {rep0}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "fig7.png", dpi=120)
    plt.close(fig)
    _write_csv(out / "fig7.csv", recs)
    return recs


@dataclass(frozen=True)
class Fit:
    slope: float
    slope_ci95: float
    intercept: float
    r2: float
    points: int


def linfit(xs: Sequence[float], ys: Sequence[float]) -> Fit:
    """Least squares y = m x + c with the 95 % CI of m (t with n - 2 degrees of freedom)."""
    import numpy as np
    from scipy import stats as sst

    x, y = np.asarray(xs, float), np.asarray(ys, float)
    n = len(x)
    if n < 2 or np.ptp(x) == 0:
        return Fit(math.nan, math.nan, math.nan, math.nan, n)
    res = sst.linregress(x, y)
    half = float(sst.t.ppf(0.975, n - 2) * res.stderr) if n > 2 else math.nan
    return Fit(float(res.slope), half, float(res.intercept), float(res.rvalue**2), n)


def fig_vs_edges(grid: Grid, f: float, metric: str, ylabel: str, name: str, title: str,
                 out: Path) -> dict[str, Fit]:
    """Figs. 8 and 9: a metric against |E_Q| with a regression line per protocol."""
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    fits: dict[str, Fit] = {}
    recs = []
    for p in grid.protocols:
        pts = []
        for t in grid.topologies:
            if grid.has(t, p, f):
                s = grid.stat(t, p, f, metric)
                pts.append((grid.info[t][1], s, t))
        if not pts:
            continue
        xs = [e for e, _, _ in pts]
        ys = [s.mean for _, s, _ in pts]
        fit = linfit(xs, ys)
        fits[p] = fit
        sc = ax.errorbar(xs, ys, yerr=[_err(s) for _, s, _ in pts], fmt="o", ms=4, capsize=2,
                         label=f"{LABEL[p]}: {fit.slope:.2f} ± {fit.slope_ci95:.2f} ms/edge, "
                               f"R² {fit.r2:.2f}")
        if not math.isnan(fit.slope):
            xx = np.linspace(min(xs), max(xs), 10)
            ax.plot(xx, fit.slope * xx + fit.intercept, "--", color=sc[0].get_color())
        recs += [{"protocol": p, "topology": t, "edges": e, "fidelity": f, metric: s.mean,
                  "ci95": s.half, "fit_slope": fit.slope, "fit_slope_ci95": fit.slope_ci95,
                  "fit_intercept": fit.intercept, "fit_r2": fit.r2} for e, s, t in pts]
    ax.set_xlabel("edges |E_Q|")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=120)
    plt.close(fig)
    _write_csv(out / f"{name}.csv", recs)
    return fits


def fig10(grid: Grid, f: float, out: Path) -> list[dict[str, Any]]:
    """ESP's mean-latency difference to DQP (%), paired by replicate, grouped by nu(G)."""
    plt = _plt()
    recs = []
    for t in grid.topologies:
        if grid.has(t, "esp", f) and grid.has(t, "dqp", f):
            s = grid.paired(t, "esp", "dqp", f)
            recs.append({"topology": t, "matching_number": grid.info[t][2], "fidelity": f,
                         "esp_vs_dqp_pct": s.mean, "ci95": s.half, "replicates": s.n})
    if not recs:
        return recs
    recs.sort(key=lambda r: (r["matching_number"], r["esp_vs_dqp_pct"]))
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = range(len(recs))
    colors = [f"C{r['matching_number'] % 10}" for r in recs]
    ax.bar(xs, [r["esp_vs_dqp_pct"] for r in recs], color=colors,
           yerr=[0 if math.isnan(r["ci95"]) else r["ci95"] for r in recs], capsize=2)
    ax.set_xticks(list(xs), [f"{r['topology']}\nν={r['matching_number']}" for r in recs],
                  fontsize=7)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("ESP vs DQP mean latency (%)")
    ax.set_title(f"Fig. 10: by matching number ν(G), F = {f:g}")
    fig.tight_layout()
    fig.savefig(out / "fig10.png", dpi=120)
    plt.close(fig)
    _write_csv(out / "fig10.csv", recs)
    return recs


def fig11(grid: Grid, out: Path) -> list[dict[str, Any]]:
    """Latency range max_F L - min_F L per topology and protocol, per replicate then mean/CI."""
    import numpy as np

    if len(grid.fidelities) < 2:
        return []
    plt = _plt()
    recs = []
    for t in grid.topologies:
        for p in ("dqp", "esp"):
            per_rep: dict[int, list[float]] = defaultdict(list)
            for f in grid.fidelities:
                for k, v in grid.values(t, p, f, "mean_latency_ms").items():
                    per_rep[k].append(v)
            ranges = [max(v) - min(v) for v in per_rep.values() if len(v) == len(grid.fidelities)]
            if ranges:
                s = stat(ranges)
                recs.append({"topology": t, "protocol": p, "f_min": grid.fidelities[0],
                             "f_max": grid.fidelities[-1], "range_ms": s.mean, "ci95": s.half,
                             "replicates": s.n})
    if not recs:
        return recs
    topos = list(dict.fromkeys(r["topology"] for r in recs))
    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(topos))
    for k, p in enumerate(("dqp", "esp")):
        by = {r["topology"]: r for r in recs if r["protocol"] == p}
        ax.bar(x + (k - 0.5) * 0.4, [by[t]["range_ms"] if t in by else 0 for t in topos], 0.4,
               yerr=[0 if t not in by or math.isnan(by[t]["ci95"]) else by[t]["ci95"]
                     for t in topos], capsize=2, label=LABEL[p])
    ax.set_xticks(x, topos, rotation=45)
    ax.set_yscale("log")
    ax.set_ylabel(f"latency range F = {grid.fidelities[0]:g}..{grid.fidelities[-1]:g} (ms)")
    ax.set_title("Fig. 11: latency range over fidelity")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "fig11.png", dpi=120)
    plt.close(fig)
    _write_csv(out / "fig11.csv", recs)
    return recs


# ------------------------------------------------------------------------------------------------
# the whole report

def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def make_report(sweep_dir: Path, out: Path, fidelity: float = 0.75,
                drawn: list[str] | None = None) -> Path:
    """Write every table, figure, data file and the index page; return the index path."""
    grid = Grid(load_runs(sweep_dir))
    out.mkdir(parents=True, exist_ok=True)
    f = _nearest(grid.fidelities, fidelity)
    if abs(f - fidelity) > 1e-9:  # said, not silently swapped (the page names F too)
        import sys

        print(f"hwctl report: F = {fidelity:g} is not in the dataset "
              f"({', '.join(f'{x:g}' for x in grid.fidelities)}); Table V and Figs. 6-10 use the "
              f"nearest, F = {f:g}", file=sys.stderr)
    reps = sorted({r["replicate"] for r in grid.rows})
    head, md_rows, recs = table5(grid, f)
    table_md = _md_table(head, md_rows)
    (out / "table5.md").write_text(f"Table V, F = {f:g}: mean ± 95 % CI over {len(reps)} "
                                   f"replicate(s)\n\n{table_md}\n")
    _write_csv(out / "table5.csv", recs)
    fig6(grid, f, out)
    has7 = fig7(sweep_dir, grid, f, out) is not None
    fits8 = fig_vs_edges(grid, f, "mean_latency_ms", "mean request latency L (ms)", "fig8",
                         f"Fig. 8: mean latency vs |E_Q|, F = {f:g}", out)
    fits9 = fig_vs_edges(grid, f, "jitter_ms", "mean request jitter J (ms)", "fig9",
                         f"Fig. 9: jitter vs |E_Q|, F = {f:g}", out)
    has10 = bool(fig10(grid, f, out))
    has11 = bool(fig11(grid, out))
    checks = bound_check(grid)
    _write_csv(out / "bound.csv", checks)

    partial = incomplete(sweep_dir)
    if partial:
        import sys

        print(f"hwctl report: {partial}", file=sys.stderr)
    lines = [f"# ESP evaluation report ({sweep_dir})", "",
             *([f"**{partial}**", ""] if partial else []),
             f"{len(grid.rows)} runs: {len(grid.topologies)} topologies x "
             f"{len(grid.fidelities)} fidelities ({', '.join(f'{x:g}' for x in grid.fidelities)}) "
             f"x {', '.join(LABEL[p] for p in grid.protocols)} x {len(reps)} replicate(s); "
             f"{', '.join(f'{d:g}' for d in grid.durations)} s simulated per run; code "
             f"{', '.join(grid.versions)}.", "",
             "Mean ± 95 % confidence interval (Student t over replicates; 'n/a' or no ± with one "
             "replicate). 'L vs greedy' is the paired difference to the centralized greedy "
             "scheduler with zero control delay (a reference, not a bound). 'Bound' is the "
             "provable lower bound on the long-run mean latency of any scheduler "
             "(sim/bound.py, docs/esp-scale.md).", "",
             f"## Table V (F = {f:g}) — [csv](table5.csv)", "", table_md, ""]
    if any(math.isnan(fit.slope) for fit in [*fits8.values(), *fits9.values()]):
        # one |E| in the dataset: no line to fit (not a row of 'nan ± nan')
        lines.append("- latency and jitter growth: not fitted (the dataset needs topologies with "
                     "two or more different numbers of edges)")
        fits8 = {p: fit for p, fit in fits8.items() if not math.isnan(fit.slope)}
        fits9 = {p: fit for p, fit in fits9.items() if not math.isnan(fit.slope)}
    def pm(ci: float) -> str:  # two |E| values: a line through two points has no CI
        return " (no CI: two edge counts)" if math.isnan(ci) else f" ± {ci:.2f}"

    for p, fit in fits8.items():
        lines.append(f"- latency growth {LABEL[p]}: {fit.slope:.2f}{pm(fit.slope_ci95)} ms per "
                     f"edge, intercept {fit.intercept:.2f} ms, R² {fit.r2:.2f}")
    if "dqp" in fits8 and "esp" in fits8 and fits8["esp"].slope > 0:
        lines.append(f"- DQP/ESP latency-growth ratio: {fits8['dqp'].slope / fits8['esp'].slope:.1f}x "
                     "(paper: about sixfold)")
    for p, fit in fits9.items():
        lines.append(f"- jitter growth {LABEL[p]}: {fit.slope:.2f}{pm(fit.slope_ci95)} ms per "
                     f"edge, intercept {fit.intercept:.2f} ms, R² {fit.r2:.2f}")
    lines.append("")
    figs = [("fig6", "Fig. 6: scaled throughput", True, ""), ("fig7", "Fig. 7: scaled latency "
            f"over time, rolling mean k = {ROLLING_K}", has7, "it needs per-request rows of 2x2 "
            "runs (`hwctl sweep` with 2x2 among --topologies, without --no-requests)"),
            ("fig8", "Fig. 8: mean latency vs |E_Q|", True, ""),
            ("fig9", "Fig. 9: jitter vs |E_Q|", True, ""),
            ("fig10", "Fig. 10: ESP vs DQP by matching number", has10, f"it needs DQP and ESP "
             f"runs of the same topologies at F = {f:g}"),
            ("fig11", "Fig. 11: latency range over fidelity", has11, "it needs two or more "
             "fidelities")]
    for name, title, ok, why in figs:
        if ok:
            lines += [f"## {title} — [data]({name}.csv)", "", f"![{title}]({name}.png)", ""]
            if drawn is not None:
                drawn.append(name)
        else:
            lines += [f"## {title}", "", f"not drawn: {why}", ""]
            for ext in ("png", "csv"):  # an earlier report's, from another dataset
                (out / f"{name}.{ext}").unlink(missing_ok=True)
    below = [c for c in checks if c["below_bound_beyond_ci"]]
    lines += ["## Lower-bound check — [csv](bound.csv)", ""]
    for p in grid.protocols:
        mine = [c for c in checks if c["protocol"] == p]
        if mine:
            lo = min(mine, key=lambda c: c["ratio_to_bound"])
            hi = max(mine, key=lambda c: c["ratio_to_bound"])
            lines.append(f"- {LABEL[p]}: mean latency / bound from {lo['ratio_to_bound']:.3f} "
                         f"({lo['topology']}, F = {lo['fidelity']:g}) to "
                         f"{hi['ratio_to_bound']:.3f} ({hi['topology']}, F = {hi['fidelity']:g})")
    multi = [c for c in checks if c["replicates"] > 1]
    if multi:
        lines.append(f"- cells whose whole 95 % CI lies below the bound: {len(below)} of the "
                     f"{len(multi)} cells with 2 or more replicates" + (": " + ", ".join(
                         f"{c['protocol']} {c['topology']} F={c['fidelity']:g}" for c in below)
                         if below else ""))
    else:
        lines.append("- one replicate: single runs fall below the bound by noise where it is "
                     "tight (K2, stars at high F); run with --replicates to test it")
    lines.append("")
    index = out / "index.md"
    index.write_text("\n".join(lines))
    return index


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep_dir", type=Path, help="a `hwctl sweep --out` directory")
    p.add_argument("--out", type=argtypes.out_dir, help="report directory: index.md, table5.md/.csv, figN.png with the "
                        "data of each figure as CSV (default SWEEP_DIR/report)")
    p.add_argument("--fidelity", type=argtypes.fidelity, default=0.75,
                   help="F of Table V and Figs. 6-10 (nearest in the dataset; default 0.75)")


def run(args: argparse.Namespace) -> int:
    require_dataset(args.sweep_dir)  # first: `hwctl report run.parquet` is not an --out mistake
    out = args.out or args.sweep_dir / "report"
    for sub in ("runs", "requests"):  # its files there would be read as (damaged) runs
        folder = (Path(args.sweep_dir) / sub).resolve()
        if Path(out).resolve() == folder or folder in Path(out).resolve().parents:
            raise UserError(f"--out {str(out)!r} is inside the dataset's {sub} folder; the "
                            f"report goes beside it (default {args.sweep_dir}/report)")
    try:  # before the dataset is read and the figures drawn
        argtypes.check_out_path(out, "--out", directory=True)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    import pyarrow as pa

    try:
        drawn: list[str] = []
        index = make_report(args.sweep_dir, out, args.fidelity, drawn=drawn)
    except pa.ArrowException as exc:  # a damaged file (a disk that filled, a copy cut short)
        raise UserError(f"{args.sweep_dir}: a dataset file cannot be read ({exc}): run the "
                        f"same `hwctl sweep` again, which recomputes damaged and missing runs "
                        f"only") from None
    print(f"report written: {index} (table5.md/.csv, {', '.join(drawn)} .png/.csv, bound.csv; "
          f"the index says why any other figure is not drawn)")
    return 0
