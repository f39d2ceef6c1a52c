"""Software twin (hwctl.sim.twin.model): wire semantics of spec.toml, cycle by cycle, and its physics."""

from __future__ import annotations

import math

import pytest

from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.sim.twin.header import header_bits, header_bytes
from hwctl.wire import (
    DEVICE_ID,
    WIRE_VERSION,
    Abort,
    Ack,
    Done,
    DoneReason,
    Error,
    ErrorCode,
    Frame,
    FrameDecoder,
    Free,
    FreeMask,
    Header,
    Herald,
    Late,
    Nak,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    Schedule,
    StatusBit,
    Time,
    TimeValue,
    encode,
)
from hwctl.wire.features import ALL_FEATURES


class Host:
    """Minimal host: encodes commands, decodes everything the twin sends."""

    def __init__(self, twin: TwinModel) -> None:
        self.twin = twin
        self.dec = FrameDecoder()
        self.seq = 0
        self.frames: list[Frame] = []

    def send(self, msg, seq: int | None = None) -> int:
        if seq is None:
            self.seq = (self.seq + 1) & 0xFF
            seq = self.seq
        self.twin.feed(encode(msg, seq))
        return seq

    def pump(self) -> list[Frame]:
        new = [f for f in self.dec.feed(self.twin.read()) if isinstance(f, Frame)]
        self.frames.extend(new)
        return new

    def cmd(self, msg):
        """Send, let the UART drain, return the response message."""
        seq = self.send(msg)
        if self.twin.cfg.uart_cycles_per_byte:
            self.twin.advance(2000)
        resp = [f for f in self.pump() if f.msg.OPCODE < 0xA0]
        assert len(resp) == 1 and resp[0].seq == seq
        return resp[0].msg

    def events(self):
        return [f.msg for f in self.frames if f.msg.OPCODE >= 0xA0]


def fast(**kw) -> TwinModel:
    kw.setdefault("uart_cycles_per_byte", 0)
    return TwinModel(TwinConfig(**kw))


def test_identity_registers_and_scratch() -> None:
    h = Host(fast())
    assert h.cmd(RegRead(Reg.ID)) == RegValue(Reg.ID, DEVICE_ID)
    # (bits 31:16: the build's features; the default twin models the full profile)
    assert h.cmd(RegRead(Reg.VERSION)) == RegValue(Reg.VERSION, WIRE_VERSION | ALL_FEATURES << 16)
    assert h.cmd(RegWrite(Reg.SCRATCH, 0xDEADBEEF)) == Ack(RegWrite.OPCODE)
    assert h.cmd(RegRead(Reg.SCRATCH)).value == 0xDEADBEEF
    assert h.cmd(RegWrite(Reg.ID, 1)) == Nak(RegWrite.OPCODE, ErrorCode.BAD_REG)
    assert h.cmd(RegRead(0x0E)) == Nak(RegRead.OPCODE, ErrorCode.BAD_REG)
    assert h.cmd(RegRead(Reg.SLOTS_FREE)).value == 8


def test_time_is_value_at_decode() -> None:
    t = fast()
    t.advance_to(12345)
    h = Host(t)
    h.send(Time())
    h.pump()
    assert h.frames[-1].msg == TimeValue(12345)


def test_retry_repeats_response_without_executing() -> None:
    h = Host(fast())
    s = h.send(Schedule(10_000, 5, 50, 2))
    h.send(Schedule(10_000, 5, 50, 2), seq=s)  # retry: same seq
    h.pump()
    assert [f.msg for f in h.frames] == [Ack(Schedule.OPCODE)] * 2
    assert h.twin.reg(Reg.STATUS) >> StatusBit.RUNNING & 1  # one schedule running ...
    h.twin.advance_to(10_000 + 5 * 50 + 10)
    h.pump()
    # ... and only one ran: a single DONE or HERALD
    assert len(h.events()) == 1
    # a new seq executes again
    assert h.cmd(Abort()) == Ack(Abort.OPCODE)


def test_retry_of_reg_read_is_re_executed() -> None:
    h = Host(fast())
    s = h.send(RegWrite(Reg.SCRATCH, 1))
    h.send(RegRead(Reg.SCRATCH), seq=s)  # same seq, REG_READ: executed anyway
    h.pump()
    assert h.frames[-1].msg == RegValue(Reg.SCRATCH, 1)


def test_schedule_bad_args_and_overflow() -> None:
    h = Host(fast(sched_fifo_depth=2))
    nak_arg = Nak(Schedule.OPCODE, ErrorCode.BAD_ARG)
    assert h.cmd(Schedule(10**6, 0, 50, 2)) == nak_arg
    assert h.cmd(Schedule(10**6, 1, 50, 0)) == nak_arg
    assert h.cmd(Schedule(10**6, 1, 3, 2)) == nak_arg
    assert h.cmd(Schedule(10**6, 1, 4, 2)) == Ack(Schedule.OPCODE)  # runs
    assert h.cmd(Schedule(10**7, 1, 50, 2)) == Ack(Schedule.OPCODE)  # queued 1
    assert h.cmd(Schedule(10**7, 1, 50, 2)) == Ack(Schedule.OPCODE)  # queued 2
    assert h.twin.reg(Reg.STATUS) >> StatusBit.SCHED_FULL & 1
    assert h.cmd(Schedule(10**7, 1, 50, 2)) == Nak(Schedule.OPCODE, ErrorCode.OVERFLOW)
    assert h.twin.reg(Reg.ERR_OVERFLOW) == 1


def test_late_schedule_refused_with_event() -> None:
    t = fast()
    t.advance_to(5000)
    h = Host(t)
    assert h.cmd(Schedule(4999, 3, 50, 2)) == Ack(Schedule.OPCODE)
    assert h.events() == [Late(4999, 5000)]
    assert t.reg(Reg.ERR_LATE) == 1 and t.reg(Reg.CNT_ATTEMPTS) == 0
    assert h.cmd(Schedule(t.now, 1, 50, 2)) == Ack(Schedule.OPCODE)  # t_start == now is on time


def test_exhaustion_done_at_last_window_close() -> None:
    h = Host(fast(p_photon=0.0))
    h.cmd(Schedule(1000, 7, 50, 2))
    h.twin.advance_to(1000 + 6 * 50 + 1)
    h.pump()
    assert h.events() == []
    assert h.twin.reg(Reg.CNT_ATTEMPTS) == 7
    h.twin.advance(1)
    h.pump()
    assert h.events() == [Done(1000 + 6 * 50 + 2, 7, DoneReason.EXHAUSTED)]
    assert not h.twin.running


def test_certain_success_heralds_first_attempt() -> None:
    h = Host(fast(p_photon=1.0))
    h.cmd(Schedule(1000, 100, 50, 4))
    h.twin.advance_to(2000)
    h.pump()
    (ev,) = h.events()
    assert isinstance(ev, Herald) and ev.attempt == 0 and 1000 <= ev.ts < 1004
    assert h.twin.reg(Reg.CNT_HERALD) == 1 and h.twin.reg(Reg.CNT_ATTEMPTS) == 1


def test_injected_clicks_single_both_and_outside_window() -> None:
    t = fast(p_photon=0.0)
    h = Host(t)
    h.cmd(Schedule(1000, 10, 50, 4))
    t.inject_click(1010, 0)  # outside attempt 0's window [1000, 1004): ignored
    t.inject_click(1051, 0)  # attempt 1: both detectors -> no herald
    t.inject_click(1053, 1)
    t.inject_click(1102, 1)  # attempt 2: single click on detector 1
    t.advance_to(1200)
    h.pump()
    assert h.events() == [Herald(1102, 1, 2)]
    assert t.reg(Reg.CNT_BOTH) == 1 and t.reg(Reg.CNT_ATTEMPTS) == 3


def test_abort_reports_attempts_fired_and_drops_queue() -> None:
    t = fast(p_photon=0.0)
    h = Host(t)
    h.cmd(Schedule(1000, 100, 50, 2))
    h.cmd(Schedule(100_000, 100, 50, 2))
    t.advance_to(1000 + 3 * 50)  # attempts 0..3 fired
    assert t.reg(Reg.CNT_ATTEMPTS) == 4
    assert h.cmd(Abort()) == Ack(Abort.OPCODE)
    assert h.events() == [Done(1150, 4, DoneReason.ABORTED)]
    t.advance_to(10**6)
    h.pump()
    assert len(h.events()) == 1 and not t.running
    assert h.cmd(Abort()) == Ack(Abort.OPCODE)  # idle abort: no DONE


def test_fifo_entries_run_back_to_back() -> None:
    t = fast(p_photon=0.0)
    h = Host(t)
    h.cmd(Schedule(1000, 2, 50, 2))
    h.cmd(Schedule(1052, 1, 50, 2))  # pops at 1052 (end of first) -> on time
    h.cmd(Schedule(1053, 1, 50, 2))  # pops at 1054 -> LATE
    t.advance_to(5000)
    h.pump()
    assert h.events() == [
        Done(1052, 2, DoneReason.EXHAUSTED),
        Done(1054, 1, DoneReason.EXHAUSTED),
        Late(1053, 1054),
    ]


def test_bad_frames_counted_and_reported() -> None:
    t = fast()
    h = Host(t)
    bad = bytearray(encode(RegRead(Reg.ID), 5))
    bad[2] ^= 0x40
    t.feed(bytes(bad))
    t.feed(b"\x05\x01\x00")  # COBS block runs past the end -> framing
    # valid CRC, unknown opcode / bad length / not a command
    from hwctl.wire import cobs_encode, crc16

    body = bytes((9, 0x42))
    t.feed(cobs_encode(body + crc16(body).to_bytes(2, "big")) + b"\x00")
    body = bytes((10, RegRead.OPCODE, 1, 2))
    t.feed(cobs_encode(body + crc16(body).to_bytes(2, "big")) + b"\x00")
    t.feed(encode(Ack(1), 11))
    h.pump()
    msgs = [(f.seq, f.msg) for f in h.frames]
    assert (9, Nak(0x42, ErrorCode.BAD_OPCODE)) in msgs
    assert (10, Nak(RegRead.OPCODE, ErrorCode.BAD_LENGTH)) in msgs
    assert (11, Nak(Ack.OPCODE, ErrorCode.BAD_OPCODE)) in msgs
    errs = [m for m in h.events() if isinstance(m, Error)]
    assert [e.code for e in errs] == [ErrorCode.CRC, ErrorCode.FRAMING]
    assert t.reg(Reg.ERR_CRC) == 2


def test_event_fifo_overflow_is_loud() -> None:
    # slow UART + header every 200 cycles: events are produced faster than they can leave
    t = TwinModel(TwinConfig(header_period=200, n_slots=255, event_fifo_depth=4))
    h = Host(t)
    t.advance_to(200_000)
    h.pump()
    seqs = [f.seq for f in h.frames]
    lost_reported = sum(m.info for m in h.events() if isinstance(m, Error) and m.code == ErrorCode.EVENT_OVERFLOW)
    assert t.reg(Reg.EVT_LOST) > 0
    gaps = sum((b - a - 1) & 0xFF for a, b in zip(seqs, seqs[1:], strict=False))
    # every lost event shows as a seq gap, and is reported (some may still be pending)
    assert gaps == lost_reported and 0 < lost_reported <= t.reg(Reg.EVT_LOST)


def test_headers_slots_losses_and_no_slot() -> None:
    t = fast(header_period=1000, header_arrival=0.7, n_slots=4, seed=3)
    h = Host(t)
    t.advance_to(20_000)
    h.pump()
    hdrs = [m for m in h.events() if isinstance(m, Header)]
    assert [m.slot for m in hdrs] == [0, 1, 2, 3]
    assert all(m.ts % 1000 == 0 for m in hdrs)
    no_slot = [m for m in h.events() if isinstance(m, Error) and m.code == ErrorCode.NO_SLOT]
    assert no_slot and t.reg(Reg.SLOTS_FREE) == 0
    seqs = [m.seq for m in hdrs] + [m.info for m in no_slot]
    assert len(seqs) < 21  # some were lost in the channel (gaps)
    assert h.cmd(Free(2)) == Ack(Free.OPCODE)
    assert h.cmd(Free(2)) == Nak(Free.OPCODE, ErrorCode.BAD_SLOT)
    # FREE_MASK: all or nothing, slot base + i per set bit i
    assert h.cmd(FreeMask(0, 0b1111)) == Nak(FreeMask.OPCODE, ErrorCode.BAD_SLOT)  # 2 is free
    assert h.cmd(FreeMask(3, 1 << 5)) == Nak(FreeMask.OPCODE, ErrorCode.BAD_SLOT)  # beyond pool
    assert h.cmd(FreeMask(1, 0)) == Nak(FreeMask.OPCODE, ErrorCode.BAD_ARG)
    assert t.reg(Reg.SLOTS_FREE) == 1 and t.allocated_slots() == [0, 1, 3]
    assert h.cmd(FreeMask(0, 0b1011)) == Ack(FreeMask.OPCODE)
    assert t.reg(Reg.SLOTS_FREE) == 4 and t.allocated_slots() == []
    t.advance_to(30_000)
    new = [f.msg.slot for f in h.pump() if isinstance(f.msg, Header)]
    assert new == [0, 1, 2, 3]  # the pool is used again from the lowest slot


def test_injected_bad_header_and_header_bits() -> None:
    t = fast(p_photon=0.0)
    h = Host(t)
    t.inject_header(77, corrupt=True)
    t.inject_header(78)
    h.pump()
    assert h.events() == [Error(ErrorCode.BAD_HEADER, 1), Header(78, 0, 0)]
    bits = header_bits(0x01020304)
    assert len(bits) == 60 and bits[0] == 0 and bits[9] == 1
    assert header_bytes(0x01020304)[1:5] == bytes((1, 2, 3, 4))


def test_clear_counters_and_herald_enable() -> None:
    t = fast(p_photon=1.0)
    h = Host(t)
    h.cmd(RegWrite(Reg.CONTROL, 0))  # heralds disabled: detectors ignored
    h.cmd(Schedule(t.now + 10, 3, 50, 2))
    t.advance_to(t.now + 1000)
    h.pump()
    assert isinstance(h.events()[-1], Done)
    assert t.reg(Reg.CNT_ATTEMPTS) == 3
    h.cmd(RegWrite(Reg.CONTROL, 0b111))
    assert t.reg(Reg.CNT_ATTEMPTS) == 0 and t.reg(Reg.CONTROL) == 0b11


def _run_many(seed: int, p: float, n_sched: int) -> list[int]:
    t = fast(p_photon=p, seed=seed)
    h = Host(t)
    out = []
    for _ in range(n_sched):
        h.cmd(Schedule(t.now + 10, 1_000_000, 50, 2))
        t.advance_to(t.next_deadline())
        h.pump()
        ev = h.events()[-1]
        assert isinstance(ev, Herald)
        out.append(ev.attempt + 1)
    return out


def test_virtual_time_is_deterministic_and_geometric() -> None:
    a = _run_many(11, 2e-3, 300)
    assert a == _run_many(11, 2e-3, 300)
    assert a != _run_many(12, 2e-3, 300)
    mean = sum(a) / len(a)
    # geometric: mean 1/p = 500, sd of the mean ~ 500/sqrt(300) = 29 -> 5 sigma band
    assert abs(mean - 500) < 5 * 500 / math.sqrt(300)


def test_outcome_split_detectors_and_darks() -> None:
    cfg = TwinConfig(p_photon=0.1, dark_prob=0.05)
    none, d0, d1, both = cfg.outcome_probs()
    assert math.isclose(none + d0 + d1 + both, 1.0)
    assert d0 == d1 and both > 0
    with pytest.raises(ValueError):
        TwinConfig(p_photon=1.5)


def test_result_independent_of_time_slicing() -> None:
    def run(step: int):
        t = fast(p_photon=1e-4, seed=5, header_period=7919, header_arrival=0.5)
        h = Host(t)
        h.send(Schedule(100, 200_000, 50, 2))
        while t.now < 3_000_000:
            t.advance_to(min(t.now + step, 3_000_000))
        h.pump()
        return [(f.seq, f.msg) for f in h.frames]

    assert run(1_000_000) == run(77_777)


def test_config_from_physics() -> None:
    from hwctl.physics import heralding

    cfg = TwinConfig.for_fidelity(0.75, dark_rate_hz=100.0, window_cycles=2)
    assert math.isclose(cfg.p_photon, heralding.success_probability(0.75))
    assert math.isclose(cfg.dark_prob, 100.0 * 2e-8, rel_tol=1e-6)


def test_click_after_an_early_herald_is_kept_for_the_next_schedule() -> None:
    """A click injected ahead of time inside a schedule's planned span, but after the herald that
    ended it, belongs to the next schedule whose window covers it (seen by the RTL scoreboard)."""
    t = fast(p_photon=0.0)
    h = Host(t)
    t0 = t.now + 1000
    t.inject_click(t0 + 205, 0)              # attempt 2 of the first: herald, ends it at t0 + 210
    t.inject_click(t0 + 505, 1)              # inside the first's plan, after its end
    h.cmd(Schedule(t0, 10, 100, 10))        # planned span t0 .. t0 + 910
    h.cmd(Schedule(t0 + 500, 3, 100, 10))   # queued behind it
    t.advance_to(t0 + 2000)
    h.pump()
    heralds = [e for e in h.events() if isinstance(e, Herald)]
    assert [(e.attempt, e.detector) for e in heralds] == [(2, 0), (0, 1)]
