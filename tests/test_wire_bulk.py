"""BulkDecoder against the reference FrameDecoder: same frames, same errors, same statistics."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwctl.wire import MESSAGES, Frame, FrameDecoder, FrameError, Header, encode
from hwctl.wire.bulk import BulkDecoder, HeaderBlock


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


def test_overlong_garbage_is_one_framing_error() -> None:
    dec, ref = BulkDecoder(), FrameDecoder()
    data = b"\x01" * 100 + b"\x02" * 50 + b"\x00" + encode(Header(1, 2, 3), 9)
    for d in (dec, ref):
        got = []
        for i in range(0, len(data), 13):
            got += _flat(d.feed(data[i : i + 13])) if d is dec else list(d.feed(data[i : i + 13]))
        assert [_key(x) for x in got][-1] == ("frame", 9, Header(1, 2, 3))
        assert d.stats.errors and sum(d.stats.errors.values()) == 1
