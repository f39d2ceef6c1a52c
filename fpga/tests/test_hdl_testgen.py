"""Test-pattern generators of the node top (register TEST, docs/physical-layer.md section 6),
scored against the twin (sim/twin/testgen.py is the golden model): the same commands go to the
RTL through its UART (host codec) and to a TwinModel whose clock is set to the RTL's timestamp at
each command, and every event is compared field by field.

Covered: TEST read-back (bits 7:5 read 0); DET_GEN clicks at every N-th v2 attempt (HERALD with
the generated detector, attempt and timestamp; a window too short for the click latency gives
DONE(EXHAUSTED)); HL_GEN heralds every N-th SCHEDULE_PAIRS attempt (PAIR attempt / bell / qubit /
port, DONE(COMPLETE) with the attempts fired by the last pair's record cycle; an attempt within
LOOP_GAP of the previous looped one gets no herald; exhaustion after HERALD_WAIT); HDR_GEN with
HDR_BAD (HEADER seq / slot, every 4th header malformed: ERROR(BAD_HEADER)), header spacing.

Timestamps are compared exactly (DONE included: the twin is fed each command at the RTL's
timestamp), except generated headers, compared as offsets from the first one (the generator
restarts at the RTL's register write, a few cycles after the twin takes the command); the first
header's distance from that write is checked against the twin's HDR_GEN_LAT.
"""

from __future__ import annotations

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotb_run import run_cocotb
from hostbfm import Host, skip

from hwctl.sim.twin.model import TwinConfig, TwinModel
from hwctl.sim.twin.testgen import HDR_GEN_LAT, HDR_UNIT, LOOP_GAP
from hwctl.wire import (
    Done,
    DoneReason,
    Header,
    Reg,
    RegRead,
    RegWrite,
    Schedule,
    SchedulePairs,
    encode,
)
from hwctl.wire import TestBit as TB
from hwctl.wire._spec import Message

CPB = 4
UNTIL_DONE = 2**32 - 1


def tv(*bits: TB, n: int = 1, gap: int = 1) -> int:
    v = sum(1 << b for b in bits)
    return v | (n - 1) << TB.N_LSB | (gap - 1) << TB.GAP_LSB


class Both:
    """The RTL (through the UART) and the twin (clock = the RTL's timestamp) side by side."""

    def __init__(self, dut) -> None:
        self.h = Host(dut, CPB)
        self.tw = TwinModel(TwinConfig(p_photon=0.0, uart_cycles_per_byte=0, n_ports=2,
                                       n_slots=8, event_fifo_depth=64), record=True)
        self.seq = 0

    async def cmd(self, msg: Message) -> Message:
        self.seq = (self.seq + 1) & 0xFF
        self.tw.advance_to(self.h.now())
        n = len(self.tw.tx_log)
        self.tw.feed(encode(msg, self.seq))
        want = [r.msg for r in self.tw.tx_log[n:] if r.msg.KIND != "event"]
        got = await self.h.request(msg, self.seq)
        assert [got] == want, f"{msg}: RTL {got}, twin {want}"
        return got

    async def settle(self, cycles: int) -> None:
        await skip(self.h.dut.clk_i, cycles)
        self.tw.advance_to(self.h.now())

    def events(self) -> tuple[list[Message], list[Message]]:
        return ([f.msg for f in self.h.events],
                [r.msg for r in self.tw.tx_log if r.msg.KIND == "event"])


def score(rtl: list[Message], twin: list[Message]) -> None:
    """Field-by-field comparison (headers: timestamps as offsets from the first header)."""
    assert len(rtl) == len(twin), f"RTL {rtl}\ntwin {twin}"
    h_rtl = [e.ts for e in rtl if isinstance(e, Header)]
    h_tw = [e.ts for e in twin if isinstance(e, Header)]
    for i, (a, b) in enumerate(zip(rtl, twin, strict=True)):
        assert type(a) is type(b), f"event {i}: RTL {a}, twin {b}"
        if isinstance(a, Header):
            assert (a.seq, a.slot, a.ts - h_rtl[0]) == (b.seq, b.slot, b.ts - h_tw[0]), (i, a, b)
        else:
            assert a == b, f"event {i}: RTL {a}, twin {b}"


@cocotb.test()
async def testgen_vs_twin(dut) -> None:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    b = Both(dut)
    await b.h.start()
    await b.cmd(RegWrite(Reg.TEST, 0x00FF_FFFF))
    assert (await b.cmd(RegRead(Reg.TEST))).value == 0x00FF_FF1F   # bits 7:5 read 0
    await b.cmd(RegWrite(Reg.HERALD_WAIT, 1000))
    # DET_GEN, N = 3, Psi+: attempt 2 heralds (window 4 covers the click's 3-cycle latency)
    await b.cmd(RegWrite(Reg.TEST, tv(TB.DET_GEN, n=3)))
    t0 = b.h.now() + 3000
    await b.cmd(Schedule(t0, 8, 50, 4))
    await b.settle(t0 - b.h.now() + 8 * 50 + 200)
    # window 3 is one cycle short: the generated click of attempt 2 misses it -> EXHAUSTED
    t0 = b.h.now() + 3000
    await b.cmd(Schedule(t0, 4, 50, 3))
    await b.settle(t0 - b.h.now() + 4 * 50 + 200)
    # N = 1, Psi-: attempt 0 heralds on detector 1
    await b.cmd(RegWrite(Reg.TEST, tv(TB.DET_GEN, TB.DET_SEL)))
    t0 = b.h.now() + 3000
    await b.cmd(Schedule(t0, 5, 20, 8))
    await b.settle(t0 - b.h.now() + 300)
    # HL_GEN, N = 2, Psi-: pairs on attempts 1, 3, 5 of port 1, COMPLETE with the attempts fired
    await b.cmd(RegWrite(Reg.TEST, tv(TB.HL_GEN, TB.DET_SEL, n=2)))
    t0 = b.h.now() + 3000
    await b.cmd(SchedulePairs(t0, UNTIL_DONE, 600, 3, 1))
    await b.settle(t0 - b.h.now() + 8 * 600)
    # N = 1, period 200 < LOOP_GAP: the loop takes attempts 0, 3, 6, 9 only; 6 pairs asked,
    # 10 attempts -> 4 pairs, EXHAUSTED after HERALD_WAIT
    assert 2 * 200 < LOOP_GAP <= 3 * 200
    await b.cmd(RegWrite(Reg.TEST, tv(TB.HL_GEN)))
    t0 = b.h.now() + 3000
    await b.cmd(SchedulePairs(t0, 10, 200, 6, 0))
    await b.settle(t0 - b.h.now() + 10 * 200 + 1000 + 300)
    # HDR_GEN + HDR_BAD, gap 3 * 1024: seq 0, 1, 2, BAD (3), 4, 5 on slots 0..4
    strobe: list[int] = []

    async def restart_cycle() -> None:   # the generator restarts with the register write
        await RisingEdge(dut.u_regs.test_we_o)
        strobe.append(b.h.now())

    cocotb.start_soon(restart_cycle())
    await b.cmd(RegWrite(Reg.TEST, tv(TB.HDR_GEN, TB.HDR_BAD, gap=3)))
    await b.settle(6 * 3 * 1024 + 1500)
    await b.cmd(RegWrite(Reg.TEST, 0))
    await b.settle(2000)
    rtl, twin = b.events()
    for e in rtl:
        dut._log.info("RTL %s", e)
    assert isinstance(twin[1], Done) and twin[1].reason == DoneReason.EXHAUSTED
    score(rtl, twin)
    hdrs = [e for e in rtl if isinstance(e, Header)]
    assert len(hdrs) == 5
    # the twin's first header: HDR_GEN_LAT cycles after the gap that starts at the write
    assert hdrs[0].ts - strobe[0] == 3 * HDR_UNIT + HDR_GEN_LAT, hdrs[0].ts - strobe[0]


@pytest.mark.rtl
@pytest.mark.heavy  # >= 10 s: CI only, not the quick loop
def test_testgen_vs_twin(tmp_path) -> None:
    run_cocotb(tmp_path, "top", "test_hdl_testgen", parameters={"CLKS_PER_BIT": CPB})
