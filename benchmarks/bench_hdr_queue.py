"""The twin's arrival-queue model per arrival (sim/twin/hdrblock.py ``ArrivalQueue``), one core.

Workload: the arrivals one node twin sees from the paper's source (1.3 MHz, 77 cycles per pulse,
p = 0.1: a 10 km arm, section IV) with the default BLOCK_FLUSH and 8192 ring slots, a few slots
pinned just ahead of the ring now and then (a PIN_MASK of 16 slots every 500 arrivals, unpinned
500 arrivals later: the host pinning verified pairs), fed as the twin feeds them
(``arrival(seq, ts, cycle)``). At 1.3 MHz and p = 0.1 one twin takes 130k arrivals/s; the lab
process of ``python -m benchmarks hdr_block`` runs two.

Baseline, same run: ``ArrivalQueue(exact=True)``, the exact model on every arrival (what the
twin ran before the fast path); the bare ``BlockEncoder.arrival`` (no queue model) is printed
for reference. tests/test_twin_hdrblock.py checks that both paths give the same blocks, cycles
and drops. Goal: the fast path costs at most 0.7x the exact model per arrival.
``HWCTL_BENCH_QUEUE_ARRIVALS`` (default 200000) sets the stream length.
"""

from __future__ import annotations

import os
import time

import numpy as np

from hwctl.sim.twin.hdrblock import DEFAULT_FLUSH, DEFAULT_SLOTS, ArrivalQueue, BlockEncoder

P = 77
ARRIVALS = int(os.environ.get("HWCTL_BENCH_QUEUE_ARRIVALS", "200000"))


def _stream(n: int) -> list[tuple[int, int]]:
    pulses = np.flatnonzero(np.random.default_rng(1).random(int(n / 0.1 * 1.05)) < 0.1)[:n]
    return [(s, s * P) for s in pulses.tolist()]


def _time(arrivals: list[tuple[int, int]], exact: bool | None) -> float:
    """CPU seconds of this process for the stream (less skewed by other jobs than wall time);
    ``exact`` None: the bare encoder."""
    enc = BlockEncoder(n_slots=DEFAULT_SLOTS, flush_cycles=DEFAULT_FLUSH)
    q = ArrivalQueue(enc, exact=bool(exact))
    arrival = enc.arrival if exact is None else q.arrival
    pin, unpin = (enc.pin, enc.unpin) if exact is None else (q.pin, q.unpin)
    pinned: list[int] = []
    t0 = time.process_time()
    for i, (s, t) in enumerate(arrivals):
        if i % 500 == 499:
            if pinned:
                base = pinned.pop()
                unpin(base, 0xFFFF) if exact is None else unpin(base, 0xFFFF, t - 1)
            else:
                base = (enc._last + 40) % (DEFAULT_SLOTS - 16)
                pinned.append(base)
                pin(base, 0xFFFF) if exact is None else pin(base, 0xFFFF, t - 1)
        if exact is None:
            arrival(s, t)
        else:
            arrival(s, t, t)
    return time.process_time() - t0


def run(n: int = ARRIVALS) -> list[dict]:
    arrivals = _stream(n)
    _time(arrivals[:5000], False)   # warm-up
    res = {k: min(_time(arrivals, k) for _ in range(3)) for k in (None, True, False)}
    us = {k: v / n * 1e6 for k, v in res.items()}
    print(f"# hdr_queue: {n} arrivals; CPU per arrival: encoder alone {us[None]:.3f} us, queue "
          f"exact {us[True]:.3f} us ({us[True] - us[None]:+.3f}), fast path {us[False]:.3f} us "
          f"({us[False] - us[None]:+.3f}: the plain append is inlined, no encoder call)", flush=True)
    ratio = res[True] / res[False]
    return [dict(name="hdr_queue: twin arrival model, us per arrival", value=us[False],
                 unit="us/arrival", baseline=us[True], ratio=ratio, goal="<= 0.7x exact",
                 met=res[False] <= 0.7 * res[True])]
