"""The twin in block mode (CONTROL.HDR_BLOCK, wire v4, docs/header-path.md)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.sim.twin.hdrblock import DEFAULT_FLUSH, DEFAULT_SLOTS, BlockEncoder, block_arrivals
from hwctl.wire import (
    Ack,
    ControlBit,
    Error,
    ErrorCode,
    Frame,
    FrameDecoder,
    HdrBlock,
    Header,
    Nak,
    PinMask,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    UnpinMask,
    encode,
)

BLOCK_CTRL = (1 << ControlBit.HEADER_EN) | (1 << ControlBit.HDR_BLOCK)
P = 77


def twin(block: bool = True, **kw) -> TwinModel:
    kw.setdefault("header_period", P)
    kw.setdefault("header_arrival", 0.1)
    kw.setdefault("seed", 4)
    if block:
        kw.setdefault("control_reset", BLOCK_CTRL)
    return TwinModel(TwinConfig(**kw), record=True)


def frames(t: TwinModel) -> list[Frame]:
    return [f for f in FrameDecoder().feed(t.read()) if isinstance(f, Frame)]


def test_blocks_equal_the_reference_fed_with_the_legacy_arrivals() -> None:
    """Same seed: the legacy twin's HEADER stream (seq, ts) fed to the reference encoder (with
    its flush timer) gives exactly the block twin's HDR_BLOCK events."""
    n = 300_000
    leg = twin(block=False, n_slots=65535, uart_cycles_per_byte=0, event_fifo_depth=1 << 20,
               header_corrupt=0.02)
    leg.advance_to(n)
    heads = [f.msg for f in frames(leg) if isinstance(f.msg, Header)]
    assert len(heads) > 300
    blk = twin(uart_cycles_per_byte=0, event_fifo_depth=1 << 20, header_corrupt=0.02)
    blk.advance_to(n)
    got = [f.msg for f in frames(blk)]
    assert all(isinstance(m, HdrBlock) for m in got)
    enc = BlockEncoder()
    want = []
    for r in leg.tx_log:  # infinite line: each event left at the cycle it was made
        want += enc.tick(r.cycle)
        if isinstance(r.msg, Header):
            want += enc.arrival(r.msg.seq, r.msg.ts)
        else:
            assert r.msg.code == ErrorCode.BAD_HEADER
            enc.bad_header()
    want += enc.tick(n)
    assert len(want) > 5
    assert got[: len(want)] == want
    arrivals = [a for b in got for a in block_arrivals(b)]
    assert [s for s, _ in arrivals] == [h.seq for h in heads][: len(arrivals)]
    assert blk.reg(Reg.CNT_HEADERS) == leg.reg(Reg.CNT_HEADERS)
    assert blk.reg(Reg.ERR_BAD_HEADER) == leg.reg(Reg.ERR_BAD_HEADER) > 0
    assert sum(b.bad for b in got) <= blk.reg(Reg.ERR_BAD_HEADER)
    assert blk.reg(Reg.CNT_BLOCKS) == len(got)


@pytest.mark.parametrize("seed", [1, 2])
def test_burst_path_equals_event_loop_and_slicing(seed: int) -> None:
    """The tight arrival loop gives the same bytes, at the same cycles, as the generic event
    loop, whatever the caller's time slicing (slow UART: the FIFO and UART timing matter)."""
    n = 6_000_000  # 78k pulses: crosses a SOURCE_CHUNK of pre-drawn pulses
    a = twin(seed=seed, header_arrival=0.15, event_fifo_depth=4, header_corrupt=0.05)
    a.advance_to(n)
    b = twin(seed=seed, header_arrival=0.15, event_fifo_depth=4, header_corrupt=0.05)
    b.burst = False
    rng = np.random.default_rng(seed)
    while b.now < n:
        b.advance_to(min(n, b.now + int(rng.integers(1, 50_000))))
    assert a.tx_log == b.tx_log
    assert len(a.tx_log) > 50
    assert a.reg(Reg.EVT_LOST) == b.reg(Reg.EVT_LOST)


@pytest.mark.parametrize("seed", [3, 5])
def test_bulk_appends_equal_the_event_loop(seed: int) -> None:
    """The burst loop's bulk runs of appends (TwinModel._bulk_appends, the paper's 1.3 MHz at
    p = 0.1) give the same frames at the same cycles and the same arrival-queue consumption
    cycles as the generic event loop, across a sequence-number wrap, ring wraps (2048 slots), a
    short flush timer, a TIME_SET offset, malformed headers, and pins / unpins mid-run (no bulk
    while a slot is pinned); most arrivals do go through the bulk runs."""
    from hwctl.wire import TimeSet

    n = 4_000_000
    cmds = [(300_000, TimeSet(123_456_789_013, 0)), (900_000, PinMask(40, 0b1011)),
            (1_400_000, RegWrite(Reg.BLOCK_FLUSH, 20_000)), (2_000_000, UnpinMask(40, 0b1011)),
            (2_600_000, RegWrite(Reg.BLOCK_FLUSH, 100_000))]

    def state(t: TwinModel) -> tuple:
        q = t._aq
        return (t.now, q._free, q._last_cons, q._rdy, q._calm, t._enc._last, t._hdr_next)

    snaps: dict[bool, list[tuple]] = {True: [], False: []}

    def run(burst: bool) -> tuple[TwinModel, int]:
        t = twin(seed=seed, header_seq0=0xFFFF_F000, ring_slots=2048, header_corrupt=0.002)
        t.burst = burst
        t._aq.record = True
        bulk = [0]
        f = t._bulk_appends

        def counted(bound: int) -> tuple[int, int]:
            m, tl = f(bound)
            bulk[0] += m
            return m, tl

        t._bulk_appends = counted  # type: ignore[method-assign]
        rng = np.random.default_rng(seed)
        for k, (at, msg) in enumerate(cmds):
            while t.now < at:
                t.advance_to(min(at, t.now + int(rng.integers(1, 200_000))))
                snaps[burst].append(state(t))
            t.feed(encode(msg, k + 1))
        t.advance_to(n)
        return t, bulk[0]

    a, n_bulk = run(True)
    b, _ = run(False)
    assert a.tx_log == b.tx_log
    assert a._aq.consumed == b._aq.consumed
    assert snaps[True] == snaps[False]  # the queue's state between slices too
    assert a.reg(Reg.CNT_HEADERS) == b.reg(Reg.CNT_HEADERS) > 4_000
    assert n_bulk > 0.5 * a.reg(Reg.CNT_HEADERS)  # (none while slots are pinned: 27 % of the run)
    blocks = [r.msg for r in a.tx_log if isinstance(r.msg, HdrBlock)]
    assert len(blocks) > 80 and any(b.n > 40 for b in blocks)


def test_registers_and_clear_counters() -> None:
    t = twin(header_period=0)
    assert t.reg(Reg.N_SLOTS) == DEFAULT_SLOTS == 8192
    assert t.reg(Reg.BLOCK_FLUSH) == DEFAULT_FLUSH
    assert t.reg(Reg.SLOTS_FREE) == 8192 and t.reg(Reg.CNT_PINNED) == 0
    t.feed(encode(RegWrite(Reg.BLOCK_FLUSH, 500), 1))
    t.feed(encode(PinMask(10, 0b111), 2))
    assert t.reg(Reg.BLOCK_FLUSH) == 500
    assert t.reg(Reg.CNT_PINNED) == 3 and t.reg(Reg.SLOTS_FREE) == DEFAULT_SLOTS - 3
    t.inject_header(5)
    t.advance(499)
    assert t.reg(Reg.CNT_BLOCKS) == 0
    t.advance(1)
    assert t.reg(Reg.CNT_BLOCKS) == 1
    t.advance(10_000)
    t.feed(encode(RegWrite(Reg.CONTROL, BLOCK_CTRL | 1 << ControlBit.CLEAR_COUNTERS), 3))
    assert t.reg(Reg.CNT_BLOCKS) == 0 and t.reg(Reg.CONTROL) == BLOCK_CTRL
    t.inject_header(6)
    t.advance(100_000)  # a block takes 73 bytes x 333 cycles on the line
    blocks = [f.msg for f in frames(t) if isinstance(f.msg, HdrBlock)]
    assert [b.blk for b in blocks] == [0, 0]
    # legacy mode: SLOTS_FREE is the legacy pool again
    t.feed(encode(RegWrite(Reg.CONTROL, 1 << ControlBit.HEADER_EN), 4))
    assert t.reg(Reg.SLOTS_FREE) == t.cfg.n_slots


def test_clearing_hdr_block_closes_the_open_block_and_returns_to_headers() -> None:
    t = twin(header_period=0, uart_cycles_per_byte=0)
    t.inject_header(1)
    t.inject_header(2)
    t.feed(encode(RegWrite(Reg.CONTROL, 1 << ControlBit.HEADER_EN), 1))
    t.inject_header(3)
    msgs = [f.msg for f in frames(t)]
    assert isinstance(msgs[0], HdrBlock) and msgs[0].n == 2
    assert isinstance(msgs[1], Ack)
    assert isinstance(msgs[2], Header) and msgs[2].seq == 3


def test_bad_headers_and_no_slot_in_block_mode() -> None:
    t = twin(header_period=0, uart_cycles_per_byte=0, ring_slots=2048)
    t.inject_header(9, corrupt=True)
    assert frames(t) == [] and t.reg(Reg.ERR_BAD_HEADER) == 1
    for base in range(0, 2048, 240):
        t.feed(encode(PinMask(base, (1 << min(240, 2048 - base)) - 1), base // 240 % 256))
    assert t.reg(Reg.SLOTS_FREE) == 0
    frames(t)
    t.inject_header(10)
    (f,) = frames(t)
    assert f.msg == Error(int(ErrorCode.NO_SLOT), 10)
    t.feed(encode(UnpinMask(3, 1), 99))
    t.inject_header(11)
    t.advance(DEFAULT_FLUSH)
    msgs = [f.msg for f in frames(t)]
    assert msgs[0] == Ack(UnpinMask.OPCODE)
    (b,) = [m for m in msgs if isinstance(m, HdrBlock)]
    assert (b.seq0, b.slot0, b.n, b.bad) == (11, 3, 1, 1)
    t.feed(encode(PinMask(0, 0), 100))
    t.feed(encode(PinMask(2047, 3), 101))
    assert [f.msg for f in frames(t)] == [Nak(PinMask.OPCODE, int(ErrorCode.BAD_ARG)),
                                         Nak(PinMask.OPCODE, int(ErrorCode.BAD_SLOT))]


def test_pin_response_is_ordered_after_queued_events() -> None:
    """Slow UART, several blocks waiting: the PIN_MASK ACK leaves after them and after the block
    it closed, while a REG_READ response still overtakes waiting events."""
    t = twin(header_period=0, block_flush=10**9)
    for k in range(6):  # 6 one-arrival blocks (gaps > 124) waiting in the event FIFO
        t.inject_header(1000 * k)
    t.advance(10)
    t.feed(encode(RegRead(Reg.ID), 1))
    t.feed(encode(PinMask(100, 1), 2))
    t.inject_header(10**6)  # opens a block after the pin
    t.feed(encode(RegRead(Reg.ID), 3))
    t.advance(100_000)
    t.feed(encode(UnpinMask(100, 1), 4))
    t.advance(100_000)
    log = [(r.seq, r.msg) for r in t.tx_log]
    kinds = [type(m).__name__ for _, m in log]
    assert kinds == ["HdrBlock", "RegValue", "HdrBlock", "HdrBlock", "HdrBlock", "HdrBlock",
                     "HdrBlock", "Ack", "RegValue", "HdrBlock", "Ack"]
    blocks = [m for _, m in log if isinstance(m, HdrBlock)]
    assert [b.seq0 for b in blocks] == [0, 1000, 2000, 3000, 4000, 5000, 10**6]
    assert isinstance(log[1][1], RegValue) and log[1][0] == 1


def test_real_time_pty_serves_blocks() -> None:
    """Real-time twin on a pty in block mode: the host enables it, pins a slot and receives
    HDR_BLOCK events whose blk counter is contiguous (timeouts only bound a hang)."""
    import asyncio

    from hwctl.sim.twin.serve import PtyTwinServer
    from hwctl.transport import open_backend

    model = TwinModel(TwinConfig(header_period=7700, header_arrival=0.3, seed=2))

    async def go() -> tuple[list[HdrBlock], int]:
        # 10 s per try bounds a hang only: at the URL default (0.25 s x 5) a loaded machine's
        # slow pty answer failed the test
        async with await open_backend(srv.url, timeout=10.0) as b:
            await b.write_reg(Reg.BLOCK_FLUSH, 20_000)
            await b.write_reg(Reg.CONTROL, BLOCK_CTRL)
            await b.command(PinMask(0, 1))
            for _ in range(b.pending_events()):  # events before the ACK: before the pin
                await b.next_event(timeout=1)
            got: list[HdrBlock] = []
            while len(got) < 5:
                ev = await b.next_event(timeout=10)
                if isinstance(ev, HdrBlock):
                    got.append(ev)
            return got, await b.read_reg(Reg.CNT_PINNED)

    with PtyTwinServer(model) as srv:
        blocks, pinned = asyncio.run(asyncio.wait_for(go(), 300))  # a hang bound
    assert pinned == 1
    assert [b.blk for b in blocks] == list(range(blocks[0].blk, blocks[0].blk + 5))
    assert all(b.slot0 != 0 for b in blocks)  # slot 0 pinned before these blocks


def test_pin_response_between_events_before_and_after() -> None:
    """The ordered response's place among other events (docs/header-path.md section 3): an
    ERROR(CRC) from a bad frame before the PIN_MASK leaves before its ACK, one from a bad frame
    after it leaves after the ACK, although both wait behind the same blocks (the RTL is held to
    the same order in fpga/tests/test_hdl_hdr_block.py::hdr_block_pin_order)."""
    t = twin(header_period=0, block_flush=10**9)
    for k in range(5):
        t.inject_header(1000 * k)
    t.advance(10)
    bad = bytearray(encode(RegRead(Reg.ID), 0x5A))
    bad[-2] ^= 0x01 if bad[-2] != 0x01 else 0x02
    t.feed(bytes(bad))
    t.feed(encode(PinMask(100, 1), 2))
    t.feed(bytes(bad))
    t.advance(10**6)
    kinds = [type(r.msg).__name__ for r in t.tx_log]
    # blocks 0-3 closed by the next arrival (gaps > 124), the ERROR, block 4 closed by the pin
    assert kinds == ["HdrBlock"] * 4 + ["Error", "HdrBlock", "Ack", "Error"], kinds


def test_header_line_occupancy_is_counted_and_refused() -> None:
    """One header per HEADER_CYCLES (60 bits of [header] bit_cycles) on the line: a header ending
    sooner after the previous carried one is an overrun, counted; with header_line_refuse the
    device never sees it. At the paper's rate (period 77, p = 0.1) an arrival blocks the next
    k = floor((HEADER_CYCLES - 1) / 77) pulses, so the refused share is k p / (1 + k p): at the
    spec's 1 cycle per bit (60-cycle headers) k = 0, no arrival overruns (8 cycles per bit had
    k = 6, 0.375 of the arrivals; docs/header-path.md section 2)."""
    from hwctl.sim.twin.header import HEADER_CYCLES

    t = twin(header_period=0)
    t.inject_header(1)
    t.advance(HEADER_CYCLES - 1)
    t.inject_header(2)                  # still on the line: counted, delivered (default)
    t.advance(1)
    t.inject_header(3)                  # the line is free again (one header after seq 1)
    assert t.hdr_line_overrun == 1 and t.reg(Reg.CNT_HEADERS) == 3
    r = twin(header_period=0, header_line_refuse=True)
    r.inject_header(1)
    r.advance(HEADER_CYCLES - 1)
    r.inject_header(2)
    r.advance(HEADER_CYCLES)
    r.inject_header(3)
    assert r.hdr_line_overrun == 1 and r.reg(Reg.CNT_HEADERS) == 2
    k = (HEADER_CYCLES - 1) // P
    for refuse in (False, True):
        s = twin(header_line_refuse=refuse, uart_cycles_per_byte=0, event_fifo_depth=1 << 20)
        s.advance_to(400_000 * P)
        carried = s.reg(Reg.CNT_HEADERS) + s.reg(Reg.ERR_BAD_HEADER)
        offered = carried + (s.hdr_line_overrun if refuse else 0)
        share = s.hdr_line_overrun / offered
        assert abs(share - k * 0.1 / (1 + k * 0.1)) < 0.015, (refuse, share)
        assert offered > 30_000     # (the source ran: ~40k arrivals)
    assert k == 0 and s.hdr_line_overrun == 0, "the spec's header line carries every pulse"


def _overloaded(nb: int) -> TwinModel:
    """Blocks closing every ~700 cycles, a 73-byte frame taking ~3,000: the source runs 400k
    cycles, then CONTROL = 0 (the open block closes, headers stop) and the UART drains."""
    t = twin(block_flush=700, uart_cycles_per_byte=41, block_buffers=nb, header_arrival=0.3)
    t.advance_to(400_000)
    t.feed(encode(RegWrite(Reg.CONTROL, 0), 1))
    t.advance_to(800_000)
    return t


@pytest.mark.parametrize("nb", [2, 8])
def test_block_buffers_lose_whole_blocks_like_the_rtl(nb: int) -> None:
    """Blocks close (flush timer) faster than a slow UART sends them: with ``block_buffers`` = nb
    at most nb closed blocks wait (in the FIFO or in transmission); a block opening while all nb
    are held is lost whole (a blk gap, EVT_LOST, the EVENT_OVERFLOW reports add up); never lost
    at the event FIFO (its depth, 16, is larger than nb: the RTL's tokens wait for room)."""
    t = twin(block_flush=700, uart_cycles_per_byte=41, block_buffers=nb, header_arrival=0.3)
    held_max = 0
    for c in range(2_000, 400_000, 250):
        t.advance_to(c)
        held_max = max(held_max, t._blk_queued + (t._tx_cur is not None and t.now < t._tx_rel))
    assert held_max == nb
    t = _overloaded(nb)
    msgs = [f.msg for f in frames(t)]
    blocks = [m for m in msgs if isinstance(m, HdrBlock)]
    lost = t.reg(Reg.EVT_LOST)
    blk = [b.blk for b in blocks]
    assert blk == sorted(blk) and lost > 20
    assert lost == t.reg(Reg.CNT_BLOCKS) - len(blk)      # the blk gaps are the lost blocks
    reports = sum(m.info for m in msgs if isinstance(m, Error)
                  and m.code == ErrorCode.EVENT_OVERFLOW)
    assert reports == lost
    # without the buffer model only the event FIFO (16 frames) limits: fewer blocks lost
    assert _overloaded(0).reg(Reg.EVT_LOST) < lost


def test_arrival_queue_holds_arrivals_across_pin_changes() -> None:
    """hdr_block's queue (one pending + 8, docs/header-path.md section 3): back-to-back headers
    (one per 60 cycles, the line's limit) during pin changes of 16 ring words each are all
    stored; the backlog stays within the RTL's worst case (7 held); with a 2-entry FIFO the same
    stream overflows, each overflow counted and its arrival in no block."""
    from hwctl.sim.twin.hdrblock import ArrivalQueue, block_arrivals

    def run(fifo: int) -> tuple[ArrivalQueue, list[int], list[HdrBlock]]:
        enc = BlockEncoder(n_slots=2048, flush_cycles=10**9)
        q = ArrivalQueue(enc, fifo=fifo, record=True)
        stored, blocks, seq = [], [], 100
        for i in range(200):
            a = 1000 + 60 * i
            if i % 40 == 7:         # a 240-bit mask across 16 words, alternately pin / unpin
                blocks += (q.pin if i % 80 == 7 else q.unpin)(enc._last + 9, (1 << 240) - 1, a)
            seq += 1
            out, ok = q.arrival(seq, a - 3, a)
            blocks += out
            if ok:
                stored.append(seq)
        blocks += enc.set_enabled(False)
        return q, stored, blocks

    q, stored, blocks = run(8)
    assert q.overflows == 0 and len(stored) == 200
    assert [s for b in blocks for s, _ in block_arrivals(b)] == stored
    # consumed in order; the longest wait (arrival -> finished) is the pin change's
    waits = [c - (1000 + 60 * i) for i, c in enumerate(q.consumed)]
    assert q.consumed == sorted(q.consumed) and 300 < max(waits) < 6 * 60 + 345
    q2, stored2, blocks2 = run(2)
    assert q2.overflows > 0 and len(stored2) + q2.overflows == 200
    assert [s for b in blocks2 for s, _ in block_arrivals(b)] == stored2


def test_queue_overflow_reported_as_no_slot() -> None:
    """Every slot but one pinned: each ring search crosses all 128 words, so arrivals on every
    77-cycle pulse come faster than the encoder takes them and the queue overflows: each
    overflow is an ERROR(NO_SLOT, seq) and counts in CNT_HEADERS, the stored arrivals are in the
    blocks, and the burst loop gives the same bytes at the same cycles as the event loop."""

    def run(burst: bool) -> TwinModel:
        t = twin(header_arrival=1.0, header_seq0=500, uart_cycles_per_byte=0, ring_slots=2048,
                 event_fifo_depth=1 << 12, block_flush=10**6)
        t.burst = burst
        for base in range(0, 2048, 240):
            mask = (1 << min(240, 2048 - base)) - 1
            if base == 960:
                mask &= ~(1 << 40)          # slot 1000 stays free
            t.feed(encode(PinMask(base, mask), base // 240))
        assert t.reg(Reg.SLOTS_FREE) == 1
        t.advance_to(60 * P)
        t.feed(encode(RegWrite(Reg.CONTROL, 1 << ControlBit.HEADER_EN), 77))
        return t

    t = run(True)
    msgs = [f.msg for f in frames(t)]
    ns = [m.info for m in msgs if isinstance(m, Error) and m.code == ErrorCode.NO_SLOT]
    got = [s for m in msgs if isinstance(m, HdrBlock) for s, _ in block_arrivals(m)]
    n = t.reg(Reg.CNT_HEADERS)
    assert n >= 59 and len(ns) == t._aq.overflows > 10
    assert sorted(ns + got) == list(range(500, 500 + n)) and not set(ns) & set(got)
    t2 = run(False)
    assert t2.tx_log == t.tx_log


# --------------------------------------------------------------- the arrival queue's fast path
_OPS = st.one_of(
    # an arrival: cycles since the previous input (mostly a header time or more, some closer:
    # the line allows 60, the twin delivers closer ones too), pulses since the previous arrival
    # (skip entries, gaps > 124), ts offset (decode ts vs arr_i cycle) and whether the flush
    # timer's clock is the cycle (the twin) or the ts (cocotb)
    st.tuples(st.just("arr"), st.one_of(st.integers(60, 400), st.integers(0, 59),
                                        st.integers(400, 5000)),
              st.one_of(st.integers(1, 12), st.integers(28, 130), st.integers(130, 3000)),
              st.integers(0, 4), st.booleans()),
    # a pin change: cycles since the previous input, pin / unpin, base (absolute, or ahead of
    # the ring position: the next searches cross pinned words), mask (may be refused)
    st.tuples(st.just("pin"), st.integers(0, 600), st.booleans(), st.integers(0, 260),
              st.one_of(st.integers(0, (1 << 240) - 1), st.just((1 << 240) - 1),
                        st.integers(0, 255)), st.booleans()),
    # the reference encoder's flush tick (the twin calls it at the encoder's deadline)
    st.tuples(st.just("tick"), st.integers(0, 3000)),
)


def _run_queue(ops: list[tuple], exact: bool, n_slots: int, flush: int, seq0: int,
               pin_all: bool) -> tuple:
    from hwctl.sim.twin.hdrblock import ArrivalQueue, PinError

    enc = BlockEncoder(n_slots=n_slots, flush_cycles=flush)
    q = ArrivalQueue(enc, record=True, exact=exact)
    now, seq, out = 1000, seq0, []
    if pin_all:     # every slot but one pinned: each search crosses the ring, the queue overflows
        for base in range(0, n_slots, 240):
            mask = (1 << min(240, n_slots - base)) - 1
            if base == 0:
                mask &= ~(1 << 5)
            out.append(("pin", q.pin(base, mask, now)))
            now += 400
    for op in ops:
        now += op[1]
        if op[0] == "arr":
            seq = (seq + op[2]) & 0xFFFF_FFFF
            ts = now - op[3]
            blocks, stored = q.arrival(seq, ts, now, at=now if op[4] else None)
            out.append((seq, blocks, stored, enc.last_slot))
        elif op[0] == "pin":
            try:
                base = (enc._last + 1 + op[3] % 4) % n_slots if op[5] else op[3]
                out.append(("pin", (q.pin if op[2] else q.unpin)(base, op[4], now)))
            except PinError as e:
                out.append(("nak", e.code))
        else:
            out.append(("tick", q.tick(now)))
    out.append(("end", enc.set_enabled(False)))
    return out, q.consumed, q.overflows, enc.dropped, enc.pinned_slots()


_FULL = (1 << 240) - 1


@settings(max_examples=300, deadline=None)
# directed: an append into the slot just before a pinned run (the next search crosses 15 words)
# followed by a close arrival; an arrival in the 6 cycles after the RTL's flush timer expired
@example(ops=[("arr", 100, 1, 0, True), ("pin", 100, True, 2, _FULL, True), ("arr", 1000, 1, 0, True),
              ("arr", 100, 1, 0, True), ("arr", 10, 1, 0, True)],
         n_slots=2048, flush=DEFAULT_FLUSH, seq0=5, pin_all=False)
@example(ops=[("arr", 100, 1, 0, True)] + [("arr", 60, 1, 0, True)] * 3, n_slots=64, flush=50,
         seq0=5, pin_all=False)
@given(ops=st.lists(_OPS, min_size=1, max_size=120), n_slots=st.sampled_from([64, 256, 2048]),
       flush=st.one_of(st.integers(1, 400), st.just(DEFAULT_FLUSH)),
       seq0=st.one_of(st.just(0xFFFF_FFFF - 300), st.integers(0, 0xFFFF_FFFF)),
       pin_all=st.booleans())
def test_arrival_queue_fast_path_equals_exact_model(ops, n_slots, flush, seq0, pin_all) -> None:
    """ArrivalQueue's fast path (an arrival that finds nothing held and the encoder idle skips the
    queue bookkeeping) against the exact model on every arrival: the same blocks, stored flags,
    slots, finishing cycles, queue overflows and NO_SLOT drops, over random streams with pin
    changes (refused ones too), arrivals closer than a header time, the flush timer (and the
    reference encoder's tick), gaps > 124, the seq wrap and a ring pinned but for one slot (the
    queue overflows)."""
    a = _run_queue(ops, True, n_slots, flush, seq0, pin_all)
    b = _run_queue(ops, False, n_slots, flush, seq0, pin_all)
    assert a == b


def test_arrival_queue_fast_path_is_taken_and_overflows_still_happen() -> None:
    """The comparison above is not vacuous: on a spec-rate stream (one header per 77-cycle pulse,
    p = 0.1) almost every arrival takes the fast path, and with the ring pinned but for one slot
    the queue overflows through both paths alike."""
    from hwctl.sim.twin.hdrblock import ArrivalQueue

    rng = np.random.default_rng(3)
    gaps = rng.geometric(0.1, 2000)
    enc = BlockEncoder(n_slots=2048, flush_cycles=DEFAULT_FLUSH)
    q = ArrivalQueue(enc)
    now = seq = slow = 0
    for g in gaps:
        now += 77 * int(g)
        seq += int(g)
        slow += now < q._calm       # (the exact path)
        q.arrival(seq, now, now)
    assert slow < 0.01 * len(gaps), slow
    ops = [("arr", 60, 2, 1, True)] * 60
    for exact in (True, False):
        _, _, over, _, _ = _run_queue(ops, exact, 2048, DEFAULT_FLUSH, 10, True)
        assert over > 10


def test_block_stream_polled_every_ms_other_frames_at_their_completion() -> None:
    """A real-time server's wake-ups (TwinModel.next_wake) in block mode: with only HDR_BLOCK
    frames in flight it polls every 1 ms (an on-time server then writes each 1 ms of line bytes
    at once: the same bytes), but a response to a command is woken for when its frame leaves the
    UART, not up to 1 ms later."""
    t = twin(header_arrival=0.1)
    t.advance_to(2_000_000)
    t.read()
    wakes = 0
    end = t.now + 10_000_000  # 0.1 s at 1.3 MHz: ~270 blocks
    while t.now < end:
        d = t.next_wake()
        assert d is not None and d <= t.now + 100_000
        t.advance_to(min(end, max(d, t.now)))
        wakes += 1
    assert wakes <= 101
    # a command: its response (behind at most the block frame in flight) is woken for
    t.read()
    t.feed(encode(RegRead(Reg.CNT_BLOCKS), 9))
    t0, got = t.now, False
    while not got:
        d = t.next_wake()
        assert d is not None and d < t.now + 100_000
        t.advance_to(d)
        got = any(isinstance(f.msg, RegValue) for f in frames(t))
    assert t.now - t0 <= 2 * 73 * t.cfg.uart_cycles_per_byte  # a block frame + the response
