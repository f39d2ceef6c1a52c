"""Block-mode header path of the node service (docs/header-path.md, wire v4, issue 14).

The node service (:mod:`hwctl.node`) hands this class the device's ``HDR_BLOCK`` events and the
:class:`~hwctl.transport.backend.OrderedResponse` markers of its pin commands, in stream order.
Batches of blocks are decoded with numpy (:class:`hwctl.hdrblock.BlockDecoder`) and given to the
verification core as arrays (pair-verification paper section II-C2 step 1); the photons each
arrival overwrote in its ring slot go to :meth:`VerificationCore.overwritten` (cause OVERWRITTEN
when still unverified). No per-photon Python loop: per batch a few numpy calls, per block a few
scalar steps.

Pins (section 3). With an application hold time (``hold_s`` > 0) the core keeps verified qubits
(``consume_on_verify`` off) until the application takes them: their slots are pinned in bulk
(``PIN_MASK``, 240 slots per command, one command in flight) and, once the application has taken
them ``hold_s`` later, unpinned (``UNPIN_MASK``). Every pin change closes the device's open block,
so pins cost line rate; with ``hold_s`` = 0 (the paper's section IV assumption: pairs are consumed
at verification) nothing is pinned and slots expire with the ring. The decoder's ring mirror
applies each change where its response sits on the event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import numpy as np

from hwctl.errors import DeviceError
from hwctl.hdrblock import BlockDecoder
from hwctl.protocols.verification import Cause, VerificationCore
from hwctl.transport.backend import Backend, OrderedResponse
from hwctl.wire import FREE_MASK_BITS, Ack, ControlBit, HdrBlock, PinMask, Reg, free_masks

log = logging.getLogger(__name__)

#: decode when this many blocks wait, or this long (s) after the first of a batch arrived:
#: one numpy decode per batch instead of per block. A batch costs ~100 us of numpy set-up
#: whatever its size, so the wait sets the host's CPU at the source rate: at 1.3 MHz and
#: p = 0.1 (2,700 blocks/s) 1 ms gathered ~3 blocks, 0.45 CPU-s per second of a node for the
#: decoding alone (load 12; `python -m benchmarks hdr_decode`), 4 ms gathers ~11, 0.15 CPU-s.
#: It adds <= 4 ms to the verification latency (the timeout is 119 ms, the ring wraps after
#: 63 ms at p = 0.1 of 1.3 MHz; benchmarks/RESULTS.md, hdr_block, seventh session).
BATCH_BLOCKS = 64
BATCH_WAIT_S = 0.004
#: pin / unpin changes are gathered this long (s) into bulk commands: each command closes the
#: device's open block, so fewer, fuller commands keep the blocks full
PIN_INTERVAL_S = 0.005


class BlockPath:
    """One node's block-mode header path: decoding, pins, application hand-over."""

    def __init__(self, vcore: VerificationCore | None, *, n_slots: int = 2048,
                 period: float = 77.0, hold_s: float = 0.0) -> None:
        self.vcore = vcore
        self.decoder = BlockDecoder(n_slots, period)
        self.hold_s = hold_s
        self._blocks: list[HdrBlock] = []
        self._pin_q: set[int] = set()
        self._unpin_q: set[int] = set()
        self._pinned = np.zeros(n_slots, dtype=bool)  # pinned by us (sent), until unpin is sent
        self._held: deque[tuple[float, np.ndarray]] = deque()  # (take at, seqs) for the app
        self.wake = asyncio.Event()
        self.max_ts = 0
        self.pins_sent = 0
        self.unpins_sent = 0
        self.pin_naks = 0
        self.taken = 0
        self.lag_max = 0  # device cycles from the newest arrival of a batch to its decoding
        self.lag_sum = 0
        self.lag_n = 0
        #: the device's BLOCK_FLUSH when block mode was switched on (re-applied after a restart)
        self.block_flush: int | None = None
        #: across device restarts and broken paths (docs/reliability.md, "Block mode across a
        #: device restart"): what was lost, what was re-applied
        self.losses = BlockLosses()

    # ------------------------------------------------------------------ events (stream order)
    def on_block(self, b: HdrBlock) -> None:
        self._blocks.append(b)

    def pending(self) -> int:
        return len(self._blocks)

    def on_ordered(self, ev: OrderedResponse) -> None:
        """A PIN/UNPIN response at its place on the stream: blocks before it, then the change."""
        self.flush()
        if not isinstance(ev.response, Ack):
            return
        c = ev.command
        slots = [c.base + i for i in range(c.mask.bit_length()) if c.mask >> i & 1]  # type: ignore[attr-defined]
        (self.decoder.pin if isinstance(c, PinMask) else self.decoder.unpin)(slots)

    def flush(self, now_cycle: int | None = None) -> int:
        """Decode the waiting blocks into the verification core; returns the arrivals.
        ``now_cycle`` (the device clock now): the age of the newest arrival is recorded (the
        decode lag: flush timer + line + host; it adds to the verification latency)."""
        if not self._blocks:
            return 0
        blocks, self._blocks = self._blocks, []
        a = self.decoder.decode(blocks)
        if len(a) and self.vcore is not None:
            # the photons they (and the arrivals of lost blocks) overwrote discarded in the
            # same step (max slots in use)
            ev = np.concatenate([a.evicted, a.unseen]) if a.unseen.size else a.evicted
            self.vcore.handle_headers(a.seq, a.ts, a.slot, ev)
        if len(a):
            self.max_ts = max(self.max_ts, int(a.ts[-1]))
            if now_cycle is not None:
                lag = now_cycle - int(a.ts[-1])
                self.lag_max = max(self.lag_max, lag)
                self.lag_sum += lag
                self.lag_n += 1
        return len(a)

    # ------------------------------------------------------------------ device lives
    def stray_headers(self, n: int) -> None:
        """Per-photon HEADER events in block mode: a restarted device streams them until
        CONTROL.HDR_BLOCK is set again. Their slots are the legacy pool's, not the ring's: not
        handed to the verification core, counted as lost arrivals."""
        self.losses.stray_headers += n

    def device_restarted(self, n_slots: int) -> None:
        """The device restarted (its ring, pins and stored photons are gone): decode what is left
        of the old life, discard every photon the old ring held in the verification core (cause
        DEVICE_LOST: a pending one's partner gets a DISCARD notice; a verified pair the
        application held is lost), forget our pins and the held pairs, and restart the mirror
        (the next block's ``blk`` starts a new count, its ``slot0`` must be 0). The caller then
        drains the core's actions and calls :meth:`reapply`."""
        self.flush()
        lo = self.losses
        lo.device_restarts += 1
        lo.pins_lost += int(self._pinned.sum()) + len(self._pin_q)
        held = [seqs for _, seqs in self._held]
        self._held.clear()
        occupants = self.decoder.restart(n_slots)
        if self.vcore is not None:
            d = self.vcore.metrics.discards
            n0 = d[Cause.DEVICE_LOST]
            if held:  # verified pairs the application still held (their slots were pinned)
                self.vcore.overwritten(np.concatenate(held), Cause.DEVICE_LOST)
            n1 = d[Cause.DEVICE_LOST]
            self.vcore.overwritten(occupants, Cause.DEVICE_LOST)  # not yet verified
            lo.pairs_lost += n1 - n0
            lo.arrivals_lost += d[Cause.DEVICE_LOST] - n1
        self._pin_q.clear()
        self._unpin_q.clear()
        self._pinned = np.zeros(self.decoder.n_slots, dtype=bool)

    async def reapply(self, backend: Backend, restarted: bool) -> None:
        """Re-apply the device configuration of block mode after a recovery: CONTROL.HDR_BLOCK
        (other bits kept) and BLOCK_FLUSH as they were at start. After a broken path (the same
        device life) our pins are asserted again (PIN_MASK is idempotent; a change whose answer
        was lost with the path is applied by the device and, through its ordered response, by
        the mirror), and if the device holds more pins than we know (an UNPIN_MASK lost with
        the path) every other slot is unpinned."""
        ctrl = await backend.read_reg(Reg.CONTROL)
        await backend.write_reg(Reg.CONTROL, ctrl | 1 << ControlBit.HDR_BLOCK)
        if self.block_flush is not None:
            with contextlib.suppress(DeviceError):
                if await backend.read_reg(Reg.BLOCK_FLUSH) != self.block_flush:
                    await backend.write_reg(Reg.BLOCK_FLUSH, self.block_flush)
        self.losses.reapplied += 1
        if restarted:
            return
        self.flush()
        mine = np.flatnonzero(self._pinned)
        for base, mask in free_masks(mine):
            r = await backend.pin_mask(base, mask)
            self.losses.pins_reasserted += mask.bit_count()
            if not isinstance(r, Ack):
                self.pin_naks += 1
        try:
            on_device = await backend.read_reg(Reg.CNT_PINNED)
        except DeviceError:
            return
        if on_device > mine.size:
            self.losses.unpin_sweeps += 1
            for base, mask in free_masks(np.flatnonzero(~self._pinned)):
                r = await backend.unpin_mask(base, mask)
                if not isinstance(r, Ack):
                    self.pin_naks += 1

    # ------------------------------------------------------------------ pins
    def hold(self, slots: np.ndarray, seqs: np.ndarray, now_s: float) -> None:
        """Verified qubits the application holds for ``hold_s``: pin their slots."""
        self._pin_q.update(slots.tolist())
        self._held.append((now_s + self.hold_s, seqs))
        self.wake.set()

    def release(self, slots: np.ndarray) -> None:
        """Slots the core let go (FreeSlots): unpin those we pinned; the others expire.
        Without pins (``hold_s`` = 0, the paper's consume-at-verification: every arrival's slot
        comes back here, ~130,000 a second at 1.3 MHz) nothing to do, without a Python step."""
        if not self._pin_q and not self._pinned[slots].any():
            return
        for s in slots.tolist():
            if s in self._pin_q:
                self._pin_q.discard(s)
            elif self._pinned[s]:
                self._unpin_q.add(s)
        if self._unpin_q:
            self.wake.set()

    def due(self, now_s: float) -> list[np.ndarray]:
        """Held seqs whose hold time is over (the application takes them now)."""
        out = []
        while self._held and self._held[0][0] <= now_s:
            out.append(self._held.popleft()[1])
        self.taken += sum(x.size for x in out)
        return out

    def next_due(self) -> float | None:
        return self._held[0][0] if self._held else None

    async def pin_loop(self, backend: Backend,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Pin / unpin queued slots in bulk, one command in flight (as the link requires).
        ``sleep``: the node's timed wait (so :mod:`hwctl.record` records and replays it)."""
        while True:
            await self.wake.wait()
            await sleep(PIN_INTERVAL_S)
            self.wake.clear()
            while self._pin_q or self._unpin_q:
                if self._pin_q:
                    slots = np.array(sorted(self._pin_q), dtype=np.int64)
                    self._pin_q.clear()
                    self._pinned[slots] = True
                    for base, mask in free_masks(slots):
                        r = await backend.pin_mask(base, mask)
                        self.pins_sent += mask.bit_count()
                        if not isinstance(r, Ack):
                            self.pin_naks += 1
                            log.warning("PIN_MASK(%d, ...) refused: %s", base, r)
                if self._unpin_q:
                    slots = np.array(sorted(self._unpin_q), dtype=np.int64)
                    self._unpin_q.clear()
                    self._pinned[slots] = False
                    for base, mask in free_masks(slots):
                        r = await backend.unpin_mask(base, mask)
                        self.unpins_sent += mask.bit_count()
                        if not isinstance(r, Ack):
                            self.pin_naks += 1
                            log.warning("UNPIN_MASK(%d, ...) refused: %s", base, r)

    async def app_loop(self, now: Callable[[], float], take: Callable[[np.ndarray], None],
                       device_up: asyncio.Event | None = None,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """The application: takes held pairs ``hold_s`` after verification (``take(seqs)``),
        only while the device is reachable (``device_up``): a qubit in a device that is gone
        cannot be used; if the device restarted, the pairs it held are counted as lost
        (:meth:`device_restarted`), else they are taken once it is back. ``sleep`` as in
        :meth:`pin_loop`."""
        while True:
            t = self.next_due()
            delay = 0.001 if t is None else max(0.0, t - now())
            await sleep(min(delay, 0.01))
            if device_up is not None:
                await device_up.wait()
            for seqs in self.due(now()):
                take(seqs)

    def summary(self) -> dict[str, int]:
        d = self.decoder.stats.as_dict()
        d.update(pins_sent=self.pins_sent, unpins_sent=self.unpins_sent, pin_naks=self.pin_naks,
                 pinned=int(self._pinned.sum()), taken=self.taken,
                 decode_lag_mean_cycles=self.lag_sum // max(1, self.lag_n),
                 decode_lag_max_cycles=self.lag_max)
        d.update(asdict(self.losses))
        return d


@dataclass
class BlockLosses:
    """Block mode across device restarts and broken paths (summary ``block_path``)."""

    device_restarts: int = 0  # restarts seen (ring, pins and photons gone)
    arrivals_lost: int = 0  # unverified photons the restarted device's ring held (DEVICE_LOST)
    pairs_lost: int = 0  # verified pairs the application held (pinned), gone with the restart
    pins_lost: int = 0  # pinned (or about to be) slots the restart freed
    stray_headers: int = 0  # per-photon HEADERs before HDR_BLOCK was set again (not used)
    reapplied: int = 0  # recoveries after which CONTROL.HDR_BLOCK / BLOCK_FLUSH were re-applied
    pins_reasserted: int = 0  # pins sent again after a broken path (same device life)
    unpin_sweeps: int = 0  # the device held more pins than we knew: every other slot unpinned
    #: pins the device held when this node started (a previous life's held pairs): unpinned
    stale_pins: int = 0


async def enable_blocks(backend: Backend, vcore: VerificationCore | None, source_hz: float,
                        hold_s: float = 0.0) -> BlockPath:
    """Switch the device to block mode (CONTROL.HDR_BLOCK, keeping its other bits: HEADER_EN
    stays as it is, e.g. off until every node of a lab is up) and return the path for it, sized
    by the device's N_SLOTS.

    A device that still holds pins (CNT_PINNED > 0: a previous node process's held pairs; a node
    restarted on a device that was not) has them all unpinned first, counted ``stale_pins``: this
    node knows none of them, so its ring mirror would give the arrivals stored past them the
    wrong slots (``slot_mismatches``) and nothing would ever unpin them (ring slots lost for
    good). The device's pin bitmap cannot be read over the wire: the whole ring is unpinned,
    240 slots per UNPIN_MASK (35 commands for 8192 slots), only when there are any. Their ordered
    answers reach the mirror through the event stream (no-ops there: it has no pins yet).

    A replay of a recording made before this read existed (:mod:`hwctl.record` format <= 3)
    skips it, as the recorded node did: its backend says ``reads_pins_at_start`` False. The
    recording holds no answer to give (inventing "0" would claim a device reading nobody made);
    skipping runs the recorded node's own path (it read nothing and unpinned nothing)."""
    n_slots = await backend.read_reg(Reg.N_SLOTS)
    ctrl = await backend.read_reg(Reg.CONTROL)
    path = BlockPath(vcore, n_slots=n_slots, period=backend.clock_hz / source_hz, hold_s=hold_s)
    with contextlib.suppress(DeviceError):
        path.block_flush = await backend.read_reg(Reg.BLOCK_FLUSH)
    stale = 0
    if getattr(backend, "reads_pins_at_start", True):
        with contextlib.suppress(DeviceError):  # (a bitstream without block mode: no pins)
            stale = await backend.read_reg(Reg.CNT_PINNED)
    if stale:
        path.losses.stale_pins += stale
        log.warning("block mode: the device holds %d pin(s) of an earlier node; unpinning the "
                    "ring", stale)
        for base in range(0, n_slots, FREE_MASK_BITS):
            r = await backend.unpin_mask(base, (1 << min(FREE_MASK_BITS, n_slots - base)) - 1)
            if not isinstance(r, Ack):
                path.pin_naks += 1
    await backend.write_reg(Reg.CONTROL, ctrl | 1 << ControlBit.HDR_BLOCK)
    return path
