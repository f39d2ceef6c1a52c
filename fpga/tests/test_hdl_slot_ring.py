"""slot_ring (docs/header-path.md section 3): the block-mode slot ring against a Python model.

The model is the contract's rule: arrival k takes the next slot after arrival k-1's slot (mod
N_SLOTS) that is not pinned (slot 0 first after reset); PIN/UNPIN are all or nothing (mask 0 ->
BAD_ARG, a slot >= N_SLOTS -> BAD_SLOT); CNT_PINNED / SLOTS_FREE follow. Randomized takes and pin
changes (many in one word, across words, whole ring pinned -> no slot, unpinned again), and the
search's worst case (one unpinned slot left) is measured against the bound in slot_ring.v.
"""

from __future__ import annotations

import os
import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotb_run import run_cocotb

MW = 240


class RingModel:
    """docs/header-path.md section 3 (slots, pins), one slot per take."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pinned: set[int] = set()
        self.cur = n - 1

    def next_slot(self) -> int | None:
        for k in range(1, self.n + 1):
            s = (self.cur + k) % self.n
            if s not in self.pinned:
                return s
        return None

    def pin(self, set_: bool, base: int, mask: int) -> int:
        if mask == 0:
            return 1
        slots = [base + i for i in range(MW) if mask >> i & 1]
        if any(s >= self.n for s in slots):
            return 2
        for s in slots:
            if set_:
                self.pinned.add(s)
            else:
                self.pinned.discard(s)
        return 0


async def reset(dut) -> None:
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.take_i.value = 0
    dut.pin_i.value = 0
    dut.load_i.value = 0
    dut.set_i.value = 0
    dut.base_i.value = 0
    dut.mask_i.value = 0
    dut.rst_i.value = 1
    await ClockCycles(dut.clk_i, 2)
    dut.rst_i.value = 0


async def wait_ready(dut, limit: int) -> int:
    """Cycles until nxt_rdy_o (limit only bounds a hang)."""
    for c in range(limit):
        await FallingEdge(dut.clk_i)
        if int(dut.nxt_rdy_o.value):
            return c
    raise AssertionError("slot_ring: no search result")


async def check(dut, m: RingModel, n: int) -> int:
    c = await wait_ready(dut, 4 * n)
    want = m.next_slot()
    assert int(dut.nxt_ok_o.value) == (want is not None)
    if want is not None:
        assert int(dut.nxt_slot_o.value) == want, (int(dut.nxt_slot_o.value), want)
    await ClockCycles(dut.clk_i, 2)
    await FallingEdge(dut.clk_i)
    assert int(dut.pinned_o.value) == len(m.pinned)
    assert int(dut.free_o.value) == n - len(m.pinned)
    return c


async def take(dut, m: RingModel) -> None:
    await wait_ready(dut, 4 * m.n)
    assert int(dut.nxt_ok_o.value)
    dut.take_i.value = 1
    await RisingEdge(dut.clk_i)
    dut.take_i.value = 0
    s = m.next_slot()
    assert s is not None
    m.cur = s


async def pin(dut, m: RingModel, set_: bool, base: int, mask: int) -> None:
    """load (check while takes go on), then, if the check passes, apply (pin_i)."""
    await FallingEdge(dut.clk_i)
    assert not int(dut.busy_o.value)
    dut.set_i.value = int(set_)
    dut.base_i.value = base
    dut.mask_i.value = mask
    dut.load_i.value = 1
    await RisingEdge(dut.clk_i)
    dut.load_i.value = 0
    dut.mask_i.value = 0   # (the frame buffer may change after the load)
    dut.base_i.value = 0
    want = m.pin(set_, base, mask)
    for _ in range(MW + 20):
        await FallingEdge(dut.clk_i)
        if int(dut.chk_ok_o.value) or int(dut.pin_done_o.value):
            break
    else:
        raise AssertionError("slot_ring: no check result")
    if int(dut.pin_done_o.value):
        assert want != 0 and int(dut.pin_err_o.value) == want
        return
    assert want == 0
    await ClockCycles(dut.clk_i, 3)   # (the caller closes its block in between)
    await FallingEdge(dut.clk_i)
    dut.pin_i.value = 1
    await RisingEdge(dut.clk_i)
    dut.pin_i.value = 0
    for _ in range(2 * MW + 200):
        await FallingEdge(dut.clk_i)
        if int(dut.pin_done_o.value):
            break
    else:
        raise AssertionError("slot_ring: pin change did not finish")
    assert int(dut.pin_err_o.value) == 0


def rand_mask(rng: random.Random, bits: int) -> int:
    k = rng.choice([1, 2, 5, 16, 40, bits])
    mask = 0
    for _ in range(k):
        mask |= 1 << rng.randrange(bits)
    return mask


@cocotb.test()
async def ring_random(dut) -> None:
    n = int(dut.N_SLOTS.value)
    rng = random.Random(int(os.environ.get("RING_SEED", "14")))
    steps = int(os.environ.get("RING_STEPS", "120"))
    m = RingModel(n)
    await reset(dut)
    await check(dut, m, n)
    for _ in range(steps):
        r = rng.random()
        if r < 0.55:
            if m.next_slot() is not None:
                await take(dut, m)
        elif r < 0.9:
            # mostly near the current slot (the ring skips them on the next takes)
            base = (m.cur + rng.randrange(-8, 40)) % n
            mask = rand_mask(rng, min(MW, n - base))
            await pin(dut, m, rng.random() < 0.7, base, mask)
        else:
            # mistakes: empty mask, slots past the ring, base past the ring
            case = rng.randrange(3)
            if case == 0:
                await pin(dut, m, True, rng.randrange(n), 0)
            elif case == 1:
                await pin(dut, m, True, n - rng.randrange(1, MW), rand_mask(rng, MW) | 1 << (MW - 1))
            else:
                await pin(dut, m, rng.random() < 0.5, n + rng.randrange(100), 1)
        await check(dut, m, n)


@cocotb.test()
async def ring_exhaustion(dut) -> None:
    """Pin the whole ring (no slot), unpin one slot (the only one taken, repeatedly), worst-case
    search time, then unpin everything (takes resume after the current slot)."""
    n = int(dut.N_SLOTS.value)
    w = int(dut.W.value)
    m = RingModel(n)
    await reset(dut)
    await check(dut, m, n)
    for _ in range(3):
        await take(dut, m)
    await check(dut, m, n)
    full = (1 << MW) - 1
    for base in range(0, n, MW):
        await pin(dut, m, True, base, full & ((1 << (n - base)) - 1))
    await check(dut, m, n)
    assert not int(dut.nxt_ok_o.value)
    assert int(dut.free_o.value) == 0
    # one unpinned slot just behind the current one: the longest search
    lone = (m.cur - 1) % n
    await pin(dut, m, False, lone, 1)
    await check(dut, m, n)
    await take(dut, m)
    worst = await check(dut, m, n)
    assert m.cur == lone and int(dut.nxt_slot_o.value) == lone
    bound = n // w + 7
    assert worst <= bound, (worst, bound)
    dut._log.info("worst-case search: %d cycles after the take (bound %d)", worst + 1, bound)
    for base in range(0, n, MW):
        await pin(dut, m, False, base, full & ((1 << (n - base)) - 1))
    await check(dut, m, n)
    await take(dut, m)
    await check(dut, m, n)


@pytest.mark.rtl
@pytest.mark.parametrize(("n", "lutram", "family"),
                         [(64, 0, None), (2048, 0, None), (64, 1, None), (2048, 1, None),
                          (8192, 1, None), (8192, 1, "ecp5"), (2048, 2, None)])
def test_slot_ring(tmp_path, n: int, lutram: int, family: str | None) -> None:
    """LUTRAM = 1 (ram_sdp_oreg: block RAM with output register; 8192 slots as the node builds
    it) and 2 (LUT RAM banks: 2048 slots, 4 banks) must behave as the block RAM, cycle for cycle.
    ``ecp5``: the ECP5 build's RTL (fpga/rtl/ecp5/ram_sdp_oreg.v, a DP16KD with its output
    register, simulated by fpga/tests/hdl/DP16KD.v) in place of the behavioural ram_sdp_oreg."""
    run_cocotb(tmp_path, "slot_ring", "test_hdl_slot_ring",
               parameters={"N_SLOTS": n, "LUTRAM": lutram}, family=family)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slot_ring_long(tmp_path, seed: int) -> None:
    run_cocotb(tmp_path, "slot_ring", "test_hdl_slot_ring", parameters={"N_SLOTS": 2048},
               extra_env={"RING_SEED": str(seed), "RING_STEPS": "1500"}, testcase="ring_random")
