"""Where one end of a request joins the request's attempt grid (docs/physical-layer.md section 5,
"Late join"). Sans-IO: times and cycles are passed in; no clock, socket or task here.

The two ends of a request fire on one grid of device cycles, ``origin + k*period`` (``origin`` =
the cycle of the start the initiator chose, the same at both ends: one device clock). The
heralding station heralds only attempts that *both* ends fired (its window needs both markers),
so an end need not start at ``origin``: it may join the grid at any later grid point and the two
ends still record the same pairs at the same cycles. An end that joins late costs time (the
other end's attempts before the join cannot herald), never a pair held at one end only.

So each end schedules its own join: the first grid point at least ``margin`` after now, where
``margin`` covers this end's host -> device command latency, measured on its own commands
(:meth:`JoinPlanner.note_rtt`: the SCHEDULE_PAIRS round trips). A LATE (the command reached the
device after the join cycle: nothing fired) is repaired at this end alone, by scheduling again at a
later grid point with twice the margin; the other end keeps running and never hears of it.
Compared with a lead agreed in advance (both ends start at ``origin`` = t_min + lead, a LATE at
either end restarts both), the request waits only for the slower end's actual command latency,
not for a worst case of recent load spikes, and a LATE costs one local command.

Attempt numbers are counted from ``origin`` (:meth:`JoinPlanner.attempt`), so both ends name each
pair alike whatever grid point each joined at.

A device with CONTROL.LATE_JOIN (wire spec ``[control_bits]``; the twin has it) does the join
itself: a SCHEDULE_PAIRS that reaches it after its ``t_start`` starts at the next grid point
instead of LATE. The host then schedules at ``origin`` with no margin at all (``device_joins``),
so the request waits only for the slower end's command to arrive, and no LATE can happen; a
device that answers LATE anyway (restarted, CONTROL back at reset) turns ``device_joins`` off
and the margin takes over.

The grid's phase is global: grid points are the multiples of ``period`` on the one device clock
(the physical layer's discrete time steps: MHP, ESP paper §II-D), and a request's origin is
the first of them at or after ``cycle_of(t_min)`` (:meth:`JoinPlanner.origin`). Both ends compute
it alike, and an end can fire on it before it knows ``t_min``: the remote, which holds the Lock
from its SYNACK on, sends its SCHEDULE_PAIRS then (:meth:`JoinPlanner.early_start`) instead of
one ESP hop later at ACK. Its attempts before the initiator joins cannot herald (the station
needs both ends' markers), and the initiator joins at the origin, after t_min, so no pair is
ever heralded before t_min. The paper's reason for t_min (§V-A: starting too early "leads to
unnecessary attempts that can ultimately impact the final fidelity") is met differently here:
the station's marker check makes a single end's attempt a failure, never a pair, and no qubit
of the request is stored before its first pair, which needs both ends after t_min. What the
early attempts cost is laser shots (and, on hardware whose attempts disturb stored memory
qubits, those of earlier requests still held: docs/node.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

#: command round trips remembered per end (the margin follows their maximum)
RTT_WINDOW = 16
#: margin = MARGIN_SAFETY x the largest recent round trip (the device executes a command before
#: its ACK leaves, so one round trip already over-covers the send -> execute latency)
MARGIN_SAFETY = 1.0
#: a LATE end's margin doubles per retry of the same request, up to this (s)
MAX_MARGIN_S = 1.0


@dataclass
class JoinPlanner:
    """One end's join policy: ``margin_s`` from measured command round trips, at least
    ``floor_s`` (config ``[physical] lead_s``), at most :data:`MAX_MARGIN_S`."""

    period: int
    floor_s: float
    hz: int
    window: int = RTT_WINDOW
    #: the device joins the grid itself (CONTROL.LATE_JOIN read back set): the host schedules
    #: at the origin and needs no margin; cleared by the host when a LATE shows it does not
    device_joins: bool = False
    _rtts: deque[float] = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        if self.period < 1 or self.hz < 1 or not self.floor_s >= 0:
            raise ValueError("need period >= 1, hz >= 1, floor_s >= 0")
        self._rtts = deque(maxlen=self.window)

    def note_rtt(self, rtt_s: float) -> None:
        """A SCHEDULE_PAIRS command's round trip (send -> ACK), seconds."""
        if rtt_s == rtt_s and rtt_s >= 0:  # not NaN
            self._rtts.append(rtt_s)

    def margin_s(self, retry: int = 0) -> float:
        """Margin between now and the join cycle for the ``retry``-th schedule of a request
        (0: first; each LATE doubles it)."""
        m = max(self.floor_s, MARGIN_SAFETY * max(self._rtts, default=0.0))
        return min(MAX_MARGIN_S, m * 2.0**retry)

    def join(self, origin: int, now: int, retry: int = 0) -> int:
        """The first grid point ``origin + k*period`` (k >= 0) at or after ``now + margin``;
        the origin itself when the device joins by itself (``device_joins``, first try)."""
        if self.device_joins and retry == 0:
            return origin
        lo = now + round(self.margin_s(retry) * self.hz)
        if lo <= origin:
            return origin
        return origin + -(-(lo - origin) // self.period) * self.period

    def origin(self, cycle: int) -> int:
        """The request's grid origin: the first global grid point (a multiple of ``period``) at
        or after ``cycle`` (= ``cycle_of(t_min)``)."""
        return -(-cycle // self.period) * self.period

    def early_start(self, now: int) -> int:
        """``t_start`` of the remote's SCHEDULE_PAIRS sent at its SYNACK, before ``t_min`` is
        known: the last global grid point at or before ``now``; a device with LATE_JOIN joins at
        the next one when the command arrives."""
        return now // self.period * self.period

    def attempt(self, origin: int, ts: int) -> int:
        """Attempt number of attempt cycle ``ts`` on the grid from ``origin`` (both ends agree)."""
        return (ts - origin) // self.period
