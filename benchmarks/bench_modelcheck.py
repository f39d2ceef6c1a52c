"""Model checker (issue 15): the fast engine (sim/mcfast.py) against the original checker.

Each instance is explored exhaustively by both engines in this process, one after the other;
reported: the fast engine's states per CPU second, with the original checker's as the baseline
of the same run (CPU time of this process, so other load on the machine matters less than for
wall time). Goal: >= 5x, and the counts (states, transitions, terminal states, violations,
deadlocks, traps) identical, else the result is MISSED whatever the speed.
``HWCTL_BENCH_MC`` picks the instances (default ``K3:2,K1,3:2,C4:1,K1,3:1:robust:loss1``;
``C4:2`` takes some minutes on the original checker); an instance is
``TOPOLOGY:REQUESTS[:FLAG...]`` with flags ``fair``, ``robust``, ``lossN``, ``dupN`` and
``inflightN`` (robust mode: reordering, N losses/duplications, at most N in flight, default 3).
"""

from __future__ import annotations

import os
import time

from hwctl.sim import modelcheck

GOAL_X = 5.0


def _instances() -> list[tuple[str, int, str, dict]]:
    spec = os.environ.get("HWCTL_BENCH_MC", "K3:2,K1,3:2,C4:1,K1,3:1:robust:loss1")
    out = []
    for part in spec.replace("K1,3", "K1;3").split(","):
        f = part.replace("K1;3", "K1,3").split(":")
        kw: dict = {}
        for flag in f[2:]:
            if flag in ("fair", "robust"):
                kw[flag] = True
            else:
                for name in ("loss", "dup", "inflight"):
                    if flag.startswith(name):
                        kw[name] = int(flag[len(name):])
        if kw.get("robust"):
            kw.setdefault("inflight", 3)
        out.append((f[0], int(f[1]), " ".join(f[2:]), kw))
    return out


def _timed(topo: str, n: int, kw: dict, engine: str) -> tuple[modelcheck.Result, float]:
    t0 = time.process_time()
    r = modelcheck.check(topo, n, engine=engine, **kw)
    return r, time.process_time() - t0


def run() -> list[dict]:
    out: list[dict] = []
    for topo, n, label, kw in _instances():
        old, t_old = _timed(topo, n, kw, "old")
        new, t_new = _timed(topo, n, kw, "fast")
        same = all(getattr(old, a) == getattr(new, a) for a in (
            "states", "transitions", "cut", "terminal", "violations", "deadlocks", "traps"))
        v, b = new.states / max(t_new, 1e-9), old.states / max(t_old, 1e-9)
        out.append({"name": f"modelcheck {topo}/{n}{' ' + label if label else ''} "
                            f"({new.states:,d} states{'' if same else ', COUNTS DIFFER'})",
                    "value": v, "unit": "states/CPU s", "baseline": b, "ratio": v / b,
                    "goal": f">= {GOAL_X:g}x, same counts", "met": same and v / b >= GOAL_X})
    return out
