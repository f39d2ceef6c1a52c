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
"""

from __future__ import annotations

import heapq
import itertools
import struct
from dataclasses import dataclass, field
from enum import Enum, IntEnum

from hwctl.protocols.base import (
    Action,
    Completed,
    NodeId,
    ProtocolViolation,
    Request,
    Send,
    StartAttempts,
    pack_names,
    unpack_names,
)


class MsgType(IntEnum):
    """ESP messages (Table I)."""

    SYN = 1
    SYNACK = 2
    SYNREJ = 3
    ACK = 4
    NACK = 5
    WAKE = 6


class State(Enum):
    """ESP node states (Table II)."""

    IDLE = "IDLE"
    SYN_SENT = "SYN_SENT"
    SYN_RECEIVED = "SYN_RECEIVED"
    WAKE_SENT = "WAKE_SENT"
    READY = "READY"
    BUSY = "BUSY"


BUSY_STATES = frozenset({State.SYN_RECEIVED, State.WAKE_SENT, State.READY, State.BUSY})

_HDR = struct.Struct(">BqQd")


@dataclass(frozen=True, slots=True)
class EspMessage:
    """One ESP control message.

    ``rid`` names the request (SYN/SYNACK/SYNREJ/ACK/NACK) or, for WAKE and the NACK answering a
    WAKE, the waker's wake id (``wake=True``). SYN carries the request; ACK carries ``t_min``.
    """

    kind: MsgType
    src: NodeId
    dst: NodeId
    rid: int
    request: Request | None = None
    t_min: float = 0.0
    wake: bool = False

    def to_bytes(self) -> bytes:
        """Wire encoding for the node service: header, names, optional request."""
        flags = (1 if self.wake else 0) | (2 if self.request is not None else 0)
        out = _HDR.pack(self.kind, self.rid, flags, self.t_min) + pack_names(self.src, self.dst)
        if self.request is not None:
            out += self.request.pack()
        return out

    @classmethod
    def from_bytes(cls, data: bytes) -> EspMessage:
        """Inverse of :meth:`to_bytes`; raises ``ValueError`` on malformed input."""
        try:
            kind, rid, flags, t_min = _HDR.unpack_from(data, 0)
            (src, dst), off = unpack_names(data, _HDR.size, 2)
            request = None
            if flags & 2:
                request, off = Request.unpack(data, off)
            if off != len(data):
                raise ValueError("trailing bytes")
            return cls(MsgType(kind), src, dst, rid, request, t_min, bool(flags & 1))
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed ESP message: {exc}") from exc


@dataclass(order=True, slots=True)
class _Item:
    """An entry of Q_main: an active request or a wake-up request R_wake (target node)."""

    arrival: int
    request: Request | None = field(compare=False, default=None)
    wake_target: NodeId | None = field(compare=False, default=None)


@dataclass(slots=True)
class _Lock:
    """The Lock on this node's physical layer, held for ``request`` with ``peer``."""

    peer: NodeId
    request: Request
    arrival: int | None  # the initiator's arrival number, to requeue on NACK
    state: State
    t_min: float = 0.0


class EspNode:
    """ESP state machine of one node. ``delays`` maps each neighbour to the one-way control delay."""

    def __init__(self, name: NodeId, delays: dict[NodeId, float], *, debug: bool = False) -> None:
        self.name = name
        self.delays = dict(delays)
        self.debug = debug
        self._arrivals = itertools.count(1)
        self.q_main: list[_Item] = []
        self.q_ready: list[_Lock] = []
        self.s_sent: _Item | None = None
        self.s_wake: _Item | None = None
        self.s_sleep: list[_Item] = []
        self.lock: _Lock | None = None
        #: (arrival number, kind) of every Q_main poll, for the priority property test
        self.poll_log: list[tuple[int, int]] | None = [] if debug else None
        self.transitions: list[tuple[float, State]] | None = [] if debug else None

    # -- derived state ---------------------------------------------------------------------------

    @property
    def state(self) -> State:
        if self.lock is not None:
            return self.lock.state
        if self.s_wake is not None:
            return State.WAKE_SENT
        if self.s_sent is not None:
            return State.SYN_SENT
        return State.IDLE

    @property
    def busy(self) -> bool:
        return self.state in BUSY_STATES

    def sleeping(self) -> list[Request]:
        return [it.request for it in self.s_sleep if it.request is not None]

    def queued_wakes(self) -> list[NodeId]:
        return [it.wake_target for it in self.q_main if it.wake_target is not None]

    # -- events ----------------------------------------------------------------------------------

    def submit(self, request: Request, now: float) -> list[Action]:
        """A new request arrives from the layer above (this node must be its initiator)."""
        if request.initiator != self.name:
            raise ValueError(f"{self.name}: request {request.rid} belongs to {request.initiator}")
        if request.remote not in self.delays:
            raise ValueError(f"{self.name}: {request.remote} is not a neighbour")
        heapq.heappush(self.q_main, _Item(next(self._arrivals), request=request))
        return self._process(now)

    def receive(self, msg: EspMessage, now: float) -> list[Action]:
        if msg.dst != self.name:
            raise ValueError(f"{self.name}: message for {msg.dst}")
        handler = _HANDLERS[msg.kind]
        acts = handler(self, msg, now)
        return acts + self._process(now)

    def get_timer(self) -> float | None:
        """Next time this core needs ``handle_timer``: t_min of a READY lock."""
        if self.lock is not None and self.lock.state is State.READY:
            return self.lock.t_min
        return None

    def handle_timer(self, now: float) -> list[Action]:
        lock = self.lock
        if lock is not None and lock.state is State.READY and now >= lock.t_min:
            self._set(lock, State.BUSY, now)
        return []

    def attempts_finished(self, rid: int, now: float) -> list[Action]:
        """The physical layer finished request ``rid``: release the Lock (Algorithm 1, line 4)."""
        lock = self.lock
        if lock is None or lock.request.rid != rid or lock.state not in (State.READY, State.BUSY):
            raise ProtocolViolation(f"{self.name}: attempts_finished({rid}) without a matching lock")
        self.handle_timer(now)
        self.lock = None
        self._trace(now)
        acts: list[Action] = []
        if lock.request.initiator == self.name:
            acts.append(Completed(lock.request, lock.t_min, now, now))
        return acts + self._process(now)

    # -- Algorithm 1 -----------------------------------------------------------------------------

    def _process(self, now: float) -> list[Action]:
        acts: list[Action] = []
        if self.q_ready:
            lock = self.q_ready.pop(0)
            acts.append(StartAttempts(lock.request, lock.peer, lock.t_min))
            return acts
        if self.state is not State.IDLE or not self.q_main:
            return acts
        item = heapq.heappop(self.q_main)
        if self.poll_log is not None:
            self.poll_log.append((item.arrival, min((i.arrival for i in self.q_main), default=0)))
        if item.request is not None:
            self.s_sent = item
            self._trace(now)
            acts.append(self._send(MsgType.SYN, item.request.remote, item.request.rid,
                                   request=item.request))
        else:
            assert item.wake_target is not None
            self.s_wake = item
            self._trace(now)
            acts.append(self._send(MsgType.WAKE, item.wake_target, item.arrival, wake=True))
        return acts

    # -- message handlers ------------------------------------------------------------------------

    def _on_syn(self, msg: EspMessage, now: float) -> list[Action]:
        req = msg.request
        if req is None or req.remote != self.name or req.initiator != msg.src:
            raise ProtocolViolation(f"{self.name}: malformed SYN {msg}")
        if self._accepts_syn_from(msg.src):
            if self.s_wake is not None and self.s_wake.wake_target == msg.src:
                self.s_wake = None  # the woken node's SYN ends WAKE_SENT
            self.lock = _Lock(msg.src, req, None, State.SYN_RECEIVED)
            self._trace(now)
            return [self._send(MsgType.SYNACK, msg.src, req.rid)]
        self._queue_wake(msg.src)
        return [self._send(MsgType.SYNREJ, msg.src, req.rid)]

    def _accepts_syn_from(self, src: NodeId) -> bool:
        st = self.state
        if st is State.IDLE:
            return True
        if st is State.WAKE_SENT:
            assert self.s_wake is not None
            return self.s_wake.wake_target == src
        if st is State.SYN_SENT:
            return src < self.name
        return False

    def _queue_wake(self, target: NodeId) -> None:
        if target in self.queued_wakes():
            return
        if self.s_wake is not None and self.s_wake.wake_target == target:
            return
        heapq.heappush(self.q_main, _Item(next(self._arrivals), wake_target=target))

    def _take_sent(self, msg: EspMessage) -> _Item | None:
        item = self.s_sent
        if item is None or item.request is None or item.request.rid != msg.rid:
            return None
        self.s_sent = None
        return item

    def _on_synack(self, msg: EspMessage, now: float) -> list[Action]:
        item = self._take_sent(msg)
        if item is None:
            raise ProtocolViolation(f"{self.name}: unexpected SYNACK {msg}")
        assert item.request is not None
        if self.lock is not None:
            # Locked by another node meanwhile: the request is no longer valid here.
            heapq.heappush(self.q_main, item)
            return [self._send(MsgType.NACK, msg.src, msg.rid)]
        t_min = now + self.delays[msg.src]
        lock = _Lock(msg.src, item.request, item.arrival, State.READY, t_min)
        self.lock = lock
        self.q_ready.append(lock)
        self._trace(now)
        return [self._send(MsgType.ACK, msg.src, msg.rid, t_min=t_min)]

    def _on_synrej(self, msg: EspMessage, now: float) -> list[Action]:
        item = self._take_sent(msg)
        if item is None:
            raise ProtocolViolation(f"{self.name}: unexpected SYNREJ {msg}")
        self.s_sleep.append(item)
        self._trace(now)
        return []

    def _on_ack(self, msg: EspMessage, now: float) -> list[Action]:
        lock = self.lock
        if lock is None or lock.state is not State.SYN_RECEIVED or lock.request.rid != msg.rid:
            raise ProtocolViolation(f"{self.name}: unexpected ACK {msg}")
        lock.t_min = msg.t_min
        self._set(lock, State.READY, now)
        self.q_ready.append(lock)
        return []

    def _on_nack(self, msg: EspMessage, now: float) -> list[Action]:
        if msg.wake:
            if self.s_wake is not None and self.s_wake.arrival == msg.rid:
                self.s_wake = None
                self._trace(now)
            return []  # a stale answer to a WAKE that a SYN already ended
        lock = self.lock
        if lock is None or lock.state is not State.SYN_RECEIVED or lock.request.rid != msg.rid:
            raise ProtocolViolation(f"{self.name}: unexpected NACK {msg}")
        self.lock = None
        self._trace(now)
        return []

    def _on_wake(self, msg: EspMessage, now: float) -> list[Action]:
        woken = [it for it in self.s_sleep if it.request is not None and it.request.remote == msg.src]
        for it in woken:
            self.s_sleep.remove(it)
            heapq.heappush(self.q_main, it)
        if woken and self.state is State.IDLE:
            head = self.q_main[0]
            if head.request is not None and head.request.remote == msg.src:
                return []  # _process() now sends this request's SYN, which answers the WAKE
        return [self._send(MsgType.NACK, msg.src, msg.rid, wake=True)]

    # -- helpers ---------------------------------------------------------------------------------

    def _send(self, kind: MsgType, dst: NodeId, rid: int, *, request: Request | None = None,
              t_min: float = 0.0, wake: bool = False) -> Send:
        return Send(EspMessage(kind, self.name, dst, rid, request, t_min, wake))

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
}
