"""The node's test-pattern generators (register TEST, docs/physical-layer.md section 6), as the
twin models them: the golden model of ``fpga/rtl/test_gen.v``.

Sans-IO: the twin model calls in with its cycle; nothing here reads a clock. Cycle constants are
the RTL's (measured on ``top`` in fpga/tests/test_hdl_testgen.py, which scores the RTL against
this model):

- ``DET_GEN_LAT``: a generated click reaches the window logic this many cycles after the attempt
  fires (trigger pin register + the detector synchronizer): HERALD ts = t_k + 3, so it heralds
  only with window >= 4.
- ``HL_LOOP_LAT``: a looped herald frame is recorded (PAIR, or DONE COMPLETE) this many cycles
  after its attempt fires at ``[herald] bit_cycles`` = 4: the 11-byte frame plus the receiver
  and the matcher's division.
- ``LOOP_GAP``: after a looped attempt the next loops no earlier than this many cycles later.
- ``HDR_GEN_LAT``: a generated header's HEADER timestamp is this many cycles after the end of
  its gap (serializer start + 6 bytes at ``[header] bit_cycles`` + the synchronizer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwctl.wire import HEADER_BIT_CYCLES, HERALD_BIT_CYCLES, TestBit

DET_GEN_LAT = 3
#: (the receiver + the matcher's 71-cycle pipeline: 45 until the eighth session's two-cycle
#: division step, fpga/README.md "ECP5 Fmax, eighth session")
HL_LOOP_LAT = 11 * 10 * HERALD_BIT_CYCLES + 79   # frame bytes back to back (herald_tx B2B)
LOOP_GAP = 11 * (10 * HERALD_BIT_CYCLES + 2) + 8
HDR_UNIT = 1 << 10
#: writable bits of TEST (7:5 read 0)
TEST_MASK = 0x00FF_FF1F
#: 6 bytes to the last stop bit's sample (bit 59, mid-bit: + bit_cycles // 2, which is 0 at one
#: cycle per bit) + serializer start, the inter-byte idle cycles and the synchronizer (10
#: cycles): measured on the RTL at 16 (962), 8 (486) and 1 (69) cycles per bit,
#: fpga/tests/test_hdl_testgen.py checks it
HDR_GEN_LAT = 59 * HEADER_BIT_CYCLES + HEADER_BIT_CYCLES // 2 + 10


@dataclass(slots=True)
class TestPatterns:
    """State of the generators. ``value`` is the TEST register."""

    value: int = 0
    det_cnt: int = 0          # v2 attempts since the last generated click (mod N)
    hl_cnt: int = 0           # SCHEDULE_PAIRS attempts since the last qualifying one (mod N)
    hl_free_at: int = 0       # first cycle at which the herald loop may take an attempt
    hdr_next: int | None = None   # cycle of the next generated HEADER
    hdr_seq: int = 0
    #: looped heralds in flight: (record cycle, port, attempt cycle)
    loop: list[tuple[int, int, int]] = field(default_factory=list)

    def bit(self, b: TestBit) -> bool:
        return bool(self.value >> b & 1)

    @property
    def n(self) -> int:
        return (self.value >> TestBit.N_LSB & 0xFF) + 1

    @property
    def sel(self) -> int:
        return int(self.bit(TestBit.DET_SEL))

    @property
    def hdr_gap(self) -> int:
        return ((self.value >> TestBit.GAP_LSB & 0xFF) + 1) * HDR_UNIT

    def write(self, value: int, now: int) -> None:
        """A REG_WRITE of TEST at ``now``: every count restarts."""
        self.value = value & TEST_MASK
        self.det_cnt = self.hl_cnt = 0
        self.hl_free_at = 0
        self.hdr_seq = 0
        self.loop.clear()
        self.hdr_next = now + self.hdr_gap + HDR_GEN_LAT if self.bit(TestBit.HDR_GEN) else None

    # ------------------------------------------------------------ detector loop (v2 SCHEDULE)
    def det_clicks(self, k0: int, n: int) -> list[int]:
        """Block-relative indices i < n of the attempts k0 + i that get a generated click, for a
        block whose first attempt comes ``det_cnt`` attempts after the last click."""
        if not self.bit(TestBit.DET_GEN):
            return []
        first = (self.n - 1 - self.det_cnt) % self.n
        return list(range(first, n, self.n))

    def det_fired(self, fired: int) -> None:
        self.det_cnt = (self.det_cnt + fired) % self.n

    # ------------------------------------------------------------ herald loop (SCHEDULE_PAIRS)
    def hl_plan(self, port: int, t_start: int, period: int, count: int, k_from: int,
                cnt_from: int) -> int | None:
        """The next attempt k >= k_from (k < count) that loops, given the pair count at k_from;
        None when none does."""
        if not self.bit(TestBit.HL_GEN):
            return None
        k = k_from + (self.n - 1 - cnt_from) % self.n
        while k < count:
            t = t_start + k * period
            if t >= self.hl_free_at:
                return k
            # skipped (loop busy): the next qualifying attempt is N later
            k += self.n
        return None

    def hl_take(self, port: int, t: int) -> None:
        self.hl_free_at = t + LOOP_GAP
        self.loop.append((t + HL_LOOP_LAT, port, t))

    def hl_fired(self, fired: int) -> None:
        self.hl_cnt = (self.hl_cnt + fired) % self.n

    # ------------------------------------------------------------ header stream
    def next_header(self) -> tuple[int, bool]:
        """(seq, corrupt) of the header due now; schedules the next one."""
        seq = self.hdr_seq
        self.hdr_seq = (seq + 1) & 0xFFFF_FFFF
        assert self.hdr_next is not None
        self.hdr_next += self.hdr_gap
        return seq, self.bit(TestBit.HDR_BAD) and seq % 4 == 3

    def deadline(self) -> int | None:
        d = self.hdr_next  # (asked at every model deadline query: no list)
        for r, _, _ in self.loop:
            if d is None or r < d:
                d = r
        return d
