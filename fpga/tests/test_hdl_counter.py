"""ts_counter: 64-bit split-carry timestamp counter, including the low-word wrap.

The carries into bits 47:32 and 63:48 are predicted from registered per-nibble flags (and a
registered "bits 47:32 == 0xFFFF" flag) ahead of the wrap, so the reset and load values right
before the 2^32 wrap, before a 2^48 carry (the flags must start consistent with INIT / the loaded
value) and the full 2^64 wrap are tested as well.
"""

from __future__ import annotations

import os

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb_run import run_cocotb

#: reset values: a few cycles before the low-word wrap, each of the last cycles before it (the
#: carry flags are loaded at reset), a wrap with a non-zero high half, the carry into bits
#: 63:48 (from each of the last cycles before it), and the 2^64 wrap
INITS = [2**32 - 5, 2**32 - 3, 2**32 - 2, 2**32 - 1, 7 * 2**32 - 4,
         2**48 - 3, 2**48 - 2, 2**48 - 1, 5 * 2**48 - 6, 2**64 - 3]


@cocotb.test()
async def counter_counts_through_low_word_wrap(dut) -> None:
    """ts_o increments by exactly one per cycle (mod 2^64), including across 2^32."""
    init = int(os.environ["TS_INIT"])
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.load_i.value = 0
    dut.val_i.value = 0
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 2)
    dut.rst_i.value = 0
    await RisingEdge(dut.clk_i)
    prev = int(dut.ts_o.value)
    assert prev == init
    wrapped = False
    for _ in range(20):
        await RisingEdge(dut.clk_i)
        cur = int(dut.ts_o.value)
        assert cur == (prev + 1) % 2**64, f"{cur:#x} after {prev:#x}"
        wrapped |= (cur & 0xFFFF_FFFF) == 0
        prev = cur
    assert wrapped


@cocotb.test()
async def counter_loads_and_counts_on(dut) -> None:
    """TIME_SET load: the counter reads val_i the cycle after load_i, then counts on through the
    wrap (the carry flags are loaded consistently with the value, as at reset)."""
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.load_i.value = 0
    dut.val_i.value = 0
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 2)
    dut.rst_i.value = 0
    # FAST = 1 (the ECP5 station) needs val_i stable the two cycles before load_i, 0 one cycle
    steady = 1 + int(os.environ.get("TS_FAST", "0"))
    for val in [*INITS, 12345, 2**32 - 4]:
        await ClockCycles(dut.clk_i, 3)
        dut.val_i.value = val
        await ClockCycles(dut.clk_i, steady)
        dut.load_i.value = 1
        await RisingEdge(dut.clk_i)
        dut.load_i.value = 0
        await RisingEdge(dut.clk_i)
        prev = int(dut.ts_o.value)
        assert prev == val, f"{prev:#x} != {val:#x}"
        for _ in range(8):
            await RisingEdge(dut.clk_i)
            cur = int(dut.ts_o.value)
            assert cur == (prev + 1) % 2**64, f"{cur:#x} after {prev:#x} (loaded {val:#x})"
            prev = cur


@pytest.mark.rtl
@pytest.mark.parametrize("fast", [0, 1], ids=["main", "fast"])
@pytest.mark.parametrize("init", INITS, ids=hex)
def test_counter(tmp_path, init: int, fast: int) -> None:
    run_cocotb(tmp_path, "ts_counter", "test_hdl_counter",
               parameters={"INIT": init, "FAST": fast},
               extra_env={"TS_INIT": str(init), "TS_FAST": str(fast)})
