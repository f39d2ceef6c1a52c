"""Host side of the UART link for top-level testbenches, built on the host's own codec.

Frames are encoded with ``hwctl.wire.encode`` and driven bit by bit into ``uart_rx_i``; what the
device sends on ``uart_tx_o`` is sampled by :class:`UartMonitor` and decoded by the host's
``FrameDecoder``. Responses (opcode 0x80..0x9F) and events (0xA0..) are kept apart.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge, Timer
from twin_oracle import DET_LAT

from hwctl.sim.uartbfm import UartMonitor, send_bytes
from hwctl.wire import Frame, FrameDecoder, encode
from hwctl.wire._spec import Message


async def skip(clk, n: int, period_ns: int = 10) -> None:
    """Return right after the ``n``-th rising edge from now, like ``ClockCycles(clk, n)``, but
    with one timer instead of one wake-up per cycle (long waits in multi-device benches)."""
    if n > 2:   # (called right after an edge: the timer ends half a period before edge n)
        await Timer(n * period_ns - period_ns // 2, unit="ns")
        n = 1
    if n > 0:
        await ClockCycles(clk, n)


class Host:
    def __init__(self, dut, cpb: int, *, rx=None, tx=None, ts=None) -> None:
        """``rx`` / ``tx`` / ``ts``: the device's UART input and output pins and its timestamp
        (default: those of ``top`` as the toplevel; a testbench with several devices names them)."""
        self.dut = dut
        self.cpb = cpb
        self.rx = rx if rx is not None else dut.uart_rx_i
        self.tx = tx if tx is not None else dut.uart_tx_o
        self.ts = ts
        self.poll = 1       # cycles between checks while waiting for a response
        self.dec = FrameDecoder()
        self.responses: list[Frame] = []
        self.events: list[Frame] = []
        self.errors: list = []
        self._rx_len = 0

    def now(self) -> int:
        return int((self.ts if self.ts is not None else self.dut.u_core.ts_o).value)

    async def start(self, rst_cycles: int = 20) -> None:
        dut = self.dut
        dut.uart_rx_i.value = 1
        dut.hdr_i.value = 1
        dut.det_i.value = 0
        dut.hl_i.value = (1 << len(dut.hl_i)) - 1  # herald lines idle high
        dut.sync_i.value = 0
        dut.rst_i.value = 1
        await ClockCycles(dut.clk_i, rst_cycles)
        dut.rst_i.value = 0
        await ClockCycles(dut.clk_i, 5)
        cocotb.start_soon(self._rx())

    async def _rx(self) -> None:
        """Sample uart_tx_o (8N1) and feed every byte to the host decoder."""
        await UartMonitor(self.dut.clk_i, self.tx, self.cpb, on_byte=self._on_byte,
                          strict=True).run()

    def listen(self) -> None:
        """Start decoding the device's UART output (``start`` does this for ``top``)."""
        cocotb.start_soon(self._rx())

    def _on_byte(self, value: int) -> None:
        for item in self.dec.feed(bytes((value,))):
            if not isinstance(item, Frame):
                self.errors.append(item)
            elif item.msg.KIND == "event":
                self.events.append(item)
            else:
                self.responses.append(item)

    async def send_raw(self, data: bytes) -> None:
        await send_bytes(self.dut.clk_i, self.rx, data, self.cpb)

    async def request(self, msg: Message, seq: int, timeout: int = 20000) -> Message:
        """Send one command, wait for the response with the same seq, return its message."""
        n = len(self.responses)
        await self.send_raw(encode(msg, seq))
        for _ in range(0, timeout, self.poll):
            await ClockCycles(self.dut.clk_i, self.poll)
            if len(self.responses) > n:
                frame = self.responses[n]
                assert frame.seq == seq, f"response seq {frame.seq} for command seq {seq}"
                assert len(self.responses) == n + 1
                return frame.msg
        raise AssertionError(f"no response to {msg}")

    async def wait_events(self, n: int, timeout: int = 50000, step: int = 1) -> list[Frame]:
        """Wait for ``n`` events, checking every ``step`` cycles."""
        for _ in range(0, timeout, step):
            if len(self.events) >= n:
                return self.events[:n]
            await skip(self.dut.clk_i, step)
        raise AssertionError(f"only {len(self.events)} of {n} events: {self.events}")

    async def wait_ts(self, t: int) -> None:
        """Return at the start of the cycle whose timestamp is ``t``."""
        while True:
            await RisingEdge(self.dut.clk_i)
            cur = self.now() + 1
            assert cur <= t, f"missed cycle {t} (now {cur})"
            if cur == t:
                return

    async def click(self, ts: int, det: int) -> None:
        """A detector click whose synchronized edge is seen at timestamp ``ts``."""
        await self.wait_ts(ts - DET_LAT)
        self.dut.det_i.value = int(self.dut.det_i.value) | (1 << det)
        await ClockCycles(self.dut.clk_i, 2)
        self.dut.det_i.value = int(self.dut.det_i.value) & ~(1 << det)
