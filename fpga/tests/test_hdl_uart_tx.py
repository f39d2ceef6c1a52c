"""uart_tx: random bytes with random valid gaps come out as correct 8N1 frames."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb_run import run_cocotb

from hwctl.sim.uartbfm import UartMonitor

CPB = 5


@cocotb.test()
async def uart_tx_random_bytes(dut) -> None:
    rng = random.Random(1)
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.valid_i.value = 0
    dut.data_i.value = 0
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 3)
    dut.rst_i.value = 0
    mon = UartMonitor(dut.clk_i, dut.tx_o, CPB)
    cocotb.start_soon(mon.run())
    sent = bytes(rng.randrange(256) for _ in range(40)) + b"\x00\xff\x55\xaa"
    for b in sent:
        for _ in range(rng.choice([0, 0, 1, 7])):
            await RisingEdge(dut.clk_i)
        dut.data_i.value = b
        dut.valid_i.value = 1
        await RisingEdge(dut.clk_i)
        while not int(dut.ready_o.value):
            await RisingEdge(dut.clk_i)
        dut.valid_i.value = 0
    await ClockCycles(dut.clk_i, 12 * CPB)
    assert bytes(mon.data) == sent
    assert mon.framing_errors == 0


@pytest.mark.rtl
@pytest.mark.parametrize("fast", [0, 1], ids=["main", "fast"])
def test_uart_tx(tmp_path, fast: int) -> None:
    run_cocotb(tmp_path, "uart_tx", "test_hdl_uart_tx",
               parameters={"CLKS_PER_BIT": CPB, "FAST": fast})
