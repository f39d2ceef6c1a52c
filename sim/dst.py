"""Deterministic simulation testing (DST) of the real ESP cores under random faults (issue 15).

One *seed* fixes everything of a run: the topology, the workload, the fault mix
(:mod:`hwctl.sim.faults`), whether bounded waiting is on, and every random draw of the simulator. A run:

1. drives the network with faults for ``FAULT_WINDOW`` seconds of simulated time;
2. then stops every fault (crashed nodes restart, partitions heal), submits one probe request per
   edge and runs until no event is left.

Checked after every event and at the end:

- invariant (1) of ESP §IV: a node entangles with at most one peer at a time (the simulator's
  physical layer raises on a violation);
- no Lock (or WAKE_SENT) outlives its lease;
- every request ends exactly once: completed, or expired with a reason; none is left open;
- the network recovers: every probe request sent after the faults stopped completes, and every
  node ends IDLE with empty queues.

A failing run prints its seed and a one-line command that replays it exactly::

    python -m hwctl.sim.dst --seed 1234            # replay one seed, verbose
    python -m hwctl.sim.dst --runs 1000 --start 0  # a batch of seeds
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import random
import sys
import time
from dataclasses import dataclass, field

import networkx as nx

from hwctl.protocols.base import ProtocolViolation, Request
from hwctl.protocols.dqp import SCHEDULER
from hwctl.protocols.esp import State
from hwctl.protocols.reliable import RobustConfig
from hwctl.sim import topologies
from hwctl.sim.faults import FaultConfig, FaultModel
from hwctl.sim.network import NetworkSim, SimConfig

TOPOLOGIES = ["K2", "K3", "C4", "K1,3", "2x2", "K4", "C5", "2x3"]
FAULT_WINDOW = 0.05  #: seconds of simulated time with faults
#: timeouts scaled to the DST's fast physical layer (eta = 0.05: a pair in ~20 µs)
DST_ROBUST = RobustConfig(rto=100e-6, rto_max=2e-3, lease=10e-3, busy_lease=20e-3,
                          request_ttl=0.2)
QUIESCENCE_LIMIT = 30.0


@dataclass
class Outcome:
    seed: int
    ok: bool
    topology: str
    faults: str
    fair: bool
    ttl: float = 0.0
    protocol: str = "esp"
    requests: int = 0
    completed: int = 0
    expired: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    crashes: int = 0
    partitions: int = 0
    lost: int = 0
    remote_errors: int = 0
    error: str = ""

    def replay(self) -> str:
        return f"PYTHONPATH=. python -m hwctl.sim.dst --seed {self.seed}"


def _scenario(seed: int) -> tuple[str, nx.Graph, list[Request], FaultConfig, bool, float, str]:
    rng = random.Random(f"dst-{seed}")
    name = rng.choice(TOPOLOGIES)
    g = topologies.by_name(name)
    edges = sorted(tuple(sorted(e)) for e in g.edges)
    reqs = []
    for rid in range(1, rng.randint(5, 40) + 1):
        u, v = rng.choice(edges)
        if rng.random() < 0.5:
            u, v = v, u
        reqs.append(Request(rid, u, v, rng.choice([0.6, 0.75, 0.9]), rng.randint(1, 3),
                            rng.uniform(0.0, FAULT_WINDOW)))

    def p(hi: float) -> float:
        return rng.choice([0.0, rng.uniform(0.0, hi)])

    faults = FaultConfig(loss=p(0.3), duplicate=p(0.3), reorder=p(0.5),
                         reorder_window=rng.uniform(10e-6, 500e-6), spike=p(0.1),
                         spike_delay=rng.uniform(0.1e-3, 5e-3),
                         crash_rate=rng.choice([0.0, rng.uniform(0, 100.0)]),
                         downtime=rng.uniform(0.1e-3, 10e-3),
                         partition_rate=rng.choice([0.0, rng.uniform(0, 100.0)]),
                         partition_duration=rng.uniform(0.1e-3, 20e-3), until=FAULT_WINDOW)
    # short lifetimes in some runs, so that expiry (with its reason) is exercised too
    ttl = rng.choice([DST_ROBUST.request_ttl, rng.uniform(2e-3, 50e-3)])
    protocol = "dqp" if rng.random() < 0.25 else "esp"
    return name, g, reqs, faults, rng.random() < 0.5, ttl, protocol


def run_one(seed: int, *, verbose: bool = False) -> Outcome:
    name, g, reqs, fcfg, fair, ttl, protocol = _scenario(seed)
    robust = dataclasses.replace(DST_ROBUST, request_ttl=ttl)
    n0 = len(reqs)
    edges = sorted(tuple(sorted(e)) for e in g.edges)
    t_probe = FAULT_WINDOW + 2 * DST_ROBUST.busy_lease
    # one probe per edge, 1 ms apart: even DQP (one request at a time) meets the shortest lifetime
    probes = [Request(n0 + k + 1, u, v, 0.75, 1, t_probe + 1e-3 * k)
              for k, (u, v) in enumerate(edges)]
    model = FaultModel(fcfg, seed)
    cfg = SimConfig(protocol=protocol, seed=seed, eta=0.05, robust=True, fair=fair,
                    duration=FAULT_WINDOW)
    out = Outcome(seed, False, name, fcfg.describe(), fair, ttl, protocol)
    sim: NetworkSim | None = None
    try:
        sim = NetworkSim(g, cfg, workload=reqs + probes, faults=model, robust=robust)
        heap = sim._heap
        while heap:
            t, _, fn, args = heapq.heappop(heap)
            if t > QUIESCENCE_LIMIT:
                raise ProtocolViolation(f"no quiescence before t = {QUIESCENCE_LIMIT} s")
            sim.now = t
            sim.events += 1
            fn(*args)
            if protocol == "esp":
                for n, core in sim.cores.items():
                    if n not in sim.down and core.lock_deadline() < t:
                        raise ProtocolViolation(f"{n}: Lock kept past its lease at t = {t}")
            else:
                sched = sim.cores[SCHEDULER]
                if SCHEDULER not in sim.down and sched.running is not None and sched._lease < t:
                    raise ProtocolViolation(f"S: request {sched.running.rid} past its lease")
        res = sim.result()
        if sim.lock_violations:
            raise ProtocolViolation(sim.lock_violations[0])
        out.requests = len(res.records)
        for r in res.records:
            if r.done and r.expired:
                raise ProtocolViolation(f"request {r.rid} both completed and expired")
            if not r.done and not r.expired:
                raise ProtocolViolation(f"request {r.rid} lost: neither completed nor expired")
            if r.done:
                out.completed += 1
            else:
                out.reasons[r.expired] = out.reasons.get(r.expired, 0) + 1
                out.expired += 1
        for pr in probes:
            if not sim.records[pr.rid].done:
                raise ProtocolViolation(f"probe {pr.rid} ({pr.initiator}-{pr.remote}) after the "
                                        f"faults stopped did not complete: no recovery")
        for n, core in sim.cores.items():
            if protocol == "esp":
                idle = core.state is State.IDLE and not (core.q_main or core.s_sleep or core.q_ready)
            elif n == SCHEDULER:
                idle = core.running is None and not core.queue
            else:
                idle = core.active is None and not core.open
            if not idle:
                raise ProtocolViolation(f"{n} did not return to idle with empty queues")
        out.ok = True
    except ProtocolViolation as exc:
        out.error = str(exc)
    out.crashes, out.partitions, out.lost = model.crashes, model.partitions, model.lost
    if sim is not None:
        out.remote_errors = len(sim.remote_errors)
    if verbose or not out.ok:
        _report(out)
    return out


def _report(o: Outcome) -> None:
    status = "ok" if o.ok else "FAIL"
    print(f"seed {o.seed}: {status} {o.protocol} topology={o.topology} fair={o.fair} ttl={o.ttl * 1e3:.1f}ms "
          f"{o.faults}",
          file=sys.stderr)
    print(f"  requests={o.requests} completed={o.completed} expired={o.expired} {o.reasons} "
          f"crashes={o.crashes} partitions={o.partitions} lost={o.lost} "
          f"remote_errors={o.remote_errors}", file=sys.stderr)
    if not o.ok:
        print(f"  violation: {o.error}", file=sys.stderr)
        print(f"  replay: {o.replay()}", file=sys.stderr)


def run_many(start: int, runs: int) -> list[Outcome]:
    return [run_one(s) for s in range(start, start + runs)]


def _cost_row(job: tuple[str, str, str, float, int]) -> dict:
    from hwctl.sim.network import simulate

    topo, protocol, mode, duration, seed = job
    g = topologies.by_name(topo)
    cfg = SimConfig(protocol=protocol, duration=duration, seed=seed, robust=mode != "paper")
    if mode == "faults":
        model = FaultModel(FaultConfig(loss=0.01, crash_rate=1 / 60, downtime=1.0), seed)
        t0 = time.perf_counter()
        res = NetworkSim(g, cfg, topology_name=topo, faults=model).run()
        res.wall_seconds = time.perf_counter() - t0
        crashes = model.crashes
    else:
        res = simulate(g, cfg, topo)
        crashes = 0
    s = res.summary
    return {"topology": topo, "protocol": protocol, "mode": mode, "crashes": crashes, **s}


def cost_table(duration: float = 120.0, seed: int = 1, jobs: int = 2) -> list[dict]:
    """Table V rows for ESP and DQP in three modes: paper (robustness off, no faults), robust with
    no faults, robust with 1 % message loss and a crash per minute (mean downtime 1 s)."""
    from concurrent.futures import ProcessPoolExecutor

    jobs_list = [(t, p, m, duration, seed) for t in topologies.PAPER_TOPOLOGIES
                 for p in ("esp", "dqp") for m in ("paper", "robust", "faults")]
    with ProcessPoolExecutor(jobs) as ex:
        return list(ex.map(_cost_row, jobs_list))


def format_cost_table(rows: list[dict]) -> str:
    out = ["Cost of robustness: mean latency L (ms) / throughput T (pairs/edge/s) / expired",
           f"{'Topology':9s} {'Proto':5s} {'paper (off)':>18s} {'robust, no faults':>20s} "
           f"{'1% loss + 1 crash/min':>28s}"]
    by = {(r["topology"], r["protocol"], r["mode"]): r for r in rows}
    for t in topologies.PAPER_TOPOLOGIES:
        for p in ("esp", "dqp"):
            cells = []
            for m in ("paper", "robust", "faults"):
                r = by[(t, p, m)]
                cell = f"{r['mean_latency_ms']:7.2f} / {r['throughput_per_edge_s']:5.2f}"
                if m == "faults":
                    cell += f" / {int(r['expired_requests']):d} ({r['crashes']} cr)"
                cells.append(cell)
            out.append(f"{t:9s} {p.upper():5s} {cells[0]:>18s} {cells[1]:>20s} {cells[2]:>28s}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hwctl.sim.dst", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, help="replay one seed (verbose)")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--cost-table", action="store_true",
                    help="Table V topologies: paper vs robust vs 1%% loss + a crash per minute")
    a = ap.parse_args(argv)
    if a.cost_table:
        print(format_cost_table(cost_table()))
        return 0
    if a.seed is not None:
        return 0 if run_one(a.seed, verbose=True).ok else 1
    t0 = time.perf_counter()
    outs = run_many(a.start, a.runs)
    bad = [o for o in outs if not o.ok]
    reqs = sum(o.requests for o in outs)
    print(f"{len(outs)} seeded fault runs ({a.start}..{a.start + a.runs - 1}): {len(bad)} failed; "
          f"{reqs} requests, {sum(o.completed for o in outs)} completed, "
          f"{sum(o.expired for o in outs)} expired with a reason, 0 lost" if not bad else
          f"{len(outs)} runs: {len(bad)} FAILED (seeds {[o.seed for o in bad][:20]})")
    print(f"crashes {sum(o.crashes for o in outs)}, partitions {sum(o.partitions for o in outs)}, "
          f"messages lost {sum(o.lost for o in outs)}; {time.perf_counter() - t0:.1f} s wall")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
