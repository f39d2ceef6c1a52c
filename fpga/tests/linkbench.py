"""Set-up and fibre model of the link testbench (fpga/tests/hdl/tb_link.v: a station and two node
tops), shared by the link co-simulations (test_hdl_link.py, test_hdl_link_twin.py): the bench's
parameters, the device hosts, reset, the one device clock (TIME_SET mode 1 + one sync pulse) and
the station's ST_DELAY for the fibre models, and clicks in an attempt's window.

Fibre model (tb_link.v): D cycles each way between a node's trigger pin and the station's marker
input; a node's trigger pin is registered (1 cycle) and the station's inputs pass a 2-FF
synchronizer (2 cycles), so attempt t's marker reaches the station's pin in cycle t + 1 + D and
its synchronized edge D + 3 cycles after t: the station's ST_DELAY.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from hostbfm import Host, skip

from hwctl.wire import Ack, Opcode, Reg, RegWrite, TimeSet
from hwctl.wire._spec import Message

CPB = 4                     # UART cycles per bit of the three host links
D = 40                      # fibre delay, cycles, each half of the link (tb_link parameter D)
UNTIL_DONE = 2**32 - 1      # SCHEDULE_PAIRS count: until the pairs are done
#: station ST_DELAY for the fibre models: node trigger pin register (1) + fibre (D) + the
#: station's input synchronizer (2)
ST_DELAY = D + 3
#: a device clock origin well past 2^32 (the 64-bit timestamp's high half is exercised)
T0 = 2**33 + 5


def marker_pin(t: int) -> int:
    """The cycle in which attempt ``t``'s marker is on the station's pin (trigger register +
    fibre): a click on a detector pin in this cycle falls in the attempt's window."""
    return t + 1 + D


def hosts(dut) -> tuple[Host, Host, Host]:
    """Hosts of node A, node B and the station, on their UARTs, each with its timestamp."""
    a = Host(dut, CPB, rx=dut.uart_rx_a, tx=dut.uart_tx_a, ts=dut.u_a.u_core.ts_o)
    b = Host(dut, CPB, rx=dut.uart_rx_b, tx=dut.uart_tx_b, ts=dut.u_b.u_core.ts_o)
    s = Host(dut, CPB, rx=dut.uart_rx_s, tx=dut.uart_tx_s, ts=dut.u_s.u_ts.ts_o)
    return a, b, s


async def start(dut, devices: Sequence[Host]) -> None:
    """Clock, idle inputs, 20 cycles of reset, then the hosts listen (polling every 8 cycles)."""
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    for sig in (dut.uart_rx_a, dut.uart_rx_b, dut.uart_rx_s):
        sig.value = 1
    dut.det_i.value = 0
    dut.sync_i.value = 0
    dut.hl_flip_i.value = 0
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 20)
    dut.rst_i.value = 0
    await ClockCycles(dut.clk_i, 5)
    for h in devices:
        h.listen()
        h.poll = 8


async def one_clock(dut, requests: Sequence[Callable[[Message], Awaitable[Message]]],
                    t0: int = T0) -> None:
    """One device clock for every device: arm TIME_SET(t0, mode 1) through each ``request``,
    then one sync pulse on the shared sync input."""
    for rq in requests:
        assert await rq(TimeSet(t0, 1)) == Ack(Opcode.TIME_SET)
    dut.sync_i.value = 1
    await ClockCycles(dut.clk_i, 10)
    dut.sync_i.value = 0


async def set_st_delay(rq: Callable[[Message], Awaitable[Message]]) -> None:
    """The station's ST_DELAY for the fibre models (:data:`ST_DELAY`)."""
    assert await rq(RegWrite(Reg.ST_DELAY, ST_DELAY)) == Ack(Opcode.REG_WRITE)


async def click(dut, s: Host, t: int, det: int) -> None:
    """Click detector ``det`` at the station for one cycle, in attempt ``t``'s window."""
    pin = marker_pin(t)
    assert pin - s.now() - 1 > 0, "the bench is late"
    await skip(dut.clk_i, pin - s.now() - 1)
    dut.det_i.value = 1 << det
    await ClockCycles(dut.clk_i, 1)
    dut.det_i.value = 0
