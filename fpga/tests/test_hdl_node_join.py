"""CONTROL.LATE_JOIN in the node top (docs/physical-layer.md section 5, wire spec
``[control_bits]``), scored against the twin's node model (sim/twin/model.py ``_pump``): a
SCHEDULE_PAIRS that reaches the FIFO head after its t_start joins its attempt grid at the next
grid point instead of reporting LATE, PAIR attempts still count from the commanded t_start, and
LATE only when no attempt of the schedule is left.

Cases: schedule on time, late by less than a period, late by many periods (until done and a
finite count that then runs out: DONE(EXHAUSTED) with the attempts left), late past its last
attempt (LATE), LATE_JOIN off (LATE as before), heralds for joined and for skipped attempts, and
randomized rounds (period 2..300, lateness around the check cycle and up to many periods).

The RTL is driven through its UART (host codec) and hl_i pins; each input is replayed into a
TwinModel at the cycle it takes effect in the RTL (named pipeline latencies, fpga/README.md
"RTL latencies"):
- SCHEDULE_PAIRS: the RTL checks an entry SCHED_CHECK_LAT cycles after its push (probed:
  u_psched.push_i) when idle; an entry late at that check with LATE_JOIN set is checked again
  JOIN_LAT cycles later (after the join computation), the cycle the twin is given it (its
  "now" for the join point and for LATE);
- a herald frame: MATCH_LAT cycles after its last stop bit (test_hdl_node_twin);
- other commands: the cycle their frame starts (nothing depends on their exact cycle here).
Every event (PAIR / DONE / LATE / ERROR) is compared field by field, and the trigger pins with
the twin's fire programs (``export_programs``).
"""

from __future__ import annotations

import os
import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotb_run import run_cocotb
from hostbfm import skip
from test_hdl_node import CPB, TS_INIT, Node
from test_hdl_node_twin import MATCH_LAT
from twin_oracle import SCHED_CHECK_LAT

from hwctl.sim.twin.model import TwinConfig, TwinModel
from hwctl.wire import (
    Abort,
    ControlBit,
    Done,
    Late,
    Pair,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    SchedulePairs,
    encode,
)
from hwctl.wire._spec import Message

UNTIL_DONE = 2**32 - 1
#: cycles from an entry's first check (late) to its second check after the join computation
#: (pair_sched.v: JN + 6; 48 before the ninth session's two-cycle division step)
JOIN_LAT = 78
CTRL = (1 << ControlBit.HERALD_EN) | (1 << ControlBit.HEADER_EN)
CTRL_LJ = CTRL | (1 << ControlBit.LATE_JOIN)


class Joiner(Node):
    def __init__(self, dut) -> None:
        super().__init__(dut)
        self.inputs: list[tuple[int, int, str, object]] = []  # (cycle, order, kind, arg)
        self.seq = 0
        self.pushes: list[int] = []
        self.aborts: list[int] = []
        self.joins: list[int] = []   # cycles the RTL entered its join computation
        self.lj = False

    async def start(self, rst_cycles: int = 20) -> None:
        await super().start(rst_cycles)
        cocotb.start_soon(self._mon(self.dut.g_pairs.u_psched.push_i, self.pushes))
        cocotb.start_soon(self._mon(self.dut.u_dec.abort_o, self.aborts))
        cocotb.start_soon(self._mon(self.dut.g_pairs.u_psched.st_join_q, self.joins))

    async def _mon(self, sig, out: list[int]) -> None:
        while True:
            await RisingEdge(sig)
            await ReadOnly()
            out.append(self.now())

    async def cmd(self, msg: Message) -> Message:
        self.seq = (self.seq + 1) & 0xFF
        t = self.now()
        n_push, n_ab = len(self.pushes), len(self.aborts)
        got = await self.request(msg, self.seq)
        if isinstance(msg, SchedulePairs):
            assert len(self.pushes) == n_push + 1
            check = self.pushes[-1] + SCHED_CHECK_LAT  # the RTL is idle at every push here
            t = check + (JOIN_LAT if self.lj and msg.t_start < check else 0)
        elif isinstance(msg, Abort):
            assert len(self.aborts) == n_ab + 1
            t = self.aborts[-1]
        elif isinstance(msg, RegWrite) and msg.addr == Reg.CONTROL:
            self.lj = bool(msg.value >> ControlBit.LATE_JOIN & 1)
        self.inputs.append((t, len(self.inputs), "cmd", (msg, self.seq)))
        return got

    async def send_herald(self, port: int, t: int, bell: int) -> None:
        await self.herald(port, t, bell)
        self.inputs.append((self.now() + MATCH_LAT, len(self.inputs), "her", (port, t, bell)))

    async def idle(self) -> None:
        """Wait until no SCHEDULE_PAIRS entry runs (each case starts on an idle scheduler)."""
        while int(self.dut.g_pairs.u_psched.running_o.value):
            await ClockCycles(self.dut.clk_i, 16)
        await ClockCycles(self.dut.clk_i, 200)   # the last events leave


def twin_run(inputs, end: int) -> tuple[list[Message], dict[int, list[int]]]:
    """The twin's events and, per port, the cycles its schedules fired."""
    tw = TwinModel(TwinConfig(p_photon=0.0, uart_cycles_per_byte=0, n_ports=2,
                              event_fifo_depth=64), record=True)
    tw.export_programs = True
    for cyc, _, kind, arg in sorted(inputs):
        tw.advance_to(cyc)
        if kind == "cmd":
            msg, seq = arg
            tw.feed(encode(msg, seq))
        else:
            port, t, bell = arg
            tw.inject_herald(port, t, bell)
    tw.advance_to(end)
    events = [r.msg for r in tw.tx_log if r.msg.KIND == "event"]
    dones = [e for e in events if isinstance(e, Done)]
    starts = [p for p in tw.programs if p.kind == "start"]
    assert len(starts) == len(dones), (starts, dones)
    fires: dict[int, list[int]] = {0: [], 1: []}
    for p, d in zip(starts, dones, strict=True):
        fires[p.port] += [p.t_start + k * p.period for k in range(d.attempts)]
    return events, fires


def score(dut, node: Joiner) -> list[Message]:
    rtl = node.evs(0)
    twin, fires = twin_run(node.inputs, node.now())
    for e in rtl:
        dut._log.info("RTL  %s", e)
    for e in twin:
        dut._log.info("twin %s", e)
    for i, (a, b) in enumerate(zip(rtl, twin, strict=False)):
        assert a == b, f"event {i}: RTL {a}, twin {b}"
    assert len(rtl) == len(twin), (len(rtl), len(twin))
    for p in (0, 1):
        assert node.trigs[p] == fires[p], f"port {p}: RTL fired {len(node.trigs[p])}, twin {len(fires[p])}"
    assert not node.errors
    return rtl


async def setup(dut) -> Joiner:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    node = Joiner(dut)
    await node.start()
    return node


def fired_attempts(node: Joiner, port: int, n0: int) -> list[int]:
    """Fire cycles of ``port`` since index ``n0`` of the trigger record."""
    return node.trigs[port][n0:]


@cocotb.test()
async def node_late_join_cases(dut) -> None:
    node = await setup(dut)
    assert await node.cmd(RegRead(Reg.CONTROL)) == RegValue(Reg.CONTROL, CTRL)
    await node.cmd(RegWrite(Reg.CONTROL, CTRL_LJ))
    assert await node.cmd(RegRead(Reg.CONTROL)) == RegValue(Reg.CONTROL, CTRL_LJ)
    await node.cmd(RegWrite(Reg.HERALD_WAIT, 500))

    # on time: fires from t_start, attempts numbered from it
    n0 = len(node.trigs[0])
    t0 = node.now() + 3000
    await node.cmd(SchedulePairs(t0, 40, 40, 2, 0))
    await skip(dut.clk_i, t0 + 10 * 40 - node.now())
    await node.send_herald(0, t0 + 3 * 40, 1)
    await node.send_herald(0, t0 + 7 * 40, 0)
    await node.idle()
    assert fired_attempts(node, 0, n0)[0] == t0

    # late by less than a period: joins at t_start + period; a herald for the skipped attempt 0
    # is refused, the joined attempt 1 pairs as attempt 1
    period = 4000
    n0 = len(node.trigs[1])
    t0 = node.now() - 5
    await node.cmd(SchedulePairs(t0, UNTIL_DONE, period, 2, 1))
    await skip(dut.clk_i, t0 + 2 * period + 10 - node.now())
    assert fired_attempts(node, 1, n0)[:2] == [t0 + period, t0 + 2 * period]
    await node.send_herald(1, t0, 0)
    await node.send_herald(1, t0 + period, 1)
    await node.send_herald(1, t0 + 2 * period, 0)
    await node.idle()

    # late by many periods, until done: attempts count from the commanded t_start
    period = 37
    n0 = len(node.trigs[0])
    t0 = node.now() - 123_457
    await node.cmd(SchedulePairs(t0, UNTIL_DONE, period, 3, 0))
    await skip(dut.clk_i, 400)
    f = fired_attempts(node, 0, n0)
    assert f and (f[0] - t0) % period == 0 and (f[0] - t0) // period > 3000
    await node.send_herald(0, f[1], 1)
    await node.send_herald(0, f[0] - period, 0)   # skipped by the join: refused
    await node.send_herald(0, f[4], 0)
    await node.cmd(Abort())
    await node.idle()

    # late by many periods with a finite count: the attempts left run out (EXHAUSTED)
    period = 50
    t0 = node.now() - 20_000
    n0 = len(node.trigs[1])
    await node.cmd(SchedulePairs(t0, 20_000 // period + 40, period, 6, 1))
    await skip(dut.clk_i, 600)
    f = fired_attempts(node, 1, n0)
    await node.send_herald(1, f[2], 1)
    await node.idle()

    # late past its last attempt: LATE (at the second check)
    t0 = node.now() - 100_000
    await node.cmd(SchedulePairs(t0, 5, 30, 1, 0))
    await node.idle()

    # LATE_JOIN off: LATE at the first check, as before
    await node.cmd(RegWrite(Reg.CONTROL, CTRL))
    t0 = node.now() - 5
    await node.cmd(SchedulePairs(t0, UNTIL_DONE, 4000, 1, 0))
    await node.idle()
    # and on again: a second entry after a finished one joins too
    await node.cmd(RegWrite(Reg.CONTROL, CTRL_LJ))
    t0 = node.now() - 1000
    await node.cmd(SchedulePairs(t0, 600, 7, 1, 0))
    await node.idle()

    await skip(dut.clk_i, 3000)    # the last events leave the UART
    rtl = score(dut, node)
    lates = [e for e in rtl if isinstance(e, Late)]
    assert len(lates) == 2, lates
    assert sum(isinstance(e, Pair) for e in rtl) >= 6
    assert {d.reason for d in rtl if isinstance(d, Done)} == {0, 1, 2}  # exhausted, aborted, complete


@cocotb.test()
async def node_late_join_random(dut) -> None:
    seed = int(os.environ.get("HWCTL_NODE_SEED", "1"))
    rng = random.Random(seed)
    dut._log.info("seed %d", seed)
    node = await setup(dut)
    await node.cmd(RegWrite(Reg.CONTROL, CTRL_LJ))
    await node.cmd(RegWrite(Reg.HERALD_WAIT, 300))
    for _ in range(int(os.environ.get("HWCTL_NODE_ROUNDS", "10"))):
        period = rng.choice([2, 3, rng.randrange(2, 40), rng.randrange(40, 300)])
        port = rng.randrange(2)
        pairs = rng.randrange(1, 4)
        # lateness at the push: from on time (ahead of the check) to many periods late; the
        # command frame takes ~1300 cycles at CPB 4, so "-1400..-1200" lands around the check
        late = rng.choice([rng.randrange(-1400, -1200), rng.randrange(0, 3 * period + 1),
                           rng.randrange(0, 200_000)])
        t0 = node.now() - late
        count = UNTIL_DONE if rng.random() < 0.5 else max(1, rng.randrange(1, 60) + late // period)
        n0 = len(node.trigs[port])
        await node.cmd(SchedulePairs(t0, count, period, pairs, port))
        await skip(dut.clk_i, rng.randrange(100, 400))
        f = fired_attempts(node, port, n0)
        for _ in range(rng.randrange(0, 4)):
            f = fired_attempts(node, port, n0)
            if not f:
                break
            pick = rng.choice(f[-6:])
            if rng.random() < 0.2:
                pick -= period * rng.randrange(1, 4)   # maybe skipped by the join
            await node.send_herald(port, pick, rng.randrange(2))
        if count == UNTIL_DONE or rng.random() < 0.3:
            await node.cmd(Abort())
        await node.idle()
    await skip(dut.clk_i, 3000)    # the last events leave the UART
    rtl = score(dut, node)
    dut._log.info("%d joins, %d events", len(node.joins), len(rtl))
    assert len(node.joins) >= 3      # the rounds exercised the join (and the twin agreed)


@pytest.mark.rtl
@pytest.mark.timeout(3600)  # bounds a hang only
@pytest.mark.parametrize("case", ["node_late_join_cases", "node_late_join_random"])
@pytest.mark.heavy  # >= 10 s: CI only, not the quick loop
def test_node_late_join(tmp_path, case: str) -> None:
    run_cocotb(tmp_path, "top", "test_hdl_node_join", parameters={"CLKS_PER_BIT": CPB, "TS_INIT": TS_INIT},
               testcase=case)
