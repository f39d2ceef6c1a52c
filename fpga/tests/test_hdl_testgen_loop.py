"""test_gen's herald loop keeps crc8_frame_tx's load contract (fpga/formal/crc8_frame_tx_props.v:
``load_i`` only while ``busy_o`` is low, or in the cycle right after an accepted ``go_i``) and
never moves a frame to another herald line while it is still on the line: the loop's gap
(``LOOP_GAP``, an LFSR in fpga/rtl/test_gen.v) must always exceed a frame.

The harness proves crc8_frame_tx under that contract; nothing checked that test_gen's loop keeps
it. Here test_gen alone is driven at the densest rate (a qualifying SCHEDULE_PAIRS attempt in
every cycle, N = 1, the port alternating so each looped attempt switches the line), then with
random attempts and ports, for several bit times (the wire spec's, and the smallest ones, where
the fixed overhead matters most). Every cycle, on the module's own signals:

- ``load_i`` (``hpush_q``) comes only while the sender is idle (``busy_o`` low), or right after an
  accepted ``go_i`` (the contract's two cases);
- a looped attempt (``hloop``: the port register ``hport_q`` takes the new line) comes only when
  the previous frame has left the line entirely (the sender idle, the UART idle: its stop bit
  done), and the smallest margin (cycles the line was idle before it) is reported;
- looped attempts are at least ``LOOP_GAP`` cycles apart, and at the densest rate exactly that
  far (the gap is what the loop promises, not more);
- every looped attempt's frame is sent: one ``done_o`` per looped attempt.

Measured (every bit time 1-4): the line is idle for 26 cycles before a looped attempt at the
densest rate (LOOP_GAP = 11 x (10 x bit + 2) + 8; the frame takes 110 x bit cycles plus the
sender's few cycles of start-up). Failing-first: on a staged copy of the RTL with the gap 40
cycles short the check fails (``test_loop_gap_too_short_is_caught``, a planted bug as
fpga/tests/test_formal.py stages them).
"""

from __future__ import annotations

import random
from itertools import pairwise

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge
from cocotb_run import run_cocotb

from hwctl.sim.twin.testgen import LOOP_GAP as TWIN_LOOP_GAP
from hwctl.wire import TestBit as TB


def loop_gap(bit_cycles: int) -> int:
    """fpga/rtl/test_gen.v's LOOP_GAP (and sim/twin/testgen.py's)."""
    return 11 * (10 * bit_cycles + 2) + 8


def frame_cycles(bit_cycles: int) -> int:
    """A herald frame on the line: 11 bytes of 10 bits back to back (uart_tx B2B)."""
    return 11 * 10 * bit_cycles


class Monitor:
    def __init__(self, dut, bit_cycles: int) -> None:
        self.dut = dut
        self.hl = dut.g_hl_loop
        self.u = dut.g_hl_loop.u_hl
        self.bit_cycles = bit_cycles
        self.cycle = 0
        self.loops: list[int] = []
        self.done = 0
        self.idle_since: int | None = 0  # cycle the line last went idle (None: busy)
        self.min_margin: int | None = None
        self.errors: list[str] = []
        self.go_accepted_prev = False

    async def run(self) -> None:
        while True:
            await FallingEdge(self.dut.clk_i)  # registered values of the cycle
            self.cycle += 1
            if int(self.dut.rst_i.value) or int(self.dut.restart_i.value):
                self.go_accepted_prev = False
                continue
            load = int(self.hl.hpush_q.value)
            busy = int(self.u.send_q.value)
            go = int(self.hl.hgo_q.value)
            uart_busy = int(self.u.u_tx.busy_q.value)
            hloop = (int(self.dut.pfire_i.value) and int(self.hl.hz_q.value)
                     and int(self.hl.hfree_q.value) and (int(self.dut.test_i.value) >> TB.HL_GEN & 1))
            if load and busy and not self.go_accepted_prev:
                self.errors.append(f"cycle {self.cycle}: load_i while busy_o (frame running)")
            line_idle = not busy and not uart_busy
            if hloop:
                if not line_idle:
                    self.errors.append(f"cycle {self.cycle}: looped attempt while the previous "
                                       f"frame is on the line")
                elif self.loops and self.idle_since is not None:
                    m = self.cycle - self.idle_since
                    self.min_margin = m if self.min_margin is None else min(self.min_margin, m)
                self.loops.append(self.cycle)
            if line_idle and self.idle_since is None:
                self.idle_since = self.cycle
            elif not line_idle:
                self.idle_since = None
            self.done += int(self.u.end_q.value)
            self.go_accepted_prev = bool(go and not busy)


async def _setup(dut) -> None:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.rst_i.value = 1
    dut.restart_i.value = 0
    dut.pfire_i.value = 0
    dut.pport_i.value = 0
    dut.fire_i.value = 0
    dut.ts_i.value = 0
    dut.det_i.value = 0
    dut.hl_i.value = 3
    dut.hdr_i.value = 1
    dut.test_i.value = 1 << TB.HL_GEN  # N = 1: every attempt qualifies
    for _ in range(3):
        await RisingEdge(dut.clk_i)
    dut.rst_i.value = 0
    dut.restart_i.value = 1
    await RisingEdge(dut.clk_i)
    dut.restart_i.value = 0


async def _drive(dut, cycles: int, p_fire: float, seed: int) -> None:
    """``cycles`` cycles of SCHEDULE_PAIRS attempts (each cycle with probability ``p_fire``) on
    random ports (a looped attempt switches the line about every other time)."""
    rng = random.Random(seed)
    for k in range(cycles):
        dut.pfire_i.value = int(rng.random() < p_fire)
        dut.pport_i.value = rng.randrange(2)
        dut.ts_i.value = k * 7
        await RisingEdge(dut.clk_i)
    dut.pfire_i.value = 0


@cocotb.test()
async def herald_loop_keeps_the_load_contract(dut) -> None:
    bit_cycles = int(dut.HL_BIT_CYCLES.value)
    gap = int(dut.LOOP_GAP.value)  # the RTL's own (a planted bug changes it: see below)
    await _setup(dut)
    mon = Monitor(dut, bit_cycles)
    cocotb.start_soon(mon.run())
    # densest: a qualifying attempt in every cycle
    await _drive(dut, 12 * gap, 1.0, seed=1)
    dense = list(mon.loops)
    # then random attempts (bursts and gaps around LOOP_GAP) on random ports
    for seed, p in ((2, 0.3), (3, 0.02), (4, 4 / gap)):
        await _drive(dut, 8 * gap, p, seed)
    for _ in range(gap + 10):  # the last frame goes out
        await RisingEdge(dut.clk_i)
    assert not mon.errors, "; ".join(mon.errors[:3])
    assert mon.done == len(mon.loops), (mon.done, len(mon.loops))
    assert len(dense) >= 10, dense
    spacing = {b - a for a, b in pairwise(dense)}
    assert spacing == {gap}, f"looped attempts {sorted(spacing)} apart, LOOP_GAP {gap}"
    assert all(b - a >= gap for a, b in pairwise(mon.loops))
    assert gap == loop_gap(bit_cycles)  # the twin's figure (sim/twin/testgen.py)
    assert mon.min_margin is not None and mon.min_margin > 0
    dut._log.info("HL_BIT_CYCLES %d: LOOP_GAP %d, frame %d cycles on the line; %d looped "
                  "attempts; least idle time before a looped attempt %d cycles",
                  bit_cycles, gap, frame_cycles(bit_cycles), len(mon.loops), mon.min_margin)


@pytest.mark.rtl
@pytest.mark.heavy  # 12-25 s each: CI only, not the quick loop
# 4: the wire spec's HERALD_BIT_CYCLES; fast 1: the node's ECP5 builds' timing variant
@pytest.mark.parametrize(("bit_cycles", "fast"), [(4, 0), (1, 0), (2, 0), (3, 0), (4, 1), (1, 1)])
def test_herald_loop_gap_exceeds_a_frame(tmp_path, bit_cycles: int, fast: int) -> None:
    if bit_cycles == 4:
        assert loop_gap(4) == TWIN_LOOP_GAP
    run_cocotb(tmp_path, "test_gen", "test_hdl_testgen_loop",
               parameters={"HL_BIT_CYCLES": bit_cycles, "DET": 0, "HDR": 0, "FAST": fast})


@pytest.mark.rtl
@pytest.mark.heavy
def test_loop_gap_too_short_is_caught(tmp_path, monkeypatch) -> None:
    """The check fails on a staged copy of the RTL whose loop gap is 40 cycles short (the
    frame's 26 cycles of margin and more): a looped attempt meets the previous frame."""
    import shutil

    import cocotb_run

    rtl = tmp_path / "rtl"
    shutil.copytree(cocotb_run.RTL_DIR, rtl)
    src = (rtl / "test_gen.v").read_text()
    line = "localparam integer LOOP_GAP = 11 * (10 * HL_BIT_CYCLES + 2) + 8;"
    assert src.count(line) == 1
    (rtl / "test_gen.v").write_text(src.replace(line, line[:-1] + " - 40;"))
    monkeypatch.setattr(cocotb_run, "RTL_DIR", rtl)
    with pytest.raises(SystemExit):
        run_cocotb(tmp_path, "test_gen", "test_hdl_testgen_loop",
                   parameters={"HL_BIT_CYCLES": 4, "DET": 0, "HDR": 0})
    results = "".join(p.read_text() for p in (tmp_path / "sim_test_gen").glob("*.xml"))
    assert "while the previous frame is on the line" in results
