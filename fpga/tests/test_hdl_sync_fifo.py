"""sync_fifo: random pushes/pops/flushes against a Python deque (registered read)."""

from __future__ import annotations

import random
from collections import deque

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotb_run import run_cocotb

AW = 2


@cocotb.test()
async def fifo_random(dut) -> None:
    rng = random.Random(6)
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    for s in (dut.wr_en_i, dut.rd_en_i, dut.flush_i, dut.din_i):
        s.value = 0
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 2)
    dut.rst_i.value = 0
    await RisingEdge(dut.clk_i)
    model: deque[int] = deque()
    for _ in range(800):
        # Drive on the falling edge, check the state after the rising edge on the next one.
        await FallingEdge(dut.clk_i)
        assert int(dut.empty_o.value) == (len(model) == 0)
        assert int(dut.full_o.value) == (len(model) == 2**AW)
        assert int(dut.count_o.value) == len(model)
        wr, rd, flush = rng.random() < 0.5, rng.random() < 0.5, rng.random() < 0.03
        din = rng.randrange(256)
        dut.wr_en_i.value, dut.rd_en_i.value, dut.flush_i.value = int(wr), int(rd), int(flush)
        dut.din_i.value = din
        popped = model[0] if rd and model else None
        pushed = wr and len(model) < 2**AW
        room = len(model) + int(pushed) < 2**AW  # this cycle's write counts, its read does not
        if popped is not None:
            model.popleft()
        if pushed:
            model.append(din)
        if flush:
            model.clear()
        else:
            # room_o: a write presented next cycle will fit (after this cycle's write)
            await ReadOnly()
            assert int(dut.room_o.value) == room
        await RisingEdge(dut.clk_i)
        await FallingEdge(dut.clk_i)
        if popped is not None:
            assert int(dut.dout_o.value) == popped
        dut.wr_en_i.value = dut.rd_en_i.value = dut.flush_i.value = 0
    dut.wr_en_i.value = dut.rd_en_i.value = 0


@pytest.mark.rtl
@pytest.mark.parametrize("lutram", [0, 1])
def test_sync_fifo(tmp_path, lutram: int) -> None:
    """Both storage styles (block RAM / LUT RAM inference) behave the same."""
    run_cocotb(tmp_path, "sync_fifo", "test_hdl_sync_fifo",
               parameters={"WIDTH": 8, "AW": AW, "LUTRAM": lutram})
