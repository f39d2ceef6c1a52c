"""Cycle-counted UART bus functional models (8N1, LSB first) for cocotb testbenches.

Shared by the RTL testbenches (fpga/tests) and the co-simulation bridge (sim/twin/cosim.py);
importable only inside a simulator run (it imports cocotb).

Bit period is ``cpb`` clock cycles, matching the RTL's CLKS_PER_BIT parameter; the same driver
serves the midpoint header line (spec [header] is UART-like with HDR_BIT_CYCLES).
"""

from __future__ import annotations

from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge


async def send_byte(clk, line, value: int, cpb: int, stop: int = 1) -> None:
    """Drive one 8N1 byte on ``line`` (start, 8 data bits LSB first, stop=``stop``)."""
    bits = [0] + [(value >> i) & 1 for i in range(8)] + [stop]
    for b in bits:
        line.value = b
        await ClockCycles(clk, cpb)
    line.value = 1


async def send_bytes(clk, line, data: bytes, cpb: int, gap: int = 0) -> None:
    for b in data:
        await send_byte(clk, line, b, cpb)
        if gap:
            await ClockCycles(clk, gap)


class UartMonitor:
    """Samples a UART line every clock and collects the received bytes in ``self.data``.

    ``on_byte`` (if given) is called with every good byte as well; ``strict`` turns a framing
    error (stop bit 0) into an AssertionError instead of a count.
    """

    def __init__(self, clk, line, cpb: int, on_byte=None, strict: bool = False) -> None:
        self.clk, self.line, self.cpb = clk, line, cpb
        self.data = bytearray()
        self.framing_errors = 0
        self.on_byte = on_byte
        self.strict = strict
        self._sleep = True

    async def run(self) -> None:
        clk, line, cpb = self.clk, self.line, self.cpb
        while True:
            await RisingEdge(clk)
            if int(line.value) != 0:
                if not self._sleep:
                    continue
                # idle: sleep until the line falls (a per-cycle poll dominated long runs); the
                # start bit is then seen at the same clock edge as by polling. A bit of a vector
                # cannot carry an edge trigger in every simulator: then poll.
                try:
                    await FallingEdge(line)
                except RuntimeError:
                    self._sleep = False
                    continue
                await RisingEdge(clk)
                if int(line.value) != 0:
                    continue
            await ClockCycles(clk, cpb // 2)
            if int(line.value) != 0:
                continue
            value = 0
            for i in range(8):
                await ClockCycles(clk, cpb)
                value |= int(line.value) << i
            await ClockCycles(clk, cpb)
            if int(line.value) != 1:
                assert not self.strict, "UART framing error: stop bit is 0"
                self.framing_errors += 1
                continue
            self.data.append(value)
            if self.on_byte is not None:
                self.on_byte(value)
