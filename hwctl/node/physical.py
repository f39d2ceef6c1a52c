"""Physical-layer rounds (docs/physical-layer.md section 5): one generation per request at either
end of a link, the device events that drive it, the two ends' pair-list comparison."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field

from hwctl.errors import DeviceError, UserError
from hwctl.node.limits import K_ESP, U32
from hwctl.node.records import RequestRecord
from hwctl.nodetiming import attempts_both, join_cycle
from hwctl.protocols.base import Request, StartAttempts
from hwctl.protocols.esp import EspMessage, MsgType
from hwctl.recovery import GenerationFailed
from hwctl.transport.backend import Backend, OrderedResponse
from hwctl.wire import (
    ControlBit,
    Done,
    DoneReason,
    Error,
    ErrorCode,
    HdrBlock,
    Header,
    Late,
    Pair,
    Reg,
    SchedulePairs,
)
from hwctl.wire.bulk import HeaderBlock

log = logging.getLogger("hwctl.node")

#: ``HWCTL_SCHEDULE_NOW=1`` / ``=0`` in a node process's environment: the initiator's
#: SCHEDULE_PAIRS written in the SYNACK callback (:meth:`PhysicalLayer._schedule_now`) on every
#: link that can, or on none (the generation's task sends it); unset: where the device link says
#: it pays (``Link.WRITE_WAKES``); for a benchmark's A/B pair
SCHEDULE_NOW_ENV = "HWCTL_SCHEDULE_NOW"


def schedule_now_on() -> bool | None:
    """:data:`SCHEDULE_NOW_ENV`, read once per node service: True, False, or None (the link's
    choice)."""
    v = os.environ.get(SCHEDULE_NOW_ENV, "")
    if v not in ("", "0", "1"):
        raise UserError(f"{SCHEDULE_NOW_ENV}={v!r}: must be 0 or 1")
    return None if not v else v == "1"


#: ``HWCTL_EARLY_SCHEDULE=0`` / ``=1`` in a node process's environment overrides its ``[physical]
#: early_schedule`` (docs/node.md): one switch for every process of a run, e.g. a benchmark's A/B
#: pair (the demo's and the benchmark's forked nodes inherit it); unset: the config decides
EARLY_SCHEDULE_ENV = "HWCTL_EARLY_SCHEDULE"


def early_schedule_on(configured: bool) -> bool:
    """The remote's early schedule at SYNACK (docs/physical-layer.md section 5): the config's
    ``[physical] early_schedule`` unless :data:`EARLY_SCHEDULE_ENV` says ``0`` or ``1``."""
    v = os.environ.get(EARLY_SCHEDULE_ENV, "")
    if v in ("0", "1"):
        return v == "1"
    if v:
        raise UserError(f"{EARLY_SCHEDULE_ENV}={v!r}: must be 0 or 1")
    return configured


@dataclass(frozen=True, slots=True)
class PlStart:
    """ESP's ``StartAttempts`` for ``req`` with ``peer`` (ESP paper §V-A): one generation of the
    physical layer from ``t_min`` (the same at both ends), queued for the pl loop."""

    req: Request
    peer: str
    t_min: float


@dataclass(frozen=True, slots=True)
class PlAbort:
    """Robust mode: stop the generation of ``rid`` (its Lock's lease ended, or the peer restarted).
    ``gen``: generations ended on this node by then (``recovery.gens_ended``): one that ended
    otherwise first, e.g. on the PeerDead marker queued just before, leaves it stale for the
    request's next run."""

    rid: int
    reason: str
    gen: int = -1


@dataclass(frozen=True, slots=True)
class PlMsg:
    """A ``pl`` message from a peer, queued with the device events of the running generation."""

    src: str
    d: dict



@dataclass(frozen=True, slots=True)
class PlEarly:
    """Remote end, at its SYNACK for ``req``: schedule the device on the request's grid now
    (:meth:`hwctl.pljoin.JoinPlanner.early_start`), before ACK brings t_min."""

    req: Request
    peer: str


@dataclass(frozen=True, slots=True)
class PlEarlyDrop:
    """The Lock taken at that SYNACK ended without StartAttempts (NACK): abort the early
    schedule. ``then``: ESP messages held until the abort is done (a SYNACK to the same peer:
    that peer's next schedule must never meet the old one at the station)."""

    rid: int
    then: list = field(default_factory=list)


@dataclass(slots=True)
class _Now:
    """The initiator's SCHEDULE_PAIRS of request ``rid``, written in the callback that handled
    SYNACK (:meth:`PhysicalLayer._schedule_now`); its generation adopts it (``tc``: its join
    cycle on the grid from ``origin``), or the pl loop aborts it (:meth:`PhysicalLayer._now_drop`)."""

    rid: int
    t_min: float
    origin: int
    tc: int
    t0: float  # node time it was handed to the link
    epoch: int  # the device life it went to (hwctl.recovery)
    task: asyncio.Task  # its answer (Backend.command_now)
    tx_ns: int = 0  # the link's stamp of its frame leaving
    acked: float | None = None  # node time the answer came


def _consume(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # (retrieved: never "exception was never retrieved")


#: what the physical-layer loop takes, in order (``NodeService._pl_queue``)
PlItem = PlStart | PlEarly | PlEarlyDrop


@dataclass(slots=True)
class _Early:
    rid: int
    peer: str
    lock: object = None  # the ESP Lock taken at that SYNACK (a re-run of the rid is another)
    t_start: int = 0
    acked: float | None = None  # node time the device acknowledged it (None: not sent / NAK)
    epoch: int = -1  # the device life it was sent to (hwctl.recovery): adopted in that life only
    retried: bool = False  # its command needed a retry (a copy may follow it: _early_schedule)
    dropped: PlEarlyDrop | None = None


class PhysicalLayer:
    """Physical-layer rounds of a :class:`NodeService` (docs/physical-layer.md section 5): device events, one generation per request at either end, the pair-list check."""

    async def _late_join_on(self) -> None:
        """Set CONTROL.LATE_JOIN (the device joins a request's attempt grid by itself, no LATE:
        hwctl.pljoin); a device that reads it back clear has no such bit: join by margin."""
        b = self.backend
        assert b is not None
        bit = 1 << ControlBit.LATE_JOIN
        try:
            ctl = await b.read_reg(Reg.CONTROL)
            await b.write_reg(Reg.CONTROL, ctl | bit)
            self._join.device_joins = bool(await b.read_reg(Reg.CONTROL) & bit)
        except DeviceError:
            self._join.device_joins = False

    async def _event_pump(self) -> None:
        """Device events: HEADERs to the verification core, PAIR/DONE/LATE to the running
        generation; errors are counted, never dropped."""
        b = self.backend
        assert b is not None
        if type(b) is Backend and "next_event" not in vars(b):  # (not tapped: hwctl.record)
            # in the link's reader callback: a DONE reaches the generation one task hop after
            # the read, not three (benchmarks/RESULTS.md, tenth session)
            await b.sink_events(self._device_event)
        while True:
            self._device_event(await b.next_event())

    def _device_event(self, ev: object) -> None:
        """One device event (:meth:`_event_pump`)."""
        if type(ev) is HdrBlock or type(ev) is OrderedResponse:
            self._on_block_event(ev)
        elif type(ev) is HeaderBlock:
            self._on_headers(ev)
        elif isinstance(ev, Header):
            self._on_header(ev)
        elif isinstance(ev, Error):
            if ev.code == ErrorCode.NO_SLOT:
                self.counters.no_slot += 1  # that qubit is lost here: a gap for the core
            elif ev.code == ErrorCode.BAD_HEADER:
                self.counters.bad_headers += 1
            elif ev.code == ErrorCode.BAD_HERALD:
                # a herald for an attempt after the last pair (still in flight at COMPLETE)
                # or for an aborted round: refused by the device at both ends alike
                self.counters.late_heralds += 1
            else:
                self.counters.device_errors += 1
                log.warning("%s: device error %s", self.cfg.name, ev)
        else:
            if type(ev) is Done:
                self.timing.done_seen(ev.ts, self.clock.time_at,
                                      getattr(getattr(self.backend, "link", None), "rx_ns", 0))
            self._events.put_nowait(ev)

    async def _pl_loop(self) -> None:
        while True:
            item = await self._pl_queue.get()
            p = self._pre
            if p is not None and (type(item) is not PlStart or item.req.rid != p.rid):
                await self._now_drop()  # (not the generation it was sent for)
            if type(item) is PlEarly:
                await self._early_schedule(item)
                continue
            if type(item) is PlEarlyDrop:
                await self._early_drop(item)
                continue
            req, peer, t_min = item.req, item.peer, item.t_min
            e = self._early
            if e is not None and (e.rid != req.rid or e.lock is not self.core.lock
                                  or e.dropped is not None):
                await self._early_drop(self._mark_dropped(e))
            if req.rid in self._pl_cancelled:
                self._pl_cancelled.discard(req.rid)
                await self._now_drop()
                continue
            if (req.rid, t_min) in self._pl_skip:  # the peer failed it first (hwctl.recovery)
                self._pl_skip.discard((req.rid, t_min))
                await self._now_drop()
                continue
            self._pl_rid, self._pl_tmin, self._pl_peer = req.rid, t_min, peer
            self._pl_tm[req.rid] = t_min
            if len(self._pl_tm) > 4096:
                del self._pl_tm[next(iter(self._pl_tm))]  # bounded: the oldest request goes
            later = []
            for d in self._pl_early.pop(req.rid, []):
                tm = d.get("tm")
                if tm is None or tm == t_min:
                    self._events.put_nowait(PlMsg(d.pop("_src", peer), d))
                elif tm > t_min:
                    later.append(d)  # for a later generation of this request
                else:
                    self.counters.stale_msgs += 1
            if later:
                self._pl_early[req.rid] = later
            self.counters.generations += 1
            try:
                await self.recovery.generate(req, peer, t_min)
            finally:
                self._pl_rid = self._pl_tmin = None
                self._pl_done.append(req.rid)
                self.recovery.gens_ended += 1

    def _early_ok(self) -> bool:
        """Early schedules at SYNACK: only with a device that joins the grid by itself
        (CONTROL.LATE_JOIN: a t_start in the past is no LATE) and outside robust mode (its
        leases and restarts end Locks in ways this path does not follow)."""
        return (self._early_on and self._join.device_joins and self.cfg.robust is None
                and self.backend is not None)

    def _schedule_now(self, act: StartAttempts) -> None:
        """``_apply``, at the initiator's StartAttempts (ESP handled SYNACK; the ACK is sent
        right after this): write the request's SCHEDULE_PAIRS to the device here, in the
        callback, the frame :meth:`_generate`'s first join would send one task hop later
        (the same join cycle: ``JoinPlanner.join`` from now, round 0), and let the generation
        adopt it. The initiator's command is the request's critical path (the remote's device
        is already scheduled at its SYNACK, and the grid's origin is t_min, the ACK's time):
        StartAttempts -> frame written was ~0.11 ms p50 under load, a task hop, the pl loop's
        and the generation's set-up and the backend's command path (benchmarks/RESULTS.md,
        twelfth session). Only when that generation is sure to come next with nothing in its
        way: the pl loop idle (no generation, nothing queued, no early schedule of ours to
        abort first), the device up, outside robust mode (whose lease can end the Lock before
        the generation starts), an untapped backend (hwctl.record replays the generation's own
        command) whose link writes from a callback and no other command in flight
        (:meth:`hwctl.transport.backend.Backend.command_now`); otherwise the generation sends
        it as before. A generation that does not run for it (cancelled, skipped) aborts it
        (:meth:`_now_drop`).

        Only on a link whose write wakes the device's reader itself (``Link.WRITE_WAKES``: a Unix
        socket, the in-process lab), unless :data:`SCHEDULE_NOW_ENV` says otherwise. On a pty the
        write only queues a kernel worker, which must get a CPU before the lab wakes: written
        here, the worker waited behind the rest of this node's step (the ACK, the generation's
        set-up: ~0.1 ms) at real-time priority under load, and the device got the command no
        sooner (`join_after_tmin` p50 +0-0.1 ms, the lead's mean +0.15 ms in four interleaved
        pairs at load 11-13; on Unix sockets -0.05 ms; benchmarks/RESULTS.md, twelfth
        session)."""
        req = act.request
        b = self.backend
        on = self._now_on
        if (on is False or req.initiator != self.cfg.name or self._pre is not None
                or self._early is not None or self._pl_rid is not None
                or not self._pl_queue.empty() or self.cfg.robust is not None
                or type(b) is not Backend or "schedule_pairs" in vars(b)
                or not self.recovery.up.is_set() or req.rid in self._pl_cancelled
                or (req.rid, act.t_min) in self._pl_skip
                or (on is None and not type(b.link).WRITE_WAKES)):
            return
        jp = self._join
        origin = jp.origin(self.clock.cycle_at(act.t_min))
        t0 = self.now()
        tc = jp.join(origin, self.clock.cycle_at(t0), 0)
        try:
            task = b.command_now(SchedulePairs(tc, U32, self.cfg.period_cycles, req.pairs,
                                               self._port(act.peer)))
        except Exception as exc:  # a broken link: the generation's own command meets it too
            log.info("%s: schedule at SYNACK not sent (%s)", self.cfg.name, exc)
            return
        if task is None:
            return
        self.timing.mark(req.rid, "start", t0)
        self.timing.command_out(req.rid, at=t0)
        p = self._pre = _Now(req.rid, act.t_min, origin, tc, t0, self.recovery.epoch, task,
                             b.tx_ns)

        def answered(_: asyncio.Task) -> None:
            p.acked = self.now()

        task.add_done_callback(answered)

    async def _now_adopt(self, p: _Now) -> int:
        """The generation's first join is :meth:`_schedule_now`'s command: its answer (a NAK
        raises DeviceError, as :meth:`_schedule_at`), the round trip to the join planner."""
        await p.task
        self._join.note_rtt((p.acked if p.acked is not None else self.now()) - p.t0)
        self.counters.schedules += 1
        self.counters.schedules_now += 1
        return p.tc

    def _now_take(self, rid: int, t_min: float, origin: int) -> _Now | None:
        """The command :meth:`_schedule_now` sent for this generation, if any (taken)."""
        p = self._pre
        if (p is not None and p.rid == rid and p.t_min == t_min and p.origin == origin
                and p.epoch == self.recovery.epoch):
            self._pre = None
            return p
        return None

    async def _now_drop(self) -> None:
        """A command of :meth:`_schedule_now` whose generation does not run (or not on it):
        once the device took it, ABORTed (its DONE(ABORTED) skipped by the next generation, as
        an early schedule's). Sent to an earlier device life: nothing of it runs now."""
        p, self._pre = self._pre, None
        if p is None:
            return
        if p.epoch != self.recovery.epoch:
            p.task.add_done_callback(_consume)
            return
        try:
            await p.task
        except asyncio.CancelledError:
            raise
        except Exception:  # NAK: nothing runs; a broken device path: its recovery resets it
            return
        try:
            await self.backend.abort()  # type: ignore[union-attr]
            self._stale_aborts += 1
            self.counters.schedules_now_aborted += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: schedule at SYNACK not aborted (%s)", self.cfg.name, exc)

    def _early_lock(self, msg: EspMessage) -> None:
        """``_apply``: we sent SYNACK (remote end) and hold the Lock for its request: queue the
        request's early schedule."""
        lock = getattr(self.core, "lock", None)
        if (self._early is None and lock is not None and lock.request.rid == msg.rid
                and lock.peer == msg.dst and self._early_ok()):
            self._early = _Early(msg.rid, msg.dst, lock)
            self._pl_queue.put_nowait(PlEarly(lock.request, msg.dst))

    def _early_stale(self) -> bool:
        """The early schedule's Lock is no longer the core's (NACK, or released by a fault
        outside ``_apply``, hwctl.recovery): it must be aborted before it is adopted or met."""
        e = self._early
        return e is not None and getattr(self.core, "lock", None) is not e.lock

    def _early_check(self, lock_rid: int | None) -> None:
        """``_apply``, after each core call: the Lock of an early schedule ended without
        StartAttempts (NACK): queue its abort; ESP messages to its peer wait for it
        (:meth:`_early_hold`)."""
        e = self._early
        if e is not None and e.dropped is None and (lock_rid != e.rid or self._early_stale()):
            self._queue_drop(e)

    def _queue_drop(self, e: _Early) -> None:
        """Mark early schedule ``e`` dropped and queue its abort for the pl loop
        (:meth:`_early_drop`)."""
        self._pl_queue.put_nowait(self._mark_dropped(e))

    @staticmethod
    def _mark_dropped(e: _Early) -> PlEarlyDrop:
        """``e``'s drop (made once): from now on ESP messages to its peer wait in it
        (:meth:`_early_hold`) until :meth:`_early_drop` has aborted ``e``."""
        if e.dropped is None:
            e.dropped = PlEarlyDrop(e.rid)
        return e.dropped

    def _early_hold(self, peer: str, msg: object) -> bool:
        """An ESP message to ``peer`` while an early schedule towards it is being aborted waits
        for the abort (a SYNACK it answers could start the peer's next schedule on this link,
        and the old one must not be firing then)."""
        e = self._early
        if e is not None and e.peer == peer and e.dropped is None and self._early_stale():
            self._queue_drop(e)  # (its Lock ended outside _apply)
        if e is not None and e.dropped is not None and e.peer == peer:
            e.dropped.then.append(msg)
            return True
        return False

    async def _early_schedule(self, item: PlEarly) -> None:
        """Remote end, SYNACK sent: SCHEDULE_PAIRS from the last global grid point (the device
        joins at the next one); attempts before the initiator joins cannot herald. Not while
        the device is being recovered (the generation schedules at ACK, on the new life).

        A command that needed a retry is still adopted: a retry reaches the device at most once
        (its retry memory, or the board bridge's own de-duplication), except across a bridge
        restart, where a copy may wait in the device's FIFO behind it; that case is the one
        :meth:`hwctl.recovery.DeviceSupervisor.generate` already covers for the generation's
        own commands (a STATUS read after the generation, a still-running copy aborted), and it
        covers this one too (``retried``). Before, a retried early schedule was aborted at
        once: but it may already have fired with the initiator and held the request's pairs
        (an answer later than the link's timeout under load), so the generation's new schedule
        then ran alone for 2^32-1 attempts with the peer done: a node BUSY for ever (the
        eighth session's process-fault hang)."""
        e = self._early
        if e is None or e.rid != item.req.rid or e.dropped is not None:
            return  # dropped before it went out: nothing to abort
        if not self.recovery.up.is_set():
            return  # (acked None: the generation schedules as usual)
        e.t_start = self._join.early_start(self.clock.cycle_at(self.now()))
        b = self.backend
        assert b is not None
        retries0, epoch = self.recovery.link_retries(b), self.recovery.epoch
        try:
            await self._schedule_at(e.t_start, item.req.pairs, self._port(item.peer))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # NAK, a broken device path: the generation schedules as usual
            log.info("%s: early schedule not used (%s)", self.cfg.name, exc)  # (acked None)
            return
        e.acked, e.epoch = self.now(), epoch
        e.retried = self.recovery.link_retries(b) > retries0
        self.counters.early_schedules += 1

    async def _early_drop(self, item: PlEarlyDrop) -> None:
        """Abort an early schedule whose Lock ended without StartAttempts (or that its generation
        does not adopt), then send the ESP messages held behind it. Its DONE(ABORTED) is skipped
        by the next generation. The held messages go out whoever runs the drop first (the pl
        loop's queued item, or a generation that met the dropped schedule first): a SYNACK lost
        here would leave its initiator in SYN_SENT and this node's Lock in SYN_RECEIVED for
        ever (paper-mode ESP resends nothing, and the initiator's SYN resend meets that Lock as
        a duplicate)."""
        e = self._early
        if e is not None and e.dropped is item:
            if e.acked is not None:  # messages to its peer stay held while the ABORT runs
                try:
                    await self.backend.abort()  # type: ignore[union-attr]
                    if e.epoch == self.recovery.epoch:  # (a restarted device runs nothing)
                        self._stale_aborts += 1
                    self.counters.early_aborted += 1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a broken device path: its recovery resets the device
                    log.warning("%s: early schedule not aborted (%s)", self.cfg.name, exc)
            if self._early is e:
                self._early = None
        held, item.then[:] = list(item.then), []  # sent once
        for msg in held:
            self._send(msg.dst, K_ESP, msg.to_bytes())
            if msg.kind is MsgType.SYNACK:
                self._early_lock(msg)  # the next request's early schedule, after the abort

    def _remote_done(self, peer: str) -> asyncio.Queue[int]:
        """Requests of ``peer`` on our edge that finished here (for the "edge" workload rule)."""
        return self._remote_q.setdefault(peer, asyncio.Queue())

    def _port(self, peer: str) -> int:
        for p in self.cfg.peers:
            if p.name == peer:
                return p.port if p.port is not None else sorted(q.name for q in self.cfg.peers).index(peer)
        raise UserError(f"node {self.cfg.name}: no peer {peer!r} configured")

    async def _schedule_at(self, tc: int, pairs: int, port: int) -> int:
        """SCHEDULE_PAIRS from device cycle ``tc``; its round trip goes to the join planner."""
        b = self.backend
        assert b is not None
        t0 = self.now()  # the node's one clock (hwctl.record replays it)
        await b.schedule_pairs(tc, U32, self.cfg.period_cycles, pairs, port)
        self._join.note_rtt(self.now() - t0)
        self.counters.schedules += 1
        return tc

    async def _generate(self, req: Request, peer: str, t_min: float) -> None:
        """One request at the physical layer, at either end (docs/physical-layer.md section 5).

        The grid's origin is ``cycle_of(t_min)`` at both ends (ESP gives both the same t_min),
        so each end joins as soon as ESP starts it, the remote without waiting for the
        initiator's ``{rid, restart: 0, start}`` (still sent behind ACK for older remotes, and
        taken as a confirmation). Each end joins the grid ``origin + k*period`` at the first
        point its own command can reach its device in time (:class:`hwctl.pljoin.JoinPlanner`:
        the margin follows its measured command round trips) with one SCHEDULE_PAIRS, and
        collects PAIR events until DONE(COMPLETE): the station heralds only attempts both ends
        fired, and both get every herald at the same cycle, so both record the same pairs
        whichever grid point each joined at. A LATE (nothing fired) is repaired at that end alone
        by joining a later grid point; so is an exhausted schedule. Afterwards each end sends its
        pair list ``{rid, pairs, need}`` to the other, which counts any mismatch in
        ``counters.disagree``. (``{rid, late: round}`` from an older remote still makes the
        initiator restart both ends from a new start.)"""
        b = self.backend
        assert b is not None
        c = self.counters
        jp = self._join
        initiator = req.initiator == self.cfg.name
        rec = self.records.get(req.rid) if initiator else None
        port = self._port(peer)
        need: float | None = None
        pairs: list[tuple[int, int, int]] = []
        attempts = 0
        tc: int | None = None  # our join cycle of the running schedule
        origin = 0  # the request's grid origin (cycle of the initiator's start)
        retry = 0  # LATE / exhausted schedules of this request here
        dev_join: int | None = None  # the grid point our device joined at (from its DONE)
        done_ts = 0

        async def join(pre: _Now | None = None) -> int:
            nonlocal need
            if pre is not None:  # sent at SYNACK (_schedule_now)
                t = await self._now_adopt(pre)
            else:
                if need is None:
                    self.timing.command_out(req.rid)
                t = await self._schedule_at(jp.join(origin, self.clock.cycle_at(self.now()),
                                                    retry), req.pairs, port)
            if need is None:  # the later of the join cycle and the ACK (a device that joins
                need = max(0.0, self.clock.time_at(t) - t_min, self.now() - t_min)  # itself)
                self.timing.command_acked(req.rid, getattr(b, "tx_ns", 0) if pre is None
                                          else pre.tx_ns)  # (replaced by the device's own
                # join below)
            return t

        got = self._pairs_peer.get(req.rid)
        if got is not None and got[0] == t_min:
            # the peer finished this generation before it started here: our device fired with
            # it before ACK (the early schedule), and its events can be gone (a link outage
            # while that schedule's command was retried); without this our new schedule, alone
            # on the grid, would keep the device RUNNING and us BUSY for ever (reconcile waits
            # on a running schedule). Our DONE gets the usual probe to come (hwctl.recovery)
            self.recovery.peer_finished()
        rnd = 0
        # round 0's origin: the first global grid point at or after t_min, at both ends
        origin = jp.origin(self.clock.cycle_at(t_min))
        e = self._early
        if (e is not None and e.rid == req.rid and e.dropped is None and e.acked is not None
                and e.lock is getattr(self.core, "lock", None) and e.epoch == self.recovery.epoch):
            self._early = None
            tc, need = e.t_start, max(0.0, e.acked - t_min)  # our early schedule (at SYNACK)
            self.recovery.early_retried = e.retried
        else:
            if e is not None and e.rid == req.rid:
                # not adopted (never sent, sent to an earlier device life, or its Lock ended
                # while this generation waited for the device): aborted if it went out, and the
                # ESP messages held behind it sent
                await self._early_drop(self._mark_dropped(e))
            pre = self._now_take(req.rid, t_min, origin)
            if pre is None:
                await self._now_drop()  # (one of another generation: none, in practice)
            tc = await join(pre)  # the remote too, at once: no wait for the start message
        if initiator:  # for an older remote, which waits for it; after our command, which is
            # on the critical path (the origin's time: an older remote re-joins there)
            self._send_pl(peer, rid=req.rid, restart=0, start=self.clock.time_at(origin))
        if rec is not None:
            rec.t_min, rec.t_pl_start = t_min, t_min + (need or 0.0)

        async def restart() -> int:
            """Initiator, on an older remote's LATE notice: a new origin at both ends."""
            nonlocal rnd, origin
            rnd += 1
            if rec is not None:
                rec.restarts += 1
            t = self.now() + jp.margin_s(rnd)
            origin = self.clock.cycle_at(t)
            self._send_pl(peer, rid=req.rid, restart=rnd, start=t)
            await b.abort()
            return await join()

        while True:
            ev = await self._events.get()
            if self.recovery.screen(ev, peer):  # a device loss or a peer's failure ends us
                continue
            if isinstance(ev, PlAbort):
                # robust mode: the core released the Lock (lease, restart) of this generation
                if ev.rid == req.rid and ev.gen in (-1, self.recovery.gens_ended):
                    await b.abort()
                    raise GenerationFailed(f"robust: {ev.reason}", tell_peer=True)
            elif isinstance(ev, PlMsg):
                d = ev.d
                if ev.src != peer:  # a third node meddling with this request
                    self._drop("pl_not_from_partner")
                elif initiator and d.get("late") == rnd:
                    tc, pairs = await restart(), []
                elif not initiator and isinstance(d.get("restart"), int) and d["restart"] >= rnd:
                    o = self.clock.cycle_at(float(d["start"]))
                    if d["restart"] == rnd and o == origin:
                        continue  # round 0's start, already joined at it (or a repeat)
                    if tc is not None:  # an older initiator's other start: join that grid
                        await b.abort()
                    rnd, origin = d["restart"], o
                    tc, pairs = await join(), []
                else:
                    c.stale_msgs += 1
            elif isinstance(ev, Pair):
                if tc is not None and ev.ts >= tc:
                    pairs.append((ev.ts, jp.attempt(origin, ev.ts), ev.bell))
                    c.heralds += 1
                    self.recovery.note_pairs(len(pairs))
                else:
                    c.stale_msgs += 1
            elif isinstance(ev, Late):
                if ev.t_start != tc:
                    continue
                c.late += 1
                c.late_after_first += c.generations > 1
                if rec is not None:
                    rec.late += 1
                jp.device_joins = False  # it did not join by itself (restarted?): margin from now
                retry += 1  # nothing fired here: join a later grid point, alone
                tc = await join()
            elif isinstance(ev, Done):
                if ev.reason == DoneReason.ABORTED and self._stale_aborts > 0:
                    self._stale_aborts -= 1  # a dropped early schedule's (_early_drop)
                    continue
                attempts += ev.attempts
                if dev_join is None and tc is not None:  # where our device joined the grid
                    dev_join, done_ts = join_cycle(ev.ts, ev.attempts, origin, jp.period), ev.ts
                if ev.reason == DoneReason.COMPLETE and tc is not None and len(pairs) == req.pairs:
                    break
                if (ev.reason == DoneReason.COMPLETE and tc is not None and len(pairs) < req.pairs
                        and ev.ts >= tc):  # ours (an earlier schedule's DONE ended before tc)
                    raise GenerationFailed(f"pairs lost: DONE(COMPLETE) after {len(pairs)} of "
                                           f"{req.pairs} PAIR events", tell_peer=True)
                if ev.reason == DoneReason.EXHAUSTED and tc is not None:
                    c.exhausted += 1  # 2^32-1 attempts without the pairs: go on from here
                    tc = await join()
        c.attempts += attempts
        if rec is not None:
            rec.fired += attempts
            rec.herald_ts = [ts for ts, _, _ in pairs]
        lock = getattr(self.core, "lock", None)
        if hasattr(self.core, "lock") and (lock is None or lock.request.rid != req.rid):
            # ESP's Lock went while the device finished: the peer was declared dead, restarted
            # or said it failed (or a robust-mode lease ended), and the release path gave the
            # request back; its marker (PeerDead, the ``failed`` message, PlAbort) sits behind
            # the device's DONE taken here. The generation ended with the release, for the
            # release's cause (attempts_finished would be a protocol violation that ended the
            # node: seen in CI, tests/test_recovery.py dead peer; tests/test_release_race.py)
            raise self.recovery.released_by()
        self._apply(self.core.attempts_finished(req.rid, self.now()))
        if dev_join is not None:  # exact, where the ACK-based figure above is an upper bound
            need = max(0.0, self.clock.time_at(dev_join) - t_min)
            self.timing.finished(req.rid, t_min + need, t_min, done_ts)
            if rec is not None:
                rec.t_pl_start = t_min + self.timing.pl_start(req.rid, need)
        if rec is not None:
            self._count_attempts(rec)
        if not initiator and self.cfg.rule == "edge":
            self._remote_done(peer).put_nowait(req.rid)
        self._send_pl(peer, rid=req.rid, pairs=[list(x) for x in pairs], need=need)
        self._check_pairs(req.rid, mine=pairs, tm=t_min)

    def _note_need(self, rid: int, need: float) -> None:
        """The remote end joined the grid ``need`` s after t_min: the request's generation started
        at the later of the two joins (the breakdown's "t_min lead")."""
        rec = self.records.get(rid)
        if rec is not None and rec.t_min is not None and rec.t_pl_start is not None:
            rec.t_pl_start = rec.t_min + self.timing.pl_start(rid, need)
            self._count_attempts(rec)

    def _count_attempts(self, rec: RequestRecord) -> None:
        """The row's ``attempts``: what both ends fired from the later join to the last pair, the
        simulator's quantity (hwctl.nodetiming.attempts_both); ``fired`` keeps the initiator's
        device count. Counted again when the remote's join arrives."""
        if rec.herald_ts and rec.t_min is not None and rec.t_pl_start is not None:
            rec.attempts = attempts_both(self._join.origin(self.clock.cycle_at(rec.t_min)),
                                         self._join.period,
                                         self.clock.cycle_at(rec.t_pl_start), rec.herald_ts[-1])

    def _stale_pairs(self, rid: int, pairs: list) -> None:
        """A pair list of a generation only one end finished (:meth:`_check_pairs`): counted in
        ``stale_pair_lists``, its pairs (held at that end only) in ``one_sided``."""
        self.counters.stale_pair_lists += 1
        if pairs:
            self.counters.one_sided += len(pairs)
            log.error("%s: request %d: %d pair(s) of a generation only one end finished",
                      self.cfg.name, rid, len(pairs))

    def _check_pairs(self, rid: int, *, mine: list | None = None, theirs: list | None = None,
                     tm: float | None = None) -> None:
        """Compare the two ends' pair lists of request ``rid`` once both lists of the same
        generation (``tm``: its t_min; None from a peer that does not say) are here: every pair
        must appear at both ends with the same attempt cycle, attempt number and Bell state.
        A list of an earlier generation than the other end's (one that failed at the other end,
        e.g. its device path broke, and ran again) is dropped and counted in
        ``stale_pair_lists``, never compared with another generation's pairs; its pairs, held
        at the end that finished that generation only, count in ``one_sided`` (must stay 0)."""
        for new, lists in ((mine, self._pairs_mine), (theirs, self._pairs_peer)):
            if new is None:
                continue
            old = lists.get(rid)
            if old is not None and old[0] != tm:
                self._stale_pairs(rid, old[1])  # a newer generation's list replaces it
            lists[rid] = (tm, [tuple(x) for x in new])
        if rid in self._pairs_mine and rid in self._pairs_peer:
            tm_a, tm_b = self._pairs_mine[rid][0], self._pairs_peer[rid][0]
            if tm_a is not None and tm_b is not None and tm_a != tm_b:
                # different generations: the older list's generation did not finish at the other
                # end; wait for the other end's list of the newer one
                self._stale_pairs(rid, (self._pairs_mine if tm_a < tm_b
                                        else self._pairs_peer).pop(rid)[1])
                return
            self._row_ready(rid, checked=True)  # after the counts below (call_soon)
            a, b = set(self._pairs_mine.pop(rid)[1]), set(self._pairs_peer.pop(rid)[1])
            bad = len(a ^ b)
            self.counters.pair_checks += 1
            if bad:
                self.counters.disagree += bad
                rec = self.records.get(rid)
                if rec is not None:
                    rec.disagree += bad
                log.error("%s: request %d: %d pair(s) not held at both ends", self.cfg.name, rid, bad)

