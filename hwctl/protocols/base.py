"""Requests and actions shared by the scheduling cores (ESP, DQP).

A request is the paper's r = (i, j, f, p, t) (ESP paper §IV, eq. 2): initiator i, remote j, fidelity
requirement f, number of pairs p and the time t it was made. Times are seconds (float) on the
protocol layer; the FPGA layer uses integer clock cycles and converts only differences.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NodeId = str


@dataclass(frozen=True, slots=True)
class Request:
    """r = (i, j, f, p, t) with a network-unique id ``rid``."""

    rid: int
    initiator: NodeId
    remote: NodeId
    fidelity: float
    pairs: int
    t: float

    def __post_init__(self) -> None:
        if self.initiator == self.remote:
            raise ValueError(f"request {self.rid}: initiator and remote are both {self.initiator!r}")
        if self.pairs < 1:
            raise ValueError(f"request {self.rid}: pairs must be >= 1, got {self.pairs}")
        if not 0.5 <= self.fidelity < 1.0:
            raise ValueError(f"request {self.rid}: fidelity must be in [0.5, 1), got {self.fidelity}")

    def peer_of(self, node: NodeId) -> NodeId:
        """The other end of this request's link, seen from ``node`` (one of its two ends)."""
        return self.remote if node == self.initiator else self.initiator

    _STRUCT = struct.Struct(">qdBd")

    def pack(self) -> bytes:
        """Compact encoding used inside control messages (see :func:`pack_names`)."""
        return self._STRUCT.pack(self.rid, self.fidelity, self.pairs, self.t) + pack_names(
            self.initiator, self.remote
        )

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> tuple[Request, int]:
        """Decode a request written by :meth:`pack` at ``offset``; returns it and the offset after it."""
        rid, fid, pairs, t = cls._STRUCT.unpack_from(data, offset)
        (ini, rem), offset = unpack_names(data, offset + cls._STRUCT.size, 2)
        return cls(rid, ini, rem, fid, pairs, t), offset


def pack_names(*names: str) -> bytes:
    out = bytearray()
    for n in names:
        b = n.encode()
        if len(b) > 255:
            raise ValueError(f"node name too long: {n!r}")
        out.append(len(b))
        out += b
    return bytes(out)


def unpack_names(data: bytes, offset: int, count: int) -> tuple[list[str], int]:
    names = []
    for _ in range(count):
        n = data[offset]
        names.append(data[offset + 1 : offset + 1 + n].decode())
        offset += 1 + n
    return names, offset


# ---------------------------------------------------------------------------------------------
# Actions returned by the cores. The driver (simulator, node service, test) carries them out.


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``msg`` (a protocol message dataclass) to node ``msg.dst``."""

    msg: object


@dataclass(frozen=True, slots=True)
class StartAttempts:
    """Hand ``request`` to the physical layer: attempt entanglement with ``peer`` from ``t_min``.

    Both ends of the link emit this with the same ``t_min``; the physical layer runs until
    ``request.pairs`` pairs exist, then the driver calls ``attempts_finished`` on both cores.
    """

    request: Request
    peer: NodeId
    t_min: float


@dataclass(frozen=True, slots=True)
class Completed:
    """Emitted by the initiator when all pairs of ``request`` exist (NL_finish = ``t_finish``).

    ``pl_start``/``pl_finish`` are PL_start/PL_finish of ESP paper eqs. (7)-(8).
    """

    request: Request
    pl_start: float
    pl_finish: float
    t_finish: float


@dataclass(frozen=True, slots=True)
class Expired:
    """Emitted by the initiator when ``request`` ends without its pairs; ``reason`` says why
    (``ttl``: not started within the request lifetime; ``refused``: the remote cannot serve it;
    ``restarted``: this node restarted and the request was too old to resume)."""

    request: Request
    reason: str
    t: float


@dataclass(frozen=True, slots=True)
class AbortAttempts:
    """Stop (or never start) the physical layer for ``request``: its Lock was released (lease
    expired, peer restarted). The driver drops a pending start and stops a running generation."""

    request: Request
    peer: NodeId
    reason: str


@dataclass(frozen=True, slots=True)
class RemoteError:
    """A message from ``src`` was invalid (not a neighbour, wrong parties, unexpected in the
    current state). Reported, never raised: the fault is the remote's or the network's."""

    src: NodeId
    msg: object
    reason: str


Action = Send | StartAttempts | Completed | Expired | AbortAttempts | RemoteError


class ProtocolViolation(RuntimeError):
    """An internal invariant of a core broke, or its local driver misused it (e.g.
    ``attempts_finished`` for a request it never started). Never raised for a remote's message:
    those give :class:`RemoteError`."""
