"""Where a request's time goes inside the node service (issue 13: "the remaining overhead broken
down"). Diagnostic only: nothing here decides anything, and results never depend on it.

The simulator (hwctl.sim.network) spends a request's time in four parts: waiting for the ESP Lock
(submit -> the SYN that got SYNACK), the handshake (SYN -> ACK: two control messages of ~10 us),
``t_min - ACK`` (one more: the remote enters READY) and the generation (its attempts). The node
service pays the same parts plus the host's own latencies, which this module measures per node,
one sample per request and end, on the shared reference clock (:mod:`hwctl.timebase`, the one all
processes and devices of a network count, so samples taken in different processes compare; the
node passes its own clock, :meth:`NodeService.now`, so ``hwctl replay`` reproduces them too):

====================  ==========================================================================
``syn_rtt``           initiator: its SYN sent -> the SYNACK handled (two ESP hops over ZeroMQ)
``ack_flight``        remote: the initiator sent ACK (``t_min - d``) -> ACK handled here (one hop)
``to_cmd``            StartAttempts -> SCHEDULE_PAIRS handed to the device link (task hops here)
``cmd_rtt``           SCHEDULE_PAIRS handed to the link -> its ACK back (host <-> device round trip)
``cmd_to_device``     SCHEDULE_PAIRS handed to the link -> the device joined the attempt grid
                      (host -> device: link, device's UART; from the device's own DONE, below)
``join_after_tmin``   t_min -> this end's device joined the grid (what the request waits for)
``done_to_host``      the device emitted DONE (its timestamp) -> the node's event pump has it
                      (device -> host: UART, link, reader; the event loop's share included)
``done_to_core``      the event pump has DONE -> ESP's ``attempts_finished`` (node task hops)
====================  ==========================================================================

and, stamped by the device link itself (wall clock, so ``hwctl replay``, which has no link, does
not reproduce them: they are reported under the snapshot's ``link``, which replay leaves out):

====================  ==========================================================================
``action_to_frame``   StartAttempts -> the SCHEDULE_PAIRS frame handed to the link (the node's
                      task hops, the backend's one-command-at-a-time lock, encoding, the write)
``device_to_link``    the device emitted DONE -> its bytes reached the node's event loop (UART,
                      the twin's or bridge's process, pty / socket)
``link_to_core``      DONE's bytes reached the event loop -> ESP's ``attempts_finished`` (decode,
                      the backend's and the node's queues: the event loop's share)
====================  ==========================================================================

The device's join cycle comes from its own DONE (:func:`join_cycle`): a schedule that joined the
grid at ``j`` fired attempts ``j, j + period, ...`` up to DONE's cycle, and DONE counts them, so
``j`` is exact (to the cycle) whether the host gave the join cycle (a margin) or the device joined
by itself (CONTROL.LATE_JOIN, docs/physical-layer.md section 5).

Samples are kept per segment in bounded windows (:data:`KEEP` newest);
:meth:`NodeTiming.summary` gives n, mean, p50, p90, p99 in ms (``snapshot()["timing"]`` of the
node, the results file's summary; ``python -m benchmarks node`` prints them).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from hwctl import timebase
from hwctl.protocols.esp import EspMessage, MsgType

#: newest samples kept per segment
KEEP = 4096

#: link-stamped segments (module docstring): not reproduced by a replay
LINK_SEGMENTS: dict[str, str] = {
    "action_to_frame": "StartAttempts -> SCHEDULE_PAIRS frame handed to the link",
    "device_to_link": "device DONE -> its bytes reached the node's event loop",
    "link_to_core": "DONE's bytes reached the event loop -> ESP attempts_finished",
}

#: segment -> what it measures (see the module docstring)
SEGMENTS: dict[str, str] = {
    "syn_rtt": "initiator: SYN sent -> SYNACK handled (two ESP hops)",
    "ack_flight": "remote: ACK sent by the initiator -> handled here (one ESP hop)",
    "to_cmd": "StartAttempts -> SCHEDULE_PAIRS handed to the link (node task hops)",
    "cmd_rtt": "SCHEDULE_PAIRS handed to the link -> its ACK",
    "cmd_to_device": "SCHEDULE_PAIRS handed to the link -> device joined the grid",
    "join_after_tmin": "t_min -> this end's device joined the grid",
    "done_to_host": "device DONE -> the node's event pump has it",
    "done_to_core": "event pump has DONE -> ESP attempts_finished",
}


def join_cycle(done_ts: int, attempts: int, origin: int, period: int) -> int:
    """The grid point at which a schedule that ended with DONE(``done_ts``, ``attempts``) joined
    the grid ``origin + k*period``: its last attempt is the last grid point at or before
    ``done_ts`` (attempts fire at ``t <= now``, docs/physical-layer.md section 3) and it fired
    ``attempts`` of them, one per period."""
    if attempts <= 0 or period <= 0:
        return done_ts
    last = origin + (done_ts - origin) // period * period
    return last - (attempts - 1) * period


def attempts_both(origin: int, period: int, later_join: int, last_ts: int) -> int:
    """Attempts of a request that *both* ends fired, up to and including its last pair's: the
    simulator's ``attempts`` (a sum of geometric numbers, :func:`hwctl.physics.heralding.
    sample_attempts`). ``later_join``: the cycle the later of the two ends' devices joined the
    grid ``origin + k*period`` (snapped to the grid: it may come from a float time); ``last_ts``:
    the last pair's attempt cycle. A device's own DONE count is a different quantity: it also
    holds the attempts it fired before the other end joined (they cannot herald: the station
    needs both ends' markers, docs/physical-layer.md section 2) and those fired after the last
    pair while its herald was in flight (2 x fibre + window + herald frame, ~28 at 2 km)."""
    if period <= 0:
        return 0
    j = origin + max(0, round((later_join - origin) / period)) * period
    return (last_ts - j) // period + 1 if last_ts >= j else 0


def _pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``xs``."""
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


@dataclass
class NodeTiming:
    """Per-node latency samples (seconds) by segment, plus the per-request marks that produce
    them. ``clock`` is the shared reference (seconds since the epoch); tests pass their own."""

    #: one-way control delay to each peer (the fibre's; ESP's t_min = ACK sent + this)
    delays: dict[str, float] = field(default_factory=dict)
    keep: int = KEEP
    clock: object = timebase.seconds
    samples: dict[str, deque[float]] = field(default_factory=dict)
    #: the link-stamped segments (:data:`LINK_SEGMENTS`)
    link_samples: dict[str, deque[float]] = field(default_factory=dict)
    _marks: dict[tuple[int, str], float] = field(default_factory=dict, repr=False)
    _done_seen: dict[int, float] = field(default_factory=dict, repr=False)
    _link_rx: dict[int, float] = field(default_factory=dict, repr=False)
    _needs: dict[int, float] = field(default_factory=dict, repr=False)

    def now(self) -> float:
        return self.clock()  # type: ignore[operator]

    def note(self, name: str, seconds: float) -> None:
        if seconds == seconds:  # not NaN
            book = self.link_samples if name in LINK_SEGMENTS else self.samples
            q = book.get(name)
            if q is None:
                q = book[name] = deque(maxlen=self.keep)
            q.append(seconds)

    @staticmethod
    def wall_s(ns: int) -> float:
        """A link's wall-clock stamp (``time.time_ns()``) in shared seconds."""
        return (ns - timebase.epoch_ns()) / 1e9

    # ------------------------------------------------------------ marks
    def mark(self, rid: int, what: str, at: float | None = None) -> None:
        """Remember when ``what`` happened for request ``rid`` (now, or at ``at``; first time
        only)."""
        if len(self._marks) > 4 * self.keep:  # bounded: requests that never finished go
            self._marks.clear()
        self._marks.setdefault((rid, what), self.now() if at is None else at)

    def since(self, rid: int, what: str, name: str, *, until: float | None = None) -> None:
        """Note ``name`` = now (or ``until``) - the mark ``what`` of ``rid``, if there is one."""
        t0 = self._marks.get((rid, what))
        if t0 is not None:
            self.note(name, (self.now() if until is None else until) - t0)

    def forget(self, rid: int) -> None:
        for what in ("start", "cmd", "done"):
            self._marks.pop((rid, what), None)

    # ------------------------------------------------------------ hooks of the node service
    def esp_in(self, msg: EspMessage, t_syn: float | None) -> None:
        """An ESP message is about to reach the core. SYNACK at the initiator (``t_syn``: when
        its SYN went out): ``syn_rtt``; ACK at the remote (its sender went READY at
        ``t_min - delay``): ``ack_flight``."""
        if msg.kind is MsgType.SYNACK and t_syn is not None:
            self.note("syn_rtt", self.now() - t_syn)
        elif msg.kind is MsgType.ACK:
            self.note("ack_flight", self.now() - (msg.t_min - self.delays.get(msg.src, 0.0)))

    def command_out(self, rid: int, at: float | None = None) -> None:
        """The request's first SCHEDULE_PAIRS is about to be handed to the link (now, or at
        node time ``at``)."""
        self.since(rid, "start", "to_cmd", until=at)
        self.mark(rid, "cmd", at)

    def command_acked(self, rid: int, tx_ns: int = 0) -> None:
        """The first SCHEDULE_PAIRS of ``rid`` was acknowledged; ``tx_ns``: the backend's stamp
        of its frame leaving (0: none)."""
        self.since(rid, "cmd", "cmd_rtt")
        if tx_ns:
            self.since(rid, "start", "action_to_frame", until=self.wall_s(tx_ns))

    def done_seen(self, done_ts: int, time_at, rx_ns: int = 0) -> None:
        """The event pump has a DONE with device timestamp ``done_ts`` (``time_at``: device
        cycle -> shared seconds); ``rx_ns``: the link's stamp of the newest bytes (0: none)."""
        now = self.now()
        self._done_seen[done_ts] = now
        if rx_ns:
            self._link_rx[done_ts] = rx = self.wall_s(rx_ns)
            self.note("device_to_link", rx - time_at(done_ts))
        for book in (self._done_seen, self._link_rx):
            if len(book) > 64:
                del book[next(iter(book))]
        self.note("done_to_host", now - time_at(done_ts))

    def finished(self, rid: int, join_s: float, t_min: float, done_ts: int) -> None:
        """The generation of ``rid`` ended (``attempts_finished`` was called); this end's device
        joined the grid at shared time ``join_s``."""
        now = self.now()  # one reading whatever is noted (a replay reads the clock alike)
        t = self._done_seen.pop(done_ts, None)
        if t is not None:
            self.note("done_to_core", now - t)
        rx = self._link_rx.pop(done_ts, None)
        if rx is not None:
            self.note("link_to_core", now - rx)
        self.since(rid, "cmd", "cmd_to_device", until=join_s)
        self.note("join_after_tmin", join_s - t_min)
        self.forget(rid)

    def pl_start(self, rid: int, need: float) -> float:
        """One end of ``rid`` joined the grid ``need`` s after t_min: the latest join known so
        far (the request's generation starts when both ends fire; the initiator's results row
        ``pl_start_s`` is t_min + this)."""
        v = max(need, self._needs.get(rid, need))
        self._needs[rid] = v
        if len(self._needs) > self.keep:
            del self._needs[next(iter(self._needs))]
        return v

    # ------------------------------------------------------------ results
    def summary(self, *, link: bool = False) -> dict[str, dict[str, float]]:
        """Per segment: n, mean, p50, p90, p99 (ms), in :data:`SEGMENTS` order (``link``: the
        link-stamped ones, :data:`LINK_SEGMENTS`)."""
        out: dict[str, dict[str, float]] = {}
        book, order = (self.link_samples, LINK_SEGMENTS) if link else (self.samples, SEGMENTS)
        for name in [*order, *sorted(set(book) - set(order))]:
            q = book.get(name)
            if not q:
                continue
            xs = sorted(q)
            out[name] = {"n": float(len(xs)), "mean": 1e3 * sum(xs) / len(xs),
                         "p50": 1e3 * _pct(xs, 0.5), "p90": 1e3 * _pct(xs, 0.9),
                         "p99": 1e3 * _pct(xs, 0.99)}
        return out


def merge(summaries: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Several nodes' summaries as one: n summed, mean weighted by n, percentiles the largest
    (an upper bound: the nodes' samples are not kept together)."""
    out: dict[str, dict[str, float]] = {}
    for s in summaries:
        for name, d in s.items():
            o = out.setdefault(name, {"n": 0.0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0})
            n = o["n"] + d["n"]
            o["mean"] = (o["mean"] * o["n"] + d["mean"] * d["n"]) / n if n else 0.0
            o["n"] = n
            for k in ("p50", "p90", "p99"):
                o[k] = max(o[k], d[k])
    return out
