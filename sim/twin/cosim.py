"""Co-simulation: the host backend talks to the RTL top under cocotb through a TCP socket.

Two halves:

- :func:`socket_bridge` is a cocotb test (run by ``tests/test_transport_cosim.py`` with
  ``fpga/tests/cocotb_run.run_cocotb``). It drives ``top`` through its pins: host bytes from a
  TCP connection go out on ``uart_rx_i`` (8N1, ``CLKS_PER_BIT`` cycles per bit), bytes sampled on
  ``uart_tx_o`` go back on the socket. The listening port is written to ``HWCTL_COSIM_PORTFILE``.
  Detector model: a one-cycle pulse on ``det_i[0]`` each time ``win_o`` rises (p = 1 per attempt
  with HERALD_EN set; the host switches heralds off with CONTROL for the exhaustion checks).
- :func:`script` is the backend test script: the same commands against any backend, returning the
  observations that must agree between the twin (``twin://?p=1``) and the RTL
  (``socket://127.0.0.1:PORT``). Device timestamps are compared as differences to ``t_start``.
"""

from __future__ import annotations

import os
import socket
import time

from hwctl.errors import DeviceError
from hwctl.wire import Done, Herald, Late, Reg

#: slack between TIME and t_start: covers a TIME response and a SCHEDULE at 3 Mbaud on the twin
SLACK = 50_000


async def script(b, event_timeout: float | None = 60) -> list[tuple]:
    """Commands with a deterministic outcome on any conforming device; returns observations.

    ``event_timeout`` bounds each wait for a device event in wall-clock seconds; ``None`` waits
    for the event itself (the RTL co-simulation: a loaded machine only makes the simulator slower,
    and a dead simulator closes the socket, which ends the wait with LinkError)."""
    obs: list[tuple] = []
    await b.write_reg(Reg.SCRATCH, 0xC0FFEE01)
    obs.append(("scratch", await b.read_reg(Reg.SCRATCH)))
    obs.append(("control_reset", await b.read_reg(Reg.CONTROL)))
    for name, coro in (("ro", b.write_reg(Reg.ID, 1)), ("unknown", b.read_reg(0x0E)),
                       ("count0", b.schedule(1 << 40, 0, 50, 2)), ("free", b.free(3))):
        try:
            await coro
            obs.append(("nak", name, None))
        except DeviceError as exc:
            obs.append(("nak", name, exc.code))
    await b.write_reg(Reg.CONTROL, 0b10)  # HERALD_EN off: detectors ignored
    now = await b.time()
    t0 = now + SLACK
    await b.schedule(t0, 7, 50, 2)
    ev = await b.next_event(timeout=event_timeout)
    assert isinstance(ev, Done), ev
    obs.append(("done", ev.attempts, ev.reason, ev.ts - t0))
    await b.schedule(1, 3, 50, 2)
    ev = await b.next_event(timeout=event_timeout)
    assert isinstance(ev, Late), ev
    obs.append(("late", ev.t_start, ev.now > 1))
    far = (await b.time()) + 10**9
    for _ in range(5):
        await b.schedule(far, 10, 50, 2)
    try:
        await b.schedule(far, 10, 50, 2)
        obs.append(("overflow", None))
    except DeviceError as exc:
        obs.append(("overflow", exc.code))
    await b.abort()
    ev = await b.next_event(timeout=event_timeout)
    assert isinstance(ev, Done), ev
    obs.append(("abort", ev.attempts, ev.reason))
    await b.write_reg(Reg.CONTROL, 0b11)
    t0 = (await b.time()) + SLACK
    await b.schedule(t0, 100, 100, 40)
    ev = await b.next_event(timeout=event_timeout)
    assert isinstance(ev, Herald), ev
    obs.append(("herald", ev.attempt, 0 <= ev.ts - t0 < 40))
    for r in (Reg.CNT_ATTEMPTS, Reg.CNT_HERALD, Reg.ERR_LATE, Reg.ERR_OVERFLOW, Reg.CNT_BOTH):
        obs.append((r.name, await b.read_reg(r)))
    return obs


try:  # the cocotb half is only importable inside a simulator run
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge

    from hwctl.sim.uartbfm import UartMonitor, send_byte
except ImportError:  # pragma: no cover
    cocotb = None

if cocotb is not None:

    async def _uart_tx_to_dut(dut, q: bytearray, cpb: int) -> None:
        while True:
            if not q:
                await ClockCycles(dut.clk_i, 8)
                continue
            await send_byte(dut.clk_i, dut.uart_rx_i, q.pop(0), cpb)

    async def _clicker(dut) -> None:
        while True:
            await RisingEdge(dut.win_o)
            dut.det_i.value = 1
            await ClockCycles(dut.clk_i, 2)
            dut.det_i.value = 0

    @cocotb.test()
    async def socket_bridge(dut) -> None:
        cpb = int(os.environ.get("HWCTL_COSIM_CPB", "4"))
        # No wall-clock budget by default: a loaded machine only makes the simulation slower. The
        # loop ends when the host closes the link; HWCTL_COSIM_MAX_S is an optional guard for
        # manual runs (pytest-timeout guards the test suite).
        max_s = float(os.environ.get("HWCTL_COSIM_MAX_S", "inf"))
        cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
        dut.uart_rx_i.value = 1
        dut.hdr_i.value = 1
        dut.det_i.value = 0
        dut.hl_i.value = (1 << len(dut.hl_i)) - 1  # wire v3 herald lines: idle high
        dut.sync_i.value = 0
        dut.rst_i.value = 1
        await ClockCycles(dut.clk_i, 20)
        dut.rst_i.value = 0
        await ClockCycles(dut.clk_i, 5)
        to_dut, from_dut = bytearray(), bytearray()
        cocotb.start_soon(_uart_tx_to_dut(dut, to_dut, cpb))
        cocotb.start_soon(UartMonitor(dut.clk_i, dut.uart_tx_o, cpb, on_byte=from_dut.append).run())
        cocotb.start_soon(_clicker(dut))
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.setblocking(False)
        pf = os.environ["HWCTL_COSIM_PORTFILE"]
        with open(pf + ".tmp", "w") as f:
            f.write(str(srv.getsockname()[1]))
        os.replace(pf + ".tmp", pf)
        conn = None
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < max_s:
                await ClockCycles(dut.clk_i, 4 * cpb)
                if conn is None:
                    try:
                        conn, _ = srv.accept()
                        conn.setblocking(False)
                    except BlockingIOError:
                        continue
                try:
                    data = conn.recv(4096)
                    if not data:
                        return  # host closed the link: done
                    to_dut += data
                except BlockingIOError:
                    pass
                if from_dut:
                    conn.sendall(bytes(from_dut))
                    from_dut.clear()
            raise AssertionError(f"co-simulation did not finish within {max_s} s")
        finally:
            if conn is not None:
                conn.close()
            srv.close()
