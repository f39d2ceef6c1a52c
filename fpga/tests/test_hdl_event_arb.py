"""event_arb: three sources into a small event FIFO with a slow reader.

Invariants checked (no cycle model needed): per-source order kept; every event either read or
counted lost; seq gaps add up to the loss count; ERROR(EVENT_OVERFLOW) infos add up to it too;
no loss at all with a fast reader.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge
from cocotb_run import run_cocotb

from hwctl.wire import ErrorCode, Opcode

AW = 2


async def run_traffic(dut, rng: random.Random, cycles: int, p_src: float, p_rd: float,
                      p_tok: float = 0.0):
    """p_tok (TOK = 1): HDR_BLOCK token pulses (sent[3], never dropped) and, a fifth as often,
    blocks lost before the FIFO (lost_i, sent[4]: they count as lost events)."""
    sent: list[list[tuple[int, int]]] = [[], [], [], [], []]
    got: list[tuple[int, int, int]] = []
    lost = 0
    for _ in range(cycles):
        valid = 0
        ops = 0
        pls = 0
        for s in range(3):
            if rng.random() < p_src:
                op = rng.choice([Opcode.HERALD, Opcode.DONE, Opcode.LATE, Opcode.HEADER])
                pl = rng.getrandbits(128)
                valid |= 1 << s
                ops |= op << (8 * s)
                pls |= pl << (128 * s)
                sent[s].append((op, pl))
        # Inputs are driven and outputs sampled at the falling edge (settled values).
        rd = int(not int(dut.empty_o.value) and rng.random() < p_rd)
        # (at most 8 tokens outstanding, as hdr_block's 8 buffers allow; TW = 4 counts 15)
        n_tok_got = sum(1 for g in got if g[1] == Opcode.HDR_BLOCK)
        tok = int(rng.random() < p_tok and len(sent[3]) - n_tok_got < 8)
        blost = int(rng.random() < p_tok / 5)
        if tok:
            sent[3].append((Opcode.HDR_BLOCK, 0))
        if blost:
            sent[4].append((0, 0))
        dut.tok_i.value = tok
        dut.lost_i.value = blost
        dut.valid_i.value = valid
        dut.op_i.value = ops
        dut.payload_i.value = pls
        dut.rd_en_i.value = rd
        await FallingEdge(dut.clk_i)
        lost += int(dut.lost_o.value)
        if rd:  # registered read: the popped entry is on dout_o after the rising edge
            v = int(dut.dout_o.value)
            got.append((v >> 136, (v >> 128) & 0xFF, v & ((1 << 128) - 1)))
    dut.valid_i.value = 0
    dut.tok_i.value = 0
    dut.mrk_i.value = 0
    dut.lost_i.value = 0
    # drain
    for _ in range(200):
        rd = int(not int(dut.empty_o.value))
        dut.rd_en_i.value = rd
        await FallingEdge(dut.clk_i)
        lost += int(dut.lost_o.value)
        if rd:  # registered read: the popped entry is on dout_o after the rising edge
            v = int(dut.dout_o.value)
            got.append((v >> 136, (v >> 128) & 0xFF, v & ((1 << 128) - 1)))
    dut.rd_en_i.value = 0
    return sent, got, lost


def check(sent, got, lost) -> int:
    overflow_info = 0
    events = []
    toks = 0
    for _seq, op, pl in got:
        if op == Opcode.HDR_BLOCK:
            assert pl == 0
            toks += 1
        elif op == Opcode.ERROR:
            assert pl >> 120 == ErrorCode.EVENT_OVERFLOW
            overflow_info += (pl >> 88) & 0xFFFF_FFFF
        else:
            events.append((op, pl))
    # each source's events arrive in order (subsequence of what it sent)
    for s in range(3):
        it = iter(events)
        mine = [e for e in sent[s] if e in events]
        assert all(any(e == x for x in it) for e in mine)
    assert toks == len(sent[3])  # tokens are never dropped
    total = sum(len(x) for x in sent[:3]) + len(sent[4])
    assert len(events) + lost == total
    assert overflow_info == lost
    seqs = [g[0] for g in got]
    gaps = sum(((b - a) % 256) - 1 for a, b in zip(seqs, seqs[1:], strict=False))
    assert gaps == lost  # every lost event consumed one seq
    return lost


@cocotb.test()
async def event_arb_overflow_accounting(dut) -> None:
    rng = random.Random(8)
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.valid_i.value = 0
    dut.rd_en_i.value = 0
    dut.tok_i.value = 0
    dut.mrk_i.value = 0
    dut.lost_i.value = 0
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 3)
    dut.rst_i.value = 0
    await FallingEdge(dut.clk_i)
    # fast reader, sparse sources: nothing lost
    sent, got, lost = await run_traffic(dut, rng, 400, 0.05, 1.0)
    assert check(sent, got, lost) == 0 and len(got) == sum(len(x) for x in sent)
    # slow reader, busy sources: losses, all accounted for
    sent, got, lost = await run_traffic(dut, rng, 600, 0.2, 0.1)
    assert check(sent, got, lost) > 0
    if int(dut.TOK.value):
        # HDR_BLOCK tokens among busy sources and a slow reader: none dropped, lost blocks
        # accounted like lost events
        sent, got, lost = await run_traffic(dut, rng, 800, 0.1, 0.15, p_tok=0.05)
        assert check(sent, got, lost) > 0 and len(sent[3]) > 10


@pytest.mark.rtl
# fast 1: the node's ECP5 builds (FAST = INSTAGE = 1: the pick cone from registered flags, the
# input stage inside event_arb)
@pytest.mark.parametrize(("lpw", "tok", "fast"), [(16, 0, 0), (3, 0, 0), (16, 1, 0), (16, 1, 1),
                                                  (3, 0, 1)])
def test_event_arb(tmp_path, lpw: int, tok: int, fast: int) -> None:
    # LPW = 3: the lost count's low half carries every 8 losses (the split-adder path)
    run_cocotb(tmp_path, "event_arb", "test_hdl_event_arb",
               parameters={"AW": AW, "LPW": lpw, "TOK": tok, "FAST": fast, "INSTAGE": fast})
