"""Explicit-state model checker for the real ESP cores (issue 15).

Explores every interleaving of the events of a small network, breadth first, with each state
stored once (by a canonical key built from every field of every core, the channels and the
physical layer). The cores are the production objects of :mod:`hwctl.protocols.esp`; the checker
only decides the order in which their events happen.

Events of a state:

- the requests (up to 3 per edge; the initiator alternates between the two ends) are all
  submitted at t = 0 in rid order; with ``arrivals=True`` (``--arrivals``) each submission is an
  event of its own instead (requests of one edge in order), a much larger space;
- the delivery of a message: in paper mode the head of each directed link (the paper's
  assumption: reliable FIFO links); in robust mode *any* message in flight (reordering), plus, up
  to a budget per run, its loss, or its delivery with a copy left behind (duplication), and a
  retransmission timeout at any node with unacknowledged messages (timeouts may fire at any time);
- the physical layer: a generation starts when both ends have emitted ``StartAttempts``; then
  each end's ``attempts_finished`` is an event of its own.

Checked in every state: invariant (1) (a node is never in two generations at once), no request
completes twice, no remote error in paper mode. A state without events is *terminal*; a terminal
state where a request is not completed, or a node is not IDLE with empty queues, is a deadlock.
After the search, every state is checked to still have *some* schedule that completes every
request (``traps``: states from which none does, i.e. livelocks that no scheduler can escape).
Arrival numbers are compared only relatively by the cores, so states are keyed with them renamed
to ranks (else the search would never close: paper mode can loop SYN/SYNREJ/WAKE/NACK forever
under an adversarial schedule, each loop drawing fresh arrival numbers).
Time is abstract: every event happens at ``now = 0``; t_min and leases are constants then, and
lease/lifetime expiry is not explored (the seeded simulation of :mod:`hwctl.sim.dst` covers it).

Options (docs/reliability.md gives the arguments): ``--streams`` (one request at a time per edge,
overtaking counted; ``--bound`` checks B = 2 (deg i + deg j - 2)), ``--timed`` (only the schedules
of the timing assumptions T1/T2: a generation ends only when no control message is in flight and
no submission is due, and generations end in start order, both ends at once), ``--por``
(partial-order reduction by persistent sets, with the cycle proviso), ``--digest`` (128-bit state
digests instead of keys), ``--trace`` (the path to the first violation); ``--topology`` also
takes an edge list such as ``X-A,A-B,B-Y``.

    python -m hwctl.sim.modelcheck                  # K3, C4, K1,3 with 1..3 requests per edge
    python -m hwctl.sim.modelcheck --topology K3 --requests 2 --robust --loss 1 --dup 1
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from hwctl.protocols.base import (
    AbortAttempts,
    Completed,
    Expired,
    ProtocolViolation,
    RemoteError,
    Request,
    Send,
    StartAttempts,
)
from hwctl.protocols.esp import EspMessage, EspNode, MsgType
from hwctl.protocols.reliable import RobustConfig
from hwctl.sim import topologies

D = 10e-6
#: robust mode timeouts: leases and lifetimes never expire in the checker (time is abstract)
MC_ROBUST = RobustConfig(rto=1e-4, rto_max=1e-3, lease=1e9, busy_lease=1e9, request_ttl=1e9)


def _core_key(c: EspNode) -> tuple:
    """Placeholder kept per core; the state key (with arrival numbers renamed) is built by
    :func:`_state_key`."""
    return ()


def _live_arrivals(c: EspNode, out: dict[str, set[int]]) -> None:
    mine = out.setdefault(c.name, set())
    mine.update(it.arrival for it in c.q_main)
    mine.update(it.arrival for it in c.s_sleep)
    for it in (c.s_sent, c.s_wake):
        if it is not None:
            mine.add(it.arrival)
    for lk in [c.lock, *c.q_ready]:
        if lk is not None and lk.arrival is not None:
            mine.add(lk.arrival)
    for waker, wid in c.owed.items():
        out.setdefault(waker, set()).add(wid)


def _age_rank(age: tuple[float, int] | None, live: list[tuple[float, int]]) -> Any:
    """An R_wake's recorded age, keyed by its place among the ages of the requests not started
    yet: the cores compare it only with those (requests submitted later are younger than all),
    so states that agree on the place behave the same."""
    if age is None:
        return None
    k = bisect.bisect_left(live, age)
    return (k, k < len(live) and live[k] == age)


def _core_key_ranked(c: EspNode, rank: dict[str, dict[int, int]],
                     floor: dict[tuple[str, str], int],
                     live: list[tuple[float, int]] | None = None) -> tuple:
    """Every field of the core, with arrival numbers replaced by their rank among the node's live
    ones: the cores only compare arrival numbers (order, equality), and a new one is always
    larger than all live ones, so states that differ only by an order-preserving renaming behave
    the same (this keeps the state space finite although arrival numbers grow without bound)."""
    r = rank[c.name]
    lock = c.lock
    arq = None
    if c.arq is not None:
        # sequence numbers relative to each stream's floor (see _floors)
        # the unacknowledged messages with their contents: a retransmission puts one back in
        # flight, and a message in the peer's reorder buffer (always one of these) reaches ESP
        arq = tuple((p, ln.peer_inc, ln.out_seq - floor[(c.name, p)],
                     tuple(_msg_key(ln.unacked[s].msg, rank, floor) for s in sorted(ln.unacked)),
                     ln.in_key,
                     ln.in_next - floor[(p, c.name)],
                     tuple(s - floor[(p, c.name)] for s in sorted(ln.inbuf)))
                    for p, ln in sorted(c.arq.links.items()))
    return (
        tuple(sorted((r[it.arrival], it.request.rid if it.request else -1, it.wake_target or "",
                      it.woken, _age_rank(it.age, live or [])) for it in c.q_main)),
        tuple(lk.request.rid for lk in c.q_ready),
        None if c.s_sent is None else (c.s_sent.request.rid if c.s_sent.request else -1,
                                       r[c.s_sent.arrival], c.s_sent.woken),
        None if c.s_wake is None else (r[c.s_wake.arrival], c.s_wake.wake_target,
                                       _age_rank(c.s_wake.age, live or [])),
        tuple((r[it.arrival], it.request.rid) for it in c.s_sleep if it.request is not None),
        None if lock is None else (lock.peer, lock.request.rid,
                                   None if lock.arrival is None else r[lock.arrival],
                                   lock.state.value),
        tuple(sorted((w, rank[w][wid]) for w, wid in c.owed.items())),
        tuple(sorted(c._dead)),
        arq,
    )


def _wake_owner(m: EspMessage) -> str | None:
    """Whose arrival number a message carries: WAKE its sender's, a wake NACK its receiver's."""
    if int(m.kind) == 6:
        return m.src
    if int(m.kind) == 5 and m.wake:
        return m.dst
    return None


def _floors(cores: tuple[EspNode, ...]) -> dict[tuple[str, str], int]:
    """Robust mode: the *floor* of each directed stream a -> b, the highest id that b has
    acknowledged to a (a's unacknowledged ids are exactly floor+1 .. out_seq: a cumulative ack
    removes a prefix and new ids are appended). Every id of the stream that still matters lies
    in [floor, out_seq] (b's in_next - 1 >= floor, b's reorder buffer, data in flight not yet
    acknowledged, acks >= floor), and :class:`~hwctl.protocols.reliable.Arq` only compares ids
    of one stream with each other, so shifting them all by -floor is a bisimulation."""
    out: dict[tuple[str, str], int] = {}
    for c in cores:
        if c.arq is None:
            continue
        for p, ln in c.arq.links.items():
            out[(c.name, p)] = (min(ln.unacked) - 1) if ln.unacked else ln.out_seq
    return out


def _msg_key(m: EspMessage, rank: dict[str, dict[int, int]],
             floor: dict[tuple[str, str], int] | None = None) -> tuple:
    seq = m.seq
    rid = m.rid
    if floor:
        if m.kind == MsgType.LINK_ACK:
            f = floor[(m.dst, m.src)]
            if rid < f:  # acknowledges nothing still unacknowledged, and no new ack can equal it
                return (m.src, m.dst, int(m.kind), -1, False, 0, 0, 0)
            rid -= f
        else:
            f = floor[(m.src, m.dst)]
            if seq <= f:  # acknowledged: a duplicate on arrival, never sent again
                return (m.src, m.dst, 0, 0, False, 0, 0, 0)
            seq -= f
    owner = _wake_owner(m)
    if owner is not None:
        rid = rank[owner][m.rid]
    return (m.src, m.dst, int(m.kind), rid, m.wake, seq, m.inc, m.dinc)


def _state_key(st: _State) -> tuple:
    live: dict[str, set[int]] = {c.name: set() for c in st.cores}
    for c in st.cores:
        _live_arrivals(c, live)
    msgs = list(st.chans) if not isinstance(st.chans, tuple) else [m for lk in st.chans for m in lk]
    floor = _floors(st.cores)
    for c in st.cores:  # unacknowledged messages (in flight or not) carry wake ids too
        if c.arq is not None:
            msgs += [o.msg for ln in c.arq.links.values() for o in ln.unacked.values()]
    for m in msgs:
        owner = _wake_owner(m)
        if owner is not None and not (floor and m.seq <= floor[(m.src, m.dst)]):
            live[owner].add(m.rid)
    rank = {n: {a: k for k, a in enumerate(sorted(v))} for n, v in live.items()}
    ages: set[tuple[float, int]] = set()
    for c in st.cores:
        for it in [*c.q_main, *c.s_sleep, c.s_sent]:
            if it is not None and it.request is not None:
                ages.add((it.request.t, it.request.rid))
    live = sorted(ages)
    cores = tuple(_core_key_ranked(c, rank, floor, live) for c in st.cores)
    if isinstance(st.chans, tuple):
        ch: Any = tuple(tuple(_msg_key(m, rank) for m in link) for link in st.chans)
    else:  # a multiset: stale copies of one stream are interchangeable
        ch = tuple(sorted(_msg_key(m, rank, floor) for m in st.chans))
    # sets as sorted tuples: equal keys then have equal reprs (the digests of --digest)
    return (cores, ch, tuple(sorted(st.started)), tuple(sorted(st.running)),
            tuple(sorted(st.done)), st.submitted, st.loss, st.dup, st.waiting, st.gens)


@dataclass(frozen=True)
class _State:
    cores: tuple[EspNode, ...]
    keys: tuple[tuple, ...]
    chans: tuple  # paper: tuple per directed link of message tuples; robust: frozenset of msgs
    started: frozenset  # (rid, node) StartAttempts emitted, generation not begun
    running: frozenset  # (rid, node) in a generation, not finished at that node
    done: frozenset  # completed rids
    submitted: tuple[int, ...]  # per edge: how many requests submitted
    loss: int
    dup: int
    #: streams mode: requests submitted and not started, in submission order, each with how
    #: many requests sharing a node with it arrived later and started first (overtakes)
    waiting: tuple[tuple[int, int], ...] = ()
    #: timed mode: the running generations in the order they started (the next to end first)
    gens: tuple[int, ...] = ()

    def key(self) -> tuple:
        return _state_key(self)


@dataclass
class Result:
    topology: str
    requests_per_edge: int
    robust: bool
    fair: bool
    states: int = 0
    transitions: int = 0
    terminal: int = 0
    deadlocks: int = 0
    violations: int = 0
    traps: int = -1  #: states from which no schedule completes every request (-1: not checked)
    cut: int = 0  #: states with a transition beyond the in-flight bound (not explored)
    reduced: int = 0  #: states expanded with a persistent set smaller than every transition
    proviso: int = 0  #: reduced expansions replaced by the full one (cycle proviso)
    por: bool = False
    worst_overtaken: int = -1  #: streams mode: most overtakes of one request (-1: not checked)
    wall_s: float = 0.0
    complete: bool = True
    first_problem: str = ""
    trace: list[str] = field(default_factory=list)  #: path to the first violation
    stopped: str = ""  #: why the search stopped before the end (deadline), if it did
    examples: list[str] = field(default_factory=list)

    def line(self) -> str:
        mode = ("robust" if self.robust else "paper") + ("+fair" if self.fair else "")
        return (f"{self.topology:5s} {self.requests_per_edge} req/edge {mode:12s} "
                f"states {self.states:>9,d} transitions {self.transitions:>10,d} "
                f"terminal {self.terminal:>6,d} violations {self.violations} deadlocks "
                f"{self.deadlocks} traps {self.traps} "
                f"{'exhaustive' if self.complete else ('STOPPED at ' + self.stopped) if self.stopped else 'CUT at state limit'} "
                + (f"worst overtaken {self.worst_overtaken} " if self.worst_overtaken >= 0 else "")
                + (f"cut {self.cut} " if self.cut else "")
                + (f"por (reduced {self.reduced:,d}, proviso {self.proviso:,d}) " if self.por else "")
                + f"{self.wall_s:7.1f} s")


class Checker:
    def __init__(self, g: nx.Graph, requests_per_edge: int, *, robust: bool = False,
                 fair: bool = False, loss: int = 0, dup: int = 0, arrivals: bool = False,
                 joint_finish: bool = False, inflight: int | None = None,
                 premature_timeouts: bool = False, streams: bool = False,
                 check_bound: bool = False, por: bool = False, digest: bool = False,
                 timed: bool = False) -> None:
        #: timing assumptions of the bounded-waiting bound (docs/reliability.md): (T1) control is
        #: fast: a generation ends only when no control message is in flight and no submission
        #: is due; (T2) generations last equally long: they end in the order they started, both
        #: ends at once
        self.timed = timed
        self.arrivals = arrivals
        #: partial-order reduction (persistent sets, see :meth:`_persistent`): only for the
        #: static workload on FIFO links (paper/fair cores, every request submitted at t = 0)
        self.por = por and not (robust or arrivals or streams or joint_finish or timed)
        #: store 128-bit digests of the state keys instead of the keys (hash compaction)
        self.digest = digest
        self._reduced = False
        #: robust mode: at most this many messages in flight (a transition that would put more
        #: on the network is not explored; states where that happened are counted as *cut*)
        self.inflight = inflight
        #: robust mode: timeouts may also fire while a message's ack is on its way (spurious
        #: retransmissions); off: only a lost message is retransmitted (duplicates then come
        #: from the duplication budget)
        self.premature_timeouts = premature_timeouts
        self._pruned = False
        self.progress = False
        self.joint_finish = joint_finish
        self.g = g
        self.robust = robust
        self.fair = fair
        self.loss_budget = loss if robust else 0
        self.dup_budget = dup if robust else 0
        self.names = sorted(g.nodes)
        self.idx = {n: k for k, n in enumerate(self.names)}
        self.edges = sorted(tuple(sorted(e)) for e in g.edges)
        self.links = [(u, v) for u in self.names for v in self.names if g.has_edge(u, v)]
        self.link_idx = {lk: k for k, lk in enumerate(self.links)}
        self.reqs: list[list[Request]] = []
        rid = 0
        for u, v in self.edges:
            row = []
            for k in range(requests_per_edge):
                rid += 1
                a, b = (u, v) if k % 2 == 0 else (v, u)
                row.append(Request(rid, a, b, 0.75, 1, 0.0))
            self.reqs.append(row)
        self.n_requests = rid
        #: streams mode (``--streams``): the paper's workload, one request at a time per edge:
        #: request n+1 of an edge is submitted when request n completed; checks bounded waiting
        self.streams = streams
        self.ends = {r.rid: frozenset((r.initiator, r.remote)) for row in self.reqs for r in row}
        self._nbrs = {n: set(g.neighbors(n)) for n in self.names}
        #: B = 2 (deg i + deg j - 2) for a request on edge (i, j) (docs/reliability.md)
        self.bound = {r.rid: 2 * (g.degree(r.initiator) + g.degree(r.remote) - 2)
                      for row in self.reqs for r in row}
        self.worst = 0  #: the most overtakes of one request seen (streams mode)
        #: streams mode: the most overtakes of one request, per edge
        self.worst_edge: dict[tuple[str, str], int] = {}
        self.edge_of = {r.rid: e for e, row in zip(self.edges, self.reqs, strict=True) for r in row}
        #: streams mode: a request overtaken more than B times is a violation (else: measured)
        self.check_bound = check_bound

    def initial(self) -> _State:
        cores = tuple(EspNode(n, {m: D for m in self.g.neighbors(n)},
                              robust=MC_ROBUST if self.robust else None, fair=self.fair)
                      for n in self.names)
        chans: Any = frozenset() if self.robust else tuple(() for _ in self.links)
        st = _State(cores, tuple(_core_key(c) for c in cores), chans, frozenset(), frozenset(),
                    frozenset(), tuple(0 for _ in self.edges), 0, 0)
        if self.streams:  # the first request of every edge is there at t = 0, in rid order
            for e in range(len(self.reqs)):
                st = self._submit(st, e)
        elif not self.arrivals:  # every request is there at t = 0, in rid order
            for row in self.reqs:
                for r in row:
                    st = self._apply(st, r.initiator, lambda c, r=r: c.submit(r, 0.0))
            st = dataclasses.replace(st, submitted=tuple(len(row) for row in self.reqs))
        return st

    # -- successor generation ----------------------------------------------------------------

    def _apply(self, st: _State, node: str, fn: Any, *, chans: Any = None, loss: int | None = None,
               dup: int | None = None, submitted: tuple[int, ...] | None = None,
               running: frozenset | None = None,
               waiting: tuple[tuple[int, int], ...] | None = None,
               gens: tuple[int, ...] | None = None) -> _State:
        """Run ``fn(core)`` on a copy of ``node``'s core and fold its actions into a new state."""
        k = self.idx[node]
        core = st.cores[k].clone()
        try:
            acts = fn(core)
        except ProtocolViolation as exc:  # a core caught itself in an impossible state
            raise _Violation(f"protocol violation: {exc}") from exc
        cores = list(st.cores)
        keys = list(st.keys)
        cores[k] = core
        chans = st.chans if chans is None else chans
        started = set(st.started)
        run = set(st.running if running is None else running)
        done = set(st.done)
        sends = []
        waiting = st.waiting if waiting is None else waiting
        gens = st.gens if gens is None else gens
        for a in acts:
            if isinstance(a, Send):
                sends.append(a.msg)
            elif isinstance(a, StartAttempts):
                started.add((a.request.rid, node))
                if (a.request.rid, a.peer) in started:
                    for n in (node, a.peer):
                        if any(x[1] == n for x in run):
                            raise _Violation(f"invariant (1): {n} starts {a.request.rid} while in "
                                             f"another generation")
                    started -= {(a.request.rid, node), (a.request.rid, a.peer)}
                    run |= {(a.request.rid, node), (a.request.rid, a.peer)}
                    if self.streams:
                        waiting = self._started(waiting, a.request.rid)
                    if self.timed:
                        gens = gens + (a.request.rid,)
            elif isinstance(a, Completed):
                if a.request.rid in done:
                    raise _Violation(f"request {a.request.rid} completed twice")
                done.add(a.request.rid)
            elif isinstance(a, RemoteError):
                # robust mode here has no restarts and no expiry: the link layer must hand ESP
                # exactly-once, in-order delivery, so ESP may never see a bad message
                raise _Violation(f"remote error: {a.reason}")
            elif isinstance(a, (Expired, AbortAttempts)):
                raise _Violation(f"unexpected {type(a).__name__} with abstract time: {a}")
        if self.robust:
            chans = chans | frozenset(sends)
        else:
            chans = list(chans)
            for m in sends:
                li = self.link_idx[(m.src, m.dst)]
                chans[li] = chans[li] + (m,)
            chans = tuple(chans)
        keys[k] = ()
        return _State(tuple(cores), tuple(keys), chans, frozenset(started), frozenset(run),
                      frozenset(done), st.submitted if submitted is None else submitted,
                      st.loss if loss is None else loss, st.dup if dup is None else dup, waiting,
                      gens)

    def _submit(self, st: _State, e: int) -> _State:
        n = st.submitted[e]
        r = self.reqs[e][n]
        if self.streams:  # t = the submission's rank: fair mode's age is arrival order
            r = dataclasses.replace(r, t=float(sum(st.submitted)))
        sub = st.submitted[:e] + (n + 1,) + st.submitted[e + 1:]
        waiting = st.waiting + ((r.rid, 0),) if self.streams else st.waiting
        return self._apply(st, r.initiator, lambda c: c.submit(r, 0.0), submitted=sub,
                           waiting=waiting)

    def _started(self, waiting: tuple[tuple[int, int], ...], rid: int) -> tuple:
        """Request ``rid`` starts: every request waiting since before it at one of its nodes is
        overtaken once more; the bound B is checked there (docs/reliability.md)."""
        nodes = self.ends[rid]
        out = []
        before = True
        for w, k in waiting:
            if w == rid:
                before = False
                continue
            if before and nodes & self.ends[w]:
                k += 1
                if self.check_bound and k > self.bound[w]:
                    raise _Violation(f"bounded waiting: request {w} overtaken {k} times > "
                                     f"B = {self.bound[w]}")
                self.worst = max(self.worst, k)
                e = self.edge_of[w]
                if k > self.worst_edge.get(e, 0):
                    self.worst_edge[e] = k
            out.append((w, k))
        return tuple(out)

    def successors(self, st: _State, full: bool = False) -> list[_State]:
        self._reduced = False
        self._pruned = False
        if self.por and not full:
            nodes = self._persistent(st)
            if nodes is not None:
                self._reduced = True
                return self._paper_successors(st, nodes)
        out = self._successors(st)
        self._pruned = False
        if self.inflight is not None:
            kept = [s for s in out if len(s.chans) <= self.inflight]
            self._pruned = len(kept) != len(out)
            out = kept
        return out

    def _successors(self, st: _State) -> list[_State]:
        out = []
        for e, row in enumerate(self.reqs):
            n = st.submitted[e]
            if n < len(row) and (not self.streams or row[n - 1].rid in st.done):
                out.append(self._submit(st, e))
        if self.robust:
            for m in st.chans:
                rest = st.chans - {m}
                out.append(self._apply(st, m.dst, lambda c, m=m: c.receive(m, 0.0), chans=rest))
                if st.dup < self.dup_budget:
                    out.append(self._apply(st, m.dst, lambda c, m=m: c.receive(m, 0.0),
                                           dup=st.dup + 1))
                if st.loss < self.loss_budget:
                    out.append(_State(st.cores, st.keys, rest, st.started, st.running, st.done,
                                      st.submitted, st.loss + 1, st.dup, st.waiting, st.gens))
            for k, c in enumerate(st.cores):
                if c.arq is not None and c.arq.next_deadline() is not None:
                    resend = {m for lk in c.arq.links.values() for m in
                              (o.msg for o in lk.unacked.values())}
                    if self.premature_timeouts:
                        missing = not resend <= st.chans  # delivered, or lost
                    else:  # only a lost message or a lost ack times out (rto > round trip)
                        missing = any(m not in st.chans and (self._undelivered(st, m)
                                                             or not self._acked_in_flight(st, m))
                                      for m in resend)
                    if missing:
                        out.append(self._apply(st, self.names[k],
                                               lambda c: [Send(m) for m in c.arq.due(1e18)]))
        else:
            for li, link in enumerate(st.chans):
                if link:
                    m = link[0]
                    chans = st.chans[:li] + (link[1:],) + st.chans[li + 1:]
                    out.append(self._apply(st, m.dst, lambda c, m=m: c.receive(m, 0.0),
                                           chans=chans))
        if self.timed:
            if out or any(st.chans) or not st.gens:
                return out  # (T1) control and submissions first
            rid = st.gens[0]  # (T2) the oldest generation ends, at both ends at once
            s2 = dataclasses.replace(st, gens=st.gens[1:])
            for node in sorted(n for r, n in st.running if r == rid):
                s2 = self._apply(s2, node, lambda c, rid=rid: c.attempts_finished(rid, 0.0),
                                 running=s2.running - {(rid, node)})
            out.append(s2)
            return out
        if self.joint_finish:  # both ends learn the end of a generation in one step
            for rid in sorted({rid for rid, _ in st.running}):
                ends = sorted(n for r, n in st.running if r == rid)
                s2 = st
                for node in ends:
                    s2 = self._apply(s2, node, lambda c, rid=rid: c.attempts_finished(rid, 0.0),
                                     running=s2.running - {(rid, node)})
                out.append(s2)
            return out
        for rid, node in sorted(st.running):
            out.append(self._apply(st, node, lambda c, rid=rid: c.attempts_finished(rid, 0.0),
                                   running=st.running - {(rid, node)}))
        return out

    def _paper_successors(self, st: _State, nodes: frozenset[str]) -> list[_State]:
        """The transitions of ``nodes`` only: deliveries to them and their attempts_finished."""
        out = []
        for li, link in enumerate(st.chans):
            if link and link[0].dst in nodes:
                m = link[0]
                chans = st.chans[:li] + (link[1:],) + st.chans[li + 1:]
                out.append(self._apply(st, m.dst, lambda c, m=m: c.receive(m, 0.0), chans=chans))
        for rid, node in sorted(st.running):
            if node in nodes:
                out.append(self._apply(st, node, lambda c, rid=rid: c.attempts_finished(rid, 0.0),
                                       running=st.running - {(rid, node)}))
        return out

    def _persistent(self, st: _State) -> frozenset[str] | None:
        """A set of nodes N whose enabled transitions form a *persistent set* (Godefroid 1996,
        LNCS 1032, def. 4.1), or None when the smallest one found is every active node.

        A node's transitions are the delivery of the head of each non-empty link into it and
        its attempts_finished; each changes only that node's core, removes the head of one link
        into it and appends to links out of it (plus the shared started/running/done sets).
        Transitions of nodes outside N cannot enable, disable or change a transition of N, and
        commute with it, as long as (a) no node that can act before N does (``reach``: the
        active nodes outside N and whatever their messages can wake, without N's help) has an
        *empty* link into N (appending behind a head leaves the head alone: FIFO), and (b) the
        two ends of a generation with one half started (``started``) are both in N or both out
        (the second half starts the generation and enables the other end's attempts_finished).
        N is grown from each active node to the least set closed under (a) and (b); the smallest
        is taken. docs/reliability.md gives the proof that deadlocks, violations and traps are
        preserved (with the cycle proviso applied in :meth:`run`)."""
        active: set[str] = set()
        for link in st.chans:
            if link:
                active.add(link[0].dst)
        running_nodes = {n for _, n in st.running}
        active |= running_nodes
        if len(active) <= 1:
            return None
        couple: dict[str, set[str]] = {}
        for rid, n in st.started:
            peer = self._peer_of(rid, n)
            couple.setdefault(n, set()).add(peer)
            couple.setdefault(peer, set()).add(n)
        nonempty = {self.links[li] for li, link in enumerate(st.chans) if link}
        best: frozenset[str] | None = None
        best_size = 1 << 30
        for seed in sorted(active):
            n_set = {seed}
            while True:
                # nodes that can act along a path of transitions outside N
                reach = active - n_set
                stack = list(reach)
                while stack:
                    x = stack.pop()
                    for y in self._nbrs[x] | couple.get(x, set()):
                        if y not in n_set and y not in reach:
                            reach.add(y)
                            stack.append(y)
                add = set()
                for n in n_set:
                    for x in self._nbrs[n]:
                        if x not in n_set and x in reach and (x, n) not in nonempty:
                            add.add(x)
                    for x in couple.get(n, ()):
                        if x not in n_set:
                            add.add(x)
                if not add:
                    break
                n_set |= add
            size = sum(1 for lk in nonempty if lk[1] in n_set) + sum(
                1 for n in running_nodes if n in n_set)
            if n_set >= active:
                continue
            if size < best_size:
                best, best_size = frozenset(n_set), size
        return best

    def _peer_of(self, rid: int, node: str) -> str:
        a, b = self.ends[rid]
        return b if node == a else a

    def _trace(self, parent: list[tuple[int, int, bool]], sid: int) -> list[str]:
        """The path from the initial state to state ``sid``, replayed, one line per state."""
        path = []
        while sid > 0:
            p, idx, full = parent[sid]
            path.append((idx, full))
            sid = p
        st = self.initial()
        lines = [self.describe(st)]
        for idx, full in reversed(path):
            st = self.successors(st, full=full)[idx]
            lines.append(self.describe(st))
        return lines

    def describe(self, st: _State) -> str:
        """One line: every node's state (with its Lock's request), messages in flight, running
        generations and the waiting requests with their overtaking counts."""
        nodes = []
        for c in st.cores:
            lk = f"[{c.lock.request.rid}]" if c.lock is not None else ""
            sl = ",".join(str(r.rid) for r in c.sleeping())
            nodes.append(f"{c.name}:{c.state.value}{lk}" + (f" sleep {sl}" if sl else ""))
        msgs = [m for lk in st.chans for m in lk] if isinstance(st.chans, tuple) else list(st.chans)
        fl = " ".join(f"{m.src}>{m.dst}:{m.kind.name}{m.rid}" for m in msgs)
        return (" | ".join(nodes) + f" || flight {fl or '-'} || gens {list(st.gens)} "
                f"done {sorted(st.done)} waiting {list(st.waiting)}")

    def _key(self, st: _State) -> Any:
        """The state's canonical key, or its 128-bit BLAKE2b digest with ``digest=True`` (hash
        compaction: two distinct states merge only on a digest collision, probability
        < n^2 / 2^129 for n states, e.g. < 10^-24 for 10^7 states)."""
        k = st.key()
        if self.digest:
            return hashlib.blake2b(repr(k).encode(), digest_size=16).digest()
        return k

    def _undelivered(self, st: _State, m: EspMessage) -> bool:
        ln = st.cores[self.idx[m.dst]].arq.links[m.src]  # type: ignore[union-attr]
        return m.seq >= ln.in_next and m.seq not in ln.inbuf

    @staticmethod
    def _acked_in_flight(st: _State, m: EspMessage) -> bool:
        return any(a.kind == MsgType.LINK_ACK and a.src == m.dst and a.dst == m.src
                   and a.rid >= m.seq for a in st.chans)

    def terminal_problem(self, st: _State) -> str:
        if len(st.done) != self.n_requests:
            return f"deadlock: {self.n_requests - len(st.done)} request(s) never complete"
        for c in st.cores:
            if c.state.value != "IDLE" or c.q_main or c.q_ready or c.s_sleep:
                return f"deadlock: {c.name} ends in {c.state.value} with queued work"
            if c.arq is not None and any(ln.unacked for ln in c.arq.links.values()):
                return f"deadlock: {c.name} ends with unacknowledged messages"
        return ""

    def run(self, max_states: int = 5_000_000, name: str = "?") -> Result:
        res = Result(name, len(self.reqs[0]) if self.reqs else 0, self.robust, self.fair,
                     por=self.por)
        t0 = time.perf_counter()
        init = self.initial()
        seen = {self._key(init): 0}
        frontier = deque([(0, init)])
        preds: list[list[int]] = [[]]  # predecessors of each state id, for the progress check
        #: first parent and successor index of each state (for counterexample traces)
        parent: list[tuple[int, int, bool]] = [(-1, -1, False)]
        good: list[int] = []  # terminal states where everything completed
        cut: list[int] = []  # states with transitions beyond the in-flight bound
        while frontier:
            sid, st = frontier.popleft()
            try:
                succ = self.successors(st)
                keys = [self._key(s) for s in succ]
                if self._reduced and any(k in seen for k in keys):
                    # cycle proviso: a reduced expansion that reaches a state already seen is
                    # replaced by the full one, so every cycle has a fully expanded state
                    res.proviso += 1
                    succ = self.successors(st, full=True)
                    keys = [self._key(s) for s in succ]
                elif self._reduced:
                    res.reduced += 1
            except _Violation as exc:
                res.violations += 1
                if not res.first_problem:
                    res.first_problem = str(exc)
                    res.trace = self._trace(parent, sid)
                continue
            if self._pruned:
                cut.append(sid)
            if not succ:
                if self._pruned:  # only transitions beyond the in-flight bound: not terminal
                    continue
                res.terminal += 1
                p = self.terminal_problem(st)
                if p:
                    res.deadlocks += 1
                    res.first_problem = res.first_problem or p
                else:
                    good.append(sid)
                continue
            full_exp = not self._reduced
            for idx, (s, k) in enumerate(zip(succ, keys, strict=True)):
                res.transitions += 1
                tid = seen.get(k)
                if tid is None:
                    tid = len(seen)
                    seen[k] = tid
                    preds.append([])
                    if self.progress and tid % 100_000 == 0:
                        print(f"  {name}: {tid:,d} states, frontier {len(frontier):,d}, "
                              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
                    if len(seen) > max_states:
                        res.complete = False
                        frontier.clear()
                        break
                    frontier.append((tid, s))
                    parent.append((sid, idx, full_exp))
                preds[tid].append(sid)
        res.states = len(seen)
        res.cut = len(cut)
        if self.streams:
            res.worst_overtaken = self.worst
        if res.complete:
            # progress: from every reachable state some schedule still completes every request
            # (no livelock trap); backward search from the good terminal states
            # (a cut state counts as able to complete: what lies beyond the bound is unexplored)
            ok = bytearray(len(seen))
            stack = list(good) + cut
            for g in stack:
                ok[g] = 1
            while stack:
                for p in preds[stack.pop()]:
                    if not ok[p]:
                        ok[p] = 1
                        stack.append(p)
            res.traps = len(seen) - sum(ok)
            if res.traps and not res.first_problem:
                res.first_problem = f"{res.traps} states from which no schedule completes"
        del preds
        res.wall_s = time.perf_counter() - t0
        return res


class _Violation(Exception):
    pass


TOPOLOGIES = ["K3", "C4", "K1,3"]


def graph(topology: str) -> nx.Graph:
    """A named topology (hwctl.sim.topologies), or an edge list such as ``X-A,A-B,B-Y`` (a path)."""
    if "-" not in topology:
        return topologies.by_name(topology)
    g = nx.Graph()
    for e in topology.split(","):
        u, v = e.split("-")
        g.add_edge(u.strip(), v.strip())
    return g


def check(topology: str, requests_per_edge: int, **kw: Any) -> Result:
    """Explore ``topology`` with ``requests_per_edge``; ``engine`` "auto" (the default) runs
    paper/fair mode with the fast engine (:mod:`hwctl.sim.mcfast`: the same search and counts,
    memoised core transitions), robust mode with its extension (:mod:`hwctl.sim.mcrobust`), and
    ``por``/``digest`` (and robust mode with streams, arrivals or timing) with
    :class:`Checker`; "old" forces :class:`Checker`, "fast" the fast engine."""
    max_states = kw.pop("max_states", 5_000_000)
    progress = kw.pop("progress", False)
    engine = kw.pop("engine", "auto")
    deadline_s = kw.pop("deadline_s", None)
    c = Checker(graph(topology), requests_per_edge, **kw)
    c.progress = progress
    if c.robust:
        fast_ok = not (c.por or c.digest or c.streams or c.arrivals or c.timed
                       or c.joint_finish or c.premature_timeouts)
    else:
        fast_ok = not (c.por or c.inflight is not None or c.digest)
    if engine == "fast" and not fast_ok:
        raise ValueError("the fast engine does not cover --por/--digest, nor robust mode with "
                         "--streams/--arrivals/--timed")
    if engine == "fast" or (engine == "auto" and fast_ok):
        from hwctl.sim.mcfast import FastEngine
        from hwctl.sim.mcrobust import RobustEngine

        eng = RobustEngine(c) if c.robust else FastEngine(c)
        return eng.run(max_states, topology, progress, deadline_s)
    return c.run(max_states, topology)


def main(argv: list[str] | None = None) -> int:
    from hwctl.cli import OneLineParser  # a usage error is one line on stderr, exit 2

    ap = OneLineParser(prog="python -m hwctl.sim.modelcheck",
                       description=__doc__.split("\n\n")[0])
    ap.add_argument("--topology", action="append", help="K3, C4, K1,3, ... (repeatable)")
    ap.add_argument("--requests", type=int, action="append",
                    help="requests per edge, any integer >= 1 (repeatable; default: 1, 2 and 3)")
    ap.add_argument("--engine", choices=["auto", "fast", "old"], default="auto",
                    help="auto (default): the fast engine (hwctl.sim.mcfast, hwctl.sim.mcrobust) "
                         "where it applies, the original checker for --por/--digest and robust "
                         "mode with --streams/--arrivals/--timed")
    ap.add_argument("--robust", action="store_true", help="robust cores, reordering channels")
    ap.add_argument("--fair", action="store_true", help="bounded-waiting mode")
    ap.add_argument("--loss", type=int, default=0, help="robust: messages that may be lost")
    ap.add_argument("--dup", type=int, default=0, help="robust: messages that may be duplicated")
    ap.add_argument("--max-states", type=int, default=5_000_000)
    ap.add_argument("--deadline", type=float, default=None, metavar="SECONDS",
                    help="fast engine: stop after this much wall time and report the part "
                         "explored (not exhaustive)")
    ap.add_argument("--timed", action="store_true",
                    help="only the schedules of the timing assumptions T1, T2 of the bounded-"
                         "waiting bound (docs/reliability.md)")
    ap.add_argument("--por", action="store_true",
                    help="partial-order reduction (persistent sets; sound, see docs)")
    ap.add_argument("--digest", action="store_true",
                    help="store 128-bit digests of the states (hash compaction)")
    ap.add_argument("--progress", action="store_true", help="print progress to stderr")
    ap.add_argument("--trace", action="store_true",
                    help="print the path to the first violation (one line per state)")
    ap.add_argument("--streams", action="store_true",
                    help="one request at a time per edge (the next when the last completed); "
                         "checks the bounded-waiting bound B")
    ap.add_argument("--bound", action="store_true",
                    help="streams: overtaken more than B = 2 (deg i + deg j - 2) is a violation")
    ap.add_argument("--inflight", type=int, default=None,
                    help="robust: at most this many messages in flight")
    ap.add_argument("--arrivals", action="store_true",
                    help="interleave the submissions too (default: every request at t = 0)")
    a = ap.parse_args(argv)
    if any(n < 1 for n in a.requests or []):
        ap.error("--requests must be >= 1")
    if a.engine == "fast" and (a.por or a.digest or (a.robust and (a.streams or a.arrivals
                                                                   or a.timed))):
        ap.error("--engine fast covers neither --por/--digest nor robust mode with "
                 "--streams/--arrivals/--timed")
    if a.inflight is not None and not a.robust:
        ap.error("--inflight needs --robust")
    bad = 0
    for topo in a.topology or TOPOLOGIES:
        for n in a.requests or [1, 2, 3]:
            r = check(topo, n, robust=a.robust, fair=a.fair, loss=a.loss, dup=a.dup,
                      max_states=a.max_states, arrivals=a.arrivals, streams=a.streams,
                      inflight=a.inflight, check_bound=a.bound, por=a.por,
                      digest=a.digest, progress=a.progress, timed=a.timed, engine=a.engine,
                      deadline_s=a.deadline)
            print(r.line(), flush=True)
            if r.violations or r.deadlocks or r.traps or not r.complete:
                bad += 1
                print(f"  first problem: {r.first_problem}" if r.first_problem else
                      "  not exhaustive: " + (r.stopped or "state limit reached"),
                      file=sys.stderr)
                if a.trace:
                    for ln in r.trace:
                        print("    " + ln, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
