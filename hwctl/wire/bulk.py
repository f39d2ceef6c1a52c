"""Vectorised receive path for HEADER-heavy streams (issue 6: one node at a 1.3 MHz source).

:class:`BulkDecoder` is a drop-in for :class:`~hwctl.wire.codec.FrameDecoder` with the same
semantics (frames, errors and :class:`~hwctl.wire.codec.DecoderStats` identical, tested against
it), except that runs of consecutive good HEADER frames come out as one :class:`HeaderBlock` of
numpy arrays instead of one :class:`Frame` per header.

Why it is fast: a HEADER frame has a fixed length (18 decoded bytes -> 19 COBS bytes + the
delimiter, since COBS of fewer than 254 bytes always adds exactly one byte), so every frame of that
length in a chunk is decoded at once: COBS by following the code-byte chain column by column, the
CRC-16/CCITT-FALSE with a byte table over the 16 columns, the fields by a structured dtype view.
Anything that does not check out (other lengths, other opcodes, bad CRC or COBS) takes the scalar
path of the reference decoder, in stream order, so errors are classified exactly as before. So
does a chunk of only a few frames (a command's response): numpy's per-call set-up (~30 us) would
cost more than decoding it frame by frame, and its HEADERs then come as single frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwctl.wire._spec import ErrorCode, Header, Opcode
from hwctl.wire.codec import MAX_FRAME, Frame, FrameDecoder, FrameError, cobs_decode, decode_body

#: decoded HEADER frame: seq, opcode, payload, crc
BODY_LEN = 2 + Header.STRUCT.size + 2
#: COBS-encoded length (no delimiter)
ENC_LEN = BODY_LEN + 1
assert BODY_LEN % 2 == 0, "the CRC check below works on 16-bit words"
_BODY = np.dtype({"names": ["ev", "op", "seq", "ts", "slot", "crc"],
                  "formats": ["u1", "u1", ">u4", ">u8", ">u2", ">u2"],
                  "offsets": [0, 1, 2, 6, 14, 16], "itemsize": BODY_LEN})
assert dict(Header.FIELDS) == {"seq": 32, "ts": 64, "slot": 16}, "update _BODY with the spec"


def _crc_table16() -> np.ndarray:
    """CRC-16/CCITT-FALSE two bytes at a time: crc' = T[crc ^ (b0 << 8 | b1)], T[v] = v * x^16 mod P
    (16-bit register, no reflection)."""
    t8 = np.zeros(256, np.uint32)
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else c << 1
        t8[i] = c & 0xFFFF
    v = np.arange(65536, dtype=np.uint32)
    for _ in range(2):  # two byte steps with zero data bytes
        v = ((v << 8) & 0xFFFF) ^ t8[v >> 8]
    return v.astype(np.uint16)


_CRC16 = _crc_table16()
#: chunks shorter than this (up to a few frames, e.g. command responses) take the scalar path
_SMALL = 4 * (ENC_LEN + 1)
#: below this many bytes a chunk is split in Python first, to see whether any frame can take the
#: vectorised HEADER path (a split of 16 KiB costs a few us; a 64 KiB chunk of HEADERs skips it)
_SCAN = 16 * 1024


@dataclass(frozen=True, slots=True)
class HeaderBlock:
    """Consecutive HEADER events, in arrival order: event seq (uint8), header seq (int64), ts
    (device cycles, uint64) and memory slot (int64), one array element per header."""

    ev_seq: np.ndarray
    seq: np.ndarray
    ts: np.ndarray
    slot: np.ndarray

    def __len__(self) -> int:
        return int(self.seq.size)

    def frames(self) -> list[Frame]:
        """The same events as individual frames (for consumers that want messages)."""
        return [Frame(e, Header(s, t, sl)) for e, s, t, sl in
                zip(self.ev_seq.tolist(), self.seq.tolist(), self.ts.tolist(), self.slot.tolist(),
                    strict=True)]


def decode_headers(enc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised COBS + CRC + opcode check of a ``(ENC_LEN, M)`` uint8 array (one COBS-encoded
    frame per column, no delimiters). Returns ``(ok, body)``: which columns are good HEADER frames
    and the decoded ``(BODY_LEN, M)`` bodies (meaningful where ok)."""
    m = enc.shape[1]
    # Position of the next COBS code byte, per frame, in uint8. j + enc[j] may wrap past 255;
    # the wrapped value j + enc[j] - 256 is below the current column j, so no later column (nor
    # ENC_LEN) ever matches it and the chain stays broken, as with the true value (>= 256).
    nxt = np.zeros(m, np.uint8)
    codes = np.empty((ENC_LEN, m), bool)  # a code byte stands for a zero in the decoded frame
    step = np.empty(m, np.uint8)
    for j in range(ENC_LEN):  # three ufuncs per column, no temporaries
        np.equal(nxt, j, out=codes[j])
        np.add(enc[j], j, out=step)
        np.copyto(nxt, step, where=codes[j])
    ok = nxt == ENC_LEN  # the chain ends exactly at the end of the frame
    body = np.where(codes[1:], np.uint8(0), enc[1:])
    pairs = body.reshape(BODY_LEN // 2, 2, m)
    w = (pairs[:, 0].astype(np.uint16) << 8) | pairs[:, 1]  # big-endian 16-bit words
    crc = np.full(m, 0xFFFF, np.uint16)
    for k in range(BODY_LEN // 2 - 1):
        crc = _CRC16[crc ^ w[k]]
    ok &= crc == w[-1]
    ok &= body[1] == Opcode.HEADER
    return ok, body


class BulkDecoder:
    """Streaming decoder like :class:`FrameDecoder`; yields ``Frame``, ``FrameError`` and
    :class:`HeaderBlock` items (``feed`` returns a list)."""

    def __init__(self) -> None:
        self._ref = FrameDecoder()  # scalar path and shared statistics
        self.stats = self._ref.stats
        self._tail = b""
        self._overlong = False

    def feed(self, data: bytes) -> list[Frame | FrameError | HeaderBlock]:
        buf = self._tail + bytes(data)
        last = buf.rfind(0)
        if last < 0:
            self._keep(buf)
            return []
        first_overlong = self._overlong  # the first frame here began in an overlong run
        self._overlong = False
        self._keep(buf[last + 1 :])
        raws = buf[:last].split(b"\0") if last < _SCAN else None
        # a few frames (command responses), or none of HEADER length (HDR_BLOCK streams: 72
        # bytes a frame, ~4 per 1 ms read): numpy's set-up would cost more than it saves
        # (~200 us a read, ninth session)
        if raws is not None and (last < _SMALL or not any(len(r) == ENC_LEN for r in raws)):
            return [self._scalar(raw, overlong=(k == 0 and first_overlong))
                    for k, raw in enumerate(raws) if raw or (k == 0 and first_overlong)]
        arr = np.frombuffer(buf, np.uint8, last + 1)
        ends = np.flatnonzero(arr == 0)
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        lens = ends - starts

        fast = lens == ENC_LEN
        if first_overlong:
            fast[0] = False
        out: list[Frame | FrameError | HeaderBlock] = []
        idx_fast = np.flatnonzero(fast)
        good = np.zeros(lens.size, bool)
        block = None
        if idx_fast.size:
            enc = arr[np.arange(ENC_LEN)[:, None] + starts[idx_fast]]
            ok, body = decode_headers(enc)
            good[idx_fast[ok]] = True
            block = np.ascontiguousarray(body[:, ok].T).view(_BODY).ravel()
        # frames that need the scalar path (or are idle delimiters), in stream order
        other = np.flatnonzero(~good & ((lens > 0) | (np.arange(lens.size) == 0) & first_overlong))
        if other.size == 0 and block is not None:
            self.stats.frames += len(block)
            return [self._block(block)]
        pos_in_block = np.cumsum(good) - good  # index into block of each good frame
        prev = 0
        for k in other.tolist():
            n_good_before = int(pos_in_block[k])
            if block is not None and n_good_before > prev:
                out.append(self._block(block[prev:n_good_before]))
                self.stats.frames += n_good_before - prev
                prev = n_good_before
            raw = buf[starts[k] : ends[k]]
            out.append(self._scalar(raw, overlong=(k == 0 and first_overlong)))
        if block is not None and len(block) > prev:
            out.append(self._block(block[prev:]))
            self.stats.frames += len(block) - prev
        return out

    @staticmethod
    def _block(b: np.ndarray) -> HeaderBlock:
        return HeaderBlock(b["ev"].copy(), b["seq"].astype(np.int64), b["ts"].astype(np.uint64),
                           b["slot"].astype(np.int64))

    def _scalar(self, raw: bytes, *, overlong: bool) -> Frame | FrameError:
        if overlong or len(raw) > MAX_FRAME + 2:
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
        return item

    def _keep(self, tail: bytes) -> None:
        """Bytes after the last delimiter wait for the next chunk (bounded, like FrameDecoder)."""
        if self._overlong:
            self._tail = b""
            return
        if len(tail) > MAX_FRAME + 2:
            self._overlong = True
            self._tail = b""
        else:
            self._tail = tail

