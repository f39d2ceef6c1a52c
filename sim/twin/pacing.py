"""Time modes for driving a :class:`~sim.twin.model.TwinModel` from an I/O loop.

- ``realtime``: device cycles follow the wall clock (``speed`` x CLOCK_HZ cycles per second).
- ``virtual``: as fast as possible. The clock moves only (a) by the UART time of received bytes and
  (b) by jumping to the model's next deadline once the host has been quiet for ``idle_grace``
  seconds. A host that answers every event within ``idle_grace`` sees the same cycle-level
  behaviour as in real time, and a run is reproducible for a fixed seed and command sequence.

The pacer is sans-IO too: the loop asks :meth:`Pacer.timeout` how long it may block waiting for
input, then calls :meth:`on_input` or :meth:`on_idle`, then sends ``model.read()``.
"""

from __future__ import annotations

import time
from enum import StrEnum

from hwctl.wire import CLOCK_HZ
from sim.twin.model import TwinModel

#: Longest a loop blocks with nothing to do (keeps stop requests responsive).
MAX_WAIT = 0.05


class TimeMode(StrEnum):
    REALTIME = "realtime"
    VIRTUAL = "virtual"


class Pacer:
    def __init__(
        self,
        model: TwinModel,
        mode: TimeMode | str = TimeMode.REALTIME,
        *,
        speed: float = 1.0,
        idle_grace: float = 2e-4,
        clock_hz: int = CLOCK_HZ,
    ) -> None:
        self.model = model
        self.mode = TimeMode(mode)
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.rate = clock_hz * speed  # cycles per wall second (realtime)
        self.idle_grace = idle_grace
        self._t0 = time.monotonic()
        self._c0 = model.now

    def restart(self, t0: float | None = None) -> None:
        """Re-anchor: cycle ``model.now`` is wall time ``t0`` (default: now). Twins that share a
        ``t0`` (and start at cycle 0) share a time base: cycle c is the same instant on all."""
        self._t0 = time.monotonic() if t0 is None else t0
        self._c0 = self.model.now

    def wall_cycle(self) -> int:
        return self._c0 + int((time.monotonic() - self._t0) * self.rate)

    def timeout(self) -> float:
        d = self.model.next_deadline()
        if self.mode is TimeMode.VIRTUAL:
            return MAX_WAIT if d is None else self.idle_grace
        if d is None:
            return MAX_WAIT
        return min(MAX_WAIT, max(0.0, (d - self.wall_cycle()) / self.rate))

    def on_input(self, data: bytes) -> None:
        m = self.model
        if self.mode is TimeMode.REALTIME:
            m.advance_to(max(m.now, self.wall_cycle()))
            m.feed(data)
        else:
            m.feed(data)
            m.advance(len(data) * m.cfg.uart_cycles_per_byte)

    def on_idle(self) -> None:
        m = self.model
        if self.mode is TimeMode.REALTIME:
            m.advance_to(max(m.now, self.wall_cycle()))
        else:
            d = m.next_deadline()
            if d is not None:
                m.advance_to(d)
