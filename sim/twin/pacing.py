"""Time modes for driving a :class:`~hwctl.sim.twin.model.TwinModel` from an I/O loop.

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

from hwctl.sim.twin.model import TwinModel
from hwctl.wire import CLOCK_HZ

#: Longest a loop blocks with nothing to do (keeps stop requests responsive).
MAX_WAIT = 0.05
#: While the UART streams, device output is handed to the host at most once per this many
#: seconds (see :class:`LatencyTimer`).
QUANTUM = 1e-3
#: Device bytes a served twin holds for a host that does not read (beyond the pty's own buffer);
#: more is an overrun (see :class:`UartBacklog`).
BACKLOG_MAX = 1 << 16


#: ``prctl`` option that sets the calling thread's timer slack (linux/prctl.h)
_PR_SET_TIMERSLACK = 29


def precise_timers() -> bool:
    """Give the calling thread a timer slack of 1 ns (Linux; elsewhere a no-op returning False).

    Linux lets a timed wait of an ordinary thread end up to its timer slack late (default 50 us:
    ``select``/``poll``/``epoll_wait`` take max(50 us, timeout/1000) as the range the kernel may
    coalesce the wake-up into, and an otherwise idle CPU wakes at the end of that range). A
    real-time server sleeps until its model's next deadline (a station's verdict, a frame
    leaving the UART) and every such wake was 50 us late, a fixed delay on every device event's
    way to the host (the lab's DONE passes two or three such wakes; benchmarks/RESULTS.md,
    issue 13). 1 ns, not 0: 0 means "the process default" to the kernel."""
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no libc prctl (an unusual libc): keep the default
        return False


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


class LatencyTimer:
    """Coalesce device output while the line streams, like a USB-serial adapter's latency timer.

    A paced loop that woke at every frame the UART finishes (one HEADER frame is 67 us at
    3 Mbaud) spent its time in select/write system calls and woke the host's reader as often,
    while the modelled line rate never needs that (profile in benchmarks/RESULTS.md, "pty link").
    After a write the loop sleeps at least ``quantum`` seconds (input still wakes it at once), so
    a stream goes out in one write per ``quantum``; the first output after a quiet spell (a
    command's response) is written at its deadline. Pacing stays honest: nothing is written
    before the model's UART has sent it (the model's clock follows the wall clock), so the bytes
    handed over by wall time t never exceed the line rate times t.
    """

    def __init__(self, quantum: float = QUANTUM) -> None:
        self.quantum = quantum
        self._last = -1e18

    def wait(self, until_deadline: float, now: float) -> float:
        """How long to block, given the pacer's timeout ``until_deadline`` at time ``now``."""
        hold = self._last + self.quantum - now
        return max(until_deadline, hold) if hold > 0 else until_deadline

    def wrote(self, now: float) -> None:
        self._last = now


class UartBacklog:
    """Device bytes the line has sent that the pty has not taken yet (the host is not reading).

    A pty blocks the writer when its buffer is full, but a UART does not wait for the host: a host
    that stops reading loses bytes (receiver overrun). In real time, past ``limit`` bytes held
    here further device output is dropped, whole frames at a time (``push`` gets whole frames from
    ``TwinModel.read``): the frames of a pushed chunk that still fit are kept, the rest are
    dropped and counted in ``overrun_bytes`` / ``overrun_frames``; the host sees the gap in the
    event sequence and counts the events as lost. In virtual time nothing is dropped
    (``overrun=False``): the driver stops advancing the model instead (:meth:`full`), since
    virtual time may wait for the host.
    """

    def __init__(self, limit: int = BACKLOG_MAX) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.overrun_bytes = 0
        self.overrun_frames = 0

    def push(self, out: bytes, *, overrun: bool = True) -> None:
        if not out:
            return
        if overrun and len(self.buf) + len(out) > self.limit:
            room = self.limit - len(self.buf)
            keep = out.rfind(0, 0, room) + 1 if room > 0 else 0  # the whole frames that fit
            if keep:
                self.buf += out[:keep]
            self.overrun_bytes += len(out) - keep
            self.overrun_frames += out.count(0, keep)  # one delimiter per frame
        else:
            self.buf += out

    def full(self) -> bool:
        return len(self.buf) >= self.limit

    def __len__(self) -> int:
        return len(self.buf)

    def sent(self, n: int) -> None:
        del self.buf[:n]
