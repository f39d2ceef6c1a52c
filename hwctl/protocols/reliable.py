"""Per-link reliable delivery for the scheduling cores (sans-IO), used when robustness is on.

The ESP paper (§V) assumes every control message arrives exactly once and in order per link, and
leaves failures to future work. :class:`Arq` restores that assumption over a link that loses,
duplicates, reorders and delays messages, and detects a restarted peer:

- every data message carries a message id: the sender's incarnation ``inc``, a per-link sequence
  number ``seq`` (1, 2, ... per incarnation pair) and ``dinc``, the incarnation of the receiver the
  sender believes in;
- the receiver delivers a link's messages in ``seq`` order (later ones wait in a reorder buffer),
  drops duplicates and answers every data message with a cumulative acknowledgement;
- the sender keeps each message until it is acknowledged and sends it again when its
  retransmission timeout passes (doubling from ``rto`` up to ``rto_max``: go-back-nothing,
  selective retransmission of exactly the unacknowledged ids);
- a message from a higher incarnation of a peer means the peer restarted: the link is reset (what
  was sent to its old life is dropped, its new sequence starts at 1) and the owner core is told, so
  it can release what the peer held. Messages from an older incarnation are dropped; messages meant
  for an older incarnation of this node are dropped too, except the peer's HELLO, which announces a
  restart and is accepted whatever ``dinc`` it carries.

Incarnations must grow across restarts of a node; the driver chooses them (the simulator counts
restarts, a node service can use its boot time in ns). Nothing here reads a clock: ``now`` is
passed in, and ``next_deadline()``/``due(now)`` expose the retransmission timer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hwctl.protocols.base import NodeId


@dataclass(frozen=True, slots=True)
class RobustConfig:
    """Timeouts of the robust mode (seconds). Defaults suit the paper's 2 km links (10 µs)."""

    rto: float = 1e-3  #: first retransmission timeout of a message
    rto_max: float = 16e-3  #: retransmission timeout cap (doubling from ``rto``)
    lease: float = 0.25  #: a Lock held without progress (SYN_RECEIVED, WAKE_SENT) is released after
    busy_lease: float = 2.0  #: READY/BUSY: the physical layer must finish within t_min + this
    request_ttl: float = 30.0  #: a request not started this long after its time t expires

    def __post_init__(self) -> None:
        if not 0 < self.rto <= self.rto_max:
            raise ValueError("need 0 < rto <= rto_max")
        if self.lease <= self.rto_max:
            raise ValueError("the lease must be longer than the retransmission timeout cap")
        if self.busy_lease <= 0 or self.request_ttl <= 0:
            raise ValueError("busy_lease and request_ttl must be > 0")


class Envelope(Protocol):
    kind: Any
    src: NodeId
    dst: NodeId
    rid: int
    seq: int
    inc: int
    dinc: int


@dataclass(slots=True)
class _Out:
    msg: Any
    deadline: float
    rto: float


@dataclass(slots=True)
class _Link:
    """One link. The outgoing stream is the one of (own incarnation, ``peer_inc``); the incoming
    stream is keyed by ``in_key`` = (sender's incarnation, the incarnation it addressed): a newer
    key starts a new sequence at 1, an older one is stale."""

    peer_inc: int = 0
    out_seq: int = 0
    unacked: dict[int, _Out] = field(default_factory=dict)
    in_key: tuple[int, int] = (0, 0)
    in_next: int = 1
    inbuf: dict[int, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ArqStats:
    sent: int = 0
    retransmitted: int = 0
    duplicates: int = 0
    reordered: int = 0
    stale: int = 0
    acks: int = 0


class Arq:
    """Reliable, in-order, exactly-once delivery per link (see the module docstring).

    ``make_ack(dst, seq)`` builds the owner protocol's link acknowledgement; ``ack_kind`` and
    ``hello_kind`` are the protocol's message kinds for it and for the restart announcement.
    """

    def __init__(self, name: NodeId, peers: list[NodeId], inc: int, cfg: RobustConfig,
                 make_ack: Callable[[NodeId, int], Any], ack_kind: Any, hello_kind: Any) -> None:
        self.name = name
        self.inc = inc
        self.cfg = cfg
        self.links: dict[NodeId, _Link] = {p: _Link() for p in peers}
        self._make_ack = make_ack
        self._ack_kind = ack_kind
        self._hello_kind = hello_kind
        self.stats = ArqStats()

    def clone(self) -> Arq:
        """An independent copy (for explicit-state exploration)."""
        c = object.__new__(Arq)
        c.__dict__.update(self.__dict__)
        c.links = {p: _Link(ln.peer_inc, ln.out_seq,
                            {s: _Out(o.msg, o.deadline, o.rto) for s, o in ln.unacked.items()},
                            ln.in_key, ln.in_next, dict(ln.inbuf))
                   for p, ln in self.links.items()}
        c.stats = dataclasses.replace(self.stats)
        return c

    def add_peer(self, peer: NodeId) -> None:
        self.links.setdefault(peer, _Link())

    # -- sending ---------------------------------------------------------------------------------

    def stamp(self, msg: Any, now: float) -> Any:
        """Give ``msg`` its id, keep it until acknowledged and return the copy to send."""
        link = self.links[msg.dst]
        link.out_seq += 1
        out = dataclasses.replace(msg, seq=link.out_seq, inc=self.inc, dinc=link.peer_inc)
        link.unacked[link.out_seq] = _Out(out, now + self.cfg.rto, self.cfg.rto)
        self.stats.sent += 1
        return out

    def ack(self, peer: NodeId) -> Any:
        """Cumulative ack of the incoming stream: ``rid`` = last in-order id, (``dinc``, ``seq``) =
        the stream's key, so that it can never acknowledge another stream's ids."""
        link = self.links[peer]
        return dataclasses.replace(self._make_ack(peer, link.in_next - 1), inc=self.inc,
                                   dinc=link.in_key[0], seq=link.in_key[1])

    def next_deadline(self) -> float | None:
        best: float | None = None
        for link in self.links.values():
            for o in link.unacked.values():
                if best is None or o.deadline < best:
                    best = o.deadline
        return best

    def due(self, now: float) -> list[Any]:
        """Messages whose retransmission timeout passed (each rescheduled with a doubled RTO)."""
        out = []
        for link in self.links.values():
            for o in link.unacked.values():
                if o.deadline <= now:
                    o.rto = min(2 * o.rto, self.cfg.rto_max)
                    o.deadline = now + o.rto
                    out.append(o.msg)
        self.stats.retransmitted += len(out)
        return out

    def pending(self, peer: NodeId) -> int:
        return len(self.links[peer].unacked)

    # -- receiving -------------------------------------------------------------------------------

    def accept(self, msg: Any) -> tuple[list[Any], Any | None, bool]:
        """Process one arriving message: (in-order data messages to deliver now, the ack to send or
        None, whether the sender restarted). The caller validated ``src``/``dst``."""
        link = self.links[msg.src]
        restarted = False
        if msg.inc < link.peer_inc:
            self.stats.stale += 1
            return [], None, False
        if msg.inc > link.peer_inc:
            # the peer restarted: what was sent to its old life is dropped (the owner core
            # re-creates what it still needs), the new outgoing stream starts at 1
            link.peer_inc = msg.inc
            link.out_seq = 0
            link.unacked.clear()
            restarted = True
        if msg.kind == self._ack_kind:
            self.stats.acks += 1
            if msg.dinc == self.inc and msg.seq == link.peer_inc:
                for s in [s for s in link.unacked if s <= msg.rid]:
                    del link.unacked[s]
            return [], None, restarted
        if msg.dinc != self.inc and msg.kind != self._hello_kind:
            # meant for an earlier life of this node: drop it, but answer, so that the sender
            # learns this incarnation (our HELLO may have been lost)
            self.stats.stale += 1
            return [], self.ack(msg.src), restarted
        key = (msg.inc, msg.dinc)
        if key < link.in_key:
            self.stats.stale += 1
            return [], None, restarted
        if key > link.in_key:
            link.in_key = key
            link.in_next = 1
            link.inbuf.clear()
        if msg.seq < link.in_next or msg.seq in link.inbuf:
            self.stats.duplicates += 1
            return [], self.ack(msg.src), restarted
        if msg.seq != link.in_next:
            self.stats.reordered += 1
        link.inbuf[msg.seq] = msg
        ready = []
        while link.in_next in link.inbuf:
            ready.append(link.inbuf.pop(link.in_next))
            link.in_next += 1
        return ready, self.ack(msg.src), restarted
