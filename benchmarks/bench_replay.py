"""Replay of a recorded bench session (issue 19): speed and exactness.

A K2 demo with pair verification (`hwctl demo --topology K2 --transport inproc --record DIR`,
``HWCTL_BENCH_REPLAY_S`` seconds of real time, default 20) records both nodes; each recording is
then replayed offline with `hwctl replay FILE --json` in a fresh process. Reported per node: the
replay's wall time against the recorded session's duration (goal >= 10x real time) and whether the
replay reproduced the run (no divergence, every entry consumed). The baseline of the same run is
the recorded session's own wall time. The replay's process start-up (Python imports) is included,
as a user sees it: with hwctl's modules compiled once, as an installed hwctl has them (pip compiles
a wheel at install; a checkout writes ``__pycache__`` on first use). A shell with
``PYTHONDONTWRITEBYTECODE=1`` (this VM's) would make every process compile hwctl's sources again,
so the benchmark's processes run without it (``__pycache__`` is git-ignored); node A's replay is
also timed that way, from source, and printed for information.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_X = 10.0


def _hwctl(args: list[str], *, compiled: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if compiled:  # bytecode written once and reused (module docstring)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([sys.executable, "-m", "hwctl.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)


def run() -> list[dict]:
    seconds = float(os.environ.get("HWCTL_BENCH_REPLAY_S", "20"))
    tmp = Path(tempfile.mkdtemp(prefix="hwctl-bench-replay-"))
    t0 = time.monotonic()
    rec = _hwctl(["demo", "--duration", f"{seconds:g}", "--topology", "K2", "--transport",
                  "inproc", "--fidelity", "0.5", "--header-rate", "1000", "--out",
                  str(tmp / "demo"), "--no-web", "--no-plot", "--json", "--record",
                  str(tmp / "rec")])
    session_s = time.monotonic() - t0
    if rec.returncode != 0:
        raise RuntimeError(f"recording failed: {rec.stderr.strip()[-500:]}")
    out: list[dict] = []
    for n in ("A", "B"):
        t1 = time.monotonic()
        rp = _hwctl(["replay", str(tmp / "rec" / f"{n}.rec"), "--out", str(tmp / f"replay-{n}"),
                     "--json"])
        wall = time.monotonic() - t1
        if rp.returncode != 0:
            raise RuntimeError(f"replay of {n} failed: {rp.stderr.strip()[-500:]}")
        d = json.loads(rp.stdout[rp.stdout.index("{"):])
        exact = d["diverged"] is None and d["complete"] and d["consumed"] == d["entries"]
        speed = seconds / wall
        print(f"# replay {n}: {d['entries']} entries, {d['consumed']} consumed, diverged "
              f"{d['diverged']}, {wall:.2f} s for a {seconds:g} s session", flush=True)
        out.append(dict(name=f"replay of node {n}, {seconds:g} s K2 session (x real time)",
                        value=speed, unit="x", baseline=session_s, ratio=session_s / wall,
                        goal=f">= {GOAL_X:g}x", met=speed >= GOAL_X))
        out.append(dict(name=f"  replay of node {n} reproduces the run", value=float(exact),
                        unit="bool", baseline=1.0, ratio=float(exact), goal="== 1",
                        met=exact))
    t2 = time.monotonic()
    cold = _hwctl(["replay", str(tmp / "rec" / "A.rec"), "--json"], compiled=False)
    if cold.returncode == 0:
        wall = time.monotonic() - t2
        print(f"# replay A without compiled modules (PYTHONDONTWRITEBYTECODE=1): {wall:.2f} s, "
              f"{seconds / wall:.1f}x real time (information)", flush=True)
    return out
