"""frame_rx: valid frames, corrupted frames, truncated/overlong frames and garbage.

The host's FrameDecoder on the same byte stream is the reference. The RTL frame layer does not
know opcodes, so host BAD_OPCODE / BAD_LENGTH verdicts count as good frames here.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb_run import run_cocotb
from wirehelp import random_message, unpack_payload

from hwctl.wire import ErrorCode, Frame, FrameDecoder, cobs_decode, encode

PMAX = 32


def make_stream(rng: random.Random, n: int) -> bytes:
    out = bytearray(b"\x00")
    for _ in range(n):
        kind = rng.random()
        frame = bytearray(encode(random_message(rng, ("command", "response", "event")), rng.randrange(256)))
        if kind < 0.55:
            pass
        elif kind < 0.7:  # corrupt one byte (may become CRC or COBS error)
            i = rng.randrange(len(frame) - 1)
            frame[i] = rng.randrange(1, 256)
        elif kind < 0.8:  # truncated
            frame = frame[: rng.randrange(1, 4)] + b"\x00"
        elif kind < 0.9:  # garbage, then a delimiter
            frame = bytearray(rng.randrange(1, 256) for _ in range(rng.randrange(1, 60))) + b"\x00"
        else:  # idle delimiters
            frame = bytearray(b"\x00" * rng.randrange(1, 3))
        out += frame
    return bytes(out)


def expected(stream: bytes) -> list:
    res = []
    for item in FrameDecoder().feed(stream):
        if isinstance(item, Frame):
            res.append(("frame", item.seq, item.msg.OPCODE, item.msg.pack()))
        elif item.code in (ErrorCode.BAD_OPCODE, ErrorCode.BAD_LENGTH):
            body = cobs_decode(item.raw)
            res.append(("frame", body[0], body[1], body[2:-2]))
        else:
            res.append(("error", int(item.code)))
    return res


async def monitor(dut, got: list) -> None:
    while True:
        await RisingEdge(dut.clk_i)
        if int(dut.frame_valid_o.value) and int(dut.frame_ready_i.value):
            plen = int(dut.plen_o.value)
            payload = unpack_payload(int(dut.payload_o.value), PMAX, plen)
            got.append(("frame", int(dut.seq_o.value), int(dut.op_o.value), payload))
        if int(dut.err_valid_o.value):
            got.append(("error", int(dut.err_code_o.value)))


@cocotb.test()
async def frame_rx_random_stream(dut) -> None:
    rng = random.Random(4)
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.byte_valid_i.value = 0
    dut.byte_err_i.value = 0
    dut.frame_ready_i.value = 1
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 3)
    dut.rst_i.value = 0
    got: list = []
    cocotb.start_soon(monitor(dut, got))
    stream = make_stream(rng, 150)
    for b in stream:
        dut.byte_i.value = b
        dut.byte_valid_i.value = 1
        await RisingEdge(dut.clk_i)
        dut.byte_valid_i.value = 0
        for _ in range(rng.choice([2, 2, 3, 5])):  # bytes >= 3 cycles apart (interface rule)
            await RisingEdge(dut.clk_i)
    await ClockCycles(dut.clk_i, 5)
    exp = expected(stream)
    assert len([e for e in exp if e[0] == "error"]) > 10
    assert got == exp
    # A UART framing error inside a frame makes it a FRAMING error.
    got.clear()
    frame = encode(random_message(rng, ("command",)), 7)
    for i, b in enumerate(frame):
        if i == 2:
            dut.byte_err_i.value = 1
            await RisingEdge(dut.clk_i)
            dut.byte_err_i.value = 0
        dut.byte_i.value = b
        dut.byte_valid_i.value = 1
        await RisingEdge(dut.clk_i)
        dut.byte_valid_i.value = 0
        await ClockCycles(dut.clk_i, 2)
    await ClockCycles(dut.clk_i, 3)
    assert got == [("error", int(ErrorCode.FRAMING))]


@pytest.mark.rtl
@pytest.mark.parametrize("wpos", [1, 0])  # 1: the ECP5 builds' write flags, 0: the HX8K's
def test_frame_rx(tmp_path, wpos: int) -> None:
    run_cocotb(tmp_path, "frame_rx", "test_hdl_frame_rx", parameters={"PMAX": PMAX, "WPOS": wpos})
