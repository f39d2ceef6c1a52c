"""Physical layer in the twin (docs/physical-layer.md, docs/twin.md "Station", "Lab"): node device
SCHEDULE_PAIRS / PAIR / DONE(COMPLETE) / BAD_HERALD / TIME_SET, the heralding station and the lab,
all in virtual time."""

from __future__ import annotations

import pytest

from hwctl.sim import topologies
from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.sim.twin.lab import Lab
from hwctl.sim.twin.station import StationConfig, StationModel
from hwctl.wire import (
    Abort,
    Ack,
    Done,
    DoneReason,
    Error,
    ErrorCode,
    Frame,
    FrameDecoder,
    Late,
    Nak,
    Pair,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    SchedulePairs,
    Time,
    TimeSet,
    TimeValue,
    encode,
)

U32 = 2**32 - 1
FAST = {"uart_cycles_per_byte": 0}


def k2(p: float, seed: int = 1, **kw) -> Lab:
    return Lab(topologies.by_name("K2"), p_photon=p, seed=seed,
               node_kw={n: FAST for n in "AB"}, **kw)


def msgs(lab: Lab, node: str) -> list:
    return [f.msg for f in FrameDecoder().feed(lab.read(node)) if isinstance(f, Frame)]


_seq = iter(range(10**9))


def schedule_both(lab: Lab, t0: int, pairs: int, count: int = U32, period: int = 50) -> None:
    seq = next(_seq) & 0xFF  # a fresh seq: the same seq twice is a retry, not executed again
    for n, peer in (("A", "B"), ("B", "A")):
        lab.feed(n, encode(SchedulePairs(t0, count, period, pairs, lab.port(n, peer)), seq))


def until_done(lab: Lab, step: int, limit: int = 1000) -> dict[str, list]:
    """Advance in steps of ``step`` cycles until both ends sent DONE (bounded: never hangs)."""
    outs: dict[str, list] = {"A": [], "B": []}
    for _ in range(limit):
        if all(any(isinstance(m, Done) for m in outs[n]) for n in "AB"):
            return outs
        lab.advance(step)
        for n in "AB":
            outs[n] += msgs(lab, n)
    raise AssertionError(f"no DONE after {limit} steps: {outs}")


def pairs_of(ms: list) -> list[tuple[int, int, int, int]]:
    return [(m.ts, m.attempt, m.bell, m.qubit) for m in ms if isinstance(m, Pair)]


@pytest.mark.parametrize("p", [0.001, 0.02, 0.3])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_ends_always_see_the_same_pairs(p: float, seed: int) -> None:
    lab = k2(p, seed)
    t0 = 20_000
    for rnd in range(3):
        schedule_both(lab, t0, 6)
        outs = until_done(lab, 2_000_000)
        pa, pb = pairs_of(outs["A"]), pairs_of(outs["B"])
        assert len(pa) == 6 and pa == pb, (rnd, pa, pb)
        assert [q for *_, q in pa] == list(range(6))
        da = next(m for m in outs["A"] if isinstance(m, Done))
        db = next(m for m in outs["B"] if isinstance(m, Done))
        assert da == db and da.reason == DoneReason.COMPLETE
        # attempts include those fired after the last successful one, before its herald came
        assert da.attempts > pa[-1][1] + 1
        # heralds for attempts after the 6th pair arrive after COMPLETE: refused at both ends alike
        bad = [[m for m in outs[n] if isinstance(m, Error)] for n in "AB"]
        assert bad[0] == bad[1] and all(m.code == ErrorCode.BAD_HERALD for m in bad[0])
        t0 = lab.now + 10_000


def test_herald_timing_and_line_queue() -> None:
    lab = k2(0.02, seed=5)
    st = lab.station("A", "B")
    D, W, F = st.delay, st.window, st.cfg.frame_cycles
    assert abs(D - 1000 / 2.0e8 * 1e8) < 30  # for_link: half of the 2 km fibre (~5 us)
    schedule_both(lab, 10_000, 1)
    lab.advance(1_000_000)
    (dec, t, _), = st.heralds
    assert dec == t + D + W
    done = next(m for m in msgs(lab, "A") if isinstance(m, Done))
    assert done.ts == t + 2 * D + W + F  # idle line: decided, framed, fibre back
    assert done.attempts == (done.ts - 10_000) // 50 + 1


def test_one_end_late_never_pairs() -> None:
    lab = k2(0.5)
    lab.advance_to(100_000)
    lab.feed("A", encode(SchedulePairs(200_000, 1000, 50, 3, 0), 1))
    lab.feed("B", encode(SchedulePairs(50_000, 1000, 50, 3, 0), 1))  # in the past: LATE
    lab.advance_to(2_000_000)
    a, b = msgs(lab, "A"), msgs(lab, "B")
    assert [type(m) for m in b] == [Ack, Late]
    assert not pairs_of(a) and not pairs_of(b)
    done = a[-1]
    assert isinstance(done, Done) and done.reason == DoneReason.EXHAUSTED
    assert done.attempts == 1000 and done.ts == 200_000 + 999 * 50 + 4000  # HERALD_WAIT
    st = lab.station("A", "B")
    assert st.reg(Reg.CNT_ONE_END) == 1000 and st.reg(Reg.CNT_HERALD) == 0
    assert st.reg(Reg.CNT_MARKS) == 1000


def test_shifted_grids_never_pair() -> None:
    """Both fire, but on grids 25 cycles apart (> window): every window is one end's."""
    lab = k2(0.9)
    lab.feed("A", encode(SchedulePairs(10_000, 100, 50, 1, 0), 1))
    lab.feed("B", encode(SchedulePairs(10_025, 100, 50, 1, 0), 1))
    lab.advance(1_000_000)
    assert not pairs_of(msgs(lab, "A")) and not pairs_of(msgs(lab, "B"))
    assert lab.station("A", "B").reg(Reg.CNT_ONE_END) == 200


def test_abort_mid_way_keeps_both_ends_equal() -> None:
    lab = k2(0.01, seed=4)
    schedule_both(lab, 10_000, 6)
    lab.advance_to(30_000)
    for n in "AB":
        lab.feed(n, encode(Abort(), 2))
    lab.advance(1_000_000)
    a, b = msgs(lab, "A"), msgs(lab, "B")
    assert pairs_of(a) == pairs_of(b) and len(pairs_of(a)) < 6
    da = next(m for m in a if isinstance(m, Done))
    assert da.reason == DoneReason.ABORTED and da.ts == 30_000
    assert da.attempts == (30_000 - 10_000) // 50 + 1
    # heralds of attempts fired before the abort arrive afterwards: refused, never recorded
    ea = [m for m in a if isinstance(m, Error)]
    assert ea == [m for m in b if isinstance(m, Error)]


def test_exhaustion_waits_for_heralds_in_flight() -> None:
    m = TwinModel(TwinConfig(p_photon=0.0, **FAST), record=True)
    m.feed(encode(RegWrite(Reg.HERALD_WAIT, 1000), 1))
    m.feed(encode(SchedulePairs(100, 10, 50, 2, 1), 2))
    m.advance_to(100 + 9 * 50 + 500)
    m.inject_herald(1, 100 + 9 * 50, 1)  # the last attempt, heralded inside HERALD_WAIT
    m.advance_to(10_000)
    out = [r.msg for r in m.tx_log]
    assert out[2] == Pair(550, 9, 1, 0, 1)
    assert out[3] == Done(100 + 9 * 50 + 1000, 10, int(DoneReason.EXHAUSTED))
    assert m.reg(Reg.CNT_ATTEMPTS) == 10 and m.reg(Reg.CNT_PAIRS) == 1


def test_heralds_for_attempts_not_fired_are_refused() -> None:
    m = TwinModel(TwinConfig(p_photon=0.0, **FAST), record=True)
    m.inject_herald(0, 0, 0)  # no schedule
    m.feed(encode(SchedulePairs(1000, 100, 50, 3, 2), 1))
    m.advance_to(2000)  # attempts 0..20 fired
    m.inject_herald(2, 1000 + 21 * 50, 0)  # not fired yet
    m.inject_herald(2, 1010, 0)  # not on the attempt grid
    m.inject_herald(1, 1050, 0)  # another port
    m.inject_herald(2, 1050, 0, corrupt=True)  # bad CRC
    m.inject_herald(2, 1100, 1)  # good: attempt 2
    m.inject_herald(2, 1050, 0)  # before the last recorded one
    m.inject_herald(2, 1100, 1)  # the same attempt again
    out = [r.msg for r in m.tx_log]
    errs = [x for x in out if isinstance(x, Error)]
    assert [e.code for e in errs] == [ErrorCode.BAD_HERALD] * 7
    assert [e.info for e in errs] == [1, 2, 3, 4, 5, 6, 7]
    assert [x for x in out if isinstance(x, Pair)] == [Pair(1100, 2, 1, 0, 2)]
    assert m.reg(Reg.ERR_HERALD) == 7


def test_schedule_pairs_arguments_registers_and_time_set() -> None:
    m = TwinModel(TwinConfig(p_photon=0.0, qubits=6, n_ports=2, **FAST), record=True)
    bad = [SchedulePairs(10, 0, 50, 1, 0), SchedulePairs(10, 5, 1, 1, 0),
           SchedulePairs(10, 5, 50, 0, 0), SchedulePairs(10, 5, 50, 7, 0),
           SchedulePairs(10, 5, 50, 1, 2), TimeSet(0, 2)]
    for i, c in enumerate(bad):
        m.feed(encode(c, i))
    assert [r.msg for r in m.tx_log] == [Nak(c.OPCODE, ErrorCode.BAD_ARG) for c in bad]
    m.tx_log.clear()
    m.advance_to(500)
    for i, c in enumerate([RegRead(Reg.QUBITS), RegRead(Reg.N_PORTS), RegRead(Reg.HERALD_WAIT),
                           RegRead(Reg.ST_DELAY), TimeSet(10_000, 0), Time()]):
        m.feed(encode(c, 20 + i))
    assert [r.msg for r in m.tx_log] == [
        RegValue(Reg.QUBITS, 6), RegValue(Reg.N_PORTS, 2), RegValue(Reg.HERALD_WAIT, 4000),
        Nak(RegRead.OPCODE, ErrorCode.BAD_REG), Ack(TimeSet.OPCODE), TimeValue(10_000)]
    # schedules and events are in device time after TIME_SET
    m.tx_log.clear()
    m.feed(encode(SchedulePairs(10_100, 3, 50, 1, 0), 30))
    m.advance_to(500 + 100 + 2 * 50 + 4000)
    assert m.tx_log[-1].msg == Done(10_100 + 100 + 4000, 3, int(DoneReason.EXHAUSTED))
    # mode 1 loads at the sync edge only
    m.feed(encode(TimeSet(1_000_000, 1), 31))
    m.advance(10)
    m.feed(encode(Time(), 32))
    assert m.tx_log[-1].msg.ts != 1_000_000
    m.sync_edge()
    m.feed(encode(Time(), 33))
    assert m.tx_log[-1].msg == TimeValue(1_000_000)


def test_outcomes_do_not_depend_on_time_slicing() -> None:
    def run(step: int) -> list:
        lab = k2(0.005, seed=9)
        schedule_both(lab, 5_000, 6)
        return pairs_of(until_done(lab, step, limit=10**5)["A"])

    assert run(1_000_000) == run(7_919) == run(100_003)


def test_attempts_per_pair_follow_p() -> None:
    p = 0.004
    lab = k2(p, seed=11)
    attempts = pairs = 0
    for _ in range(40):
        schedule_both(lab, lab.now + 1000, 6)
        out = until_done(lab, 5_000_000)["A"]
        last = pairs_of(out)[-1]
        attempts += last[1] + 1
        pairs += 6
    assert abs(attempts / pairs - 1 / p) < 0.15 / p  # 240 geometric draws: ~4 % s.e.


def test_station_injected_clicks() -> None:
    """Station window/verdict with clicks from a bench: both ends, one end, no end, both
    detectors (p_photon = dark_prob = 0)."""
    st = StationModel(StationConfig(p_photon=0.0, delay=100, window=2))
    st.mark(0, 1000, 50, 4)
    st.mark(1, 1000, 50, 3)  # B fires attempts 0..2 only
    st.inject_click(1000 + 100 + 1, 1)  # attempt 0: both ends, det 1 -> herald Psi-
    st.inject_click(1050 + 100, 0)  # attempt 1: both detectors -> CNT_BOTH
    st.inject_click(1050 + 100 + 1, 1)
    st.inject_click(1150 + 100, 0)  # attempt 3: only A fired -> never a herald
    st.inject_click(1175 + 100, 0)  # no window open -> dark
    st.advance_to(5000)
    assert st.heralds == [(1000 + 100 + 2, 1000, 1)]
    assert [(h.line, h.arrive, h.t, h.bell) for h in st.read()] == [
        (0, 1102 + 440 + 100, 1000, 1), (1, 1102 + 440 + 100, 1000, 1)]
    assert st.reg(Reg.CNT_BOTH) == 1 and st.reg(Reg.CNT_DARK) == 1
    assert st.reg(Reg.CNT_MARKS) == 7 and st.reg(Reg.CNT_ONE_END) == 1
    assert st.reg(Reg.CNT_HERALD) == 1


def test_station_line_queue_drops_when_full() -> None:
    st = StationModel(StationConfig(p_photon=0.0, delay=10, window=2, queue_depth=2))
    st.mark(0, 0, 10, 100)
    st.mark(1, 0, 10, 100)
    for k in range(5):  # five heralds 10 cycles apart; a frame takes 440
        st.inject_click(k * 10 + 10, 0)
    st.advance_to(10_000)
    out = st.read()
    assert len(out) == 2 * 3 and st.reg(Reg.CNT_HL_DROP) == 2   # 2 heralds, on both lines
    arr = sorted({h.arrive for h in out})
    assert arr == [12 + 440 + 10, 12 + 880 + 10, 12 + 1320 + 10]


def test_lab_server_devices_count_the_shared_clock() -> None:
    """Served on ptys in real time, every node device reads the shared reference: a TIME read
    lies between the reference's cycle before and after the command (hwctl.timebase)."""
    import asyncio

    from hwctl import timebase
    from hwctl.sim.twin.lab import LabServer
    from hwctl.transport import open_backend

    lab = Lab(topologies.by_name("K2"), p_photon=0.01, start=timebase.cycle_now())

    async def main(urls: dict[str, str]) -> None:
        for n in "AB":
            b = await open_backend(urls[n])
            try:
                lo = timebase.cycle_now()
                t = await b.time()
                hi = timebase.cycle_now()
                assert lo <= t <= hi
                assert await b.read_reg(Reg.N_PORTS) == 1
            finally:
                await b.close()

    with LabServer(lab) as srv:
        asyncio.run(main(srv.urls))
    assert srv.error is None


def test_twin_lab_cli_bad_topology_is_one_line(capsys) -> None:
    from hwctl.cli import main

    assert main(["twin", "--lab", "Q9", "--duration", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "topology" in err[0]


def test_twin_lab_start_line_is_one_line_when_redirected(capsys) -> None:
    """`hwctl twin --lab 2x2 ... 2> lab.log`: the start line was wrapped at rich's 80 columns
    ('...(p=0.001); ' / 'Ctrl-C stops'), so a grep for it found half. One line, as the node's."""
    from hwctl.cli import main

    assert main(["twin", "--lab", "2x2", "--zmq", "tcp://127.0.0.1:0", "--duration", "0.1"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert any(ln.startswith("lab 2x2:") and ln.endswith("Ctrl-C stops") for ln in err), err


def test_2x2_outputs_do_not_depend_on_time_slicing() -> None:
    """A step inside one advance touches only the models something happens to (the lab's
    partial steps): every device's output bytes and every station's counters are the same
    cycle for cycle whether the lab is advanced event by event or in long jumps, with two
    edges generating at once and a second round on the other two edges."""
    def run(step: int) -> tuple:
        lab = Lab(topologies.by_name("2x2"), p_photon=0.01, seed=5)
        out: dict[str, bytes] = {n: b"" for n in lab.names}
        edges = sorted(tuple(sorted(e)) for e in lab.g.edges)
        first, used = [], set()
        for u, v in edges:  # a matching: each node's one schedule at a time
            if u not in used and v not in used:
                first.append((u, v))
                used |= {u, v}
        rounds = [first, [e for e in edges if e not in first][:2]]
        seq = 0
        for r, pairs in enumerate(rounds):
            t0 = lab.now + 5_000
            for u, v in pairs:
                seq += 1
                for n, peer in ((u, v), (v, u)):
                    lab.feed(n, encode(SchedulePairs(t0, U32, 50, 2 + r, lab.port(n, peer)), seq))
            end = lab.now + 40_000_000
            while lab.now < end:
                lab.advance_to(min(end, lab.now + step))
                for n in lab.names:
                    out[n] += lab.read(n)
        regs = {k: dict(s.regs) for k, s in lab.stations.items()}
        return out, regs

    a, b, c = run(40_000_000), run(7_919), run(1_000_003)
    assert a == b == c
    assert all(sum(isinstance(m, Done) for m in
                   (f.msg for f in FrameDecoder().feed(a[0][n]) if isinstance(f, Frame))) == 2
               for n in a[0])  # both rounds completed at every node


def test_urgent_deadlines_are_the_verdict_chain_and_the_frames_a_herald_made() -> None:
    """Lab.next_urgent (what a real-time LabServer polls for, LabServer.SPIN_S): verdicts,
    landings, node interactions and, after a herald landed, that node's frame ends until its
    event queue is empty; a command's answer in the UART is not urgent."""
    lab = Lab(topologies.by_name("K2"), p_photon=0.3, seed=2)  # the default UART
    schedule_both(lab, 20_000, 1)
    lab.advance(1)
    ends = {n: lab.nodes[n]._tx_done for n in "AB" if lab.nodes[n]._tx_cur is not None}
    assert ends and lab.next_deadline() == min(ends.values())  # the ACKs leaving the UARTs
    assert lab.next_urgent() is None or lab.next_urgent() > min(ends.values())
    for _ in range(10_000):  # to the first landing, urgent deadline by urgent deadline
        if lab._landed:
            break
        lab.advance_to(max(lab.now, lab.next_urgent()))
    landed = sorted(lab._landed)
    assert landed, "no herald landed"
    m = lab.nodes[landed[0]]
    assert m._tx_cur is not None and lab.next_urgent() <= m._tx_done  # its PAIR frame's end
    outs = until_done(lab, 1_000)
    assert any(isinstance(x, Done) for x in outs["A"])
    lab.advance(1_000_000)  # the late heralds' refusals (ERROR frames) sent too
    lab.next_urgent()
    assert not lab._landed  # UARTs drained: nothing urgent left of the landings


def test_a_lab_with_a_header_stream_has_no_urgent_deadlines() -> None:
    """A lab whose nodes receive a HEADER stream wakes for it every few hundred us anyway: its
    server polls no deadline (Lab.next_urgent is None), whatever else is due."""
    lab = Lab(topologies.by_name("K2"), p_photon=0.3, seed=2)
    schedule_both(lab, 20_000, 1)
    lab.advance(1)
    assert lab.next_urgent() is not None
    lab.nodes["A"]._hdr_next = lab.now + 100  # (a header source's next arrival)
    assert lab.next_urgent() is None


def test_second_lab_on_the_same_link_dir_is_refused(tmp_path, capsys) -> None:
    """A second `hwctl twin --lab ... --link-dir D` replaced the first lab's device links under
    its nodes and removed them when it stopped (the first lab still running). One line, exit 2;
    the first lab's links untouched; once it stops, the directory is free again."""
    import os

    from hwctl.cli import main
    from hwctl.errors import UserError
    from hwctl.sim.twin.lab import LabServer

    d = tmp_path / "lab"
    first = LabServer(Lab(topologies.by_name("K2"), p_photon=0.001), link_dir=str(d)).start()
    try:
        links = {n: os.readlink(d / n) for n in ("A", "B")}
        with pytest.raises(UserError, match="another lab serves its devices there"):
            LabServer(Lab(topologies.by_name("K2"), p_photon=0.001), link_dir=str(d))
        assert main(["twin", "--lab", "K2", "--link-dir", str(d), "--duration", "1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "stop that lab first" in err
        assert {n: os.readlink(d / n) for n in ("A", "B")} == links
    finally:
        first.stop()
    second = LabServer(Lab(topologies.by_name("K2"), p_photon=0.001), link_dir=str(d)).start()
    second.stop()
