"""ram_sdp_oreg (fpga/rtl/ram_sdp_oreg.v) against a Python model, and its ECP5 implementation
(fpga/rtl/ecp5/ram_sdp_oreg.v: a DP16KD with its output register, simulated by
fpga/tests/hdl/DP16KD.v) against the same model: the two files agree cycle for cycle.

The model: at a clock edge the word at ``ra_i`` is read (the array before that edge's write), a
write ``we_i`` stores ``wd_i`` at ``wa_i``, and ``rd_o`` after the edge is the word read at the
edge before (read latency 2). A read of the word written at the same edge (the two ports'
collision, undefined in the device) reads X; the write takes effect. Random traffic on a small
address range so reads of just-written words, back-to-back writes and collisions all happen.
"""

from __future__ import annotations

import os
import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge
from cocotb_run import run_cocotb

X = None  # the model's undefined word


@cocotb.test()
async def ram_random(dut) -> None:
    dw = int(os.environ["RAM_DW"])
    depth = int(os.environ["RAM_DEPTH"])
    span = int(os.environ["RAM_SPAN"])  # addresses used: few, so words are reused often
    rng = random.Random(int(os.environ.get("RAM_SEED", "1")))
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    mem: list[int | None] = [0] * depth
    rq: int | None = 0          # the word read at the last edge
    want: int | None = 0        # rd_o after the last edge
    lo = rng.randrange(depth - span + 1)
    seen = {"collisions": 0, "checked": 0, "fresh": 0}
    dut.we_i.value = 0
    dut.wa_i.value = 0
    dut.wd_i.value = 0
    dut.ra_i.value = 0
    await FallingEdge(dut.clk_i)
    last_w: int | None = None
    for cyc in range(3000):
        we = rng.random() < 0.5
        wa = lo + rng.randrange(span)
        ra = lo + rng.randrange(span)
        wd = rng.randrange(1 << dw)
        dut.we_i.value = int(we)
        dut.wa_i.value = wa
        dut.wd_i.value = wd
        dut.ra_i.value = ra
        await RisingEdge(dut.clk_i)
        # the edge: output register <- last read; read (before the write); write
        want = rq
        rq = X if (we and wa == ra) else mem[ra]
        if we and wa == ra:
            seen["collisions"] += 1
        elif last_w == ra:
            seen["fresh"] += 1      # a word written at the edge before, read at this one
        if we:
            mem[wa] = wd
        last_w = wa if we else None
        await FallingEdge(dut.clk_i)
        got = dut.rd_o.value
        if cyc < 2:
            continue    # (the clock's first edge at time 0 met undriven inputs: a read of X)
        if want is X:
            assert not got.is_resolvable, f"collision read {got}: the model reads X"
        else:
            assert got.is_resolvable and got.to_unsigned() == want, (str(got), want)
            seen["checked"] += 1
    assert seen["collisions"] > 20 and seen["fresh"] > 20 and seen["checked"] > 2000, seen
    dut._log.info("%s", seen)


@pytest.mark.rtl
@pytest.mark.parametrize(("family", "dw", "depth"), [(None, 8, 64), (None, 8, 1024),
                                                     (None, 16, 512), ("ecp5", 8, 1024),
                                                     ("ecp5", 16, 512)])
def test_ram_sdp_oreg(tmp_path, family: str | None, dw: int, depth: int) -> None:
    """The behavioural file (``None``) and the ECP5 one (``ecp5``) against one model."""
    run_cocotb(tmp_path, "ram_sdp_oreg", "test_hdl_ram_sdp_oreg",
               parameters={"DW": dw, "DEPTH": depth}, family=family,
               extra_env={"RAM_DW": str(dw), "RAM_DEPTH": str(depth), "RAM_SPAN": "6"})
