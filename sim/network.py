"""Discrete-event network simulator that drives the real sans-IO protocol cores.

The simulator replaces the node service and the FPGA backend (docs/esp.md "How the cores are driven"): control messages
are delivered after the fibre delay of their path, the physical layer samples the generation time
of a request from :mod:`hwctl.physics.heralding` (one event per request, not one per 500 ns cycle),
and the workload is the ESP paper's (§VI-B, Table IV): for every edge, one request at a time from a
randomly chosen end, |R| uniform in 1..6, then an exponential back-off of mean 50 ms before the
edge's next request. Each edge's first request also comes after one back-off, so requests form a
Poisson-like process from t = 0.

Protocols: ``esp`` (:class:`~hwctl.protocols.esp.EspNode` per node, control network = quantum
topology), ``dqp`` (:class:`~hwctl.protocols.dqp.DqpNode` per node + a central
:class:`~hwctl.protocols.dqp.DqpScheduler`, star control network; S sits ``scheduler_distance_m`` of
fibre from every node) and ``greedy`` (simulator only: a centralized greedy scheduler with global
knowledge and zero control delay; whenever a request arrives or a generation ends it starts every
waiting request whose two nodes are free, oldest first). ``greedy`` is a reference point, not a
bound: a greedy oldest-first schedule is not optimal, and ESP lands within noise on either side of
it. The provable lower bound on mean latency is in :mod:`hwctl.sim.bound` (docs/esp-scale.md). The old
name ``oracle`` is accepted as a deprecated alias of ``greedy``.

Metrics per request follow §VI-A: L = NL_finish - NL_start (3), SL = L/|R| (5), B = PL_finish -
PL_start (7), W = PL_start - NL_start (8); per run J = population standard deviation of L (4) and
T = pairs generated / (|E_Q| * t) (6). Requests still open when the run ends are counted, not
averaged.

Faults (issue 15): ``NetworkSim(..., faults=FaultModel(...))`` (sim/faults.py) decides each
message's fate and crashes/restarts nodes through :meth:`NetworkSim.crash`/:meth:`NetworkSim.restart`;
``SimConfig(robust=True, fair=True)`` turns on the cores' robust and fair modes
(docs/reliability.md).

Invariant (1) of §IV (a node entangles with at most one peer at a time) is checked on every
generation the physical layer starts; a violation raises ProtocolViolation.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from hwctl.physics import fibre, heralding
from hwctl.protocols.base import (
    AbortAttempts,
    Completed,
    Expired,
    NodeId,
    ProtocolViolation,
    RemoteError,
    Request,
    Send,
    StartAttempts,
)
from hwctl.protocols.dqp import SCHEDULER, DqpNode, DqpScheduler
from hwctl.protocols.esp import EspNode
from hwctl.protocols.reliable import RobustConfig

PROTOCOLS = ("esp", "dqp", "greedy")
#: :meth:`NetworkSim.run` calls its ``on_progress`` every this many events (~0.1-1 s of wall time)
PROGRESS_EVENTS = 20_000
#: deprecated protocol names -> current ones (``oracle`` was the greedy scheduler's first name)
PROTOCOL_ALIASES = {"oracle": "greedy"}


@dataclass(frozen=True)
class SimConfig:
    """Parameters of one run (Table IV defaults)."""

    protocol: str = "esp"
    fidelity: float = 0.75
    duration: float = 120.0
    seed: int = 1
    link_length_m: float = heralding.LINK_LENGTH_M
    mean_backoff: float = heralding.MEAN_BACKOFF
    pairs_min: int = heralding.PAIRS_MIN
    pairs_max: int = heralding.PAIRS_MAX
    qubits_per_node: int = heralding.QUBITS_PER_NODE
    scheduler_distance_m: float = heralding.LINK_LENGTH_M
    eta: float = heralding.ETA
    debug: bool = False
    #: robust mode of the cores (issue 15): retransmission, leases, expiry, restart recovery
    robust: bool = False
    #: bounded waiting (ESP: age tie-break and held WAKE; docs/reliability.md)
    fair: bool = False

    def __post_init__(self) -> None:
        if self.protocol in PROTOCOL_ALIASES:
            object.__setattr__(self, "protocol", PROTOCOL_ALIASES[self.protocol])

    def validate(self) -> None:
        """Check the parameters (protocol, fidelity in [0.5, 1), a finite duration, ...): ValueError
        with one line naming the bad one."""
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if not 0.5 <= self.fidelity < 1.0:
            raise ValueError(f"fidelity must be in [0.5, 1), got {self.fidelity}")
        if not 0 < self.duration < math.inf:
            raise ValueError(f"duration must be a finite number > 0 s, got {self.duration}")
        if not 1 <= self.pairs_min <= self.pairs_max:
            raise ValueError("need 1 <= pairs_min <= pairs_max")
        if self.pairs_max > self.qubits_per_node:
            raise ValueError(f"requests of up to {self.pairs_max} pairs do not fit in "
                             f"{self.qubits_per_node} qubits per node")
        if not 0 < self.mean_backoff < math.inf:
            raise ValueError("mean_backoff must be > 0")


@dataclass(slots=True)
class RequestRecord:
    rid: int
    initiator: str
    remote: str
    pairs: int
    fidelity: float
    t_request: float
    pl_start: float = math.nan
    pl_finish: float = math.nan
    t_finish: float = math.nan
    attempts: int = 0
    expired: str = ""  #: reason, when the request ended without its pairs
    t_expired: float = math.nan

    @property
    def done(self) -> bool:
        return not math.isnan(self.t_finish)


@dataclass
class SimResult:
    config: SimConfig
    topology: str
    nodes: list[str]
    edges: list[tuple[str, str]]
    records: list[RequestRecord]
    events: int
    messages: int
    wall_seconds: float = 0.0
    #: figures of the run; counts (requests, open_requests, pairs, messages) are ints
    summary: dict[str, float | int] = field(default_factory=dict)

    def completed(self) -> list[RequestRecord]:
        """The requests that got all their pairs within the run."""
        return [r for r in self.records if r.done]

    def compute_summary(self) -> dict[str, float | int]:
        """The run's figures (ESP paper §VI-A): completed/open/expired requests, mean latency L (eq. 3)
        and jitter J (eq. 4), mean scaled latency SL (eq. 5), busy and queue times, scaled
        throughput T (eq. 6), pairs and control messages; counts are ints. Also stored in
        ``summary``."""
        done = self.completed()
        lat = [r.t_finish - r.t_request for r in done]
        n = len(lat)
        mean = sum(lat) / n if n else math.nan
        jitter = math.sqrt(sum((x - mean) ** 2 for x in lat) / n) if n else math.nan
        pairs = sum(r.pairs for r in done)
        self.summary = {
            "requests": n,
            "open_requests": sum(1 for r in self.records if not r.done and not r.expired),
            "expired_requests": sum(1 for r in self.records if r.expired),
            "mean_latency_ms": mean * 1e3,
            "jitter_ms": jitter * 1e3,
            "mean_scaled_latency_ms": (sum(x / r.pairs for x, r in zip(lat, done, strict=True)) / n
                                       * 1e3) if n else math.nan,
            "mean_busy_ms": (sum(r.pl_finish - r.pl_start for r in done) / n * 1e3)
            if n else math.nan,
            "mean_queue_ms": (sum(r.pl_start - r.t_request for r in done) / n * 1e3)
            if n else math.nan,
            "throughput_per_edge_s": pairs / (len(self.edges) * self.config.duration),
            "pairs": pairs,
            "messages": self.messages,
        }
        return self.summary

    def columns(self) -> dict[str, list[Any]]:
        """The requests as columns of the shared schema (:mod:`hwctl.schema`, source ``sim``): times in
        seconds from the run's start, NaN while open, latency and its parts derived."""
        recs = self.records
        cols: dict[str, list[Any]] = {
            "rid": [r.rid for r in recs],
            "initiator": [r.initiator for r in recs],
            "remote": [r.remote for r in recs],
            "pairs": [r.pairs for r in recs],
            "fidelity": [r.fidelity for r in recs],
            "t_request_s": [r.t_request for r in recs],
            "pl_start_s": [r.pl_start for r in recs],
            "pl_finish_s": [r.pl_finish for r in recs],
            "t_finish_s": [r.t_finish for r in recs],
            "attempts": [r.attempts for r in recs],
        }
        cols["latency_s"] = [f - t for f, t in zip(cols["t_finish_s"], cols["t_request_s"],
                                                    strict=True)]
        cols["scaled_latency_s"] = [lat / p for lat, p in zip(cols["latency_s"], cols["pairs"],
                                                              strict=True)]
        cols["busy_s"] = [f - s for f, s in zip(cols["pl_finish_s"], cols["pl_start_s"],
                                                strict=True)]
        cols["queue_s"] = [s - t for s, t in zip(cols["pl_start_s"], cols["t_request_s"],
                                                 strict=True)]
        return cols

    def metadata(self) -> dict[str, Any]:
        """The run's metadata in the shared schema (:func:`hwctl.schema.run_metadata`)."""
        from hwctl import schema

        return schema.run_metadata("sim", asdict(self.config), seed=self.config.seed,
                                   summary=self.summary or self.compute_summary(),
                                   topology=self.topology, edges=self.edges)

    def to_parquet(self, path: str | Path) -> Path:
        """Store per-request metrics with the run's parameters, seed and code version, in the
        shared schema (hwctl.schema, docs/data.md)."""
        from hwctl import schema

        return schema.write(path, "requests", "sim", self.columns(), self.metadata())


class NetworkSim:
    """One simulation run. ``workload=None`` uses the paper's; else a fixed list of requests."""

    def __init__(self, graph: nx.Graph, config: SimConfig, *, topology_name: str = "custom",
                 workload: Iterable[Request] | None = None, faults: Any = None,
                 robust: RobustConfig | None = None) -> None:
        config.validate()
        self.g = graph
        self.cfg = config
        self.topology_name = topology_name
        self.rng = random.Random(config.seed)
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self.events = 0
        self.messages = 0
        self.records: dict[int, RequestRecord] = {}
        self._rids = itertools.count(1)
        self._edges = [tuple(sorted(e)) for e in graph.edges]
        self._fixed_workload = workload is not None
        #: fault model (sim/faults.py): decides each message's fate and crashes nodes
        self.faults = faults
        self.robust_cfg = robust if robust is not None else (RobustConfig() if config.robust
                                                              else None)
        self.down: set[NodeId] = set()  # crashed nodes
        self.incarnation: dict[NodeId, int] = {n: 0 for n in [*graph.nodes, SCHEDULER]}
        self._running: dict[int, Request] = {}  # generations in progress
        self.remote_errors: list[RemoteError] = []
        self.lock_violations: list[str] = []
        self._p = heralding.success_probability(config.fidelity, config.eta)
        # physical layer bookkeeping
        self._pending_start: dict[int, tuple[NodeId, float]] = {}
        #: robust mode: the start time each end scheduled, per request (ends meet when they agree)
        self._pending_ends: dict[int, dict[NodeId, float]] = {}
        self._node_free_at: dict[NodeId, float] = {n: 0.0 for n in graph.nodes}
        self._node_peer: dict[NodeId, NodeId | None] = {n: None for n in graph.nodes}
        self._edge_of: dict[int, tuple[NodeId, NodeId]] = {}
        self._timer_at: dict[NodeId, float] = {}
        self._link_delay = {
            (u, v): fibre.delay(graph.edges[u, v].get("length_m", config.link_length_m))
            for u, v in graph.edges
        }
        self._link_delay.update({(v, u): d for (u, v), d in list(self._link_delay.items())})
        self._setup_protocol()
        if workload is not None:
            for req in workload:
                self._at(req.t, self._arrive, req)
        else:
            for edge in self._edges:
                self._at(self._backoff(), self._new_request, edge)

    # -- protocol wiring -------------------------------------------------------------------------

    def _setup_protocol(self) -> None:
        proto = self.cfg.protocol
        self.cores: dict[NodeId, Any] = {}
        if proto == "esp":
            for n in self.g.nodes:
                self.cores[n] = self._esp_core(n)
        elif proto == "dqp":
            d_s = fibre.delay(self.cfg.scheduler_distance_m)
            for n in self.g.nodes:
                self.cores[n] = self._dqp_core(n)
                self._link_delay[n, SCHEDULER] = d_s
                self._link_delay[SCHEDULER, n] = d_s
            self.cores[SCHEDULER] = self._dqp_core(SCHEDULER)
        else:
            # per node: waiting requests touching it, oldest first, as (arrival seq, request);
            # entries of requests already started are dropped lazily (seq not in _live)
            self._wait_at: dict[NodeId, list[tuple[int, Request]]] = {n: [] for n in self.g.nodes}
            self._live: set[int] = set()
            self._wait_seq = itertools.count()
        if self.faults is not None:
            self.faults.install(self)

    @property
    def crashable(self) -> list[NodeId]:
        """Nodes the fault model may crash (DQP: the scheduler too)."""
        return sorted(self.cores) if self.cfg.protocol == "dqp" else sorted(self.g.nodes)

    def _dqp_core(self, n: NodeId) -> DqpNode | DqpScheduler:
        if n == SCHEDULER:
            d_s = fibre.delay(self.cfg.scheduler_distance_m)
            return DqpScheduler({m: d_s for m in self.g.nodes}, robust=self.robust_cfg,
                                incarnation=self.incarnation[n])
        return DqpNode(n, robust=self.robust_cfg, incarnation=self.incarnation[n])

    def _esp_core(self, n: NodeId) -> EspNode:
        delays = {m: self._link_delay[n, m] for m in self.g.neighbors(n)}
        return EspNode(n, delays, debug=self.cfg.debug, robust=self.robust_cfg,
                       fair=self.cfg.fair, incarnation=self.incarnation[n],
                       qubits=self.cfg.qubits_per_node)

    # -- event loop ------------------------------------------------------------------------------

    def _at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), fn, args))

    def run(self, until: float | None = None,
            on_progress: Callable[[float], None] | None = None) -> SimResult:
        """Run to ``until`` (default: the configured duration). ``on_progress(t)`` is called with
        the simulated time every ``PROGRESS_EVENTS`` events (a progress bar; the events and
        their order are the same with or without it)."""
        end = self.cfg.duration if until is None else until
        heap = self._heap
        pop = heapq.heappop
        if on_progress is None:
            while heap and heap[0][0] <= end:
                t, _, fn, args = pop(heap)
                self.now = t
                self.events += 1
                fn(*args)
        else:
            every = PROGRESS_EVENTS
            while heap and heap[0][0] <= end:
                t, _, fn, args = pop(heap)
                self.now = t
                self.events += 1
                fn(*args)
                if self.events % every == 0:
                    on_progress(t)
        self.now = max(self.now, end) if until is None else self.now
        return self.result()

    def run_to_quiescence(self, limit: float = 3600.0) -> SimResult:
        """Run until no event is left (fixed workloads); ``limit`` guards against livelock."""
        heap = self._heap
        while heap:
            t, _, fn, args = heapq.heappop(heap)
            if t > limit:
                raise ProtocolViolation(f"no quiescence before t = {limit} s")
            self.now = t
            self.events += 1
            fn(*args)
        return self.result()

    def result(self) -> SimResult:
        res = SimResult(self.cfg, self.topology_name, sorted(self.g.nodes), self._edges,
                        sorted(self.records.values(), key=lambda r: r.rid), self.events,
                        self.messages)
        res.compute_summary()
        return res

    # -- workload --------------------------------------------------------------------------------

    def _backoff(self) -> float:
        return self.now + self.rng.expovariate(1.0 / self.cfg.mean_backoff)

    def _new_request(self, edge: tuple[NodeId, NodeId]) -> None:
        a, b = edge
        if self.rng.random() < 0.5:
            a, b = b, a
        pairs = self.rng.randint(self.cfg.pairs_min, self.cfg.pairs_max)
        req = Request(next(self._rids), a, b, self.cfg.fidelity, pairs, self.now)
        self._arrive(req)

    def _arrive(self, req: Request) -> None:
        if req.rid in self.records:
            raise ValueError(f"duplicate request id {req.rid}")
        if not self.g.has_edge(req.initiator, req.remote):
            raise ValueError(f"request {req.rid}: {req.initiator}-{req.remote} is not an edge")
        if req.pairs > self.cfg.qubits_per_node:
            raise ValueError(f"request {req.rid}: {req.pairs} pairs > qubits per node")
        self.records[req.rid] = RequestRecord(req.rid, req.initiator, req.remote, req.pairs,
                                              req.fidelity, self.now)
        if self.cfg.protocol == "greedy":
            self._greedy_arrive(req)
        else:
            self._apply(req.initiator, self.cores[req.initiator].submit(req, self.now))

    # -- actions ---------------------------------------------------------------------------------

    def _apply(self, node: NodeId, actions: list[Any]) -> None:
        for act in actions:
            if type(act) is Send:
                msg = act.msg
                self.messages += 1
                delay = self._link_delay[node, msg.dst]
                if self.faults is None:
                    self._at(self.now + delay, self._deliver, msg)
                else:
                    for t in self.faults.arrivals(node, msg.dst, self.now, delay):
                        self._at(t, self._deliver, msg)
            elif type(act) is StartAttempts:
                self._start_attempts(node, act)
            elif type(act) is Completed:
                self._completed(act)
            elif type(act) is Expired:
                self._expired(act)
            elif type(act) is AbortAttempts:
                self._abort(node, act)
            elif type(act) is RemoteError:
                self.remote_errors.append(act)
            else:  # pragma: no cover - cores only emit the kinds above
                raise ProtocolViolation(f"unknown action {act!r}")
        core = self.cores[node]
        t = core.get_timer()
        if t is not None and self._timer_at.get(node) != t:
            self._timer_at[node] = t
            self._at(max(t, self.now), self._timer, node)

    def _deliver(self, msg: Any) -> None:
        if msg.dst in self.down:
            return  # a crashed node receives nothing
        self._apply(msg.dst, self.cores[msg.dst].receive(msg, self.now))

    def _timer(self, node: NodeId) -> None:
        self._timer_at.pop(node, None)
        if node in self.down:
            return
        self._apply(node, self.cores[node].handle_timer(self.now))
        deadline = getattr(self.cores[node], "lock_deadline", None)
        if deadline is not None and deadline() < self.now:
            self.lock_violations.append(f"{node}: lock kept past its lease at t={self.now}")

    def _start_attempts(self, node: NodeId, act: StartAttempts) -> None:
        rid = act.request.rid
        if self.robust_cfg is not None:
            # Under faults an end may still hold the schedule of an aborted earlier attempt (its
            # abort is on the way): the ends meet only when both scheduled the same t_min.
            ends = self._pending_ends.setdefault(rid, {})
            ends[node] = act.t_min
            other_t = ends.get(act.peer)
            if other_t is not None and abs(other_t - act.t_min) <= 1e-12:
                del self._pending_ends[rid]
                self._generate(act.request, max(act.t_min, self.now))
            return
        other = self._pending_start.pop(rid, None)
        if other is None:
            self._pending_start[rid] = (node, act.t_min)
            return
        other_node, t_min = other
        if other_node != act.peer or abs(t_min - act.t_min) > 1e-12:
            raise ProtocolViolation(f"request {rid}: ends disagree ({other_node}@{t_min} vs "
                                    f"{node}@{act.t_min})")
        self._generate(act.request, max(t_min, self.now))

    def _generate(self, req: Request, t_start: float) -> None:
        i, j = req.initiator, req.remote
        for n, peer in ((i, j), (j, i)):
            if self._node_free_at[n] > t_start or self._node_peer[n] is not None:
                raise ProtocolViolation(f"invariant (1) violated: {n} starts with {peer} while "
                                        f"entangling with {self._node_peer[n]}")
            self._node_peer[n] = peer
        duration, attempts = heralding.sample_generation_time(
            self.rng, req.pairs, req.fidelity,
            self.g.edges[i, j].get("length_m", self.cfg.link_length_m), self.cfg.eta)
        rec = self.records[req.rid]
        rec.pl_start = t_start
        rec.attempts = attempts
        self._running[req.rid] = req
        self._at(t_start + duration, self._finish, req)

    def _finish(self, req: Request) -> None:
        if self._running.get(req.rid) is not req:
            return  # aborted (crash, lease) while it ran
        del self._running[req.rid]
        rec = self.records[req.rid]
        rec.pl_finish = self.now
        for n in (req.initiator, req.remote):
            self._node_peer[n] = None
            self._node_free_at[n] = self.now
        if self.cfg.protocol == "greedy":
            self._completed(Completed(req, rec.pl_start, self.now, self.now))
            self._greedy_release(req.initiator, req.remote)
            return
        for n in (req.initiator, req.remote):
            self._apply(n, self.cores[n].attempts_finished(req.rid, self.now))

    def _completed(self, c: Completed) -> None:
        rec = self.records[c.request.rid]
        if rec.done or rec.expired:
            raise ProtocolViolation(f"request {rec.rid} ended twice")
        rec.t_finish = c.t_finish
        self._next_on_edge(c.request)

    def _next_on_edge(self, req: Request) -> None:
        if not self._fixed_workload:
            edge = tuple(sorted((req.initiator, req.remote)))
            self._at(self._backoff(), self._new_request, edge)

    def _expired(self, e: Expired) -> None:
        rec = self.records[e.request.rid]
        if rec.done or rec.expired:
            raise ProtocolViolation(f"request {rec.rid} ended twice")
        rec.expired = e.reason or "?"
        rec.t_expired = e.t
        self._next_on_edge(e.request)

    # -- faults (driven by sim/faults.py) --------------------------------------------------------

    def _stop_generation(self, rid: int, by: NodeId | None) -> None:
        """Drop a pending start or a running generation of ``rid``; the end that still holds its
        Lock (not ``by``, not crashed) is told through ``attempts_failed``."""
        pend = self._pending_start.pop(rid, None)
        if pend is not None and pend[0] != by and pend[0] not in self.down:
            self._apply(pend[0], self.cores[pend[0]].attempts_failed(rid, self.now))
        ends = self._pending_ends.get(rid)
        if ends is not None and by in ends:
            t_by = ends.pop(by)
            for n, t in list(ends.items()):  # the other end of the same attempt
                if abs(t - t_by) <= 1e-12:
                    del ends[n]
                    if n not in self.down:
                        self._apply(n, self.cores[n].attempts_failed(rid, self.now))
            if not ends:
                self._pending_ends.pop(rid, None)
        req = self._running.pop(rid, None)
        if req is not None:
            for n in (req.initiator, req.remote):
                self._node_peer[n] = None
                self._node_free_at[n] = self.now
            for n in (req.initiator, req.remote):
                if n != by and n not in self.down:
                    self._apply(n, self.cores[n].attempts_failed(rid, self.now))

    def _abort(self, node: NodeId, act: AbortAttempts) -> None:
        self._stop_generation(act.request.rid, node)

    def crash(self, node: NodeId) -> None:
        """Node ``node`` loses all its state; its generations stop."""
        if node in self.down:
            return
        self.down.add(node)
        for rid, (n, _) in list(self._pending_start.items()):
            if n == node:
                del self._pending_start[rid]
        for rid, ends in list(self._pending_ends.items()):
            if node in ends:
                self._stop_generation(rid, node)
        for rid, req in list(self._running.items()):
            if node in (req.initiator, req.remote):
                self._stop_generation(rid, node)

    def restart(self, node: NodeId) -> None:
        """Node ``node`` comes back with a new incarnation and resumes its open requests."""
        if node not in self.down:
            return
        self.down.discard(node)
        self.incarnation[node] += 1
        self._timer_at.pop(node, None)
        if self.cfg.protocol == "dqp" and node == SCHEDULER:
            sched = self._dqp_core(node)
            assert isinstance(sched, DqpScheduler)
            self.cores[node] = sched
            self._apply(node, sched.recover(self.now))
            return
        if self.cfg.protocol not in ("esp", "dqp"):
            raise ProtocolViolation("crash/restart needs a protocol with cores")
        core = self._esp_core(node) if self.cfg.protocol == "esp" else self._dqp_core(node)
        self.cores[node] = core
        mine = [Request(r.rid, r.initiator, r.remote, r.fidelity, r.pairs, r.t_request)
                for r in self.records.values()
                if r.initiator == node and not r.done and not r.expired]
        self._apply(node, core.recover(mine, self.now))

    # -- centralized greedy scheduler (zero control delay) ----------------------------------------

    # Semantics: after every arrival and every finished generation, scan all waiting requests
    # oldest first and start each one whose two nodes are free. Invariant between scans: no
    # waiting request has both nodes free (a scan only makes nodes busy). So on an arrival only the
    # new request can start, and when a generation on (i, j) ends only requests touching i or j
    # can; scanning just those, oldest first, starts exactly the requests the full scan would, in
    # the same order (so the same random draws), in O(requests waiting at i and j).

    def _greedy_arrive(self, req: Request) -> None:
        i, j = req.initiator, req.remote
        if self._node_peer[i] is None and self._node_peer[j] is None:
            self._generate(req, self.now)
            return
        entry = (next(self._wait_seq), req)
        self._live.add(entry[0])
        self._wait_at[i].append(entry)
        self._wait_at[j].append(entry)

    def _greedy_release(self, i: NodeId, j: NodeId) -> None:
        live = self._live
        peer = self._node_peer
        cands = sorted({e[0]: e for e in self._wait_at[i] + self._wait_at[j] if e[0] in live}
                       .values(), key=lambda e: e[0])
        for seq, req in cands:
            if peer[req.initiator] is None and peer[req.remote] is None:
                live.discard(seq)
                self._generate(req, self.now)
        self._wait_at[i] = [e for e in self._wait_at[i] if e[0] in live]
        self._wait_at[j] = [e for e in self._wait_at[j] if e[0] in live]


def simulate(graph: nx.Graph, config: SimConfig, topology_name: str = "custom", *,
             on_progress: Callable[[float], None] | None = None) -> SimResult:
    """Run one simulation with the paper's workload and return its result (with wall time);
    ``on_progress(simulated_s)`` now and then (:meth:`NetworkSim.run`)."""
    import time

    t0 = time.perf_counter()
    res = NetworkSim(graph, config, topology_name=topology_name).run(on_progress=on_progress)
    res.wall_seconds = time.perf_counter() - t0
    return res
