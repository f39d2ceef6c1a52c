"""station_top: the heralding station as its own device through its UART with the host codec:
ID / VERSION / ST_DELAY / ST_WINDOW registers, node commands refused as unknown opcodes, markers
and clicks on the pins -> HERALD events (ts = attempt cycle, detector = Bell state, attempt =
herald count) and herald frames on both lines (decoded from the pins), counters (CNT_HERALD,
CNT_ONE_END, CNT_BOTH, CNT_DARK, CNT_MARKS), queue drops (CNT_HL_DROP), CLEAR_COUNTERS."""

from __future__ import annotations

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotb_run import run_cocotb
from hostbfm import Host
from stationref import ST_IN_LAT

from hwctl.sim.uartbfm import UartMonitor
from hwctl.wire import (
    STATION_ID,
    WIRE_VERSION,
    Abort,
    Ack,
    ErrorCode,
    Herald,
    Nak,
    Opcode,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    SchedulePairs,
    Time,
    TimeValue,
    crc8,
)

CPB = 4
HL = 4
TS_INIT = 2**32 - 40_000


def frames(data: bytes) -> list[tuple[int, int]]:
    assert len(data) % 11 == 0, data.hex()
    out = []
    for i in range(0, len(data), 11):
        f = data[i:i + 11]
        assert f[0] == 0xA5 and crc8(f[1:10]) == f[10]
        out.append((int.from_bytes(f[1:9], "big"), f[9]))
    return out


@cocotb.test()
async def station_top_link(dut) -> None:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    host = Host(dut, CPB, ts=dut.u_ts.ts_o)
    dut.uart_rx_i.value = 1
    dut.mark_i.value = 0
    dut.det_i.value = 0
    dut.sync_i.value = 0
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 20)
    dut.rst_i.value = 0
    await ClockCycles(dut.clk_i, 5)
    host.listen()
    lines = [UartMonitor(dut.clk_i, dut.hl_o[i], HL, strict=True) for i in range(2)]
    for m in lines:
        cocotb.start_soon(m.run())
    rq = host.request
    assert await rq(RegRead(Reg.ID), 1) == RegValue(Reg.ID, STATION_ID)
    assert await rq(RegRead(Reg.VERSION), 2) == RegValue(Reg.VERSION, WIRE_VERSION)
    assert await rq(RegRead(Reg.ST_WINDOW), 3) == RegValue(Reg.ST_WINDOW, 2)
    assert await rq(RegRead(Reg.SLOTS_FREE), 4) == Nak(Opcode.REG_READ, ErrorCode.BAD_REG)
    assert await rq(Abort(), 5) == Nak(Opcode.ABORT, ErrorCode.BAD_OPCODE)
    assert await rq(SchedulePairs(1, 1, 2, 1, 0), 6) == Nak(Opcode.SCHEDULE_PAIRS, ErrorCode.BAD_OPCODE)
    tv = await rq(Time(), 7)
    assert isinstance(tv, TimeValue) and TS_INIT < tv.ts < host.now()
    delay = 1003
    assert await rq(RegWrite(Reg.ST_DELAY, delay), 8) == Ack(Opcode.REG_WRITE)
    assert await rq(RegWrite(Reg.ST_WINDOW, 3), 9) == Ack(Opcode.REG_WRITE)
    assert await rq(RegRead(Reg.ST_DELAY), 10) == RegValue(Reg.ST_DELAY, delay)

    async def play(evs: list[tuple[int, int, int]]) -> None:
        """Pins, one cycle per event, so that the edges are stamped at the given ts."""
        per: dict[int, tuple[int, int]] = {}
        for ts, m, d in evs:
            pm, pd = per.get(ts - ST_IN_LAT, (0, 0))
            per[ts - ST_IN_LAT] = (pm | m, pd | d)
        first, last = min(per), max(per)
        assert host.now() < first - 1
        await ClockCycles(dut.clk_i, first - host.now() - 1)
        for c in range(first, last + 1):
            dut.mark_i.value, dut.det_i.value = per.get(c, (0, 0))
            await ClockCycles(dut.clk_i, 1)
        dut.mark_i.value = 0
        dut.det_i.value = 0

    # herald (both ends, detector 1 a cycle later), one end, both detectors, a dark click, and
    # a herald with ends skewed by 2 (window 3)
    t0 = host.now() + 200
    await play([(t0, 3, 0), (t0 + 1, 0, 2), (t0 + 20, 1, 1), (t0 + 40, 3, 3), (t0 + 60, 0, 1),
                (t0 + 80, 1, 0), (t0 + 82, 2, 1)])
    ev = await host.wait_events(2)
    assert [e.msg for e in ev] == [Herald(t0 - delay, 1, 0), Herald(t0 + 80 - delay, 0, 1)]
    await ClockCycles(dut.clk_i, 2 * 11 * 10 * HL + 50)
    for m in lines:
        assert frames(bytes(m.data)) == [(t0 - delay, 1), (t0 + 80 - delay, 0)]
    want = {Reg.CNT_HERALD: 2, Reg.CNT_ONE_END: 1, Reg.CNT_BOTH: 1, Reg.CNT_DARK: 1,
            Reg.CNT_MARKS: 7, Reg.CNT_HL_DROP: 0}
    for seq, (reg, v) in enumerate(want.items(), start=11):
        assert await rq(RegRead(reg), seq) == RegValue(reg, v), reg
    # five heralds in a burst: one being sent + 2 queued per line, 2 dropped (counted once each)
    assert await rq(RegWrite(Reg.ST_WINDOW, 1), 20) == Ack(Opcode.REG_WRITE)
    n0 = [len(m.data) for m in lines]
    t1 = host.now() + 200
    await play([(t1 + 3 * k, 3, 1) for k in range(5)])
    await host.wait_events(7)
    assert [e.msg.ts for e in host.events[2:]] == [t1 + 3 * k - delay for k in range(5)]
    assert [e.msg.attempt for e in host.events] == list(range(7))
    await ClockCycles(dut.clk_i, 4 * 11 * 10 * HL + 50)
    for m, n in zip(lines, n0, strict=True):
        assert frames(bytes(m.data[n:])) == [(t1 + 3 * k - delay, 0) for k in range(3)]
    assert await rq(RegRead(Reg.CNT_HL_DROP), 21) == RegValue(Reg.CNT_HL_DROP, 2)
    # CLEAR_COUNTERS
    assert await rq(RegWrite(Reg.CONTROL, 0b111), 22) == Ack(Opcode.REG_WRITE)
    for seq, reg in enumerate(want, start=23):
        assert await rq(RegRead(reg), seq) == RegValue(reg, 0), reg
    assert not host.errors


@pytest.mark.rtl
@pytest.mark.heavy  # >= 10 s: CI only, not the quick loop
# FIFO_LUTRAM 1: the ECP5 build's station (LUT RAM queues, event_arb's mux tree, the FAST variants
# of ts_counter / uart_tx)
@pytest.mark.parametrize("fifo_lutram", [0, 1], ids=["ice40", "ecp5"])
def test_station_top(tmp_path, fifo_lutram: int) -> None:
    run_cocotb(tmp_path, "station_top", "test_hdl_station_top",
               parameters={"CLKS_PER_BIT": CPB, "HL_BIT_CYCLES": HL, "TS_INIT": TS_INIT,
                           "FIFO_LUTRAM": fifo_lutram})
