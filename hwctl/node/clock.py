"""Node time and the device clock (docs/physical-layer.md section 1): :class:`DeviceClock`, the one
host-time <-> device-tick conversion, and the node's timed waits (:mod:`hwctl.record` taps them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwctl import timebase
from hwctl.errors import DeviceError
from hwctl.node.limits import CLOCK_TOLERANCE_S
from hwctl.wire import CLOCK_HZ

if TYPE_CHECKING:
    from hwctl.transport import Backend

log = logging.getLogger("hwctl.node")


@dataclass(frozen=True, slots=True)
class DeviceClock:
    """The one host-time <-> device-tick conversion of a node: device cycle ``c0`` is node time
    ``t0`` (fixed by a TIME read at start, midpoint of its round trip), ``hz`` cycles per second."""

    c0: int = 0
    t0: float = 0.0
    hz: float = float(CLOCK_HZ)

    def cycle_at(self, t: float) -> int:
        return self.c0 + round((t - self.t0) * self.hz)

    def time_at(self, cycle: int) -> float:
        return self.t0 + (cycle - self.c0) / self.hz


async def _wait_event(ev: asyncio.Event, delay: float) -> None:
    """Wait for ``ev`` at most ``delay`` seconds. Uses ``asyncio.timeout``: Python 3.11's
    ``wait_for`` can swallow a cancellation that races with the event (the task then never ends)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay):
            await ev.wait()


class DeviceTime:
    """The node's view of time and of its device's clock (:class:`NodeService`'s part)."""

    def now(self) -> float:
        """Node time: seconds since the shared epoch (:mod:`hwctl.timebase`)."""
        return timebase.seconds()

    def device_cycle_at(self, t: float) -> int:
        """Device cycle at node time ``t`` (see :class:`DeviceClock`)."""
        return self.clock.cycle_at(t)

    def device_now(self) -> int:
        """Device ticks now, never before a HEADER timestamp already seen (the verification core's
        ``now``; the TIME map is only good to about half a command round trip)."""
        return max(self.clock.cycle_at(self.now()), self._max_ts)

    async def _sleep(self, delay: float) -> None:
        """Every timed wait of the node goes through this and :meth:`_wait` (with :meth:`now`, the
        node's only view of time: :mod:`hwctl.record` taps them to record and replay a session)."""
        await asyncio.sleep(delay)

    async def _wait(self, ev: asyncio.Event, delay: float) -> None:
        """Wait for ``ev`` at most ``delay`` seconds (see :meth:`_sleep`)."""
        await _wait_event(ev, delay)

    def _call_later(self, delay: float, fn: Callable[[], None]) -> asyncio.TimerHandle | None:
        """Run ``fn`` in ``delay`` seconds (a timer callback outside the node's tasks; see
        :meth:`_sleep`: :mod:`hwctl.record` records where it ran and runs it there in a replay)."""
        return asyncio.get_running_loop().call_later(delay, fn)

    async def _open_backend(self, url: str) -> Backend:
        """Open the device link by URL (a reconnect, :mod:`hwctl.recovery`; :mod:`hwctl.record`
        taps it to record the new link too)."""
        from hwctl.transport import open_backend

        return await open_backend(url)

    async def _sync_clock(self) -> None:
        """Put the device on the shared reference (docs/physical-layer.md section 1)."""
        b = self.backend
        assert b is not None
        hz = float(b.clock_hz)
        t0 = self.now()
        c = await b.time()
        t1 = self.now()
        mid = (t0 + t1) / 2
        if abs(c / hz - mid) <= max(CLOCK_TOLERANCE_S, t1 - t0):
            self.clock, self.clock_sync = DeviceClock(0, 0.0, hz), "shared"
            return
        try:
            await b.time_set(round(self.now() * hz), 0)
            self.clock, self.clock_sync = DeviceClock(0, 0.0, hz), "time_set"
        except DeviceError:  # a v2 device: map its counter instead
            self.clock, self.clock_sync = DeviceClock(c, mid, hz), "mapped"
        log.info("%s: device clock %s", self.cfg.name, self.clock_sync)

