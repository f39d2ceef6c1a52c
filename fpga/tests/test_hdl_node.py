"""Node device top (wire v3, docs/physical-layer.md section 3) through its UART with the host codec:
SCHEDULE_PAIRS firing trig_o[port] on the grid, heralds driven on hl_i[port] as station frames,
PAIR events with qubit indices, DONE(COMPLETE / EXHAUSTED / ABORTED) with the attempts actually
fired (counted on the pin), BAD_HERALD for heralds the running schedule did not fire (not fired
yet, off the grid, wrong port, no schedule, after the end) and for bad CRC, LATE, the argument
NAKs, the v3 registers, and TIME_SET in both modes (counter jump measured on the counter)."""

from __future__ import annotations

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, ValueChange
from cocotb_run import run_cocotb
from hostbfm import Host

from hwctl.wire import (
    Abort,
    Ack,
    Done,
    DoneReason,
    Error,
    ErrorCode,
    Late,
    Nak,
    Opcode,
    Pair,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    SchedulePairs,
    Time,
    TimeSet,
    TimeValue,
    crc8,
)

CPB = 4
HL_BIT = 4
HL_MARKER = 0xA5
TS_INIT = 2**32 - 30_000
UNTIL_DONE = 2**32 - 1
#: TIME_SET: the counter reads the value TSET_LAT cycles after the decoder's strobe (mode 0);
#: SYNC_LAT cycles after the sync_i pin rises (mode 1)
SYNC_LAT = 4


def herald_frame(t: int, bell: int, *, bad_crc: bool = False) -> bytes:
    body = (t % 2**64).to_bytes(8, "big") + bytes((bell,))
    return bytes((HL_MARKER,)) + body + bytes((crc8(body) ^ (1 if bad_crc else 0),))


class Node(Host):
    """Host BFM + herald line drivers + a trigger monitor (cycles of trig_o[p] rising)."""

    def __init__(self, dut) -> None:
        super().__init__(dut, CPB)
        self.hl = 0
        self.trigs: dict[int, list[int]] = {0: [], 1: []}

    async def start(self, rst_cycles: int = 20) -> None:
        await super().start(rst_cycles)
        self.hl = (1 << len(self.dut.hl_i)) - 1
        cocotb.start_soon(self._trig_mon())

    async def _trig_mon(self) -> None:
        # woken by pin changes only (a per-cycle coroutine would dominate the run time)
        while True:
            await ValueChange(self.dut.trig_o)
            await ReadOnly()
            v = int(self.dut.trig_o.value)
            for p in self.trigs:
                if v >> p & 1:
                    # trig_o is registered: the attempt's cycle is the one before
                    self.trigs[p].append(self.now() - 1)

    async def herald(self, port: int, t: int, bell: int, *, bad_crc: bool = False) -> None:
        for byte in herald_frame(t, bell, bad_crc=bad_crc):
            for b in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                self.hl = (self.hl & ~(1 << port)) | (b << port)
                self.dut.hl_i.value = self.hl
                await ClockCycles(self.dut.clk_i, HL_BIT)

    async def wait_events(self, n: int, timeout: int = 50000, step: int = 16) -> list:
        return await super().wait_events(n, timeout, step)

    def evs(self, n0: int) -> list:
        return [f.msg for f in self.events[n0:]]


async def setup(dut) -> Node:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    node = Node(dut)
    await node.start()
    return node


async def wait_until(node: Node, t: int) -> None:
    """Return once the timestamp has passed ``t``."""
    if node.now() <= t:
        await ClockCycles(node.dut.clk_i, t - node.now() + 1)


@cocotb.test()
async def node_pairs_complete(dut) -> None:
    node = await setup(dut)
    rq = node.request
    assert await rq(RegRead(Reg.QUBITS), 1) == RegValue(Reg.QUBITS, 6)
    assert await rq(RegRead(Reg.N_PORTS), 2) == RegValue(Reg.N_PORTS, 2)
    assert await rq(RegRead(Reg.HERALD_WAIT), 3) == RegValue(Reg.HERALD_WAIT, 4000)
    # argument NAKs
    t0 = node.now() + 10**6
    for seq, msg in enumerate([
        SchedulePairs(t0, 0, 10, 1, 0), SchedulePairs(t0, 5, 1, 1, 0),
        SchedulePairs(t0, 5, 10, 0, 0), SchedulePairs(t0, 5, 10, 7, 0),
        SchedulePairs(t0, 5, 10, 1, 2), TimeSet(5, 2)], start=4):
        assert await rq(msg, seq) == Nak(msg.OPCODE, ErrorCode.BAD_ARG), msg
    # a schedule on port 1, period 20, 3 pairs, until done
    n0 = len(node.events)
    period = 20
    t_start = node.now() + 3000
    assert await rq(SchedulePairs(t_start, UNTIL_DONE, period, 3, 1), 10) == Ack(Opcode.SCHEDULE_PAIRS)
    assert await rq(RegRead(Reg.STATUS), 11) == RegValue(Reg.STATUS, 1)
    # heralds: attempt 4 (Psi+), a herald for an attempt not fired yet (BAD), attempt 30 off the
    # grid (BAD), wrong port (BAD), bad CRC (BAD), attempt 31 (Psi-), attempt 40 (Psi+): done
    await wait_until(node, t_start + 10 * period)
    await node.herald(1, t_start + 4 * period, 0)
    await node.herald(1, t_start + 10_000 * period, 0)
    await wait_until(node, t_start + 45 * period)
    await node.herald(1, t_start + 30 * period + 1, 1)
    await node.herald(0, t_start + 30 * period, 1)
    await node.herald(1, t_start + 30 * period, 1, bad_crc=True)
    await node.herald(1, t_start + 31 * period, 1)
    await wait_until(node, t_start + 100 * period)
    await node.herald(1, t_start + 40 * period, 0)
    await node.wait_events(n0 + 8)
    await ClockCycles(dut.clk_i, 50 * period)
    fired = node.trigs[1]
    assert node.trigs[0] == []
    assert fired == [t_start + k * period for k in range(len(fired))], fired[:5]
    evs = node.evs(n0)
    done = evs[-1]
    assert isinstance(done, Done) and done.reason == DoneReason.COMPLETE
    assert done.attempts == len(fired)          # every attempt fired, none after the DONE
    assert t_start + 100 * period < done.ts < fired[-1] + period
    assert evs[:-1] == [
        Pair(t_start + 4 * period, 4, 0, 0, 1),
        Error(ErrorCode.BAD_HERALD, 1),
        Error(ErrorCode.BAD_HERALD, 2),
        Error(ErrorCode.BAD_HERALD, 3),
        Error(ErrorCode.BAD_HERALD, 4),
        Pair(t_start + 31 * period, 31, 1, 1, 1),
        Pair(t_start + 40 * period, 40, 0, 2, 1),
    ], evs
    assert await rq(RegRead(Reg.CNT_PAIRS), 12) == RegValue(Reg.CNT_PAIRS, 3)
    assert await rq(RegRead(Reg.ERR_HERALD), 13) == RegValue(Reg.ERR_HERALD, 4)
    assert await rq(RegRead(Reg.CNT_ATTEMPTS), 14) == RegValue(Reg.CNT_ATTEMPTS, len(fired))
    assert await rq(RegRead(Reg.STATUS), 15) == RegValue(Reg.STATUS, 0)
    # a herald after the schedule ended (a real attempt of it) is refused
    await node.herald(1, t_start + 41 * period, 0)
    await node.wait_events(n0 + 9)
    assert node.evs(n0 + 8) == [Error(ErrorCode.BAD_HERALD, 5)]
    # LATE: nothing fires
    n0 = len(node.events)
    assert await rq(SchedulePairs(node.now() - 5, 10, 5, 1, 0), 16) == Ack(Opcode.SCHEDULE_PAIRS)
    ev = (await node.wait_events(n0 + 1))[-1].msg
    assert isinstance(ev, Late)
    assert node.trigs[0] == []
    assert not node.errors


@cocotb.test()
async def node_pairs_abort_and_exhaust(dut) -> None:
    node = await setup(dut)
    rq = node.request
    period = 7
    # ABORT mid-way, after one pair: DONE(ABORTED, attempts fired), later heralds refused
    n0 = len(node.events)
    t_start = node.now() + 2500
    assert await rq(SchedulePairs(t_start, UNTIL_DONE, period, 6, 0), 1) == Ack(Opcode.SCHEDULE_PAIRS)
    await wait_until(node, t_start + 20 * period)
    await node.herald(0, t_start + 3 * period, 1)
    await node.wait_events(n0 + 1)
    assert node.evs(n0) == [Pair(t_start + 3 * period, 3, 1, 0, 0)]
    assert await rq(Abort(), 2) == Ack(Opcode.ABORT)
    ev = (await node.wait_events(n0 + 2))[-1].msg
    await ClockCycles(dut.clk_i, 10 * period)
    fired = node.trigs[0]
    assert fired == [t_start + k * period for k in range(len(fired))]
    assert isinstance(ev, Done) and ev.reason == DoneReason.ABORTED
    assert ev.attempts == len(fired) and ev.ts >= fired[-1]
    await node.herald(0, t_start + 5 * period, 1)
    await node.wait_events(n0 + 3)
    assert node.evs(n0 + 2) == [Error(ErrorCode.BAD_HERALD, 1)]
    # exhaustion: 12 attempts, HERALD_WAIT 600; a herald for the last attempt arriving inside
    # the wait still counts; DONE(EXHAUSTED) at t_last + HERALD_WAIT
    assert await rq(RegWrite(Reg.HERALD_WAIT, 600), 3) == Ack(Opcode.REG_WRITE)
    n0 = len(node.events)
    node.trigs[0].clear()
    t_start = node.now() + 2500
    count = 12
    assert await rq(SchedulePairs(t_start, count, period, 2, 0), 4) == Ack(Opcode.SCHEDULE_PAIRS)
    t_last = t_start + (count - 1) * period
    await wait_until(node, t_last + 2)
    await node.herald(0, t_last, 0)
    evs = [f.msg for f in await node.wait_events(n0 + 2)][n0:]
    assert node.trigs[0] == [t_start + k * period for k in range(count)]
    assert evs == [Pair(t_last, count - 1, 0, 0, 0), Done(t_last + 600, count, DoneReason.EXHAUSTED)]
    assert await rq(RegRead(Reg.CNT_PAIRS), 5) == RegValue(Reg.CNT_PAIRS, 2)
    assert not node.errors


@cocotb.test()
async def node_time_set(dut) -> None:
    node = await setup(dut)
    rq = node.request
    jumps: list[tuple[int, int]] = []  # (cycle index, new value) where ts did not step by 1

    async def watch() -> None:
        prev = node.now()
        c = 0
        while True:
            await RisingEdge(dut.clk_i)
            c += 1
            cur = node.now()
            if cur != prev + 1:
                jumps.append((c, cur))
            prev = cur

    cocotb.start_soon(watch())
    # mode 0: the counter jumps to the value (once), TIME reads on from it
    target = 5 * 2**32 - 100
    assert await rq(TimeSet(target, 0), 1) == Ack(Opcode.TIME_SET)
    assert [v for _, v in jumps] == [target]
    tv = await rq(Time(), 2)
    assert isinstance(tv, TimeValue) and target < tv.ts < target + 5000
    assert int(dut.u_core.ts4_o.value) == node.now() + 4
    # mode 1: armed, nothing moves until sync_i rises; then the value SYNC_LAT cycles later
    target2 = 2**40 + 7
    assert await rq(TimeSet(target2, 1), 3) == Ack(Opcode.TIME_SET)
    await ClockCycles(dut.clk_i, 500)
    assert len(jumps) == 1
    c0 = 0  # rising edges since the pin rose

    async def count_edges() -> None:
        nonlocal c0
        while True:
            await RisingEdge(dut.clk_i)
            c0 += 1

    cocotb.start_soon(count_edges())
    dut.sync_i.value = 1
    await ClockCycles(dut.clk_i, 20)
    dut.sync_i.value = 0
    assert len(jumps) == 2 and jumps[1][1] == target2
    # the counter reads the value SYNC_LAT edges after the pin rose
    ts_after = node.now()
    assert ts_after == target2 + c0 - SYNC_LAT, (ts_after, target2, c0)
    # the scheduler's second counter (ts + 4) moved with it
    assert int(dut.u_core.ts4_o.value) == ts_after + 4
    # and a schedule on the new time base fires on its grid
    t_start = node.now() + 2000
    assert await rq(SchedulePairs(t_start, 3, 5, 1, 1), 4) == Ack(Opcode.SCHEDULE_PAIRS)
    await ClockCycles(dut.clk_i, t_start + 20 - node.now())
    assert node.trigs[1] == [t_start, t_start + 5, t_start + 10]
    # a second sync edge does nothing (disarmed)
    dut.sync_i.value = 1
    await ClockCycles(dut.clk_i, 10)
    dut.sync_i.value = 0
    await ClockCycles(dut.clk_i, 10)
    assert len(jumps) == 2
    assert not node.errors


@pytest.mark.rtl
@pytest.mark.parametrize("case", ["node_pairs_complete", "node_pairs_abort_and_exhaust",
                                  "node_time_set"])
@pytest.mark.heavy  # >= 10 s: CI only, not the quick loop
def test_node_top(tmp_path, case: str) -> None:
    run_cocotb(tmp_path, "top", "test_hdl_node",
               parameters={"CLKS_PER_BIT": CPB, "HDR_BIT_CYCLES": 4, "TS_INIT": TS_INIT,
                           "HL_BIT_CYCLES": HL_BIT}, testcase=case)
