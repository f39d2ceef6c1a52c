"""frame_tx: every response/event message, random fields and back-pressure, decodes on the host.

The host's own FrameDecoder (hwctl.wire) is the reference: the RTL must produce frames it accepts
with the same seq and message.
"""

from __future__ import annotations

import binascii
import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb_run import run_cocotb
from wirehelp import pack_payload, random_message

from hwctl.wire import Frame, FrameDecoder

PMAX = 16


async def sink(dut, rng: random.Random, out: bytearray) -> None:
    while True:
        dut.byte_ready_i.value = 1 if rng.random() < 0.5 else 0
        await RisingEdge(dut.clk_i)
        if int(dut.byte_valid_o.value) and int(dut.byte_ready_i.value):
            out.append(int(dut.byte_o.value))


@cocotb.test()
async def frame_tx_random_messages(dut) -> None:
    rng = random.Random(3)
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.valid_i.value = 0
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 3)
    dut.rst_i.value = 0
    out = bytearray()
    cocotb.start_soon(sink(dut, rng, out))
    sent = []
    for _ in range(60):
        msg = random_message(rng, ("response", "event"))
        seq = rng.choice([0, 255, rng.randrange(256)])
        data = msg.pack()
        dut.seq_i.value = seq
        dut.op_i.value = msg.OPCODE
        dut.len_i.value = len(data)
        dut.payload_i.value = pack_payload(data, PMAX)
        dut.valid_i.value = 1
        await RisingEdge(dut.clk_i)
        while not int(dut.ready_o.value):
            await RisingEdge(dut.clk_i)
        dut.valid_i.value = 0
        sent.append(Frame(seq, msg))
    await ClockCycles(dut.clk_i, 200)
    dec = FrameDecoder()
    got = list(dec.feed(bytes(out)))
    assert got == sent
    assert dec.stats.error_total == 0


def _crc_zero_frames(rng: random.Random) -> list[tuple[int, object]]:
    """(seq, message) pairs whose CRC high or low byte is 0x00: the COBS encoder must treat the
    CRC bytes like any other byte (a zero ends a block and is skipped)."""
    out: list[tuple[int, object]] = []
    want = {"hi": 3, "lo": 3}
    while any(v > 0 for v in want.values()):
        msg = random_message(rng, ("response", "event"))
        for seq in range(256):
            crc = binascii.crc_hqx(bytes([seq, msg.OPCODE]) + msg.pack(), 0xFFFF)
            kind = "hi" if crc >> 8 == 0 else "lo" if crc & 0xFF == 0 else None
            if kind and want[kind] > 0:
                want[kind] -= 1
                out.append((seq, msg))
                break
    return out


@cocotb.test()
async def frame_tx_zero_crc_bytes(dut) -> None:
    rng = random.Random(11)
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.valid_i.value = 0
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 3)
    dut.rst_i.value = 0
    out = bytearray()
    cocotb.start_soon(sink(dut, rng, out))
    sent = []
    for seq, msg in _crc_zero_frames(rng):
        data = msg.pack()
        dut.seq_i.value = seq
        dut.op_i.value = msg.OPCODE
        dut.len_i.value = len(data)
        dut.payload_i.value = pack_payload(data, PMAX)
        dut.valid_i.value = 1
        await RisingEdge(dut.clk_i)
        while not int(dut.ready_o.value):
            await RisingEdge(dut.clk_i)
        dut.valid_i.value = 0
        sent.append(Frame(seq, msg))
    await ClockCycles(dut.clk_i, 300)
    dec = FrameDecoder()
    assert list(dec.feed(bytes(out))) == sent
    assert dec.stats.error_total == 0


@pytest.mark.rtl
def test_frame_tx(tmp_path) -> None:
    run_cocotb(tmp_path, "frame_tx", "test_hdl_frame_tx", parameters={"PMAX": PMAX})
