"""``hwctl fpga selftest URL``: bring-up check of a freshly flashed board over its host link.

One line per block, PASS / FAIL / SKIP with the reason, in this order:

- ``link``: TIME answers; ID is ``meta.device_id``, VERSION is this host's wire version.
- ``registers``: SCRATCH holds four bit patterns; CONTROL reads back what was written (and is
  restored); ID (read-only) is unchanged after a write attempt.
- ``timestamp``: TIME increases; its rate over ``rate_s`` seconds of host time is the board's
  clock (``--clock-hz``, default the spec's 100 MHz) within ``--rate-tol`` (device time is
  sampled between two host clock reads, so the link latency bounds the error). Meaningful on
  hardware and on ``twin://?mode=realtime``; a virtual-time twin has no host-clock rate (SKIP).
- ``headers`` (before ``schedule``, so the pool is still free): see below.
- ``schedule``: a schedule whose start is in the past gives LATE (and ERR_LATE + 1); a future
  one of N attempts ends with DONE (EXHAUSTED, N attempts) or HERALD, and CNT_ATTEMPTS grows by
  the attempts the events report. No detector needs to be wired (clicks only end it sooner).
- ``headers``: HEADER events from a header stream arrive with increasing seq and distinct slots,
  FREE of them is accepted and FREE outside the pool refused. The RTL has no header test-pattern generator yet
  (the loopback mode is the remaining step), so on hardware without a source on ``hdr_i`` this
  line is SKIP; the twin generates headers itself (``twin://?headers=N``).

A deliberately broken block fails its line (fpga/tests/test_fpga_selftest.py breaks the twin's
scratch register and its scheduler). Exit status 0 when no line failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from hwctl.errors import DeviceError
from hwctl.wire import Done, ErrorCode, Header, Herald, Late, Reg
from hwctl.wire._spec import DEVICE_ID, WIRE_VERSION

CLOCK_HZ = 100_000_000


@dataclass
class Line:
    block: str
    status: str          # PASS / FAIL / SKIP
    detail: str


async def _link(be) -> Line:
    ts = await be.time()
    dev_id = await be.read_reg(Reg.ID)
    ver = await be.read_reg(Reg.VERSION) & 0xFFFF
    ok = dev_id == DEVICE_ID and ver == WIRE_VERSION
    return Line("link", "PASS" if ok else "FAIL",
                f"ID 0x{dev_id:08x}, wire version {ver} (host {WIRE_VERSION}), time {ts}")


async def _registers(be) -> Line:
    bad = []
    for pat in (0x0000_0000, 0xFFFF_FFFF, 0xA5A5_5A5A, 0x1234_5678):
        await be.write_reg(Reg.SCRATCH, pat)
        got = await be.read_reg(Reg.SCRATCH)
        if got != pat:
            bad.append(f"SCRATCH 0x{pat:08x} read 0x{got:08x}")
    ctl = await be.read_reg(Reg.CONTROL)
    await be.write_reg(Reg.CONTROL, ctl ^ 0x1)
    got = await be.read_reg(Reg.CONTROL)
    await be.write_reg(Reg.CONTROL, ctl)
    if got & 0x3 != (ctl ^ 0x1) & 0x3:
        bad.append(f"CONTROL wrote 0x{ctl ^ 1:x} read 0x{got:x}")
    if await be.read_reg(Reg.CONTROL) & 0x3 != ctl & 0x3:
        bad.append("CONTROL not restored")
    return Line("registers", "FAIL" if bad else "PASS",
                "; ".join(bad) if bad else "SCRATCH 4 patterns, CONTROL read/write")


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


async def _next_of(be, types: tuple[type, ...], timeout: float):
    """The next event of one of ``types``; others (headers, their errors) are passed over."""
    deadline = time.monotonic() + timeout
    while True:
        ev = await be.next_event(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(ev, types):
            return ev


async def _schedule(be, clock_hz: int, timeout: float) -> Line:
    await _drain(be)
    late0 = await be.read_reg(Reg.ERR_LATE)
    att0 = await be.read_reg(Reg.CNT_ATTEMPTS)
    now = await be.time()
    try:
        await be.schedule(max(0, now - 1000), 3, 100, 10)
    except DeviceError as exc:
        if exc.code == ErrorCode.BAD_OPCODE:   # a V2 = 0 build (HX8K): SCHEDULE_PAIRS only
            return Line("schedule", "SKIP", "device has no v2 SCHEDULE (V2 = 0 build); "
                        "SCHEDULE_PAIRS is not checked yet")
        raise
    ev = await _next_of(be, (Late, Done, Herald), timeout)
    if not isinstance(ev, Late):
        return Line("schedule", "FAIL", f"past start gave {type(ev).__name__}, not LATE")
    if await be.read_reg(Reg.ERR_LATE) != late0 + 1:
        return Line("schedule", "FAIL", "ERR_LATE did not count the LATE")
    n, period = 8, clock_hz // 10_000          # 8 attempts, 100 us apart
    start = await be.time() + clock_hz // 20   # 50 ms ahead: time for the command to arrive
    await be.schedule(start, n, period, 20)
    ev = await _next_of(be, (Late, Done, Herald), timeout)
    if isinstance(ev, Done):
        fired = ev.attempts
        ok = ev.reason == 0 and ev.attempts == n
        what = f"DONE after {ev.attempts} attempts"
    elif isinstance(ev, Herald):
        fired, ok, what = ev.attempt + 1, ev.ts >= start, f"HERALD at attempt {ev.attempt}"
    else:
        return Line("schedule", "FAIL", f"future schedule gave {type(ev).__name__}")
    await asyncio.sleep(0.05)
    att = await be.read_reg(Reg.CNT_ATTEMPTS) - att0
    if att != fired:
        return Line("schedule", "FAIL", f"{what}, but CNT_ATTEMPTS grew by {att}")
    return Line("schedule", "PASS" if ok else "FAIL", f"LATE for a past start; {what}")


async def _headers(be, timeout: float) -> Line:
    seen: list[Header] = []
    deadline = time.monotonic() + timeout
    while len(seen) < 3 and time.monotonic() < deadline:
        try:
            ev = await be.next_event(timeout=max(0.01, deadline - time.monotonic()))
        except Exception:
            break
        if isinstance(ev, Header):
            seen.append(ev)
    if not seen:
        return Line("headers", "SKIP", "no HEADER within the wait: no header source on hdr_i "
                    "(the RTL header test-pattern generator is not built yet)")
    seqs = [h.seq for h in seen]
    if seqs != sorted(seqs) or len({h.slot for h in seen}) != len(seen):
        return Line("headers", "FAIL", f"seq {seqs}, slots {[h.slot for h in seen]}")
    # FREE of each slot received is accepted; FREE of a slot outside any pool is refused (the
    # source keeps sending, so SLOTS_FREE itself is no stable witness)
    for h in seen:
        await be.free(h.slot)
    try:
        await be.free(0xFFFF)
    except DeviceError:
        pass
    else:
        return Line("headers", "FAIL", "FREE of slot 0xFFFF (outside the pool) was accepted")
    return Line("headers", "PASS", f"{len(seen)} HEADERs (seq {seqs[0]}..{seqs[-1]}, distinct "
                "slots), FREE accepted for them and refused outside the pool")


async def run_selftest(url: str, *, clock_hz: int = CLOCK_HZ, rate_s: float = 1.0,
                       rate_tol: float = 0.01, timeout: float = 5.0,
                       on_line: Callable[[Line], None] | None = None, **backend_kw) -> list[Line]:
    """Open ``url`` (no handshake: the link line reports ID / version itself) and run every
    block; a block that raises is a FAIL line with the exception's text."""
    from hwctl.backends import register_defaults
    from hwctl.transport import open_backend

    register_defaults()   # twin:// and friends (the CLI does this too; idempotent)
    be = await open_backend(url, handshake=False, **backend_kw)
    realtime = not url.startswith("twin:") or "mode=realtime" in url
    lines: list[Line] = []
    blocks = (("link", lambda: _link(be)), ("registers", lambda: _registers(be)),
              ("timestamp", lambda: _timestamp(be, clock_hz, rate_s, rate_tol, realtime)),
              ("headers", lambda: _headers(be, timeout)),
              ("schedule", lambda: _schedule(be, clock_hz, timeout)))
    try:
        for name, fn in blocks:
            try:
                line = await fn()
            except Exception as exc:  # one failing block must not hide the others
                line = Line(name, "FAIL", f"{type(exc).__name__}: {exc}")
            lines.append(line)
            if on_line:
                on_line(line)
            if name == "link" and line.status == "FAIL":
                break
    finally:
        await be.close()
    return lines
