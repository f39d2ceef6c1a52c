"""The lab's CPU per request, offline (issue 13: the lab's verdict step is on every pair's way to
the host; benchmarks/RESULTS.md, eleventh session).

A 2x2 :class:`~hwctl.sim.twin.lab.Lab` (the demo's physics: F = 0.75, 2 km links, 3 Mbaud
UARTs, devices with CONTROL.LATE_JOIN) driven in virtual time the way
:class:`~hwctl.sim.twin.lab.LabServer` drives it in real time: at each deadline the server's
queries (``next_deadline``, ``next_urgent``, ``next_event``), an advance to the deadline and a
read of every node device. Requests of 1-6 pairs run on two disjoint edges at a time (A-B with
C-D, then A-C with B-D), both ends scheduled at the same grid origin, until ``LAB_STEP_REQUESTS``
(default 400) have their DONE at both ends. Printed: process CPU per request (best of three, no
wall clock in the figure's meaning beyond the machine's speed: compare within one run), Python
function calls per request (cProfile, machine-independent), and whether two runs' device output
(a SHA-256 of every byte read) is identical: the model is seeded and must be.
"""

from __future__ import annotations

import cProfile
import hashlib
import os
import pstats
import random
import time

PERIOD = 50  # cycles: 500 ns, the simulator's mean cycle


def feed_round(lab, edges, rng: random.Random, seq: dict[str, int]) -> set[str]:
    """One round of requests: a SCHEDULE_PAIRS of 1-6 pairs (drawn from ``rng``) to both ends of
    every edge of ``edges``, both at one grid origin 100 periods ahead; ``seq`` holds each node's
    frame sequence number. Returns the nodes whose DONE the round waits for."""
    from hwctl.wire import SchedulePairs, encode

    origin = (lab.now // PERIOD + 100) * PERIOD
    waiting: set[str] = set()
    for u, v in edges:
        pairs = rng.randint(1, 6)
        for n, peer in ((u, v), (v, u)):
            seq[n] = (seq[n] + 1) & 0xFF
            lab.feed(n, encode(SchedulePairs(origin, 2**32 - 1, PERIOD, pairs,
                                             lab.port(n, peer)), seq[n]))
            waiting.add(n)
    return waiting


def drive(requests: int, *, profile: bool = False) -> dict:
    """Run the lab; CPU seconds, requests done, output digest, Python calls (when profiled)."""
    from hwctl.physics import heralding
    from hwctl.sim import topologies
    from hwctl.sim.twin.lab import Lab
    from hwctl.wire import ControlBit, Done, FrameDecoder, Reg, RegWrite, encode

    g = topologies.by_name("2x2")
    lab = Lab(g, p_photon=heralding.success_probability(0.75), seed=1, start=0)
    for n in lab.names:
        lab.feed(n, encode(RegWrite(Reg.CONTROL, 0b11 | 1 << ControlBit.LATE_JOIN), 0))
    dec = {n: FrameDecoder() for n in lab.names}
    digest = hashlib.sha256()
    rng = random.Random(1)
    edges = sorted(tuple(sorted(e)) for e in g.edges)
    first = [("A", "B"), ("C", "D")]
    rounds = [[e for e in edges if e in first], [e for e in edges if e not in first]]
    seq = dict.fromkeys(lab.names, 0)
    done = k = 0
    pr = cProfile.Profile() if profile else None
    t0 = time.process_time()
    if pr is not None:
        pr.enable()
    while done < requests:
        edges_now = rounds[k % 2]
        k += 1
        waiting = feed_round(lab, edges_now, rng, seq)
        while waiting:
            d = lab.next_deadline()
            lab.next_urgent()
            lab.next_event()
            lab.advance_to(d if d is not None and d > lab.now else lab.now + 100)
            for n in lab.names:
                out = lab.read(n)
                if out:
                    digest.update(n.encode() + out)
                    if any(isinstance(f.msg, Done) for f in dec[n].feed(out)):
                        waiting.discard(n)
        done += len(edges_now)
    cpu = time.process_time() - t0
    calls = None
    if pr is not None:
        pr.disable()
        calls = pstats.Stats(pr).total_calls  # type: ignore[attr-defined]
    return {"cpu": cpu, "requests": done, "digest": digest.hexdigest(), "calls": calls}


def run() -> list[dict]:
    n = int(os.environ.get("LAB_STEP_REQUESTS", "400"))
    runs = [drive(n) for _ in range(3)]
    prof = drive(n, profile=True)
    best = min(r["cpu"] for r in runs) / n
    same = len({r["digest"] for r in [*runs, prof]}) == 1
    return [dict(name="lab 2x2 CPU per request (offline, best of 3)", value=1e6 * best, unit="us",
                 baseline=0.0, ratio=0.0, goal="(info)", met=True),
            dict(name="lab 2x2 Python calls per request", value=prof["calls"] / n, unit="calls",
                 baseline=0.0, ratio=0.0, goal="(info)", met=True),
            dict(name="lab 2x2 output identical over 4 runs", value=float(same), unit="",
                 baseline=1.0, ratio=1.0, goal="== 1", met=same)]
