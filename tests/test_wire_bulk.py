"""BulkDecoder against the reference FrameDecoder: same frames, same errors, same statistics."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwctl.wire import MESSAGES, Frame, FrameDecoder, FrameError, Header, encode
from hwctl.wire.bulk import ENC_LEN, BulkDecoder, HeaderBlock


def _flat(items) -> list:
    out = []
    for it in items:
        out.extend(it.frames() if isinstance(it, HeaderBlock) else [it])
    return out


def _key(item):
    if isinstance(item, FrameError):
        return ("err", item.code)
    return ("frame", item.seq, item.msg)


def _stream(rng: random.Random, n: int) -> bytes:
    parts = []
    for i in range(n):
        r = rng.random()
        if r < 0.75:
            parts.append(encode(Header(rng.getrandbits(32), rng.getrandbits(64), rng.getrandbits(16)), i))
        elif r < 0.85:
            cls = rng.choice(list(MESSAGES.values()))
            parts.append(encode(cls(*[rng.getrandbits(b) for _, b in cls.FIELDS]), i))
        elif r < 0.9:  # a HEADER with one flipped bit (bad CRC, bad COBS or a stray delimiter)
            f = bytearray(encode(Header(i, i, i), i))
            k = rng.randrange(len(f) - 1)
            f[k] ^= 1 << rng.randrange(8)
            parts.append(bytes(f))
        elif r < 0.95:
            parts.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60))))
        else:
            parts.append(b"\x00" * rng.randrange(1, 3))  # idle delimiters
    return b"".join(parts)


def _run(dec, stream: bytes, splits: list[int]) -> list:
    out, pos = [], 0
    for s in splits + [len(stream)]:
        out += list(dec.feed(stream[pos:s]))
        pos = s
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(1, 400), max_size=12))
def test_bulk_matches_reference_on_any_split(seed: int, cuts: list[int]) -> None:
    rng = random.Random(seed)
    stream = _stream(rng, 120)
    splits = sorted({min(c * 7, len(stream)) for c in cuts})
    ref, bulk = FrameDecoder(), BulkDecoder()
    a = [_key(x) for x in _run(ref, stream, splits)]
    items = _run(bulk, stream, splits)
    b = [_key(x) for x in _flat(items)]
    assert a == b
    assert ref.stats.frames == bulk.stats.frames and ref.stats.errors == bulk.stats.errors


def test_headers_come_as_blocks_in_order() -> None:
    hdrs = [Header(1000 + i, 5 * i, i % 7) for i in range(500)]
    mid = encode(Header(0, 0, 0), 1)[:-1] + b"\x55\x00"  # corrupted: an error between two runs
    stream = b"".join(encode(h, i) for i, h in enumerate(hdrs[:300])) + mid + \
        b"".join(encode(h, i) for i, h in enumerate(hdrs[300:]))
    dec = BulkDecoder()
    items = dec.feed(stream)
    kinds = [type(x).__name__ for x in items]
    assert kinds == ["HeaderBlock", "FrameError", "HeaderBlock"]
    blk = items[0]
    assert isinstance(blk, HeaderBlock) and len(blk) == 300
    assert np.array_equal(blk.seq, 1000 + np.arange(300)) and blk.ts[-1] == 5 * 299
    assert blk.slot.tolist() == [i % 7 for i in range(300)]
    assert [f.msg for f in _flat(items) if isinstance(f, Frame)] == hdrs
    assert dec.stats.frames == 500


@pytest.mark.parametrize("sep", [b"\x00", b""])  # garbage ended by a delimiter, or by a frame
@pytest.mark.parametrize("step", [13, 50, 150])  # 13, 50: scalar path (small chunks)
def test_overlong_garbage_is_one_framing_error(step: int, sep: bytes) -> None:
    hdrs = [Header(1 + i, 2 * i, 3 + i) for i in range(6)]
    data = b"\x01" * 100 + b"\x02" * 50 + sep + b"".join(encode(h, 9 + i) for i, h in enumerate(hdrs))
    dec, ref = BulkDecoder(), FrameDecoder()
    got, want = [], []
    for i in range(0, len(data), step):
        got += _flat(dec.feed(data[i : i + step]))
        want += list(ref.feed(data[i : i + step]))
    assert [_key(x) for x in got] == [_key(x) for x in want]
    n = 6 if sep else 5  # without the delimiter the first HEADER is part of the overlong frame
    assert [_key(x) for x in got][-n:] == [("frame", 9 + i, h) for i, h in enumerate(hdrs)][-n:]
    assert sum(dec.stats.errors.values()) == 1 and dec.stats.frames == n
    assert dec.stats.errors == ref.stats.errors and dec.stats.frames == ref.stats.frames


def test_small_chunks_come_as_frames() -> None:
    """A chunk of a few frames (a command's response) is decoded frame by frame."""
    dec = BulkDecoder()
    items = dec.feed(encode(Header(5, 6, 7), 1))
    assert [type(x) for x in items] == [Frame] and items[0].msg == Header(5, 6, 7)


def test_frames_with_long_cobs_jumps_match_reference() -> None:
    """19-byte frames whose COBS code bytes point far past the frame (j + code > 255 included)."""
    rng = np.random.default_rng(3)
    raw = rng.integers(1, 256, size=(4000, ENC_LEN), dtype=np.uint8)
    raw[::2, 0] = rng.integers(200, 256, size=2000)  # first jump far out
    raw[1::2, 5] = rng.integers(240, 256, size=2000)  # a later jump that wraps in uint8
    raw[1::2, 0] = 5
    good = [encode(Header(i, i, i), i) for i in range(100)]
    stream = b"".join(bytes(r) + b"\x00" for r in raw) + b"".join(good)
    ref, bulk = FrameDecoder(), BulkDecoder()
    assert [_key(x) for x in ref.feed(stream)] == [_key(x) for x in _flat(bulk.feed(stream))]
    assert ref.stats.errors == bulk.stats.errors and bulk.stats.frames == ref.stats.frames == 100
