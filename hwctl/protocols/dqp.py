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
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from enum import IntEnum

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

SCHEDULER: NodeId = "S"


class DqpMsgType(IntEnum):
    ADD = 1
    START = 2
    DONE = 3


_HDR = struct.Struct(">Bd")


@dataclass(frozen=True, slots=True)
class DqpMessage:
    kind: DqpMsgType
    src: NodeId
    dst: NodeId
    request: Request
    t_min: float = 0.0

    def to_bytes(self) -> bytes:
        return (_HDR.pack(self.kind, self.t_min) + pack_names(self.src, self.dst)
                + self.request.pack())

    @classmethod
    def from_bytes(cls, data: bytes) -> DqpMessage:
        try:
            kind, t_min = _HDR.unpack_from(data, 0)
            (src, dst), off = unpack_names(data, _HDR.size, 2)
            req, off = Request.unpack(data, off)
            if off != len(data):
                raise ValueError("trailing bytes")
            return cls(DqpMsgType(kind), src, dst, req, t_min)
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise ValueError(f"malformed DQP message: {exc}") from exc


class DqpNode:
    """A quantum node under DQP: forwards requests to S, executes what S starts."""

    def __init__(self, name: NodeId, scheduler: NodeId = SCHEDULER) -> None:
        self.name = name
        self.scheduler = scheduler
        self.active: tuple[Request, float] | None = None  # (request, t_min)

    def submit(self, request: Request, now: float) -> list[Action]:
        if request.initiator != self.name:
            raise ValueError(f"{self.name}: request {request.rid} belongs to {request.initiator}")
        return [Send(DqpMessage(DqpMsgType.ADD, self.name, self.scheduler, request))]

    def receive(self, msg: DqpMessage, now: float) -> list[Action]:
        if msg.kind is not DqpMsgType.START:
            raise ProtocolViolation(f"{self.name}: unexpected {msg.kind.name}")
        if self.active is not None:
            raise ProtocolViolation(f"{self.name}: START while request {self.active[0].rid} runs")
        self.active = (msg.request, msg.t_min)
        return [StartAttempts(msg.request, msg.request.peer_of(self.name), msg.t_min)]

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def attempts_finished(self, rid: int, now: float) -> list[Action]:
        if self.active is None or self.active[0].rid != rid:
            raise ProtocolViolation(f"{self.name}: attempts_finished({rid}) without START")
        req, t_min = self.active
        self.active = None
        if req.initiator != self.name:
            return []
        return [Completed(req, t_min, now, now),
                Send(DqpMessage(DqpMsgType.DONE, self.name, self.scheduler, req))]


class DqpScheduler:
    """The central scheduler S. ``delays`` maps each node to the one-way delay S <-> node."""

    def __init__(self, delays: dict[NodeId, float], name: NodeId = SCHEDULER) -> None:
        self.name = name
        self.delays = dict(delays)
        self.queue: deque[Request] = deque()
        self.running: Request | None = None

    def receive(self, msg: DqpMessage, now: float) -> list[Action]:
        if msg.kind is DqpMsgType.ADD:
            self.queue.append(msg.request)
        elif msg.kind is DqpMsgType.DONE:
            if self.running is None or self.running.rid != msg.request.rid:
                raise ProtocolViolation(f"S: DONE for {msg.request.rid} which is not running")
            self.running = None
        else:
            raise ProtocolViolation(f"S: unexpected {msg.kind.name}")
        return self._serve(now)

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> list[Action]:
        return []

    def _serve(self, now: float) -> list[Action]:
        if self.running is not None or not self.queue:
            return []
        req = self.queue.popleft()
        self.running = req
        t_min = now + max(self.delays[req.initiator], self.delays[req.remote])
        return [Send(DqpMessage(DqpMsgType.START, self.name, node, req, t_min))
                for node in (req.initiator, req.remote)]
