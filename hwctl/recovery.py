"""Device restart recovery and peer liveness for the node service (issue 16; docs/reliability.md
"Device restart recovery" and "Peer liveness").

The node service (:mod:`hwctl.node`) hands its device-facing loops and each physical-layer
generation to a :class:`DeviceSupervisor`, and its peer bookkeeping to :class:`PeerLiveness`.

Device. A link failure (a command unanswered after every retry, the serial port gone, the link
closed) or a watchdog probe that finds the device changed makes the supervisor:

1. mark the device down and end the running generation (a :class:`DeviceLost` marker in the
   node's event queue);
2. reconnect with exponential back-off (:class:`Backoff`, 50 ms doubling to 2 s, every attempt
   logged) by opening the backend URL again;
3. read the device's identity marks (:class:`DeviceMark`: the SCRATCH token this node wrote, TIME,
   CNT_PAIRS) and decide whether it restarted (:func:`restart_reason`: the token is gone, the
   clock went backwards or the counters were cleared) or only the path to it broke (a bridge or
   served twin restarted while the device kept running: then its schedule is aborted);
4. re-apply the node's configuration: the device clock on the shared timebase (TIME read,
   TIME_SET or a new map, exactly as at start), CONTROL.LATE_JOIN, a fresh SCRATCH token, and in
   the header-block mode of ``[verification] header_blocks`` CONTROL.HDR_BLOCK and BLOCK_FLUSH
   (:meth:`hwctl.hdrpath.BlockPath.reapply`), and on a restarted device CONTROL.HEADER_EN if the
   go had turned it on (``NodeService.enable_headers``); a restarted device's memory slots are all free
   again, so the node's slot book is emptied (counted ``slots_lost``), and in block mode its ring
   mirror restarts, the photons the old ring held are discarded in the verification core (cause
   DEVICE_LOST, counted as arrivals and held pairs lost) and our pins are forgotten (counted);
   after a broken path (same device life) our pins are asserted again;
5. end the generation that was in flight with a reason: the ESP core is told
   ``attempts_failed`` (the Lock is released; the initiator puts the request back in Q_main with
   its arrival number, ESP paper §V-A) and the peer is told ``{rid, tm, failed: reason}`` so it
   releases its end too. The pairs that generation had collected are discarded and counted
   (``pairs_discarded``).

In-flight schedules. A link that had trouble but never failed (commands answered after retries,
e.g. a board bridge restarted within them; event frames lost or corrupted) may have lost the
running generation's DONE, which the device never repeats. At each probe the watchdog reads
STATUS for a generation in flight for :data:`RECONCILE_AFTER_S` or more
(:meth:`DeviceSupervisor.reconcile`): a device running no schedule and holding no event ends
the generation with reason ``schedule lost`` (the request runs again, as above). RUNNING is no
proof that our schedule runs (a SCHEDULE_PAIRS retried across a bridge restart runs twice): the
peer's pair list of the running generation, with our DONE still missing a probe later, ends it
too (:meth:`DeviceSupervisor.peer_finished`). A DONE(COMPLETE) of our schedule (at or after its
join cycle) with fewer PAIR events than pairs asked ends it with ``pairs lost``.

The ESP cores are sans-IO; this module is the I/O driver's part. Time comes from the node.

Peers. Every node sends ``[hb, {"inc": N}]`` to each peer every :data:`HEARTBEAT_S`; any message
from a peer counts as a sign of life. A peer silent for :data:`PEER_DEAD_S`, while this node's own
loop ran (:data:`DEAD_TICKS` of its ticks since the peer's last message and since its own last
stall: a local stall is not the peer's silence), is declared dead: its
generation here ends with reason ``peer dead`` and everything the ESP core holds with it is
released through the robust core's release path (``EspNode._peer_restarted``: the Lock, a SYN
sent to it, a WAKE to it; requests sleeping on it go back to Q_main). A peer whose heartbeat
carries a new incarnation number restarted: the same release happens at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from hwctl.errors import DeviceError, LinkError, UserError
from hwctl.wire import Reg, StatusBit

if TYPE_CHECKING:
    from hwctl.node import NodeService
    from hwctl.protocols.base import Request
    from hwctl.transport import Backend

log = logging.getLogger(__name__)

#: reconnect back-off: first delay, factor 2 per failed attempt, at most this (s)
RECONNECT_MIN_S = 0.05
RECONNECT_MAX_S = 2.0
#: watchdog: the device is probed this often (one SCRATCH read) (s)
PROBE_S = 0.5
#: a generation in flight this long gets its device's STATUS read at every probe (s)
RECONCILE_AFTER_S = 1.0
#: heartbeat period between node services, and the silence after which a peer is dead (s)
HEARTBEAT_S = 0.5
PEER_DEAD_S = 3.0
#: a death verdict also needs this many of our own liveness ticks since the peer's last message
#: and since our loop last stalled (a tick later than :data:`STALL_S` after the previous one):
#: the loop ran, and read its socket, for that long (see :meth:`PeerLiveness.declare_dead`)
DEAD_TICKS = 2
STALL_S = 2 * HEARTBEAT_S
#: paper mode: a SYN unanswered this long, with the peer alive and in session, is sent again
SYN_RESEND_S = PEER_DEAD_S
#: a node's start-up commands wait this long for each device answer (s): a bound for a hang,
#: not a budget (see :func:`patient`)
START_HANG_S = 60.0
#: ZeroMQ message kinds: a heartbeat, an ESP message
K_HB = b"hb"
K_ESP = b"esp"
#: ESP messages held per peer while its session is not up
OUTBOX = 1000


class GenerationFailed(Exception):
    """A physical-layer generation cannot go on: the device was lost, or the peer said so, or
    the peer is dead. ``tell_peer``: the peer does not know yet."""

    def __init__(self, reason: str, *, tell_peer: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tell_peer = tell_peer


@dataclass(frozen=True, slots=True)
class DeviceLost:
    """Queued with the device events: the device of life ``epoch`` was lost."""

    epoch: int
    reason: str


@dataclass(frozen=True, slots=True)
class PeerDead:
    """Queued with the device events: ``peer`` stopped answering (or restarted) while generation
    number ``gen`` of this node was running (-1: none was)."""

    peer: str
    reason: str
    gen: int


@dataclass(frozen=True, slots=True)
class ScheduleGone:
    """Queued with the device events by :meth:`DeviceSupervisor.reconcile`: after a link outage
    the device runs no schedule and holds no event, while generation number ``gen`` still waits
    on its schedule's DONE (sent while the link was down, or the schedule itself lost).
    ``schedules``: the node's SCHEDULE_PAIRS count when STATUS was read; a generation that has
    sent one since ignores the marker (its new schedule is on the device)."""

    gen: int
    schedules: int
    reason: str


@dataclass(slots=True)
class Backoff:
    """Exponential back-off (sans-IO): ``lo``, ``2 lo``, ... capped at ``hi``."""

    lo: float = RECONNECT_MIN_S
    hi: float = RECONNECT_MAX_S
    n: int = 0

    def next(self) -> float:
        d = min(self.hi, self.lo * 2.0 ** min(self.n, 60))
        self.n += 1
        return d

    def reset(self) -> None:
        self.n = 0


@dataclass(frozen=True, slots=True)
class DeviceMark:
    """What identifies one life of a device: the SCRATCH token the node wrote (a reset device
    reads 0), its TIME and its CNT_PAIRS counter (None when the device has no such register)."""

    token: int
    time: int
    pairs: int | None


def restart_reason(before: DeviceMark | None, after: DeviceMark, token: int) -> str | None:
    """Why the device behind ``after`` is not the life we configured (None: the same life).
    ``before``: the last mark of that life; ``token``: the SCRATCH value we wrote to it."""
    if after.token != token:
        return f"SCRATCH token 0x{token:08x} gone (reads 0x{after.token:08x})"
    if before is not None:
        if after.time < before.time:
            return f"clock went backwards ({before.time} -> {after.time} cycles)"
        if before.pairs is not None and after.pairs is not None and after.pairs < before.pairs:
            return f"counters cleared (CNT_PAIRS {before.pairs} -> {after.pairs})"
    return None


async def read_mark(b: Backend) -> DeviceMark:
    token = await b.read_reg(Reg.SCRATCH)
    t = await b.time()
    try:
        pairs: int | None = await b.read_reg(Reg.CNT_PAIRS)
    except DeviceError:
        pairs = None
    return DeviceMark(token, t, pairs)


@dataclass
class RecoveryCounters:
    device_lost: int = 0  # link failures and restarts seen (each one recovery)
    device_restarts: int = 0  # recoveries that found a restarted device (state lost there)
    path_restarts: int = 0  # recoveries that found the same device life (bridge/server restart)
    reconnect_attempts: int = 0
    generations_failed: int = 0  # generations ended by a fault (device, peer), both roles
    pairs_discarded: int = 0  # pairs of those generations (the request is run again)
    slots_lost: int = 0  # slots held when the device restarted (freed by the restart)
    #: restarted devices whose CONTROL.HEADER_EN the re-sync turned on again (the go had run)
    headers_reenabled: int = 0
    stale_schedules: int = 0  # schedules found running at start (a killed earlier life's)
    stray_schedules: int = 0  # running after our generation completed (a repeated SCHEDULE)
    reconciles: int = 0  # STATUS checks of an in-flight schedule (generations in flight >= 1 s)
    schedules_lost: int = 0  # of those: device idle, DONE never seen (generation run again)
    downtime_s: float = 0.0
    #: a peer's ``failed`` for a generation still queued here (not started): Lock released at once
    failed_before_start: int = 0
    last_reason: str = ""
    #: generations ended, by cause ("device lost", "peer failed", "peer dead", ...)
    failed_by: dict[str, int] = field(default_factory=dict)

    def count_failed(self, cause: str) -> None:
        """One generation ended by ``cause`` (``generations_failed`` and ``failed_by``)."""
        self.generations_failed += 1
        self.failed_by[cause] = self.failed_by.get(cause, 0) + 1


@contextlib.asynccontextmanager
async def patient(b: object, hang_s: float = START_HANG_S) -> AsyncIterator[None]:
    """Inside, each command on backend ``b`` waits up to ``hang_s`` for the device's answer: its
    link resends the same bytes every ``timeout`` (the device's retry memory answers a repeat
    without running it again) up to ``hang_s`` in all, instead of the URL's ``retries``.

    For the commands a node issues at start (clock, block mode, CONTROL.LATE_JOIN, the life's
    marks), before :class:`DeviceSupervisor` runs: a timeout there ended the node, and the
    link's default 5 tries x 0.25 s is a budget a starved device misses (an in-process lab at
    load 17-28 answered ``_late_join_on``'s REG_READ later). The device answered the handshake
    that opened ``b``, so a late answer is load, not a missing device; a device that stops
    answering still ends the start with LinkTimeout, after ``hang_s``. A backend without a
    retry count (the replay's) is left as it is."""
    retries, timeout = getattr(b, "retries", None), getattr(b, "timeout", None)
    if type(retries) is not int or not isinstance(timeout, int | float) or timeout <= 0:
        yield
        return
    b.retries = max(retries, math.ceil(hang_s / timeout) - 1)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        b.retries = retries  # type: ignore[attr-defined]


class DeviceSupervisor:
    """Keeps a node's device link alive across device, bridge and server restarts."""

    def __init__(self, node: NodeService) -> None:
        self.node = node
        self.epoch = 0  # device life as seen by this node: +1 per recovery
        self.up = asyncio.Event()
        self.up.set()
        self.counters = RecoveryCounters()
        self.backoff = Backoff()
        self.token = 0
        self.mark: DeviceMark | None = None
        self._lock = asyncio.Lock()
        self._gen_epoch = 0
        self._gen_pairs = 0
        self.gen_no = 0  # generations started here (PeerDead markers name the one they end)
        self.gens_ended = 0  # and ended (a robust-mode PlAbort names the one it ends)
        self._gen_tmin: float | None = None
        self._gen_t0 = 0.0  # node time the running generation started
        #: the running generation adopted an early schedule whose command needed a retry
        #: (hwctl.node.physical): checked for a stray copy afterwards, as its own commands are
        self.early_retried = False
        #: the generation whose pair list the peer sent while ours ran, and whether a probe
        #: has passed since (:meth:`peer_finished`)
        self._peer_done = (-1, False)
        #: why the running generation's ESP Lock was released from outside it (the peer dead,
        #: restarted or failed; a robust-mode abort) and whether the peer is to be told: the
        #: generation's marker is queued, possibly behind a DONE the generation takes first
        #: (:meth:`released_by`); None: not released
        self.released: tuple[str, bool] | None = None

    # ------------------------------------------------------------------ set-up
    async def install(self) -> None:
        """Mark the device life we configure: a fresh SCRATCH token, then the marks."""
        b = self.node.backend
        assert b is not None
        # a schedule left running by an earlier life of this node (killed mid-generation) would
        # keep the device's FIFO busy for ever: stop it (this node owns the device)
        with contextlib.suppress(DeviceError):
            status = await b.read_reg(Reg.STATUS)
            if status >> StatusBit.RUNNING & 1:
                self.counters.stale_schedules += 1
                log.warning("%s: the device runs a schedule this node did not start (an earlier "
                            "life's): aborted", self.node.cfg.name)
            await b.abort()
        self.token = int.from_bytes(os.urandom(4), "big") | 1  # never 0 (a reset's value)
        await b.write_reg(Reg.SCRATCH, self.token)
        self.mark = await read_mark(b)

    def snapshot(self) -> dict:
        d = asdict(self.counters)
        d["device_up"] = self.up.is_set()
        d["epoch"] = self.epoch
        return d

    # ------------------------------------------------------------------ supervision
    async def supervise(self, loop_fn) -> None:
        """Run one of the node's device-facing loops; after a link failure recover the device
        and run it again (on the new backend)."""
        while True:
            epoch = self.epoch
            try:
                await loop_fn()
                return
            except DeviceError:
                raise  # a NAK is the device's answer, not a lost link
            except LinkError as exc:
                await self.lost(exc, epoch)

    async def watchdog(self) -> None:
        """Probe the device: one SCRATCH read per :data:`PROBE_S`. A timeout or a changed token
        is a lost device life (a served twin or bridge that went away gives no link error by
        itself: ZeroMQ reconnects quietly, commands just go unanswered)."""
        while True:
            await self.node._sleep(PROBE_S)  # the node's timed waits (hwctl.record taps them)
            await self.up.wait()
            b, epoch = self.node.backend, self.epoch
            if b is None:
                continue
            try:
                token = await b.read_reg(Reg.SCRATCH)
            except DeviceError:
                continue
            except LinkError as exc:
                await self.lost(exc, epoch)
                continue
            if token != self.token and epoch == self.epoch:
                await self.lost(LinkError(f"device restarted: SCRATCH token 0x{self.token:08x} "
                                          f"gone (reads 0x{token:08x})"), epoch)
                continue
            await self._check_generation(b, epoch)

    async def _check_generation(self, b: Backend, epoch: int) -> None:
        """At each probe, while a generation is in flight: is it waiting on events that will
        never come? Decided on the node's state and clock only (no link counters), so a
        recorded session replays the same commands (hwctl.record)."""
        node = self.node
        gen = self.gen_no
        if node._pl_rid is None:
            return
        done_gen, probed = self._peer_done
        if done_gen == gen:
            if not probed:  # give our DONE one probe period to follow the peer's pair list
                self._peer_done = (gen, True)
                return
            await self._drained(b)
            if self.gen_no == gen and node._pl_rid is not None:
                self._peer_done = (-1, False)
                node._events.put_nowait(ScheduleGone(
                    gen, node.counters.schedules, "schedule lost: the peer finished the "
                    "generation a probe ago, our DONE did not come"))
            return
        if node.now() - self._gen_t0 >= RECONCILE_AFTER_S:
            await self.reconcile(b, epoch)

    def peer_finished(self) -> None:
        """The peer's pair list of the running generation came while ours still runs. Both ends
        record the same heralds at the same cycles, so our schedule completed too: its DONE is
        on its way, or lost (a link outage). STATUS cannot tell: a SCHEDULE_PAIRS retried
        across a bridge restart runs twice, and the copy, alone on its grid once the peer is
        done, keeps RUNNING for 2^32-1 attempts. So when our DONE has not come by the probe
        after next, the generation ends (``schedule lost``; the device's schedule is aborted,
        the request runs again)."""
        if self._peer_done[0] != self.gen_no:
            self._peer_done = (self.gen_no, False)

    @staticmethod
    async def _drained(b: Backend) -> None:
        """Let the event pump hand over the events the backend holds (woken when they came, it
        takes the whole queue in one step): a marker queued after this goes behind every event
        received so far. A fixed number of yields, not a look at the backend's queue, so a
        recorded session replays the same task steps (hwctl.record)."""
        for _ in range(3):
            await asyncio.sleep(0)

    async def reconcile(self, b: Backend, epoch: int) -> bool:
        """A generation in flight for :data:`RECONCILE_AFTER_S` or more: events of it may be
        gone (a link outage, lost or bad frames), above all its DONE, which nothing would ever
        repeat (seen: node A BUSY for ever after its board bridge was killed and restarted
        within A's command retries, 1 run in 6). Read the device's STATUS: a schedule RUNNING
        will still send its DONE; no schedule and no event pending (EVT_PENDING clear) means
        the schedule ended or was lost unseen (on an ordered link its DONE would have come
        before the STATUS answer): a :class:`ScheduleGone` marker goes behind the events
        already received, and the generation ends with that reason and runs again
        (:meth:`screen`). Returns False when STATUS cannot tell yet (events still pending on
        the device)."""
        node = self.node
        if node._pl_rid is None:
            return True  # no generation in flight: nothing waits on the device
        gen, sched0 = self.gen_no, node.counters.schedules
        self.counters.reconciles += 1
        try:
            status = await b.read_reg(Reg.STATUS)
        except DeviceError:
            return True  # a device without STATUS: nothing to reconcile with
        except LinkError as exc:
            await self.lost(exc, epoch)  # the generation ends on the DeviceLost marker
            return True
        if status >> StatusBit.RUNNING & 1:
            return True  # its DONE will come
        if status >> StatusBit.EVT_PENDING & 1:
            return False  # the device still holds events (perhaps the DONE): look again
        await self._drained(b)  # every event sent before the STATUS answer is decoded by now
        if (self.gen_no == gen and node.counters.schedules == sched0
                and node._pl_rid is not None and self.epoch == epoch):
            node._events.put_nowait(ScheduleGone(
                gen, sched0, "schedule lost: the device is idle and its DONE never came"))
        return True

    async def lost(self, exc: BaseException, epoch: int) -> None:
        """The device of life ``epoch`` failed: recover it (once, whoever reports first); the
        other reporters wait until it is back."""
        async with self._lock:
            if self.epoch != epoch:
                return  # already recovered by another loop
            node, c = self.node, self.counters
            self.up.clear()
            t0 = node.now()
            c.device_lost += 1
            c.last_reason = str(exc)[:200]
            log.warning("%s: device %s lost (%s); reconnecting", node.cfg.name, node.cfg.backend,
                        c.last_reason)
            node._events.put_nowait(DeviceLost(epoch, c.last_reason))
            old = node.backend
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.close()
            await self._reconnect()
            c.downtime_s += node.now() - t0
            self.epoch += 1
            self.backoff.reset()
            self.up.set()
            log.warning("%s: device back after %.2f s (%s), clock %s", node.cfg.name,
                        node.now() - t0, "restarted" if c.last_reason.startswith("restart")
                        else "same life", node.clock_sync)

    async def _reconnect(self) -> None:
        node, c = self.node, self.counters
        while True:
            delay = self.backoff.next()
            c.reconnect_attempts += 1
            await node._sleep(delay)
            try:
                b = await node._open_backend(node.cfg.backend)
            except (LinkError, UserError, OSError) as exc:
                log.info("%s: reconnect attempt %d failed (%s); next in %.2f s", node.cfg.name,
                         c.reconnect_attempts, exc, min(self.backoff.hi, delay * 2))
                continue
            try:
                await self._resync(b)
                return
            except LinkError as exc:
                log.info("%s: device answered, then failed during re-sync (%s)", node.cfg.name, exc)
                with contextlib.suppress(Exception):
                    await b.close()

    async def _resync(self, b: Backend) -> None:
        """Re-read the device's identity and clock, re-apply the configuration, reconcile."""
        node, c = self.node, self.counters
        b.header_blocks = True
        node.backend = b
        mark = await read_mark(b)
        why = restart_reason(self.mark, mark, self.token)
        if why is not None:
            c.device_restarts += 1
            c.last_reason = f"restarted: {why}"
            held = node._slots.n_held + node._slots.n_pending
            if held:
                from hwctl.slots import SlotBook

                c.slots_lost += held
                node._slots = SlotBook()  # the restarted device freed every slot
            log.warning("%s: device restarted (%s): its schedules, slots and events are gone",
                        node.cfg.name, why)
        else:
            c.path_restarts += 1
            with contextlib.suppress(DeviceError):
                await b.abort()  # the same life: stop the schedule of the ended generation
        await node._sync_clock()
        reclaim = getattr(node, "_reclaim_slots", None)  # HEADERs sent while we were away
        if reclaim is not None:
            await reclaim()
        late_join_on = getattr(node, "_late_join_on", None)  # CONTROL.LATE_JOIN, as at start
        if late_join_on is not None:
            await late_join_on()
        hp = getattr(node, "hdrpath", None)
        if hp is not None:  # block mode (hwctl.hdrpath): ring mirror, pins, CONTROL.HDR_BLOCK
            if why is not None:
                try:
                    n_slots = await b.read_reg(Reg.N_SLOTS)
                except DeviceError:  # (block mode needs wire v4, which has it)
                    n_slots = hp.decoder.n_slots
                hp.device_restarted(n_slots)
                node._vrf_apply()  # the discards (DISCARD notices to the partner follow)
            await hp.reapply(b, restarted=why is not None)
            log.warning("%s: block mode re-applied (%s)", node.cfg.name, hp.losses)
        reenable = getattr(node, "reenable_headers", None)  # the go's HEADER_EN, on the new life
        if why is not None and reenable is not None and await reenable(b):
            c.headers_reenabled += 1
            log.warning("%s: CONTROL.HEADER_EN on again on the restarted device (the go had run)",
                        node.cfg.name)
        self.token = int.from_bytes(os.urandom(4), "big") | 1
        await b.write_reg(Reg.SCRATCH, self.token)
        self.mark = await read_mark(b)

    # ------------------------------------------------------------------ generations
    def screen(self, ev: object, peer: str) -> bool:
        """Called by the running generation for each queued item: raises
        :class:`GenerationFailed` when the item ends it; True when the item is a stale marker
        (skip it), False for a device event or ``pl`` message the generation handles."""
        t = type(ev)
        if t is DeviceLost:
            if ev.epoch >= self._gen_epoch:  # type: ignore[attr-defined]
                raise GenerationFailed(f"device lost: {ev.reason}", tell_peer=True)  # type: ignore[attr-defined]
            return True
        if t is PeerDead:
            if ev.peer == peer and ev.gen == self.gen_no:  # type: ignore[attr-defined]
                raise GenerationFailed(ev.reason, tell_peer=True)  # type: ignore[attr-defined]
            return True
        if t is ScheduleGone:
            if ev.gen == self.gen_no and ev.schedules == self.node.counters.schedules:  # type: ignore[attr-defined]
                self.counters.schedules_lost += 1
                raise GenerationFailed(ev.reason, tell_peer=True)  # type: ignore[attr-defined]
            return True  # an earlier generation's, or a schedule was sent since
        d = getattr(ev, "d", None)
        if d is not None:
            tm = d.get("tm")
            if tm is not None and tm != self._gen_tmin:
                self.node.counters.stale_msgs += 1  # queued for an earlier generation
                return True
            if "failed" in d and getattr(ev, "src", None) == peer:
                raise GenerationFailed(f"peer failed: {d['failed']}", tell_peer=False)
        return False

    def release(self, reason: str, *, tell_peer: bool) -> None:
        """The running generation's Lock was released outside it for ``reason`` (its marker
        queued with the device events): the first cause is kept."""
        if self.released is None:
            self.released = (reason, tell_peer)

    def released_by(self) -> GenerationFailed:
        """The failure of a generation that took its device's DONE after its Lock was released
        (the release's marker queued behind that DONE): the release's cause, so a dead peer's
        generation counts as ``peer dead`` whichever of the two came first."""
        reason, tell = self.released or ("peer released: the Lock went before the pairs were "
                                         "done", False)
        return GenerationFailed(reason, tell_peer=tell)

    def note_pairs(self, n: int) -> None:
        """The running generation holds ``n`` pairs (discarded if it fails)."""
        self._gen_pairs = n

    async def generate(self, req: Request, peer: str, t_min: float) -> None:
        """Run one generation (:meth:`NodeService._generate`) on a live device; when it fails,
        end it with a reason at both ends and hand the request back to ESP."""
        node = self.node
        await self.up.wait()
        self.gen_no += 1
        self._gen_epoch, self._gen_pairs, self._gen_tmin = self.epoch, 0, t_min
        self._gen_t0 = node.now()
        self.released = None
        epoch = self.epoch
        b0 = node.backend
        retries0 = self.link_retries(b0) if b0 is not None else 0
        mine = self.gen_no
        self.early_retried = False
        try:
            await node._generate(req, peer, t_min)
            if (b0 is not None and (self.link_retries(b0) > retries0 or self.early_retried)
                    and node.backend is b0):
                await self._stray_schedule(b0, mine)
            return
        except GenerationFailed as exc:
            reason, tell = exc.reason, exc.tell_peer
            if self.epoch == epoch and self.up.is_set() and node.backend is not None:
                # our device may still run this generation's schedule (2^32-1 attempts): the
                # next generation's would wait behind it in the device's FIFO for ever
                with contextlib.suppress(LinkError):
                    await node.backend.abort()
        except DeviceError:
            raise
        except LinkError as exc:
            reason, tell = f"device lost: {exc}", True
            await self.lost(exc, epoch)
        self.fail(req, peer, reason, tell_peer=tell)

    def link_retries(self, b: Backend) -> int:
        """The command retries of link ``b`` so far. A link counter, not node state: whether a
        command needed a retry depends on the machine's load (an answer later than the link's
        timeout), so :mod:`hwctl.record` records each reading as an input and the replay
        returns the recorded value (a replay whose device never retries skipped the STATUS
        read that followed a recorded retry and diverged: tests/test_record.py)."""
        return b.stats.retries

    def link_losses(self, b: Backend) -> int:
        """Frames from the device that link ``b`` lost so far (gaps in the event sequence and
        bad frames): a HEADER among them leaked its legacy-pool slot (node/verify.py
        ``_slot_check``). A link counter, recorded and replayed as :meth:`link_retries`."""
        return b.stats.events_lost + b.stats.rx_frame_errors

    async def _stray_schedule(self, b: Backend, mine: int) -> None:
        """A command of the generation just completed needed a retry. Through a board bridge
        that restarted in between, a retried SCHEDULE_PAIRS can run twice (the new bridge gives
        it a new device seq, so the device's retry memory cannot recognise it): the copy would
        hold the device's FIFO for 2^32-1 attempts and the next generation would wait behind it
        for ever. Nothing of ours runs now, so a running schedule is such a copy: aborted and
        counted (``stray_schedules``). One STATUS read, only after a retry.

        Only while no later generation of ours has started (``gen_no`` still ``mine``): ESP
        starts the next request as soon as this generation's attempts_finished is applied, and
        its SCHEDULE_PAIRS, running on the device, is no copy (aborting it stalled the node: seen
        as a hang of the bridge restart test, 1 in a few runs)."""
        if self.gen_no != mine:
            return
        with contextlib.suppress(DeviceError):
            status = await b.read_reg(Reg.STATUS)
            if status >> StatusBit.RUNNING & 1 and self.gen_no == mine:
                await b.abort()
                self.counters.stray_schedules += 1
                log.warning("%s: a schedule still ran after the generation completed (a command "
                            "repeated after a retry): aborted", self.node.cfg.name)

    def fail(self, req: Request, peer: str, reason: str, *, tell_peer: bool) -> None:
        node, c = self.node, self.counters
        c.count_failed(reason.split(":", 1)[0])
        c.pairs_discarded += self._gen_pairs
        log.warning("%s: request %d with %s: generation ended (%s); %d pair(s) discarded, "
                    "the request is run again", node.cfg.name, req.rid, peer, reason,
                    self._gen_pairs)
        if tell_peer:
            node._send_pl(peer, rid=req.rid, failed=reason[:120])
        release_generation(node, req.rid, self._gen_tmin)


def release_generation(node: NodeService, rid: int, t_min: float | None) -> None:
    """Tell the ESP core that the generation of ``rid`` started at ``t_min`` failed, unless its
    Lock is already gone (or is a newer Lock of the same request: the initiator may have run it
    again by the time the second report of the failure comes)."""
    lock = node.core.lock
    if lock is not None and lock.request.rid == rid and lock.t_min == t_min:
        node._apply(node.core.attempts_failed(rid, node.now()))


def peer_failed(node: NodeService, rid: int, tm: float | None, why: str = "") -> None:
    """A ``{rid, tm, failed}`` message for the generation running here: release the ESP Lock at
    once, before the next message on this link is handled (the initiator's new SYN for the same
    request follows right behind it; a Lock still held would refuse it as a duplicate). The
    running generation then ends on the same message (:meth:`DeviceSupervisor.screen`)."""
    if tm is None or tm == node._pl_tmin:
        node.recovery.release(f"peer failed: {why}"[:140], tell_peer=False)
        release_generation(node, rid, node._pl_tmin)


def peer_failed_queued(node: NodeService, src: str, rid: int, tm: float | None) -> bool:
    """A ``{rid, tm, failed}`` from ``src`` for the generation our ESP Lock holds, whose
    StartAttempts is still queued (the physical-layer loop has not taken it: it was still
    ending an earlier generation, e.g. reading STATUS of a device that went away). Release the
    Lock at once and skip the queued generation; True when that was the case.

    Without this the message waited in ``_pl_early`` for the queued generation, while the
    initiator's new SYN for the same request, right behind it on the link, met the old Lock and
    was dropped as a duplicate (paper-mode ESP retransmits nothing); the Lock went only when the
    queued generation ran and failed on the early message, leaving the initiator in SYN_SENT and
    this node IDLE for ever (docs/reliability.md, "Device restart recovery", step 5)."""
    lock = node.core.lock
    if (tm is None or lock is None or lock.peer != src or lock.request.rid != rid
            or lock.t_min != tm or (node._pl_rid == rid and node._pl_tmin == tm)):
        return False
    node._pl_skip.add((rid, tm))  # the pl loop skips its queued StartAttempts
    c = node.recovery.counters
    c.failed_before_start += 1
    c.count_failed("peer failed")
    log.warning("%s: request %d with %s: generation ended before it started here (peer failed)",
                node.cfg.name, rid, src)
    release_generation(node, rid, tm)  # the Lock checked above: released
    return True


class PeerLiveness:
    """Heartbeats to every peer, last sign of life from each, dead-peer release."""

    def __init__(self, node: NodeService) -> None:
        self.node = node
        self.incarnation = int.from_bytes(os.urandom(6), "big")
        now = node.now()
        self.last: dict[str, float] = {p.name: now for p in node.cfg.peers}  # (never heard:
        # not declared dead; nothing is held with a peer before its first heartbeat)
        self.alive: dict[str, bool] = {p.name: True for p in node.cfg.peers}
        self.inc: dict[str, int | None] = {p.name: None for p in node.cfg.peers}
        self.deaths: dict[str, int] = {p.name: 0 for p in node.cfg.peers}
        self.restarts: dict[str, int] = {p.name: 0 for p in node.cfg.peers}
        #: released at a death declaration since its incarnation was last heard: the restart
        #: that follows needs no second release (the new life may already hold our new SYN)
        self._released: dict[str, bool] = {p.name: False for p in node.cfg.peers}
        self._last_log = -1e9
        #: session per peer: this life of it acknowledged our incarnation (``acked``: its ESP
        #: messages are taken in) and has since (``send_ok``: ours go out; held before, and
        #: after it was declared dead). A message queued in ZeroMQ for a peer's dead life never
        #: reaches its new life's core, and a peer wrongly declared dead loses nothing
        self.acked: dict[str, bool] = {p.name: False for p in node.cfg.peers}
        self.send_ok: dict[str, bool] = {p.name: False for p in node.cfg.peers}
        self._outbox: dict[str, list[bytes]] = {p.name: [] for p in node.cfg.peers}
        #: paper mode: SYNs sent again per peer (:meth:`resend_syn`), and the last one's (rid, time)
        self.syn_resends: dict[str, int] = {p.name: 0 for p in node.cfg.peers}
        self._syn_resent: tuple[int, float] | None = None
        #: our own liveness ticks (:meth:`declare_dead` calls), the node time of the last one,
        #: the tick that ended our loop's last stall, and the tick count at each peer's last message
        self.ticks = 0
        self._tick_t: float | None = None
        self._stall_tick = 0
        self._heard_tick: dict[str, int] = {p.name: 0 for p in node.cfg.peers}

    def heard(self, src: str) -> None:
        """Any checked message from ``src``."""
        self.last[src] = self.node.now()
        self._heard_tick[src] = self.ticks
        if not self.alive[src]:
            self.alive[src] = True
            log.warning("%s: peer %s is back", self.node.cfg.name, src)

    def heartbeat(self, src: str, payload: bytes) -> str | None:
        """A ``hb`` message; returns a drop cause when it is malformed."""
        try:
            d = json.loads(payload)
        except ValueError:
            return "hb_not_json"
        if not isinstance(d, dict) or "inc" not in d or not set(d) <= {"inc", "ack"} \
                or any(type(v) is not int or not 0 <= v < 2**63 for v in d.values()):
            return "hb_bad_shape"
        old = self.inc[src]
        new_life = old != d["inc"]
        if new_life:
            self.inc[src] = d["inc"]
            self.acked[src] = self.send_ok[src] = False
            if old is not None:
                self.restarts[src] += 1
                if not self._released[src]:
                    self._outbox[src].clear()  # composed for the old life: released below
                    self._release(src, "peer restarted")
            self._released[src] = False
        acked = d.get("ack") == self.incarnation
        if new_life or not acked:
            self.beat(src)  # at once: the session is up in one and a half round trips
        if acked:
            self.acked[src] = True
        if acked and not self.send_ok[src]:
            self.send_ok[src] = True
            held, self._outbox[src] = self._outbox[src], []
            for payload in held:  # after our heartbeat: the peer knows our life first
                self.node._send(src, K_ESP, payload)
        return None

    def hold(self, peer: str, payload: bytes) -> bool:
        """An ESP message for ``peer`` while no session is up (its life unknown, or it has not
        acknowledged ours): kept until it is, at most :data:`OUTBOX`; False when full."""
        box = self._outbox[peer]
        if len(box) >= OUTBOX:
            return False
        box.append(payload)
        return True

    def _release(self, peer: str, reason: str) -> None:
        from hwctl.protocols.esp import EspNode

        node = self.node
        now = node.now()
        if now - self._last_log >= 1.0:  # counted always (deaths, restarts), logged <= 1/s
            self._last_log = now
            # "peer A dead: silent 3.2 s" / "peer A restarted": the name first, then the reason
            log.warning("%s: peer %s %s: releasing what it held", node.cfg.name, peer,
                        reason.removeprefix("peer "))
        if node._pl_rid is not None and node._pl_peer == peer:  # its generation ends
            node._events.put_nowait(PeerDead(peer, reason, node.recovery.gen_no))
            node.recovery.release(reason, tell_peer=True)
        # the robust core's release path (EspNode, docs/reliability.md "Restart recovery")
        release = getattr(EspNode, "_peer_restarted", None)
        process = getattr(EspNode, "_process", None)
        if release is not None and process is not None:
            now = node.now()
            # release, then poll Q_main (the released requests go out again; in paper mode
            # nothing else would poll it until the next message)
            node._apply(release(node.core, peer, now) + process(node.core, now))
        self._released[peer] = True

    def beat(self, only: str | None = None) -> None:
        """One heartbeat to every peer (or ``only``): our incarnation and the peer's as we know
        it (also sent at start, before any ESP message: a peer that knew an earlier life of this
        node releases what it held with it first)."""
        for p in self.node.cfg.peers:
            if only is None or p.name == only:
                payload = json.dumps({"inc": self.incarnation,
                                      "ack": self.inc[p.name] or 0}).encode()
                self.node._send(p.name, K_HB, payload)

    def resend_syn(self, now: float) -> bool:
        """Paper mode (no retransmission in the ESP core): our SYN unanswered for
        :data:`SYN_RESEND_S` while its peer is alive (heard within half the death bound) and in
        session is sent again (counted in
        ``syn_resends``, at most once per :data:`SYN_RESEND_S`); True when it was.

        Within a session the ordered link loses nothing, but the peer may have *refused* the SYN:
        a Lock it still held for the same request (a ``duplicate SYN``) left this node in SYN_SENT
        and the peer IDLE for ever, both heartbeating (docs/reliability.md, the lab-restart
        stall). Sending it again is safe: a peer that still holds that Lock refuses it again
        (counted there); one that answered it already answered first on the ordered link, and an
        answer to the copy after ours is "unexpected" here (a SYNACK is NACKed, releasing the
        peer's Lock); an IDLE peer answers it."""
        core = self.node.core
        item = core.s_sent
        if core.arq is not None or item is None or item.request is None:
            return False
        req = item.request
        peer = req.remote
        rec = self.node.records.get(req.rid)
        if rec is None or rec.t_syn is None or not self.send_ok[peer] or not self.alive[peer]:
            return False
        if now - self.last[peer] > PEER_DEAD_S / 2:
            return False  # a silent peer: its death declaration releases the SYN instead
        last = rec.t_syn
        if self._syn_resent is not None and self._syn_resent[0] == req.rid:
            last = max(last, self._syn_resent[1])
        if now - last < SYN_RESEND_S:
            return False
        from hwctl.protocols.esp import EspMessage, MsgType

        self._syn_resent = (req.rid, now)
        self.syn_resends[peer] += 1
        log.warning("%s: SYN of request %d unanswered by %s for %.1f s: sent again",
                    self.node.cfg.name, req.rid, peer, now - rec.t_syn)
        self.node._send(peer, K_ESP, EspMessage(MsgType.SYN, core.name, peer, req.rid,
                                                 request=req).to_bytes())
        return True

    def declare_dead(self, now: float) -> list[str]:
        """One liveness tick at node time ``now`` (passed in: tests give a virtual time): declare
        dead every peer we have heard from (a known incarnation) that has been silent for more
        than :data:`PEER_DEAD_S`, releasing what it held; returns their names.

        The silence alone is not enough: our own loop may have stalled (a starved process, a
        long callback) while the peer's heartbeats waited in our socket unread. So the verdict
        also needs :data:`DEAD_TICKS` of our ticks since the peer's last message *and* since our
        last stall (a tick more than :data:`STALL_S` after the previous one): the loop, its
        receive loop included, ran that long since it resumed, and a live peer's queued
        heartbeats have been read by then. A local stall therefore never kills a live peer; with
        the loop running, a dead peer is still declared at the first tick past the bound (the
        bound plus at most a tick); after a stall of ours, :data:`DEAD_TICKS` ticks later."""
        self.ticks += 1
        if self._tick_t is not None and now - self._tick_t > STALL_S:
            self._stall_tick = self.ticks  # our loop did not run for a while: look again later
        self._tick_t = now
        dead = []
        for name, t in self.last.items():
            ran = self.ticks - max(self._heard_tick[name], self._stall_tick)
            if (self.alive[name] and self.inc[name] is not None and now - t > PEER_DEAD_S
                    and ran >= DEAD_TICKS):
                self.alive[name] = False
                self.send_ok[name] = False  # what we send now waits for its (next) life
                self.deaths[name] += 1
                self._release(name, f"peer dead: silent {now - t:.1f} s")
                dead.append(name)
        return dead

    async def run(self) -> None:
        node = self.node
        while True:
            self.beat()
            now = node.now()
            self.declare_dead(now)
            self.resend_syn(now)  # after the death declarations (a dead peer's SYN is released)
            await node._sleep(HEARTBEAT_S)

    def snapshot(self) -> dict:
        now = self.node.now()
        return {n: {"alive": self.alive[n], "session": self.send_ok[n],
                    "silent_s": round(now - self.last[n], 3), "deaths": self.deaths[n],
                    "restarts": self.restarts[n], "held": len(self._outbox[n]),
                    "syn_resends": self.syn_resends[n]}
                for n in self.last}
