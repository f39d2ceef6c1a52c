"""Herald line (docs/physical-layer.md section 2): herald_tx (station side: 11-byte frame,
2-deep queue, drops counted) against a Python line monitor and the host's CRC-8, and herald_rx
(node side: decode, CRC-8, marker, framing, inter-byte gap) against frames driven from Python."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotb_run import run_cocotb

from hwctl.sim.uartbfm import UartMonitor, send_byte
from hwctl.wire import crc8

BIT = 4
MARKER = 0xA5


def frame(t: int, bell: int, *, bad_crc: bool = False, marker: int = MARKER) -> bytes:
    body = t.to_bytes(8, "big") + bytes((bell,))
    return bytes((marker,)) + body + bytes((crc8(body) ^ (1 if bad_crc else 0),))


def parse(data: bytes) -> list[tuple[int, int]]:
    out = []
    assert len(data) % 11 == 0, data.hex()
    for i in range(0, len(data), 11):
        f = data[i:i + 11]
        assert f[0] == MARKER and crc8(f[1:10]) == f[10], f.hex()
        out.append((int.from_bytes(f[1:9], "big"), f[9]))
    return out


@cocotb.test()
async def herald_tx_frames_queue_and_drops(dut) -> None:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.push_i.value = 0
    dut.t_i.value = 0
    dut.bell_i.value = 0
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 3)
    dut.rst_i.value = 0
    mon = UartMonitor(dut.clk_i, dut.line_o, BIT, strict=True)
    cocotb.start_soon(mon.run())
    drops = 0

    async def count_drops() -> None:
        nonlocal drops
        while True:
            await FallingEdge(dut.clk_i)
            drops += int(dut.drop_o.value)

    cocotb.start_soon(count_drops())

    async def push(t: int, bell: int) -> None:
        await RisingEdge(dut.clk_i)
        dut.push_i.value = 1
        dut.t_i.value = t
        dut.bell_i.value = bell
        await RisingEdge(dut.clk_i)
        dut.push_i.value = 0

    async def idle() -> None:
        while True:
            await FallingEdge(dut.clk_i)
            if not int(dut.busy_o.value):
                break
        await ClockCycles(dut.clk_i, 12 * BIT)  # the last byte's bits

    rng = random.Random(5)
    # one at a time, random values (every CRC byte value class)
    sent = [(rng.randrange(2**64), rng.randrange(2)) for _ in range(6)] + [(0, 0), (2**64 - 1, 1)]
    for t, b in sent:
        await push(t, b)
        await idle()
    assert parse(bytes(mon.data)) == sent and drops == 0
    # frame timing: 11 bytes back to back (a byte is 10 bit periods, B2B)
    n0 = len(mon.data)
    await push(123, 1)
    start = None
    for c in range(20 * 11 * BIT):
        await FallingEdge(dut.clk_i)
        if start is None and int(dut.line_o.value) == 0:
            start = c
        if not int(dut.busy_o.value) and start is not None:
            break
    assert c - start <= 11 * (10 * BIT + 2), c - start
    await idle()
    assert parse(bytes(mon.data[n0:])) == [(123, 1)]
    # queue: one being sent + 2 waiting; the 4th and 5th heralds in a burst are dropped
    n0 = len(mon.data)
    burst = [(1000 + k, k & 1) for k in range(5)]
    for t, b in burst:
        await push(t, b)
    await idle()
    assert parse(bytes(mon.data[n0:])) == burst[:3]
    assert drops == 2
    # a herald pushed while the first of two waits: kept (room freed by the pop)
    n0 = len(mon.data)
    await push(7, 0)
    await push(8, 1)
    await ClockCycles(dut.clk_i, 11 * 10 * BIT + 30)   # first frame done, second being sent
    await push(9, 0)
    await idle()
    assert parse(bytes(mon.data[n0:])) == [(7, 0), (8, 1), (9, 0)] and drops == 2


@cocotb.test()
async def herald_rx_decodes_and_rejects(dut) -> None:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.line_i.value = 1
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 3)
    dut.rst_i.value = 0
    got: list[tuple[str, int, int]] = []

    async def mon() -> None:
        while True:
            await FallingEdge(dut.clk_i)
            if int(dut.ok_o.value):
                got.append(("ok", int(dut.t_o.value), int(dut.bell_o.value)))
            if int(dut.bad_o.value):
                got.append(("bad", 0, 0))

    cocotb.start_soon(mon())

    async def send(data: bytes, gap_after: dict[int, int] | None = None, stop_bad: int = -1) -> None:
        for i, b in enumerate(data):
            await send_byte(dut.clk_i, dut.line_i, b, BIT, stop=0 if i == stop_bad else 1)
            if i == stop_bad:
                await ClockCycles(dut.clk_i, BIT)
            if gap_after and i in gap_after:
                await ClockCycles(dut.clk_i, gap_after[i])
        await ClockCycles(dut.clk_i, 3 * BIT)

    rng = random.Random(9)
    expect: list[tuple[str, int, int]] = []
    for _ in range(6):
        t, b = rng.randrange(2**64), rng.randrange(2)
        await send(frame(t, b))
        expect.append(("ok", t, b))
    # back to back frames
    await send(frame(1, 0) + frame(2, 1))
    expect += [("ok", 1, 0), ("ok", 2, 1)]
    # bad CRC, bad bell byte, bad marker (one bad per byte until a marker), framing
    await send(frame(5, 1, bad_crc=True))
    expect.append(("bad", 0, 0))
    body = (6).to_bytes(8, "big") + b"\x02"
    await send(bytes((MARKER,)) + body + bytes((crc8(body),)))
    expect.append(("bad", 0, 0))
    await send(bytes((0x11, 0x22)))
    expect += [("bad", 0, 0)] * 2
    await send(frame(7, 0), stop_bad=4)
    # the framing error ends the frame; the rest of its bytes are wrong markers (6 bytes after
    # index 4) -- unless one equals the marker: compute as the receiver must
    rest = frame(7, 0)[5:]
    expect.append(("bad", 0, 0))
    i = 0
    while i < len(rest):
        if rest[i] == MARKER:
            break  # not the case for this frame (checked below)
        expect.append(("bad", 0, 0))
        i += 1
    assert MARKER not in rest
    # inter-byte gap: 20 bit periods of silence is fine, much more is a bad frame
    await send(frame(8, 1), gap_after={3: 20 * BIT - 2 * BIT})
    expect.append(("ok", 8, 1))
    await send(frame(9, 1)[:4])
    await ClockCycles(dut.clk_i, 40 * BIT)
    expect.append(("bad", 0, 0))
    await send(frame(10, 0))
    expect.append(("ok", 10, 0))
    await ClockCycles(dut.clk_i, 10)
    assert got == expect


@pytest.mark.rtl
def test_herald_tx(tmp_path) -> None:
    run_cocotb(tmp_path, "herald_tx", "test_hdl_herald_line",
               parameters={"BIT_CYCLES": BIT}, testcase="herald_tx_frames_queue_and_drops")


@pytest.mark.rtl
@pytest.mark.parametrize("fast", [0, 1])    # 1: the node's ECP5 builds' timing variant
def test_herald_rx(tmp_path, fast: int) -> None:
    run_cocotb(tmp_path, "herald_rx", "test_hdl_herald_line",
               parameters={"BIT_CYCLES": BIT, "FAST": fast},
               testcase="herald_rx_decodes_and_rejects")
