"""Host side of block mode (docs/header-path.md, wire v4): HDR_BLOCK events -> arrays, vectorised.

Sans-IO, below the services layer. :class:`BlockDecoder` turns a batch of
:class:`~hwctl.wire.HdrBlock` events into arrays (seq, ts, slot) of every arrival, in arrival
order, the input of :meth:`hwctl.protocols.verification.VerificationCore.handle_headers`
(pair-verification paper section II-C2 step 1, at the section IV source rate):

- entries: numpy over a (blocks x 49) matrix (the first arrival and the 48 entry bytes): skips and
  gaps by a row-wise cumulative sum, arrivals by a mask;
- timestamps, to the device cycle (section 2): arrival i is the value with ``ts & 7 == ph`` nearest
  to ``ts_{i-1} + (s_i - s_{i-1}) * P``, one vector step per entry column across the batch, with P
  the source period: the configured one, refined from the blocks' (seq0, ts0) anchors;
- slots (section 3): a mirror of the ring and its pins reproduces every slot from ``slot0``; the
  mirror's prediction of each ``slot0`` is checked (``slot_mismatches``; it then resynchronises at
  slot0) unless blocks were lost just before;
- losses: a gap in ``blk`` counts lost blocks and marks the pulses from the previous block's last
  arrival to this block's first as unknown (``unknown_ranges``): never guessed as lost or arrived;
  ``bad`` adds to the malformed-header count; a block that violates the format is counted
  (``malformed``) and treated like a lost one (its pulses unknown, its arrivals' slots too);
- ``evicted``: the 32-bit seq of the photon each arrival overwrote in its slot (-1: none known),
  so the verification core can discard still-unverified ones with cause OVERWRITTEN; ``unseen``:
  the photons the arrivals of lost or malformed blocks overwrote (the unpinned slots between the
  previous good block's last slot and the next good block's ``slot0``: slots are implicit, so
  the ring position is recovered there whatever the blocks in between said; every unpinned slot
  when the blocks in between could have held a whole ring's worth), which the core must discard
  too.

Pin changes are applied with :meth:`BlockDecoder.pin` / :meth:`BlockDecoder.unpin` at their place
in the event stream (the device orders the PIN_MASK / UNPIN_MASK response after the blocks queued
before it): decode the blocks before the response, apply the change, go on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hwctl.wire import HdrBlock

ENTRY_BYTES = 48
SKIP_G = 31
MAX_GAP = 4 * SKIP_G
U32 = 0xFFFF_FFFF
SEQ_MOD = 1 << 32
#: anchors at least this many pulses apart refine the period estimate (with +-1 cycle of jitter
#: the estimate is then within 2/128 cycle: inside the contract's 1/63 for 125-pulse steps)
MIN_BASELINE = 128


@dataclass(frozen=True, slots=True)
class Arrivals:
    """Every arrival of a batch of blocks, in order: 32-bit seq, device ts, ring slot, and the
    seq of the photon the arrival overwrote in that slot (-1 if none known)."""

    seq: np.ndarray  # int64, 0..2^32-1
    ts: np.ndarray  # int64
    slot: np.ndarray  # int64
    evicted: np.ndarray  # int64, -1: nothing known overwritten
    #: seqs of photons that arrivals of lost blocks overwrote (int64, any order)
    unseen: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.seq.size)


#: unknown seq ranges kept in :attr:`DecoderStats.unknown_ranges` (the most recent ones; the totals
#: are ``unknown_range_count`` and ``unknown_pulses``): a long run with many lost blocks must not
#: grow the decoder's memory
RECENT_RANGES = 64


def _recent_ranges() -> deque[tuple[int, int]]:
    return deque(maxlen=RECENT_RANGES)


@dataclass
class DecoderStats:
    blocks: int = 0
    arrivals: int = 0
    lost_blocks: int = 0  # blk gaps
    unknown_pulses: int = 0  # pulses in the ranges around lost blocks
    unknown_range_count: int = 0  # ranges of unknown pulses (each lost-block gap or restart)
    bad_headers: int = 0  # sum of the blocks' bad counts
    slot_mismatches: int = 0  # slot0 differed from the mirror's prediction
    malformed: int = 0  # blocks violating the format (counted, their pulses unknown)
    unseen_overwrites: int = 0  # known photons overwritten by arrivals of lost/malformed blocks
    #: the most recent RECENT_RANGES unknown ranges, (first, last) seq32, oldest first
    unknown_ranges: deque[tuple[int, int]] = field(default_factory=_recent_ranges)

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k != "unknown_ranges"}


def blocks_array(blocks: Sequence[HdrBlock]) -> dict[str, np.ndarray]:
    """Header fields and the (n, 48) entry-byte matrix of ``blocks``."""
    k = len(blocks)
    ent = np.frombuffer(b"".join(b.entries.to_bytes(ENTRY_BYTES, "big") for b in blocks),
                        dtype=np.uint8).reshape(k, ENTRY_BYTES)
    cols = np.array([(b.blk, b.seq0, b.ts0, b.slot0, b.n, b.used, b.bad) for b in blocks],
                    dtype=np.uint64).reshape(k, 7)
    return {"blk": cols[:, 0].astype(np.int64), "seq0": cols[:, 1].astype(np.int64),
            "ts0": cols[:, 2].astype(np.int64), "slot0": cols[:, 3].astype(np.int64),
            "n": cols[:, 4].astype(np.int64), "used": cols[:, 5].astype(np.int64),
            "bad": cols[:, 6].astype(np.int64), "entries": ent}


class BlockDecoder:
    """Decoder, ring mirror and loss accounting of one device's HDR_BLOCK stream."""

    def __init__(self, n_slots: int = 2048, period: float = 77.0) -> None:
        if n_slots < 1 or period <= 0:
            raise ValueError("n_slots must be >= 1 and period > 0")
        self.n_slots = n_slots
        self.period_cfg = float(period)
        self.period = float(period)  # current estimate (cycles per pulse)
        self.stats = DecoderStats()
        self._pinned = np.zeros(n_slots, dtype=bool)
        #: slots whose pin state changed since the last good block (:meth:`_lost_slots`)
        self._changed = np.zeros(n_slots, dtype=bool)
        self._any_changed = False
        self._free = np.arange(n_slots, dtype=np.int64)  # unpinned slots, ascending
        self._occupant = np.full(n_slots, -1, dtype=np.int64)  # seq32 last stored per slot
        self._last_blk: int | None = None
        self._unknown_pending = False  # a malformed block since the last good one
        #: blocks since the last good one whose arrivals took unknown slots (lost + malformed)
        self._pending_blocks = 0
        #: slot of the previous good block's last arrival (None: unknown, after a restart)
        self._prev_slot: int | None = None
        self._last_seq: int | None = None  # seq of the previous block's last arrival
        self._anchor: tuple[int, int] | None = None  # (ext seq, ts0) of the first anchor
        self._ext = 0  # extended seq of the latest anchor
        self._ext_last32: int | None = None
        self._expect_slot0: int | None = None  # after a device restart: the ring starts here
        #: this batch's lost-block overwrites: (block index, ring slots), in block order
        self._phantoms: list[tuple[int, np.ndarray]] = []

    # ------------------------------------------------------------------ device lives
    def restart(self, n_slots: int | None = None) -> np.ndarray:
        """The device restarted (docs/reliability.md, "Block mode across a device restart"): its
        ring is empty and unpinned, its block counter starts at 0 again and its first arrival
        takes slot 0. Resets the mirror (resized to ``n_slots``), expects the next block's
        ``blk`` without counting a gap and its ``slot0`` at 0 (checked: ``slot_mismatches``),
        and marks the pulses from the last arrival seen to the next block's first as unknown.
        Returns the seqs the old ring held (their photons are gone with the restart)."""
        held = self._occupant[self._occupant >= 0].copy()
        if n_slots is not None and n_slots != self.n_slots:
            if n_slots < 1:
                raise ValueError("n_slots must be >= 1")
            self.n_slots = n_slots
        self._pinned = np.zeros(self.n_slots, dtype=bool)
        self._changed = np.zeros(self.n_slots, dtype=bool)
        self._any_changed = False
        self._free = np.arange(self.n_slots, dtype=np.int64)
        self._occupant = np.full(self.n_slots, -1, dtype=np.int64)
        self._last_blk = None
        self._prev_slot = None
        self._pending_blocks = 0
        self._expect_slot0 = int(self._free[0])
        self._unknown_pending = self._last_seq is not None  # the downtime's pulses: unknown
        return held

    # ------------------------------------------------------------------ pins
    def pin(self, slots: np.ndarray | Sequence[int]) -> None:
        """A PIN_MASK took effect here in the stream (after its ACK)."""
        self._set(slots, True)

    def unpin(self, slots: np.ndarray | Sequence[int]) -> None:
        self._set(slots, False)

    def _set(self, slots, value: bool) -> None:
        s = np.asarray(slots, dtype=np.int64)
        self._pinned[s] = value
        self._changed[s] = True
        self._any_changed = True
        self._free = np.flatnonzero(~self._pinned)

    def _clear_changed(self) -> None:
        if self._any_changed:
            self._changed[:] = False
            self._any_changed = False

    @property
    def pinned_count(self) -> int:
        return int(self._pinned.sum())

    # ------------------------------------------------------------------ decoding
    def decode(self, blocks: Sequence[HdrBlock]) -> Arrivals:
        """Every arrival of ``blocks`` (consecutive events of one device, in order), vectorised
        across the blocks: Python steps per batch, not per block (per block only for a block
        whose ``slot0`` our mirror has pinned, which resynchronises the mirror)."""
        return self._decode(blocks, vector=True)

    def decode_reference(self, blocks: Sequence[HdrBlock]) -> Arrivals:
        """The same as :meth:`decode` with a Python step per block (the earlier implementation):
        the tests' oracle for :meth:`decode` and the baseline of ``python -m benchmarks
        hdr_decode``."""
        return self._decode(blocks, vector=False)

    def _decode(self, blocks: Sequence[HdrBlock], vector: bool) -> Arrivals:
        if not blocks:
            e = np.zeros(0, dtype=np.int64)
            return Arrivals(e, e, e, e, e)
        self._phantoms = []
        a = blocks_array(blocks)
        k = len(blocks)
        st = self.stats
        st.blocks += k
        st.bad_headers += int(a["bad"].sum())
        ent = a["entries"]
        used = a["used"]
        col = np.arange(ENTRY_BYTES)
        valid = col[None, :] < used[:, None]
        g = (ent >> 3).astype(np.int64)
        ph = (ent & 7).astype(np.int64)
        skip = valid & (g == SKIP_G)
        arr = valid & (g < SKIP_G)
        # format checks: unused bytes zero, skips with ph 0, n matches, no trailing skip
        ok = (used <= ENTRY_BYTES) & ~(~valid & (ent != 0)).any(axis=1) & ~(skip & (ph != 0)).any(axis=1)
        ok &= arr.sum(axis=1) + 1 == a["n"]
        last_arr = np.where(arr.any(axis=1), ENTRY_BYTES - 1 - np.argmax(arr[:, ::-1], axis=1), -1)
        ok &= ~((used > 0) & (last_arr != used - 1))
        steps = np.where(skip, SKIP_G, np.where(arr, g + 1, 0))
        off = np.cumsum(steps, axis=1)  # pulses from seq0 to each entry's arrival
        # 49 columns: the first arrival (offset 0, ph of ts0) then the entries
        m = np.concatenate([np.ones((k, 1), dtype=bool), arr], axis=1) & ok[:, None]
        offs = np.concatenate([np.zeros((k, 1), dtype=np.int64), off], axis=1)
        # the batch's anchors refine P before it is used
        if vector:
            self._refine_batch(a["seq0"][ok], a["ts0"][ok])
        else:
            for i in np.flatnonzero(ok).tolist():
                self._refine(int(a["seq0"][i]), int(a["ts0"][i]))
        ph49 = np.concatenate([(a["ts0"] & 7)[:, None], ph], axis=1)
        if vector:
            ts_f = self._timestamps_flat(a["ts0"], offs, ph49, m)
        else:
            ts_f = self._timestamps(a["ts0"], offs, ph49, m)[m]
        seq = (a["seq0"][:, None] + offs) & U32
        counts = m.sum(axis=1)
        if vector:
            out_slot = self._slots_batch(a, ok, m, offs, counts)
        else:
            out_slot = self._slots_loop(a, ok, m, offs, counts)
        seq_f = seq[m]
        # slots in arrival order: out_slot holds each block's slots packed at the front
        rank = np.cumsum(m, axis=1) - 1
        rows = np.nonzero(m)[0]
        slot_f = out_slot[rows, rank[m]]
        if self._phantoms:
            evicted, unseen = self._evict_with_lost(slot_f, seq_f, rows)
        else:
            evicted, unseen = self._evict(slot_f, seq_f), np.zeros(0, dtype=np.int64)
        st.arrivals += int(seq_f.size)
        return Arrivals(seq_f, ts_f, slot_f, evicted, unseen)

    def _slots_loop(self, a: dict[str, np.ndarray], ok: np.ndarray, m: np.ndarray,
                    offs: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Ring slots and loss bookkeeping, one Python step per block (the reference)."""
        k = ok.size
        slot0 = a["slot0"]
        out_slot = np.zeros((k, ENTRY_BYTES + 1), dtype=np.int64)
        for i in range(k):
            self._block_bookkeeping(int(a["blk"][i]), int(slot0[i]), int(a["seq0"][i]),
                                    bool(ok[i]), a["ts0"][i], i)
            if not ok[i]:
                continue
            n = int(counts[i])
            free = self._free
            j0 = int(np.searchsorted(free, slot0[i]))
            if j0 >= free.size or free[j0] != slot0[i]:  # slot0 pinned in our mirror: resync
                free = np.flatnonzero(~self._pinned | (np.arange(self.n_slots) == slot0[i]))
                j0 = int(np.searchsorted(free, slot0[i]))
            sl = free[(j0 + np.arange(n)) % free.size]
            out_slot[i, :n] = sl
            self._prev_slot = int(sl[-1])
            self._clear_changed()
            last_off = int(offs[i][m[i]][-1])
            self._last_seq = (int(a["seq0"][i]) + last_off) & U32
        return out_slot

    def _slots_batch(self, a: dict[str, np.ndarray], ok: np.ndarray, m: np.ndarray,
                     offs: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Ring slots and loss bookkeeping of a batch, vectorised: the same results as
        :meth:`_slots_loop`. Pins change only between batches, so one unpinned list maps every
        block's arrivals (rank within the block -> the next unpinned slots after slot0); the
        state carried from block to block (the previous good block's last seq and slot, a
        malformed block or a blk gap in between) is an index of the previous good block."""
        st = self.stats
        k = ok.size
        blk, slot0, seq0 = a["blk"], a["slot0"], a["seq0"]
        idx = np.arange(k)
        # blk gaps (lost blocks), counted at the block after the gap, good or malformed
        prev_blk = np.empty(k, dtype=np.int64)
        prev_blk[1:] = blk[:-1]
        prev_blk[0] = blk[0] - 1 if self._last_blk is None else self._last_blk
        gap = (blk - prev_blk - 1) & 0xFFFF
        st.lost_blocks += int(gap.sum())
        self._last_blk = int(blk[-1])
        expect, self._expect_slot0 = self._expect_slot0, None
        bad = ~ok
        st.malformed += int(bad.sum())
        if expect is not None and ok[0] and int(slot0[0]) != expect:  # restarted device
            st.slot_mismatches += 1
        # slots: the unpinned list from slot0 on; a slot0 our mirror has pinned resyncs (rare)
        out_slot = np.zeros((k, ENTRY_BYTES + 1), dtype=np.int64)
        free = self._free
        cols = np.arange(ENTRY_BYTES + 1)
        if free.size:
            j0 = np.minimum(np.searchsorted(free, slot0), free.size - 1)
            reg = ok & (free[j0] == slot0)
            out_slot[reg] = free[(j0[reg, None] + cols[None, :]) % free.size]
        else:
            reg = np.zeros(k, dtype=bool)
        for i in np.flatnonzero(ok & ~reg).tolist():
            fr = np.flatnonzero(~self._pinned | (np.arange(self.n_slots) == slot0[i]))
            j = int(np.searchsorted(fr, slot0[i]))
            out_slot[i] = fr[(j + cols) % fr.size]
        last_slot = out_slot[idx, np.maximum(counts - 1, 0)]
        last_seq = (seq0 + np.where(m, offs, 0).max(axis=1)) & U32
        # previous good block of each block (-1: before the batch) and malformed ones between
        pg = np.maximum.accumulate(np.concatenate([[-1], np.where(ok, idx, -1)[:-1]]))
        n_bad = np.cumsum(bad)  # malformed blocks up to and including i
        bad_between = n_bad - bad - np.where(pg >= 0, n_bad[np.maximum(pg, 0)], 0) > 0
        pending = bad_between | ((pg < 0) & self._unknown_pending)
        unknown = ok & ((gap > 0) | pending)
        have_prev = pg >= 0
        # blocks since the previous good one whose arrivals took slots we did not see: the lost
        # ones (blk gaps) and the malformed ones (their slots are as implicit as the lost ones')
        cg, cb = np.cumsum(gap), np.cumsum(bad)
        pgc = np.maximum(pg, 0)
        between = np.where(have_prev, cg - cg[pgc] + cb - bad - cb[pgc],
                           cg + cb - bad + self._pending_blocks)
        # unknown ranges: from the previous good block's last arrival (or the carried one)
        prev_seq = np.where(have_prev, last_seq[np.maximum(pg, 0)],
                            -1 if self._last_seq is None else self._last_seq)
        rng_rows = unknown & (prev_seq >= 0)
        if rng_rows.any():
            lo = (prev_seq[rng_rows] + 1) & U32
            hi = (seq0[rng_rows] - 1) & U32
            st.unknown_pulses += int(((hi - lo + 1) & U32).sum())
            st.unknown_range_count += int(lo.size)
            st.unknown_ranges.extend(zip(lo.tolist(), hi.tolist(), strict=True))
        # predicted slot0 (next unpinned after the previous block's last slot), unless unknown
        prev_slot = np.where(have_prev, last_slot[np.maximum(pg, 0)],
                             -1 if self._prev_slot is None else self._prev_slot)
        # lost and malformed blocks' arrivals took the slots between the previous good block
        # and this one
        for i in np.flatnonzero(ok & (between > 0) & (prev_slot >= 0) & (prev_seq >= 0)).tolist():
            self._lost_slots(i, int(prev_slot[i]), int(slot0[i]), int(prev_seq[i]),
                             int(seq0[i]), int(between[i]), changed=not have_prev[i])
        chk = ok & ~unknown & (prev_slot >= 0)
        if chk.any() and free.size:
            j = np.searchsorted(free, prev_slot[chk] + 1) % free.size
            st.slot_mismatches += int((free[j] != slot0[chk]).sum())
        # carried state
        oks = np.flatnonzero(ok)
        last_ok = int(oks[-1]) if oks.size else -1
        bads = np.flatnonzero(bad)
        last_bad = int(bads[-1]) if bads.size else -1
        if last_ok >= 0:
            self._last_seq = int(last_seq[last_ok])
            self._prev_slot = int(last_slot[last_ok])
            self._pending_blocks = 0
            self._clear_changed()
        tail = slice(last_ok + 1, k)  # (all malformed)
        self._pending_blocks += int(gap[tail].sum()) + int(bad[tail].sum())
        self._unknown_pending = last_bad > last_ok
        return out_slot

    # ------------------------------------------------------------------ internals
    def _block_bookkeeping(self, blk: int, slot0: int, seq0: int, ok: bool, ts0,
                           i: int = 0) -> None:
        st = self.stats
        gap = 0
        if self._last_blk is not None:
            gap = (blk - self._last_blk - 1) & 0xFFFF
        self._last_blk = blk
        st.lost_blocks += gap
        expect, self._expect_slot0 = self._expect_slot0, None
        if not ok:  # its pulses are unknown up to the next good block, its slots found there
            st.malformed += 1
            self._unknown_pending = True
            self._pending_blocks += gap + 1
            return
        if expect is not None and slot0 != expect:  # the first block of a restarted device
            st.slot_mismatches += 1
        between, self._pending_blocks = self._pending_blocks + gap, 0
        if gap or self._unknown_pending:
            if between and self._prev_slot is not None and self._last_seq is not None:
                self._lost_slots(i, self._prev_slot, slot0, self._last_seq, seq0, between,
                                 changed=True)
            if self._last_seq is not None:
                lo = (self._last_seq + 1) & U32
                hi = (seq0 - 1) & U32
                st.unknown_pulses += (hi - lo + 1) & U32
                st.unknown_range_count += 1
                st.unknown_ranges.append((lo, hi))
            self._unknown_pending = False
        elif self._prev_slot is not None:  # predicted slot0: next unpinned after the last
            free = self._free
            j = int(np.searchsorted(free, self._prev_slot + 1))
            if free.size and int(free[j % free.size]) != slot0:
                st.slot_mismatches += 1

    def _refine(self, seq0: int, ts0: int) -> None:
        """Period estimate from the anchors (seq0, ts0): first anchor to the newest one."""
        if self._ext_last32 is None:
            self._ext = SEQ_MOD + seq0
        else:
            d = (seq0 - self._ext_last32) & U32
            self._ext += d if d < (1 << 31) else d - SEQ_MOD
        self._ext_last32 = seq0
        if self._anchor is None:
            self._anchor = (self._ext, ts0)
            return
        ds = self._ext - self._anchor[0]
        if ds >= MIN_BASELINE or ds <= 0:
            p = (ts0 - self._anchor[1]) / ds if ds else 0.0
            if abs(p - self.period_cfg) > 0.01 * self.period_cfg:
                # not the configured source (restart, seq wrapped past 2^31, TIME_SET): start over
                self._anchor = (self._ext, ts0)
                self.period = self.period_cfg
            else:
                self.period = p

    def _refine_batch(self, seq0: np.ndarray, ts0: np.ndarray) -> None:
        """:meth:`_refine` over a batch's anchors at once: the same estimate (Python steps only
        where the anchor starts over, which is rare)."""
        n = seq0.size
        if n == 0:
            return
        # extended seqs: the first relative to the carried one, then the wrapped differences
        d = np.empty(n, dtype=np.int64)
        if self._ext_last32 is None:
            d[0] = 0
            base = SEQ_MOD + int(seq0[0])
        else:
            d[0] = (int(seq0[0]) - self._ext_last32) & U32
            base = self._ext
        d[1:] = (seq0[1:] - seq0[:-1]) & U32
        d = np.where(d < (1 << 31), d, d - SEQ_MOD)
        ext = base + np.cumsum(d)
        self._ext = int(ext[-1])
        self._ext_last32 = int(seq0[-1])
        i = 0
        if self._anchor is None:
            self._anchor = (int(ext[0]), int(ts0[0]))
            i = 1
        while i < n:
            a_ext, a_ts = self._anchor
            ds = ext[i:] - a_ext
            upd = (ds >= MIN_BASELINE) | (ds <= 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                p = np.where(ds != 0, (ts0[i:] - a_ts) / np.where(ds != 0, ds, 1), 0.0)
            off = upd & (np.abs(p - self.period_cfg) > 0.01 * self.period_cfg)
            if not off.any():
                if upd.any():
                    self.period = float(p[np.flatnonzero(upd)[-1]])
                return
            r = int(np.flatnonzero(off)[0])
            # (an update before the restart is overwritten by the restart's reset)
            self._anchor = (int(ext[i + r]), int(ts0[i + r]))
            self.period = self.period_cfg
            i += r + 1

    def _timestamps_flat(self, ts0: np.ndarray, offs: np.ndarray, ph: np.ndarray,
                         m: np.ndarray) -> np.ndarray:
        """:meth:`_timestamps` without the column loop, for the arrivals (``m``) in row order.
        The decoded ts_{i-1} has residue ph_{i-1} (ts0 & 7 for the first), so the step
        ts_i - ts_{i-1} = R + ((ph_i - ph_{i-1} - R) mod 8, centred on 0), R = rint(ds * P),
        depends only on known values: ts is ts0 plus a cumulative sum of steps within each block."""
        rows, cols = np.nonzero(m)
        n = rows.size
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        off = offs[m]
        pha = ph[m]
        first = cols == 0
        step = np.zeros(n, dtype=np.int64)
        r = np.rint((off[1:] - off[:-1]) * self.period).astype(np.int64)
        d = (pha[1:] - pha[:-1] - r) & 7
        step[1:] = r + np.where(d >= 4, d - 8, d)
        step[first] = 0
        cs = np.cumsum(step)
        start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        return ts0[rows] + cs - cs[start]

    def _timestamps(self, ts0: np.ndarray, offs: np.ndarray, ph: np.ndarray,
                    m: np.ndarray) -> np.ndarray:
        """Column by column: ts_i = value with residue ph_i nearest to ts_{i-1} + ds * P."""
        k, c = offs.shape
        ts = np.zeros((k, c), dtype=np.int64)
        ts[:, 0] = ts0
        prev_ts = ts0.copy()
        prev_off = np.zeros(k, dtype=np.int64)
        p = self.period
        last = int(np.flatnonzero(m.any(axis=0))[-1]) if m.any() else 0
        for j in range(1, last + 1):
            mj = m[:, j]
            if not mj.any():
                continue
            pred = prev_ts + np.rint((offs[:, j] - prev_off) * p).astype(np.int64)
            d = (ph[:, j] - pred) & 7
            d = np.where(d >= 4, d - 8, d)
            v = pred + d
            ts[:, j] = v
            prev_ts = np.where(mj, v, prev_ts)
            prev_off = np.where(mj, offs[:, j], prev_off)
        return ts

    def _lost_slots(self, i: int, prev_slot: int, slot0: int, prev_seq: int, seq0: int,
                    gap: int, changed: bool) -> None:
        """Block ``i`` follows ``gap`` lost or malformed blocks: their arrivals took the unpinned
        slots after ``prev_slot`` (the previous good block's last) up to ``slot0``, or the whole
        ring when they could have held that many (at most ENTRY_BYTES + 1 arrivals a block, at
        most one a pulse). Recorded for :meth:`_evict_with_lost`, before block ``i``'s arrivals.
        A malformed block's own fields are never used: the two good blocks around it give the
        ring position, as the device's slots are implicit.

        A pin change between the two good blocks (``changed``: the previous good block is
        before this batch; pins change only between batches) makes its slots ambiguous: the
        arrivals in between may have passed the slot before or after the change, and how many
        came on which side is unknown. Such a slot counts as taken (its photon reported
        overwritten): a photon the ring may have lost is never kept for verification; the cost
        is at most a photon still there discarded."""
        free = self._free
        if changed and self._any_changed:
            free = np.flatnonzero(~self._pinned | self._changed)
        f = free.size
        if f == 0:
            return
        start = int(np.searchsorted(free, prev_slot, side="right"))
        most = min((seq0 - prev_seq - 1) & U32, (ENTRY_BYTES + 1) * gap)
        c = f if most >= f else (int(np.searchsorted(free, slot0)) - start) % f
        if c:
            self._phantoms.append((i, free[(start + np.arange(c)) % f]))

    def _evict_with_lost(self, slots: np.ndarray, seqs: np.ndarray,
                         rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_evict` with the lost blocks' arrivals (:meth:`_lost_slots`, seq unknown: -1)
        in their place, before the arrivals of the block after them. Returns the decoded
        arrivals' evictions and the photons the lost ones overwrote (known ones only)."""
        ph_rows = np.concatenate([np.full(s.size, i, dtype=np.int64) for i, s in self._phantoms])
        ph_slots = np.concatenate([s for _, s in self._phantoms])
        n_ph = ph_slots.size
        kind = np.concatenate([np.zeros(n_ph, dtype=np.int64), np.ones(slots.size, dtype=np.int64)])
        order = np.lexsort((kind, np.concatenate([ph_rows, rows])))  # (stable: ties keep order)
        all_slots = np.concatenate([ph_slots, slots])[order]
        all_seqs = np.concatenate([np.full(n_ph, -1, dtype=np.int64), seqs])[order]
        ev = np.empty(order.size, dtype=np.int64)
        ev[order] = self._evict(all_slots, all_seqs)
        unseen = ev[:n_ph]
        unseen = unseen[unseen >= 0]
        self.stats.unseen_overwrites += int(unseen.size)
        return ev[n_ph:], unseen

    def _evict(self, slots: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        """Previous occupant of each slot (in order: a slot used twice in the batch evicts the
        batch's own earlier arrival), then record the new occupants."""
        n = slots.size
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        ev = self._occupant[slots].copy()
        order = np.lexsort((np.arange(n), slots))
        s_sorted = slots[order]
        same = np.zeros(n, dtype=bool)
        same[1:] = s_sorted[1:] == s_sorted[:-1]
        prev_idx = np.empty(n, dtype=np.int64)
        prev_idx[1:] = order[:-1]
        ev[order[same]] = seqs[prev_idx[same]]
        last = np.ones(n, dtype=bool)
        last[:-1] = ~same[1:]
        self._occupant[s_sorted[last]] = seqs[order[last]]
        return ev


#: line bytes of one HDR_BLOCK frame: 71 decoded bytes + 1 COBS overhead + the delimiter
BLOCK_LINE_BYTES = 73


def line_utilisation(rate_hz: float, p: float, *, flush_cycles: int = 100_000,
                     clock_hz: float = 100e6, baud: float = 3e6) -> float:
    """Expected fraction of a UART line (8N1) that block mode needs for a source of ``rate_hz``
    pulses/s whose photons arrive with probability ``p`` (docs/header-path.md section 2).

    Gap d before an arrival is geometric (P(d = k) = (1-p)^k p); it costs floor(d/31) + 1 entry
    bytes if d <= 124, else it opens a new block. A block ends when its 48 bytes are full, at a gap
    > 124, or ``flush_cycles`` after its first arrival, whichever comes first: arrivals per block
    ~ 1 / (1 / min(fill, flush) + 1 / break) (within a few % of the reference encoder: 0.41,
    0.67, 1.02 measured at p = 0.05, 0.1, 0.158 and 1.3 MHz; tested)."""
    if rate_hz <= 0 or p <= 0:
        return 0.0
    k = np.arange(125)
    pk = (1 - p) ** k * p
    cost = (k // SKIP_G + 1) * pk
    p_in = pk.sum()  # gap fits in a block
    e_cost = cost.sum() / p_in  # bytes per appended arrival
    fill = 1 + ENTRY_BYTES / e_cost  # arrivals of a full block
    brk = 1 / (1 - p_in) if p_in < 1 else np.inf  # arrivals between gaps > 124
    flush = 1 + flush_cycles / clock_hz * rate_hz * p  # arrivals within the flush time
    per_block = 1 / (1 / min(fill, flush) + 1 / brk)
    blocks_per_s = rate_hz * p / per_block
    return float(blocks_per_s * BLOCK_LINE_BYTES * 10 / baud)
