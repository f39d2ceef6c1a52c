"""Entangled-pair verification core, sans-IO (pair-verification paper §II-C).

One :class:`VerificationCore` runs at each of the two memory nodes of a pair. It never reads a
clock, opens a socket or starts a thread: the caller feeds it HEADER events, partner messages and
timer expiries, and collects :class:`Action` objects (aioquic ``QuicConnection`` shape).

Time base
---------
All times are **integer device ticks** (the FPGA clock of the HEADER timestamps, 100 MHz by default
= 10 ns), including ``now``. The node service converts its host clock to device ticks with the
offset it measured via the TIME command; the simulator simply counts ticks. Keeping the core on
the HEADER clock avoids any float drift between store times and deadlines.

Protocol (paper §II-C2, step by step)
-------------------------------------
1. *Photon detection and storage.* :meth:`handle_header` (``seq``, ``ts``, ``slot``) records the
   qubit: entanglement ID ``seq`` (32-bit on the wire, unwrapped internally with RFC 1982 serial
   arithmetic to a 64-bit "extended" sequence), arrival time ``ts`` and memory ``slot``.
2. *Entanglement-ID exchange.* IDs are sent to the partner batched: at most every
   ``report_interval_ticks`` the core emits a HAVE record, a bitmap over every sequence number from
   the last report to the newest header (bit = 1: qubit stored here). One bit per *source* pulse
   (1.3 Mbit/s at 1.3 MHz) instead of one 32-bit ID per stored qubit.
3. *Matching and verification.* When the partner's HAVE covers a sequence number we hold, we flag it
   ready. Both nodes run the same rule on the same information, so when we flag a pair the partner
   flags it too on receiving our HAVE: the pair is verified (see "Races" for the exception).
   Verified qubits are handed to the application (:class:`PairsVerified`) and, with
   ``consume_on_verify`` (the paper's §IV assumption), their slots are freed at once.
4. *Missing IDs.* A gap in our own sequence numbers means the photon never arrived here; HAVE
   carries that as a 0 bit, so the partner discards its half at once (``PARTNER_MISSING``) — the
   paper's "unmatched entanglement ID" step, with no separate message.
5. *Timeout.* A qubit still unmatched ``timeout_ticks`` after it was stored (from T2 and F_th via
   :func:`hwctl.physics.memory.timeout`, paper Eq. 1) is discarded (``TIMEOUT``) and a DISCARD
   record tells the partner, which discards its half (``PARTNER_TIMEOUT``). The age is judged in
   device ticks at the tick the partner's ID became known here: ``now`` of the message carrying
   it, or, for a header ingested after that message (channel skew, a host decoding late), the
   tick that message was received (kept per sequence number), never the host's later ingest.
6. *Freeing memory.* Every discard (and every verification when consuming) emits
   :class:`FreeSlots`: the node service turns it into FREE commands to the FPGA's slot pool.

Partner message encoding (carried as one ZeroMQ frame)
------------------------------------------------------
``message := version:u8 (=1) record*``; ``record := kind:u8 base:u32 count:u16 bitmap``, big-endian,
``bitmap`` = ceil(count/8) bytes, bit i (LSB-first within each byte) refers to sequence number
``base + i`` (mod 2^32). ``kind`` 1 = HAVE (bit set: stored here; clear: not received here),
``kind`` 2 = DISCARD (bit set: discarded here on timeout). HAVE records of one node are contiguous
and in order (each starts where the previous ended); ZeroMQ over TCP preserves that order.

Races
-----
A pair can be flagged at B and timed out at A only when the timeout is shorter than about twice the
classical latency (A's timeout fires while B's HAVE is still in flight). B then receives A's DISCARD
for a pair it already verified: the core reports it as :class:`PairsRevoked` and counts it in
``metrics.revoked`` (loud, never silent). With a timeout far above the latency it never happens.

Hot path
--------
:meth:`handle_header` only appends to three Python lists; the records are ingested in bulk with
numpy (serial-number unwrap, gap clearing, ring writes) the next time the core needs its state
(timer, partner message, :meth:`flush`). State lives in ring arrays of ``2**window_bits`` entries
indexed by extended sequence number. Callers that already have arrays use :meth:`handle_headers`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from hwctl.errors import LinkError
from hwctl.physics import memory as _memory

SEQ_BITS = 32
SEQ_MOD = 1 << SEQ_BITS
SEQ_MASK = SEQ_MOD - 1
SEQ_HALF = 1 << (SEQ_BITS - 1)

MSG_VERSION = 1
_REC = struct.Struct(">BIH")
MAX_RECORD_BITS = 0xFFFF

# per-entry state in the ring
ABSENT = 0  # no header for this sequence number (lost photon) or slot reused
PENDING = 1  # stored, waiting for the partner
VERIFIED = 2  # matched, slot held by the application until release()
DISCARDED = 3  # discarded (any cause), slot freed
CONSUMED = 4  # matched and handed over, slot freed (consume_on_verify or after release())

_CHUNK = 4096


class VerificationProtocolError(LinkError):
    """A malformed partner message or an impossible header stream (reported, never ignored)."""


class Cause(IntEnum):
    """Why a stored qubit was discarded (metrics key)."""

    PARTNER_MISSING = 1  # the partner never received its photon (gap in its sequence numbers)
    TIMEOUT = 2  # not matched within the timeout here
    PARTNER_TIMEOUT = 3  # the partner timed its half out
    WINDOW = 4  # older than the core's state window (would be overwritten): protocol starved
    OVERWRITTEN = 5  # block mode: the device's slot ring came round to it (docs/header-path.md 3)
    DEVICE_LOST = 6  # the device restarted: its memory, and the photon in it, are gone


class RecordKind(IntEnum):
    HAVE = 1
    DISCARD = 2


# ----------------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class SendToPartner:
    """Bytes for the partner node (one ZeroMQ frame); feed them to its :meth:`handle_message`."""

    data: bytes


@dataclass(frozen=True, slots=True)
class FreeSlots:
    """Memory slots to return to the FPGA's pool (one FREE command each)."""

    slots: np.ndarray


@dataclass(frozen=True, slots=True)
class PairsVerified:
    """Pairs verified at ``now``: sequence numbers (32-bit), slots, store ticks, fidelity estimate.

    ``fidelity`` is F(age, age - partner_offset) from :mod:`hwctl.physics.memory` when the config
    names a memory, else ``None``.
    """

    seqs: np.ndarray
    slots: np.ndarray
    store_ts: np.ndarray
    verify_ts: np.ndarray
    fidelity: np.ndarray | None


@dataclass(frozen=True, slots=True)
class PairsDiscarded:
    seqs: np.ndarray
    slots: np.ndarray
    cause: Cause


@dataclass(frozen=True, slots=True)
class PairsRevoked:
    """The partner discarded (timeout) pairs this node had already verified: see "Races"."""

    seqs: np.ndarray


@dataclass(frozen=True, slots=True)
class HeaderRejected:
    """A HEADER whose seq did not advance (duplicate or backwards); its slot is freed."""

    seq: int
    slot: int


Action = SendToPartner | FreeSlots | PairsVerified | PairsDiscarded | PairsRevoked | HeaderRejected


# ----------------------------------------------------------------------------------- config


@dataclass(frozen=True, slots=True)
class VerificationConfig:
    """Parameters of one node's core. Times in device ticks (``clock_hz`` per second)."""

    timeout_ticks: int
    clock_hz: float = 100e6
    report_interval_ticks: int = 10_000  # 100 us at 100 MHz: << metro latency, few msgs/s
    window_bits: int = 20  # 1 Mi sequence numbers of state (~0.8 s at 1.3 MHz)
    consume_on_verify: bool = True
    memory: _memory.Memory | None = None
    partner_offset_ticks: int = 0  # partner's store time minus ours for the same seq (skew)
    occupancy_sample_ticks: int = 100_000  # 1 ms at 100 MHz
    max_occupancy_samples: int = 100_000

    def __post_init__(self) -> None:
        if self.timeout_ticks <= 0:
            raise ValueError("timeout_ticks must be > 0")
        if self.report_interval_ticks <= 0:
            raise ValueError("report_interval_ticks must be > 0")
        if not 8 <= self.window_bits <= 28:
            raise ValueError("window_bits must be in [8, 28]")

    @classmethod
    def from_memory(
        cls,
        memory: _memory.Memory,
        f_th: float,
        clock_hz: float = 100e6,
        skew_s: float = 0.0,
        **kw: object,
    ) -> VerificationConfig:
        """Timeout from the memory's T1/T2 and threshold ``f_th``: F(t, t + skew) = F_th solved exactly
        with T1 included (paper Eq. 1 is its T1 >> T2 limit; see hwctl.physics.memory.timeout).

        ``skew_s`` is the signed store-time offset of the partner's qubit (partner minus us, s).
        """
        t = _memory.timeout(memory, f_th, abs(skew_s))
        ticks = max(1, min(int(t * clock_hz), 1 << 62))
        return cls(
            timeout_ticks=ticks,
            clock_hz=clock_hz,
            memory=memory,
            partner_offset_ticks=int(round(skew_s * clock_hz)),
            **kw,  # type: ignore[arg-type]
        )


@dataclass
class VerificationMetrics:
    """Counters of one core (paper §IV figures of merit)."""

    headers: int = 0
    missing_local: int = 0  # sequence numbers never received here (inferred from gaps)
    verified: int = 0
    discards: dict[Cause, int] = field(default_factory=lambda: {c: 0 for c in Cause})
    revoked: int = 0
    rejected_headers: int = 0
    #: DISCARD notices for a seq the partner had already noticed (bad input: dropped)
    repeated_discards: int = 0
    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    occupancy: int = 0  # slots in use now
    max_occupancy: int = 0
    fidelity_sum: float = 0.0
    fidelity_min: float = 1.0
    occupancy_trace: list[tuple[int, int]] = field(default_factory=list)  # (tick, occupancy)
    first_ts: int | None = None  # tick of the first stored qubit
    last_verify_ts: int | None = None  # tick of the newest verification

    @property
    def mean_fidelity(self) -> float:
        return self.fidelity_sum / self.verified if self.verified else float("nan")

    def verified_rate(self, clock_hz: float) -> float:
        """Verified pairs per second (paper §IV "entangled pair rate"): pairs verified here over
        the device time from the first stored qubit to the newest verification (0 while that
        span is still empty)."""
        if not self.verified or self.first_ts is None or self.last_verify_ts is None:
            return 0.0
        span = (self.last_verify_ts - self.first_ts) / clock_hz
        return self.verified / span if span > 0 else 0.0


# ----------------------------------------------------------------------------------- codec


def encode_records(records: Sequence[tuple[RecordKind, int, np.ndarray]]) -> bytes:
    """Encode (kind, base_seq32, bool-array) records into one partner message."""
    out = bytearray((MSG_VERSION,))
    for kind, base, bits in records:
        n = len(bits)
        if not 0 < n <= MAX_RECORD_BITS:
            raise ValueError(f"record of {n} bits (1..{MAX_RECORD_BITS})")
        out += _REC.pack(int(kind), base & SEQ_MASK, n)
        out += np.packbits(np.asarray(bits, dtype=bool), bitorder="little").tobytes()
    return bytes(out)


def decode_records(data: bytes) -> list[tuple[RecordKind, int, np.ndarray]]:
    """Inverse of :func:`encode_records`; raises :class:`VerificationProtocolError` if malformed."""
    if not data or data[0] != MSG_VERSION:
        raise VerificationProtocolError(
            f"verification message: bad version {data[:1].hex() or 'empty'} (want {MSG_VERSION})"
        )
    out = []
    off = 1
    mv = memoryview(data)
    while off < len(data):
        if off + _REC.size > len(data):
            raise VerificationProtocolError("verification message: truncated record header")
        kind, base, n = _REC.unpack_from(data, off)
        off += _REC.size
        nb = (n + 7) >> 3
        if n == 0 or off + nb > len(data):
            raise VerificationProtocolError("verification message: truncated or empty bitmap")
        try:
            k = RecordKind(kind)
        except ValueError:
            raise VerificationProtocolError(f"verification message: unknown record kind {kind}") from None
        bits = np.unpackbits(np.frombuffer(mv[off : off + nb], dtype=np.uint8), count=n, bitorder="little")
        off += nb
        out.append((k, base, bits.view(bool)))
    return out


def serial_diff(a: int, b: int) -> int:
    """a - b in 32-bit serial-number arithmetic (RFC 1982): result in [-2^31, 2^31)."""
    d = (a - b) & SEQ_MASK
    return d - SEQ_MOD if d >= SEQ_HALF else d


# ----------------------------------------------------------------------------------- core


class VerificationCore:
    """One node's pair-verification state machine (paper §II-C2). See the module docstring."""

    def __init__(self, config: VerificationConfig) -> None:
        self.config = config
        self.metrics = VerificationMetrics()
        w = 1 << config.window_bits
        self._w = w
        self._mask = w - 1
        self._state = np.zeros(w, dtype=np.uint8)
        self._ts = np.zeros(w, dtype=np.int64)
        self._slot = np.zeros(w, dtype=np.int64)
        self._pbits = np.zeros(w, dtype=bool)  # partner HAVE bits
        self._pdisc = np.zeros(w, dtype=bool)  # partner DISCARD notices (it had them, timed out)
        #: tick the partner's HAVE covering each seq was received: when the partner's ID became
        #: known here, for a header ingested after that report (see _resolve)
        self._prx = np.zeros(w, dtype=np.int64)
        # staged headers (hot path)
        self._st_seq: list[int] = []
        self._st_ts: list[int] = []
        self._st_slot: list[int] = []
        self._app_seq = self._st_seq.append
        self._app_ts = self._st_ts.append
        self._app_slot = self._st_slot.append
        # own sequence state (extended sequence numbers); None until the first header
        self._front: int | None = None  # newest ext seq received
        self._last32 = 0
        self._tail = 0  # oldest ext seq that may be PENDING
        self._reported = 0  # newest ext seq covered by our HAVE records
        self._unrep_ts: int | None = None  # store tick of the oldest unreported header
        # partner state
        self._p_front: int | None = None  # newest ext seq covered by the partner's HAVE records
        self._discard_notices: list[np.ndarray] = []
        self._actions: list[Action] = []
        self._last_sample: int | None = None
        self._last_scan: int | None = None
        self._max_after = False  # handle_headers takes max_occupancy after the evictions

    # ------------------------------------------------------------------ inputs

    def handle_header(self, seq: int, ts: int, slot: int) -> None:
        """HEADER(seq, ts, slot) from the backend: a qubit with entanglement ID ``seq`` was stored
        in ``slot`` at device tick ``ts`` (paper §II-C2 step 1). O(1), no numpy."""
        self._app_seq(seq)
        self._app_ts(ts)
        self._app_slot(slot)

    def handle_headers(self, seqs: np.ndarray, ts: np.ndarray, slots: np.ndarray,
                       evicted: np.ndarray | None = None) -> None:
        """Many HEADERs at once (arrays in arrival order); same semantics as :meth:`handle_header`.
        ``evicted`` (block mode, :class:`hwctl.hdrblock.Arrivals`): the 32-bit seqs these
        arrivals overwrote in the device's ring (-1: none known), discarded as by
        :meth:`overwritten` before ``max_occupancy`` is taken. Ingested first and discarded
        after, a batch's arrivals and the photons they overwrote were counted together for a
        moment: up to a batch of blocks more slots in use than the ring has (a loaded K2 1.3 MHz
        demo: "max slots in use 9038 of 8192")."""
        if len(seqs) == 0:
            return
        self._ingest()
        if self._unrep_ts is None:
            self._unrep_ts = int(ts[0])
        self._max_after = evicted is not None
        try:
            self._ingest_arrays(
                np.asarray(seqs, dtype=np.int64) & SEQ_MASK,
                np.asarray(ts, dtype=np.int64),
                np.asarray(slots, dtype=np.int64),
            )
        finally:
            self._max_after = False
        if evicted is not None:
            ev = np.asarray(evicted, dtype=np.int64)
            ev = ev[ev >= 0]
            if ev.size:
                self.overwritten(ev)
            m = self.metrics
            m.max_occupancy = max(m.max_occupancy, m.occupancy)

    def handle_message(self, data: bytes, now: int) -> None:
        """Bytes from the partner's :class:`SendToPartner`, received at tick ``now``."""
        records = decode_records(data)
        # Staged headers need ingesting first only if this message covers them (channel skew
        # larger than the latency); otherwise they are matched against the bits when ingested.
        if self._st_seq:
            first = self._st_seq[0] & SEQ_MASK
            for _, base32, bits in records:
                if serial_diff((base32 + bits.size - 1) & SEQ_MASK, first) >= 0:
                    self._ingest()
                    break
        self.metrics.messages_received += 1
        for kind, base32, bits in records:
            if kind is RecordKind.HAVE:
                self._on_have(base32, bits, now)
            else:
                self._on_discard(base32, bits, now)
        self._advance_tail()
        self._sample(now)

    def get_timer(self) -> int | None:
        """Tick of the next deadline (report flush or oldest qubit's timeout), or None."""
        best: int | None = None
        unrep = self._unrep_ts
        if unrep is None and self._st_ts:
            unrep = self._st_ts[0]
        if unrep is not None:
            best = unrep + min(self.config.report_interval_ticks, self.config.timeout_ticks)
        if self._front is not None and self._tail <= self._front:
            i = self._tail & self._mask
            if self._state[i] == PENDING:
                t = int(self._ts[i]) + self.config.timeout_ticks
                if self._last_scan is not None:  # batch timeout scans: at most one per interval
                    t = max(t, self._last_scan + self.config.report_interval_ticks)
                if best is None or t < best:
                    best = t
        return best

    def handle_timer(self, now: int) -> None:
        """Act on every deadline <= ``now``: send due HAVE reports, time qubits out."""
        self._ingest()
        cfg = self.config
        if self._unrep_ts is not None and now >= self._unrep_ts + min(
            cfg.report_interval_ticks, cfg.timeout_ticks
        ):
            self._emit_reports()
        i = self._tail & self._mask
        if (
            self._front is not None
            and self._tail <= self._front
            and self._state[i] == PENDING
            and int(self._ts[i]) + cfg.timeout_ticks <= now
        ):
            self._last_scan = now
            self._timeouts(now)
            if self._discard_notices and self._unrep_ts is None:
                self._unrep_ts = now  # DISCARD notices ride with the next report
        self._sample(now)

    def flush(self, now: int) -> None:
        """Send a HAVE report now for everything received so far (e.g. before shutdown)."""
        self._ingest()
        self._emit_reports()
        self._sample(now)

    def release(self, seqs: Sequence[int]) -> None:
        """Application finished with verified qubits (only when ``consume_on_verify`` is False)."""
        if self._front is None:
            return
        ext = np.array([self._unwrap(s) for s in seqs], dtype=np.int64)
        ok = (ext <= self._front) & (ext > self._front - self._w)
        idx = ext[ok] & self._mask
        held = idx[self._state[idx] == VERIFIED]
        if held.size:
            self._state[held] = CONSUMED
            self._free(self._slot[held])

    def overwritten(self, seqs: np.ndarray, cause: Cause = Cause.OVERWRITTEN) -> None:
        """Block mode (docs/header-path.md section 3): the device's slot ring stored new photons
        over these (32-bit seqs). A qubit still pending is discarded with cause OVERWRITTEN and
        the partner gets a DISCARD notice (it drops its half, like after a timeout); a verified
        one the application still holds is gone too (OVERWRITTEN: it was not pinned in time;
        with DEVICE_LOST the partner is told too and counts its half as revoked).
        Vectorised; seqs outside the state window or already resolved are ignored. ``cause``
        DEVICE_LOST: the device restarted and lost every photon it held (hwctl.recovery)."""
        self._ingest()
        seqs = np.asarray(seqs, dtype=np.int64)
        if self._front is None or seqs.size == 0:
            return
        ref = self._front
        d = (seqs - (ref & SEQ_MASK)) & SEQ_MASK
        ext = ref + np.where(d >= SEQ_HALF, d - SEQ_MOD, d)
        ext = ext[(ext <= self._front) & (ext > self._front - self._w)]
        if ext.size == 0:
            return
        idx = ext & self._mask
        st = self._state[idx]
        lo = int(ext.min())
        pend = st == PENDING
        if pend.any():
            self._discard(idx[pend], lo, cause)
            self._discard_notices.append(ext[pend])
            if self._unrep_ts is None:
                self._unrep_ts = int(self._ts[self._front & self._mask])
        held = st == VERIFIED
        if held.any():
            self._discard(idx[held], lo, cause)
            if cause is Cause.DEVICE_LOST:  # the partner's half of a lost pair: revoked there
                self._discard_notices.append(ext[held])
                if self._unrep_ts is None:
                    self._unrep_ts = int(self._ts[self._front & self._mask])
        self._advance_tail()

    def drain(self) -> list[Action]:
        """Return and clear the actions produced so far, in order."""
        out, self._actions = self._actions, []
        return out

    def ingest(self) -> None:
        """Ingest the staged HEADERs now (the core does it lazily, see "Hot path"): those the
        partner's reports already covered are matched, so :meth:`drain` may then give pairs.
        A reader of results calls it first (and carries out what it decided) so that every view
        of them agrees, whichever it reads first."""
        self._ingest()

    @property
    def occupancy(self) -> int:
        """Memory slots in use (pending, plus verified-but-held when not consuming)."""
        self._ingest()
        return self.metrics.occupancy

    # ------------------------------------------------------------------ internals

    def _unwrap(self, seq32: int) -> int:
        ref = self._front if self._front is not None else self._p_front
        if ref is None:
            return SEQ_MOD + (seq32 & SEQ_MASK)  # offset keeps early ext numbers positive
        return ref + serial_diff(seq32, ref & SEQ_MASK)

    def _idx(self, lo: int, hi: int) -> slice | np.ndarray:
        """Ring positions of extended sequence numbers lo..hi inclusive: a slice (a view, the
        common case) or an index array when the range wraps around the ring."""
        a = lo & self._mask
        b = a + (hi - lo)
        if b < self._w:
            return slice(a, b + 1)
        return np.arange(lo, hi + 1, dtype=np.int64) & self._mask

    @staticmethod
    def _pick(sel: slice | np.ndarray, m: np.ndarray) -> np.ndarray:
        """Ring positions of ``sel`` where boolean ``m`` is set."""
        if isinstance(sel, slice):
            return np.flatnonzero(m) + sel.start
        return sel[m]

    def _ingest(self) -> None:
        if not self._st_seq:
            return
        seqs = np.array(self._st_seq, dtype=np.int64)
        ts = np.array(self._st_ts, dtype=np.int64)
        slots = np.array(self._st_slot, dtype=np.int64)
        self._st_seq.clear()
        self._st_ts.clear()
        self._st_slot.clear()
        if self._unrep_ts is None:
            self._unrep_ts = int(ts[0])
        self._ingest_arrays(seqs & SEQ_MASK, ts, slots)

    def _ingest_arrays(self, seq32: np.ndarray, ts: np.ndarray, slots: np.ndarray) -> None:
        n = len(seq32)
        if self._front is None:
            first = self._unwrap(int(seq32[0]))
            self._front = first - 1
            self._last32 = (int(seq32[0]) - 1) & SEQ_MASK
            self._tail = first
            self._reported = first - 1
        prev = np.empty(n, dtype=np.int64)
        prev[0] = self._last32
        prev[1:] = seq32[:-1]
        d = (seq32 - prev) & SEQ_MASK
        bad = (d == 0) | (d >= SEQ_HALF)
        if bad.any():
            self._ingest_with_rejects(seq32, ts, slots)
            return
        ext = self._front + np.cumsum(d)
        new_front = int(ext[-1])
        if new_front - self._front > self._w // 2 and n > 1:
            h = n // 2  # a huge jump inside one batch: keep each step within the ring
            self._ingest_arrays(seq32[:h], ts[:h], slots[:h])
            self._ingest_arrays(seq32[h:], ts[h:], slots[h:])
            return
        old_front = self._front
        lim = new_front - self._w + 1
        if self._tail < lim:
            self._force_window(lim, int(ts[0]))
        span_lo = max(old_front + 1, new_front - self._w + 1)
        self._state[self._idx(span_lo, new_front)] = ABSENT
        i = ext & self._mask
        self._state[i] = PENDING
        self._ts[i] = ts
        self._slot[i] = slots
        self._front = new_front
        self._last32 = int(seq32[-1])
        m = self.metrics
        if m.first_ts is None:
            m.first_ts = int(ts[0])
        m.headers += n
        m.missing_local += (new_front - old_front) - n
        m.occupancy += n
        if m.occupancy > m.max_occupancy and not self._max_after:  # (handle_headers: evicted)
            m.max_occupancy = m.occupancy
        if self._tail > old_front:
            self._tail = int(ext[0])
        # headers arriving after the partner already reported their sequence numbers
        if self._p_front is not None and int(ext[0]) <= self._p_front:
            self._resolve(int(ext[0]), min(new_front, self._p_front), None)
            self._advance_tail()

    def _ingest_with_rejects(self, seq32: np.ndarray, ts: np.ndarray, slots: np.ndarray) -> None:
        last = self._last32
        keep = []
        for k in range(len(seq32)):
            s = int(seq32[k])
            d = (s - last) & SEQ_MASK
            if d == 0 or d >= SEQ_HALF:
                self.metrics.rejected_headers += 1
                self._actions.append(HeaderRejected(s, int(slots[k])))
                self._actions.append(FreeSlots(np.array([slots[k]], dtype=np.int64)))
            else:
                keep.append(k)
                last = s
        if keep:
            k = np.array(keep, dtype=np.int64)
            self._ingest_arrays(seq32[k], ts[k], slots[k])

    def _force_window(self, lim: int, now: int) -> None:
        """Discard pending entries older than ``lim`` (the ring is about to reuse them)."""
        lo = self._tail
        hi = min(lim - 1, self._front if self._front is not None else lim - 1)
        if hi >= lo:
            lo = max(lo, hi - self._w + 1)
            idx = self._idx(lo, hi)
            p = self._pick(idx, self._state[idx] == PENDING)
            if p.size:
                self._discard(p, lo, Cause.WINDOW)
        self._tail = max(self._tail, lim)

    def _resolve(self, lo: int, hi: int, now: int | None) -> None:
        """Match pending entries lo..hi (ext) against the partner's HAVE bits."""
        if hi < lo:
            return
        assert self._p_front is not None
        valid_lo = self._p_front - self._w + 1
        if lo < valid_lo:  # partner info already overwritten: cannot match any more
            idx = self._idx(lo, min(hi, valid_lo - 1))
            p = self._pick(idx, self._state[idx] == PENDING)
            if p.size:
                self._discard(p, lo, Cause.WINDOW)
            lo = valid_lo
            if hi < lo:
                return
        idx = self._idx(lo, hi)
        pend = self._state[idx] == PENDING
        if not pend.any():
            return
        have = self._pbits[idx]
        # When the partner's ID became known here (paper II-C2, matching): ``now`` (its report
        # is being handled), or, for headers ingested after the partner's report already covered
        # them (``now`` None: channel skew, or this host decoding late), the tick that report
        # was received. The pair is judged at that device tick, not at the host's later
        # decoding: a timeout only if the qubit was older than the timeout then, and its
        # verification time (and fidelity) is that tick, never the store tick (which before the
        # ninth session made a late-decoded pair look verified at age 0).
        when = self._prx[idx] if now is None else now
        # timeouts are scanned lazily: never verify a qubit past its timeout
        late = pend & (self._ts[idx] + self.config.timeout_ticks < when)
        if late.any():
            li = self._pick(idx, late)
            self._discard(li, lo, Cause.TIMEOUT)
            self._discard_notices.append(lo + ((li - lo) & self._mask))
            if self._unrep_ts is None:
                self._unrep_ts = now if now is not None else int(self._ts[li].max())
            pend &= ~late
        sel = pend & have
        ver = self._pick(idx, sel)
        if ver.size:
            self._verify(ver, lo, now if now is not None else when[sel])
        gone = pend & ~have
        if gone.any():
            timed_out = gone & self._pdisc[idx]  # the partner had it and timed it out
            if timed_out.any():
                self._discard(self._pick(idx, timed_out), lo, Cause.PARTNER_TIMEOUT)
                gone &= ~timed_out
            miss = self._pick(idx, gone)
            if miss.size:
                self._discard(miss, lo, Cause.PARTNER_MISSING)

    def _seq32_of(self, idx: np.ndarray, ref_lo: int) -> np.ndarray:
        """32-bit sequence numbers of ring indices that lie within ref_lo .. ref_lo + W - 1."""
        ext = ref_lo + ((idx - ref_lo) & self._mask)
        return (ext & SEQ_MASK).astype(np.uint32)

    def _verify(self, idx: np.ndarray, ref_lo: int, now: int | np.ndarray) -> None:
        """Verified at tick ``now`` (one tick, or one per entry), never before its store tick."""
        m = self.metrics
        store = self._ts[idx]
        vts = np.array(np.broadcast_to(now, idx.shape), dtype=np.int64)
        np.maximum(vts, store, out=vts)
        fid = None
        mem = self.config.memory
        if mem is not None:
            hz = self.config.clock_hz
            age = (vts - store) / hz
            page = np.maximum(age - self.config.partner_offset_ticks / hz, 0.0)
            fid = np.asarray(_memory.fidelity(mem, age, page), dtype=float).reshape(-1)
            m.fidelity_sum += float(fid.sum())
            m.fidelity_min = min(m.fidelity_min, float(fid.min()))
        slots = self._slot[idx].copy()
        self._actions.append(PairsVerified(self._seq32_of(idx, ref_lo), slots, store, vts, fid))
        m.verified += idx.size
        m.last_verify_ts = max(m.last_verify_ts or 0, int(vts.max()))
        if self.config.consume_on_verify:
            self._state[idx] = CONSUMED
            self._free(slots)
        else:
            self._state[idx] = VERIFIED

    def _discard(self, idx: np.ndarray, ref_lo: int, cause: Cause) -> None:
        self._state[idx] = DISCARDED
        slots = self._slot[idx].copy()
        self._actions.append(PairsDiscarded(self._seq32_of(idx, ref_lo), slots, cause))
        self.metrics.discards[cause] += idx.size
        self._free(slots)

    def _free(self, slots: np.ndarray) -> None:
        self.metrics.occupancy -= slots.size
        self._actions.append(FreeSlots(slots))

    def _advance_tail(self) -> None:
        if self._front is None:
            return
        st = self._state
        while self._tail <= self._front:
            if st[self._tail & self._mask] == PENDING:
                return
            hi = min(self._front, self._tail + _CHUNK - 1)
            p = np.flatnonzero(st[self._idx(self._tail, hi)] == PENDING)
            if p.size:
                self._tail += int(p[0])
                return
            self._tail = hi + 1

    def _timeouts(self, now: int) -> None:
        if self._front is None:
            return
        cutoff = now - self.config.timeout_ticks
        st, ts = self._state, self._ts
        while self._tail <= self._front:
            lo = self._tail
            hi = min(self._front, lo + _CHUNK - 1)
            idx = self._idx(lo, hi)
            pend = st[idx] == PENDING
            young = pend & (ts[idx] > cutoff)
            j = int(np.argmax(young)) if young.any() else young.size
            pend[j:] = False
            late = self._pick(idx, pend)
            if late.size:
                self._discard(late, lo, Cause.TIMEOUT)
                self._discard_notices.append(lo + ((late - lo) & self._mask))
            if j < young.size:
                self._tail = lo + j
                return
            self._tail = hi + 1

    def _emit_reports(self) -> None:
        records: list[tuple[RecordKind, int, np.ndarray]] = []
        if self._front is not None and self._front > self._reported:
            lo = self._reported + 1
            while lo <= self._front:
                hi = min(self._front, lo + MAX_RECORD_BITS - 1)
                st = self._state[self._idx(lo, hi)]
                # stored here and not discarded before this report (e.g. overwritten, or lost
                # with a restarted device): a discarded one is reported as never stored
                records.append((RecordKind.HAVE, lo, (st != ABSENT) & (st != DISCARDED)))
                lo = hi + 1
            self._reported = self._front
        self._unrep_ts = None
        if self._discard_notices:
            ext = np.concatenate(self._discard_notices)
            self._discard_notices = []
            ext.sort()
            start = 0
            while start < ext.size:
                base = int(ext[start])
                stop = int(np.searchsorted(ext, base + MAX_RECORD_BITS, side="left"))
                bits = np.zeros(int(ext[stop - 1]) - base + 1, dtype=bool)
                bits[ext[start:stop] - base] = True
                records.append((RecordKind.DISCARD, base, bits))
                start = stop
        if records:
            data = encode_records(records)
            self.metrics.messages_sent += 1
            self.metrics.bytes_sent += len(data)
            self._actions.append(SendToPartner(data))

    def _on_have(self, base32: int, bits: np.ndarray, now: int) -> None:
        n = bits.size
        first = self._p_front is None
        base = self._unwrap(base32)
        if first:
            self._p_front = base - 1
        assert self._p_front is not None
        if base <= self._p_front:  # overlap with what we already have: keep only the new part
            skip = self._p_front + 1 - base
            if skip >= n:
                return
            bits = bits[skip:]
            base += skip
            n = bits.size
        if base > self._p_front + 1:  # gap in partner's reports: nothing stored there
            g_lo = max(self._p_front + 1, base - self._w)
            gap = self._idx(g_lo, base - 1)
            self._pbits[gap] = False
            self._prx[gap] = now
        old = self._p_front
        new = base + n - 1
        if n > self._w:
            bits = bits[-self._w :]
            base = new - self._w + 1
        self._pbits[self._idx(base, new)] = bits
        self._prx[self._idx(base, new)] = now
        self._pdisc[self._idx(max(old + 1, new - self._w + 1), new)] = False  # fresh partner seqs
        self._p_front = new
        if self._front is None:
            return
        if first:
            lo = self._tail  # entries before the partner's first report: partner never had them
            if lo < base:
                before = self._idx(max(lo, base - self._w), base - 1)
                self._pbits[before] = False
                self._prx[before] = now
        else:
            lo = max(self._tail, old + 1)
        self._resolve(lo, min(self._front, new), now)

    def _on_discard(self, base32: int, bits: np.ndarray, now: int) -> None:
        base = self._unwrap(base32)
        ext = base + np.flatnonzero(bits).astype(np.int64)
        if self._p_front is not None:
            known = (ext <= self._p_front) & (ext > self._p_front - self._w)
            # the partner discards a seq once: a second notice (a duplicated message) is
            # counted and dropped, never a second revocation or discard here
            rep = np.zeros(ext.size, dtype=bool)
            rep[known] = self._pdisc[ext[known] & self._mask]
            if rep.any():
                self.metrics.repeated_discards += int(rep.sum())
                ext = ext[~rep]
                known = known[~rep]
            inp = ext[known]
            self._pbits[inp & self._mask] = False
            self._pdisc[inp & self._mask] = True
        if self._front is None:
            return
        ext = ext[(ext <= self._front) & (ext > self._front - self._w)]
        if ext.size == 0:
            return
        idx = ext & self._mask
        st = self._state[idx]
        p = idx[st == PENDING]
        if p.size:
            self._discard(p, int(ext[0]), Cause.PARTNER_TIMEOUT)
        rv = ext[(st == VERIFIED) | (st == CONSUMED)]
        if rv.size:
            self.metrics.revoked += rv.size
            self._actions.append(PairsRevoked((rv & SEQ_MASK).astype(np.uint32)))

    def _sample(self, now: int) -> None:
        cfg = self.config
        m = self.metrics
        if self._last_sample is None or now - self._last_sample >= cfg.occupancy_sample_ticks:
            self._last_sample = now
            if len(m.occupancy_trace) < cfg.max_occupancy_samples:
                m.occupancy_trace.append((now, m.occupancy))
