"""uart_rx: bytes at a slightly off baud rate, framing errors and glitches."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb_run import run_cocotb

from hwctl.sim.uartbfm import send_byte

CPB = 8


async def collect(dut, got: list, errs: list) -> None:
    while True:
        await RisingEdge(dut.clk_i)
        if int(dut.valid_o.value):
            got.append(int(dut.data_o.value))
        if int(dut.err_o.value):
            errs.append(1)


@cocotb.test()
async def uart_rx_bytes_errors_glitches(dut) -> None:
    rng = random.Random(2)
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.rx_i.value = 1
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 3)
    dut.rst_i.value = 0
    got: list[int] = []
    errs: list[int] = []
    cocotb.start_soon(collect(dut, got, errs))
    sent = [rng.randrange(256) for _ in range(30)] + [0x00, 0xFF]
    for b in sent:  # back-to-back, no idle between bytes
        await send_byte(dut.clk_i, dut.rx_i, b, CPB)
    await ClockCycles(dut.clk_i, 3 * CPB)
    assert got == sent and not errs
    # A stop bit of 0 is a framing error, not a byte.
    await send_byte(dut.clk_i, dut.rx_i, 0x5A, CPB, stop=0)
    await ClockCycles(dut.clk_i, 12 * CPB)  # line idle again
    assert got == sent and len(errs) == 1
    # A 2-cycle glitch is not a start bit.
    dut.rx_i.value = 0
    await ClockCycles(dut.clk_i, 2)
    dut.rx_i.value = 1
    await ClockCycles(dut.clk_i, 12 * CPB)
    assert got == sent and len(errs) == 1
    await send_byte(dut.clk_i, dut.rx_i, 0xA5, CPB)
    await ClockCycles(dut.clk_i, 2 * CPB)
    assert got[-1] == 0xA5 and len(got) == len(sent) + 1


@pytest.mark.rtl
def test_uart_rx(tmp_path) -> None:
    run_cocotb(tmp_path, "uart_rx", "test_hdl_uart_rx", parameters={"CLKS_PER_BIT": CPB})
