"""Time modes for driving a :class:`~hwctl.sim.twin.model.TwinModel` from an I/O loop.

- ``realtime``: device cycles follow the wall clock (``speed`` x CLOCK_HZ cycles per second).
- ``virtual``: as fast as possible. The clock moves only (a) by the UART time of received bytes and
  (b) by jumping to the model's next deadline once the host has been quiet for ``idle_grace``
  seconds. A host that answers every event within ``idle_grace`` sees the same cycle-level
  behaviour as in real time, and a run is reproducible for a fixed seed and command sequence.

The pacer is sans-IO too: the loop asks :meth:`Pacer.timeout` how long it may block waiting for
input, then calls :meth:`on_input` or :meth:`on_idle`, then sends ``model.read()``.

A real-time server that fell behind the wall clock catches up in slices (:class:`CatchUp`, one
implementation for every server: the pacer of ``hwctl twin --pty/--zmq`` and ``twin://``, and
:class:`hwctl.sim.twin.lab.LabServer`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import Generic, TypeVar

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
#: Most model time (s) one loop iteration of a real-time server advances its model (see
#: :class:`CatchUp`).
MAX_STEP_S = 0.005

K = TypeVar("K")


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


class CatchUp(Generic[K]):
    """How a real-time server that fell behind the wall clock catches up: in slices.

    A server behind real time (a loaded machine, a long step) advances its model at most
    ``max_step`` cycles (:data:`MAX_STEP_S` of model time) per loop iteration, hands each slice's
    device output to the host and reads the hosts in between (no waiting while :attr:`behind`),
    so the output flows at the line's pace instead of arriving as one chunk of up to seconds of
    line bytes, which the 64 KiB backlog (:class:`UartBacklog`) would drop as a receiver overrun
    although the hosts were reading (benchmarks/RESULTS.md, hdr_block seventh session). Host
    bytes are held (:meth:`hold`, with the wall-clock cycle they were read at) and fed at the
    first slice that reaches that cycle (:meth:`due`, in read order), as when the server is on
    time. A model with nothing to do before real time (no deadline: e.g. after an idle wait)
    takes one step. Sans-IO: cycles are passed in. ``K`` keys the held bytes (a lab's device
    name; None for a one-device twin)."""

    def __init__(self, max_step: int) -> None:
        self.max_step = max(1, max_step)
        #: the last :meth:`target` stopped short of real time: the loop must not wait
        self.behind = False
        #: the most cycles a :meth:`target` left the model behind real time (a server starved of
        #: CPU: its devices answered and stamped their events that much late)
        self.lag_max = 0
        self._held: list[tuple[int, K, bytes]] = []

    def target(self, now: int, wall: int, deadline: int | None,
               idle_until: int | None = None) -> int:
        """The cycle to advance a model at cycle ``now`` to, with real time at cycle ``wall`` and
        the model's next deadline ``deadline`` (None: only input wakes it): at most one slice
        ahead, never backwards; sets :attr:`behind`.

        ``idle_until``: the model's next internal event of any kind (not only a server wake-up
        such as ``deadline``), when the caller knows it. The model does nothing before it, so
        the slice starts there (no later than the first held host bytes): a server that slept
        longer than a slice up to its next deadline (a lab between two pairs) then reaches it
        in one step instead of first moving an idle model by a slice and taking one more loop
        iteration (a select, the reads) before the deadline's work, such as the station's
        verdict whose PAIR and DONE the hosts wait for (benchmarks/RESULTS.md, tenth
        session)."""
        start = now
        if idle_until is not None and idle_until > now:
            start = min(idle_until, wall)
            if self._held:
                start = max(now, min(start, self._held[0][0]))
        t = max(now, min(wall, start + self.max_step))
        if t < wall and (deadline is None or deadline > wall):
            t = wall  # no output before real time: one step, no slices
        self.behind = t < wall
        if self.behind:
            self.lag_max = max(self.lag_max, wall - t)
        return t

    def hold(self, cycle: int, key: K, data: bytes) -> None:
        """Host bytes for ``key`` read at wall-clock cycle ``cycle``."""
        self._held.append((cycle, key, data))

    def due(self, now: int) -> list[tuple[K, bytes]]:
        """The held bytes a model at cycle ``now`` has reached: the prefix (read order) read at
        or before ``now``, whatever the clock did since."""
        n = 0
        while n < len(self._held) and self._held[n][0] <= now:
            n += 1
        out = [(k, d) for _, k, d in self._held[:n]]
        del self._held[:n]
        return out

    def __len__(self) -> int:
        return len(self._held)


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock``: the wall clock real time follows (seconds; tests pass a fake one)."""
        self.model = model
        self.mode = TimeMode(mode)
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.rate = clock_hz * speed  # cycles per wall second (realtime)
        self.idle_grace = idle_grace
        self.clock = clock
        #: real time: a model behind the wall clock catches up in slices of MAX_STEP_S
        self.catchup: CatchUp[None] = CatchUp(round(MAX_STEP_S * clock_hz))
        self._t0 = clock()
        self._c0 = model.now

    def restart(self, t0: float | None = None) -> None:
        """Re-anchor: cycle ``model.now`` is wall time ``t0`` (default: now). Twins that share a
        ``t0`` (and start at cycle 0) share a time base: cycle c is the same instant on all."""
        self._t0 = self.clock() if t0 is None else t0
        self._c0 = self.model.now

    def wall_cycle(self) -> int:
        return self._c0 + int((self.clock() - self._t0) * self.rate)

    def timeout(self) -> float:
        d = self.model.next_deadline()
        if self.mode is TimeMode.VIRTUAL:
            return MAX_WAIT if d is None else self.idle_grace
        if self.catchup.behind:
            return 0.0  # catching up: the next slice at once
        if d is None:
            return MAX_WAIT
        return min(MAX_WAIT, max(0.0, (d - self.wall_cycle()) / self.rate))

    def on_input(self, data: bytes) -> None:
        m = self.model
        if self.mode is TimeMode.REALTIME:
            wall = self.wall_cycle()
            self.catchup.hold(wall, None, data)  # fed when the model reaches the cycle read at
            self._catch_up(wall)
        else:
            m.feed(data)
            m.advance(len(data) * m.cfg.uart_cycles_per_byte)

    def on_idle(self) -> None:
        m = self.model
        if self.mode is TimeMode.REALTIME:
            self._catch_up(self.wall_cycle())
        else:
            d = m.next_deadline()
            if d is not None:
                m.advance_to(d)

    def _catch_up(self, wall: int) -> None:
        """Real time: one slice towards cycle ``wall`` (:class:`CatchUp`), then the host bytes
        read by the cycle reached."""
        m = self.model
        m.advance_to(self.catchup.target(m.now, wall, m.next_deadline()))
        for _, data in self.catchup.due(m.now):
            m.feed(data)


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
