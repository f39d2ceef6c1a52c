"""Wire format: CRC variants, COBS, the streaming decoder and the generated-file staleness check."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwctl.wire import (
    FREE_MASK_BITS,
    MESSAGES,
    ErrorCode,
    Frame,
    FrameDecoder,
    FrameError,
    Schedule,
    cobs_decode,
    cobs_encode,
    crc8,
    crc16,
    encode,
    free_masks,
    gen,
)


def test_crc_check_values() -> None:
    assert crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE
    assert crc8(b"123456789") == 0xF4  # CRC-8/SMBUS


@given(st.binary(max_size=1200))
def test_cobs_round_trip(data: bytes) -> None:
    enc = cobs_encode(data)
    assert 0 not in enc
    assert cobs_decode(enc) == data


def _random_message(rng: random.Random):
    cls = rng.choice(list(MESSAGES.values()))
    args = [rng.getrandbits(bits) for _, bits in cls.FIELDS]
    return cls(*args)


def test_every_message_round_trips_on_every_split() -> None:
    rng = random.Random(7)
    msgs = [(_random_message(rng), i & 0xFF) for i in range(200)]
    stream = b"".join(encode(m, s) for m, s in msgs)
    for trial in range(20):
        dec = FrameDecoder()
        out: list[Frame | FrameError] = []
        pos = 0
        while pos < len(stream):
            step = 1 if trial == 0 else rng.randint(1, 40)
            out.extend(dec.feed(stream[pos : pos + step]))
            pos += step
        assert out == [Frame(s, m) for m, s in msgs]
        assert dec.stats.frames == len(msgs) and dec.stats.error_total == 0


def test_corruption_is_counted_never_passed_on() -> None:
    good = encode(Schedule(1000, 5, 50, 2), 3)
    bad = bytearray(good)
    bad[-3] ^= 0x10  # inside the CRC; never turns into a delimiter
    dec = FrameDecoder()
    out = list(dec.feed(bytes(bad) + good))
    assert isinstance(out[0], FrameError) and out[0].code == ErrorCode.CRC
    assert out[1] == Frame(3, Schedule(1000, 5, 50, 2))
    assert dec.stats.error_total == 1


@given(st.binary(max_size=400))
def test_garbage_then_resync(garbage: bytes) -> None:
    dec = FrameDecoder()
    list(dec.feed(garbage))
    frame = encode(Schedule(1, 1, 10, 2), 9)
    out = list(dec.feed(b"\x00" + frame))
    assert out[-1] == Frame(9, Schedule(1, 1, 10, 2))


def test_overlong_frame_is_an_error() -> None:
    dec = FrameDecoder()
    out = list(dec.feed(b"\x05" * 500 + b"\x00"))
    assert [type(x) for x in out] == [FrameError]


def test_generated_files_are_fresh() -> None:
    assert gen.stale_files() == [], "run: python -m hwctl.wire.gen"


def test_stale_file_is_detected(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "wire_spec.vh"
    fake.write_text("// old\n")
    monkeypatch.setattr(gen, "VH_OUT", fake)
    assert gen.stale_files() == [fake]


@given(st.sets(st.integers(0, 0xFFFF), max_size=300))
def test_free_masks_name_every_slot_once(slots: set[int]) -> None:
    masks = free_masks(slots)
    named = [b + i for b, m in masks for i in range(FREE_MASK_BITS) if m >> i & 1]
    assert sorted(named) == sorted(slots)
    assert all(b % FREE_MASK_BITS == 0 and 0 < m < 2**FREE_MASK_BITS
               and b + m.bit_length() - 1 <= 0xFFFF for b, m in masks)
    assert len(masks) <= len(slots)


def test_free_masks_pack_runs_and_refuse_duplicates() -> None:
    assert free_masks(range(250)) == [(0, 2**240 - 1), (240, 0x3FF)]
    assert free_masks([7, 3, 9, 241]) == [(0, 0b1010001000), (240, 0b10)]
    assert free_masks([]) == []
    with pytest.raises(ValueError, match="twice"):
        free_masks([1, 1])
    with pytest.raises(ValueError, match="u16"):
        free_masks([70000])


def test_wire_v3_additions_round_trip() -> None:
    """docs/physical-layer.md section 4: the v3 messages, their layouts and constants."""
    from hwctl.wire import (
        HERALD_BIT_CYCLES,
        HERALD_MARKER,
        NODE_REGS,
        STATION_ID,
        STATION_REGS,
        WIRE_VERSION,
        DoneReason,
        Opcode,
        Pair,
        Reg,
        SchedulePairs,
        TimeSet,
    )

    assert WIRE_VERSION >= 3 and STATION_ID == 0x48575354
    assert (HERALD_MARKER, HERALD_BIT_CYCLES) == (0xA5, 4)
    assert (Opcode.SCHEDULE_PAIRS, Opcode.TIME_SET, Opcode.PAIR) == (0x08, 0x09, 0xA5)
    assert DoneReason.COMPLETE == 2 and ErrorCode.BAD_HERALD == 12
    assert SchedulePairs.STRUCT.size == 18 and TimeSet.STRUCT.size == 9 and Pair.STRUCT.size == 15
    msgs = [SchedulePairs(2**64 - 1, 2**32 - 1, 200, 6, 1), TimeSet(123456789, 1),
            Pair(10_000, 7, 1, 5, 0)]
    stream = b"".join(encode(m, i) for i, m in enumerate(msgs))
    assert list(FrameDecoder().feed(stream)) == [Frame(i, m) for i, m in enumerate(msgs)]
    # v2 layouts unchanged
    assert Schedule.STRUCT.size == 18 and MESSAGES[0xA1].STRUCT.size == 13
    # register sets: the shared ones in both, station-only ones never in a node and vice versa
    assert {Reg.ID, Reg.VERSION, Reg.CONTROL, Reg.CNT_HERALD, Reg.CNT_BOTH} <= NODE_REGS & STATION_REGS
    assert Reg.ST_DELAY in STATION_REGS - NODE_REGS and Reg.QUBITS in NODE_REGS - STATION_REGS
    assert NODE_REGS | STATION_REGS == set(Reg)
