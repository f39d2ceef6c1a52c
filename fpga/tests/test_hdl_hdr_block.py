"""Block mode (wire v4, docs/header-path.md) through the node's pins, scored against the twin.

Headers are driven on ``hdr_i`` at the spec's bit period, commands and events go through the
UART with the host codec; every HDR_BLOCK frame is decoded and compared field by field (so byte
for byte: the codec's encoding is one-to-one) with the blocks ``hwctl.sim.twin.hdrblock.BlockEncoder``
closes when fed the same arrivals (seq, decode timestamp), malformed headers, flush deadlines and
pin changes. Cases: randomized arrivals with gaps > 124, skip entries, the seq wrap at 2^32, bad
headers, the flush timer and the 48-byte fill, PIN_MASK / UNPIN_MASK mid-block (the block frame
before the ACK), NAKs that close nothing; a ring of 64 slots pinned full (NO_SLOT, SLOTS_FREE 0);
block loss when every block buffer waits for the UART (whole blocks: a blk gap per lost block,
EVT_LOST and the EVENT_OVERFLOW reports add up, no partial frame).
"""

from __future__ import annotations

import os
import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotb_run import run_cocotb
from hostbfm import Host
from test_hdl_header import header
from twin_oracle import HDR_LAT

from hwctl.sim.twin.hdrblock import BlockEncoder, PinError
from hwctl.sim.uartbfm import send_bytes
from hwctl.wire import (
    Ack,
    Error,
    ErrorCode,
    Frame,
    HdrBlock,
    Message,
    Nak,
    Opcode,
    PinMask,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    UnpinMask,
)

HDR_BIT = 4           # header bit period: a header takes 240 cycles (spec 16: 960); arrivals
                      # only need to be further apart than a ring search (<= 135 cycles), and
                      # pin changes are sent while the header line is idle
CTRL_BLOCK = 0b1011   # HERALD_EN | HEADER_EN | HDR_BLOCK
CTRL_LEGACY = 0b0011


class OrderedHost(Host):
    """Host that also keeps responses and events in arrival order (the ACK-after-block check)."""

    def __init__(self, dut, cpb: int) -> None:
        super().__init__(dut, cpb)
        self.order: list[Frame] = []

    def _on_byte(self, value: int) -> None:
        for item in self.dec.feed(bytes((value,))):
            if not isinstance(item, Frame):
                self.errors.append(item)
                continue
            self.order.append(item)
            if item.msg.KIND == "event":
                self.events.append(item)
            else:
                self.responses.append(item)


class Bench:
    def __init__(self, dut, cpb: int, flush: int, n_slots: int) -> None:
        self.dut = dut
        self.host = OrderedHost(dut, cpb)
        self.host.poll = 16     # (fewer wake-ups: simulation speed)
        self.enc = BlockEncoder(n_slots=n_slots, flush_cycles=flush)
        self.want: list[HdrBlock] = []     # blocks the twin closed, in order
        self.seq = 0
        self.good = 0
        self.bad = 0
        self.noslot: list[int] = []

    async def start(self, flush: int) -> None:
        cocotb.start_soon(Clock(self.dut.clk_i, 10, unit="ns").start())
        await self.host.start()
        assert await self.rq(RegWrite(Reg.BLOCK_FLUSH, flush)) == Ack(Opcode.REG_WRITE)
        assert await self.rq(RegWrite(Reg.CONTROL, CTRL_BLOCK)) == Ack(Opcode.REG_WRITE)

    def now(self) -> int:
        return int(self.dut.u_core.ts_o.value)

    async def rq(self, msg: Message) -> Message:
        self.seq = (self.seq + 1) & 0xFF
        return await self.host.request(msg, self.seq, timeout=200_000)

    async def arrival(self, seq: int, bad: bool = False) -> None:
        """Drive one header on hdr_i; feed the twin what the device should have decoded."""
        data = bytearray(header(seq & 0xFFFF_FFFF))
        if bad:
            data[-1] ^= 0x20
        host_ts = self.now()
        await send_bytes(self.dut.clk_i, self.dut.hdr_i, bytes(data), HDR_BIT)
        ts = host_ts + 1 + 5 * 10 * HDR_BIT + 9 * HDR_BIT + HDR_BIT // 2 + HDR_LAT
        if bad:
            self.bad += 1
            self.enc.bad_header()
        else:
            self.good += 1
            self.want += self.enc.arrival(seq & 0xFFFF_FFFF, ts)
            if self.enc.last_slot is None:
                self.noslot.append(seq & 0xFFFF_FFFF)

    async def idle(self, cycles: int) -> None:
        await ClockCycles(self.dut.clk_i, cycles)

    async def pin(self, set_: bool, base: int, mask: int) -> None:
        """PIN_MASK / UNPIN_MASK while the header line is idle; the twin executes it at the
        command's cycle (its flush timer first). The closed block comes before the ACK."""
        self.want += self.enc.tick(self.now())
        n_before = len(self.want)
        try:
            self.want += self.enc.pin(base, mask) if set_ else self.enc.unpin(base, mask)
            expect: Message = Ack(Opcode.PIN_MASK if set_ else Opcode.UNPIN_MASK)
        except PinError as e:
            expect = Nak(Opcode.PIN_MASK if set_ else Opcode.UNPIN_MASK, e.code)
        closed = self.want[n_before:]
        got = await self.rq(PinMask(base, mask) if set_ else UnpinMask(base, mask))
        assert got == expect, (got, expect)
        # every block the pin change closed is on the wire before its response
        i_rsp = max(i for i, f in enumerate(self.host.order) if f.msg == got)
        before = [f.msg for f in self.host.order[:i_rsp] if isinstance(f.msg, HdrBlock)]
        for b in closed:
            assert b in before, f"block {b.blk} closed by the pin change came after the ACK"

    async def finish(self, max_frames: int = 20) -> None:
        """Clear HDR_BLOCK (closes the open block), let the UART drain, compare everything."""
        self.want += self.enc.tick(self.now())
        self.want += self.enc.set_enabled(False)
        assert await self.rq(RegWrite(Reg.CONTROL, CTRL_LEGACY)) == Ack(Opcode.REG_WRITE)
        # the UART drains: every block the twin closed (the loss case: those that were kept; the
        # bound only ends a hang: 2^EVT_AW + NBLK frames of 73 bytes)
        frame = 73 * 10 * self.host.cpb
        for _ in range(max_frames):
            if len(self.blocks()) >= len(self.want):
                break
            await self.idle(frame)
        await self.idle(frame)

    def blocks(self) -> list[HdrBlock]:
        return [f.msg for f in self.host.events if isinstance(f.msg, HdrBlock)]


def same_blocks(got: list[HdrBlock], want: list[HdrBlock]) -> None:
    """got == want, naming the first block and fields that differ."""
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            diff = {f: (getattr(g, f), getattr(w, f)) for f in
                    ("blk", "seq0", "ts0", "slot0", "n", "used", "bad") if getattr(g, f) != getattr(w, f)}
            if g.entries != w.entries:
                diff["entries"] = (g.entries.to_bytes(48, "big").hex(), w.entries.to_bytes(48, "big").hex())
            raise AssertionError(f"block {i} differs (device, twin): {diff}")
    assert len(got) == len(want), (len(got), len(want))


def rand_gap(rng: random.Random, skips: float = 0.1) -> int:
    """Pulses from one arrival's seq to the next: mostly a source with p ~ 0.15, some gaps at
    and just past one block's reach (skip entries, > 124: new block; ``skips`` of them) and far
    beyond."""
    r = rng.random()
    if r < 0.95 - skips:
        g = 1
        while rng.random() > 0.15:
            g += 1
        return g
    if r < 0.95:
        return rng.choice([31, 32, 62, 93, 94, 124, 124, 125, 126])
    return rng.randrange(126, 5000)


async def check_regs(b: Bench, lost: int = 0) -> None:
    enc = b.enc
    assert await b.rq(RegRead(Reg.CNT_BLOCKS)) == RegValue(Reg.CNT_BLOCKS, enc.blocks_emitted)
    assert await b.rq(RegRead(Reg.CNT_PINNED)) == RegValue(Reg.CNT_PINNED, enc.pinned_count)
    assert await b.rq(RegRead(Reg.CNT_HEADERS)) == RegValue(Reg.CNT_HEADERS, b.good)
    assert await b.rq(RegRead(Reg.ERR_BAD_HEADER)) == RegValue(Reg.ERR_BAD_HEADER, b.bad)
    assert await b.rq(RegRead(Reg.EVT_LOST)) == RegValue(Reg.EVT_LOST, lost)
    # SLOTS_FREE is the ring's only in block mode
    assert await b.rq(RegWrite(Reg.CONTROL, CTRL_BLOCK)) == Ack(Opcode.REG_WRITE)
    assert await b.rq(RegRead(Reg.SLOTS_FREE)) == RegValue(Reg.SLOTS_FREE, enc.slots_free)
    assert await b.rq(RegWrite(Reg.CONTROL, CTRL_LEGACY)) == Ack(Opcode.REG_WRITE)


@cocotb.test()
async def hdr_block_random(dut) -> None:
    """Random arrivals across the seq wrap, bad headers, flush + fill closes, pin changes."""
    rng = random.Random(int(os.environ.get("HB_SEED", "14")))
    n = int(os.environ.get("HB_ARRIVALS", "44"))
    n_slots = int(dut.RING_SLOTS.value)
    flush = 200_000                # first: blocks close by filling up
    b = Bench(dut, int(dut.CLKS_PER_BIT.value), flush, n_slots)
    await b.start(flush)
    assert await b.rq(RegRead(Reg.N_SLOTS)) == RegValue(Reg.N_SLOTS, n_slots)
    seq = 2**32 - 600              # wraps after a few arrivals
    for i in range(n):
        if i == n // 2:            # then: mostly by the flush timer
            flush = 2_500
            assert await b.rq(RegWrite(Reg.BLOCK_FLUSH, flush)) == Ack(Opcode.REG_WRITE)
            b.want += b.enc.tick(b.now())
            b.enc.flush_cycles = flush
        # (first half: many skip entries, so blocks fill up in few arrivals)
        if i < 16:      # the first block fills up: skip entries, no gap past its reach
            seq = (seq + rng.choice([2, 94, 125, 125])) & 0xFFFF_FFFF
        else:
            seq = (seq + rand_gap(rng)) & 0xFFFF_FFFF
        await b.arrival(seq, bad=rng.random() < 0.04)
        r = 1.0 if i < 16 else rng.random()
        if r < 0.05:
            # pin slots just ahead of the ring (the next arrivals skip them) or unpin them
            cur = b.enc._last
            base = (cur + rng.randrange(1, 6)) % n_slots
            width = min(240, n_slots - base)
            mask = rng.getrandbits(width) | 1
            await b.pin(rng.random() < 0.7, base, mask)
        elif r < 0.07:
            await b.pin(True, rng.randrange(n_slots), 0)                  # NAK(BAD_ARG)
        elif r < 0.09:
            await b.pin(False, n_slots - 3, 0b1001)                        # NAK(BAD_SLOT)
        elif r < 0.15 and i >= n // 2:
            await b.idle(rng.randrange(flush // 2, 2 * flush))            # flush timer
        else:
            await b.idle(rng.randrange(0, 200))
    await b.finish()
    got = b.blocks()
    same_blocks(got, b.want)
    assert len(b.want) >= 6 and any(w.used >= 44 for w in b.want), \
        ("the run should fill blocks", [(w.n, w.used) for w in b.want])
    seqs = [f.seq for f in b.host.events]
    assert seqs == list(range(len(seqs))), "no event lost or reordered"
    assert not b.host.errors
    await check_regs(b)
    dut._log.info("%d arrivals, %d blocks, %d pinned", b.good, len(got), b.enc.pinned_count)


@cocotb.test()
async def hdr_block_ring_full(dut) -> None:
    """A ring of N slots pinned full: arrivals are dropped with ERROR(NO_SLOT, seq) and are in no
    block; unpinning some lets them in again, in the unpinned slots."""
    rng = random.Random(3)
    n_slots = int(dut.RING_SLOTS.value)
    flush = 100_000
    b = Bench(dut, int(dut.CLKS_PER_BIT.value), flush, n_slots)
    await b.start(flush)
    seq = 1000
    for _ in range(5):
        seq += rng.randrange(1, 4)
        await b.arrival(seq)
    await b.pin(True, 0, (1 << n_slots) - 1)
    assert await b.rq(RegWrite(Reg.CONTROL, CTRL_BLOCK)) == Ack(Opcode.REG_WRITE)
    assert await b.rq(RegRead(Reg.SLOTS_FREE)) == RegValue(Reg.SLOTS_FREE, 0)
    for _ in range(4):
        seq += rng.randrange(1, 4)
        await b.arrival(seq)
    await b.pin(False, 9, 0b101)
    for _ in range(6):
        seq += rng.randrange(1, 4)
        await b.arrival(seq)
    await b.pin(False, 0, (1 << n_slots) - 1)
    for _ in range(3):
        seq += rng.randrange(1, 4)
        await b.arrival(seq)
    await b.finish()
    assert len(b.noslot) >= 4
    same_blocks(b.blocks(), b.want)
    errs = [f.msg for f in b.host.events if isinstance(f.msg, Error)]
    assert errs == [Error(ErrorCode.NO_SLOT, s) for s in b.noslot]
    assert not b.host.errors
    await check_regs(b)


@cocotb.test()
async def hdr_block_loss(dut) -> None:
    """Blocks close faster than a slow UART sends them: whole blocks are lost once every buffer
    holds an unsent one; each loss is a blk gap, an event seq and EVT_LOST, reported by
    EVENT_OVERFLOW; every block that arrives equals the twin's block with that blk."""
    rng = random.Random(5)
    n_slots = int(dut.RING_SLOTS.value)
    flush = 1500                    # about one arrival per block
    b = Bench(dut, int(dut.CLKS_PER_BIT.value), flush, n_slots)
    await b.start(flush)
    seq = 77
    for _ in range(24):
        seq += rng.randrange(1, 300)
        await b.arrival(seq)
        await b.idle(rng.randrange(400, 700))
    await b.finish(max_frames=4)    # (blocks are lost: wait for the NBLK kept ones + reports)
    got = b.blocks()
    by_blk = {w.blk: w for w in b.want}
    assert all(g == by_blk[g.blk] for g in got)
    lost = len(b.want) - len(got)
    assert lost > 0, "the run should lose blocks"
    assert [g.blk for g in got] == sorted(g.blk for g in got)
    over = [f.msg for f in b.host.events
            if isinstance(f.msg, Error) and f.msg.code == ErrorCode.EVENT_OVERFLOW]
    assert sum(e.info for e in over) == lost
    seqs = [f.seq for f in b.host.events]
    assert seqs[-1] - seqs[0] + 1 == len(seqs) + lost
    assert not b.host.errors
    await check_regs(b, lost=lost)


def _run(tmp_path, case: str, params: dict[str, int], env: dict[str, str] | None = None) -> None:
    run_cocotb(tmp_path, "top", "test_hdl_hdr_block", parameters={
        "CLKS_PER_BIT": 4, "HDR_BIT_CYCLES": HDR_BIT, "N_SLOTS": 2, "EVT_AW": 2, **params},
        testcase=case, extra_env=env)


@pytest.mark.rtl
def test_hdr_block_random(tmp_path) -> None:
    _run(tmp_path, "hdr_block_random", {"RING_SLOTS": 2048})


@pytest.mark.rtl
def test_hdr_block_ring_full(tmp_path) -> None:
    _run(tmp_path, "hdr_block_ring_full", {"RING_SLOTS": 64})


@pytest.mark.rtl
def test_hdr_block_loss(tmp_path) -> None:
    _run(tmp_path, "hdr_block_loss", {"RING_SLOTS": 64, "NBLK": 2, "CLKS_PER_BIT": 8})


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hdr_block_random_long(tmp_path, seed: int) -> None:
    _run(tmp_path, "hdr_block_random", {"RING_SLOTS": 2048},
         {"HB_SEED": str(seed), "HB_ARRIVALS": "1500"})
