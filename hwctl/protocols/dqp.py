"""DQP baseline: a central scheduler S with one shared FIFO queue (ESP paper §IV, §VI-D), sans-IO.

The link-local distributed queue of Dahlberg et al. (ESP paper ref. [6]) extended to many peers the
way the ESP paper describes it: every node talks to S over a star control network
(E_C = {(i, S) | i in V}); S keeps one queue of all requests and serves it strictly in order. The
request at the head holds the queue until all of its pairs exist, so a request that could run
without contention still waits behind it (§VI-D).

Cores:

- :class:`DqpNode` (one per quantum node): ``submit(request, now)`` sends ADD to S; on START it hands
  the request to the physical layer at ``t_min``; ``attempts_finished(rid, now)`` ends it, and the
  initiator reports DONE to S and emits :class:`~hwctl.protocols.base.Completed`.
- :class:`DqpScheduler` (S): ``receive(ADD)`` appends to the queue; when the queue head may start it
  sends START to both ends with ``t_min = now + max(d(S, i), d(S, j))`` (the later of the two
  arrivals); ``receive(DONE)`` pops the head and starts the next.

Robust mode (``robust=RobustConfig(...)``, issue 15, docs/reliability.md), off by default: every
message goes through :class:`~hwctl.protocols.reliable.Arq` (ids, acks, retransmission, duplicate
suppression, in-order delivery, restart detection). S gives the running request a lease
(``t_min + busy_lease``): when no DONE came by then, S sends ABORT to both ends and puts the request
back at the head of the queue. A node whose physical layer fails (``attempts_failed``) sends ABORT
to S, which releases the queue and aborts the other end. A request that has not started
``request_ttl`` after its time expires with a reason at its initiator (S sends EXPIRE for queued
ones; the initiator also expires it locally and tells S with CANCEL, so an unreachable S cannot keep
it forever). A restarted S (HELLO with a higher incarnation) gets every open request again from
its clients; a restarted client resumes its requests (:meth:`DqpNode.recover`) and S drops what it
held for the old life. Always on: every message is validated against the node set and the
request's parties; bad ones give :class:`~hwctl.protocols.base.RemoteError`.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from hwctl.protocols.base import (
    AbortAttempts,
    Action,
    Completed,
    Expired,
    NodeId,
    ProtocolViolation,
    RemoteError,
    Request,
    Send,
    StartAttempts,
    pack_names,
    unpack_names,
)
from hwctl.protocols.reliable import Arq, RobustConfig

SCHEDULER: NodeId = "S"


class DqpMsgType(IntEnum):
    ADD = 1
    START = 2
    DONE = 3
    LINK_ACK = 4  #: robust mode: cumulative acknowledgement (``rid`` = last in-order id)
    HELLO = 5  #: robust mode: a restarted node announces its incarnation
    ABORT = 6  #: the running request ``rid`` stops (lease, failed physical layer, restart)
    EXPIRE = 7  #: S to the initiator: queued request ``rid`` expired
    CANCEL = 8  #: initiator to S: request ``rid`` expired here, drop it


_HDR = struct.Struct(">Bdqqqq")


@dataclass(frozen=True, slots=True)
class DqpMessage:
    kind: DqpMsgType
    src: NodeId
    dst: NodeId
    request: Request | None
    t_min: float = 0.0
    rid: int = 0
    seq: int = 0
    inc: int = 0
    dinc: int = 0

    def __post_init__(self) -> None:
        if self.request is not None and self.rid == 0:
            object.__setattr__(self, "rid", self.request.rid)

    def to_bytes(self) -> bytes:
        out = (_HDR.pack(self.kind, self.t_min, self.rid, self.seq, self.inc, self.dinc)
               + pack_names(self.src, self.dst))
        if self.request is not None:
            out += self.request.pack()
        return out

    @classmethod
    def from_bytes(cls, data: bytes) -> DqpMessage:
        try:
            kind, t_min, rid, seq, inc, dinc = _HDR.unpack_from(data, 0)
            (src, dst), off = unpack_names(data, _HDR.size, 2)
            req = None
            if off < len(data):
                req, off = Request.unpack(data, off)
            if off != len(data):
                raise ValueError("trailing bytes")
            return cls(DqpMsgType(kind), src, dst, req, t_min, rid, seq, inc, dinc)
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed DQP message: {exc}") from exc


def _arq(name: NodeId, peers: list[NodeId], inc: int, cfg: RobustConfig | None) -> Arq | None:
    if cfg is None:
        return None
    return Arq(name, peers, inc, cfg,
               lambda dst, seq: DqpMessage(DqpMsgType.LINK_ACK, name, dst, None, rid=seq),
               DqpMsgType.LINK_ACK, DqpMsgType.HELLO)


class _Core:
    name: NodeId
    arq: Arq | None
    _now: float

    def _send(self, kind: DqpMsgType, dst: NodeId, request: Request | None, *, t_min: float = 0.0,
              rid: int = 0) -> Send:
        msg = DqpMessage(kind, self.name, dst, request, t_min, rid)
        if self.arq is not None:
            msg = self.arq.stamp(msg, self._now)
        return Send(msg)

    def _link(self, msg: DqpMessage) -> tuple[list[Action], list[DqpMessage], bool]:
        if self.arq is None:
            return [], [msg], False
        ready, ack, restarted = self.arq.accept(msg)
        ready = [m for m in ready if m.kind is not DqpMsgType.HELLO]
        return ([Send(ack)] if ack is not None else []), ready, restarted

    def _resend(self, now: float) -> list[Action]:
        return [] if self.arq is None else [Send(m) for m in self.arq.due(now)]


class DqpNode(_Core):
    """A quantum node under DQP: forwards requests to S, executes what S starts."""

    def __init__(self, name: NodeId, scheduler: NodeId = SCHEDULER, *,
                 robust: RobustConfig | None = None, incarnation: int = 0) -> None:
        self.name = name
        self.scheduler = scheduler
        self.robust = robust
        self.active: tuple[Request, float] | None = None  # (request, t_min)
        self.open: dict[int, Request] = {}  # own requests not started (robust mode)
        self.arq = _arq(name, [scheduler], incarnation, robust)
        self._now = 0.0

    def submit(self, request: Request, now: float) -> list[Action]:
        """A new request of this node (its initiator): ADD to the scheduler S (ESP paper §IV)."""
        self._now = now
        if request.initiator != self.name:
            raise ValueError(f"{self.name}: request {request.rid} belongs to {request.initiator}")
        if self.robust is not None:
            self.open[request.rid] = request
        return [self._send(DqpMsgType.ADD, self.scheduler, request)]

    def recover(self, requests: Iterable[Request], now: float) -> list[Action]:
        """Start a restarted client: HELLO to S, then resume (or expire) its open requests."""
        self._now = now
        acts: list[Action] = []
        if self.arq is not None:
            acts.append(self._send(DqpMsgType.HELLO, self.scheduler, None))
        for r in requests:
            if self.robust is not None and now >= r.t + self.robust.request_ttl:
                acts.append(Expired(r, "restarted", now))
            else:
                acts += self.submit(r, now)
        return acts

    def receive(self, msg: DqpMessage, now: float) -> list[Action]:
        """A message from S (START, ABORT, EXPIRE; ESP paper §IV): START hands the request to the
        physical layer at ``t_min``; anything not from S or not for this node is a RemoteError."""
        self._now = now
        if msg.dst != self.name or msg.src != self.scheduler:
            return [RemoteError(msg.src, msg, f"{self.name}: not from the scheduler or not for us")]
        acts, ready, restarted = self._link(msg)
        if restarted:
            acts += self._scheduler_restarted(now)
        for m in ready:
            acts += self._dispatch(m, now)
        return acts

    def _dispatch(self, msg: DqpMessage, now: float) -> list[Action]:
        req = msg.request
        if msg.kind is DqpMsgType.START and req is not None:
            if self.name not in (req.initiator, req.remote):
                return [RemoteError(msg.src, msg, f"{self.name}: START for {req.rid} of others")]
            acts: list[Action] = []
            if self.active is not None:
                if self.active[0].rid == req.rid:
                    return []
                if self.robust is None:
                    return [RemoteError(msg.src, msg, f"{self.name}: START for {req.rid} while "
                                        f"{self.active[0].rid} runs")]
                # S runs one request at a time: the one we still hold is stale (its ABORT was
                # lost with a restart of ours or of S), so stop it and follow S
                old, _ = self.active
                self.active = None
                acts.append(AbortAttempts(old, old.peer_of(self.name), "superseded"))
                if old.initiator == self.name:
                    self.open[old.rid] = old
            if self.robust is not None and req.initiator == self.name and req.rid not in self.open:
                # it expired here meanwhile: S drops it and goes on
                return [*acts, self._send(DqpMsgType.CANCEL, self.scheduler, None, rid=req.rid)]
            self.open.pop(req.rid, None)
            self.active = (req, msg.t_min)
            return [*acts, StartAttempts(req, req.peer_of(self.name), msg.t_min)]
        if msg.kind is DqpMsgType.ABORT:
            if self.active is not None and self.active[0].rid == msg.rid:
                req, _ = self.active
                self.active = None
                if req.initiator == self.name and self.robust is not None:
                    self.open[req.rid] = req  # S requeued it
                return [AbortAttempts(req, req.peer_of(self.name), "aborted by S")]
            return []
        if msg.kind is DqpMsgType.EXPIRE:
            r = self.open.pop(msg.rid, None)
            return [Expired(r, "ttl (scheduler)", now)] if r is not None else []
        return [RemoteError(msg.src, msg, f"{self.name}: unexpected {msg.kind.name}")]

    def _scheduler_restarted(self, now: float) -> list[Action]:
        acts: list[Action] = []
        if self.active is not None:
            req, _ = self.active
            self.active = None
            acts.append(AbortAttempts(req, req.peer_of(self.name), "scheduler restarted"))
            if req.initiator == self.name:
                self.open[req.rid] = req
        for r in sorted(self.open.values(), key=lambda r: (r.t, r.rid)):
            acts.append(self._send(DqpMsgType.ADD, self.scheduler, r))
        return acts

    def get_timer(self) -> float | None:
        """Next time :meth:`handle_timer` is due (robust mode: retransmissions, request lifetimes);
        None in the paper's mode, which has no timers at the nodes."""
        if self.arq is None:
            return None
        assert self.robust is not None
        t = self.arq.next_deadline()
        ts = [r.t + self.robust.request_ttl for r in self.open.values()]
        if t is not None:
            ts.append(t)
        return min(ts) if ts else None

    def handle_timer(self, now: float) -> list[Action]:
        """Retransmit what is due and expire own requests past their lifetime (robust mode)."""
        self._now = now
        acts = self._resend(now)
        if self.robust is not None:
            for r in [r for r in self.open.values() if now >= r.t + self.robust.request_ttl]:
                del self.open[r.rid]
                acts.append(Expired(r, "ttl", now))
                acts.append(self._send(DqpMsgType.CANCEL, self.scheduler, None, rid=r.rid))
        return acts

    def attempts_finished(self, rid: int, now: float) -> list[Action]:
        """The physical layer delivered request ``rid``'s pairs: the node is free again; the initiator
        reports DONE to S and emits :class:`~hwctl.protocols.base.Completed` (ESP paper §IV)."""
        self._now = now
        if self.active is None or self.active[0].rid != rid:
            raise ProtocolViolation(f"{self.name}: attempts_finished({rid}) without START")
        req, t_min = self.active
        self.active = None
        if req.initiator != self.name:
            return []
        return [Completed(req, t_min, now, now),
                self._send(DqpMsgType.DONE, self.scheduler, req)]

    def attempts_failed(self, rid: int, now: float) -> list[Action]:
        """The physical layer gave up on ``rid``: tell S (robust mode)."""
        self._now = now
        if self.active is None or self.active[0].rid != rid:
            return []
        req, _ = self.active
        self.active = None
        if req.initiator == self.name and self.robust is not None:
            self.open[req.rid] = req
        return [self._send(DqpMsgType.ABORT, self.scheduler, None, rid=rid)]


class DqpScheduler(_Core):
    """The central scheduler S. ``delays`` maps each node to the one-way delay S <-> node."""

    def __init__(self, delays: dict[NodeId, float], name: NodeId = SCHEDULER, *,
                 robust: RobustConfig | None = None, incarnation: int = 0) -> None:
        self.name = name
        self.delays = dict(delays)
        self.robust = robust
        self.queue: deque[Request] = deque()
        self.running: Request | None = None
        self._lease = math.inf
        self.arq = _arq(name, sorted(delays), incarnation, robust)
        self._now = 0.0

    def recover(self, now: float) -> list[Action]:
        """Start a restarted S: announce the incarnation; the clients send their requests again."""
        self._now = now
        if self.arq is None:
            return []
        return [self._send(DqpMsgType.HELLO, n, None) for n in sorted(self.delays)]

    def receive(self, msg: DqpMessage, now: float) -> list[Action]:
        """A message from a node (ADD, DONE; in robust mode also ABORT, CANCEL, HELLO): ADD appends to
        the one FIFO queue, DONE pops its head; whenever the head may start, START goes to both
        ends with ``t_min = now + max(d(S, i), d(S, j))`` (ESP paper §IV, §VI-D)."""
        self._now = now
        if msg.dst != self.name or msg.src not in self.delays:
            return [RemoteError(msg.src, msg, "S: sender unknown or not for S")]
        acts, ready, restarted = self._link(msg)
        if restarted:
            acts += self._client_restarted(msg.src, now)
        for m in ready:
            acts += self._dispatch(m, now)
        return acts + self._serve(now)

    def _dispatch(self, msg: DqpMessage, now: float) -> list[Action]:
        req = msg.request
        if msg.kind is DqpMsgType.ADD and req is not None:
            if req.initiator != msg.src or req.remote not in self.delays:
                return [RemoteError(msg.src, msg, f"S: ADD of {req.rid} with wrong parties")]
            running = self.running is not None and self.running.rid == req.rid
            if running or any(q.rid == req.rid for q in self.queue):
                return []  # already known (a client re-sent it after our restart)
            self.queue.append(req)
            return []
        if msg.kind is DqpMsgType.DONE and req is not None:
            if self.running is None or self.running.rid != req.rid or req.initiator != msg.src:
                return [RemoteError(msg.src, msg, f"S: DONE for {req.rid} which is not running")]
            self.running = None
            self._lease = math.inf
            return []
        if msg.kind is DqpMsgType.ABORT:
            r = self.running
            if r is None or r.rid != msg.rid or msg.src not in (r.initiator, r.remote):
                return []  # stale
            other = r.remote if msg.src == r.initiator else r.initiator
            return self._abort_running(now, [other])
        if msg.kind is DqpMsgType.CANCEL:
            self.queue = deque(q for q in self.queue if q.rid != msg.rid or q.initiator != msg.src)
            r = self.running
            if r is not None and r.rid == msg.rid and r.initiator == msg.src:
                acts = self._abort_running(now, [r.remote])
                self.queue.popleft()  # dropped for good: its initiator expired it
                return acts
            return []
        return [RemoteError(msg.src, msg, f"S: unexpected {msg.kind.name}")]

    def _abort_running(self, now: float, tell: list[NodeId]) -> list[Action]:
        r = self.running
        assert r is not None
        self.running = None
        self._lease = math.inf
        self.queue.appendleft(r)  # keeps its place: the head of the queue
        return [self._send(DqpMsgType.ABORT, n, None, rid=r.rid) for n in tell]

    def _client_restarted(self, node: NodeId, now: float) -> list[Action]:
        acts: list[Action] = []
        r = self.running
        if r is not None and node in (r.initiator, r.remote):
            acts += self._abort_running(now, [n for n in (r.initiator, r.remote) if n != node])
        self.queue = deque(q for q in self.queue if q.initiator != node)  # it re-sends them
        return acts

    def get_timer(self) -> float | None:
        """Next time :meth:`handle_timer` is due (robust mode: retransmissions, the running request's
        lease, queued requests' lifetimes); None in the paper's mode."""
        if self.arq is None:
            return None
        assert self.robust is not None
        ts = [self._lease] + [q.t + self.robust.request_ttl for q in self.queue]
        d = self.arq.next_deadline()
        if d is not None:
            ts.append(d)
        t = min(ts)
        return None if t == math.inf else t

    def handle_timer(self, now: float) -> list[Action]:
        """Retransmit what is due, abort a running request whose lease ran out (it goes back to the
        head of the queue) and expire queued requests past their lifetime (robust mode)."""
        self._now = now
        acts = self._resend(now)
        if self.robust is None:
            return acts
        if self.running is not None and now >= self._lease:
            r = self.running
            acts += self._abort_running(now, [r.initiator, r.remote])
        ttl = self.robust.request_ttl
        for q in [q for q in self.queue if now >= q.t + ttl]:
            self.queue.remove(q)
            acts.append(self._send(DqpMsgType.EXPIRE, q.initiator, None, rid=q.rid))
        return acts + self._serve(now)

    def _serve(self, now: float) -> list[Action]:
        if self.running is not None or not self.queue:
            return []
        req = self.queue.popleft()
        self.running = req
        t_min = now + max(self.delays[req.initiator], self.delays[req.remote])
        if self.robust is not None:
            self._lease = t_min + self.robust.busy_lease
        return [self._send(DqpMsgType.START, node, req, t_min=t_min)
                for node in (req.initiator, req.remote)]
