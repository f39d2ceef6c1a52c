"""hwctl fpga selftest against the software twin: every line passes on a healthy device (real
time, the test-pattern generators of register TEST standing in for detectors, station and header
source), and a deliberately broken block (a stuck register bit, a dead counter, a loop that does
not loop) fails its own line while the others still pass. The same self-test against the RTL
co-simulation: tests/test_transport_cosim.py."""

from __future__ import annotations

import asyncio

from hwctl.fpga.selftest import run_selftest
from hwctl.sim.twin.model import TwinConfig, TwinModel
from hwctl.wire import ControlBit, Reg

URL = "twin://?mode=realtime&p=0"


def _run(**kw):
    kw.setdefault("timeout", 5.0)
    return {ln.block: ln for ln in asyncio.run(run_selftest(URL, rate_s=0.3, **kw))}


def test_selftest_passes_on_twin() -> None:
    lines = _run()
    assert list(lines) == ["link", "registers", "timestamp", "headers", "schedule", "pairs"]
    assert all(ln.status == "PASS" for ln in lines.values()), lines


class _StuckScratchBit(TwinModel):
    """A register file with SCRATCH bit 3 stuck at 0 (a broken data path)."""

    def reg(self, addr: int) -> int:
        v = super().reg(addr)
        return v & ~0x8 if addr == Reg.SCRATCH else v


class _StuckHeraldEnable(TwinModel):
    """CONTROL.HERALD_EN (its bit from the wire spec) always reads 0 (a broken enable flop)."""

    def reg(self, addr: int) -> int:
        v = super().reg(addr)
        return v & ~(1 << ControlBit.HERALD_EN) if addr == Reg.CONTROL else v


class _NoAttemptCount(TwinModel):
    """CNT_ATTEMPTS never counts (a broken counter strobe)."""

    def reg(self, addr: int) -> int:
        return 0 if addr == Reg.CNT_ATTEMPTS else super().reg(addr)


class _NoHeraldLoop(TwinModel):
    """TEST.HL_GEN is stored but the herald loop never sends (loopback disabled)."""

    def _plan_loop(self, k_from: int) -> None:
        self._tp_next = None


class _DetLoopWrongDetector(TwinModel):
    """The detector loop clicks the other detector than DET_SEL (a swapped wire)."""

    def _mark_click(self, run, k: int, cycle: int, det: int) -> None:
        super()._mark_click(run, k, cycle, det ^ 1)


def _model(cls):
    return cls(TwinConfig(p_photon=0.0, dark_prob=0.0, seed=1))


def test_broken_register_fails_its_line_only() -> None:
    lines = _run(model=_model(_StuckScratchBit))
    assert lines["registers"].status == "FAIL" and "SCRATCH" in lines["registers"].detail
    assert all(ln.status == "PASS" for b, ln in lines.items() if b != "registers"), lines


def test_stuck_control_bit_fails_the_registers_line_only() -> None:
    """The registers line toggles CONTROL.HERALD_EN at the bit the generated ControlBit names."""
    lines = _run(model=_model(_StuckHeraldEnable))
    assert lines["registers"].status == "FAIL" and "CONTROL" in lines["registers"].detail, lines
    assert all(ln.status == "PASS" for b, ln in lines.items() if b != "registers"), lines


def test_broken_attempt_counter_fails_schedule_line() -> None:
    lines = _run(model=_model(_NoAttemptCount))
    assert lines["schedule"].status == "FAIL" and "CNT_ATTEMPTS" in lines["schedule"].detail
    assert all(ln.status == "PASS" for b, ln in lines.items() if b != "schedule"), lines


def test_wrong_clock_fails_timestamp_line() -> None:
    """Expecting 120 MHz from a 100 MHz device fails the rate line (the bounds from the link
    latency are a few % wide on a loaded machine, so the difference tested is 20 %)."""
    lines = _run(clock_hz=120_000_000)
    assert lines["timestamp"].status == "FAIL"


def test_disabled_herald_loop_fails_pairs_line() -> None:
    lines = _run(model=_model(_NoHeraldLoop), timeout=2.0)
    assert lines["pairs"].status == "FAIL", lines
    assert all(ln.status == "PASS" for b, ln in lines.items() if b != "pairs"), lines


def test_swapped_detector_loop_fails_schedule_line() -> None:
    lines = _run(model=_model(_DetLoopWrongDetector))
    assert lines["schedule"].status == "FAIL" and "detector 0" in lines["schedule"].detail, lines
    assert all(ln.status == "PASS" for b, ln in lines.items() if b != "schedule"), lines


def test_nothing_at_the_url_is_one_link_line_with_a_hint(capsys) -> None:
    """A served twin or bridge that is not there: the link line says what to check."""
    from hwctl.cli import main

    assert main(["fpga", "selftest", "zmq+tcp://127.0.0.1:1?timeout=0.05&retries=1"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("FAIL link")
    assert "hint: is the board powered" in out[0] and "`hwctl bridge`" in out[0]
