"""Benchmark of the bench health check (issue 17 goal: `hwctl instruments check` on the demo's
simulated bench reports every instrument healthy in under 2 s).

1. Whole command, as a user runs it: ``hwctl instruments check --config examples/node-bench.toml``
   in a fresh Python process (start-up, imports of pyvisa/pyvisa-sim/PyMeasure, loading the
   simulated bench, 7 instruments identified, error queues and readings read), median of 5 runs.
   Baseline: ``hwctl --version`` in a fresh process (interpreter + CLI start-up), same run.
   Also its CPU time (user + sys), which other jobs on a shared machine disturb less.
2. The check alone inside one process (instruments already connected once, as a node re-checking
   its bench), median of 20; baseline: a single ``*IDN?`` round trip to one simulated instrument.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "node-bench.toml"


def _wall(argv: list[str], cpu: list[float] | None = None) -> float:
    """Wall time of ``hwctl ARGV`` in a fresh process; its CPU time (user + sys) into ``cpu``
    (less sensitive than wall time to other jobs sharing the machine)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hwctl.cli", *argv], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"hwctl {' '.join(argv)} failed: {proc.stdout}{proc.stderr}")
    if cpu is not None:
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return dt


def run() -> list[dict]:
    from hwctl.instruments import SIM_FILE
    from hwctl.instruments.bench import Bench, BenchConfig

    cpu: list[float] = []
    base_cpu: list[float] = []
    whole = statistics.median(_wall(["instruments", "check", "--config", str(EXAMPLE)], cpu)
                              for _ in range(5))
    base = statistics.median(_wall(["--version"], base_cpu) for _ in range(5))
    with tempfile.TemporaryDirectory() as d:
        sim = Path(d) / "sim.yaml"
        shutil.copy(SIM_FILE, sim)
        node = Path(d) / "node.toml"
        node.write_text(EXAMPLE.read_text().replace('"@sim"', f'"{sim}@sim"'))
        with Bench(BenchConfig.from_node_config(node)) as bench:
            bench.apply()
            times, idn = [], []
            for _ in range(20):
                t = time.perf_counter()
                health = bench.check()
                times.append(time.perf_counter() - t)
                assert all(h.ok for h in health), health
                voa = bench.instruments["voa"]
                t = time.perf_counter()
                voa.ask("*IDN?")
                idn.append(time.perf_counter() - t)
    inproc, one = statistics.median(times), statistics.median(idn)
    return [
        dict(name="instruments check, whole command (7 sim instruments)", value=whole, unit="s",
             baseline=base, ratio=whole / base, goal="< 2 s", met=whole < 2.0),
        dict(name="instruments check, whole command, CPU time (user+sys)",
             value=statistics.median(cpu), unit="s", baseline=statistics.median(base_cpu),
             ratio=statistics.median(cpu) / statistics.median(base_cpu), goal="< 2 s",
             met=statistics.median(cpu) < 2.0),
        dict(name="instruments check in process (connected bench)", value=inproc * 1e3, unit="ms",
             baseline=one * 1e3, ratio=inproc / one, goal="(info)", met=True),
    ]
