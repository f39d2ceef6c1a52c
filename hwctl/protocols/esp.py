"""ESP, the Eventual Synchronization Protocol (ESP paper §V), as a sans-IO core.

One :class:`EspNode` per quantum node. The node is a resource that must be locked for heralded
entanglement with exactly one adjacent node at a time (invariant (1) of §IV).

API (all times in seconds, passed in by the caller; every call returns a list of actions):

- ``submit(request, now)``           a new request r = (i, j, f, p, t) at its initiator i
- ``receive(msg, now)``              an :class:`EspMessage` from a neighbour
- ``get_timer()`` / ``handle_timer(now)``  the READY -> BUSY transition at ``t_min``
- ``attempts_finished(rid, now)``    the physical layer generated all pairs of request ``rid``

Actions: :class:`~hwctl.protocols.base.Send`, :class:`~hwctl.protocols.base.StartAttempts`,
:class:`~hwctl.protocols.base.Completed` (initiator only).

Protocol, following Tables I-III and Algorithm 1:

- Messages (Table I): SYN, SYNACK, SYNREJ, ACK, NACK, WAKE.
- States (Table II): IDLE, SYN_SENT, SYN_RECEIVED, WAKE_SENT, READY, BUSY. A node is *busy* (holds a
  Lock) in SYN_RECEIVED, WAKE_SENT, READY and BUSY (§V-A).
- Q_main is a priority queue ordered by arrival number; arrival numbers are strictly increasing per
  node and are given to every request on arrival, wake-up requests R_wake included. A request that
  wakes from S_sleep keeps its arrival number (§V-A, last paragraphs).
- Algorithm 1: Q_ready first (hand to the physical layer, non-blocking; release the Lock on
  completion); otherwise poll Q_main: an active request sends SYN (S_sent), an R_wake sends WAKE
  (S_wake); otherwise block. A node starts a new Q_main item only when IDLE.
- SYN at a non-busy node: the first SYN wins (SYN_RECEIVED, Lock, SYNACK); the rest get SYNREJ and
  the rejecter queues R_wake for each rejected initiator (once per initiator).
- SYNREJ at the initiator: the request goes to sleep (S_sleep), the node returns to IDLE.
- WAKE at a node: every sleeping request towards the waker goes back to Q_main with its old arrival
  number. WAKE cannot be interrupted by SYNs: in WAKE_SENT the waker rejects every SYN except the
  woken node's.
- SYNACK at the initiator: if the request is still valid (the node has not been locked by another
  node meanwhile) it sends ACK with ``t_min`` and becomes READY; else NACK and the request returns to
  Q_main with its arrival number. ACK makes the remote READY; NACK releases its Lock.
- ``t_min`` is the time the remote enters READY: the initiator sends ACK at ``now`` and sets
  ``t_min = now + d(i, j)``, d the one-way control delay of the link (the link's propagation time).

Where the paper is silent, this implementation decides (docs/esp.md gives the reasoning):

1. *SYN while SYN_SENT.* SYN_SENT is not busy (§V-A), so the node may accept, but two nodes that SYN
   each other (or a ring of them) must not all accept or all reject forever. Tie-break: a node in
   SYN_SENT accepts a SYN only from a node whose id sorts before its own, and rejects the others.
   Its own outstanding request is then answered with NACK on SYNACK (no longer valid, back to
   Q_main) or sleeps on SYNREJ.
2. *End of WAKE_SENT.* The woken node answers a WAKE either with the SYN of a reactivated request
   (accepted by the waker, which ends WAKE_SENT) or, when it cannot send that SYN now (it is not
   IDLE, its Q_main head is another item, or nothing was asleep), with NACK carrying the wake id; the
   waker then returns to IDLE. This bounds WAKE_SENT to one round trip and rules out two nodes
   waiting on each other's WAKE.

Robustness and fairness (issue 15, docs/reliability.md), both off by default so that the paper's
behaviour and Table V are unchanged:

- ``robust=RobustConfig(...)``: every message goes through :class:`~hwctl.protocols.reliable.Arq`
  (message ids, acknowledgements, retransmission, duplicate suppression, in-order delivery per
  link, restart detection by incarnation numbers). Locks have leases: SYN_RECEIVED and WAKE_SENT
  end after ``lease`` without progress, READY/BUSY after ``t_min + busy_lease`` (the driver gets
  :class:`~hwctl.protocols.base.AbortAttempts`). A request not started ``request_ttl`` after its
  time t expires with :class:`~hwctl.protocols.base.Expired` (reason given). A restarted peer
  (higher incarnation) releases everything held with it: its Lock, SYN_SENT/WAKE_SENT towards it,
  and requests sleeping on it go back to Q_main. A restarted node calls :meth:`EspNode.recover`.
- ``fair=True`` (bounded waiting): decision 1 compares request age (t, rid) instead of node ids,
  so the oldest request of a SYN_SENT cycle always wins; decision 2 becomes *held* WAKE: a woken
  node that is busy defers its answer instead of NACKing, and sends the woken request's SYN as
  soon as it is IDLE, while the waker stays in WAKE_SENT (the paper: WAKE cannot be interrupted).
  To keep waits acyclic, a node that owes a WAKE answer does not start WAKEs of its own until it
  has paid, and a node in WAKE_SENT holds an incoming WAKE only if the oldest request it woke is
  older than the request of its own WAKE (R_wake records that age); else it NACKs it.
- Always: every message is checked against the neighbours and the request's parties and
  against the node's state; a bad one gives :class:`~hwctl.protocols.base.RemoteError` (never an
  exception). A WAKE that overtakes the SYNREJ it belongs to is remembered.
"""


from __future__ import annotations

import heapq
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, IntEnum

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


class MsgType(IntEnum):
    """ESP messages (Table I), plus the robust mode's link messages (7-9)."""

    SYN = 1
    SYNACK = 2
    SYNREJ = 3
    ACK = 4
    NACK = 5
    WAKE = 6
    LINK_ACK = 7  #: cumulative acknowledgement of message ids up to ``rid`` (robust mode)
    HELLO = 8  #: a restarted node announces its new incarnation (robust mode)
    REFUSE = 9  #: the remote can never serve request ``rid`` (e.g. more pairs than its qubits)


class State(Enum):
    """ESP node states (Table II)."""

    IDLE = "IDLE"
    SYN_SENT = "SYN_SENT"
    SYN_RECEIVED = "SYN_RECEIVED"
    WAKE_SENT = "WAKE_SENT"
    READY = "READY"
    BUSY = "BUSY"


BUSY_STATES = frozenset({State.SYN_RECEIVED, State.WAKE_SENT, State.READY, State.BUSY})

_HDR = struct.Struct(">BqQdqqq")


@dataclass(frozen=True, slots=True)
class EspMessage:
    """One ESP control message.

    ``rid`` names the request (SYN/SYNACK/SYNREJ/ACK/NACK/REFUSE) or, for WAKE and the NACK
    answering a WAKE, the waker's wake id (``wake=True``); for LINK_ACK the acknowledged id.
    SYN carries the request; ACK carries ``t_min``. ``seq``/``inc``/``dinc`` are the robust mode's
    message id (see :mod:`hwctl.protocols.reliable`); 0 when robustness is off.
    """

    kind: MsgType
    src: NodeId
    dst: NodeId
    rid: int
    request: Request | None = None
    t_min: float = 0.0
    wake: bool = False
    seq: int = 0
    inc: int = 0
    dinc: int = 0

    def to_bytes(self) -> bytes:
        """Wire encoding for the node service: header, names, optional request."""
        flags = (1 if self.wake else 0) | (2 if self.request is not None else 0)
        out = _HDR.pack(self.kind, self.rid, flags, self.t_min, self.seq, self.inc,
                        self.dinc) + pack_names(self.src, self.dst)
        if self.request is not None:
            out += self.request.pack()
        return out

    @classmethod
    def from_bytes(cls, data: bytes) -> EspMessage:
        """Inverse of :meth:`to_bytes`; raises ``ValueError`` on malformed input."""
        try:
            kind, rid, flags, t_min, seq, inc, dinc = _HDR.unpack_from(data, 0)
            (src, dst), off = unpack_names(data, _HDR.size, 2)
            request = None
            if flags & 2:
                request, off = Request.unpack(data, off)
            if off != len(data):
                raise ValueError("trailing bytes")
            return cls(MsgType(kind), src, dst, rid, request, t_min, bool(flags & 1), seq, inc,
                       dinc)
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed ESP message: {exc}") from exc


@dataclass(order=True, slots=True)
class _Item:
    """An entry of Q_main: an active request or a wake-up request R_wake (target node)."""

    arrival: int
    request: Request | None = field(compare=False, default=None)
    wake_target: NodeId | None = field(compare=False, default=None)
    woken: bool = field(compare=False, default=False)  # a WAKE came while its SYN was out
    #: R_wake (fair mode): age (t, rid) of the oldest rejected request it wakes
    age: tuple[float, int] | None = field(compare=False, default=None)


@dataclass(slots=True)
class _Lock:
    """The Lock on this node's physical layer, held for ``request`` with ``peer``."""

    peer: NodeId
    request: Request
    arrival: int | None  # the initiator's arrival number, to requeue on NACK
    state: State
    t_min: float = 0.0
    lease_until: float = math.inf  # robust mode: released when this passes


def _copy_lock(lk: _Lock) -> _Lock:
    return _Lock(lk.peer, lk.request, lk.arrival, lk.state, lk.t_min, lk.lease_until)


def _age(r: Request) -> tuple[float, int]:
    return (r.t, r.rid)


def _copy_item(i: _Item) -> _Item:
    return _Item(i.arrival, i.request, i.wake_target, i.woken, i.age)


class EspNode:
    """ESP state machine of one node. ``delays`` maps each neighbour to the one-way control delay.

    ``robust`` turns on retransmission, leases, expiry and restart recovery; ``fair`` turns on
    bounded waiting; ``incarnation`` numbers this life of the node (robust mode, grows on every
    restart); ``qubits`` (optional) bounds the pairs of a request. See the module docstring.
    """

    def __init__(self, name: NodeId, delays: dict[NodeId, float], *, debug: bool = False,
                 robust: RobustConfig | None = None, fair: bool = False, incarnation: int = 0,
                 qubits: int | None = None) -> None:
        self.name = name
        self.delays = dict(delays)
        self.debug = debug
        self.robust = robust
        self.fair = fair
        self.qubits = qubits
        self._arrival = 0  # last arrival number given (strictly increasing, §V-A)
        self.q_main: list[_Item] = []
        self.q_ready: list[_Lock] = []
        self.s_sent: _Item | None = None
        self.s_wake: _Item | None = None
        self.s_sleep: list[_Item] = []
        self.lock: _Lock | None = None
        self._wake_until = math.inf
        #: fair mode: wakers waiting in WAKE_SENT for this node's SYN -> their wake id
        self.owed: dict[NodeId, int] = {}
        self._dead: set[int] = set()  # rids of own requests that expired while their SYN was out
        self.arq: Arq | None = None
        if robust is not None:
            self.arq = Arq(name, sorted(delays), incarnation, robust, self._link_ack,
                           MsgType.LINK_ACK, MsgType.HELLO)
        self._now = 0.0
        #: (arrival number, kind) of every Q_main poll, for the priority property test
        self.poll_log: list[tuple[int, int]] | None = [] if debug else None
        self.transitions: list[tuple[float, State]] | None = [] if debug else None
        self.remote_errors = 0

    def clone(self) -> EspNode:
        """An independent copy of this core (for explicit-state exploration of interleavings):
        the mutable containers are copied, immutable requests and messages shared."""
        c = object.__new__(EspNode)
        c.__dict__.update(self.__dict__)
        c.q_main = [_copy_item(i) for i in self.q_main]
        c.s_sleep = [_copy_item(i) for i in self.s_sleep]
        c.s_sent = None if self.s_sent is None else _copy_item(self.s_sent)
        c.s_wake = None if self.s_wake is None else _copy_item(self.s_wake)
        lock_map: dict[int, _Lock] = {}
        if self.lock is not None:
            c.lock = _copy_lock(self.lock)
            lock_map[id(self.lock)] = c.lock
        c.q_ready = [lock_map.get(id(lk)) or _copy_lock(lk) for lk in self.q_ready]
        c.owed = dict(self.owed)
        c._dead = set(self._dead)
        c.poll_log = None if self.poll_log is None else list(self.poll_log)
        c.transitions = None if self.transitions is None else list(self.transitions)
        if self.arq is not None:
            c.arq = self.arq.clone()
        return c

    # -- derived state ---------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The node's ESP state (ESP paper §V-A): the Lock's, else WAKE_SENT, SYN_SENT or IDLE."""
        if self.lock is not None:
            return self.lock.state
        if self.s_wake is not None:
            return State.WAKE_SENT
        if self.s_sent is not None:
            return State.SYN_SENT
        return State.IDLE

    @property
    def busy(self) -> bool:
        """True while the node holds a Lock in a busy state (BUSY_STATES): it answers SYNs with SYNREJ."""
        return self.state in BUSY_STATES

    def sleeping(self) -> list[Request]:
        """This node's requests in S_sleep: rejected by a busy remote, waiting for its WAKE (ESP §V-A)."""
        return [it.request for it in self.s_sleep if it.request is not None]

    def queued_wakes(self) -> list[NodeId]:
        """Neighbours this node owes a WAKE, queued in Q_main (ESP §V-A, Algorithm 1)."""
        return [it.wake_target for it in self.q_main if it.wake_target is not None]

    def open_requests(self) -> list[Request]:
        """This node's own requests not yet finished (queued, sent, sleeping or locked)."""
        out = [it.request for it in self.q_main if it.request is not None]
        out += self.sleeping()
        if self.s_sent is not None and self.s_sent.request is not None:
            out.append(self.s_sent.request)
        if self.lock is not None and self.lock.request.initiator == self.name:
            out.append(self.lock.request)
        return out

    def lock_deadline(self) -> float:
        """When the Lock (or WAKE_SENT) must be gone at the latest (inf: none, or not robust)."""
        t = math.inf
        if self.lock is not None:
            t = self.lock.lease_until
        if self.s_wake is not None:
            t = min(t, self._wake_until)
        return t

    # -- events ----------------------------------------------------------------------------------

    def submit(self, request: Request, now: float) -> list[Action]:
        """A new request arrives from the layer above (this node must be its initiator)."""
        self._now = now
        if request.initiator != self.name:
            raise ValueError(f"{self.name}: request {request.rid} belongs to {request.initiator}")
        if request.remote not in self.delays:
            raise ValueError(f"{self.name}: {request.remote} is not a neighbour")
        if self.qubits is not None and request.pairs > self.qubits:
            raise ValueError(f"{self.name}: request {request.rid} needs {request.pairs} pairs, "
                             f"the node has {self.qubits} qubits")
        heapq.heappush(self.q_main, _Item(self._next_arrival(), request=request))
        return self._process(now)

    def recover(self, requests: Iterable[Request], now: float) -> list[Action]:
        """Start this (restarted) core: announce the new incarnation to every neighbour (robust
        mode) and resume the node's own open ``requests`` (the driver kept them), or expire those
        whose lifetime has passed with reason ``restarted``."""
        self._now = now
        acts: list[Action] = []
        if self.arq is not None:
            for peer in sorted(self.delays):
                acts.append(self._send(MsgType.HELLO, peer, 0))
        for r in requests:
            if self.robust is not None and now >= r.t + self.robust.request_ttl:
                acts.append(Expired(r, "restarted", now))
            else:
                heapq.heappush(self.q_main, _Item(self._next_arrival(), request=r))
        return acts + self._process(now)

    def receive(self, msg: EspMessage, now: float) -> list[Action]:
        """A control message from a neighbour (SYN, SYNACK, SYNREJ, ACK, NACK, WAKE; ESP §V-A): the
        actions it causes, then whatever Q_main can start now. Messages not for this node or from
        a non-neighbour give :class:`~hwctl.protocols.base.RemoteError`."""
        self._now = now
        if msg.dst != self.name:
            return [self._error(msg, f"addressed to {msg.dst!r}")]
        if msg.src not in self.delays:
            return [self._error(msg, "sender is not a neighbour")]
        if self.arq is None:
            acts = self._dispatch(msg, now)
        else:
            ready, ack, restarted = self.arq.accept(msg)
            acts = [Send(ack)] if ack is not None else []
            if restarted:
                acts += self._peer_restarted(msg.src, now)
            for m in ready:
                acts += self._dispatch(m, now)
        return acts + self._process(now)

    def get_timer(self) -> float | None:
        """Next time this core needs ``handle_timer``: t_min of a READY lock; in robust mode also
        retransmissions, leases and request lifetimes."""
        t = math.inf
        if self.lock is not None and self.lock.state is State.READY:
            t = self.lock.t_min
        if self.arq is not None:
            assert self.robust is not None
            d = self.arq.next_deadline()
            if d is not None:
                t = min(t, d)
            t = min(t, self.lock_deadline())
            ttl = self.robust.request_ttl
            for r in self._waiting_requests():
                t = min(t, r.t + ttl)
        return None if t == math.inf else t

    def handle_timer(self, now: float) -> list[Action]:
        """The time of :meth:`get_timer` has come: a READY Lock becomes BUSY at t_min; in robust mode
        also retransmissions, expired leases and request lifetimes."""
        self._now = now
        lock = self.lock
        if lock is not None and lock.state is State.READY and now >= lock.t_min:
            self._set(lock, State.BUSY, now)
        if self.arq is None:
            return []
        acts: list[Action] = [Send(m) for m in self.arq.due(now)]
        acts += self._expire_leases(now)
        acts += self._expire_requests(now)
        return acts + self._process(now)

    def attempts_finished(self, rid: int, now: float) -> list[Action]:
        """The physical layer finished request ``rid``: release the Lock (Algorithm 1, line 4)."""
        self._now = now
        lock = self.lock
        if lock is None or lock.request.rid != rid or lock.state not in (State.READY, State.BUSY):
            raise ProtocolViolation(f"{self.name}: attempts_finished({rid}) without a matching lock")
        if lock.state is State.READY and now >= lock.t_min:
            self._set(lock, State.BUSY, now)
        self.lock = None
        self._trace(now)
        acts: list[Action] = []
        if lock.request.initiator == self.name:
            acts.append(Completed(lock.request, lock.t_min, now, now))
        return acts + self._process(now)

    def attempts_failed(self, rid: int, now: float) -> list[Action]:
        """The physical layer gave up on ``rid`` (the peer never joined or vanished): release the
        Lock; the initiator puts the request back in Q_main (arrival number kept) or expires it."""
        self._now = now
        lock = self.lock
        if lock is None or lock.request.rid != rid:
            return []  # already released (lease, restart): nothing held for it
        return self._release(lock, now, abort=None) + self._process(now)

    # -- Algorithm 1 -----------------------------------------------------------------------------

    def _process(self, now: float) -> list[Action]:
        acts: list[Action] = []
        if self.q_ready:
            lock = self.q_ready.pop(0)
            acts.append(StartAttempts(lock.request, lock.peer, lock.t_min))
            return acts
        if self.state is not State.IDLE or not self.q_main:
            return acts
        item = self._poll()
        if item is None:
            return acts
        if self.poll_log is not None:
            self.poll_log.append((item.arrival, min((i.arrival for i in self.q_main), default=0)))
        if item.request is not None:
            self.s_sent = item
            self._paid(item.request.remote)  # our SYN answers a held WAKE
            self._trace(now)
            acts.append(self._send(MsgType.SYN, item.request.remote, item.request.rid,
                                   request=item.request))
        else:
            assert item.wake_target is not None
            self.s_wake = item
            if self.robust is not None:
                hold = self.robust.busy_lease if self.fair else 0.0
                self._wake_until = now + self.robust.lease + hold
            self._trace(now)
            acts.append(self._send(MsgType.WAKE, item.wake_target, item.arrival, wake=True))
        return acts

    def _poll(self) -> _Item | None:
        """Poll Q_main by arrival number. A node that owes a WAKE answer (fair mode) leaves its
        own R_wake items for later, so that no cycle of nodes waits on each other's WAKE."""
        if not self.owed:
            return heapq.heappop(self.q_main)
        for it in sorted(self.q_main):
            if it.request is not None:
                self.q_main.remove(it)
                heapq.heapify(self.q_main)
                return it
        return None

    # -- message handlers ------------------------------------------------------------------------

    def _dispatch(self, msg: EspMessage, now: float) -> list[Action]:
        handler = _HANDLERS.get(msg.kind)
        if handler is None:
            if msg.kind in (MsgType.HELLO, MsgType.LINK_ACK) and self.arq is not None:
                return []  # the link layer handled it
            return [self._error(msg, f"{msg.kind.name} without robust mode")]
        return handler(self, msg, now)

    def _on_syn(self, msg: EspMessage, now: float) -> list[Action]:
        req = msg.request
        if req is None or req.remote != self.name or req.initiator != msg.src or req.rid != msg.rid:
            return [self._error(msg, "SYN whose request does not name this edge")]
        if self.qubits is not None and req.pairs > self.qubits:
            return [self._error(msg, f"{req.pairs} pairs > {self.qubits} qubits"),
                    self._send(MsgType.REFUSE, msg.src, req.rid)]
        lock = self.lock
        if lock is not None and lock.peer == msg.src and lock.request.rid == req.rid:
            return [self._error(msg, "duplicate SYN")]
        if self._accepts_syn(msg.src, req):
            if self.s_wake is not None and self.s_wake.wake_target == msg.src:
                self.s_wake = None  # the woken node's SYN ends WAKE_SENT
                self._wake_until = math.inf
            lease = math.inf if self.robust is None else now + self.robust.lease
            self.lock = _Lock(msg.src, req, None, State.SYN_RECEIVED, lease_until=lease)
            self._trace(now)
            return [self._send(MsgType.SYNACK, msg.src, req.rid)]
        self._queue_wake(msg.src, _age(req))
        return [self._send(MsgType.SYNREJ, msg.src, req.rid)]

    def _accepts_syn(self, src: NodeId, req: Request) -> bool:
        st = self.state
        if st is State.IDLE:
            return True
        if st is State.WAKE_SENT:
            assert self.s_wake is not None
            return self.s_wake.wake_target == src
        if st is State.SYN_SENT:
            if self.fair:  # the older request wins (decision 1, fair mode)
                assert self.s_sent is not None and self.s_sent.request is not None
                return _age(req) < _age(self.s_sent.request)
            return src < self.name
        return False

    def _queue_wake(self, target: NodeId, age: tuple[float, int] | None = None) -> None:
        """Queue R_wake(target) once per target; it remembers the age of the oldest request of
        ``target`` it was queued for (fair mode decides on it whether a WAKE may be held)."""
        for it in self.q_main:
            if it.wake_target == target:
                if age is not None and (it.age is None or age < it.age):
                    it.age = age
                return
        if self.s_wake is not None and self.s_wake.wake_target == target:
            return
        heapq.heappush(self.q_main, _Item(self._next_arrival(), wake_target=target, age=age))

    def _take_sent(self, msg: EspMessage) -> _Item | None:
        item = self.s_sent
        if (item is None or item.request is None or item.request.rid != msg.rid
                or item.request.remote != msg.src):
            return None
        self.s_sent = None
        return item

    def _on_synack(self, msg: EspMessage, now: float) -> list[Action]:
        item = self._take_sent(msg)
        if item is None:
            # Not (or no longer) ours: NACK it so the remote releases the Lock it took for it.
            nack = self._send(MsgType.NACK, msg.src, msg.rid)
            if msg.rid in self._dead:
                self._dead.discard(msg.rid)
                return [nack]
            return [self._error(msg, "unexpected SYNACK"), nack]
        assert item.request is not None
        if self.lock is not None:
            # Locked by another node meanwhile: the request is no longer valid here.
            heapq.heappush(self.q_main, item)
            return [self._send(MsgType.NACK, msg.src, msg.rid)]
        t_min = now + self.delays[msg.src]
        lease = math.inf if self.robust is None else t_min + self.robust.busy_lease
        lock = _Lock(msg.src, item.request, item.arrival, State.READY, t_min, lease)
        self.lock = lock
        self.q_ready.append(lock)
        self._paid(msg.src)
        self._trace(now)
        return [self._send(MsgType.ACK, msg.src, msg.rid, t_min=t_min)]

    def _on_synrej(self, msg: EspMessage, now: float) -> list[Action]:
        item = self._take_sent(msg)
        if item is None:
            if msg.rid in self._dead:
                self._dead.discard(msg.rid)
                return []
            return [self._error(msg, "unexpected SYNREJ")]
        self.owed.pop(msg.src, None)  # it rejected us: it no longer waits in WAKE_SENT for us
        if item.woken:  # the WAKE overtook this SYNREJ: the request is awake already
            item.woken = False
            heapq.heappush(self.q_main, item)
        else:
            self.s_sleep.append(item)
        self._trace(now)
        return []

    def _on_refuse(self, msg: EspMessage, now: float) -> list[Action]:
        item = self._take_sent(msg)
        if item is None or item.request is None:
            return [self._error(msg, "unexpected REFUSE")]
        self._trace(now)
        return [Expired(item.request, f"refused by {msg.src}", now)] + self._unowe(msg.src)

    def _on_ack(self, msg: EspMessage, now: float) -> list[Action]:
        lock = self.lock
        if (lock is None or lock.state is not State.SYN_RECEIVED or lock.request.rid != msg.rid
                or lock.peer != msg.src):
            return [self._error(msg, "unexpected ACK")]
        lock.t_min = msg.t_min
        if self.robust is not None:
            lock.lease_until = max(now, msg.t_min) + self.robust.busy_lease
        self._set(lock, State.READY, now)
        self.q_ready.append(lock)
        return []

    def _on_nack(self, msg: EspMessage, now: float) -> list[Action]:
        if msg.wake:
            if (self.s_wake is not None and self.s_wake.arrival == msg.rid
                    and self.s_wake.wake_target == msg.src):
                self.s_wake = None
                self._wake_until = math.inf
                self._trace(now)
            return []  # a stale answer to a WAKE that a SYN already ended
        lock = self.lock
        if (lock is None or lock.state is not State.SYN_RECEIVED or lock.request.rid != msg.rid
                or lock.peer != msg.src):
            if self.arq is not None:
                return []  # a NACK for a Lock that its lease already released
            return [self._error(msg, "unexpected NACK")]
        self.lock = None
        self._trace(now)
        return []

    def _on_wake(self, msg: EspMessage, now: float) -> list[Action]:
        woken = [it for it in self.s_sleep if it.request is not None and it.request.remote == msg.src]
        for it in woken:
            self.s_sleep.remove(it)
            heapq.heappush(self.q_main, it)
        sent = self.s_sent
        if sent is not None and sent.request is not None and sent.request.remote == msg.src:
            sent.woken = True  # its SYNREJ may still be on the way (reordering)
        if woken and self.state is State.IDLE:
            head = self.q_main[0]
            if head.request is not None and head.request.remote == msg.src:
                return []  # _process() now sends this request's SYN, which answers the WAKE
        if self.fair and (woken or self._has_request_to(msg.src)) and (
                self.state is not State.WAKE_SENT or self._may_hold(woken)):
            self.owed[msg.src] = msg.rid  # held WAKE: answered by our SYN once we are free
            return []
        return [self._send(MsgType.NACK, msg.src, msg.rid, wake=True)]

    def _may_hold(self, woken: list[_Item]) -> bool:
        """Fair mode, in WAKE_SENT ourselves: hold a WAKE only if the oldest request it woke is
        older than the request our own WAKE is for (the age R_wake recorded when we rejected it).
        The waker recorded that same age for the requests it rejected, so along a chain of
        WAKE_SENT nodes each holding the previous one's WAKE the ages strictly increase and the
        chain never closes into a cycle (no deadlock); a WAKE is NACKed only in favour of an
        older request (docs/reliability.md, "Bounded waiting")."""
        assert self.s_wake is not None
        ages = [_age(it.request) for it in woken if it.request is not None]
        return bool(ages) and self.s_wake.age is not None and min(ages) < self.s_wake.age

    def _has_request_to(self, peer: NodeId) -> bool:
        return any(it.request is not None and it.request.remote == peer for it in self.q_main) or (
            self.s_sent is not None and self.s_sent.request is not None
            and self.s_sent.request.remote == peer)

    def _paid(self, peer: NodeId) -> None:
        self.owed.pop(peer, None)

    def _unowe(self, peer: NodeId) -> list[Action]:
        """A request to ``peer`` left: if we owed ``peer`` a SYN and have none left, say so."""
        if peer in self.owed and not self._has_request_to(peer):
            wid = self.owed.pop(peer)
            return [self._send(MsgType.NACK, peer, wid, wake=True)]
        return []

    # -- robust mode: leases, lifetimes, restarts -------------------------------------------------

    def _waiting_requests(self) -> list[Request]:
        out = [it.request for it in self.q_main if it.request is not None]
        out += self.sleeping()
        if self.s_sent is not None and self.s_sent.request is not None:
            out.append(self.s_sent.request)
        return out

    def _release(self, lock: _Lock, now: float, abort: str | None) -> list[Action]:
        """Drop ``lock``; the initiator requeues its request (or expires it when too old)."""
        acts: list[Action] = []
        self.lock = None
        if lock in self.q_ready:
            self.q_ready.remove(lock)
        if abort is not None and lock.state in (State.READY, State.BUSY):
            acts.append(AbortAttempts(lock.request, lock.peer, abort))
        if lock.request.initiator == self.name:
            if self.robust is not None and now >= lock.request.t + self.robust.request_ttl:
                acts.append(Expired(lock.request, "ttl", now))
                acts += self._unowe(lock.peer)
            else:
                arrival = lock.arrival if lock.arrival is not None else self._next_arrival()
                heapq.heappush(self.q_main, _Item(arrival, request=lock.request))
        self._trace(now)
        return acts

    def _expire_leases(self, now: float) -> list[Action]:
        acts: list[Action] = []
        lock = self.lock
        if lock is not None and now >= lock.lease_until:
            acts += self._release(lock, now, abort="lease")
        if self.s_wake is not None and now >= self._wake_until:
            self.s_wake = None
            self._wake_until = math.inf
            self._trace(now)
        return acts

    def _expire_requests(self, now: float) -> list[Action]:
        assert self.robust is not None
        ttl = self.robust.request_ttl
        acts: list[Action] = []
        gone: list[Request] = []
        keep = [it for it in self.q_main if it.request is None or now < it.request.t + ttl]
        if len(keep) != len(self.q_main):
            gone += [it.request for it in self.q_main if it not in keep and it.request is not None]
            self.q_main = keep
            heapq.heapify(self.q_main)
        sleep = [it for it in self.s_sleep if it.request is not None and now < it.request.t + ttl]
        if len(sleep) != len(self.s_sleep):
            gone += [it.request for it in self.s_sleep if it not in sleep and it.request is not None]
            self.s_sleep = sleep
        sent = self.s_sent
        if sent is not None and sent.request is not None and now >= sent.request.t + ttl:
            self._dead.add(sent.request.rid)
            gone.append(sent.request)
            self.s_sent = None
            self._trace(now)
        for r in gone:
            acts.append(Expired(r, "ttl", now))
        for peer in sorted({r.remote for r in gone}):
            acts += self._unowe(peer)
        return acts

    def _peer_restarted(self, peer: NodeId, now: float) -> list[Action]:
        """``peer`` restarted (robust mode): release everything held with its previous life."""
        acts: list[Action] = []
        lock = self.lock
        if lock is not None and lock.peer == peer:
            acts += self._release(lock, now, abort="peer restarted")
        if self.s_sent is not None and self.s_sent.request is not None \
                and self.s_sent.request.remote == peer:
            item, self.s_sent = self.s_sent, None
            item.woken = False
            heapq.heappush(self.q_main, item)
        if self.s_wake is not None and self.s_wake.wake_target == peer:
            self.s_wake = None
            self._wake_until = math.inf
        for it in [it for it in self.s_sleep if it.request is not None and it.request.remote == peer]:
            self.s_sleep.remove(it)
            heapq.heappush(self.q_main, it)
        self.q_main = [it for it in self.q_main if it.wake_target != peer]
        heapq.heapify(self.q_main)
        self.owed.pop(peer, None)
        self._trace(now)
        return acts

    # -- helpers ---------------------------------------------------------------------------------

    def _next_arrival(self) -> int:
        self._arrival += 1
        return self._arrival

    def _link_ack(self, dst: NodeId, seq: int) -> EspMessage:
        return EspMessage(MsgType.LINK_ACK, self.name, dst, seq)

    def _send(self, kind: MsgType, dst: NodeId, rid: int, *, request: Request | None = None,
              t_min: float = 0.0, wake: bool = False) -> Send:
        msg = EspMessage(kind, self.name, dst, rid, request, t_min, wake)
        if self.arq is not None:
            msg = self.arq.stamp(msg, self._now)
        return Send(msg)

    def _error(self, msg: EspMessage, reason: str) -> RemoteError:
        self.remote_errors += 1
        return RemoteError(msg.src, msg, f"{self.name}: {reason}")

    def _set(self, lock: _Lock, state: State, now: float) -> None:
        lock.state = state
        self._trace(now)

    def _trace(self, now: float) -> None:
        if self.transitions is not None:
            st = self.state
            if not self.transitions or self.transitions[-1][1] is not st:
                self.transitions.append((now, st))


_HANDLERS = {
    MsgType.SYN: EspNode._on_syn,
    MsgType.SYNACK: EspNode._on_synack,
    MsgType.SYNREJ: EspNode._on_synrej,
    MsgType.ACK: EspNode._on_ack,
    MsgType.NACK: EspNode._on_nack,
    MsgType.WAKE: EspNode._on_wake,
    MsgType.REFUSE: EspNode._on_refuse,
}
