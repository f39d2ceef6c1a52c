"""Reference block encoder and slot ring (sim/twin/hdrblock.py) against docs/header-path.md."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwctl.sim.twin.hdrblock import (
    DEFAULT_FLUSH,
    ENTRY_BYTES,
    BlockEncoder,
    PinError,
    block_arrivals,
)
from hwctl.wire import ErrorCode, FrameDecoder, HdrBlock, encode

P = 77  # source period in cycles (1.3 MHz at 100 MHz)


def entries(b: HdrBlock) -> bytes:
    return b.entries.to_bytes(ENTRY_BYTES, "big")[: b.used]


def two(seq_a: int, seq_b: int, ts_b: int = 8 * 100 + 5) -> list[HdrBlock]:
    """Blocks from arrivals seq_a (ts 0), seq_b (ts_b), then a flush."""
    enc = BlockEncoder(flush_cycles=10**9)
    out = enc.arrival(seq_a, 0) + enc.arrival(seq_b, ts_b)
    return out + enc.set_enabled(False)


@pytest.mark.parametrize(("gap", "want"), [
    (0, bytes([0 << 3 | 5])),
    (30, bytes([30 << 3 | 5])),
    (31, bytes([0xF8, 0 << 3 | 5])),
    (62, bytes([0xF8, 0xF8, 0 << 3 | 5])),
    (124, bytes([0xF8] * 4 + [0 << 3 | 5])),
    (123, bytes([0xF8] * 3 + [30 << 3 | 5])),
])
def test_gap_entries(gap: int, want: bytes) -> None:
    (b,) = two(1000, 1000 + gap + 1)
    assert (b.seq0, b.ts0, b.slot0, b.n, b.used) == (1000, 0, 0, 2, len(want))
    assert entries(b) == want
    assert block_arrivals(b) == [(1000, 0), (1000 + gap + 1, 5)]


def test_gap_125_opens_a_new_block() -> None:
    a, b = two(1000, 1000 + 126, ts_b=77)
    assert (a.blk, a.n, a.used, a.slot0) == (0, 1, 0, 0)
    assert (b.blk, b.seq0, b.ts0, b.n, b.slot0) == (1, 1126, 77, 1, 1)


def test_duplicate_or_backwards_seq_opens_a_new_block() -> None:
    a, b = two(7, 7)
    assert (a.n, b.n, b.seq0) == (1, 1, 7)
    a, b = two(7, 5)
    assert b.seq0 == 5


def test_seq_wraps_at_2_32() -> None:
    enc = BlockEncoder(flush_cycles=10**9)
    seqs = [2**32 - 3, 2**32 - 2, 2**32 - 1, 0, 1, 40]
    out = []
    for i, s in enumerate(seqs):
        out += enc.arrival(s, i * P)
    out += enc.set_enabled(False)
    (b,) = out
    assert [s for s, _ in block_arrivals(b)] == seqs
    assert b.n == 6


def test_48_byte_fill_closes_before_the_arrival_that_does_not_fit() -> None:
    enc = BlockEncoder(flush_cycles=10**9)
    out = []
    for i in range(49):
        out += enc.arrival(i, i * P)
    assert out == [] and enc.open_arrivals == 49
    out += enc.arrival(49, 49 * P)
    (b,) = out
    assert (b.n, b.used, b.seq0) == (49, 48, 0)
    assert enc.open_arrivals == 1
    # multi-byte arrivals: gap 124 costs 5 bytes; 9 fit (45 bytes), the 10th needs 50
    enc = BlockEncoder(flush_cycles=10**9)
    out = []
    for i in range(11):
        out += enc.arrival(i * 125, i * 125 * P)
    (b,) = out
    assert (b.n, b.used) == (10, 45)
    assert enc.open_arrivals == 1
    # exactly 48 bytes: 8 x 5-byte + 8 x 1-byte
    enc = BlockEncoder(flush_cycles=10**9)
    seq, out = 0, enc.arrival(0, 0)
    for i in range(16):
        seq += 125 if i < 8 else 1
        out += enc.arrival(seq, seq * P)
    assert out == [] and enc.open_arrivals == 17
    out += enc.arrival(seq + 1, 0)
    assert out[0].used == 48 and out[0].n == 17


def test_flush_timer() -> None:
    enc = BlockEncoder(flush_cycles=1000)
    assert enc.tick(10**6) == [] and enc.deadline is None
    assert enc.arrival(5, 200) == []
    assert enc.deadline == 1200
    assert enc.tick(1199) == []
    (b,) = enc.tick(1200)
    assert (b.seq0, b.n) == (5, 1)
    # an arrival at the flush cycle: the timer closes the block first
    enc.arrival(10, 2000)
    out = enc.arrival(11, 3000)
    assert [x.seq0 for x in out] == [10] and out[0].n == 1
    assert enc.open_arrivals == 1
    assert BlockEncoder().flush_cycles == DEFAULT_FLUSH


def test_flush_uses_the_timer_clock_not_ts() -> None:
    enc = BlockEncoder(flush_cycles=1000)
    enc.arrival(1, ts=10**9, at=0)  # device time offset by TIME_SET
    assert enc.deadline == 1000
    assert len(enc.tick(1000)) == 1


def test_ring_and_pins_mid_block() -> None:
    enc = BlockEncoder(n_slots=2048, flush_cycles=10**9)
    out = enc.arrival(0, 0) + enc.arrival(1, P)
    assert enc.last_slot == 1
    closed = enc.pin(2, 0b101)  # pins 2 and 4; closes the open block first
    assert [b.n for b in closed] == [2]
    assert enc.pinned_count == 2 and enc.slots_free == 2046
    assert enc.open_arrivals == 0
    slots = []
    for s in range(2, 6):
        out += enc.arrival(s, s * P)
        slots.append(enc.last_slot)
    assert slots == [3, 5, 6, 7]
    closed = enc.unpin(2, 1)  # unpins 2
    assert [b.slot0 for b in closed] == [3] and closed[0].n == 4
    assert enc.pinned_slots() == [4]
    # pin / unpin of an already pinned / unpinned slot: no-op (but still closes)
    enc.arrival(6, 6 * P)
    assert len(enc.pin(4, 1)) == 1 and enc.pinned_count == 1
    assert enc.unpin(100, 1) == [] and enc.pinned_count == 1


def test_ring_wraps_and_skips_pins() -> None:
    enc = BlockEncoder(n_slots=2048, flush_cycles=10**9)
    enc.pin(0, 1)
    enc.pin(2040, (1 << 8) - 1)  # 2040..2047
    got = []
    for s in range(2039):  # slots 1..2039
        enc.arrival(s, s * P)
        got.append(enc.last_slot)
    assert got[0] == 1 and got[2038] == 2039
    enc.arrival(3000, 0)
    assert enc.last_slot == 1  # wrapped past 2040..2047 and 0


def test_all_pinned_drops_arrivals() -> None:
    enc = BlockEncoder(n_slots=2048, flush_cycles=10**9)
    enc.arrival(0, 0)
    for base in range(0, 2048, 240):
        enc.pin(base, (1 << min(240, 2048 - base)) - 1)
    assert enc.slots_free == 0 and enc.pinned_count == 2048
    assert enc.arrival(1, P) == [] and enc.last_slot is None and enc.dropped == 1
    assert enc.open_arrivals == 0  # nothing recorded
    enc.unpin(7, 1)
    enc.arrival(2, 2 * P)
    assert enc.last_slot == 7 and enc.dropped == 1


def test_pin_naks_change_nothing() -> None:
    enc = BlockEncoder(n_slots=2048, flush_cycles=10**9)
    enc.arrival(0, 0)
    with pytest.raises(PinError) as e:
        enc.pin(0, 0)
    assert e.value.code == ErrorCode.BAD_ARG
    with pytest.raises(PinError) as e:
        enc.pin(2047, 0b11)
    assert e.value.code == ErrorCode.BAD_SLOT
    with pytest.raises(PinError) as e:
        enc.unpin(5000, 1)
    assert e.value.code == ErrorCode.BAD_SLOT
    assert enc.open_arrivals == 1 and enc.pinned_count == 0
    enc.pin(2047, 1)
    assert enc.is_pinned(2047)


def test_bad_headers_counted_in_the_next_block_saturating() -> None:
    enc = BlockEncoder(flush_cycles=10**9)
    for _ in range(3):
        enc.bad_header()
    enc.arrival(0, 0)
    enc.bad_header()
    (b,) = enc.set_enabled(False)
    assert b.bad == 4
    enc.set_enabled(True)
    for _ in range(300):
        enc.bad_header()
    enc.arrival(1, 0)
    (b,) = enc.set_enabled(False)
    assert b.bad == 255
    enc.set_enabled(True)
    enc.arrival(2, 0)
    assert enc.set_enabled(False)[0].bad == 0


def test_block_counter_wraps_and_clears() -> None:
    enc = BlockEncoder(flush_cycles=1)
    blks = []
    for i in range(2**16 + 2):
        enc.arrival(i, 10 * i)
        blks += [b.blk for b in enc.tick(10 * i + 1)]
    assert blks[:2] == [0, 1] and blks[-3:] == [65535, 0, 1]
    assert enc.blocks_emitted == 2**16 + 2
    enc.clear_counters()
    enc.arrival(0, 10**7)
    assert enc.tick(10**8)[0].blk == 0 and enc.blocks_emitted == 1


def test_block_is_one_67_byte_event() -> None:
    enc = BlockEncoder(flush_cycles=10**9)
    for i in range(60):
        enc.arrival(3 * i, 3 * i * P)
    (b,) = enc.set_enabled(False)
    frame = encode(b, seq=9)
    (item,) = list(FrameDecoder().feed(frame))
    assert item.msg == b and len(b.pack()) == 67


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.one_of(st.integers(0, 3), st.integers(0, 140), st.just(2**32 - 1)),
                  min_size=1, max_size=400),
    seq0=st.integers(0, 2**32 - 1),
    pins=st.lists(st.tuples(st.integers(0, 399), st.integers(0, 2047), st.booleans()),
                  max_size=20),
    flush=st.integers(50, 20_000),
)
def test_blocks_carry_every_arrival(gaps, seq0, pins, flush) -> None:
    """Property: the blocks' arrivals (reference decoding) are exactly the input arrivals, in
    order, with ts & 7, and each block's slots follow the ring under the pins in force."""
    enc = BlockEncoder(n_slots=2048, flush_cycles=flush)
    rng = np.random.default_rng(len(gaps))
    pin_at = {}
    for k, slot, on in pins:
        pin_at.setdefault(k, []).append((slot, on))
    seq, t = seq0, 0
    sent: list[tuple[int, int, int]] = []  # (seq, ph, slot)
    blocks: list[tuple[HdrBlock, frozenset[int]]] = []
    pinned: set[int] = set()

    def take(bs: list[HdrBlock]) -> None:
        blocks.extend((b, frozenset(pinned)) for b in bs)

    for k, g in enumerate(gaps):
        for slot, on in pin_at.get(k, ()):
            take(enc.pin(slot, 1) if on else enc.unpin(slot, 1))
            (pinned.add if on else pinned.discard)(slot)
        seq = (seq + g + 1) & 0xFFFF_FFFF
        t += (g + 1) * P + int(rng.integers(0, 3))
        take(enc.tick(t))
        ts = t + 12345
        take(enc.arrival(seq, ts, at=t))
        if enc.last_slot is not None:
            sent.append((seq, ts & 7, enc.last_slot))
    take(enc.set_enabled(False))
    got = []
    for b, pins_then in blocks:
        slot = b.slot0
        for i, (s, ph) in enumerate(block_arrivals(b)):
            if i:
                slot = (slot + 1) % 2048
                while slot in pins_then:
                    slot = (slot + 1) % 2048
            got.append((s, ph, slot))
    assert got == sent
    assert [b.blk for b, _ in blocks] == list(range(len(blocks)))
