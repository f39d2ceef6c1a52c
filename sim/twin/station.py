"""Sans-IO model of the heralding station (docs/physical-layer.md section 2).

The station sits at the midpoint of a link. It sees the attempt markers of both ends (one per
fired attempt, ``delay`` cycles of fibre after the end fired it), has two detectors and a
detection window, and sends each herald to both ends on its herald lines. It never reads a clock:
a driver (the lab, :mod:`hwctl.sim.twin.lab`, or a test bench) tells it the ends' fire programs, moves
its time with :meth:`advance_to` and collects the herald frames with :meth:`read`.

Cycle-level semantics (what an RTL station is scored against; docs/twin.md "Station"):

- All times are cycles of the one device clock. An end's program is an arithmetic progression:
  attempt k fired at ``t_k = t_start + k*period`` for k < count, and never after the cycle its
  schedule stopped (``stop(end, cycle)``: attempts with ``t_k <= cycle`` were fired). The marker of
  attempt t reaches the station at ``t + delay``.
- A window opens at the first marker seen while none is open, at station cycle ``o``, and covers
  ``[o, o + window)``. Both ends' markers in it (``|t_A - t_B| < window``, the two programs having
  the same period) make a **common** window with attempt cycle ``t = o - delay`` (the earlier of
  the two). Its outcome is decided at ``o + window = t + delay + window``.
- Outcome of a common window (physics from :func:`hwctl.physics.heralding.outcome_probs`):
  exactly one detector -> herald (attempt cycle t, Bell state = the detector), CNT_HERALD += 1;
  both detectors -> CNT_BOTH += 1; none -> failure. A window with one end's marker only never
  heralds: CNT_ONE_END += 1. CNT_MARKS counts every marker.
- Herald lines: one per end (line 0 to end A, line 1 to end B). A herald decided at cycle d
  starts on each line at ``max(d, line free)``; the frame (marker, t u64, bell, CRC-8: 11 bytes of
  10 bits at ``bit_cycles`` per bit = 440 cycles) ends ``frame_cycles`` later and reaches the end
  ``delay`` after that: with an idle line, at ``t + 2*delay + window + frame_cycles``. At most
  ``queue_depth`` frames wait for a busy line; a herald that finds the queue full is dropped on
  that line. CNT_HL_DROP counts dropped heralds, once however many lines dropped it (the RTL's
  station_top: both lines get the same heralds at the same cycles, so they drop together).

Speed: the model never walks attempts one by one. Common windows form arithmetic progressions
(computed from the two programs), and the number of failed common windows before the next
single-click one is drawn from the geometric distribution, so a herald costs O(segments) however
many attempts it took. The draws depend only on the seed and on the sequence of common windows,
never on how the caller slices time. CNT_BOTH is drawn (binomially) among the failures when
counts are committed (at each herald and on a register read).

Test benches can instead inject detector clicks (:meth:`inject_click`, with
``p_photon = dark_prob = 0``): a click at station cycle c belongs to the window open at c (the
latest marker m with ``c - (m + delay) < window``); with no window open it is a dark click
(CNT_DARK). Random dark clicks outside windows are not modelled (they never herald).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from hwctl.physics.heralding import outcome_probs
from hwctl.wire import CLOCK_HZ, HERALD_BIT_CYCLES, Reg

#: bytes of one herald frame on a herald line: marker, t (8), bell, CRC-8
HERALD_FRAME_BYTES = 11
INF = 1 << 80


@dataclass(frozen=True, slots=True)
class StationConfig:
    """Parameters of one station (the registers' reset values and the physics)."""

    #: probability per common window that a heralding photon is detected (~ 2*alpha*eta)
    p_photon: float = 1e-3
    #: dark-click probability per detector per window
    dark_prob: float = 0.0
    #: ST_DELAY: cycles of fibre from an end to the station (the station sits at the midpoint)
    delay: int = 1000
    #: ST_WINDOW: detection window in cycles (2 = 20 ns)
    window: int = 2
    #: herald line bit period in cycles (spec [herald] bit_cycles)
    bit_cycles: int = HERALD_BIT_CYCLES
    #: frames that may wait for a busy herald line
    queue_depth: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        outcome_probs(self.p_photon, self.dark_prob)  # validates the range
        if self.delay < 0 or self.window < 1 or self.bit_cycles < 1 or self.queue_depth < 0:
            raise ValueError("need delay >= 0, window >= 1, bit_cycles >= 1, queue_depth >= 0")

    @property
    def frame_cycles(self) -> int:
        return HERALD_FRAME_BYTES * 10 * self.bit_cycles

    @classmethod
    def for_link(cls, length_m: float, *, p_photon: float, dark_prob: float = 0.0,
                 clock_hz: int = CLOCK_HZ, **kw) -> StationConfig:
        """A station at the midpoint of a link of ``length_m`` metres of fibre."""
        from hwctl.physics import fibre

        return cls(p_photon=p_photon, dark_prob=dark_prob,
                   delay=round(fibre.delay(length_m / 2) * clock_hz), **kw)


@dataclass(frozen=True, slots=True)
class HeraldOut:
    """A herald frame that reaches end ``line`` (0: A, 1: B) at cycle ``arrive`` (its last stop
    bit), for attempt cycle ``t`` with Bell state ``bell``."""

    line: int
    arrive: int
    t: int
    bell: int


@dataclass(slots=True)
class _Seg:
    t_start: int
    period: int
    count: int
    stop: int | None = None  # attempts with t_k <= stop were fired; None: still running

    @property
    def last(self) -> int:
        """Attempt cycle of the last attempt fired (or planned)."""
        n = self.count
        if self.stop is not None:
            if self.stop < self.t_start:
                return self.t_start - self.period  # nothing fired
            n = min(n, (self.stop - self.t_start) // self.period + 1)
        return self.t_start + (n - 1) * self.period

    def n_in(self, lo: int, hi: int) -> int:
        """Attempts with lo <= t_k < hi."""
        return _ap_count(self.t_start, self.period, self.last, lo, hi)


def _ap_count(t0: int, p: int, last: int, lo: int, hi: int) -> int:
    """Members t0 + j*p <= last of the progression with lo <= t < hi."""
    hi = min(hi, last + 1)
    if hi <= lo or last < t0:
        return 0
    a = max(0, -((t0 - lo) // p)) if lo > t0 else 0  # first index >= lo
    b = -((t0 - hi) // p) if hi > t0 else 0  # first index >= hi
    return max(0, b - a)


def _ap_nth(t0: int, p: int, last: int, lo: int, n: int) -> int | None:
    """The n-th (0-based) member >= lo of the progression, or None past ``last``."""
    a = max(0, -((t0 - lo) // p)) if lo > t0 else 0
    t = t0 + (a + n) * p
    return t if t <= last else None


class StationModel:
    """Deterministic model of one heralding station (see the module docstring)."""

    def __init__(self, cfg: StationConfig | None = None, *, now: int = 0) -> None:
        self.cfg = cfg or StationConfig()
        self.now = now
        self._rng = np.random.default_rng(np.random.SeedSequence([self.cfg.seed, 0x5A]))
        none, only0, only1, both = outcome_probs(self.cfg.p_photon, self.cfg.dark_prob)
        self._p_single = only0 + only1
        self._p_det0 = only0 / self._p_single if self._p_single > 0 else 0.5
        self._q_both = both / (1 - self._p_single) if self._p_single < 1 else 0.0
        self.delay = self.cfg.delay
        self.window = self.cfg.window
        self._segs: list[list[_Seg]] = [[], []]
        self._decided = now  # attempt cycles < decided are committed
        self._skip = self._draw_skip()
        self._clicks: list[tuple[int, int]] = []  # (fire-domain cycle, detector), sorted
        self._next: tuple[int, int, int | None] | None = None  # (decision, t, bell|None=clicks)
        self._dirty = True
        self._line_busy = [0, 0]  # cycle each line's last queued frame ends
        self._line_starts: list[list[int]] = [[], []]  # start cycles of frames not yet started
        self._out: list[HeraldOut] = []
        self.regs: dict[Reg, int] = dict.fromkeys(
            (Reg.CNT_HERALD, Reg.CNT_BOTH, Reg.CNT_ONE_END, Reg.CNT_DARK, Reg.CNT_MARKS,
             Reg.CNT_HL_DROP), 0)
        #: every herald decided: (decision cycle, attempt cycle, bell)
        self.heralds: list[tuple[int, int, int]] = []

    # ------------------------------------------------------------------ inputs
    def mark(self, end: int, t_start: int, period: int, count: int) -> None:
        """End ``end`` (0: A, 1: B) fires attempts at ``t_start + k*period``, k < count, until a
        :meth:`stop`. Must be told before its first marker reaches the station."""
        if period < 1 or count < 1:
            raise ValueError("period and count must be >= 1")
        segs = self._segs[end]
        if segs and segs[-1].stop is None:
            raise ValueError(f"end {end} already has a running program")
        segs.append(_Seg(t_start, period, count))
        self._dirty = True

    def stop(self, end: int, cycle: int) -> None:
        """End ``end``'s running program fired nothing after ``cycle``."""
        segs = self._segs[end]
        if segs and segs[-1].stop is None:
            segs[-1].stop = cycle
            self._dirty = True

    def inject_click(self, cycle: int, detector: int) -> None:
        """A detector click at station cycle ``cycle`` (test benches)."""
        if detector not in (0, 1):
            raise ValueError("detector must be 0 or 1")
        bisect.insort(self._clicks, (cycle - self.delay, detector))
        self._dirty = True

    # ------------------------------------------------------------------ time
    def next_deadline(self) -> int | None:
        """Next cycle at which a window with a possible herald is decided (None: none)."""
        if self._dirty:
            self._next = self._find_next()
            self._dirty = False
        return None if self._next is None else self._next[0]

    def advance_to(self, cycle: int) -> None:
        if cycle < self.now:
            raise ValueError(f"time runs forward only: now={self.now}, asked {cycle}")
        while True:
            d = self.next_deadline()
            if d is None or d > cycle:
                break
            self.now = max(self.now, d)
            self._decide()
        self.now = cycle

    def read(self) -> list[HeraldOut]:
        """Herald frames decided since the last call (each with its arrival cycle at its end)."""
        out, self._out = self._out, []
        return out

    def reg(self, addr: Reg) -> int:
        """Station register at ``now`` (counters committed up to the windows closed by now)."""
        if addr == Reg.ST_DELAY:
            return self.delay
        if addr == Reg.ST_WINDOW:
            return self.window
        self._commit(max(self._decided, self.now - self.delay - self.window + 1))
        return self.regs[addr] & 0xFFFF_FFFF

    # ------------------------------------------------------------------ internals
    def _draw_skip(self) -> int:
        """Failed common windows before the next single-click one (geometric)."""
        p = self._p_single
        if p <= 0:
            return INF
        if p >= 1:
            return 0
        u = 1.0 - self._rng.random()
        return int(math.log(u) / math.log1p(-p))

    def _common(self, lo: int) -> list[tuple[int, int, int]]:
        """Common windows with attempt cycle >= lo, as progressions (t0, period, last)."""
        W = self.window
        out = []
        for a in self._segs[0]:
            la = a.last
            if la < lo:
                continue
            for b in self._segs[1]:
                lb = b.last
                if lb < lo or a.period != b.period:
                    continue
                p = a.period
                r = (b.t_start - a.t_start) % p
                if r < W:  # B's marker r cycles after A's: window at A's attempt
                    g, s_lo, s_hi = a.t_start, max(a.t_start, b.t_start - r), min(la, lb - r)
                elif p - r < W:  # A's marker p-r after B's: window at B's attempt
                    q = p - r
                    g, s_lo, s_hi = b.t_start, max(b.t_start, a.t_start - q), min(lb, la - q)
                else:
                    continue
                s_lo = max(s_lo, lo)
                first = _ap_nth(g, p, s_hi, s_lo, 0)
                if first is not None:
                    out.append((first, p, s_hi))
        out.sort()
        return out

    def _nth_common(self, lo: int, n: int) -> int | None:
        for t0, p, last in self._common(lo):
            m = _ap_count(t0, p, last, t0, last + 1)
            if n < m:
                return t0 + n * p
            n -= m
        return None

    def _count_common(self, lo: int, hi: int) -> int:
        return sum(_ap_count(t0, p, last, lo, hi) for t0, p, last in self._common(lo))

    def _window_of_click(self, c: int) -> tuple[int, bool] | None:
        """(window attempt cycle, common?) of a click at fire-domain cycle c, None: dark."""
        W = self.window
        marks = []
        for segs in self._segs:
            for s in segs:
                if s.t_start <= c:
                    k = (min(c, s.last) - s.t_start) // s.period
                    m = s.t_start + k * s.period
                    if m <= s.last and c - m < W:
                        marks.append(m)
        if not marks:
            return None
        t = min(marks)
        return t, len(marks) == 2 and max(marks) - t < W

    def _find_next(self) -> tuple[int, int, int | None] | None:
        lo = self._decided
        cand = None
        if self._skip < INF:
            t = self._nth_common(lo, self._skip)
            if t is not None:
                cand = (t + self.delay + self.window, t, 0)
        while self._clicks and self._clicks[0][0] < lo:
            self._clicks.pop(0)  # in windows already decided
        if self._clicks:
            w = self._window_of_click(self._clicks[0][0])
            t = self._clicks[0][0] if w is None else w[0]
            if t < lo:
                t = lo
            d = t + self.delay + self.window
            if cand is None or d < cand[0]:
                cand = (d, t, None)
        return cand

    def _commit(self, hi: int) -> None:
        """Count markers and windows with attempt cycle in [decided, hi) (all failures)."""
        lo = self._decided
        if hi <= lo:
            return
        marks = sum(s.n_in(lo, hi) for segs in self._segs for s in segs)
        common = self._count_common(lo, hi)
        self.regs[Reg.CNT_MARKS] += marks
        self.regs[Reg.CNT_ONE_END] += marks - 2 * common
        if common and self._q_both > 0:
            self.regs[Reg.CNT_BOTH] += int(self._rng.binomial(common, self._q_both))
        if self._skip < INF:
            self._skip -= common
        self._decided = hi
        self._prune()
        self._dirty = True

    def _prune(self) -> None:
        for segs in self._segs:
            while len(segs) > 1 and segs[0].last < self._decided:
                segs.pop(0)

    def _decide(self) -> None:
        nxt = self._next
        assert nxt is not None
        d, t, bell = nxt
        if bell is not None:  # physics: the skip-th common window from `decided` is single
            self._commit(t)
            # the window holds both ends' markers (t and t + r, r < window <= period)
            marks = sum(s.n_in(t, t + self.window) for segs in self._segs for s in segs)
            self.regs[Reg.CNT_MARKS] += marks
            self._decided = t + self.window
            self._skip = self._draw_skip()
            self._herald(d, t, int(self._rng.random() >= self._p_det0))
        else:  # injected clicks: the window of the first one
            c0 = self._clicks[0][0]
            w = self._window_of_click(c0)
            if w is None:  # dark click
                self._clicks.pop(0)
                self.regs[Reg.CNT_DARK] += 1
                self._dirty = True
                return
            t, common = w
            self._commit(t)
            dets = set()
            while self._clicks and self._clicks[0][0] < t + self.window:
                dets.add(self._clicks.pop(0)[1])
            marks = sum(s.n_in(t, t + self.window) for segs in self._segs for s in segs)
            self.regs[Reg.CNT_MARKS] += marks
            self._decided = t + self.window
            if not common:
                self.regs[Reg.CNT_ONE_END] += marks
            elif len(dets) == 2:
                self.regs[Reg.CNT_BOTH] += 1
            else:
                self._herald(d, t, dets.pop())
        self._prune()
        self._dirty = True

    def _herald(self, d: int, t: int, bell: int) -> None:
        self.regs[Reg.CNT_HERALD] += 1
        self.heralds.append((d, t, bell))
        fc = self.cfg.frame_cycles
        dropped = False
        for line in (0, 1):
            starts = [s for s in self._line_starts[line] if s > d]
            if len(starts) >= self.cfg.queue_depth and self._line_busy[line] > d:
                dropped = True
                self._line_starts[line] = starts
                continue
            start = max(d, self._line_busy[line])
            self._line_busy[line] = start + fc
            self._line_starts[line] = [*starts, start] if start > d else starts
            self._out.append(HeraldOut(line, start + fc + self.delay, t, bell))
        if dropped:
            self.regs[Reg.CNT_HL_DROP] += 1
