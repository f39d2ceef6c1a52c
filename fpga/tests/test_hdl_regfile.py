"""regfile: every address, read-only protection, counters, CLEAR_COUNTERS, CONTROL reset."""

from __future__ import annotations

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge
from cocotb_run import run_cocotb

from hwctl.wire import DEVICE_ID, NODE_REGS, WIRE_VERSION, WRITABLE_REGS, Reg

RTL_REGS = NODE_REGS

STROBES = {
    Reg.ERR_CRC: "inc_crc_i", Reg.ERR_LATE: "inc_late_i", Reg.ERR_OVERFLOW: "inc_overflow_i",
    Reg.ERR_BAD_HEADER: "inc_bad_header_i", Reg.CNT_HERALD: "inc_herald_i",
    Reg.CNT_BOTH: "inc_both_i", Reg.CNT_ATTEMPTS: "inc_attempts_i",
    Reg.CNT_HEADERS: "inc_headers_i", Reg.CNT_PAIRS: "inc_pairs_i",
    Reg.ERR_HERALD: "inc_err_herald_i", Reg.CNT_BLOCKS: "inc_blocks_i",
}


READ_LAT = 4  # registered read: outputs show addr_i of four cycles earlier


async def read(dut, addr: int) -> tuple[int, bool, bool]:
    dut.addr_i.value = addr
    for _ in range(READ_LAT):
        await FallingEdge(dut.clk_i)
    return int(dut.rdata_o.value), bool(int(dut.rd_ok_o.value)), bool(int(dut.wr_ok_o.value))


async def write(dut, addr: int, value: int) -> None:
    # address and data one cycle before we_i (the command decoder's order; the regfile registers
    # its write-address compares)
    dut.waddr_i.value = addr
    dut.wdata_i.value = value
    await FallingEdge(dut.clk_i)
    dut.we_i.value = 1
    await FallingEdge(dut.clk_i)
    dut.we_i.value = 0


@cocotb.test()
async def regfile_all(dut) -> None:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    for name in [*STROBES.values(), "we_i", "running_i", "sched_full_i", "evt_pending_i"]:
        getattr(dut, name).value = 0
    dut.add_evt_lost_i.value = 0
    dut.slots_free_i.value = 5
    dut.ring_free_i.value = 2040
    dut.pinned_i.value = 8
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 2)
    dut.rst_i.value = 0
    await FallingEdge(dut.clk_i)
    assert await read(dut, Reg.ID) == (DEVICE_ID, True, False)
    assert await read(dut, Reg.VERSION) == (WIRE_VERSION, True, False)
    assert await read(dut, Reg.CONTROL) == (3, True, True)
    assert await read(dut, Reg.SLOTS_FREE) == (5, True, False)
    # wire v3: parameters (defaults 6 qubits, 2 ports) and HERALD_WAIT (default 4000, rw)
    assert await read(dut, Reg.QUBITS) == (6, True, False)
    assert await read(dut, Reg.N_PORTS) == (2, True, False)
    assert await read(dut, Reg.HERALD_WAIT) == (4000, True, True)
    # wire v4: N_SLOTS (parameter), BLOCK_FLUSH (default 100000, rw), CNT_PINNED (the ring's)
    assert await read(dut, Reg.N_SLOTS) == (2048, True, False)
    assert await read(dut, Reg.BLOCK_FLUSH) == (100000, True, True)
    assert await read(dut, Reg.CNT_PINNED) == (8, True, False)
    for addr in range(256):
        _, rd_ok, wr_ok = await read(dut, addr)
        assert rd_ok == (addr in RTL_REGS)
        assert wr_ok == (addr in WRITABLE_REGS & RTL_REGS)
    dut.running_i.value = 1
    dut.evt_pending_i.value = 1
    assert (await read(dut, Reg.STATUS))[0] == 0b101
    # counters: strobe each one a different number of times
    for i, name in enumerate(STROBES.values()):
        getattr(dut, name).value = 1
        await ClockCycles(dut.clk_i, i + 1)
        getattr(dut, name).value = 0
    dut.add_evt_lost_i.value = 3
    await ClockCycles(dut.clk_i, 2)
    dut.add_evt_lost_i.value = 0
    await FallingEdge(dut.clk_i)
    for i, reg in enumerate(STROBES):
        assert (await read(dut, reg))[0] == i + 1
    assert (await read(dut, Reg.EVT_LOST))[0] == 6
    # read-only registers ignore writes; SCRATCH and CONTROL take them
    await write(dut, Reg.ERR_CRC, 1234)
    await write(dut, Reg.SCRATCH, 0xCAFEF00D)
    await write(dut, Reg.CONTROL, 0b01)
    assert (await read(dut, Reg.ERR_CRC))[0] == 1
    assert (await read(dut, Reg.SCRATCH))[0] == 0xCAFEF00D
    await write(dut, Reg.HERALD_WAIT, 123456)
    assert (await read(dut, Reg.HERALD_WAIT))[0] == 123456
    assert (await read(dut, Reg.CONTROL))[0] == 0b01
    assert int(dut.herald_en_o.value) == 1 and int(dut.header_en_o.value) == 0
    # HDR_BLOCK (bit 3): block mode, SLOTS_FREE is then the ring's
    await write(dut, Reg.CONTROL, 0b1011)
    assert (await read(dut, Reg.CONTROL))[0] == 0b1011
    assert int(dut.hdr_block_o.value) == 1
    assert (await read(dut, Reg.SLOTS_FREE))[0] == 2040
    await write(dut, Reg.CONTROL, 0b01)
    assert (await read(dut, Reg.SLOTS_FREE))[0] == 5
    await write(dut, Reg.BLOCK_FLUSH, 777)
    assert (await read(dut, Reg.BLOCK_FLUSH))[0] == 777 and int(dut.block_flush_o.value) == 777
    # CLEAR_COUNTERS clears every counter and reads back 0
    await write(dut, Reg.CONTROL, 0b110)
    for reg in [*STROBES, Reg.EVT_LOST]:
        assert (await read(dut, reg))[0] == 0
    assert (await read(dut, Reg.CONTROL))[0] == 0b10
    assert (await read(dut, Reg.SCRATCH))[0] == 0xCAFEF00D
    assert (await read(dut, Reg.HERALD_WAIT))[0] == 123456  # not a counter
    assert (await read(dut, Reg.BLOCK_FLUSH))[0] == 777


@pytest.mark.rtl
def test_regfile(tmp_path) -> None:
    run_cocotb(tmp_path, "regfile", "test_hdl_regfile")
