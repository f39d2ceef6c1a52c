"""Midpoint-source header line (spec ``[header]``): bytes and bit-level waveform for test benches.

A header is the marker byte, the 32-bit seq big-endian and a CRC-8/SMBUS over the 4 seq bytes,
sent UART-style on ``hdr_i``: idle high, per byte one start bit (0), 8 data bits LSB first, one stop
bit (1), each bit ``HEADER_BIT_CYCLES`` device cycles long (pair-verification paper II-B: the
source stamps every emitted pair with a sequence number).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwctl.wire import HEADER_BIT_CYCLES, HEADER_MARKER, crc8

#: Bits on the line per header: 6 bytes x (start + 8 data + stop).
HEADER_BITS = 6 * 10
#: Cycles a header occupies the line (60 at the spec's 1 cycle per bit: less than the 77-cycle pulse
#: period of the paper's 1.3 MHz source, so every pulse can carry its header; docs/header-path.md
#: section 2).
HEADER_CYCLES = HEADER_BITS * HEADER_BIT_CYCLES


def header_bytes(seq: int, *, corrupt: bool = False) -> bytes:
    """The 6 header bytes for ``seq``; ``corrupt`` flips one CRC bit (a malformed header)."""
    body = (seq & 0xFFFF_FFFF).to_bytes(4, "big")
    crc = crc8(body) ^ (0x01 if corrupt else 0)
    return bytes((HEADER_MARKER,)) + body + bytes((crc,))


def header_bits(seq: int, *, corrupt: bool = False) -> list[int]:
    """Line level per bit period (60 entries); hold each for HEADER_BIT_CYCLES cycles."""
    bits: list[int] = []
    for b in header_bytes(seq, corrupt=corrupt):
        bits.append(0)
        bits.extend((b >> i) & 1 for i in range(8))
        bits.append(1)
    return bits


@dataclass(frozen=True, slots=True)
class HeaderSource:
    """One midpoint entangled-pair source feeding the two memories of a verification pair.

    Pair-verification paper §II-B: the source emits pair N stamped with sequence number N and sends
    one photon (with its header) down each arm; each arm loses its photon independently (paper §IV
    loss budget, :func:`hwctl.physics.loss.arrival_probability`). :meth:`arm` gives the
    :class:`~hwctl.sim.twin.model.TwinConfig` fields for arm 0 and arm 1: the same period, phase and
    first sequence number (so both twins see seq N at the same cycle) and one ``header_seed`` with
    a different ``header_arm`` (independent, reproducible loss draws per arm).

    Both twins must also share a time base: in virtual time they both start at cycle 0; in real
    time start their servers with the same ``t0`` (``server.start(t0=...)`` / ``Pacer.restart``).
    """

    period: int  # cycles between emitted pairs
    seed: int = 0
    phase: int = 0  # cycle of pair seq0
    seq0: int = 0
    arrival: tuple[float, float] = (1.0, 1.0)  # per-arm probability that the photon arrives
    corrupt: float = 0.0

    def __post_init__(self) -> None:
        if self.period <= 0:
            raise ValueError("HeaderSource.period must be > 0 cycles")
        if len(self.arrival) != 2 or not all(0.0 <= a <= 1.0 for a in self.arrival):
            raise ValueError("HeaderSource.arrival must be two probabilities")

    def arm(self, i: int) -> dict[str, object]:
        """``TwinConfig`` keyword arguments for arm ``i`` (0 or 1)."""
        if i not in (0, 1):
            raise ValueError("a source has arms 0 and 1")
        return dict(header_period=self.period, header_phase=self.phase, header_seq0=self.seq0,
                    header_arrival=self.arrival[i], header_corrupt=self.corrupt,
                    header_seed=self.seed, header_arm=i)
