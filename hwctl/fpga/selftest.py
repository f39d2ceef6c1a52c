"""``hwctl fpga selftest URL``: bring-up check of a freshly flashed board over its host link.

One line per block, PASS / FAIL / SKIP with the reason, in this order:

- ``link``: TIME answers; ID is ``meta.device_id``, VERSION is this host's wire version; it
  names the build profile from VERSION bits 31:16 (spec ``[feature_bits]``), and each later
  block whose feature the bitstream was built without is a SKIP ("built without PAIRS (profile
  verify)").
- ``registers``: SCRATCH holds four bit patterns; CONTROL reads back what was written (and is
  restored); ID (read-only) is unchanged after a write attempt; TEST (wire v4) reads back.
- ``timestamp``: TIME increases; its rate over ``rate_s`` seconds of host time is the board's
  clock (``--clock-hz``, default the spec's 100 MHz) within ``--rate-tol`` (device time is
  sampled between two host clock reads, so the link latency bounds the error). Meaningful on
  hardware and on ``twin://?mode=realtime``; a virtual-time twin or a co-simulation has no
  host-clock rate (SKIP).
- ``headers`` (before the schedules, so the pool is still free): the header test pattern
  (TEST.HDR_GEN + HDR_BAD, docs/physical-layer.md section 6) must give HEADER seq 0, 1, 2 on
  distinct slots, the malformed seq 3 as ERROR(BAD_HEADER) (ERR_BAD_HEADER + 1), then seq 4;
  FREE of each slot is accepted and FREE outside the pool refused. A device without TEST: an
  external header source is checked the same way (increasing seq, distinct slots), else SKIP.
- ``schedule``: a SCHEDULE whose start is in the past gives LATE (and ERR_LATE + 1); with the
  detector loop (TEST.DET_GEN, N = 4) a future one heralds at attempt 3 on the generated
  detector, 3 cycles after the attempt; without the loop 8 attempts end with DONE(EXHAUSTED, 8);
  CNT_ATTEMPTS grows by the attempts the events report. A build without V2: SKIP.
- ``pairs``: SCHEDULE_PAIRS with the herald loop (TEST.HL_GEN, N = 2): PAIRs for attempts 1, 3,
  5 on qubits 0, 1, 2 with the generated Bell state, then DONE(COMPLETE); CNT_PAIRS + 3.
  Without TEST: SKIP.

Times are device cycles (:class:`Timing`): the defaults suit hardware (50 ms lead, 100 us
periods, a header every 2.6 ms); :meth:`Timing.sim` suits the RTL co-simulation, where every
cycle costs simulator time. ``timeout=None`` waits for each event without a wall-clock bound
(the co-simulation: a dead simulator closes the link, which ends the wait).

A deliberately broken block fails its line (fpga/tests/test_fpga_selftest.py breaks the twin's
scratch register, its attempt counter and its loops; tests/test_transport_cosim.py runs it
against the RTL). Exit status 0 when no line failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from hwctl.errors import DeviceError, LinkTimeout
from hwctl.wire import (
    ControlBit,
    Done,
    DoneReason,
    Error,
    ErrorCode,
    Header,
    Herald,
    Late,
    Pair,
    Reg,
)
from hwctl.wire import TestBit as TB
from hwctl.wire._spec import DEVICE_ID, WIRE_VERSION, FeatureBit
from hwctl.wire.features import feature_names, features_of_version, profile_of

CLOCK_HZ = 100_000_000
UNTIL_DONE = 2**32 - 1
#: a generated click is seen 3 cycles after its attempt (docs/physical-layer.md section 6)
DET_GEN_LAT = 3
#: CONTROL bits (generated from the wire spec, hwctl.wire.ControlBit)
HERALD_EN = 1 << ControlBit.HERALD_EN
HEADER_EN = 1 << ControlBit.HEADER_EN
#: the CONTROL bits every build stores and reads back, the ones the registers line compares
#: (CLEAR_COUNTERS clears itself; HDR_BLOCK and LATE_JOIN exist only in builds with them)
CONTROL_RW = HERALD_EN | HEADER_EN


@dataclass(frozen=True)
class Timing:
    """Device cycles the checks use."""

    lead: int = CLOCK_HZ // 20      # schedule start ahead of TIME (covers the command's trip)
    period: int = CLOCK_HZ // 10_000  # attempt period (>= the herald loop's 470-cycle gap)
    hdr_gap: int = 256              # header pattern gap in units of 1024 cycles (1..256)

    @classmethod
    def sim(cls) -> Timing:
        """For the RTL co-simulation (CLKS_PER_BIT = 4: a command takes ~1500 cycles)."""
        return cls(lead=10_000, period=600, hdr_gap=2)


def _test_word(*bits: TB, n: int = 1, gap: int = 1) -> int:
    return sum(1 << b for b in bits) | (n - 1) << TB.N_LSB | (gap - 1) << TB.GAP_LSB


async def _has_test(be) -> bool:
    try:
        await be.read_reg(Reg.TEST)
    except DeviceError as exc:
        if exc.code == ErrorCode.BAD_REG:
            return False
        raise
    return True


@dataclass
class Line:
    block: str
    status: str          # PASS / FAIL / SKIP
    detail: str


async def _link(be) -> Line:
    ts = await be.time()
    dev_id = await be.read_reg(Reg.ID)
    ver_reg = await be.read_reg(Reg.VERSION)
    ver = ver_reg & 0xFFFF
    ok = dev_id == DEVICE_ID and ver == WIRE_VERSION
    feats = features_of_version(ver_reg)
    if ok:   # later blocks skip what the bitstream was built without (the backend refuses it)
        be.features = feats
    prof = profile_of(feats)
    built = (f"profile {prof}" if prof else "features "
             + ("+".join(feature_names(feats)) or "none"))
    return Line("link", "PASS" if ok else "FAIL",
                f"ID 0x{dev_id:08x}, wire version {ver} (host {WIRE_VERSION}), {built}, "
                f"time {ts}")


def _lacks(be, feature: FeatureBit, block: str) -> Line | None:
    """A SKIP line when the device's build has no ``feature`` (read by the link block)."""
    if be.features is None or be.features >> int(feature) & 1:
        return None
    prof = profile_of(be.features)
    return Line(block, "SKIP", f"built without {feature.name}"
                + (f" (profile {prof})" if prof else ""))


async def _registers(be) -> Line:
    bad = []
    for pat in (0x0000_0000, 0xFFFF_FFFF, 0xA5A5_5A5A, 0x1234_5678):
        await be.write_reg(Reg.SCRATCH, pat)
        got = await be.read_reg(Reg.SCRATCH)
        if got != pat:
            bad.append(f"SCRATCH 0x{pat:08x} read 0x{got:08x}")
    ctl = await be.read_reg(Reg.CONTROL)
    await be.write_reg(Reg.CONTROL, ctl ^ HERALD_EN)
    got = await be.read_reg(Reg.CONTROL)
    await be.write_reg(Reg.CONTROL, ctl)
    if got & CONTROL_RW != (ctl ^ HERALD_EN) & CONTROL_RW:
        bad.append(f"CONTROL wrote 0x{ctl ^ HERALD_EN:x} read 0x{got:x}")
    if await be.read_reg(Reg.CONTROL) & CONTROL_RW != ctl & CONTROL_RW:
        bad.append("CONTROL not restored")
    what = "SCRATCH 4 patterns, CONTROL read/write"
    if await _has_test(be):
        await be.write_reg(Reg.TEST, 0x00AB_CD00)
        got = await be.read_reg(Reg.TEST)
        await be.write_reg(Reg.TEST, 0)
        if got != 0x00AB_CD00:
            bad.append(f"TEST wrote 0x00abcd00 read 0x{got:08x}")
        what += ", TEST"
    return Line("registers", "FAIL" if bad else "PASS", "; ".join(bad) if bad else what)


async def _timestamp(be, clock_hz: int, rate_s: float, tol: float, realtime: bool) -> Line:
    h0 = time.monotonic()
    t0 = await be.time()
    h1 = time.monotonic()
    await asyncio.sleep(rate_s)
    h2 = time.monotonic()
    t1 = await be.time()
    h3 = time.monotonic()
    if t1 <= t0:
        return Line("timestamp", "FAIL", f"TIME did not increase ({t0} -> {t1})")
    if not realtime:
        return Line("timestamp", "SKIP", f"increases ({t1 - t0} cycles); virtual-time twin has "
                    "no host-clock rate (use twin://?mode=realtime)")
    # device samples lie in [h0, h1] and [h2, h3]: the rate is bounded by the two extremes
    lo = (t1 - t0) / (h3 - h0)
    hi = (t1 - t0) / max(h2 - h1, 1e-9)
    ok = lo <= clock_hz * (1 + tol) and hi >= clock_hz * (1 - tol)
    mid = (t1 - t0) / ((h3 + h2) / 2 - (h1 + h0) / 2)
    return Line("timestamp", "PASS" if ok else "FAIL",
                f"{mid / 1e6:.3f} MHz measured (bounds {lo / 1e6:.3f}-{hi / 1e6:.3f}) vs "
                f"{clock_hz / 1e6:g} MHz +-{tol:.0%}")


async def _drain(be) -> None:
    while be.pending_events():
        await be.next_event(timeout=0.1)


async def _next_of(be, types: tuple[type, ...], timeout: float | None):
    """The next event of one of ``types``; others (headers, their errors) are passed over.
    ``timeout`` None: no wall-clock bound."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.01, deadline - time.monotonic())
        ev = await be.next_event(timeout=left)
        if isinstance(ev, types):
            return ev


async def _schedule(be, tm: Timing, timeout: float | None) -> Line:
    if (skip := _lacks(be, FeatureBit.V2, "schedule")) is not None:
        return skip
    await _drain(be)
    late0 = await be.read_reg(Reg.ERR_LATE)
    att0 = await be.read_reg(Reg.CNT_ATTEMPTS)
    now = await be.time()
    try:
        await be.schedule(max(0, now - 1000), 3, 100, 10)
    except DeviceError as exc:
        if exc.code == ErrorCode.BAD_OPCODE:   # a build without V2 whose features were not read
            return Line("schedule", "SKIP", "device has no v2 SCHEDULE (V2 = 0 build); "
                        "the pairs line checks SCHEDULE_PAIRS")
        raise
    ev = await _next_of(be, (Late, Done, Herald), timeout)
    if not isinstance(ev, Late):
        return Line("schedule", "FAIL", f"past start gave {type(ev).__name__}, not LATE")
    if await be.read_reg(Reg.ERR_LATE) != late0 + 1:
        return Line("schedule", "FAIL", "ERR_LATE did not count the LATE")
    n, loop = 8, await _has_test(be)
    if loop:   # detector loop: every 4th attempt clicks detector 1 -> HERALD at attempt 3
        await be.write_reg(Reg.CONTROL, (await be.read_reg(Reg.CONTROL)) | HERALD_EN)
        await be.write_reg(Reg.TEST, _test_word(TB.DET_GEN, TB.DET_SEL, n=4))
    try:
        start = await be.time() + tm.lead
        await be.schedule(start, n, tm.period, 20)
        ev = await _next_of(be, (Late, Done, Herald), timeout)
    finally:
        if loop:
            await be.write_reg(Reg.TEST, 0)
    if isinstance(ev, Done):
        fired = ev.attempts
        ok = not loop and ev.reason == 0 and ev.attempts == n
        what = f"DONE after {ev.attempts} attempts" + (" (the detector loop never heralded)"
                                                       if loop else "")
    elif isinstance(ev, Herald):
        fired = ev.attempt + 1
        want = start + 3 * tm.period + DET_GEN_LAT
        ok = (not loop and ev.ts >= start) or (ev.attempt, ev.detector, ev.ts) == (3, 1, want)
        what = f"HERALD at attempt {ev.attempt}, detector {ev.detector}" + (
            f", ts {ev.ts - start} after start (loop: attempt 3, detector 1, "
            f"{want - start})" if loop else "")
    else:
        return Line("schedule", "FAIL", f"future schedule gave {type(ev).__name__}")
    await be.time()   # the counters settle within a command's round trip
    att = await be.read_reg(Reg.CNT_ATTEMPTS) - att0
    if att != fired:
        return Line("schedule", "FAIL", f"{what}, but CNT_ATTEMPTS grew by {att}")
    return Line("schedule", "PASS" if ok else "FAIL", f"LATE for a past start; {what}")


async def _pairs(be, tm: Timing, timeout: float | None) -> Line:
    if (skip := _lacks(be, FeatureBit.PAIRS, "pairs")) is not None:
        return skip
    if not await _has_test(be):
        return Line("pairs", "SKIP", "no TEST register (no herald loop): needs a station")
    await _drain(be)
    p0 = await be.read_reg(Reg.CNT_PAIRS)
    await be.write_reg(Reg.TEST, _test_word(TB.HL_GEN, TB.DET_SEL, n=2))
    got: list[Pair] = []
    try:
        start = await be.time() + tm.lead
        await be.schedule_pairs(start, UNTIL_DONE, max(tm.period, 600), 3, 0)
        while True:
            ev = await _next_of(be, (Pair, Done, Late, Error), timeout)
            if not isinstance(ev, Pair):
                break
            got.append(ev)
    finally:
        await be.write_reg(Reg.TEST, 0)
    seen = [(e.attempt, e.bell, e.qubit, e.port) for e in got]
    want = [(1, 1, 0, 0), (3, 1, 1, 0), (5, 1, 2, 0)]
    if seen != want or not isinstance(ev, Done) or ev.reason != DoneReason.COMPLETE:
        return Line("pairs", "FAIL", f"herald loop gave (attempt, bell, qubit, port) {seen} "
                    f"then {ev} (want {want} then DONE COMPLETE)")
    if await be.read_reg(Reg.CNT_PAIRS) - p0 != 3:
        return Line("pairs", "FAIL", "CNT_PAIRS did not count the 3 pairs")
    return Line("pairs", "PASS", f"herald loop: PAIRs for attempts 1, 3, 5 on qubits 0-2, "
                f"DONE COMPLETE after {ev.attempts} attempts")


async def _header_events(be, n: int, timeout: float | None) -> list:
    """The next ``n`` HEADER / BAD_HEADER events (others passed over)."""
    out: list = []
    deadline = None if timeout is None else time.monotonic() + timeout
    while len(out) < n:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        try:
            ev = await be.next_event(timeout=None if left is None else max(0.01, left))
        except LinkTimeout:
            break
        if isinstance(ev, Header) or (isinstance(ev, Error)
                                      and ev.code == ErrorCode.BAD_HEADER):
            out.append(ev)
    return out


async def _free_check(be, seen: list[Header]) -> str | None:
    for h in seen:
        await be.free(h.slot)
    try:
        await be.free(0xFFFF)
    except DeviceError:
        return None
    return "FREE of slot 0xFFFF (outside the pool) was accepted"


async def _headers(be, tm: Timing, timeout: float | None) -> Line:
    if (skip := _lacks(be, FeatureBit.HEADERS, "headers")) is not None:
        return skip
    if await _has_test(be):
        await _drain(be)
        bad0 = await be.read_reg(Reg.ERR_BAD_HEADER)
        ctl = await be.read_reg(Reg.CONTROL)
        await be.write_reg(Reg.CONTROL, ctl | HEADER_EN)
        await be.write_reg(Reg.TEST, _test_word(TB.HDR_GEN, TB.HDR_BAD, gap=tm.hdr_gap))
        try:
            evs = await _header_events(be, 5, timeout)
        finally:
            await be.write_reg(Reg.TEST, 0)
            await be.write_reg(Reg.CONTROL, ctl)
        hdrs = [e for e in evs if isinstance(e, Header)]
        kinds = [e.seq if isinstance(e, Header) else "BAD" for e in evs]
        if kinds != [0, 1, 2, "BAD", 4] or len({h.slot for h in hdrs}) != 4:
            return Line("headers", "FAIL", f"header pattern gave {kinds}, slots "
                        f"{[h.slot for h in hdrs]} (want seq 0, 1, 2, BAD, 4 on distinct slots)")
        # ERROR(BAD_HEADER).info is ERR_BAD_HEADER after its increment (the register itself
        # may have counted more by now: the pattern runs until TEST is written back)
        info = next(e.info for e in evs if isinstance(e, Error))
        if info != bad0 + 1 or await be.read_reg(Reg.ERR_BAD_HEADER) < bad0 + 1:
            return Line("headers", "FAIL", f"ERR_BAD_HEADER did not count the malformed header "
                        f"(ERROR info {info}, before {bad0})")
        err = await _free_check(be, hdrs)
        if err:
            return Line("headers", "FAIL", err)
        return Line("headers", "PASS", "header pattern: seq 0-2, 4 on distinct slots, seq 3 "
                    "malformed -> BAD_HEADER; FREE accepted for them, refused outside the pool")
    seen = [e for e in await _header_events(be, 3, 5.0 if timeout is None else timeout)
            if isinstance(e, Header)]
    if not seen:
        return Line("headers", "SKIP", "no TEST register (no header pattern) and no HEADER "
                    "within the wait: no header source on hdr_i")
    seqs = [h.seq for h in seen]
    if seqs != sorted(seqs) or len({h.slot for h in seen}) != len(seen):
        return Line("headers", "FAIL", f"seq {seqs}, slots {[h.slot for h in seen]}")
    err = await _free_check(be, seen)
    if err:
        return Line("headers", "FAIL", err)
    return Line("headers", "PASS", f"{len(seen)} HEADERs (seq {seqs[0]}..{seqs[-1]}, distinct "
                "slots), FREE accepted for them and refused outside the pool")


async def run_selftest(url: str, *, clock_hz: int = CLOCK_HZ, rate_s: float = 1.0,
                       rate_tol: float = 0.01, timeout: float | None = 5.0,
                       timing: Timing | None = None, realtime: bool | None = None,
                       on_line: Callable[[Line], None] | None = None, **backend_kw) -> list[Line]:
    """Open ``url`` (no handshake: the link line reports ID / version itself) and run every
    block; a block that raises is a FAIL line with the exception's text. ``realtime``: whether
    device time follows the host clock (default: hardware and ``twin://?mode=realtime``)."""
    from hwctl.backends import register_defaults
    from hwctl.transport import open_backend

    register_defaults()   # twin:// and friends (the CLI does this too; idempotent)
    tm = timing or Timing(lead=clock_hz // 20, period=clock_hz // 10_000)
    be = await open_backend(url, handshake=False, **backend_kw)
    if realtime is None:
        realtime = not url.startswith("twin:") or "mode=realtime" in url
    lines: list[Line] = []
    blocks = (("link", lambda: _link(be)), ("registers", lambda: _registers(be)),
              ("timestamp", lambda: _timestamp(be, clock_hz, rate_s, rate_tol, realtime)),
              ("headers", lambda: _headers(be, tm, timeout)),
              ("schedule", lambda: _schedule(be, tm, timeout)),
              ("pairs", lambda: _pairs(be, tm, timeout)))
    try:
        for name, fn in blocks:
            try:
                line = await fn()
            except Exception as exc:  # one failing block must not hide the others
                line = Line(name, "FAIL", f"{type(exc).__name__}: {exc}")
                if name == "link" and isinstance(exc, LinkTimeout):  # nothing answers there
                    line = Line(name, "FAIL", f"{line.detail}; hint: is the board powered and "
                                f"its bitstream loaded, and at {url} (a bridge: `hwctl bridge`; "
                                f"a served twin: `hwctl twin --zmq`; the serial port and baud)?")
            lines.append(line)
            if on_line:
                on_line(line)
            if name == "link" and line.status == "FAIL":
                break
    finally:
        await be.close()
    return lines
