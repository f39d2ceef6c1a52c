"""Host side of the wire format: COBS framing, CRC-16/CCITT-FALSE and message (de)serialisation.

The frame layout is documented in ``spec.toml``. The decoder is a push parser: feed it bytes in any
split (one at a time, whole buffers, garbage in between) and it yields the frames it completes.
A corrupted frame never raises; it is counted in :class:`DecoderStats` and yielded as a
:class:`FrameError` so the caller can surface it (no silent loss).
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from hwctl.wire._spec import MAX_EVENT_PAYLOAD, MAX_PAYLOAD, MESSAGES, ErrorCode, FreeMask, Message

#: Largest decoded frame: seq + opcode + payload (commands or events, whichever is longer) + crc.
MAX_FRAME = 2 + max(MAX_PAYLOAD, MAX_EVENT_PAYLOAD) + 2


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection); check value 0x29B1."""
    return binascii.crc_hqx(data, 0xFFFF)


def crc8(data: bytes) -> int:
    """CRC-8/SMBUS (poly 0x07, init 0x00), used by the midpoint header (spec ``[header]``)."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


#: slots one FREE_MASK can name (bits of its mask field)
FREE_MASK_BITS = dict(FreeMask.FIELDS)["mask"]


def free_masks(slots) -> list[tuple[int, int]]:
    """Pack memory slots into FREE_MASK arguments ``(base, mask)``: slot ``base + i`` for each set
    bit i. Windows are aligned to ``FREE_MASK_BITS`` (240) slots, lowest first, so packing is
    vectorised (numpy) and a run of up to 240 consecutive slots costs one or two commands.
    Duplicates are an error (freeing a slot twice is a host bug the device would NAK)."""
    if not isinstance(slots, np.ndarray):
        slots = list(slots)
    a = np.asarray(slots, dtype=np.int64).ravel()
    if a.size == 0:
        return []
    if a.min() < 0 or a.max() > 0xFFFF:
        raise ValueError(f"slot out of the u16 range: {int(a.min())}..{int(a.max())}")
    win, pos = np.divmod(a, FREE_MASK_BITS)
    # one row per window of the whole u16 slot range (273 x 240 bits): no sort needed
    bits = np.zeros((0xFFFF // FREE_MASK_BITS + 1, FREE_MASK_BITS), dtype=bool)
    bits[win, FREE_MASK_BITS - 1 - pos] = True  # big-endian bit string: mask bit 0 last
    wins = np.flatnonzero(bits.any(axis=1))
    bits = bits[wins]
    if int(np.count_nonzero(bits)) != a.size:
        raise ValueError("a slot is named twice")
    packed = np.packbits(bits, axis=1)
    return [(int(w) * FREE_MASK_BITS, int.from_bytes(row.tobytes(), "big"))
            for w, row in zip(wins.tolist(), packed, strict=True)]


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing; the result contains no 0x00 byte.

    Every frame of the wire spec is shorter than 254 bytes, so each zero-free run is one COBS
    block: the run's length + 1, then the run. That is one ``split`` and a short loop (~4x faster
    than the general loop below on a HEADER frame, which the twin pays per event); longer
    inputs take the general loop (blocks of at most 254 data bytes)."""
    if len(data) < 254:
        out = bytearray()
        for run in bytes(data).split(b"\0"):
            out.append(len(run) + 1)
            out += run
        return bytes(out)
    out = bytearray()
    idx = 0
    n = len(data)
    while True:
        block_end = min(idx + 254, n)
        zero = data.find(0, idx, block_end)
        if zero == -1:
            chunk = data[idx:block_end]
            out.append(len(chunk) + 1)
            out += chunk
            idx = block_end
            if idx >= n and len(chunk) < 254:
                break
            if idx >= n:
                out.append(1)
                break
        else:
            out.append(zero - idx + 1)
            out += data[idx:zero]
            idx = zero + 1
            if idx == n:
                out.append(1)
                break
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; raises ``ValueError`` on malformed input.

    Walks only the code-byte chain (one step per zero of the decoded frame) and patches a copy:
    a code byte becomes the zero it stands for, or goes (after a 0xFF block); the zero check and
    the copy run in C. HDR_BLOCK frames with many unused (zero) entry bytes decode ~5x faster than
    with a slice per block."""
    if 0 in data:
        raise ValueError("zero byte inside COBS data")
    n = len(data)
    if n == 0:
        return b""
    out = bytearray(data)
    drop: list[int] = []
    idx = 0
    while True:
        code = data[idx]
        end = idx + code
        if end > n:
            raise ValueError("COBS block runs past the end")
        if end == n:
            break
        if code == 0xFF:
            drop.append(end)  # no zero after a full block: its code byte just goes
        else:
            out[end] = 0
        idx = end
    if drop:
        for i in reversed(drop):
            del out[i]
    del out[0]
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: sequence number and typed message."""

    seq: int
    msg: Message


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame that could not be decoded, with the reason (an :class:`ErrorCode`)."""

    code: ErrorCode
    raw: bytes


def encode(msg: Message, seq: int) -> bytes:
    """Serialise ``msg`` with sequence number ``seq`` into a delimited COBS frame."""
    body = bytes((seq & 0xFF, msg.OPCODE)) + msg.pack()
    body += crc16(body).to_bytes(2, "big")
    return cobs_encode(body) + b"\x00"


def decode_body(body: bytes) -> Frame | FrameError:
    """Decode one COBS-decoded frame body (seq, opcode, payload, crc)."""
    if len(body) < 4 or len(body) > MAX_FRAME:
        return FrameError(ErrorCode.FRAMING, body)
    if crc16(body[:-2]) != int.from_bytes(body[-2:], "big"):
        return FrameError(ErrorCode.CRC, body)
    cls = MESSAGES.get(body[1])
    if cls is None:
        return FrameError(ErrorCode.BAD_OPCODE, body)
    payload = body[2:-2]
    if len(payload) != cls.STRUCT.size:
        return FrameError(ErrorCode.BAD_LENGTH, body)
    return Frame(body[0], cls.unpack(payload))


@dataclass(slots=True)
class DecoderStats:
    frames: int = 0
    errors: dict[ErrorCode, int] = field(default_factory=dict)

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())


class FrameDecoder:
    """Streaming decoder: ``for item in dec.feed(chunk): ...`` yields Frame or FrameError."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overlong = False
        self.stats = DecoderStats()

    def feed(self, data: bytes) -> Iterator[Frame | FrameError]:
        start = 0
        while True:
            zero = data.find(0, start)
            if zero == -1:
                self._append(data[start:])
                return
            self._append(data[start:zero])
            start = zero + 1
            raw = bytes(self._buf)
            overlong = self._overlong
            self._buf.clear()
            self._overlong = False
            if not raw and not overlong:
                continue  # idle delimiters between frames
            if overlong:
                item: Frame | FrameError = FrameError(ErrorCode.FRAMING, raw)
            else:
                try:
                    item = decode_body(cobs_decode(raw))
                except ValueError:
                    item = FrameError(ErrorCode.FRAMING, raw)
            if isinstance(item, FrameError):
                self.stats.errors[item.code] = self.stats.errors.get(item.code, 0) + 1
            else:
                self.stats.frames += 1
            yield item

    def _append(self, data: bytes) -> None:
        if self._overlong:
            return
        self._buf += data
        # COBS adds at most one byte per 254, plus one.
        if len(self._buf) > MAX_FRAME + 2:
            self._overlong = True
            self._buf.clear()
