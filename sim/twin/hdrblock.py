"""Reference model of block-mode header handling (docs/header-path.md sections 2-3, wire v4).

Pure and sans-IO: no clock, no I/O, no randomness. The twin (:mod:`hwctl.sim.twin.model`) drives it in
virtual and real time and the RTL is scored against it in cocotb, cycle by cycle:

    enc = BlockEncoder(n_slots=2048, flush_cycles=100_000)
    blocks = enc.arrival(seq, ts)        # a well-formed header decoded at cycle ts
    enc.bad_header()                     # a malformed one
    blocks += enc.tick(now)              # the flush timer (call it at ``enc.deadline``)
    blocks += enc.pin(base, mask)        # PIN_MASK: closes the open block, then pins

Every method returns the :class:`~hwctl.wire.HdrBlock` events it closed, in order. Pair-verification
paper section II-C2 step 1 (photon detection and storage) at the source rate of section IV
(1.3 MHz): one compact block per ~49 arrivals instead of one HEADER event per photon, and a ring of
memory slots that expire implicitly instead of one FREE round trip per slot.

Ring (section 3): arrival k takes the next slot after arrival k-1's slot (mod ``n_slots``) that is
not pinned; after reset the search starts at slot 0. With every slot pinned the arrival is dropped
(``last_slot`` is None, ``dropped`` counts it; the device sends ERROR(NO_SLOT, info=seq)) and it is
not recorded in any block.

Block (section 2): opened at an arrival when none is open (seq0, ts0, slot0, n = 1). A later
arrival with seq s appends d = (s - last_seq - 1) mod 2^32 as floor(d/31) skip bytes 0xF8 and one
byte ``(d mod 31) << 3 | ts & 7``; if d > 124 or the bytes do not fit in the 48 entry bytes the
open block is closed first and a new one opens at this arrival. The flush timer closes a block
``flush_cycles`` after its first arrival (at that cycle, before an arrival of the same cycle).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from hwctl.wire import ErrorCode, HdrBlock

#: entry bytes per block (spec HDR_BLOCK.entries: u384)
ENTRY_BYTES = 48
#: g value of a skip entry: 31 pulses without arrival, no arrival
SKIP_G = 31
SKIP_BYTE = SKIP_G << 3
#: largest gap (pulses without arrival) one block can carry between two arrivals: 4 skip entries
MAX_GAP = 4 * SKIP_G
#: minimum ring size (spec N_SLOTS)
MIN_SLOTS = 2048
#: the devices' ring size (twin and RTL top): 8192 slots = 63 ms at p = 0.1 of 1.3 MHz, room for
#: the host's decode-and-exchange lag (idle 2-vCPU machine: mean 14 ms, max 67 ms; 2048 slots,
#: 15.8 ms, lost 46 % of the arrivals to OVERWRITTEN, benchmarks/RESULTS.md)
DEFAULT_SLOTS = 8192
#: BLOCK_FLUSH after reset, cycles (1 ms at 100 MHz; docs/header-path.md section 2)
DEFAULT_FLUSH = 100_000
U32 = 0xFFFF_FFFF


class PinError(ValueError):
    """PIN_MASK / UNPIN_MASK refused (the device answers NAK(code) and changes nothing)."""

    def __init__(self, code: ErrorCode, msg: str) -> None:
        super().__init__(msg)
        self.code = code


@dataclass(slots=True)
class _Open:
    seq0: int
    ts0: int
    slot0: int
    opened_at: int  # cycle of the first arrival (flush timer base)
    last_seq: int
    n: int = 1
    entries: bytearray | None = None


def mask_slots(base: int, mask: int) -> list[int]:
    """Slots named by a PIN_MASK / UNPIN_MASK / FREE_MASK: base + i for every set bit i."""
    out = []
    i = 0
    while mask:
        if mask & 1:
            out.append(base + i)
        mask >>= 1
        i += 1
    return out


class BlockEncoder:
    """Block encoder, slot ring and pins of one node device in block mode (see module docstring)."""

    def __init__(self, n_slots: int = MIN_SLOTS, flush_cycles: int = DEFAULT_FLUSH) -> None:
        if not 1 <= n_slots <= 0x10000:
            raise ValueError("n_slots must be in 1..65536 (u16 slot0)")
        if flush_cycles < 1:
            raise ValueError("flush_cycles must be >= 1")
        self.n_slots = n_slots
        #: BLOCK_FLUSH register (cycles); takes effect for blocks opened after a change
        self.flush_cycles = flush_cycles
        self._pinned = bytearray(n_slots)  # 1 = pinned
        self._n_pinned = 0
        self._last = n_slots - 1  # slot of the previous arrival (reset: search starts at 0)
        self._open: _Open | None = None
        self._blk = 0
        self._emitted = 0
        self._bad = 0  # malformed headers since the previous block (saturating at 255)
        self.enabled = True
        #: arrivals dropped because every slot was pinned (ERROR(NO_SLOT))
        self.dropped = 0
        #: ring slot of the latest arrival, None if it was dropped
        self.last_slot: int | None = None

    # ------------------------------------------------------------------ inputs
    def arrival(self, seq: int, ts: int, *, at: int | None = None) -> list[HdrBlock]:
        """A well-formed header ``seq`` decoded at device timestamp ``ts``; ``at`` is the cycle on
        the flush timer's clock (default ``ts``; differs only after a TIME_SET)."""
        seq &= U32
        at = ts if at is None else at
        o = self._open
        out = []
        if o is not None and at >= o.opened_at + self.flush_cycles:  # the flush timer first
            out.append(self._close())
            o = None
        # the ring: next unpinned slot after the previous arrival's (inline _next_slot: hot path)
        if self._n_pinned >= self.n_slots:
            self.last_slot = None
            self.dropped += 1
            return out
        slot = self._pinned.find(0, self._last + 1)
        if slot < 0:
            slot = self._pinned.find(0)
        self.last_slot = self._last = slot
        if o is not None:
            d = (seq - o.last_seq - 1) & U32
            if d <= MAX_GAP:
                e = o.entries
                if e is None:
                    e = o.entries = bytearray()
                skips, g = divmod(d, SKIP_G)
                if len(e) + skips + 1 <= ENTRY_BYTES:
                    if skips:
                        e += b"\xf8" * skips
                    e.append(g << 3 | (ts & 7))
                    o.n += 1
                    o.last_seq = seq
                    return out
            out.append(self._close())
        self._open = _Open(seq, ts & 0xFFFF_FFFF_FFFF_FFFF, slot, at, seq)
        return out

    def bad_header(self) -> None:
        """A malformed header: counted in the next block's ``bad`` (saturating at 255)."""
        if self._bad < 255:
            self._bad += 1

    def tick(self, now: int) -> list[HdrBlock]:
        """The flush timer at cycle ``now``: closes the open block if ``now >= deadline``."""
        o = self._open
        if o is not None and now >= o.opened_at + self.flush_cycles:
            return [self._close()]
        return []

    def pin(self, base: int, mask: int) -> list[HdrBlock]:
        """PIN_MASK(base, mask): close the open block, then pin the named slots.
        Raises :class:`PinError` (BAD_ARG: mask == 0, BAD_SLOT: a slot >= n_slots); then nothing
        changes and no block is closed."""
        return self._change(base, mask, 1)

    def unpin(self, base: int, mask: int) -> list[HdrBlock]:
        """UNPIN_MASK(base, mask): close the open block, then unpin the named slots."""
        return self._change(base, mask, 0)

    def set_enabled(self, on: bool) -> list[HdrBlock]:
        """CONTROL.HDR_BLOCK written: clearing it closes the open block."""
        out = [self._close()] if not on and self._open is not None else []
        self.enabled = bool(on)
        return out

    def clear_counters(self) -> None:
        """CONTROL.CLEAR_COUNTERS: the block counter (next ``blk``) and CNT_BLOCKS restart at 0."""
        self._blk = 0
        self._emitted = 0

    # ------------------------------------------------------------------ state
    @property
    def slots_free(self) -> int:
        """SLOTS_FREE in block mode: slots the ring may use (not pinned)."""
        return self.n_slots - self._n_pinned

    @property
    def pinned_count(self) -> int:
        """CNT_PINNED."""
        return self._n_pinned

    @property
    def blocks_emitted(self) -> int:
        """CNT_BLOCKS."""
        return self._emitted

    @property
    def deadline(self) -> int | None:
        """Cycle at which the flush timer closes the open block (None: no block open)."""
        o = self._open
        return None if o is None else o.opened_at + self.flush_cycles

    @property
    def open_arrivals(self) -> int:
        """Arrivals in the open block (0: none open)."""
        return 0 if self._open is None else self._open.n

    def is_pinned(self, slot: int) -> bool:
        return bool(self._pinned[slot])

    def pinned_slots(self) -> list[int]:
        return [i for i, p in enumerate(self._pinned) if p]

    # ------------------------------------------------------------------ internals
    def _next_slot(self) -> int | None:
        if self._n_pinned >= self.n_slots:
            return None
        i = self._pinned.find(0, self._last + 1)
        if i < 0:
            i = self._pinned.find(0)
        return i

    def _change(self, base: int, mask: int, value: int) -> list[HdrBlock]:
        if mask == 0:
            raise PinError(ErrorCode.BAD_ARG, "empty mask")
        if base < 0 or base + mask.bit_length() - 1 >= self.n_slots:
            raise PinError(ErrorCode.BAD_SLOT, f"slot >= n_slots={self.n_slots}")
        out = [self._close()] if self._open is not None else []
        p = self._pinned
        for s in mask_slots(base, mask):
            if p[s] != value:
                p[s] = value
                self._n_pinned += 1 if value else -1
        return out

    def _close(self) -> HdrBlock:
        o = self._open
        assert o is not None
        self._open = None
        e = bytes(o.entries or b"")
        blk = HdrBlock(self._blk, o.seq0, o.ts0, o.slot0, o.n, len(e), self._bad,
                       int.from_bytes(e.ljust(ENTRY_BYTES, b"\0"), "big"))
        self._blk = (self._blk + 1) & 0xFFFF
        self._emitted = (self._emitted + 1) & U32
        self._bad = 0
        return blk


def block_arrivals(b: HdrBlock) -> list[tuple[int, int]]:
    """Reference decoding of one block (no ring, no timestamps): (seq, ts & 7) per arrival, the
    first one as (seq0, ts0 & 7). Raises ValueError for a block that violates the format."""
    e = b.entries.to_bytes(ENTRY_BYTES, "big")
    if not 0 <= b.used <= ENTRY_BYTES or any(e[b.used:]):
        raise ValueError("used out of range or nonzero unused entry bytes")
    out = [(b.seq0, b.ts0 & 7)]
    seq = b.seq0
    skipped = 0
    for byte in e[: b.used]:
        g, ph = byte >> 3, byte & 7
        if g == SKIP_G:
            if ph:
                raise ValueError("skip entry with ph != 0")
            skipped += SKIP_G
            continue
        seq = (seq + skipped + g + 1) & U32
        skipped = 0
        out.append((seq, ph))
    if skipped or len(out) != b.n:
        raise ValueError("block ends in a skip or n does not match its entries")
    return out


#: arrivals the RTL's hdr_block holds: one pending (being encoded) + a FIFO of 2^QAW = 8 behind it
#: (fpga/rtl/hdr_block.v: worst case at the spec's rate 7 arrivals during a 345-cycle pin change)
QUEUE_FIFO = 8
#: PIN_MASK / UNPIN_MASK mask bits (spec) and pinned bits per ring memory word (slot_ring W)
PIN_MASK_BITS = 240
RING_WORD = 16
#: slot_ring: a search is decided 6 cycles after its start (take or end of a pin change), plus
#: one cycle per word read before the word holding the next unpinned slot
SEARCH_CYCLES = 6
#: ArrivalQueue._calm with ``exact``: no arrival takes the fast path
_NEVER = 1 << 80


class ArrivalQueue:
    """The RTL's arrival queue and encoder timing (fpga/rtl/hdr_block.v, slot_ring.v), cycle exact,
    around a :class:`BlockEncoder` (docs/header-path.md section 3, "no arrival lost around a pin
    change").

    The block content never depends on this timing (the RTL records arrivals and pin changes in
    their order); only which arrivals find the queue full does: such an arrival is not stored
    (``arrival`` returns ``stored=False``; the device sends ERROR(NO_SLOT, info = seq), ``overflows``
    counts it). Inputs are given in cycle order: ``arrival(seq, ts, cycle)`` at the cycle the
    decoder hands the arrival over (``arr_i``), ``pin`` / ``unpin`` at the cycle the ring accepts
    the checked change (``close_i``; before an arrival of the same cycle). ``consumed`` lists, per
    stored arrival, the cycle the RTL finishes it (``cons``), for cycle-by-cycle comparison.

    Timing (cycles counted from the arrival's ``arr_i`` cycle ``a``): the pending register takes it
    at ``a + 1`` if the previous arrival is done by ``a``, else it waits in the FIFO and is read
    into the pending register two cycles after the previous one is done. The encoder starts it
    (state S_IDLE, cycle ``s``) once it is pending, the encoder is idle and the ring's search is
    done; then NO_SLOT ends at ``s + 3``, an append with q skip bytes at ``s + 4 + q``, a block
    opening at ``s + 18`` (``s + 24`` when the open block closes first); a take starts a search
    (done ``SEARCH_CYCLES`` + words crossed later). A timer / pin close takes 7 cycles of S_IDLE
    time; a pin change 1 cycle to start, then per ring word crossed 4 cycles + its mask bits, then
    2 cycles to S_IDLE and a search.

    Fast path (``exact=False``, the default): an arrival at or after ``_calm`` finds nothing held,
    the encoder idle for >= 6 cycles and the ring's next slot known, so it starts at ``cycle + 1``
    and cannot overflow; the queue bookkeeping (FIFO read cycles, the held arrival, the lazy ring
    search) is skipped and only the state the next input needs is written (the same values the
    exact path writes). Between pin changes every arrival is such an arrival unless it follows
    the previous one within ~32 cycles (+ the ring search across pinned words): one header time
    is 60. ``exact=True`` runs every arrival through the full model (tests compare the two).
    """

    __slots__ = ("enc", "fifo", "mask_bits", "word", "_nw", "_free", "_rdy", "_rdy_lazy", "_last_cons",
                 "_reads", "_open", "_expire", "record", "consumed", "overflows", "exact", "_calm")

    def __init__(self, enc: BlockEncoder, fifo: int = QUEUE_FIFO, mask_bits: int = PIN_MASK_BITS,
                 word: int = RING_WORD, *, record: bool = False, exact: bool = False) -> None:
        if enc.n_slots % word:
            raise ValueError("n_slots must be a multiple of the ring word")
        self.enc = enc
        self.fifo = fifo
        self.mask_bits = mask_bits
        self.word = word
        self._nw = enc.n_slots // word
        self._free = 0          # first cycle the encoder is in S_IDLE
        self._rdy = 0           # first cycle the ring's next slot is known
        #: ``_rdy`` still lacks the words the search crosses (``_words()``, at most ``_nw``):
        #: added only when an arrival comes early enough for them to matter (the ring and the
        #: last slot cannot change in between: a pin change sets ``_rdy`` itself)
        self._rdy_lazy = False
        self._last_cons = -1    # consumption cycle of the latest stored arrival
        self._reads: deque[int] = deque()        # read cycles of the queued arrivals
        self._open = False      # the RTL's open_q
        self._expire = 0                          # its flush timer's expiry cycle
        #: stored arrivals' consumption cycles, in order (kept with ``record``)
        self.record = record
        self.consumed: list[int] = []
        #: arrivals dropped because the FIFO was full (ERROR(NO_SLOT))
        self.overflows = 0
        #: every arrival through the exact model (no fast path)
        self.exact = exact
        #: first cycle at which an arrival takes the fast path: no arrival held (``_last_cons``),
        #: the encoder in S_IDLE for 6 cycles before (so a timer close that starts before the
        #: arrival is over by its start, unless the timer expired in those 6 cycles: checked) and
        #: the ring's search done (``_rdy``; with ``_rdy_lazy`` the bound of a search across
        #: every word)
        self._calm = _NEVER if exact else 0

    # ------------------------------------------------------------------ inputs
    def arrival(self, seq: int, ts: int, cycle: int, at: int | None = None
                ) -> tuple[list[HdrBlock], bool]:
        """Arrival at ``arr_i`` cycle ``cycle``: (blocks closed, stored)."""
        if cycle < self._calm:                        # (always with ``exact``)
            return self._arrival(seq, ts, cycle, at)
        enc = self.enc
        o = enc._open
        if o is not None and self._open and self._expire > cycle:
            # the common case inlined: BlockEncoder.arrival's append of one entry byte (no skip
            # byte, no close) into the slot after the previous one (free); finished at
            # cycle + 5, the next search done 6 cycles after the take
            seq &= U32
            d = (seq - o.last_seq - 1) & U32
            e = o.entries
            if (d < SKIP_G and (e is None or len(e) < ENTRY_BYTES)
                    and (ts if at is None else at) < o.opened_at + enc.flush_cycles):
                slot = enc._last + 1
                if slot == enc.n_slots:
                    slot = 0
                pinned = enc._n_pinned
                if not pinned or not enc._pinned[slot]:
                    if e is None:
                        e = o.entries = bytearray()
                    e.append(d << 3 | (ts & 7))
                    o.n += 1
                    o.last_seq = seq
                    enc.last_slot = enc._last = slot
                    c = cycle + 5
                    r = c + 1 + SEARCH_CYCLES
                    if pinned and enc._pinned[0 if slot == enc.n_slots - 1 else slot + 1]:
                        r += self._words()
                    self._rdy = r
                    self._rdy_lazy = False
                    self._free = c + 1
                    self._last_cons = c
                    self._calm = r - 1 if r - 1 > c + 7 else c + 7
                    if self.record:
                        self.consumed.append(c)
                    return [], True
        return self._fast(seq, ts, cycle, at)

    def _fast(self, seq: int, ts: int, cycle: int, at: int | None) -> tuple[list[HdrBlock], bool]:
        """An arrival at or after ``_calm`` that is not the inlined append: the encoder decides,
        the timing is the exact path's with the arrival started at ``cycle + 1``."""
        ts_open = self._open
        if ts_open and self._expire <= cycle:         # the RTL's timer closed the block
            if self._expire > cycle - 6:              # ... and is still closing at the arrival
                return self._arrival(seq, ts, cycle, at)
            ts_open = self._open = False
        enc = self.enc
        o = enc._open
        used0 = 0
        if o is not None and o.entries is not None:
            used0 = len(o.entries)
        out = enc.arrival(seq, ts, at=at)
        s = cycle + 1
        if enc.last_slot is None:                     # NO_SLOT (the ring's search unchanged;
            c = s + 3                                 # _rdy <= s: no search words to add, as
            self._rdy_lazy = False                    # the exact path decides)
            self._free = c + 1
            self._last_cons = c
            self._calm = c + 7
            if self.record:
                self.consumed.append(c)
            return out, True
        if not ts_open:                               # open a block
            c, take = s + 18, s + 5
            self._open = True
            self._expire = s + 6 + enc.flush_cycles
        elif enc._open is not o:                      # close the open one, open a new one
            c, take = s + 24, s + 11
            self._expire = s + 12 + enc.flush_cycles
        else:                                         # append: q skip bytes
            c = s + 3 + len(o.entries) - used0        # type: ignore[union-attr,arg-type]
            take = c + 1
        r = take + SEARCH_CYCLES
        if enc._n_pinned:                             # the search crosses pinned words?
            last = enc._last
            if enc._pinned[0 if last == enc.n_slots - 1 else last + 1]:
                r += self._words()
        self._rdy = r
        self._rdy_lazy = False
        self._free = c + 1
        self._last_cons = c
        self._calm = r - 1 if r - 1 > c + 7 else c + 7
        if self.record:
            self.consumed.append(c)
        return out, True

    def _arrival(self, seq: int, ts: int, cycle: int, at: int | None) -> tuple[list[HdrBlock], bool]:
        """The exact model of one arrival (see the class docstring)."""
        a = cycle
        free = self._free
        if self._last_cons > a:                       # the pending register is taken
            reads = self._reads                       # FIFO entries at a: read at or after a
            while reads and reads[0] < a:
                reads.popleft()
            if len(reads) >= self.fifo:
                self.overflows += 1
                return [], False
            r = self._last_cons if self._last_cons > a + 1 else a + 1
            reads.append(r)
            s = r + 2
        else:
            s = a + 1
            if self._open:                            # the RTL's timer close, if it starts
                x = self._expire                      # before the arrival is held
                if x <= a:
                    if free > x:
                        x = free
                    if x <= a:
                        self._open = False
                        free = x + 7
        if free > s:
            s = free
        if self._rdy_lazy:
            self._rdy_lazy = False
            if self._rdy + self._nw > s:
                self._rdy += self._words()
        if self._rdy > s:
            s = self._rdy
        enc = self.enc
        o = enc._open
        e = o.entries if o is not None else None
        used0 = len(e) if e is not None else 0
        out = enc.arrival(seq, ts, at=at)
        if enc.last_slot is None:                     # every slot pinned: NO_SLOT
            c = s + 3
        else:
            if not self._open:                        # open a block (S_OPEN at s + 4)
                c, take = s + 18, s + 5
                self._open = True
                self._expire = s + 6 + enc.flush_cycles
            elif enc._open is not o:                  # close the open one, open a new one
                c, take = s + 24, s + 11
                self._expire = s + 12 + enc.flush_cycles
            else:                                     # append (q skip bytes): s + 4 + q
                c = s + 3 + len(o.entries) - used0   # type: ignore[arg-type]
                take = c + 1
            self._rdy = take + SEARCH_CYCLES
            self._rdy_lazy = enc._n_pinned > 0
        self._free = c + 1
        self._last_cons = c
        r = self._rdy - 1 + (self._nw if self._rdy_lazy else 0)
        if not self.exact:
            self._calm = r if r > c + 7 else c + 7
        if self.record:
            self.consumed.append(c)
        return out, True

    def pin(self, base: int, mask: int, cycle: int) -> list[HdrBlock]:
        return self._change(base, mask, cycle, True)

    def unpin(self, base: int, mask: int, cycle: int) -> list[HdrBlock]:
        return self._change(base, mask, cycle, False)

    def tick(self, now: int) -> list[HdrBlock]:
        """The reference encoder's flush timer at ``now`` (the RTL's timer close is modelled at
        the next input)."""
        return self.enc.tick(now)

    # ------------------------------------------------------------------ internals
    def _timer_close(self, before: int) -> None:
        """The RTL's timer close, if it starts in S_IDLE before cycle ``before`` (no arrival held
        then)."""
        if self._open:
            x = max(self._free, self._expire, self._last_cons + 1)
            if x < before:
                self._open = False
                self._free = x + 7

    def _change(self, base: int, mask: int, cycle: int, set_: bool) -> list[HdrBlock]:
        out = (self.enc.pin if set_ else self.enc.unpin)(base, mask)   # (PinError: nothing)
        self._timer_close(before=cycle + 1)
        x = max(cycle + 1, self._free)                # S_IDLE with no arrival before the change
        if self._open:                                # close first
            self._open = False
            x += 7
        g = x + 1                                     # pin_go_o / the ring's pin_i
        wr = g + self._pin_cycles(base, mask)         # the last word's write-back (M_WR)
        self._free = wr + 2
        self._rdy = wr + SEARCH_CYCLES + self._words()
        self._rdy_lazy = False
        if not self.exact:
            self._calm = max(self._last_cons, self._free + 6, self._rdy - 1)
        return out

    def _pin_cycles(self, base: int, mask: int) -> int:
        """slot_ring pass 2: per word from base's up to the one holding the mask's top bit,
        read (3) + one cycle per mask bit in it + write (1)."""
        top = base + mask.bit_length() - 1
        end = base + self.mask_bits - 1
        s, n = base, 0
        while True:
            we = min((s // self.word + 1) * self.word - 1, end)
            n += 4 + we - s + 1
            if we >= top:
                return n
            s = we + 1

    def _words(self) -> int:
        """Words the ring's search reads before the one with the next unpinned slot (all of
        them, N / W, when every slot is pinned)."""
        enc = self.enc
        cur = enc._last
        start = 0 if cur == enc.n_slots - 1 else cur + 1
        if not enc._pinned[start]:                    # the common case: the next slot is free
            return 0
        nxt = enc._next_slot()
        if nxt is None:                               # every slot pinned
            return self._nw
        ws, wn = start // self.word, nxt // self.word
        if wn == ws and nxt < start:
            return self._nw
        return (wn - ws) % self._nw
