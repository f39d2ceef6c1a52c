"""Sans-IO software twin of the hwctl FPGA module: bytes in, bytes out, ``advance_to(cycle)``.

The model speaks exactly the wire spec (``hwctl/wire/spec.toml``): same registers, commands,
responses (with the one-deep retry memory), events and errors. It never reads a clock and never
does I/O; a driver (``hwctl.sim.twin.serve``) or a test bench owns time and bytes:

    twin = TwinModel(TwinConfig(p_photon=1e-3, seed=7))
    twin.feed(encode(Schedule(t_start=1000, count=10_000, period=50, window=2), seq=1))
    twin.advance_to(2_000_000)          # runs every attempt whose cycle is <= 2_000_000
    out = twin.read()                   # ACK, then HERALD or DONE, as COBS frames

Cycle-level semantics (the contract the RTL is scored against, see docs/twin.md):

- A command is executed at the cycle ``now`` at which :meth:`feed` completes its frame (the RTL's
  UART receive latency is the driver's business). Its response is queued at that cycle.
- SCHEDULE entry with ``t_start < now`` when it reaches the FIFO head -> LATE(t_start, now),
  ERR_LATE += 1 (with CONTROL.LATE_JOIN set, a SCHEDULE_PAIRS entry instead starts at its next
  grid point ``t_start + k*period >= now`` and its PAIR attempts still count from ``t_start``;
  LATE only if no attempt of it is left). Otherwise attempt ``k`` fires at ``t_k = t_start + k*period``; its detection
  window is ``[t_k, t_k + window)``. The outcome of attempt ``k`` is decided at
  ``t_k + window`` (window closed): exactly one detector clicked -> HERALD(ts=click cycle,
  detector, attempt=k) at that cycle and the schedule ends; both clicked -> CNT_BOTH += 1 and
  the schedule goes on. After the last attempt's window closes without success:
  DONE(ts=t_last + window, attempts=count, EXHAUSTED). The next FIFO entry is popped at the cycle
  the previous one ended.
- ABORT at ``now``: DONE(ts=now, attempts=attempts fired so far (t_k <= now), ABORTED) if a
  schedule was running, queued entries dropped; ACK in every case.
- Transmit: one UART, ``uart_cycles_per_byte`` cycles per byte (8N1 at spec.uart_baud), frames
  leave whole; a waiting response goes before waiting events. Events wait in an event FIFO of
  ``event_fifo_depth`` frames; an event generated while it is full is lost (its 8-bit event seq
  is still consumed, so the host sees a gap), EVT_LOST += 1, and as soon as the FIFO has room one
  ERROR(EVENT_OVERFLOW, info=events lost since the last report) is queued.
- Bad frames: CRC or COBS/length framing error -> ERR_CRC += 1 and ERROR(code, info=ERR_CRC);
  valid CRC but unknown opcode / wrong payload length / not a command -> NAK(opcode, code).
- Midpoint headers: HEADER(seq, ts, slot) with the lowest free slot, or ERROR(NO_SLOT, info=seq);
  FREE(slot) / FREE_MASK(base, mask) return slots, all or nothing (NAK(BAD_SLOT) if any named
  slot is not allocated, NAK(BAD_ARG) for an empty mask);
  malformed header -> ERR_BAD_HEADER += 1, ERROR(BAD_HEADER, info=ERR_BAD_HEADER).
- Block mode (CONTROL.HDR_BLOCK, wire v4, docs/header-path.md): headers go to the slot ring and
  HDR_BLOCK events of :class:`hwctl.sim.twin.hdrblock.BlockEncoder` (the reference the RTL is scored
  against) instead: no HEADER and no per-header ERROR(BAD_HEADER); ERROR(NO_SLOT, info=seq) when
  every ring slot is pinned, and when the RTL's arrival queue (one pending + 8, hdr_block.v) is
  full: :class:`hwctl.sim.twin.hdrblock.ArrivalQueue` times each arrival's encoding, ring search
  and pin change as the RTL does. The flush timer runs on internal cycles. PIN_MASK / UNPIN_MASK close
  the open block and their response leaves after every event queued before them (an ordered
  response; other responses still go before waiting events). SLOTS_FREE reads the ring's unpinned
  slots while HDR_BLOCK is set, the legacy pool's free slots otherwise. Block buffers (the RTL's
  hdr_block NB = ``block_buffers``): a closed block holds one until the UART has started its
  second-to-last byte (blk_tx then hands over the delimiter), its frame starts ``BLK_TX_LEAD``
  cycles after blk_tx takes its token (CRC pass, first COBS scan; see the constant), not before
  the UART is free; a block that opens
  while every buffer is held is lost whole at its close: its event seq consumed, EVT_LOST += 1
  and the EVENT_OVERFLOW report (as an event lost at a full event FIFO), its ``blk`` a gap. A
  block that holds a buffer is never lost at the event FIFO: while the FIFO is full (or an
  earlier block waits) it waits outside it, as the RTL's token in event_arb, and is queued with
  its event seq once there is room and no loss report is due (a report goes first: losses during
  a backlog are reported before blocks closed earlier).

Physics behind the detectors (single-click scheme, ESP paper Sec. II-B and docs/twin.md "Physics"): per attempt a
heralding photon reaches one of the two detectors with probability ``p_photon`` (~ 2*alpha*eta),
equally likely either one, and each detector adds a dark click with probability ``dark_prob`` per
window. Exactly one detector clicking is a herald (a dark-count herald is a false herald, which is
what the hardware would see too). A test bench can instead inject clicks with :meth:`inject_click`
(set ``p_photon = dark_prob = 0``) and header arrivals with :meth:`inject_header`.

Attempts are decided in vectorised blocks of up to ``BLOCK`` attempts drawn from a seeded numpy
generator: the outcome of attempt ``k`` depends only on the seed and on the command history, never
on how the caller slices time, so a run is reproducible in virtual time.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from hwctl.sim.twin.hdrblock import (
    DEFAULT_FLUSH,
    DEFAULT_SLOTS,
    ENTRY_BYTES,
    MAX_GAP,
    SEARCH_CYCLES,
    SKIP_BYTE,
    SKIP_G,
    ArrivalQueue,
    BlockEncoder,
    PinError,
)
from hwctl.sim.twin.header import HEADER_CYCLES
from hwctl.sim.twin.testgen import DET_GEN_LAT, TestPatterns
from hwctl.wire import (
    CLOCK_HZ,
    DEVICE_ID,
    UART_BAUD,
    WIRE_VERSION,
    Abort,
    Ack,
    ControlBit,
    Done,
    DoneReason,
    Error,
    ErrorCode,
    FeatureBit,
    Frame,
    FrameDecoder,
    FrameError,
    Free,
    FreeMask,
    HdrBlock,
    Header,
    Herald,
    Late,
    Message,
    Nak,
    Pair,
    PinMask,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    Schedule,
    SchedulePairs,
    StatusBit,
    TestBit,
    Time,
    TimeSet,
    TimeValue,
    UnpinMask,
    encode,
)
from hwctl.wire.features import ALL_FEATURES, FEATURES_LSB, OPCODE_FEATURE

#: Attempts decided per vectorised block: the first block of a schedule has BLOCK_MIN, each next
#: one 4x more, up to BLOCK.
BLOCK_MIN = 1 << 12
BLOCK = 1 << 18
#: Default UART time per byte: 10 bit times (8N1) at the spec baud rate, in device cycles.
UART_CYCLES_PER_BYTE = (CLOCK_HZ * 10) // UART_BAUD
#: cycles from blk_tx taking a block's token to the frame's first byte (it reads the block from
#: its buffer for the CRC, then scans the first COBS block, one buffer read per cycle, each read
#: RL = 3 cycles deep: fpga/rtl/blk_tx.v). It takes the token once the previous
#: frame's last byte is in the UART: for a previous HDR_BLOCK when its delimiter starts (1 byte
#: before its end), for another frame when frame_tx hands over its last byte (2 bytes before the
#: end), and no earlier than BLK_TOK_LAT cycles after the twin's close (hdr_block's close writes,
#: event FIFO, tx_arb). Measured on the RTL (fpga/tests/test_hdl_hdr_block.py::
#: test_hdr_block_overload_twin). 82 + 2 * RL + the first COBS block's bytes (2: seq, opcode;
#: 0 when the event seq is 0, more when blk >= 256) with a one-cycle-per-byte stream; before
#: the second read stage (eighth session) blk_tx fetched a byte every 4 cycles and this was 296.
BLK_TX_LEAD = 90
BLK_TOK_LAT = 13
U32 = 0xFFFF_FFFF
U64 = (1 << 64) - 1
#: CONTROL bits kept by a write (CLEAR_COUNTERS self-clears)
_CONTROL_MASK = ((1 << ControlBit.HERALD_EN) | (1 << ControlBit.HEADER_EN)
                 | (1 << ControlBit.HDR_BLOCK) | (1 << ControlBit.LATE_JOIN))
#: header-source pulses whose loss/corruption draws are made at once (2 draws per pulse, in pulse
#: order: the outcomes do not depend on the chunking)
SOURCE_CHUNK = 1 << 15

_COUNTERS = (
    Reg.ERR_CRC,
    Reg.ERR_LATE,
    Reg.ERR_OVERFLOW,
    Reg.ERR_BAD_HEADER,
    Reg.CNT_HERALD,
    Reg.CNT_BOTH,
    Reg.CNT_ATTEMPTS,
    Reg.CNT_HEADERS,
    Reg.EVT_LOST,
    Reg.ERR_HERALD,
    Reg.CNT_PAIRS,
)
#: event fields that carry device time (translated by the TIME_SET offset)
_TIME_FIELDS = ("ts", "t_start", "now")


@dataclass(slots=True)
class TwinConfig:
    """Parameters of one twin. Defaults match the reference RTL build (see docs/twin.md)."""

    #: probability per attempt that a heralding photon is detected (single click: ~2*alpha*eta)
    p_photon: float = 1e-3
    #: dark-click probability per detector per detection window
    dark_prob: float = 0.0
    #: queued SCHEDULE entries (not counting the running one)
    sched_fifo_depth: int = 4
    #: event frames waiting for the UART
    event_fifo_depth: int = 16
    #: memory slots managed by the header decoder (legacy HEADER mode)
    n_slots: int = 8
    #: block mode: slots of the ring (N_SLOTS register, >= 2048; the RTL top's RING_SLOTS default)
    ring_slots: int = DEFAULT_SLOTS
    #: block mode: BLOCK_FLUSH after reset, cycles
    block_flush: int = DEFAULT_FLUSH
    #: block mode: block buffers (the RTL top's NBLK): a block opening while all hold unsent
    #: blocks is lost whole (module docstring, block buffers)
    block_buffers: int = 8
    #: UART transmit time per byte in device cycles; 0 = infinitely fast line
    uart_cycles_per_byte: int = UART_CYCLES_PER_BYTE
    #: midpoint source: one header every `header_period` cycles (0 = no source)
    header_period: int = 0
    #: cycle of the first header
    header_phase: int = 0
    #: probability a header survives the channel (losses make gaps in seq)
    header_arrival: float = 1.0
    #: probability an arriving header is malformed
    header_corrupt: float = 0.0
    #: sequence number of the first header (both arms of one source must agree)
    header_seq0: int = 0
    #: seed of the header source's loss draws (None: derived from ``seed``). Two twins fed by one
    #: midpoint source share ``header_seed`` and differ in ``header_arm`` (0/1): same sequence
    #: numbers at the same cycles, independent losses per arm (see hwctl.sim.twin.header.HeaderSource)
    header_seed: int | None = None
    header_arm: int = 0
    #: the header line carries one header per ``HEADER_CYCLES`` (60 bits of ``[header]
    #: bit_cycles``, hwctl.sim.twin.header): a header (from the source or ``inject_header``) that would
    #: end less than that after the previous carried one cannot be on the line and is counted in
    #: ``TwinModel.hdr_line_overrun``; True also refuses it (the device never sees it), False (the
    #: default) still delivers it, so runs that predate the line model keep their arrivals
    header_line_refuse: bool = False
    #: CONTROL after reset
    control_reset: int = (1 << ControlBit.HERALD_EN) | (1 << ControlBit.HEADER_EN)
    seed: int = 0
    #: memory qubits per SCHEDULE_PAIRS schedule (QUBITS register; 6 in the ESP paper, Table IV)
    qubits: int = 6
    #: herald ports (hl_i / trig_o pairs; N_PORTS register)
    n_ports: int = 4
    #: HERALD_WAIT after reset: cycles to wait for heralds in flight after the last attempt
    herald_wait: int = 4000
    #: build features (spec [feature_bits]; a build profile of hwctl.wire.features.PROFILES):
    #: as the RTL top's V2 / PAIRS / BLOCKS / HEADERS, a command of a missing feature is an
    #: unknown opcode, HDR_BLOCK does nothing without BLOCKS, headers give nothing outside block
    #: mode without HEADERS; VERSION bits 31:16 read the mask
    features: int = ALL_FEATURES

    def __post_init__(self) -> None:
        for name in ("p_photon", "dark_prob", "header_arrival", "header_corrupt"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.sched_fifo_depth < 1 or self.event_fifo_depth < 1 or not 1 <= self.n_slots <= 65535:
            raise ValueError("FIFO depths must be >= 1 and n_slots in 1..65535 (u16 slot field)")
        if not 1 <= self.qubits <= 255 or not 1 <= self.n_ports <= 255 or self.herald_wait < 0:
            raise ValueError("qubits and n_ports must be in 1..255 (u8 fields), herald_wait >= 0")
        if not 1 <= self.ring_slots <= 65536 or self.block_flush < 1:
            raise ValueError("ring_slots must be in 1..65536 and block_flush >= 1")
        if self.header_period < 0 or (self.header_seed is not None and self.header_seed < 0) \
                or self.header_arm < 0:
            raise ValueError("header_period, header_seed and header_arm must be >= 0")

    @classmethod
    def for_fidelity(
        cls,
        fidelity: float,
        *,
        eta: float | None = None,
        dark_rate_hz: float = 0.0,
        window_cycles: int = 2,
        **kw,
    ) -> TwinConfig:
        """Detectors for a request of fidelity F: p_photon = 2*(1-F)*eta from
        :func:`hwctl.physics.heralding.success_probability` (eta: the K2-calibrated end-to-end
        efficiency unless given); dark_prob = dark_rate * window duration (Poisson, small rate)."""
        from hwctl.physics import heralding

        p = heralding.success_probability(fidelity, eta)
        d = -math.expm1(-dark_rate_hz * window_cycles / CLOCK_HZ)
        return cls(p_photon=p, dark_prob=d, **kw)

    def outcome_probs(self) -> tuple[float, float, float, float]:
        """P(no click), P(only det0), P(only det1), P(both) for one attempt
        (:func:`hwctl.physics.heralding.outcome_probs`)."""
        from hwctl.physics.heralding import outcome_probs

        return outcome_probs(self.p_photon, self.dark_prob)


@dataclass(slots=True)
class _Entry:
    t_start: int
    count: int
    period: int
    window: int


@dataclass(slots=True)
class _Run:
    """The running schedule and its current block of decided attempts."""

    e: _Entry
    base: int = 0  # attempt index of block[0]
    n_blocks: int = 0
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    hit: int | None = None  # index in block of the first single click
    click_ts: dict[int, int] = field(default_factory=dict)  # injected clicks: attempt -> first cycle
    end: int = 0  # cycle at which this block (or the schedule) resolves

    def t(self, k: int) -> int:
        return self.e.t_start + k * self.e.period


@dataclass(slots=True)
class _PairsEntry:
    t_start: int
    count: int
    period: int
    pairs: int
    port: int
    k0: int = 0  # attempts of the commanded grid skipped by a late join (CONTROL.LATE_JOIN)


@dataclass(slots=True)
class _PairsRun:
    """A running SCHEDULE_PAIRS schedule (docs/physical-layer.md section 3)."""

    e: _PairsEntry
    last_k: int = -1  # attempt of the last recorded pair
    n_pairs: int = 0

    @property
    def t_last(self) -> int:
        return self.e.t_start + (self.e.count - 1) * self.e.period

    def fired(self, now: int) -> int:
        """Attempts fired by cycle ``now`` (t_k <= now)."""
        if now < self.e.t_start:
            return 0
        return min(self.e.count, (now - self.e.t_start) // self.e.period + 1)


@dataclass(frozen=True, slots=True)
class Program:
    """A change of a node's fire program on one port, for the station of that port's link
    (``TwinModel.programs`` when ``export_programs`` is set): ``start`` (attempts at
    ``t_start + k*period``, k < count) at cycle ``cycle``, or ``stop`` (nothing fires after
    ``cycle``)."""

    kind: str  # "start" | "stop"
    cycle: int
    port: int
    t_start: int = 0
    period: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True)
class TxRecord:
    """One frame as it left the UART (for scoring): completion cycle, seq and message."""

    cycle: int
    seq: int
    msg: Message


class TwinModel:
    """Deterministic, cycle-level model of the FPGA module behind the wire protocol."""

    def __init__(self, config: TwinConfig | None = None, *, record: bool = False) -> None:
        self.cfg = config or TwinConfig()
        ss = np.random.SeedSequence(self.cfg.seed)
        att, off, hdr = ss.spawn(3)
        self._rng_att = np.random.default_rng(att)
        self._rng_off = np.random.default_rng(off)
        self._rng_hdr = np.random.default_rng(hdr)
        if self.cfg.header_seed is not None:
            self._rng_hdr = np.random.default_rng(
                np.random.SeedSequence([self.cfg.header_seed, self.cfg.header_arm]))
        self._cum = np.cumsum(self.cfg.outcome_probs()[:3])
        self.now = 0
        self._dec = FrameDecoder()
        self._regs: dict[Reg, int] = {r: 0 for r in _COUNTERS}
        self._control = self.cfg.control_reset & _CONTROL_MASK
        self._enc = BlockEncoder(self.cfg.ring_slots, self.cfg.block_flush)
        #: the RTL's arrival queue and encoder timing (its overflows: ERROR(NO_SLOT))
        self._aq = ArrivalQueue(self._enc)
        self._feat = self.cfg.features
        self._enc.enabled = self._blocks_on()
        #: process header-source arrivals in a tight loop between other events (same results as
        #: the generic event loop; tests turn it off to compare)
        self.burst = True
        #: inside that loop, runs of plain appends to the open block in one step
        #: (:meth:`_bulk_appends`; off: one arrival at a time, the benchmark's baseline)
        self.bulk = True
        self._scratch = 0
        self._last_seq: int | None = None
        self._last_resp = b""
        self._fifo: deque[_Entry | _PairsEntry] = deque()
        self._run: _Run | None = None
        self._prun: _PairsRun | None = None
        self._herald_wait = self.cfg.herald_wait
        #: test-pattern generators (TEST register, sim/twin/testgen.py)
        self._tp = TestPatterns()
        self._tp_next: tuple[int, int] | None = None  # (t_k, k): next pair attempt to loop
        self._tp_c0 = 0  # herald-loop count at the running pairs schedule's attempt 0
        self._offset = 0  # device time - internal time (TIME_SET)
        self._sync_armed: int | None = None  # TIME_SET mode 1: ts loaded at the next sync edge
        #: set by a lab: fire-program changes are appended to ``programs`` for its stations
        self.export_programs = False
        self.programs: list[Program] = []
        self._clicks: list[tuple[int, int]] = []  # injected (cycle, detector), unsorted
        self._slots = [False] * self.cfg.n_slots  # allocated?
        self._free_heap = list(range(self.cfg.n_slots))  # free slots; lowest first (a heap)
        self._n_free = self.cfg.n_slots
        #: slots HEADERs were given so far (the device's books: taken minus still allocated is
        #: what the host freed; a HEADER's frame may still be on the UART, not yet in tx_log)
        self.slots_taken = 0
        # header source: pre-drawn arrivals (absolute pulse index k, seq = header_seq0 + k)
        self._src_k = 0  # pulses drawn so far
        self._src_arr: list[int] = []  # pulse indices of arriving headers, drawn chunk
        self._src_bad: list[bool] = []
        self._src_np = np.zeros(0, np.int64)  # the same as arrays (the bulk appends)
        self._src_bad_np = np.zeros(0, bool)
        # the chunk as block entries (_src_entries), made for chunk _src_ent_k and TIME_SET
        # offset residue _src_ent_off
        self._src_t: list[int] = []
        self._src_qc: list[int] = []
        self._src_ent = b""
        self._src_brk: list[int] = []
        self._src_ent_k = -1
        self._src_ent_off = 0
        self._src_i = 0
        self._hdr_next: int | None = None  # cycle of the next arriving header
        #: headers the line could not have carried (docs/header-path.md section 2: line rate)
        self.hdr_line_overrun = 0
        self._line_free = -HEADER_CYCLES  # first cycle at which the next header may end
        if self.cfg.header_period > 0 and self.cfg.header_arrival > 0:
            self._src_load()
        self._ev_seq = 0
        self._lost_pending = 0
        self._ev_popped = 0  # event frames taken off the event FIFO so far
        #: responses: (frame, barrier): sent once ``_ev_popped >= barrier`` (ordered responses)
        self._resp_q: deque[tuple[bytes, int]] = deque()
        self._ev_q: deque[bytes] = deque()
        #: per _ev_q frame: -1, or for an HDR_BLOCK (which holds a block buffer) the cycle its token
        #: reaches blk_tx
        self._ev_blk: deque[int] = deque()
        self._blk_queued = 0  # HDR_BLOCK frames in _ev_q and _tok_wait
        #: HDR_BLOCKs closed while the event FIFO had no room (or a loss report or an earlier
        #: block was waiting): the RTL's token waits in event_arb (tokc_q), pushed with its event
        #: seq once there is room and no report is due (reports go first); (message, token cycle)
        self._tok_wait: deque[tuple[Message, int]] = deque()
        self._tx_cur: bytes | None = None
        self._tx_done = 0
        self._tx_rel = -1  # the block in transmission holds its buffer until this cycle
        self._tx_prev_blk = False  # the frame in (or last in) transmission was an HDR_BLOCK
        self._blk_lost = False  # the open block was lost at its opening (no free buffer)
        self._out = bytearray()
        self.record = record
        #: every frame sent, with the cycle it left the UART (only when record=True)
        self.tx_log: list[TxRecord] = []

    # ------------------------------------------------------------------ public API
    def feed(self, data: bytes) -> None:
        """Bytes from the host's UART line; every completed frame is executed at ``self.now``."""
        for item in self._dec.feed(data):
            self._on_frame(item)

    def read(self) -> bytes:
        """Bytes the UART has finished sending since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def advance(self, cycles: int) -> None:
        self.advance_to(self.now + cycles)

    def advance_to(self, cycle: int) -> None:
        """Run every internal event up to and including ``cycle``; then ``now = cycle``."""
        if cycle < self.now:
            raise ValueError(f"time runs forward only: now={self.now}, asked {cycle}")
        while True:
            d = self.next_deadline()
            if d is None or d > cycle:
                break
            if self.burst and d == self._hdr_next and self._enc.enabled:
                self._header_burst(cycle)
                continue
            self.now = d
            self._step()
        self.now = cycle

    def next_deadline(self) -> int | None:
        """Next cycle at which the model does something on its own (None: only input wakes it)."""
        d = self._hdr_next  # called twice per header and per frame sent: no lists here
        if self._tx_cur is not None and (d is None or self._tx_done < d):
            d = self._tx_done
        if self._run is not None and (d is None or self._run.end < d):
            d = self._run.end
        fd = self._enc.deadline
        if fd is not None and (d is None or fd < d):
            d = fd
        p = self._prun_due()
        if p is not None and (d is None or p < d):
            d = p
        tp = self._tp.deadline()   # test patterns (sim/twin/testgen.py)
        if tp is not None and (d is None or tp < d):
            d = tp
        if self._tp_next is not None and (d is None or self._tp_next[0] < d):
            d = self._tp_next[0]
        return d

    def next_interaction(self) -> int | None:
        """Next internal event that can matter to other models of a lab (schedule ends: fire
        programs, heralds consumed, PAIR/DONE): a lab steps its models together only at these;
        header arrivals, flushes and the UART only make this twin's own output bytes."""
        d = None if self._run is None else self._run.end  # (a lab asks ~50 times a request:
        p = self._prun_due()                               # no lists, no min())
        if p is not None and (d is None or p < d):
            d = p
        return d

    def _prun_due(self) -> int | None:
        """When the running pair program's last herald wait ends (its last attempt plus the
        herald wait; not before now), or None without one: both deadline queries ask it."""
        pr = self._prun
        if pr is None:
            return None
        e = pr.e
        p = e.t_start + (e.count - 1) * e.period + self._herald_wait  # pr.t_last + wait
        return p if p > self.now else self.now

    def next_wake(self, block_poll: int = 100_000) -> int | None:
        """When a real-time server should run the model again to pass on its output: the next
        interaction, UART completion or flush; in HEADER mode each header arrival is a wake-up.

        In block mode arrivals make output only through a closed block's frame, and the device
        output is polled every ``block_poll`` cycles (1 ms) while only HDR_BLOCK frames are in
        flight or waiting (their completions, arrivals and flushes do not wake the server; up
        to ``block_poll`` of frames go out in one write, like a USB-UART's latency timer); any
        other frame (a response, HERALD, PAIR, DONE, ERROR) in flight or queued is woken for at
        its own completion, as before. Before (ninth session) arrivals were polled every
        100 us and every block frame's completion was a wake-up: ~15,000 wake-ups a
        second for two twins at 1.3 MHz, most of the lab's real-time overhead
        (benchmarks/RESULTS.md, hdr_block ninth session)."""
        d = self.next_interaction()
        enc = self._enc
        if not enc.enabled:  # (the lab's every deadline query: no lists here)
            fd = enc.deadline
            if fd is not None and (d is None or fd < d):
                d = fd
            if self._tx_cur is not None and (d is None or self._tx_done < d):
                d = self._tx_done
            if self._hdr_next is not None and (d is None or self._hdr_next < d):
                d = self._hdr_next
            return d
        cands = [] if d is None else [d]
        if self._tx_cur is not None and (not self._tx_prev_blk or self._resp_q
                                         or any(r < 0 for r in self._ev_blk)):
            cands.append(self._tx_done)
        if self._tx_cur is not None or self._hdr_next is not None or self._enc._open is not None:
            cands.append(self.now + block_poll)
        return min(cands) if cands else None

    def inject_click(self, cycle: int, detector: int) -> None:
        """A detector pulse at ``cycle`` (test benches; ignored unless inside a detection window)."""
        if detector not in (0, 1):
            raise ValueError("detector must be 0 or 1")
        if cycle < self.now:
            raise ValueError(f"click at {cycle} is in the past (now={self.now})")
        if self._tp.bit(TestBit.DET_GEN):
            return  # det_i is replaced by the generator
        self._clicks.append((cycle, detector))
        run = self._run
        if run is not None and len(run.codes):
            k = self._attempt_of(run, cycle)
            if k is not None and run.base <= k < run.base + len(run.codes):
                self._mark_click(run, k, cycle, detector)
                self._resolve_block(run)

    def has(self, feature: int) -> bool:
        """The build has this feature (spec [feature_bits])."""
        return bool(self._feat >> int(feature) & 1)

    def _blocks_on(self) -> bool:
        return bool(self._control >> ControlBit.HDR_BLOCK & 1) and self.has(FeatureBit.BLOCKS)

    def inject_header(self, seq: int, *, corrupt: bool = False) -> None:
        """A midpoint header whose last stop bit is sampled at ``self.now``."""
        if not self._tp.bit(TestBit.HDR_GEN) and self._line_take():  # else the generator's line
            self._on_header(seq & U32, corrupt)

    def _line_take(self) -> bool:
        """The header line (one header per HEADER_CYCLES): a header ending at ``now`` before the
        line is free is an overrun (counted; refused with ``header_line_refuse``)."""
        if self.now < self._line_free:
            self.hdr_line_overrun += 1
            return not self.cfg.header_line_refuse
        self._line_free = self.now + HEADER_CYCLES
        return True

    def allocated_slots(self) -> list[int]:
        """Memory slots the header decoder holds (allocated by a HEADER, not yet freed)."""
        return [i for i, used in enumerate(self._slots) if used]

    def reg(self, addr: int) -> int:
        """Register value as a REG_READ at ``now`` would return it (KeyError if unknown)."""
        a = Reg(addr)
        if a == Reg.ID:
            return DEVICE_ID
        if a == Reg.VERSION:
            return (WIRE_VERSION & 0xFFFF) | (self._feat & 0xFFFF) << FEATURES_LSB
        if a == Reg.CONTROL:
            return self._control
        if a == Reg.SCRATCH:
            return self._scratch
        if a == Reg.STATUS:
            return (
                (self._run is not None or self._prun is not None) << StatusBit.RUNNING
                | (len(self._fifo) >= self.cfg.sched_fifo_depth) << StatusBit.SCHED_FULL
                | (bool(self._ev_q) or bool(self._tok_wait) or self._lost_pending > 0)
                << StatusBit.EVT_PENDING
            )
        if a == Reg.SLOTS_FREE:
            return self._enc.slots_free if self._enc.enabled else self._n_free
        if a == Reg.N_SLOTS:
            return self._enc.n_slots
        if a == Reg.BLOCK_FLUSH:
            return self._enc.flush_cycles & U32
        if a == Reg.CNT_BLOCKS:
            return self._enc.blocks_emitted
        if a == Reg.CNT_PINNED:
            return self._enc.pinned_count
        if a == Reg.QUBITS:
            return self.cfg.qubits
        if a == Reg.N_PORTS:
            return self.cfg.n_ports
        if a == Reg.HERALD_WAIT:
            if not self.has(FeatureBit.PAIRS):   # the pairs' register: absent without them
                raise KeyError(a)
            return self._herald_wait
        if a == Reg.TEST:
            return self._tp.value
        v = self._regs[a]
        run = self._run
        if run is not None and a in (Reg.CNT_ATTEMPTS, Reg.CNT_BOTH):
            v += self._partial(run, a)
        if self._prun is not None and a == Reg.CNT_ATTEMPTS:
            v += self._prun.fired(self.now)
        return v & U32

    @property
    def running(self) -> bool:
        return self._run is not None or self._prun is not None

    def device_time(self, cycle: int | None = None) -> int:
        """Device counter value (after TIME_SET) at internal cycle ``cycle`` (default now)."""
        return ((self.now if cycle is None else cycle) + self._offset) & U64

    def sync_edge(self) -> None:
        """A rising edge on ``sync_i`` at ``now``: an armed TIME_SET mode 1 loads its value.
        Called before a command executed in the same cycle, the edge loads the previous arm
        (time_set.v resolves that race the same way; its 2-cycle arm latency is in
        fpga/README.md "RTL latencies")."""
        if self._sync_armed is not None:
            self._offset = self._sync_armed - self.now
            self._sync_armed = None

    def inject_herald(self, port: int, t: int, bell: int, *, corrupt: bool = False) -> None:
        """A herald frame on ``hl_i[port]`` whose last stop bit is sampled at ``now``: attempt
        cycle ``t`` (internal time, the lab's shared clock), Bell state ``bell``; ``corrupt``
        models a bad CRC or framing (docs/physical-layer.md section 3)."""
        if self._tp.bit(TestBit.HL_GEN):
            return  # hl_i is replaced by the herald loop
        self._herald(port, t, bell, corrupt)

    def _herald(self, port: int, t: int, bell: int, corrupt: bool = False) -> None:
        run = self._prun
        ok = (not corrupt and run is not None and run.e.port == port and t >= run.e.t_start
              and (t - run.e.t_start) % run.e.period == 0)
        k = (t - run.e.t_start) // run.e.period if ok and run is not None else -1
        if not ok or run is None or k >= run.fired(self.now) or k <= run.last_k:
            self._bump(Reg.ERR_HERALD)
            self._emit(Error(int(ErrorCode.BAD_HERALD), self._regs[Reg.ERR_HERALD]))
            return
        qubit = run.n_pairs
        run.n_pairs += 1
        run.last_k = k
        self._bump(Reg.CNT_PAIRS)
        self._emit(Pair(t & U64, (k + run.e.k0) & U32, bell & 0xFF, qubit, port))
        if run.n_pairs >= run.e.pairs:
            self._end_pairs(run, DoneReason.COMPLETE)
            self._pump()

    @property
    def decoder_stats(self):
        return self._dec.stats

    # ------------------------------------------------------------------ frames in
    def _on_frame(self, item: Frame | FrameError) -> None:
        if isinstance(item, FrameError):
            if item.code in (ErrorCode.CRC, ErrorCode.FRAMING):
                self._bump(Reg.ERR_CRC)
                self._emit(Error(int(item.code), self._regs[Reg.ERR_CRC]))
                return
            seq, opcode = item.raw[0], item.raw[1]
            if opcode in OPCODE_FEATURE and not self.has(OPCODE_FEATURE[opcode]):
                item = FrameError(ErrorCode.BAD_OPCODE, item.raw)  # unknown to this build
            self._respond(seq, Nak(opcode, int(item.code)))
            return
        seq, msg = item.seq, item.msg
        feat = OPCODE_FEATURE.get(msg.OPCODE)
        if feat is not None and not self.has(feat):   # left out of this build: unknown opcode
            self._respond(seq, Nak(msg.OPCODE, int(ErrorCode.BAD_OPCODE)))
            return
        if seq == self._last_seq and not isinstance(msg, RegRead | Time):
            self._resp_q.append((self._last_resp, 0))  # retry: repeat, do not execute again
            self._tx_kick()
            return
        if msg.KIND != "command":
            self._respond(seq, Nak(msg.OPCODE, int(ErrorCode.BAD_OPCODE)))
            return
        resp = self._execute(msg)
        # PIN/UNPIN_MASK: the response leaves after the events queued so far (the block the
        # command closed included), so the host sees pin changes in order among the blocks
        ordered = isinstance(msg, PinMask | UnpinMask)
        self._respond(seq, resp, barrier=self._ev_popped + len(self._ev_q) + len(self._tok_wait)
                      if ordered else 0)
        if isinstance(msg, Schedule | SchedulePairs):
            self._pump()

    def _respond(self, seq: int, msg: Message, barrier: int = 0) -> None:
        frame = encode(msg, seq)
        self._last_seq, self._last_resp = seq, frame
        self._resp_q.append((frame, barrier))
        self._tx_kick()

    def _execute(self, msg: Message) -> Message:
        op = msg.OPCODE
        if isinstance(msg, RegRead):
            try:
                return RegValue(msg.addr, self.reg(msg.addr))
            except (ValueError, KeyError):  # not a register, or not one of this model
                return Nak(op, int(ErrorCode.BAD_REG))
        if isinstance(msg, RegWrite):
            if msg.addr == Reg.SCRATCH:
                self._scratch = msg.value
            elif msg.addr == Reg.HERALD_WAIT and self.has(FeatureBit.PAIRS):
                self._herald_wait = msg.value
            elif msg.addr == Reg.TEST:
                self._tp.write(msg.value, self.now)
                self._tp_next = None
                if self._prun is not None:  # a write restarts the loop's count now
                    k = self._prun.fired(self.now)
                    self._tp_c0 = -k
                    self._plan_loop(k)
            elif msg.addr == Reg.CONTROL:
                if msg.value >> ControlBit.CLEAR_COUNTERS & 1:
                    for r in _COUNTERS:
                        self._regs[r] = 0
                    self._enc.clear_counters()
                self._control = msg.value & _CONTROL_MASK
                for b in self._enc.set_enabled(self._blocks_on()):
                    self._emit(b)
            elif msg.addr == Reg.BLOCK_FLUSH:
                self._enc.flush_cycles = max(1, msg.value)
            else:
                return Nak(op, int(ErrorCode.BAD_REG))
            return Ack(op)
        if isinstance(msg, Schedule):
            if msg.count == 0 or msg.window == 0 or msg.period < msg.window + 2:
                return Nak(op, int(ErrorCode.BAD_ARG))
            if len(self._fifo) >= self.cfg.sched_fifo_depth:
                self._bump(Reg.ERR_OVERFLOW)
                return Nak(op, int(ErrorCode.OVERFLOW))
            self._fifo.append(_Entry(msg.t_start - self._offset, msg.count, msg.period, msg.window))
            return Ack(op)
        if isinstance(msg, SchedulePairs):
            if (msg.count == 0 or msg.period < 2 or msg.pairs == 0 or msg.pairs > self.cfg.qubits
                    or msg.port >= self.cfg.n_ports):
                return Nak(op, int(ErrorCode.BAD_ARG))
            if len(self._fifo) >= self.cfg.sched_fifo_depth:
                self._bump(Reg.ERR_OVERFLOW)
                return Nak(op, int(ErrorCode.OVERFLOW))
            self._fifo.append(_PairsEntry(msg.t_start - self._offset, msg.count, msg.period,
                                          msg.pairs, msg.port))
            return Ack(op)
        if isinstance(msg, TimeSet):
            if msg.mode > 1:
                return Nak(op, int(ErrorCode.BAD_ARG))
            if msg.mode == 0:
                self._offset = msg.ts - self.now
            else:
                self._sync_armed = msg.ts
            return Ack(op)
        if isinstance(msg, Abort):
            self._fifo.clear()
            run = self._run
            if run is not None:
                fired = self._fired(run)
                self._commit(run, fired, closed=self._closed(run))
                self._run = None
                self._emit(Done(self.now, (run.base + fired) & U32, int(DoneReason.ABORTED)))
            if self._prun is not None:
                self._end_pairs(self._prun, DoneReason.ABORTED)
            return Ack(op)
        if isinstance(msg, Free | FreeMask):
            if isinstance(msg, Free):
                named = [msg.slot]
            else:
                if msg.mask == 0:
                    return Nak(op, int(ErrorCode.BAD_ARG))
                named = [msg.base + i for i in range(msg.mask.bit_length()) if msg.mask >> i & 1]
            n = len(self._slots)
            if not all(s < n and self._slots[s] for s in named):
                return Nak(op, int(ErrorCode.BAD_SLOT))  # all or nothing
            for s in named:
                self._slots[s] = False
                heapq.heappush(self._free_heap, s)
            self._n_free += len(named)
            return Ack(op)
        if isinstance(msg, PinMask | UnpinMask):
            try:
                blocks = (self._aq.pin if isinstance(msg, PinMask) else self._aq.unpin)(
                    msg.base, msg.mask, self.now)
            except PinError as e:
                return Nak(op, int(e.code))
            for b in blocks:
                self._emit(b)
            return Ack(op)
        if isinstance(msg, Time):
            return TimeValue(self.device_time())
        return Nak(op, int(ErrorCode.BAD_OPCODE))  # pragma: no cover - all commands handled

    # ------------------------------------------------------------------ scheduler
    def _pump(self) -> None:
        """Pop FIFO entries while idle: LATE ones are refused, the first on-time one starts."""
        while self._run is None and self._prun is None and self._fifo:
            e = self._fifo.popleft()
            if (e.t_start < self.now and isinstance(e, _PairsEntry)
                    and self._control >> ControlBit.LATE_JOIN & 1):
                skip = -(-(self.now - e.t_start) // e.period)  # join the grid, no LATE
                if skip < e.count:
                    e = _PairsEntry(e.t_start + skip * e.period,
                                    e.count if e.count == U32 else e.count - skip,
                                    e.period, e.pairs, e.port, e.k0 + skip)
            if e.t_start < self.now:
                self._bump(Reg.ERR_LATE)
                self._emit(Late(e.t_start & U64, self.now))
                continue
            if isinstance(e, _PairsEntry):
                self._prun = _PairsRun(e)
                self._tp_c0 = self._tp.hl_cnt
                self._plan_loop(0)
                if self.export_programs:
                    self.programs.append(Program("start", self.now, e.port, e.t_start, e.period,
                                                 e.count))
                continue
            self._run = run = _Run(e)
            self._new_block(run)

    def _end_pairs(self, run: _PairsRun, reason: DoneReason) -> None:
        """End the SCHEDULE_PAIRS schedule at ``now``: DONE(now, attempts fired, reason)."""
        fired = run.fired(self.now)
        self._bump(Reg.CNT_ATTEMPTS, fired)
        self._prun = None
        self._tp.hl_cnt = (self._tp_c0 + fired) % self._tp.n
        self._tp_next = None
        if self.export_programs:
            self.programs.append(Program("stop", self.now, run.e.port))
        self._emit(Done(self.now, fired & U32, int(reason)))

    def _new_block(self, run: _Run) -> None:
        # blocks grow geometrically (BLOCK_MIN, x4, ... BLOCK) so a short schedule draws little;
        # the sizes depend only on the schedule, so outcomes stay independent of time slicing
        n = min(run.e.count - run.base, BLOCK, BLOCK_MIN << 2 * min(run.n_blocks, 8))
        run.n_blocks += 1
        codes = np.zeros(n, np.int8)
        det_gen = self._tp.bit(TestBit.DET_GEN)
        if self._control >> ControlBit.HERALD_EN & 1 and not det_gen:
            u = self._rng_att.random(n)
            rare = np.flatnonzero(u >= self._cum[0])  # any click at all: rare, classify only those
            if len(rare):
                codes[rare] = np.searchsorted(self._cum, u[rare], side="right")
        run.codes = codes
        run.click_ts = {}
        marked: list[tuple[int, int]] = []
        if self._clicks:
            t_lo, t_hi = run.t(run.base), run.t(run.base + n - 1) + run.e.window
            keep = []
            for c, det in self._clicks:
                if c >= t_hi:
                    keep.append((c, det))
                elif c >= t_lo:
                    k = self._attempt_of(run, c)
                    if k is not None:
                        self._mark_click(run, k, c, det)
                        marked.append((c, det))
            self._clicks = keep
        if det_gen and DET_GEN_LAT < run.e.window:  # generated clicks (TEST.DET_GEN)
            for i in self._tp.det_clicks(run.base, n):
                k = run.base + i
                self._mark_click(run, k, run.t(k) + DET_GEN_LAT, self._tp.sel)
        self._resolve_block(run)
        # clicks planned for attempts after the run's actual end (an earlier herald) were not
        # seen by this schedule: a later schedule's window may still catch them
        self._clicks.extend((c, det) for c, det in marked if c >= run.end)

    def _resolve_block(self, run: _Run) -> None:
        singles = np.flatnonzero((run.codes == 1) | (run.codes == 2))
        run.hit = int(singles[0]) if len(singles) else None
        last = run.hit if run.hit is not None else len(run.codes) - 1
        run.end = run.t(run.base + last) + run.e.window

    @staticmethod
    def _attempt_of(run: _Run, cycle: int) -> int | None:
        d = cycle - run.e.t_start
        if d < 0:
            return None
        k, r = divmod(d, run.e.period)
        return k if r < run.e.window and k < run.e.count else None

    def _mark_click(self, run: _Run, k: int, cycle: int, det: int) -> None:
        if not self._control >> ControlBit.HERALD_EN & 1:
            return
        i = k - run.base
        run.codes[i] |= 1 << det
        run.click_ts[k] = min(cycle, run.click_ts.get(k, cycle))

    def _fired(self, run: _Run) -> int:
        """Attempts of the current block whose trigger cycle is <= now."""
        if self.now < run.t(run.base):
            return 0
        n = (self.now - run.t(run.base)) // run.e.period + 1
        cap = run.hit + 1 if run.hit is not None else len(run.codes)
        return min(n, cap)

    def _closed(self, run: _Run) -> int:
        """Attempts of the current block whose window has closed by now."""
        t0 = run.t(run.base) + run.e.window
        if self.now < t0:
            return 0
        n = (self.now - t0) // run.e.period + 1
        cap = run.hit + 1 if run.hit is not None else len(run.codes)
        return min(n, cap)

    def _partial(self, run: _Run, reg: Reg) -> int:
        if reg == Reg.CNT_ATTEMPTS:
            return self._fired(run)
        return int(np.count_nonzero(run.codes[: self._closed(run)] == 3))

    def _commit(self, run: _Run, fired: int, closed: int) -> None:
        self._tp.det_fired(fired)
        self._bump(Reg.CNT_ATTEMPTS, fired)
        self._bump(Reg.CNT_BOTH, int(np.count_nonzero(run.codes[:closed] == 3)))

    def _end_of_block(self, run: _Run) -> None:
        if run.hit is not None:
            k = run.base + run.hit
            self._commit(run, run.hit + 1, run.hit + 1)
            det = int(run.codes[run.hit]) - 1
            ts = run.click_ts.get(k)
            if ts is None:
                ts = run.t(k) + int(self._rng_off.integers(run.e.window))
            self._bump(Reg.CNT_HERALD)
            self._run = None
            self._emit(Herald(ts & U64, det, k & U32))
            self._pump()
            return
        n = len(run.codes)
        self._commit(run, n, n)
        run.base += n
        if run.base >= run.e.count:
            self._run = None
            self._emit(Done(self.now & U64, run.e.count & U32, int(DoneReason.EXHAUSTED)))
            self._pump()
        else:
            self._new_block(run)

    # ------------------------------------------------------------------ headers
    def _on_header(self, seq: int, corrupt: bool) -> None:
        if not self._control >> ControlBit.HEADER_EN & 1:
            return
        enc = self._enc
        if enc.enabled:  # block mode (docs/header-path.md section 2)
            if corrupt:
                self._bump(Reg.ERR_BAD_HEADER)
                enc.bad_header()
                return
            self._bump(Reg.CNT_HEADERS)
            o = enc._open
            blocks, stored = self._aq.arrival(seq, self.device_time(), self.now, at=self.now)
            for b in blocks:
                self._emit(b)
            if enc._open is not None and enc._open is not o:
                self._block_opened()
            if not stored or enc.last_slot is None:
                self._emit(Error(int(ErrorCode.NO_SLOT), seq))
            return
        if not self.has(FeatureBit.HEADERS):   # no per-photon mode: received and dropped
            return
        if corrupt:
            self._bump(Reg.ERR_BAD_HEADER)
            self._emit(Error(int(ErrorCode.BAD_HEADER), self._regs[Reg.ERR_BAD_HEADER]))
            return
        self._bump(Reg.CNT_HEADERS)
        if not self._free_heap:
            self._emit(Error(int(ErrorCode.NO_SLOT), seq))
            return
        slot = heapq.heappop(self._free_heap)  # the lowest free slot
        self._n_free -= 1
        self._slots[slot] = True
        self.slots_taken += 1
        self._emit(Header(seq, self.now & U64, slot))

    def _src_load(self) -> None:
        """Point ``_hdr_next`` at the next arriving header, drawing chunks of pulses as needed.
        Per pulse two uniform draws in pulse order (arrives: u0 < header_arrival; malformed:
        u1 < header_corrupt): the same stream as drawing pulse by pulse."""
        cfg = self.cfg
        while self._src_i >= len(self._src_arr):
            u = self._rng_hdr.random(2 * SOURCE_CHUNK).reshape(SOURCE_CHUNK, 2)
            keep = u[:, 0] < cfg.header_arrival
            self._src_np = self._src_k + np.flatnonzero(keep)
            self._src_bad_np = u[keep, 1] < cfg.header_corrupt
            self._src_arr = self._src_np.tolist()
            self._src_bad = self._src_bad_np.tolist()
            self._src_i = 0
            self._src_k += SOURCE_CHUNK
        self._hdr_next = cfg.header_phase + self._src_arr[self._src_i] * cfg.header_period

    def _header_tick(self) -> None:
        i = self._src_i
        k = self._src_arr[i]
        bad = self._src_bad[i]
        self._src_i = i + 1
        self._src_load()
        if not self._tp.bit(TestBit.HDR_GEN) and self._line_take():  # else the generator's line
            self._on_header((self.cfg.header_seq0 + k) & U32, corrupt=bad)

    def _header_burst(self, limit: int) -> None:
        """Block mode: source arrivals up to ``limit`` (or the next scheduler event) in a tight
        loop, with the UART and the flush timer handled in between in the order of :meth:`_step`
        (the same events at the same cycles as the generic loop; tests compare the two)."""
        bound = limit
        if self._run is not None:
            bound = min(bound, self._run.end - 1)
        if self._prun is not None:
            bound = min(bound, max(self.now, self._prun.t_last + self._herald_wait) - 1)
        for d in (self._tp.deadline(), self._tp_next and self._tp_next[0]):
            if d is not None:   # test-pattern events (sim/twin/testgen.py) keep their order
                bound = min(bound, d - 1)
        enc = self._enc
        cfg = self.cfg
        per, phase, seq0 = cfg.header_period, cfg.header_phase, cfg.header_seq0
        header_en = bool(self._control >> ControlBit.HEADER_EN & 1)
        arrival, emit = self._aq.arrival, self._emit
        n_ok = n_bad = 0
        line_free, refuse, n_over = self._line_free, cfg.header_line_refuse, 0
        # runs of plain appends in bulk (see _bulk_appends): pulses far enough apart that the
        # line is never overrun and every arrival takes the queue's fast path
        bulk = (self.bulk and header_en and per >= HEADER_CYCLES and not self._aq.exact
                and not self._tp.bit(TestBit.HDR_GEN))
        while self._hdr_next is not None and self._hdr_next <= bound:
            t = self._hdr_next
            while True:  # UART completions and flushes due by t
                m = self._tx_done if self._tx_cur is not None else None
                o = enc._open
                if o is not None:
                    fd = o.opened_at + enc.flush_cycles
                    if m is None or fd < m:
                        m = fd
                if m is None or m > t:
                    break
                self.now = m
                self._step_io()
            self.now = t
            i = self._src_i
            k = self._src_arr[i]
            bad = self._src_bad[i]
            self._src_i = i + 1
            if self._src_i < len(self._src_arr):
                self._hdr_next = phase + self._src_arr[i + 1] * per
            else:
                self._src_load()
            if self._tp.bit(TestBit.HDR_GEN):
                continue
            if t < line_free:           # the line is still busy (see _line_take)
                n_over += 1
                if refuse:
                    continue
            else:
                line_free = t + HEADER_CYCLES
            if not header_en:
                continue
            if bad:
                n_bad += 1
                enc.bad_header()
                continue
            n_ok += 1
            seq = (seq0 + k) & U32
            o = enc._open
            blocks, stored = arrival(seq, (t + self._offset) & U64, t, at=t)
            for b in blocks:
                emit(b)
            if enc._open is not None and enc._open is not o:
                self._block_opened()
            if not stored or enc.last_slot is None:
                emit(Error(int(ErrorCode.NO_SLOT), seq))
            if self._tx_cur is None:
                self._tx_kick()
            if bulk and enc._open is not None and self._hdr_next is not None \
                    and self._hdr_next <= bound:
                m, t_last = self._bulk_appends(bound)
                if m:
                    n_ok += m
                    line_free = t_last + HEADER_CYCLES
        self._bump(Reg.CNT_HEADERS, n_ok)
        self._bump(Reg.ERR_BAD_HEADER, n_bad)
        self._line_free = line_free
        self.hdr_line_overrun += n_over

    def _bulk_appends(self, bound: int) -> tuple[int, int]:
        """The next source arrivals that only append to the open block, in one step: returns
        how many (0: none) and the cycle of the last one.

        Such an arrival is well formed, comes before ``bound``, before the block's flush timer
        and the RTL's timer close, with at most 124 pulses since the previous one (skip bytes
        and its entry byte fit in the block), no slot pinned (the ring takes the next slot) and
        is at least 16 cycles after the previous one (so the arrival queue is idle: its fast
        path, whose state after the run depends only on the last arrival). It emits nothing and
        touches neither the UART nor the event FIFO, so the UART completions that fall between
        these arrivals are handled after them (by the caller's loop, in their own order): the
        same bytes at the same cycles as one arrival at a time (tests compare the two). The
        entry bytes of a drawn chunk are made once (:meth:`_src_entries`), a run is a slice of
        them. The per-arrival Python step was what made the lab the bottleneck at 1.3 MHz
        (benchmarks/RESULTS.md, hdr_block ninth session)."""
        enc, aq = self._enc, self._aq
        o = enc._open
        i = self._src_i
        if o is None or enc._n_pinned or not aq._open or i == 0:
            return 0, 0
        cfg = self.cfg
        if o.last_seq != (cfg.header_seq0 + self._src_arr[i - 1]) & U32:
            return 0, 0  # the previous drawn arrival is not the block's last (not stored)
        if self._src_ent_k != self._src_k or self._src_ent_off != self._offset & 7:
            self._src_entries()
        tl, qc, brk = self._src_t, self._src_qc, self._src_brk
        lim = min(bound, o.opened_at + enc.flush_cycles - 1, aq._expire - 1)
        if tl[i] > lim or tl[i] < aq._calm:
            return 0, 0
        e = o.entries
        base = qc[i - 1]
        room = ENTRY_BYTES - (len(e) if e is not None else 0)
        end = min(bisect_right(qc, base + room, i), bisect_right(tl, lim, i))
        k = bisect_left(brk, i)
        if k < len(brk) and brk[k] < end:
            end = brk[k]
        m = end - i
        if m <= 0:
            return 0, 0
        run = self._src_ent[base:qc[end - 1]]
        if e is None:
            o.entries = bytearray(run)
        else:
            e += run
        o.n += m
        o.last_seq = (cfg.header_seq0 + self._src_arr[end - 1]) & U32
        enc.last_slot = enc._last = (enc._last + m) % enc.n_slots
        # the arrival queue after its last arrival (ArrivalQueue's fast path: finished at
        # cycle + 5 + skip bytes, the ring's next search done 7 cycles later)
        t_last = tl[end - 1]
        c = t_last + 4 + qc[end - 1] - qc[end - 2]
        r = c + 1 + SEARCH_CYCLES
        aq._rdy, aq._rdy_lazy, aq._free, aq._last_cons = r, False, c + 1, c
        aq._calm = r - 1 if r - 1 > c + 7 else c + 7
        if aq.record:
            aq.consumed.extend(tl[j] + 4 + qc[j] - qc[j - 1] for j in range(i, end))
        self._src_i = end
        if end < len(self._src_arr):
            self._hdr_next = tl[end]
        else:
            self._src_load()
        return m, t_last

    def _src_entries(self) -> None:
        """The drawn chunk's arrivals as block entries, for :meth:`_bulk_appends`: per arrival
        its cycle, the cumulative entry bytes (skip bytes + its own byte, counted from the
        chunk's first arrival, which is never in a run) and the bytes themselves; the arrivals
        that cannot be in a run (malformed, or more than 124 pulses after the previous one)."""
        cfg = self.cfg
        ks = self._src_np
        off = self._offset & 7
        t = cfg.header_phase + ks * cfg.header_period
        d = np.empty(len(ks), np.int64)
        d[:1] = MAX_GAP + 1
        np.subtract(ks[1:], ks[:-1] + 1, out=d[1:])
        cut = (d > MAX_GAP) | self._src_bad_np
        d[cut] = 0  # (never in a run: their bytes are placeholders)
        q = d // SKIP_G + 1
        qc = np.cumsum(q)
        ent = np.full(int(qc[-1]) if len(qc) else 0, SKIP_BYTE, np.uint8)
        ent[qc - 1] = (d % SKIP_G) << 3 | ((t + off) & 7)
        self._src_t = t.tolist()
        self._src_qc = qc.tolist()
        self._src_ent = ent.tobytes()
        self._src_brk = np.flatnonzero(cut).tolist()
        self._src_ent_k, self._src_ent_off = self._src_k, off

    def _step_io(self) -> None:
        """The UART completion and the flush timer due at ``now`` (part of :meth:`_step`)."""
        if self._tx_cur is not None and self._tx_done == self.now:
            frame, self._tx_cur = self._tx_cur, None
            self._send(frame)
        fd = self._enc.deadline
        if fd is not None and fd <= self.now:
            for b in self._enc.tick(self.now):
                self._emit(b)
        self._tx_kick()

    # ------------------------------------------------------------------ transmit
    def _emit(self, msg: Message) -> None:
        if self._offset:
            msg = dataclasses.replace(msg, **{f: (getattr(msg, f) + self._offset) & U64
                                              for f in _TIME_FIELDS if hasattr(msg, f)})
        blk = type(msg) is HdrBlock
        depth = self.cfg.event_fifo_depth
        if blk and not self._blk_lost and (self._tok_wait or len(self._ev_q) >= depth):
            # the token waits for room (event_arb: never dropped; a loss report due goes first,
            # and the event seq is taken when it is pushed)
            self._tok_wait.append((msg, self.now + BLK_TOK_LAT))
            self._blk_queued += 1
            return
        seq = self._ev_seq
        self._ev_seq = (seq + 1) & 0xFF
        if blk and self._blk_lost:  # no buffer when it opened: lost whole
            self._blk_lost = False
            self._lost_pending += 1
            self._bump(Reg.EVT_LOST)
            if len(self._ev_q) < self.cfg.event_fifo_depth:   # room: reported at once
                self._report_lost()
        elif not blk and len(self._ev_q) >= self.cfg.event_fifo_depth:
            self._lost_pending += 1
            self._bump(Reg.EVT_LOST)
        else:   # (an HDR_BLOCK that holds a buffer waits for room: never dropped, as the RTL's token)
            self._ev_q.append(encode(msg, seq))
            self._ev_blk.append(self.now + BLK_TOK_LAT if blk else -1)
            self._blk_queued += blk
        self._tx_kick()

    def _report_lost(self) -> None:
        lost, self._lost_pending = self._lost_pending, 0
        seq = self._ev_seq
        self._ev_seq = (seq + 1) & 0xFF
        self._ev_q.append(encode(Error(int(ErrorCode.EVENT_OVERFLOW), lost), seq))
        self._ev_blk.append(-1)

    def _push_tokens(self) -> None:
        """Waiting HDR_BLOCK tokens into the event FIFO while it has room (after a due report)."""
        while (self._tok_wait and not self._lost_pending
               and len(self._ev_q) < self.cfg.event_fifo_depth):
            msg, ready = self._tok_wait.popleft()
            seq = self._ev_seq
            self._ev_seq = (seq + 1) & 0xFF
            self._ev_q.append(encode(msg, seq))
            self._ev_blk.append(ready)

    def _block_opened(self) -> None:
        """A block opened at ``now`` (after the emission of one closed in the same step): lost
        if every block buffer still holds a block the UART has not sent."""
        nb = self.cfg.block_buffers
        if nb:
            held = self._blk_queued + (self._tx_cur is not None and self.now < self._tx_rel)
            self._blk_lost = held >= nb

    def _tx_kick(self) -> None:
        cpb = self.cfg.uart_cycles_per_byte
        while self._tx_cur is None:
            if self._resp_q and self._resp_q[0][1] <= self._ev_popped:
                frame = self._resp_q.popleft()[0]
                blk = False
            elif self._ev_q:
                frame = self._ev_q.popleft()
                ready = self._ev_blk.popleft()
                blk = ready >= 0
                self._blk_queued -= blk
                self._ev_popped += 1
                if self._lost_pending and len(self._ev_q) < self.cfg.event_fifo_depth:
                    self._report_lost()
                self._push_tokens()
            else:
                return
            if cpb == 0:
                self._send(frame)
            else:
                self._tx_cur = frame
                if blk:
                    # blk_tx takes the token when the previous frame's last byte is handed over
                    hand = self._tx_done - (cpb if self._tx_prev_blk else 2 * cpb)
                    # (its first byte also waits for the UART: at 3 Mbaud a byte outlasts the lead)
                    start = max(max(hand, ready) + BLK_TX_LEAD, self.now)
                    self._tx_done = start + len(frame) * cpb
                    self._tx_rel = self._tx_done - 2 * cpb
                else:
                    self._tx_done = self.now + len(frame) * cpb
                    self._tx_rel = -1
                self._tx_prev_blk = blk

    def _send(self, frame: bytes) -> None:
        self._out += frame
        if self.record:
            item = next(iter(FrameDecoder().feed(frame)))
            assert isinstance(item, Frame)
            self.tx_log.append(TxRecord(self.now, item.seq, item.msg))

    # ------------------------------------------------------------------ internals
    def _step(self) -> None:
        """Handle every internal event due at ``self.now`` (called by advance_to)."""
        if self._tx_cur is not None and self._tx_done == self.now:
            frame, self._tx_cur = self._tx_cur, None
            self._send(frame)
        run = self._run
        if run is not None and run.end == self.now:
            self._end_of_block(run)
        prun = self._prun
        if prun is not None and prun.t_last + self._herald_wait <= self.now:
            self._end_pairs(prun, DoneReason.EXHAUSTED)
            self._pump()
        fd = self._enc.deadline
        if fd is not None and fd <= self.now:
            for b in self._enc.tick(self.now):
                self._emit(b)
        if self._hdr_next is not None and self._hdr_next == self.now:
            self._header_tick()
        self._tp_step()
        self._tx_kick()

    # ------------------------------------------------------------------ test patterns
    def _plan_loop(self, k_from: int) -> None:
        """Plan the next pair attempt the herald loop takes (TEST.HL_GEN)."""
        run = self._prun
        self._tp_next = None
        if run is None:
            return
        e = run.e
        k = self._tp.hl_plan(e.port, e.t_start, e.period, e.count, k_from,
                             (self._tp_c0 + k_from) % self._tp.n)
        if k is not None:
            self._tp_next = (e.t_start + k * e.period, k)

    def _tp_step(self) -> None:
        tp = self._tp
        nxt = self._tp_next
        if nxt is not None and nxt[0] == self.now and self._prun is not None:
            tp.hl_take(self._prun.e.port, nxt[0])
            self._plan_loop(nxt[1] + 1)
        due = [x for x in tp.loop if x[0] == self.now]
        if due:
            tp.loop[:] = [x for x in tp.loop if x[0] != self.now]
            for _, port, t in due:
                self._herald(port, t, tp.sel)
        if tp.hdr_next is not None and tp.hdr_next == self.now:
            seq, bad = tp.next_header()
            self._on_header(seq, bad)

    def _bump(self, reg: Reg, n: int = 1) -> None:
        self._regs[reg] = (self._regs[reg] + n) & U32
