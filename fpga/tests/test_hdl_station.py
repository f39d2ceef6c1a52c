"""station_core: window opened by the first marker, both-markers check, exactly-one-click verdict,
counters and the HERALD event, against the cycle-level rule of docs/physical-layer.md section 2
(stationref.py): directed cases (both ends, one end, no end, both detectors, dark clicks,
markers at the window's edges, back-to-back attempts) and a randomized stream, for several
windows and delays (timestamps across the 2^32 wrap)."""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotb_run import run_cocotb
from stationref import ST_IN_LAT, station_ref

TS0 = 2**32 - 3000


class Bench:
    """Drives ts_i (the value during cycle c is TS0 + c) and the pins from stamped events;
    collects herald pulses, counter strobes and events sampled at each falling edge."""

    def __init__(self, dut) -> None:
        self.dut = dut
        self.cycle = 0
        self.pins: dict[int, tuple[int, int]] = {}  # pin cycle -> (mark bits, det bits)
        self.heralds: list[tuple[int, int, int]] = []  # (cycle, t, bell)
        self.events: list[tuple[int, int, int, int]] = []  # (ts, bell, attempt, op)
        self.cnt = {"herald": 0, "one_end": 0, "both": 0, "dark": 0, "marks": 0}

    async def start(self) -> None:
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
        dut.mark_i.value = 0
        dut.det_i.value = 0
        dut.ts_i.value = TS0
        dut.rst_i.value = 1
        await ClockCycles(dut.clk_i, 4)
        dut.rst_i.value = 0
        cocotb.start_soon(self._drive())
        cocotb.start_soon(self._monitor())

    def ts(self) -> int:
        return TS0 + self.cycle

    async def _drive(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.clk_i)
            self.cycle += 1
            dut.ts_i.value = (TS0 + self.cycle) % 2**64
            m, d = self.pins.pop(self.cycle, (0, 0))
            dut.mark_i.value = m
            dut.det_i.value = d

    async def _monitor(self) -> None:
        dut = self.dut
        while True:
            await FallingEdge(dut.clk_i)
            if int(dut.her_o.value):
                self.heralds.append((self.cycle, int(dut.her_t_o.value), int(dut.her_bell_o.value)))
            if int(dut.ev_valid_o.value):
                pl = int(dut.ev_payload_o.value).to_bytes(16, "big")
                self.events.append((int.from_bytes(pl[0:8], "big"), pl[8],
                                    int.from_bytes(pl[9:13], "big"), int(dut.ev_op_o.value)))
            self.cnt["herald"] += int(dut.cnt_herald_o.value)
            self.cnt["one_end"] += int(dut.cnt_one_end_o.value)
            self.cnt["both"] += int(dut.cnt_both_o.value)
            self.cnt["dark"] += int(dut.cnt_dark_o.value)
            self.cnt["marks"] += int(dut.cnt_marks_o.value)

    def put(self, stamped_ts: int, mark: int, det: int) -> None:
        """An edge of the given inputs whose synchronized edge is stamped ``stamped_ts``."""
        pin_cycle = stamped_ts - ST_IN_LAT - TS0
        assert pin_cycle > self.cycle + 1, "too late to drive"
        m, d = self.pins.get(pin_cycle, (0, 0))
        self.pins[pin_cycle] = (m | mark, d | det)


async def run_case(bench: Bench, events: list[tuple[int, int, int]], delay: int, window: int,
                   tail: int = 40) -> None:
    """Drive ``events`` (stamped ts, mark bits, det bits) and compare with the reference."""
    dut = bench.dut
    dut.delay_i.value = delay
    dut.window_i.value = window
    await ClockCycles(dut.clk_i, 3)
    n_her, n_ev = len(bench.heralds), len(bench.events)
    cnt0 = dict(bench.cnt)
    for ts, m, d in events:
        bench.put(ts, m, d)
    end = max(ts for ts, _, _ in events) - TS0 + window + tail
    while bench.cycle < end:
        await RisingEdge(dut.clk_i)
    ref = station_ref(events, delay, window)
    got = [(t, b) for _, t, b in bench.heralds[n_her:]]
    assert got == ref.heralds, f"heralds {got} != {ref.heralds} (windows {ref.windows})"
    ev = bench.events[n_ev:]
    assert [(t, b) for t, b, _, _ in ev] == ref.heralds
    assert all(op == 0xA0 for *_, op in ev)
    attempts = [a for _, _, a, _ in ev]
    assert attempts == list(range(attempts[0], attempts[0] + len(attempts))) if attempts else True
    cnt = {k: bench.cnt[k] - cnt0[k] for k in cnt0}
    want = {"herald": ref.herald, "one_end": ref.one_end, "both": ref.both, "dark": ref.dark,
            "marks": ref.marks}
    assert cnt == want, f"counters {cnt} != {want}"


@cocotb.test()
async def station_directed(dut) -> None:
    bench = Bench(dut)
    await bench.start()
    # HERALD event attempt field: heralds before this one (0 first)
    delay, w = 57, 2
    cases = [
        # both ends, detector 0 in the marker cycle -> herald (t = o - delay, Psi+)
        [(0, 3, 1)],
        # both ends, detector 1 one cycle later (last window cycle) -> herald, Psi-
        [(0, 3, 0), (1, 0, 2)],
        # end B's marker one cycle after end A's: same window; click -> herald
        [(0, 1, 0), (1, 2, 1)],
        # end B's marker just outside the window: two one-end windows, no herald
        [(0, 1, 1), (2, 2, 1)],
        # one end only, with a click -> never a herald
        [(0, 2, 2)],
        # both detectors -> CNT_BOTH
        [(0, 3, 3)],
        # both ends, no click -> failure, nothing counted beyond the marks
        [(0, 3, 0)],
        # no end: dark clicks (one, then both)
        [(0, 0, 1), (10, 0, 3)],
        # click just after the window closed -> dark
        [(0, 3, 0), (2, 0, 1)],
    ]
    for k, case in enumerate(cases):
        a = bench.ts() + 30
        case = [(a + dt, m, d) for dt, m, d in case]
        cases[k] = case
        await run_case(bench, case, delay, w)
        assert len(bench.events) == sum(station_ref(c, delay, w).herald for c in cases[:k + 1])
    # the rule spelled out (not only through stationref): 3 heralds, Psi+, Psi-, Psi+ at
    # t = o - delay; one-end windows 2 + 1; both detectors once; dark clicks 1 + 2 + 1
    assert [a for _, _, a, _ in bench.events] == [0, 1, 2]
    assert [(t, b) for t, b, _, _ in bench.events] == [
        (cases[0][0][0] - delay, 0), (cases[1][0][0] - delay, 1), (cases[2][0][0] - delay, 0)]
    assert bench.cnt == {"herald": 3, "one_end": 3, "both": 1, "dark": 4, "marks": 15}
    # back-to-back attempts (a marker pair every window + 1 cycles, every second heralds)
    base = bench.ts() + 30
    evs = []
    for k in range(20):
        t = base + 3 * k
        evs.append((t, 3, (1 + (k // 2) % 2) if k % 2 == 0 else 0))
    await run_case(bench, evs, delay, w)
    # a window of 1 and a long one
    for w2 in (1, 0, 9):
        base = bench.ts() + 30
        await run_case(bench, [(base, 1, 0), (base + 1, 2, 1), (base + 12, 3, 0),
                               (base + 14, 0, 2)], 3, w2)


@cocotb.test()
async def station_random(dut) -> None:
    bench = Bench(dut)
    await bench.start()
    rng = random.Random(13)
    for window in (2, 1, 3, 5):
        delay = rng.choice([0, 5, 200, 2**31 + 7])
        base = bench.ts() + 40
        evs: list[tuple[int, int, int]] = []
        last: dict[tuple[str, int], int] = {}

        def add(ts: int, m: int, d: int, last: dict = last, evs: list = evs) -> None:
            # an input's edges must be >= 2 cycles apart (one-cycle pin pulses)
            for kind, bits in (("m", m), ("d", d)):
                for i in range(2):
                    if bits >> i & 1:
                        if ts - last.get((kind, i), -10) < 2:
                            return
            for kind, bits in (("m", m), ("d", d)):
                for i in range(2):
                    if bits >> i & 1:
                        last[(kind, i)] = ts
            evs.append((ts, m, d))

        t = base
        for _ in range(150):
            t += rng.randrange(1, 3 * window + 6)
            kind = rng.random()
            if kind < 0.5:          # an attempt: both ends, ends skewed by 0..1, maybe clicks
                skew = rng.choice([0, 0, 1, -1])
                add(t, 1, 0)
                add(t + skew, 2, 0)
                for _ in range(rng.choice([0, 1, 1, 2])):
                    add(t + rng.randrange(0, window + 2), 0, rng.choice([1, 2, 3]))
            elif kind < 0.7:        # one end only
                add(t, rng.choice([1, 2]), rng.choice([0, 0, 1, 2]))
            else:                   # dark clicks
                add(t, 0, rng.choice([1, 2, 3]))
        evs.sort()
        n = len(bench.heralds)
        await run_case(bench, evs, delay, window)
        assert len(bench.heralds) - n >= 5  # the stream exercises the herald path


@cocotb.test()
async def station_vs_twin(dut) -> None:
    """Scored against the twin's station (sim/twin/station.py, StationModel, clicks injected):
    two ends firing arithmetic programs (end B starts later and stops earlier, so some windows
    are one-end), clicks in common windows, in one-end windows, both detectors, and dark clicks;
    heralds (attempt cycle, Bell state) and CNT_HERALD / CNT_ONE_END / CNT_MARKS / CNT_DARK."""
    from hwctl.sim.twin.station import StationConfig, StationModel
    from hwctl.wire import Reg

    bench = Bench(dut)
    await bench.start()
    rng = random.Random(21)
    for window, period, delay in ((2, 7, 30), (3, 11, 5), (1, 4, 60)):
        base = bench.ts() + 40
        a0, na = base, 60
        b0, nb = base + 4 * period, 45
        model = StationModel(StationConfig(p_photon=0.0, dark_prob=0.0, delay=delay,
                                           window=window), now=base - 1)
        model.mark(0, a0, period, na)
        model.mark(1, b0, period, nb)
        events = [(a0 + k * period + delay, 1, 0) for k in range(na)]
        events += [(b0 + k * period + delay, 2, 0) for k in range(nb)]
        clicks: list[tuple[int, int]] = []
        for k in range(na):
            if rng.random() < 0.35:
                o = a0 + k * period + delay
                for det in rng.choice([[0], [1], [0, 1]]):
                    clicks.append((o + rng.randrange(window), det))
        for _ in range(6):  # dark: just before a window (markers are 'period' apart)
            k = rng.randrange(na)
            if period - window >= 2:
                clicks.append((a0 + k * period + delay - 1, rng.randrange(2)))
        clicks = sorted(set(clicks))
        # an input's edges must be >= 2 cycles apart: drop clicks too close on one detector
        kept: list[tuple[int, int]] = []
        last = {0: -10, 1: -10}
        for c, det in clicks:
            if c - last[det] >= 2:
                kept.append((c, det))
                last[det] = c
        events += [(c, 0, 1 << det) for c, det in kept]
        for c, det in kept:
            model.inject_click(c, det)
        end = max(e[0] for e in events) + window + 10
        model.advance_to(end)
        n_her = len(bench.heralds)
        cnt0 = dict(bench.cnt)
        dut.delay_i.value = delay
        dut.window_i.value = window
        await ClockCycles(dut.clk_i, 3)
        for ts, m, d in sorted(events):
            bench.put(ts, m, d)
        while bench.ts() < end + 10:
            await RisingEdge(dut.clk_i)
        got = [(t, b) for _, t, b in bench.heralds[n_her:]]
        want = [(t, b) for _, t, b in model.heralds]
        assert got == want and want, (got, want)
        cnt = {k: bench.cnt[k] - cnt0[k] for k in cnt0}
        assert cnt["herald"] == model.reg(Reg.CNT_HERALD)
        assert cnt["one_end"] == model.reg(Reg.CNT_ONE_END)
        assert cnt["marks"] == model.reg(Reg.CNT_MARKS)
        assert cnt["dark"] == model.reg(Reg.CNT_DARK)
        assert cnt["both"] == model.reg(Reg.CNT_BOTH)


@pytest.mark.rtl
def test_station_core(tmp_path) -> None:
    run_cocotb(tmp_path, "station_core", "test_hdl_station")
