"""Midpoint-source header line (spec ``[header]``): bytes and bit-level waveform for test benches.

A header is the marker byte, the 32-bit seq big-endian and a CRC-8/SMBUS over the 4 seq bytes,
sent UART-style on ``hdr_i``: idle high, per byte one start bit (0), 8 data bits LSB first, one stop
bit (1), each bit ``HEADER_BIT_CYCLES`` device cycles long (pair-verification paper II-B: the
source stamps every emitted pair with a sequence number).
"""

from __future__ import annotations

from hwctl.wire import HEADER_BIT_CYCLES, HEADER_MARKER, crc8

#: Bits on the line per header: 6 bytes x (start + 8 data + stop).
HEADER_BITS = 6 * 10
#: Cycles from the first start bit to the sampling of the last stop bit (mid-bit sampling).
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
