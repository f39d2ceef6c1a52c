"""Verification driver: HEADERs / HDR_BLOCKs to :class:`hwctl.protocols.verification.VerificationCore`
(pair-verification paper §II-C2) and its actions carried out (partner messages, slot frees, pairs)."""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from hwctl.errors import DeviceError, LinkTimeout
from hwctl.hdrpath import BATCH_BLOCKS, BATCH_WAIT_S
from hwctl.node.limits import K_VRF
from hwctl.protocols.verification import (
    FreeSlots,
    HeaderRejected,
    PairsDiscarded,
    PairsRevoked,
    PairsVerified,
    SendToPartner,
)
from hwctl.transport.backend import Backend, OrderedResponse
from hwctl.wire import (
    FREE_MASK_BITS,
    ControlBit,
    FeatureBit,
    HdrBlock,
    Header,
    Reg,
    StatusBit,
    free_masks,
)
from hwctl.wire.bulk import HeaderBlock

log = logging.getLogger("hwctl.node")

#: STATUS reads waiting for the device's event FIFO to drain before the reclaim (then skipped)
RECLAIM_DRAIN_TRIES = 50
#: the legacy pool's slot check (_slot_watch) runs once per verification timeout, within these (s)
SLOT_CHECK_MIN_S, SLOT_CHECK_MAX_S = 0.05, 1.0


class VerificationDriver:
    """Pair verification of a :class:`NodeService` (pair-verification paper §II-C2): HEADERs and HDR_BLOCKs to the verification core, its actions, slot frees."""

    def _vrf_apply(self) -> None:
        """Carry out the verification core's actions (paper §II-C2 steps 2-6)."""
        assert self.vcore is not None
        for act in self.vcore.drain():
            t = type(act)
            if t is SendToPartner:
                assert self.partner is not None
                self._send(self.partner, K_VRF, act.data)
            elif t is FreeSlots and self.hdrpath is not None:
                self.hdrpath.release(act.slots)  # ring slots expire; only our pins are undone
            elif t is FreeSlots:
                bad = self._slots.release(act.slots)
                self._free_wake.set()
                if bad:
                    self.counters.double_free += bad
                    log.error("%s: verification core freed %d slot(s) not held", self.cfg.name, bad)
            elif t is PairsVerified:
                self._pairs.append(act)
                if self.hdrpath is not None and self.hdrpath.hold_s:
                    self.hdrpath.hold(act.slots, act.seqs, self.now())
            elif t is HeaderRejected:
                log.warning("%s: HEADER seq %d rejected (duplicate or backwards)", self.cfg.name, act.seq)
            elif t in (PairsDiscarded, PairsRevoked):
                pass  # counted in vcore.metrics (discards by cause, revoked)
        self._vwake.set()

    def _on_header(self, ev: Header) -> None:
        if self.hdrpath is not None:  # a restarted device before block mode is on again
            self.hdrpath.stray_headers(1)
            return
        self._hold(np.array([ev.slot], dtype=np.int64), ev.seq)
        self._max_ts = max(self._max_ts, ev.ts)
        if self.vcore is not None:
            self.vcore.handle_header(ev.seq, ev.ts, ev.slot)  # O(1); may move the core's timer
            self._vwake.set()

    def _on_headers(self, b: HeaderBlock) -> None:
        """A run of HEADERs decoded in bulk (the path that keeps pace with a 1.3 MHz source)."""
        if self.hdrpath is not None:  # a restarted device before block mode is on again
            self.hdrpath.stray_headers(int(b.slot.size))
            return
        self._hold(b.slot, int(b.seq[0]))
        self._max_ts = max(self._max_ts, int(b.ts[-1]))
        if self.vcore is not None:
            self.vcore.handle_headers(b.seq, b.ts, b.slot)
            self._vwake.set()

    def _on_block_event(self, ev: HdrBlock | OrderedResponse) -> None:
        """Block mode: HDR_BLOCKs are decoded in batches (when the event queue runs dry or a batch
        is full), pin responses at their place in the stream (hwctl.hdrpath)."""
        hp = self.hdrpath
        if hp is None:
            self.counters.device_errors += 1  # block events without block mode: count, ignore
            return
        if type(ev) is OrderedResponse:
            self._flush_blocks()  # the blocks before the pin change, then the change
            hp.on_ordered(ev)
            return
        hp.on_block(ev)
        if hp.pending() >= BATCH_BLOCKS:
            self._flush_blocks()
        elif not self._block_timer:  # a few blocks: gather them for up to BATCH_WAIT_S
            self._block_timer = True
            self._call_later(BATCH_WAIT_S, self._flush_blocks)

    def _flush_blocks(self) -> None:
        hp = self.hdrpath
        self._block_timer = False
        if hp is None or not hp.pending():
            return
        self.counters.headers += hp.flush(self.clock.cycle_at(self.now()))
        self._max_ts = max(self._max_ts, hp.max_ts)
        if self.vcore is not None:
            self._vrf_apply()

    async def _app_loop(self) -> None:
        """Block mode with ``hold_s``: the application takes held pairs (hwctl.hdrpath), in a task
        of the node with the node's clock and waits (so hwctl.record records and replays it)."""
        assert self.hdrpath is not None
        await self.hdrpath.app_loop(self.now, self._take, self.recovery.up, self._sleep)

    def _take(self, seqs: np.ndarray) -> None:
        """The application takes held verified pairs (block mode, ``hold_s``)."""
        if self.vcore is not None:
            self.vcore.release(seqs.tolist())
            self._vrf_apply()

    def _hold(self, slots: np.ndarray, seq0: int) -> None:
        self.counters.headers += int(slots.size)
        conflicts = self._slots.allocated(slots)
        if conflicts:
            self.counters.slot_conflicts += conflicts
            log.error("%s: %d HEADER(s) from seq %d in slots still held", self.cfg.name, conflicts, seq0)
        if self.vcore is None:
            # no verification partner configured: nothing will match, hand the slots back
            self._slots.release(slots)
            self._free_wake.set()

    async def _vrf_timer_loop(self) -> None:
        """Drive the verification core's timer (device ticks) like the ESP one (node seconds)."""
        core = self.vcore
        assert core is not None
        while True:
            self._vwake.clear()
            t = core.get_timer()
            if t is None:
                await self._vwake.wait()
                continue
            delay = self.clock.time_at(t) - self.now()
            if delay > 0:
                await self._wait(self._vwake, delay)
                continue
            # due by the host clock: never pass a tick before the deadline (rounding in the map)
            core.handle_timer(max(self.device_now(), t))
            self._vrf_apply()
            await asyncio.sleep(0)

    async def _free_loop(self) -> None:
        """Slots handed back to the device: everything queued so far, packed into FREE_MASK
        commands of up to 240 slots (one command in flight, as the link requires). A NAK (some
        slot not allocated: a bug somewhere) falls back to FREE per slot so the others are not
        lost, and counts the refused ones."""
        b = self.backend
        assert b is not None
        while True:
            await self._free_wake.wait()
            self._free_wake.clear()
            async with self._slot_lock:  # (a slot sweep counts what is allocated: _slot_check)
                while self._slots.n_pending:
                    for base, mask in free_masks(self._slots.take()):
                        n = mask.bit_count()
                        self._free_busy = n  # stays set if cancelled mid-command (then unknown)
                        try:
                            await b.free_mask(base, mask)
                            self.counters.slots_freed += n
                        except DeviceError as exc:
                            log.warning("%s: %s; freeing those %d slots one by one",
                                        self.cfg.name, exc, n)
                            await self._free_each(base, mask)
                        self._free_busy = 0

    async def _slot_watch(self) -> None:
        """Legacy pool, mid-run: one :meth:`_slot_check` per verification timeout (a HEADER lost
        then has had its slot held that long with no HEADER seen)."""
        assert self.vcore is not None
        cfg = self.vcore.config
        period = min(SLOT_CHECK_MAX_S, max(SLOT_CHECK_MIN_S, cfg.timeout_ticks / cfg.clock_hz))
        while True:
            await self._sleep(period)
            await self.recovery.up.wait()
            await self._slot_check()

    async def _slot_check(self) -> bool:
        """Has a HEADER been lost on the link since the slots were last reconciled? Its slot
        stays allocated on the device, and nobody would ever free it (the pool shrinks for good
        with every loss). Evidence: the link lost frames (an event-sequence gap, a bad frame;
        :meth:`~hwctl.recovery.DeviceSupervisor.link_losses`) since the last reclaim. Then one
        SLOTS_FREE read: ``pool_slots`` - SLOTS_FREE - held - queued > 0 means a slot the node
        does not know of (or a HEADER still on its way), and the start's reclaim runs
        (:meth:`_reclaim_slots`: HEADER_EN off, events drained, only slots no HEADER gave us are
        freed), counted ``slot_sweeps``. A loss of any other frame costs that one read. Holds
        the slot lock, so no FREE of ours is on its way meanwhile. True when it swept."""
        v, b = self.cfg.verification, self.backend
        if v is None or not v.pool_slots or self.hdrpath is not None or b is None:
            return False
        lost = self.recovery.link_losses(b)
        seen = self._loss_seen
        if seen is not None and seen[0] is b and seen[1] == lost:
            return False
        async with self._slot_lock:
            book = self._slots
            try:
                short = v.pool_slots - await b.read_reg(Reg.SLOTS_FREE) - book.n_held - book.n_pending
            except DeviceError:
                return False
            if short <= 0:  # every allocated slot is one we hold or queued: nothing leaked
                self._loss_seen = (b, lost)
                return False
            self.counters.slot_sweeps += 1
            try:
                await self._reclaim_slots()
            except DeviceError as exc:  # a refused command: counted, the node goes on (the
                self.counters.device_errors += 1  # next loss tries again)
                log.warning("%s: slot sweep stopped (%s)", self.cfg.name, exc)
            return True

    async def _reclaim_slots(self) -> None:
        """Free the legacy pool's slots this node never heard of (docs/node.md, "Slots at
        start"). The header decoder runs from reset: HEADERs the device sent before the node
        opened its link (or while the port's input was flushed at the open) are lost, but their
        slots stay allocated, and a pool full of them starves the node for good (every header
        NO_SLOT). Called at start and after a reconnect, before the event pump runs: HEADER_EN
        off, the device's event FIFO drained, the HEADERs already received handed to the core
        (their slots are ours), then every allocated slot not in the book is freed. How many:
        ``pool_slots`` - SLOTS_FREE - held - queued; which: the allocator takes the lowest free
        slot, so the lowest unheld slots are tried first in one FREE_MASK per 240, and a NAK
        (all or nothing) is halved until the count is reached. HEADER_EN is then restored.
        The whole HEADER_EN-off window holds the node's CONTROL lock (``_ctl_lock``), which
        :meth:`enable_headers` takes too: the demo's go cannot turn headers on in the middle of
        a drain, nor a reclaim start while a go is between its read and its write. A restore
        that does not reach the device (the link broke mid-sweep; the same device life comes
        back) is owed (``_headers_owed``): the reconnect's reclaim finds HEADER_EN off and turns
        it on (before, it restored what it found, off, and the node never saw a header again).
        Mid-run after a HEADER was lost on the link (:meth:`_slot_check`) the same, with the
        event pump running (a HEADER it hands over meanwhile is in the book before the count).
        Block mode needs none of this (ring slots expire; pins are the host's own)."""
        v = self.cfg.verification
        b = self.backend
        if v is None or not v.pool_slots or self.hdrpath is not None or b is None:
            return
        feats = getattr(b, "features", None)
        if feats is not None and not feats >> FeatureBit.HEADERS & 1:
            return  # no legacy pool on this bitstream
        async with self._ctl_lock:
            await self._reclaim_headers_off(b, v.pool_slots)

    async def _reclaim_headers_off(self, b: Backend, pool_slots: int) -> None:
        """:meth:`_reclaim_slots` with the CONTROL lock held."""
        bit = 1 << ControlBit.HEADER_EN
        try:
            ctl = await b.read_reg(Reg.CONTROL)
            on = bool(ctl & bit) or self._headers_owed  # the state to leave (the owed one)
            if ctl & bit:
                await b.write_reg(Reg.CONTROL, ctl & ~bit)
                self._headers_owed = True  # until the restore is on the device
        except DeviceError as exc:
            log.warning("%s: slot reclaim skipped (%s)", self.cfg.name, exc)
            return
        try:
            for _ in range(RECLAIM_DRAIN_TRIES):
                if not await b.read_reg(Reg.STATUS) >> StatusBit.EVT_PENDING & 1:
                    break
            else:
                log.warning("%s: event FIFO never drained; slot reclaim skipped", self.cfg.name)
                return
            while True:  # every HEADER sent so far is here now: the pump's work, done first
                try:
                    ev = await b.next_event(0)
                except LinkTimeout:
                    break
                self._device_event(ev)
            self._loss_seen = (b, self.recovery.link_losses(b))  # every loss so far: handled here
            book = self._slots
            unheard = (pool_slots - await b.read_reg(Reg.SLOTS_FREE) - book.n_held
                       - book.n_pending)
            if unheard > 0:
                cand = [s for s in range(min(pool_slots, 1 << 16))
                        if not book.held(s) and not book.pending(s)]
                got = await self._free_unheard(cand, unheard)
                self.counters.slots_reclaimed += got
                log.warning("%s: reclaimed %d of %d slot(s) allocated by HEADERs never received",
                            self.cfg.name, got, unheard)
        finally:
            if on:
                await b.write_reg(Reg.CONTROL, ctl | bit)
                self._headers_owed = False

    async def enable_headers(self) -> None:
        """CONTROL.HEADER_EN on (the demo's go: a lab whose header decoders start off), under
        the CONTROL lock a slot reclaim holds while it has HEADER_EN off (:meth:`_reclaim_slots`):
        it waits for a reclaim's restore instead of landing in its drain."""
        b = self.backend
        assert b is not None
        self._headers_wanted = True  # on every later device life too (:meth:`reenable_headers`)
        async with self._ctl_lock:
            ctl = await b.read_reg(Reg.CONTROL)
            await b.write_reg(Reg.CONTROL, ctl | 1 << ControlBit.HEADER_EN)
            self._headers_owed = False

    async def reenable_headers(self, b: Backend) -> bool:
        """The end of the recovery's re-sync after a device restart (hwctl.recovery
        ``_resync``): a restarted device's HEADER_EN is at its reset value (off in a lab whose
        header decoders start off), so if the go ran (:meth:`enable_headers`) turn it on again,
        under the CONTROL lock. True when the go ran (the caller counts it)."""
        if not self._headers_wanted:
            return False
        async with self._ctl_lock:
            ctl = await b.read_reg(Reg.CONTROL)
            if not ctl >> ControlBit.HEADER_EN & 1:
                await b.write_reg(Reg.CONTROL, ctl | 1 << ControlBit.HEADER_EN)
            self._headers_owed = False
        return True

    async def _free_unheard(self, cand: list[int], want: int) -> int:
        """Free ``want`` allocated slots among ``cand`` (sorted, none held here): the lowest
        ``want`` first, then the rest; a refused FREE_MASK is halved. Returns how many."""
        b = self.backend
        assert b is not None

        def words(slots: list[int]) -> list[list[int]]:
            out: list[list[int]] = []
            for s in slots:
                if out and s - out[-1][0] < FREE_MASK_BITS:
                    out[-1].append(s)
                else:
                    out.append([s])
            return out

        stack = words(cand[want:])[::-1] + words(cand[:want])[::-1]  # popped lowest first
        got = 0
        while stack and got < want:
            part = stack.pop()
            base = part[0]
            try:
                await b.free_mask(base, sum(1 << (s - base) for s in part))
                got += len(part)
            except DeviceError:  # some slot in it is free: halve (single free slots end here)
                if len(part) > 1:
                    h = len(part) // 2
                    stack += [part[h:], part[:h]]
        return got

    async def _free_each(self, base: int, mask: int) -> None:
        b = self.backend
        assert b is not None
        for i in range(mask.bit_length()):
            if mask >> i & 1:
                try:
                    await b.free(base + i)
                    self.counters.slots_freed += 1
                except DeviceError as exc:
                    self.counters.device_errors += 1
                    log.warning("%s: %s", self.cfg.name, exc)

    def verification_summary(self) -> dict | None:
        """Metrics of the verification core (JSON-friendly), or None without one."""
        if self.vcore is None:
            return None
        v = self.cfg.verification
        assert v is not None
        self._vrf_settle()
        m = self.vcore.metrics
        c = self.counters
        return {
            "partner": v.partner, "memory": v.memory_model().name, "f_th": v.f_th,
            "timeout_s": self.vcore.config.timeout_ticks / self.vcore.config.clock_hz,
            "headers": m.headers, "missing_local": m.missing_local, "verified": m.verified,
            "verified_rate_hz": m.verified_rate(self.vcore.config.clock_hz),
            "discards": {k.name: n for k, n in m.discards.items()}, "revoked": m.revoked,
            "rejected_headers": m.rejected_headers, "repeated_discards": m.repeated_discards,
            "fidelity_mean": None if not m.verified else m.mean_fidelity,
            "fidelity_min": None if not m.verified else m.fidelity_min,
            "occupancy": m.occupancy, "max_occupancy": m.max_occupancy,
            "messages_sent": m.messages_sent, "bytes_sent": m.bytes_sent,
            "messages_received": m.messages_received,
            "no_slot": c.no_slot, "slots_freed": c.slots_freed, "slots_held": self._slots.n_held,
            "free_pending": self._slots.n_pending + self._free_busy, "double_free": c.double_free,
            "slot_conflicts": c.slot_conflicts, "slots_reclaimed": c.slots_reclaimed,
            "slot_sweeps": c.slot_sweeps,
        } | ({"block_path": self.hdrpath.summary()} if self.hdrpath is not None else {})

    def _vrf_settle(self) -> None:
        """Ingest the core's staged HEADERs and carry out what that decided (pairs, frees), before
        any result is read: a HEADER staged after the partner's report covering it (e.g. at the
        stop) is matched then, and pair_rows() and verification_summary() must both see it,
        whichever is read first (hwctl.node.proc sends the rows before the snapshot)."""
        if self.vcore is not None:
            self.vcore.ingest()
            self._vrf_apply()

    def pair_rows(self) -> list[dict]:
        """One row per verified pair: seq, slot, store/verify ticks (device), fidelity."""
        self._vrf_settle()
        rows = []
        for a in self._pairs:
            fid = a.fidelity.tolist() if a.fidelity is not None else [None] * len(a.seqs)
            for s, sl, st, vt, f in zip(a.seqs.tolist(), a.slots.tolist(), a.store_ts.tolist(),
                                        a.verify_ts.tolist(), fid, strict=True):
                rows.append({"node": self.cfg.name, "partner": self.partner, "seq": s, "slot": sl,
                             "store_ts": st, "verify_ts": vt, "fidelity": f})
        return rows

