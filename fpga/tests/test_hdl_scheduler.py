"""Scheduler + herald + counter (attempt_core) scored against the software twin (twin_oracle.py).

Randomized batches of SCHEDULE entries (late by a few cycles, exactly on time, in the future) with
random detector clicks (none, one, both, repeated, just outside the window), across the 2^32
low-word wrap of the timestamp; directed tests for FIFO full and ABORT.
"""

from __future__ import annotations

import os
import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb_run import run_cocotb
from twin_oracle import DET_LAT, SCHED_CHECK_LAT, Entry, decode_event, run_schedules

from hwctl.wire import Done, DoneReason, Herald, Message

TS_INIT = 2**32 - 1500
AW = 2


class Bench:
    def __init__(self, dut) -> None:
        self.dut = dut
        self.events: list[Message] = []
        self.fires: list[int] = []
        self.counts = {"late": 0, "both": 0, "herald": 0}
        self.ts = 0

    async def start(self) -> None:
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
        dut.det_i.value = 0
        dut.load_i.value = 0  # TIME_SET load (not used here)
        dut.val_i.value = 0
        dut.val4_i.value = 0
        dut.herald_en_i.value = 1
        dut.push_i.value = 0
        dut.abort_i.value = 0
        dut.t_start_i.value = 0
        dut.count_i.value = 0
        dut.period_i.value = 0
        dut.window_i.value = 0
        dut.rst_i.value = 1
        await ClockCycles(dut.clk_i, 3)
        dut.rst_i.value = 0
        cocotb.start_soon(self.monitor())
        await RisingEdge(dut.clk_i)
        self.ts = int(dut.ts_o.value)

    async def monitor(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.clk_i)
            self.ts = ts = int(dut.ts_o.value)
            if int(dut.fire_o.value):
                self.fires.append(ts)
            self.counts["late"] += int(dut.cnt_late_o.value)
            self.counts["both"] += int(dut.cnt_both_o.value)
            self.counts["herald"] += int(dut.cnt_herald_o.value)
            if int(dut.ev_valid_o.value):
                self.events.append(decode_event(int(dut.ev_op_o.value), int(dut.ev_payload_o.value)))

    async def wait_ts(self, t: int) -> None:
        """Return right after the edge that starts the cycle whose timestamp is ``t``."""
        while True:
            await RisingEdge(self.dut.clk_i)
            cur = int(self.dut.ts_o.value) + 1
            assert cur <= t, f"missed cycle {t} (now {cur})"
            if cur == t:
                return

    async def push_at(self, p: int, entries: list[Entry]) -> None:
        dut = self.dut
        await self.wait_ts(p)
        for e in entries:
            dut.t_start_i.value = e.t_start
            dut.count_i.value = e.count
            dut.period_i.value = e.period
            dut.window_i.value = e.window
            dut.push_i.value = 1
            await RisingEdge(dut.clk_i)
        dut.push_i.value = 0

    async def drive_clicks(self, clicks: list[tuple[int, int]]) -> None:
        """Drive detector pins so each synchronized edge lands at the given timestamp."""
        dut = self.dut
        level = [0, 0]
        todo = sorted((ts - DET_LAT, det) for ts, det in clicks)
        off: list[tuple[int, int]] = []
        while todo or off:
            await RisingEdge(dut.clk_i)
            cur = int(dut.ts_o.value) + 1
            for t, det in list(off):
                if cur >= t:
                    level[det] = 0
                    off.remove((t, det))
            while todo and todo[0][0] == cur:
                _, det = todo.pop(0)
                level[det] = 1
                off.append((cur + 2, det))
            assert not todo or todo[0][0] > cur, "click schedule fell behind"
            dut.det_i.value = level[0] | (level[1] << 1)

    async def run(self, entries: list[Entry], clicks: list[tuple[int, int]], t_idle: int):
        """Push ``entries`` at ``t_idle`` with ``clicks`` on the detector pins, run until the
        twin's prediction says the last entry is over, and return that prediction (events and
        fires recorded from the RTL in this bench's lists, cleared first)."""
        exp = run_schedules(entries, clicks, t_idle)
        self.events.clear()
        self.fires.clear()
        clicker = cocotb.start_soon(self.drive_clicks(clicks))
        await self.push_at(t_idle, entries)
        while self.ts < exp.end + 4:
            await RisingEdge(self.dut.clk_i)
        await clicker
        return exp


def gen_batch(rng: random.Random, t_idle: int, n: int, last_click: dict[int, int]):
    """Entries and clicks for one batch, choosing start times relative to the model's checks."""
    entries: list[Entry] = []
    clicks: list[tuple[int, int]] = []

    def add_click(ts: int, det: int) -> None:
        if ts - last_click.get(det, -100) >= 5:
            clicks.append((ts, det))
            last_click[det] = ts

    end = t_idle
    for _ in range(n):
        check = end + SCHED_CHECK_LAT
        kind = rng.choice(["late", "late1", "now", "future", "future", "future"])
        t_start = {
            "late": check - rng.randint(2, 40),
            "late1": check - 1,
            "now": check,
            "future": check + rng.randint(1, 150),
        }[kind]
        window = rng.randint(1, 8)
        e = Entry(t_start, rng.randint(1, 6), window + 2 + rng.randint(0, 20), window)
        entries.append(e)
        if t_start < check:
            end = check
            continue
        for k in range(e.count):
            tk = e.t(k)
            what = rng.choice(["none", "none", "d0", "d1", "both", "both", "twice", "outside"])
            if what in ("d0", "d1"):
                add_click(tk + rng.randrange(e.window), int(what[1]))
            elif what == "both":
                add_click(tk + rng.randrange(e.window), 0)
                add_click(tk + rng.randrange(e.window), 1)
            elif what == "twice" and e.window >= 6:
                det = rng.randrange(2)
                add_click(tk, det)
                add_click(tk + 5, det)
            elif what == "outside":
                add_click(tk - 1, rng.randrange(2))
                add_click(tk + e.window, rng.randrange(2))
        res = run_schedules([e], clicks, end)
        end = res.end
    return entries, clicks


@cocotb.test()
async def scheduler_random_batches(dut) -> None:
    seed = int(os.environ.get("HWCTL_SEED", "5"))
    batches = int(os.environ.get("HWCTL_BATCHES", "15"))
    rng = random.Random(seed)
    tb = Bench(dut)
    await tb.start()
    last_click: dict[int, int] = {}
    totals = {"late": 0, "both": 0, "herald": 0}
    crossed = False
    for _ in range(batches):
        t_idle = tb.ts + 20
        entries, clicks = gen_batch(rng, t_idle, 2**AW + 1, last_click)
        exp = await tb.run(entries, clicks, t_idle)
        assert tb.events == exp.events
        assert tb.fires == exp.fires
        totals["late"] += exp.late
        totals["both"] += exp.both
        totals["herald"] += exp.heralds
        assert [type(m) for m in exp.events].count(Herald) == exp.heralds
        assert tb.counts == totals
        crossed |= t_idle < 2**32 <= exp.end
    assert tb.ts > 2**32, "test must run across the low-word wrap"
    assert totals["late"] and totals["both"] and totals["herald"]
    dut._log.info("totals %s, crossed wrap inside a batch: %s", totals, crossed)


@cocotb.test()
async def scheduler_fifo_full_and_abort(dut) -> None:
    tb = Bench(dut)
    await tb.start()
    far = tb.ts + 10_000
    p = tb.ts + 5
    entries = [Entry(far + 100 * i, 3, 10, 2) for i in range(2**AW + 1)]
    await tb.push_at(p, entries)
    await ClockCycles(dut.clk_i, 10)
    assert int(dut.full_o.value) == 1  # one running (waiting for t_start) + 2^AW queued
    assert int(dut.running_o.value) == 1
    dut.abort_i.value = 1
    await RisingEdge(dut.clk_i)
    t_abort = int(dut.ts_o.value)
    dut.abort_i.value = 0
    await ClockCycles(dut.clk_i, 3)
    assert tb.events == [Done(t_abort, 0, int(DoneReason.ABORTED))]
    assert int(dut.full_o.value) == 0 and int(dut.running_o.value) == 0
    # Abort in the middle of a run: attempts = fired so far; nothing fires afterwards.
    tb.events.clear()
    t0 = tb.ts + 20
    await tb.push_at(t0 - SCHED_CHECK_LAT - 5, [Entry(t0, 100, 10, 3)])
    await tb.wait_ts(t0 + 35)  # attempts at t0, +10, +20, +30 fired
    dut.abort_i.value = 1
    await RisingEdge(dut.clk_i)
    t_abort = int(dut.ts_o.value)
    dut.abort_i.value = 0
    await ClockCycles(dut.clk_i, 30)
    assert tb.events == [Done(t_abort, 4, int(DoneReason.ABORTED))]
    assert tb.fires[-4:] == [t0, t0 + 10, t0 + 20, t0 + 30] and tb.fires[-1] == t0 + 30
    # HERALD_EN = 0: clicks are ignored, the schedule exhausts.
    tb.events.clear()
    dut.herald_en_i.value = 0
    t0 = tb.ts + 30
    clicks = [(t0 + 1, 0), (t0 + 11, 1)]
    clicker = cocotb.start_soon(tb.drive_clicks(clicks))
    await tb.push_at(t0 - 20, [Entry(t0, 2, 10, 4)])
    await tb.wait_ts(t0 + 25)
    await clicker
    assert tb.events == [Done(t0 + 14, 2, int(DoneReason.EXHAUSTED))]
    assert tb.events == run_schedules([Entry(t0, 2, 10, 4)], clicks, t0 - 20, herald_en=False).events


@cocotb.test()
async def scheduler_period_extremes(dut) -> None:
    """Shortest period (3 = window + 2) and a period past 2^16 (the period counter's high half
    counts; the low half reaches 0 while the high half is 1; period - 3 = 0x10000 starts the low
    half at 0), against the twin."""
    tb = Bench(dut)
    await tb.start()
    t_idle = tb.ts + 20
    t0 = t_idle + 40
    t2 = t0 + 100 + 0x10008 + 40
    entries = [Entry(t0, 4, 3, 1), Entry(t0 + 100, 2, 0x10008, 1), Entry(t2, 2, 0x10003, 2)]
    clicks = [(t0 + 100 + 0x10008, 1)]     # heralds the second entry's second attempt
    exp = await tb.run(entries, clicks, t_idle)
    assert tb.fires == exp.fires == [t0, t0 + 3, t0 + 6, t0 + 9, t0 + 100, t0 + 100 + 0x10008,
                                     t2, t2 + 0x10003]
    assert tb.events == exp.events
    assert exp.heralds == 1


@pytest.mark.rtl
@pytest.mark.heavy  # >= 10 s: CI only, not the quick loop
def test_scheduler(tmp_path) -> None:
    run_cocotb(tmp_path, "attempt_core", "test_hdl_scheduler",
               parameters={"TS_INIT": TS_INIT, "AW": AW})


@pytest.mark.rtl
@pytest.mark.slow
def test_scheduler_long_random(tmp_path) -> None:
    run_cocotb(tmp_path, "attempt_core", "test_hdl_scheduler",
               parameters={"TS_INIT": TS_INIT, "AW": AW},
               extra_env={"HWCTL_SEED": "11", "HWCTL_BATCHES": "80"},
               testcase="scheduler_random_batches")
