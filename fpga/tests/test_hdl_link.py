"""A station and two node devices on one link (fpga/tests/hdl/tb_link.v: fibre-delay models of D
cycles each way), each driven through its own UART with the host codec. All three clocks are set
with TIME_SET mode 1 and one shared sync pulse; both nodes run SCHEDULE_PAIRS for 3 pairs (node B
starts 3 attempts late: those attempts only A fired, so a click then can never herald); clicks
are injected at the station's detector pins. Both nodes must report the same pairs (attempt
cycle, Bell state), each with its own attempt index, and DONE(COMPLETE); the station reports the
same heralds and counts the one-end windows."""

from __future__ import annotations

import cocotb
import pytest
from cocotb_run import TB_DIR, run_cocotb
from hostbfm import skip
from linkbench import CPB, T0, UNTIL_DONE, D, click, hosts, one_clock, set_st_delay, start

from hwctl.wire import (
    Ack,
    Done,
    DoneReason,
    Herald,
    Opcode,
    Pair,
    Reg,
    RegRead,
    RegValue,
    SchedulePairs,
)


@cocotb.test()
async def link_both_nodes_agree(dut) -> None:
    a, b, s = hosts(dut)
    await start(dut, (a, b, s))
    # one device clock: arm TIME_SET(T0) everywhere, then one sync pulse
    assert len({a.now(), b.now(), s.now()}) == 3
    seqs = iter(range(1, 4))
    await one_clock(dut, [lambda m, h=h: h.request(m, next(seqs)) for h in (a, b, s)])
    assert a.now() == b.now() == s.now() and T0 < a.now() < T0 + 10
    dut._log.info("clocks aligned at %d", a.now())
    await set_st_delay(lambda m: s.request(m, 4))
    period = 20
    t_start = a.now() + 6000  # after the two SCHEDULE_PAIRS commands (~1300 cycles each)
    late = 3  # node B's schedule starts 3 attempts later
    assert await a.request(SchedulePairs(t_start, UNTIL_DONE, period, 3, 1), 5) == Ack(Opcode.SCHEDULE_PAIRS)
    assert await b.request(SchedulePairs(t_start + late * period, UNTIL_DONE, period, 3, 0), 6) \
        == Ack(Opcode.SCHEDULE_PAIRS)
    # clicks at the station when attempt k's markers arrive (pin cycle t_k + 1 + D): k = 1 only
    # A fired (never a herald), then heralds for k = 6 (Psi-), 9 (Psi+), 15 (Psi-)
    clicks = [(1, 0), (6, 1), (9, 0), (15, 1)]
    dut._log.info("schedules queued, t_start %d (now %d)", t_start, a.now())
    for k, det in clicks:
        await click(dut, s, t_start + k * period, det)
    dut._log.info("clicks done (now %d)", a.now())
    # the last herald reaches the nodes ~2*D + 440 (frame) + 40 (matcher) cycles after its
    # attempt
    await skip(dut.clk_i, 4 * D + 1000)
    # (events then take ~800 cycles each through the 4-cycle-per-bit UART)
    await a.wait_events(4, timeout=20_000, step=64)
    await b.wait_events(4, timeout=20_000, step=64)
    await s.wait_events(3, timeout=20_000, step=64)
    pa = [e.msg for e in a.events]
    pb = [e.msg for e in b.events]
    heralded = [(6, 1), (9, 0), (15, 1)]
    assert pa[:3] == [Pair(t_start + k * period, k, bell, q, 1)
                      for q, (k, bell) in enumerate(heralded)]
    assert pb[:3] == [Pair(t_start + k * period, k - late, bell, q, 0)
                      for q, (k, bell) in enumerate(heralded)]
    # the check the node service makes: both ends hold the same pairs (attempt cycle, Bell state)
    assert [(p.ts, p.bell) for p in pa[:3]] == [(p.ts, p.bell) for p in pb[:3]]
    assert isinstance(pa[3], Done) and pa[3].reason == DoneReason.COMPLETE
    assert isinstance(pb[3], Done) and pb[3].reason == DoneReason.COMPLETE
    # node B fired `late` attempts fewer; both stopped within a period of each other
    assert pa[3].attempts - pb[3].attempts == late
    assert [e.msg for e in s.events] == [Herald(t_start + k * period, bell, i)
                                         for i, (k, bell) in enumerate(heralded)]
    # attempts 0..late-1 were one-end windows at the station (A only); CNT_MARKS: every marker
    assert await s.request(RegRead(Reg.CNT_ONE_END), 7) == RegValue(Reg.CNT_ONE_END, late)
    marks = pa[3].attempts + pb[3].attempts
    assert await s.request(RegRead(Reg.CNT_MARKS), 8) == RegValue(Reg.CNT_MARKS, marks)
    assert await a.request(RegRead(Reg.ERR_HERALD), 9) == RegValue(Reg.ERR_HERALD, 0)
    assert await b.request(RegRead(Reg.ERR_HERALD), 10) == RegValue(Reg.ERR_HERALD, 0)
    assert not (a.errors or b.errors or s.errors)


@pytest.mark.rtl
@pytest.mark.heavy  # >= 10 s: CI only, not the quick loop
def test_link(tmp_path) -> None:
    run_cocotb(tmp_path, "tb_link", "test_hdl_link", parameters={"D": D, "CPB": CPB},
               extra_sources=[TB_DIR / "tb_link.v"])
