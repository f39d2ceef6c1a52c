"""top: the whole device through its pins, speaking the real wire protocol with the host codec.

Registers, retry semantics, every NAK code, bad frames, schedules (herald, LATE, OVERFLOW,
ABORT), headers and FREE, and event-FIFO overflow with seq gaps and the EVENT_OVERFLOW report.
"""

from __future__ import annotations

import os
import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotb_run import run_cocotb
from hostbfm import Host
from test_hdl_header import header
from twin_oracle import HDR_LAT

from hwctl.sim.uartbfm import send_bytes
from hwctl.wire import (
    DEVICE_ID,
    WIRE_VERSION,
    Abort,
    Ack,
    Done,
    DoneReason,
    Error,
    ErrorCode,
    FrameDecoder,
    Free,
    FreeMask,
    Header,
    Herald,
    Late,
    Message,
    Nak,
    Opcode,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    Schedule,
    Time,
    TimeValue,
    crc16,
    encode,
)
from hwctl.wire.features import ALL_FEATURES

try:  # the software twin is the golden model where timing does not matter
    from hwctl.sim.twin.model import TwinConfig, TwinModel

    HAVE_TWIN = True
except Exception:  # pragma: no cover - twin missing or broken: that test is skipped, not faked
    HAVE_TWIN = False

CPB = 4
HDR_BIT = 4
TS_INIT = 2**32 - 20_000


async def setup(dut) -> Host:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    host = Host(dut, CPB)
    await host.start()
    return host


@cocotb.test()
async def top_registers_retry_and_naks(dut) -> None:
    host = await setup(dut)
    rq = host.request
    assert await rq(RegRead(Reg.ID), 1) == RegValue(Reg.ID, DEVICE_ID)
    # (the default top is the full build profile: every feature bit in VERSION 31:16)
    assert await rq(RegRead(Reg.VERSION), 2) == RegValue(Reg.VERSION, WIRE_VERSION | ALL_FEATURES << 16)
    assert await rq(RegRead(Reg.CONTROL), 3) == RegValue(Reg.CONTROL, 3)
    assert await rq(RegRead(0x0E), 4) == Nak(Opcode.REG_READ, ErrorCode.BAD_REG)
    assert await rq(RegWrite(Reg.ID, 5), 5) == Nak(Opcode.REG_WRITE, ErrorCode.BAD_REG)
    assert await rq(RegWrite(Reg.SCRATCH, 0xDEADBEEF), 6) == Ack(Opcode.REG_WRITE)
    # Retry: same seq -> same response, not executed again.
    assert await rq(RegWrite(Reg.SCRATCH, 0x12345678), 6) == Ack(Opcode.REG_WRITE)
    assert await rq(RegRead(Reg.SCRATCH), 7) == RegValue(Reg.SCRATCH, 0xDEADBEEF)
    # REG_READ and TIME are re-executed on retry.
    assert await rq(RegWrite(Reg.SCRATCH, 1), 8) == Ack(Opcode.REG_WRITE)
    assert await rq(RegRead(Reg.SCRATCH), 8) == RegValue(Reg.SCRATCH, 1)
    t_a = await rq(Time(), 9)
    t_b = await rq(Time(), 9)
    assert isinstance(t_a, TimeValue) and isinstance(t_b, TimeValue) and t_b.ts > t_a.ts
    assert TS_INIT < t_a.ts < host.now()
    # NAK codes.
    assert await rq(Free(3), 10) == Nak(Opcode.FREE, ErrorCode.BAD_SLOT)
    assert await rq(Schedule(host.now() + 10**6, 0, 10, 2), 11) == Nak(Opcode.SCHEDULE, ErrorCode.BAD_ARG)
    assert await rq(Schedule(host.now() + 10**6, 1, 3, 2), 12) == Nak(Opcode.SCHEDULE, ErrorCode.BAD_ARG)
    assert await rq(Schedule(host.now() + 10**6, 1, 4, 0), 13) == Nak(Opcode.SCHEDULE, ErrorCode.BAD_ARG)
    assert await rq(Ack(1), 14) == Nak(Opcode.ACK, ErrorCode.BAD_OPCODE)

    def raw(seq: int, op: int, payload: bytes) -> bytes:
        from hwctl.wire import cobs_encode

        body = bytes((seq, op)) + payload
        return cobs_encode(body + crc16(body).to_bytes(2, "big")) + b"\x00"

    n = len(host.responses)
    await host.send_raw(raw(15, 0x77, b""))
    await host.send_raw(raw(16, Opcode.REG_READ, b"\x00\x00"))
    await ClockCycles(dut.clk_i, 40 * CPB * 10)
    assert [f.msg for f in host.responses[n:]] == [
        Nak(0x77, ErrorCode.BAD_OPCODE), Nak(Opcode.REG_READ, ErrorCode.BAD_LENGTH)]
    # A corrupted frame: no response, ERROR(CRC, info=ERR_CRC) event, counted.
    bad = bytearray(encode(RegWrite(Reg.SCRATCH, 0x11111111), 17))
    bad[4] ^= 0x02  # a data byte, stays non-zero: COBS is fine, the CRC is not
    assert [e.code for e in FrameDecoder().feed(bytes(bad))] == [ErrorCode.CRC]
    await host.send_raw(bytes(bad))
    await host.send_raw(b"\x05\x01\x00")  # COBS block runs past the delimiter: FRAMING
    ev = await host.wait_events(2)
    assert [e.msg for e in ev] == [Error(ErrorCode.CRC, 1), Error(ErrorCode.FRAMING, 2)]
    assert [e.seq for e in ev] == [0, 1]
    assert await rq(RegRead(Reg.ERR_CRC), 18) == RegValue(Reg.ERR_CRC, 2)
    # CLEAR_COUNTERS.
    assert await rq(RegWrite(Reg.CONTROL, 0b111), 19) == Ack(Opcode.REG_WRITE)
    assert await rq(RegRead(Reg.ERR_CRC), 20) == RegValue(Reg.ERR_CRC, 0)
    assert await rq(RegRead(Reg.CONTROL), 21) == RegValue(Reg.CONTROL, 3)
    assert not host.errors


@cocotb.test()
async def top_schedules(dut) -> None:
    host = await setup(dut)
    rq = host.request
    # Herald on the third attempt (detector 1); attempt 1 has both detectors (counted).
    t0 = host.now() + 3000
    assert await rq(Schedule(t0, 10, 50, 5), 1) == Ack(Opcode.SCHEDULE)
    clicks = [(t0 + 50 + 1, 0), (t0 + 50 + 3, 1), (t0 + 100 + 4, 1), (t0 + 150 + 5, 0)]
    for ts, det in clicks:
        cocotb.start_soon(host.click(ts, det))
    ev = await host.wait_events(1)
    assert ev[0].msg == Herald(t0 + 104, 1, 2)
    # Late by one cycle is LATE (t_start < now); the LATE event carries the check time.
    t_late = host.now() - 1
    assert await rq(Schedule(t_late, 1, 4, 1), 2) == Ack(Opcode.SCHEDULE)
    ev = await host.wait_events(2)
    assert isinstance(ev[1].msg, Late) and ev[1].msg.t_start == t_late
    assert t_late < ev[1].msg.now < host.now()
    # Overflow: one waiting + 4 queued, the sixth is refused.
    far = host.now() + 10**7
    for i in range(5):
        assert await rq(Schedule(far + i * 1000, 3, 10, 2), 10 + i) == Ack(Opcode.SCHEDULE)
    assert await rq(Schedule(far, 3, 10, 2), 15) == Nak(Opcode.SCHEDULE, ErrorCode.OVERFLOW)
    st = await rq(RegRead(Reg.STATUS), 16)
    assert st == RegValue(Reg.STATUS, 0b011)
    assert await rq(Abort(), 17) == Ack(Opcode.ABORT)
    ev = await host.wait_events(3)
    assert isinstance(ev[2].msg, Done) and ev[2].msg.reason == DoneReason.ABORTED
    assert ev[2].msg.attempts == 0
    # Exhaustion.
    t1 = host.now() + 3000
    assert await rq(Schedule(t1, 3, 20, 4), 18) == Ack(Opcode.SCHEDULE)
    ev = await host.wait_events(4)
    assert ev[3].msg == Done(t1 + 2 * 20 + 4, 3, DoneReason.EXHAUSTED)
    expect = {Reg.ERR_LATE: 1, Reg.ERR_OVERFLOW: 1, Reg.CNT_HERALD: 1, Reg.CNT_BOTH: 1,
              Reg.CNT_ATTEMPTS: 6, Reg.STATUS: 0}
    for i, (reg, value) in enumerate(expect.items()):
        assert await rq(RegRead(reg), 30 + i) == RegValue(reg, value)
    assert [e.seq for e in host.events] == [0, 1, 2, 3]
    assert host.now() > 2**32  # ran across the low-word wrap
    assert not host.errors


async def send_header(dut, data: bytes) -> int:
    """Drive a header on hdr_i; returns the timestamp its CRC stop bit is sampled."""
    host_ts = int(dut.u_core.ts_o.value)
    await send_bytes(dut.clk_i, dut.hdr_i, data, HDR_BIT)
    # send_bytes starts driving in the cycle after host_ts; stop bit middle of the last byte:
    return host_ts + 1 + (len(data) - 1) * 10 * HDR_BIT + 9 * HDR_BIT + HDR_BIT // 2 + HDR_LAT


@cocotb.test()
async def top_headers_and_event_overflow(dut) -> None:
    host = await setup(dut)
    rq = host.request
    ts = await send_header(dut, header(0x01020304))
    ev = await host.wait_events(1)
    assert ev[0].msg == Header(0x01020304, ts, 0)
    bad = bytearray(header(5))
    bad[-1] ^= 0x10
    await send_header(dut, bytes(bad))
    ev = await host.wait_events(2)
    assert ev[1].msg == Error(ErrorCode.BAD_HEADER, 1)
    assert await rq(RegRead(Reg.SLOTS_FREE), 1) == RegValue(Reg.SLOTS_FREE, 1)
    assert await rq(Free(0), 2) == Ack(Opcode.FREE)
    assert await rq(Free(0), 3) == Nak(Opcode.FREE, ErrorCode.BAD_SLOT)
    ts = await send_header(dut, header(7))
    ev = await host.wait_events(3)
    assert ev[2].msg == Header(7, ts, 0)
    # FREE_MASK is all or nothing: slot 1 is not allocated, so slot 0 stays held
    assert await rq(FreeMask(0, 0b11), 4) == Nak(Opcode.FREE_MASK, ErrorCode.BAD_SLOT)
    assert await rq(FreeMask(0, 0), 5) == Nak(Opcode.FREE_MASK, ErrorCode.BAD_ARG)
    assert await rq(FreeMask(0, 1), 6) == Ack(Opcode.FREE_MASK)
    assert await rq(RegRead(Reg.SLOTS_FREE), 7) == RegValue(Reg.SLOTS_FREE, 2)
    # Headers arrive faster than event frames drain (2-entry event FIFO): events are lost loudly.
    n_hdr = 12
    for i in range(n_hdr):
        await send_header(dut, header(100 + i))
    await ClockCycles(dut.clk_i, 40 * 10 * CPB * 6)
    evs = host.events[3:]
    lost = (await rq(RegRead(Reg.EVT_LOST), 8)).value
    assert lost > 0
    over = [e for e in evs if isinstance(e.msg, Error) and e.msg.code == ErrorCode.EVENT_OVERFLOW]
    assert sum(e.msg.info for e in over) == lost
    # Every event seq is accounted for: received + lost = consumed.
    seqs = [e.seq for e in evs]
    assert seqs[-1] - seqs[0] + 1 == len(evs) + lost
    # 2 slots: the first two headers get slots, the rest NO_SLOT (those not lost).
    got_hdr = [e.msg for e in evs if isinstance(e.msg, Header)]
    assert [h.slot for h in got_hdr] == [0, 1][: len(got_hdr)]
    assert await rq(RegRead(Reg.CNT_HEADERS), 9) == RegValue(Reg.CNT_HEADERS, 2 + n_hdr)
    assert not host.errors


def random_command(rng: random.Random) -> bytes | Message:
    """A command whose response does not depend on timing (no valid SCHEDULE, no TIME)."""
    k = rng.randrange(10)
    if k == 0:
        # every register address of the node and the station, and beyond (the station's read
        # as unknown on a node)
        return RegRead(rng.choice([*range(0x20), 0x3F, 0xFF]))
    if k == 1:
        addr = rng.choice([Reg.CONTROL, Reg.SCRATCH, Reg.SCRATCH, Reg.ID, Reg.ERR_CRC, 0x0E])
        value = rng.randrange(8) if addr == Reg.CONTROL else rng.getrandbits(32)
        return RegWrite(addr, value)
    if k == 2:
        if rng.random() < 0.5:
            return Free(rng.randrange(4))
        return FreeMask(rng.randrange(5), rng.choice([0, 1, 3, rng.getrandbits(240)]))
    if k == 3:
        return Abort()
    if k == 4:
        return Schedule(rng.getrandbits(64), 0, 10, 2)  # BAD_ARG
    if k == 5:
        return Ack(rng.randrange(256))  # not a command
    if k == 6:  # raw body: unknown opcode or wrong length

        body = bytes((0, rng.choice([0x00, 0x07, 0x7F, Opcode.FREE, Opcode.TIME])))
        body += bytes(rng.randrange(256) for _ in range(rng.choice([2, 3, 7])))
        return body
    if k == 7:  # corrupted frame: ERROR(CRC) event, no response
        return b"corrupt"
    return RegRead(rng.choice([Reg.SCRATCH, Reg.CONTROL, Reg.ERR_CRC, Reg.SLOTS_FREE]))


@cocotb.test(skip=not HAVE_TWIN)
async def top_random_commands_vs_twin(dut) -> None:
    """Random command soup (with retries and corrupted frames) scored against the twin."""
    from hwctl.wire import cobs_encode

    rng = random.Random(int(os.environ.get("HWCTL_SEED", "12")))
    n_cmds = int(os.environ.get("HWCTL_CMDS", "60"))
    host = await setup(dut)
    twin = TwinModel(TwinConfig(n_slots=2, uart_cycles_per_byte=0, p_photon=0.0, n_ports=2))
    tdec = FrameDecoder()
    twin_events = []
    seq = 0
    n_resp = 0
    for _ in range(n_cmds):
        if rng.random() > 0.3:
            seq = (seq + 1) & 0xFF
        cmd = random_command(rng)
        if isinstance(cmd, bytes):
            if cmd == b"corrupt":
                raw = bytearray(encode(RegWrite(Reg.SCRATCH, 0x11111111), seq))
                raw[4] ^= 0x02
                wire = bytes(raw)
            else:
                body = bytes((seq,)) + cmd[1:]
                wire = cobs_encode(body + crc16(body).to_bytes(2, "big")) + b"\x00"
        else:
            wire = encode(cmd, seq)
        twin.feed(wire)
        expect = []
        for item in tdec.feed(twin.read()):
            if item.msg.KIND == "event":
                twin_events.append(item)
            else:
                expect.append(item)
        await host.send_raw(wire)
        if expect:
            for _ in range(20000):
                await ClockCycles(dut.clk_i, 1)
                if len(host.responses) > n_resp:
                    break
            assert host.responses[n_resp:] == expect, f"{cmd!r}"
            n_resp += 1
        else:
            await ClockCycles(dut.clk_i, 40 * 10 * CPB)
            assert len(host.responses) == n_resp, f"unexpected response to {cmd!r}"
    await ClockCycles(dut.clk_i, 40 * 10 * CPB)
    assert host.events == twin_events
    assert twin_events, "the soup should contain corrupted frames"
    assert not host.errors


@pytest.mark.rtl
@pytest.mark.parametrize("case", ["top_registers_retry_and_naks", "top_schedules",
                                  "top_headers_and_event_overflow", "top_random_commands_vs_twin"])
@pytest.mark.heavy  # >= 10 s: CI only, not the quick loop
def test_top(tmp_path, case: str) -> None:
    # one simulator run per case (each within the per-test timeout on a loaded machine)
    run_cocotb(tmp_path, "top", "test_hdl_top", parameters={
        "CLKS_PER_BIT": CPB, "HDR_BIT_CYCLES": HDR_BIT, "N_SLOTS": 2, "EVT_AW": 1,
        "TS_INIT": TS_INIT}, testcase=case)
