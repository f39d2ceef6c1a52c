"""A real-time lab that fell behind the wall clock catches up in bounded slices (issue 14,
benchmarks/RESULTS.md "hdr_block, seventh session"): its device output reaches the hosts at the
line's pace instead of as one chunk of seconds of line bytes, and a pty backlog that overflows
keeps the whole frames that fit and drops (and counts) only the rest.

No test depends on machine speed: the lab is held behind by holding its lock (however long the
machine takes, it is behind by at least the time the lock was held), the figures checked are
model-time quantities (bytes per slice of model time), and every wait only bounds a hang.
"""

from __future__ import annotations

import threading
import time

from hwctl import timebase
from hwctl.sim import topologies
from hwctl.sim.twin.flood import block_config
from hwctl.sim.twin.lab import Lab, LabServer
from hwctl.sim.twin.model import UART_CYCLES_PER_BYTE
from hwctl.sim.twin.pacing import UartBacklog
from hwctl.wire import FrameDecoder

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
        assert srv._advance(10 * step, step) is True and lab.now == step
        assert srv._advance(step + 5, step) is False and lab.now == step + 5
        assert srv._advance(0, step) is False and lab.now == step + 5  # never backwards
    finally:
        srv.stop()


def test_a_lab_with_nothing_to_do_takes_one_step() -> None:
    """No deadline before real time (here: no source, no schedule): no slices, as before."""
    lab = Lab(topologies.by_name("K2"), p_photon=0.0, start=0)
    srv = LabServer(lab, pty=False)
    try:
        step = round(LabServer.MAX_STEP_S * srv.hz)
        assert srv._advance(10 * step, step) is False and lab.now == 10 * step
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
