"""Small reference model of the scheduler, herald and header decoder, for RTL scoreboards.

It follows the semantics of spec.toml (and of the software twin, sim/twin/model.py, which should
become the golden model) in the RTL's own time base: every time is a 64-bit timestamp value.
The only RTL-specific numbers are pipeline latencies, named here once:

- ``SCHED_CHECK_LAT``: an entry popped when the scheduler goes idle is checked (LATE or wait)
  this many cycles after the cycle the previous entry ended (or after the push cycle when the
  scheduler was idle). The twin checks at the end cycle itself (latency 0).
- ``EVAL_LAT``: an entry ends this many cycles after its last window closes (twin: 0).
- Clicks are in synchronized-timestamp terms (the testbench drives the pin earlier by the
  synchronizer latency).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwctl.wire import DoneReason

SCHED_CHECK_LAT = 8
#: The RTL decides an attempt EVAL_LAT cycles after its window's end (herald record pipeline);
#: the entry ends (and the next pop starts) at that cycle. Event timestamps are not affected.
EVAL_LAT = 1
U64 = (1 << 64) - 1


@dataclass(frozen=True)
class Entry:
    t_start: int
    count: int
    period: int
    window: int

    def t(self, k: int) -> int:
        return self.t_start + k * self.period


@dataclass
class SchedResult:
    """Expected events (as (kind, fields...) tuples), fire times, end time and counters."""

    events: list[tuple] = field(default_factory=list)
    fires: list[int] = field(default_factory=list)
    end: int = 0
    both: int = 0
    late: int = 0
    heralds: int = 0


def run_schedules(
    entries: list[Entry], clicks: list[tuple[int, int]], t_idle: int, herald_en: bool = True
) -> SchedResult:
    """Run ``entries`` back to back; the scheduler is idle with all of them queued at ``t_idle``.

    ``clicks``: (synchronized timestamp, detector). Single-click rule per attempt window
    [t_k, t_k + window): exactly one detector -> HERALD(first click of it, det, k), ends the entry at
    t_k + window; both -> counted, next attempt; after ``count`` attempts DONE(EXHAUSTED) at
    t_last + window.
    """
    res = SchedResult()
    end = t_idle
    for e in entries:
        check = end + SCHED_CHECK_LAT
        if e.t_start < check:
            res.events.append(("LATE", e.t_start, check))
            res.late += 1
            end = check
            continue
        done = False
        for k in range(e.count):
            tk = e.t(k)
            res.fires.append(tk)
            first: dict[int, int] = {}
            if herald_en:
                for ts, det in sorted(clicks):
                    if tk <= ts < tk + e.window and det not in first:
                        first[det] = ts
            if len(first) == 1:
                (det, ts), = first.items()
                res.events.append(("HERALD", ts, det, k))
                res.heralds += 1
                end = tk + e.window + EVAL_LAT
                done = True
                break
            if len(first) == 2:
                res.both += 1
        if not done:
            end = e.t(e.count - 1) + e.window
            res.events.append(("DONE", end, e.count, int(DoneReason.EXHAUSTED)))
            end += EVAL_LAT
    res.end = end
    return res


class SlotPool:
    """Header decoder memory slots: lowest free slot first; FREE of an unallocated slot fails."""

    def __init__(self, n: int) -> None:
        self.used = [False] * n

    def alloc(self) -> int | None:
        for i, u in enumerate(self.used):
            if not u:
                self.used[i] = True
                return i
        return None

    def free(self, slot: int) -> bool:
        if 0 <= slot < len(self.used) and self.used[slot]:
            self.used[slot] = False
            return True
        return False

    @property
    def n_free(self) -> int:
        return self.used.count(False)

#: Cycles from a detector pin rising to the synchronized edge the herald logic timestamps.
DET_LAT = 2

#: Cycles from a pin change on hdr_i to the header decoder seeing it (2-FF synchronizer).
HDR_LAT = 2
