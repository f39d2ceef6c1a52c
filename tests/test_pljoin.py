"""Join planner (hwctl.pljoin): where an end joins a request's attempt grid, and the lab twin
check that two ends joining at different grid points still record the same pairs."""

from __future__ import annotations

import pytest

from hwctl.pljoin import MAX_MARGIN_S, JoinPlanner
from hwctl.sim import topologies
from hwctl.sim.twin.lab import Lab
from hwctl.wire import (
    ControlBit,
    Done,
    DoneReason,
    FrameDecoder,
    Late,
    Pair,
    Reg,
    RegWrite,
    SchedulePairs,
    encode,
)


def test_join_is_the_first_grid_point_after_the_margin() -> None:
    jp = JoinPlanner(period=50, floor_s=1e-6, hz=100_000_000)
    assert jp.margin_s() == 1e-6  # nothing measured yet: the floor
    assert jp.join(origin=10_000, now=0) == 10_000  # in time: the origin itself
    # 100 cycles of margin from now = 20_000 -> first grid point >= 20_100
    assert jp.join(origin=10_000, now=20_000) == 20_100
    assert jp.join(origin=10_000, now=20_001) == 20_150
    jp.note_rtt(2e-6)
    jp.note_rtt(5e-6)
    jp.note_rtt(float("nan"))  # ignored
    assert jp.margin_s() == pytest.approx(5e-6)  # the largest recent round trip
    assert jp.margin_s(retry=2) == pytest.approx(20e-6)  # doubles per LATE of a request
    assert jp.margin_s(retry=60) == MAX_MARGIN_S
    for _ in range(jp.window):
        jp.note_rtt(1e-6)
    assert jp.margin_s() == pytest.approx(1e-6)  # a spike is forgotten after the window
    assert jp.attempt(10_000, 20_150) == 203
    with pytest.raises(ValueError):
        JoinPlanner(period=0, floor_s=0.0, hz=1)


def test_ends_joining_at_different_grid_points_agree() -> None:
    """End A starts at the origin, end B joins 40 attempts later (a late command): the station
    heralds only attempts both fired, so both devices record the same pairs at the same cycles,
    and the planner's attempt numbers (from the origin) agree although the devices' own counts
    differ by 40."""
    lab = Lab(topologies.by_name("K2"), p_photon=0.05, seed=5)
    jp = JoinPlanner(period=50, floor_s=0.0, hz=100_000_000)
    origin = 10_000
    joins = {"A": origin, "B": origin + 40 * 50}
    for n, peer in (("A", "B"), ("B", "A")):
        lab.feed(n, encode(SchedulePairs(joins[n], 2**32 - 1, 50, 4, lab.port(n, peer)), 1))
    dec = {n: FrameDecoder() for n in "AB"}
    pairs: dict[str, list[tuple[int, int, int]]] = {"A": [], "B": []}
    device_k: dict[str, list[int]] = {"A": [], "B": []}
    done: dict[str, int] = {}
    while len(done) < 2:
        lab.advance(100_000)
        for n in "AB":
            for f in dec[n].feed(lab.read(n)):
                if isinstance(f.msg, Pair):
                    pairs[n].append((f.msg.ts, jp.attempt(origin, f.msg.ts), f.msg.bell))
                    device_k[n].append(f.msg.attempt)
                elif isinstance(f.msg, Done):
                    assert f.msg.reason == DoneReason.COMPLETE
                    done[n] = f.msg.attempts
    assert len(pairs["A"]) == 4 and pairs["A"] == pairs["B"]
    assert all(ts >= joins["B"] for ts, _, _ in pairs["A"])  # none before the late end joined
    assert [a - b for a, b in zip(device_k["A"], device_k["B"], strict=True)] == [40] * 4


def test_device_late_join_starts_at_the_next_grid_point() -> None:
    """CONTROL.LATE_JOIN on B's device: a SCHEDULE_PAIRS whose t_start has passed starts at the
    next grid point instead of LATE, its PAIR attempts still count from t_start, and both ends
    agree; without the bit the same command is LATE (nothing fires)."""
    lab = Lab(topologies.by_name("K2"), p_photon=0.05, seed=6)
    ctl = (1 << ControlBit.HERALD_EN) | (1 << ControlBit.LATE_JOIN)
    lab.feed("B", encode(RegWrite(Reg.CONTROL, ctl), 1))
    origin = 10_000
    lab.feed("A", encode(SchedulePairs(origin, 2**32 - 1, 50, 3, lab.port("A", "B")), 2))
    lab.advance_to(origin + 777)  # B's command arrives 777 cycles after the origin
    lab.feed("B", encode(SchedulePairs(origin, 2**32 - 1, 50, 3, lab.port("B", "A")), 2))
    dec = {n: FrameDecoder() for n in "AB"}
    got: dict[str, list] = {"A": [], "B": []}
    for _ in range(10_000):  # bounded: virtual time
        lab.advance(100_000)
        for n in "AB":
            got[n] += [f.msg for f in dec[n].feed(lab.read(n))]
        if all(any(isinstance(m, Done) for m in got[n]) for n in "AB"):
            break
    assert not any(isinstance(m, Late) for n in "AB" for m in got[n])
    pa = [(m.ts, m.attempt, m.bell) for m in got["A"] if isinstance(m, Pair)]
    pb = [(m.ts, m.attempt, m.bell) for m in got["B"] if isinstance(m, Pair)]
    assert len(pa) == 3 and pa == pb  # same attempt numbers: both count from t_start
    first = origin + 16 * 50  # the first grid point at or after origin + 777
    assert all(ts >= first and (ts - origin) // 50 == k for ts, k, _ in pa)
    assert lab.nodes["B"].reg(Reg.ERR_LATE) == 0
    # the same late command without the bit: LATE, nothing fires
    lab2 = Lab(topologies.by_name("K2"), p_photon=0.05, seed=6)
    lab2.advance_to(origin + 777)
    lab2.feed("B", encode(SchedulePairs(origin, 2**32 - 1, 50, 3, 0), 2))
    lab2.advance(10_000)  # the UART sends the ACK and the LATE
    assert any(isinstance(f.msg, Late) for f in FrameDecoder().feed(lab2.read("B")))
