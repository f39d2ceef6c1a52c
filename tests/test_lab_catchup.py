"""A real-time lab or twin server that fell behind the wall clock catches up in bounded slices
(one implementation, hwctl.sim.twin.pacing.CatchUp; issue 14,
benchmarks/RESULTS.md "hdr_block, seventh session"): its device output reaches the hosts at the
line's pace instead of as one chunk of seconds of line bytes, and a pty backlog that overflows
keeps the whole frames that fit and drops (and counts) only the rest.

No test depends on machine speed: the lab is held behind by holding its lock (however long the
machine takes, it is behind by at least the time the lock was held), a twin server's pacer by a
fake wall clock the test moves, the figures checked are
model-time quantities (bytes per slice of model time), and every wait only bounds a hang.
"""

from __future__ import annotations

import os
import select
import threading
import time

from hwctl import timebase
from hwctl.sim import topologies
from hwctl.sim.twin.flood import block_config
from hwctl.sim.twin.lab import Lab, LabServer
from hwctl.sim.twin.model import UART_CYCLES_PER_BYTE, TwinModel
from hwctl.sim.twin.pacing import MAX_STEP_S, CatchUp, Pacer, UartBacklog
from hwctl.sim.twin.serve import PtyTwinServer
from hwctl.wire import CLOCK_HZ, FrameDecoder, Schedule, Time, TimeValue, encode

#: bounds a hang only (generous: the machine may be loaded), never a speed requirement
HANG = 300.0


def _frames(n: int, size: int = 9) -> bytes:
    """``n`` frames of ``size`` bytes each, the last byte of each the 0 delimiter."""
    return (bytes(range(1, size)) + b"\0") * n


def test_overflowing_backlog_keeps_the_whole_frames_that_fit() -> None:
    b = UartBacklog(limit=100)
    b.push(_frames(5))  # 45 bytes: fits
    b.push(_frames(10))  # 90 more: 6 frames (54 bytes) fit in the 55 left
    assert len(b) == 99 and bytes(b.buf).count(0) == 11 and b.buf[-1] == 0
    assert (b.overrun_bytes, b.overrun_frames) == (36, 4)
    b.push(_frames(1))  # 1 byte left: the frame is dropped whole
    assert len(b) == 99 and (b.overrun_bytes, b.overrun_frames) == (45, 5)
    b.sent(99)
    b.push(_frames(3), overrun=False)  # virtual time never drops
    assert len(b) == 27 and b.overrun_frames == 5


def _block_lab(start: int) -> Lab:
    """K2 in block mode from reset, a 1.3 MHz source, arrivals with p = 0.1 at both nodes."""
    cfg = block_config(0.1, source_hz=1.3e6)
    kw = {"control_reset": cfg.control_reset, "header_period": cfg.header_period,
          "header_arrival": cfg.header_arrival, "header_phase": start}
    return Lab(topologies.by_name("K2"), p_photon=0.0, start=start,
               node_kw={"A": dict(kw), "B": dict(kw, header_seed=2)})


def test_advance_is_bounded_by_one_slice() -> None:
    lab = _block_lab(0)
    srv = LabServer(lab, pty=False)  # not started: the step function alone
    try:
        step = round(LabServer.MAX_STEP_S * srv.hz)
        first = lab.next_event()  # the first header arrival: the lab is idle before it
        assert first is not None and 0 < first < step
        assert srv._advance(10 * step) is True and lab.now == first + step
        assert srv._advance(first + step + 5) is False and lab.now == first + step + 5
        assert srv._advance(0) is False and lab.now == first + step + 5  # never backwards
    finally:
        srv.stop()


def test_a_lab_woken_at_its_deadline_after_a_long_idle_wait_takes_one_step() -> None:
    """A lab that slept more than a slice until its next deadline (a station's verdict, a
    schedule's end) reaches it in the same step: the slice starts at the lab's next event, not
    at the cycle it last stopped at, so the deadline's work (a pair's PAIR and DONE) is not a
    loop iteration later (benchmarks/RESULTS.md, tenth session). The bound on one step's output
    stays one slice after that event."""
    lab = Lab(topologies.by_name("K2"), p_photon=0.0, start=0)
    step = round(LabServer.MAX_STEP_S * CLOCK_HZ)
    due = 3 * step + 12_345  # one schedule's end, far beyond a slice
    lab.feed("A", encode(Schedule(t_start=due - 1_000, count=20, period=50, window=20), seq=1))
    lab.advance_to(10_000)  # the command's ACK has left the UART
    assert lab.read("A")
    srv = LabServer(lab, pty=False)
    try:
        d = lab.next_deadline()
        assert d is not None and 2 * step < lab.next_event() <= d <= due  # idle for > 2 slices
        assert srv._advance(due + 10) is False and lab.now == due + 10  # before: 3 slices
    finally:
        srv.stop()


def test_catch_up_slices_start_at_the_model_s_next_event() -> None:
    """Sans-IO: the slice starts at ``idle_until`` (never later than held host bytes); without
    it, or with an event already due, as before."""
    c: CatchUp[str] = CatchUp(100)
    assert c.target(0, 1_000, 500) == 100 and c.behind  # no idle_until: one slice from now
    assert c.target(0, 1_000, 500, 500) == 600 and c.behind  # idle until 500: from there
    assert c.target(0, 1_000, 2_000, 500) == 1_000 and not c.behind  # no deadline before wall
    assert c.target(0, 550, 500, 500) == 550 and not c.behind
    assert c.target(300, 1_000, 200, 200) == 400  # already due: from now
    c.hold(250, "A", b"x")
    assert c.target(0, 1_000, 500, 500) == 350  # the held bytes' cycle comes first


def test_catch_up_keeps_the_most_the_model_was_behind_real_time() -> None:
    """``lag_max``: the most cycles a step left the model behind real time (a lab starved of
    CPU: its devices answer and stamp late by that much; hwctl demo reports it). A step that
    reaches real time, or an idle model with no deadline before it, adds nothing."""
    c: CatchUp[str] = CatchUp(100)
    assert c.lag_max == 0
    c.target(0, 1_000, 2_000)  # no deadline before real time: one step, not behind
    assert c.lag_max == 0
    c.target(0, 1_000, 500)  # a slice: 900 cycles still to go
    assert c.lag_max == 900
    c.target(100, 1_050, 500)  # the next slice: 750 behind; the maximum stays
    assert c.lag_max == 900
    c.target(200, 3_000, 500)
    assert c.lag_max == 2_700


def test_a_lab_with_nothing_to_do_takes_one_step() -> None:
    """No deadline before real time (here: no source, no schedule): no slices, as before."""
    lab = Lab(topologies.by_name("K2"), p_photon=0.0, start=0)
    srv = LabServer(lab, pty=False)
    try:
        step = round(LabServer.MAX_STEP_S * srv.hz)
        assert srv._advance(10 * step) is False and lab.now == 10 * step
    finally:
        srv.stop()


def test_a_lab_held_behind_delivers_its_output_in_slices() -> None:
    """Block mode at 1.3 MHz arrivals of p = 0.1: hold the lab's lock for 0.3 s (its output for
    that time, ~60 kB a node, would have come as one chunk); afterwards every chunk handed to a
    host is at most one slice of line bytes, and nothing is lost (the frames decode in order)."""
    lab = _block_lab(timebase.cycle_now())
    srv = LabServer(lab, pty=False)
    chunks: list[bytes] = []
    got = threading.Event()

    def sink(data: bytes) -> None:
        chunks.append(data)
        got.set()

    srv.attach("A", sink)
    slice_bytes = LabServer.MAX_STEP_S * srv.hz / UART_CYCLES_PER_BYTE + 1
    with srv:
        assert got.wait(HANG)
        with srv.lock:  # the lab stalls (as on a loaded machine) ...
            behind_from = lab.now
            time.sleep(0.3)
            n0 = len(chunks)
        t_end = time.monotonic() + HANG  # ... and catches up: 0.3 s of model time in slices
        while lab.now < behind_from + round(0.3 * srv.hz) and time.monotonic() < t_end:
            time.sleep(0.01)
        with srv.lock:
            after = chunks[n0:]
    assert srv.error is None
    assert len(after) >= 0.3 / LabServer.MAX_STEP_S / 2  # many pieces, not one
    assert max(len(c) for c in after) <= slice_bytes
    dec = FrameDecoder()
    frames = [f for c in chunks for f in dec.feed(c)]
    seqs = [f.seq for f in frames if f.msg.KIND == "event"]
    assert seqs and all((b - a) & 0xFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))


class _FakeClock:
    """The wall clock of a twin server's pacer, moved by the test only."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_pty_twin_held_behind_delivers_its_output_in_slices() -> None:
    """The same catch-up in ``hwctl twin --pty`` (PtyTwinServer, behind ``python -m benchmarks
    link``): its wall clock (a fake one) jumps 0.3 s ahead, as a stall on a loaded machine
    would leave it, while the twin streams HDR_BLOCKs at 0.67 of the line. Each chunk the
    server hands to the pty is at most one slice of line bytes (in one step it was the whole
    0.3 s, ~60 kB, which the default 64 KiB backlog all but fills), and every frame arrives in
    order. The clock only moves when the test says so: nothing here depends on machine speed."""
    clock = _FakeClock()
    model = TwinModel(block_config(0.1, source_hz=1.3e6))
    srv = PtyTwinServer(model, mode="realtime", clock=clock, backlog_max=1 << 26)
    pushed: list[int] = []
    push = srv.backlog.push

    def counted(out: bytes, *, overrun: bool = True) -> None:
        if out:
            pushed.append(len(out))
        push(out, overrun=overrun)

    srv.backlog.push = counted  # type: ignore[method-assign]
    host = os.open(srv.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    got = bytearray()
    target = round(0.3 * CLOCK_HZ)
    srv.start(t0=0.0)
    try:
        clock.t = 0.3  # the wall clock is 0.3 s ahead of the twin
        t_end = time.monotonic() + HANG
        while True:
            with srv.lock:
                done = model.now >= target and not srv.pacer.catchup.behind
                out = srv.bytes_out
            assert time.monotonic() < t_end, ("hang", model.now, target, out, len(got))
            if done and len(got) >= out:
                break
            r, _, _ = select.select([host], [], [], 0.05)
            if r:
                got += os.read(host, 1 << 16)
    finally:
        srv.stop()
        os.close(host)
    assert srv.error is None and srv.backlog.overrun_frames == 0
    slice_bytes = MAX_STEP_S * CLOCK_HZ / UART_CYCLES_PER_BYTE + 1
    assert sum(pushed) == len(got) > 0.5 * 0.3 * CLOCK_HZ / UART_CYCLES_PER_BYTE
    assert len(pushed) >= 0.3 / MAX_STEP_S / 2  # many pieces, not one
    assert max(pushed) <= slice_bytes
    seqs = [f.seq for f in FrameDecoder().feed(bytes(got)) if f.msg.KIND == "event"]
    assert seqs and all((b - a) & 0xFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))


def test_host_bytes_read_while_behind_run_at_the_cycle_they_were_read() -> None:
    """Pacer (every real-time twin server): a command read while the twin is behind is held
    until the twin reaches the cycle it was read at, as when on time; the loop is told not to
    wait while behind. Fake clock, no thread."""
    clock = _FakeClock()
    model = TwinModel(block_config(0.1, source_hz=1.3e6, seed=4))  # deadlines all along: slices
    pacer = Pacer(model, "realtime", clock=clock)
    clock.t = 0.1
    wall = round(0.1 * CLOCK_HZ)
    pacer.on_input(encode(Time(), 1))
    step = round(MAX_STEP_S * CLOCK_HZ)
    assert model.now == step and pacer.catchup.behind and pacer.timeout() == 0.0
    assert len(pacer.catchup) == 1  # held: read at `wall`, the twin is at one slice
    n = 1
    while pacer.catchup.behind:
        pacer.on_idle()
        n += 1
    assert n == wall // step and model.now == wall and not pacer.catchup
    model.advance_to(wall + round(1e-3 * CLOCK_HZ))  # the answer leaves the UART (after a block)
    values = [f.msg for f in FrameDecoder().feed(model.read()) if isinstance(f.msg, TimeValue)]
    assert len(values) == 1 and values[0].ts == wall  # executed at the cycle it was read


def test_frames_finished_during_the_iteration_leave_with_it(monkeypatch) -> None:
    """The iteration of a verdict and its herald landing puts the pair's PAIR and DONE on the
    UART, and the UART finishes them while that (heavy) iteration still runs: they leave with
    it (LabServer._passed), not one loop iteration later. The model still never runs ahead of
    the wall clock (here a fake one the test moves)."""
    from hwctl.wire import Done, SchedulePairs

    def lab_with_a_pair() -> Lab:
        lab = Lab(topologies.by_name("K2"), p_photon=0.05, seed=3, start=0)
        for n, peer in (("A", "B"), ("B", "A")):
            lab.feed(n, encode(SchedulePairs(5_000, 2**32 - 1, 50, 1, lab.port(n, peer)), 1))
        return lab

    ref = lab_with_a_pair()  # where the DONE is, in model time
    done = None
    while done is None:
        ref.advance(10_000)
        done = next((f.msg for f in FrameDecoder().feed(ref.read("A"))
                     if isinstance(f.msg, Done)), None)
    lab = lab_with_a_pair()
    srv = LabServer(lab, pty=False)  # not started: the loop's step functions alone
    wall = [done.ts]
    monkeypatch.setattr(timebase, "cycle_now", lambda hz=CLOCK_HZ, epoch=None: wall[0])
    try:
        srv._advance(wall[0])  # the landing: PAIR and DONE on the UART, not finished yet
        assert lab.now == done.ts
        assert not any(isinstance(f.msg, Done) for f in FrameDecoder().feed(lab.read("A")))
        wall[0] += 30_000  # the iteration ran 0.3 ms: the UART finished both frames
        srv._passed()
        assert lab.now == wall[0]  # up to the wall clock, not beyond
        assert any(isinstance(f.msg, Done) for f in FrameDecoder().feed(lab.read("A")))
        srv._passed()  # nothing passed since: nothing moves
        assert lab.now == wall[0]
    finally:
        srv.stop()


def _pty_lab() -> LabServer:
    lab = Lab(topologies.by_name("K2"), p_photon=0.01, start=timebase.cycle_now())
    return LabServer(lab)  # ptys, not started: the wait alone


def test_a_wait_for_a_deadline_polls_its_end_and_never_returns_early(monkeypatch) -> None:
    """The last SPIN_S of a wait for a model deadline is polled (select with timeout 0, a timed
    sleep wakes ~0.1 ms late on the VM): the wait returns at the deadline, never before it."""
    srv = _pty_lab()
    calls: list[float] = []
    real = select.select

    def spy(r, w, x, timeout=None):
        calls.append(timeout)
        return real(r, w, x, timeout)

    monkeypatch.setattr(select, "select", spy)
    try:
        assert srv.spin_s == LabServer.SPIN_S > 0
        srv._urgent = True  # (_timeout: the wait ends at an urgent deadline, Lab.next_urgent)
        t0 = time.perf_counter()
        r, w = srv._wait(0.002)
        assert time.perf_counter() - t0 >= 0.002 and (r, w) == ([], [])
        assert calls[0] == 0.002 - srv.spin_s and all(c == 0 for c in calls[1:])
        calls.clear()
        srv._wait(srv.MAX_WAIT)  # no deadline (the idle wait's cap): slept whole
        assert calls == [srv.MAX_WAIT]
        calls.clear()
        srv._urgent = False  # a deadline no host waits for (a HEADER stream's): slept whole
        srv._wait(0.001)
        assert calls == [0.001]
    finally:
        srv.stop()


def test_input_during_the_polled_end_of_a_wait_returns_at_once() -> None:
    srv = _pty_lab()
    try:
        os.write(srv._wake_w, b"x")  # already readable: the first select returns it
        r, _ = srv._wait(10.0 * srv.spin_s)
        assert srv._wake_r in r
        os.read(srv._wake_r, 16)
        srv.spin_s, srv._urgent = 10.0, True  # all of it polled: readable input ends the poll
        threading.Timer(0.01, lambda: os.write(srv._wake_w, b"x")).start()
        r, _ = srv._wait(HANG / 10)
        assert srv._wake_r in r
    finally:
        srv.stop()


def test_an_in_process_lab_never_polls(monkeypatch) -> None:
    """An in-process lab (attach) shares the node services' interpreter: it sleeps whole."""
    lab = Lab(topologies.by_name("K2"), p_photon=0.01, start=timebase.cycle_now())
    srv = LabServer(lab, pty=False)
    srv.attach("A", lambda data: None)
    calls: list[float] = []
    real = select.select
    monkeypatch.setattr(select, "select",
                        lambda r, w, x, timeout=None: calls.append(timeout) or real(r, w, x, timeout))
    try:
        srv._wait(0.001)
        assert calls == [0.001]

        def no(*_a):
            raise AssertionError("an in-process lab asks for urgent deadlines")

        monkeypatch.setattr(lab, "next_urgent", no)  # not even the query (the shared GIL)
        srv._timeout()
        assert srv._urgent is False
    finally:
        srv.stop()
    monkeypatch.setenv("HWCTL_LAB_SPIN_US", "0")
    off = LabServer(Lab(topologies.by_name("K2"), p_photon=0.01), pty=False)
    assert off.spin_s == 0.0
    off.stop()
