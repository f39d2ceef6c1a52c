"""Two-node discrete-event simulation of pair verification (pair-verification paper §IV).

A midpoint source emits entangled pairs at ``rate_hz`` (paper: 1.3 MHz); each photon reaches its
memory node with the loss-budget probability of :mod:`hwctl.physics.loss` after its fibre delay,
and produces HEADER(seq, ts, slot) at that node. Each node runs the *same*
:class:`hwctl.protocols.verification.VerificationCore` the node service runs; their partner
messages (real bytes) cross a classical channel with a fixed one-way latency per run (ZeroMQ over
TCP keeps them in order). Nothing else decides what is verified or discarded.

Ground truth is then joined per pair: a pair counts as verified when *both* cores emitted
PairsVerified for its sequence number; its verification time is the later of the two, and its
fidelity is F(t_v - t_A, t_v - t_B) from :func:`hwctl.physics.memory.fidelity` with the true store
times of both qubits (the cores' own estimate uses only the configured skew).

Cost: events are header batches (``chunk_s``), partner messages and core timers — never one event
per source pulse — so a 1.3 MHz source over 0.1 s costs ~1 s of CPU.

Pulses emitted in [0, emit_s) are counted; the source keeps running for a drain period afterwards
so both nodes' sequence frontiers move past every counted pulse (as with a continuous source).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

from hwctl.physics import memory as phys_mem
from hwctl.physics.loss import PATHS, NodePair
from hwctl.protocols.verification import (
    Cause,
    FreeSlots,
    PairsDiscarded,
    PairsRevoked,
    PairsVerified,
    SendToPartner,
    VerificationConfig,
    VerificationCore,
)

SEQ_MASK = 0xFFFFFFFF


@dataclass(frozen=True)
class Scenario:
    """One simulation run. Times in seconds; ``timeout_s`` overrides the memory/f_th timeout."""

    memory: phys_mem.Memory
    f_th: float = phys_mem.F_QKD
    timeout_s: float | None = None
    pair: NodePair = PATHS["C-E"]
    latency_s: float = 10e-3
    rate_hz: float = 1.3e6
    emit_s: float = 20e-3
    clock_hz: float = 100e6
    report_interval_s: float = 100e-6
    chunk_s: float = 50e-6
    seq0: int = 0
    seed: int = 0
    window_bits: int = 20

    def timeout(self) -> float:
        if self.timeout_s is not None:
            return self.timeout_s
        return phys_mem.timeout(self.memory, self.f_th, self.pair.skew)


@dataclass
class NodeStats:
    headers: int = 0
    verified: int = 0
    discards: dict[str, int] = field(default_factory=dict)
    revoked: int = 0
    occupancy_mean: float = 0.0
    occupancy_max: int = 0
    occupancy_p99: float = 0.0
    messages: int = 0
    bytes_sent: int = 0


@dataclass
class Result:
    scenario: Scenario
    timeout_s: float
    pulses: int
    pairs_arrived: int  # both photons stored (counted pulses)
    verified_pairs: int  # verified at both nodes
    inconsistent: int  # verified at one node, discarded at the other
    rate_hz: float  # verified pairs per second of source time
    fidelity_mean: float
    fidelity_min: float
    verify_delay_mean_s: float  # t_v - later store time, mean
    nodes: tuple[NodeStats, NodeStats]
    leaked_slots: int  # slots allocated but never freed although resolved (must be 0)


def simulate(sc: Scenario) -> Result:
    """Run one scenario through two :class:`VerificationCore` instances; see module docstring."""
    hz = sc.clock_hz
    rng = np.random.default_rng(sc.seed)
    tau = sc.timeout()
    latency = int(round(sc.latency_s * hz))
    drain_s = 2 * sc.latency_s + 2 * sc.report_interval_s + 2 * sc.chunk_s + 1e-3
    n_count = int(round(sc.emit_s * sc.rate_hz))
    n_total = n_count + int(math.ceil(drain_s * sc.rate_hz))
    emit = np.round(np.arange(n_total) * (hz / sc.rate_hz)).astype(np.int64)
    paths = (sc.pair.a, sc.pair.b)
    delay = [int(round(p.delay * hz)) for p in paths]
    arrived = [rng.random(n_total) < p.eta for p in paths]
    # signed skew as seen by each node: partner store time minus own
    offs = [delay[1] - delay[0], delay[0] - delay[1]]
    cores = []
    for x in range(2):
        timeout_ticks = max(1, min(int(tau * hz), 1 << 62)) if math.isfinite(tau) else 1 << 62
        cfg = VerificationConfig(
            timeout_ticks=timeout_ticks,
            clock_hz=hz,
            report_interval_ticks=max(1, int(round(sc.report_interval_s * hz))),
            window_bits=sc.window_bits,
            memory=sc.memory,
            partner_offset_ticks=offs[x],
        )
        cores.append(VerificationCore(cfg))

    # per node: pulse indices that arrive, their arrival ticks, chunk boundaries
    k_arr = [np.flatnonzero(arrived[x]) for x in range(2)]
    t_arr = [emit[k_arr[x]] + delay[x] for x in range(2)]
    chunk = max(1, int(round(sc.chunk_s * hz)))
    t_end_emit = int(emit[-1]) + max(delay) + chunk
    allocated = [np.zeros(n_total, dtype=bool) for _ in range(2)]
    store_t = [np.full(n_total, -1, dtype=np.int64) for _ in range(2)]
    ver_t = [np.full(n_total, -1, dtype=np.int64) for _ in range(2)]
    disc = [np.zeros(n_total, dtype=bool) for _ in range(2)]
    for x in range(2):
        store_t[x][k_arr[x]] = t_arr[x]

    heap: list[tuple[int, int, int, int, object]] = []
    counter = 0

    def push(t: int, kind: int, node: int, payload: object = None) -> None:
        nonlocal counter
        counter += 1
        heapq.heappush(heap, (t, kind, counter, node, payload))

    CHUNK, MSG, TIMER = 0, 1, 2
    for x in range(2):
        push(chunk, CHUNK, x, 0)
    sched: list[int | None] = [None, None]
    occ_samples: list[list[int]] = [[], []]
    steady_lo = min(int(0.5 * sc.emit_s * hz), int((2 * sc.latency_s + 1e-3) * hz))
    steady_hi = int(sc.emit_s * hz)

    def k_of(seqs: np.ndarray) -> np.ndarray:
        return (seqs.astype(np.int64) - sc.seq0) & SEQ_MASK

    def process(x: int, now: int) -> None:
        core = cores[x]
        for a in core.drain():
            if isinstance(a, SendToPartner):
                push(now + latency, MSG, 1 - x, a.data)
            elif isinstance(a, FreeSlots):
                s = a.slots
                if not np.all(allocated[x][s]):
                    raise AssertionError(f"node {x}: FreeSlots of unallocated slot")
                allocated[x][s] = False
            elif isinstance(a, PairsVerified):
                ver_t[x][k_of(a.seqs)] = a.verify_ts
            elif isinstance(a, PairsDiscarded):
                disc[x][k_of(a.seqs)] = True
            elif isinstance(a, PairsRevoked):
                pass  # counted in core metrics
        tm = core.get_timer()
        if tm is not None and (sched[x] is None or tm < sched[x]):
            tm = max(tm, now)
            sched[x] = tm
            push(tm, TIMER, x)

    t_stop = t_end_emit + int(drain_s * hz) + 2 * latency
    while heap:
        t, kind, _, x, payload = heapq.heappop(heap)
        if t > t_stop:
            break
        core = cores[x]
        if kind == CHUNK:
            lo = int(np.searchsorted(t_arr[x], t - chunk, side="right"))
            hi = int(np.searchsorted(t_arr[x], t, side="right"))
            if hi > lo:
                ks = k_arr[x][lo:hi]
                allocated[x][ks] = True
                core.handle_headers((ks + sc.seq0) & SEQ_MASK, t_arr[x][lo:hi], ks)
            if steady_lo <= t <= steady_hi:
                occ_samples[x].append(core.occupancy)
            if t + chunk <= t_end_emit:
                push(t + chunk, CHUNK, x, 0)
            tm = core.get_timer()
            if tm is not None and tm <= t:
                core.handle_timer(t)
        elif kind == MSG:
            assert isinstance(payload, bytes)
            core.handle_message(payload, t)
        else:
            if sched[x] == t:
                sched[x] = None
            tm = core.get_timer()
            if tm is not None and tm <= t:
                core.handle_timer(t)
        process(x, t)

    cnt = slice(0, n_count)
    both_arr = arrived[0][cnt] & arrived[1][cnt]
    both_ver = (ver_t[0][cnt] >= 0) & (ver_t[1][cnt] >= 0)
    inconsistent = int(np.sum(((ver_t[0][cnt] >= 0) & disc[1][cnt]) | ((ver_t[1][cnt] >= 0) & disc[0][cnt])))
    kv = np.flatnonzero(both_ver)
    tv = np.maximum(ver_t[0][kv], ver_t[1][kv])
    age_a = (tv - store_t[0][kv]) / hz
    age_b = (tv - store_t[1][kv]) / hz
    fid = np.asarray(phys_mem.fidelity(sc.memory, age_a, age_b)).reshape(-1)
    delay_v = (tv - np.maximum(store_t[0][kv], store_t[1][kv])) / hz
    # resolved at both nodes but still allocated somewhere = leak
    resolved = [(ver_t[x] >= 0) | disc[x] for x in range(2)]
    leaked = int(sum(np.sum(allocated[x] & resolved[x]) for x in range(2)))
    stats = []
    for x in range(2):
        m = cores[x].metrics
        occ = np.asarray(occ_samples[x], dtype=float)
        stats.append(
            NodeStats(
                headers=m.headers,
                verified=m.verified,
                discards={c.name: m.discards[c] for c in Cause},
                revoked=m.revoked,
                occupancy_mean=float(occ.mean()) if occ.size else float("nan"),
                occupancy_max=int(occ.max()) if occ.size else 0,
                occupancy_p99=float(np.percentile(occ, 99)) if occ.size else float("nan"),
                messages=m.messages_sent,
                bytes_sent=m.bytes_sent,
            )
        )
    return Result(
        scenario=sc,
        timeout_s=tau,
        pulses=n_count,
        pairs_arrived=int(both_arr.sum()),
        verified_pairs=int(kv.size),
        inconsistent=inconsistent,
        rate_hz=kv.size / sc.emit_s,
        fidelity_mean=float(fid.mean()) if fid.size else float("nan"),
        fidelity_min=float(fid.min()) if fid.size else float("nan"),
        verify_delay_mean_s=float(delay_v.mean()) if delay_v.size else float("nan"),
        nodes=(stats[0], stats[1]),
        leaked_slots=leaked,
    )
