"""Whole-evaluation sweep and large networks (issue 18).

1. ``hwctl sweep`` over the paper's whole grid (14 topologies x F 0.50..0.90 x DQP/ESP/greedy,
   120 s simulated per run), one replicate, local pool of 2 workers. Goal < 120 s wall.
   Baseline in the same run: a per-attempt simulation (one step per 500 ns physical-layer cycle,
   as the paper's NetSquid runs), timed on a short stretch and charged for exactly the attempts the
   grid made (the sum of the ``attempts`` column, busy links only, so the baseline is a lower bound
   on what per-attempt simulation would cost). Also events per second per worker.
2. The same grid with 5 replicates from scratch. Goal < 600 s wall. Baseline: 5 x item 1.
3. ER:1000:4 (1,000 nodes, ~2,000 links), ESP, 60 s simulated, in a fresh process: completes; wall
   time and peak memory (max RSS) reported. Baseline: the same graph's DQP run (its events are few:
   DQP serializes the network).

Set ``HWCTL_BENCH_SWEEP_QUICK=1`` to run only item 3 and a 1-replicate grid at 30 s per run, and
``HWCTL_BENCH_SWEEP_KEEP=DIR`` to keep the two datasets (``DIR/r1``, ``DIR/r5``) for
``hwctl report`` (docs/esp/sweep was made from ``DIR/r5``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_sim import _per_attempt_speed
from hwctl.physics import heralding
from hwctl.sim.topologies import PAPER_TOPOLOGIES
from hwctl.sweep import FIDELITIES, execute, plan

_BIG = """
import json, resource, sys, time
from hwctl.sim import topologies
from hwctl.sim.network import SimConfig, simulate
name, proto, dur = sys.argv[1], sys.argv[2], float(sys.argv[3])
t0 = time.perf_counter()
g = topologies.by_name(name)
res = simulate(g, SimConfig(protocol=proto, fidelity=0.75, duration=dur, seed=1), name)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": wall, "sim_wall_s": res.wall_seconds, "events": res.events,
                  "cpu_s": ru.ru_utime + ru.ru_stime,
                  "requests": len(res.records), "nodes": g.number_of_nodes(),
                  "edges": g.number_of_edges(), "mean_latency_ms": res.summary["mean_latency_ms"],
                  "maxrss_mib": ru.ru_maxrss / 1024}))
"""


def _big(name: str, proto: str, duration: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", _BIG, name, proto, str(duration)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _attempts(root: Path) -> int:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    tab = ds.dataset(root / "requests").to_table(columns=["attempts"])
    return int(pc.sum(tab["attempts"]).as_py())


def _grid(root: Path, replicates: int, duration: float
          ) -> tuple[float, int, float, int, float]:
    specs = plan(PAPER_TOPOLOGIES, FIDELITIES, ["dqp", "esp", "greedy"], replicates, 1, duration)
    t0 = time.perf_counter()
    stats = execute(specs, root, jobs=2)
    wall = time.perf_counter() - t0
    return wall, stats.events, stats.run_wall_s, len(specs), stats.cpu_s


def run() -> list[dict]:
    quick = os.environ.get("HWCTL_BENCH_SWEEP_QUICK") == "1"
    duration = 30.0 if quick else 120.0
    out: list[dict] = []
    per_attempt = _per_attempt_speed()  # simulated s per wall s, one link, one step per cycle
    keep = os.environ.get("HWCTL_BENCH_SWEEP_KEEP")
    with tempfile.TemporaryDirectory(prefix="hwctl-bench-sweep-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        for sub in ("r1", "r5"):
            if (root / sub).exists():
                raise SystemExit(f"{root / sub} exists: the benchmark times fresh sweeps")
        wall1, events, run_wall, runs, cpu1 = _grid(root / "r1", 1, duration)
        attempts = _attempts(root / "r1")
        per_attempt_wall = attempts * heralding.CYCLE_MEAN / per_attempt
        out.append({"name": f"sweep grid x1 ({runs} runs x {duration:g} s), 2 workers",
                    "value": wall1, "unit": "s wall", "baseline": per_attempt_wall,
                    "ratio": per_attempt_wall / wall1, "goal": "< 120 s" if not quick else "info",
                    "met": wall1 < 120.0})
        out.append({"name": "  same: CPU seconds in the runs (load-independent)", "value": cpu1,
                    "unit": "CPU s", "baseline": 2 * wall1, "ratio": cpu1 / (2 * wall1),
                    "goal": "info (ratio = share of 2 cores got)", "met": True})
        out.append({"name": "sweep events per second per worker", "value": events / run_wall,
                    "unit": "events/s", "baseline": per_attempt / heralding.CYCLE_MEAN,
                    "ratio": (events / run_wall) / (per_attempt / heralding.CYCLE_MEAN),
                    "goal": "info", "met": True})
        if not quick:
            wall5, _, _, runs5, cpu5 = _grid(root / "r5", 5, duration)
            out.append({"name": f"sweep grid x5 ({runs5} runs x {duration:g} s), 2 workers",
                        "value": wall5, "unit": "s wall", "baseline": 5 * wall1,
                        "ratio": 5 * wall1 / wall5, "goal": "< 600 s", "met": wall5 < 600.0})
            out.append({"name": "  same: CPU seconds in the runs (load-independent)",
                        "value": cpu5, "unit": "CPU s", "baseline": 2 * wall5,
                        "ratio": cpu5 / (2 * wall5), "goal": "info (ratio = share of 2 cores)",
                        "met": True})
    big = _big("ER:1000:4", "esp", 60.0)
    dqp = _big("ER:1000:4", "dqp", 60.0)
    out.append({"name": f"ER:1000:4 ({big['edges']} links) ESP 60 s: wall", "value": big["wall_s"],
                "unit": "s wall", "baseline": dqp["wall_s"], "ratio": dqp["wall_s"] / big["wall_s"],
                "goal": "completes", "met": True})
    out.append({"name": "  same: CPU seconds", "value": big["cpu_s"], "unit": "CPU s",
                "baseline": big["wall_s"], "ratio": big["cpu_s"] / big["wall_s"],
                "goal": "info", "met": True})
    out.append({"name": "ER:1000:4 ESP 60 s: peak memory (max RSS)", "value": big["maxrss_mib"],
                "unit": "MiB", "baseline": dqp["maxrss_mib"],
                "ratio": big["maxrss_mib"] / dqp["maxrss_mib"], "goal": "info", "met": True})
    out.append({"name": "ER:1000:4 ESP 60 s: events/s", "value": big["events"] / big["sim_wall_s"],
                "unit": "events/s", "baseline": per_attempt / heralding.CYCLE_MEAN,
                "ratio": big["events"] / big["sim_wall_s"] / (per_attempt / heralding.CYCLE_MEAN),
                "goal": "info", "met": True})
    return out
