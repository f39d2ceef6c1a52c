"""GENERATED from hwctl/wire/spec.toml by hwctl.wire.gen. Do not edit."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

WIRE_VERSION = 4
DEVICE_ID = 0x48574354
STATION_ID = 0x48575354
CLOCK_HZ = 100000000
UART_BAUD = 3000000
MAX_PAYLOAD = 32
MAX_EVENT_PAYLOAD = 67
HEADER_MARKER = 0x7E
HEADER_BIT_CYCLES = 1
HERALD_MARKER = 0xA5
HERALD_BIT_CYCLES = 4


class ErrorCode(IntEnum):
    """Error codes shared by NAK responses and ERROR events."""

    CRC = 1  # received frame failed its CRC
    FRAMING = 2  # received frame is not valid COBS or too short/long
    BAD_OPCODE = 3  # unknown command opcode
    BAD_LENGTH = 4  # payload length does not match the opcode
    OVERFLOW = 5  # schedule FIFO full
    EVENT_OVERFLOW = 6  # event FIFO was full; info = events lost
    BAD_HEADER = 7  # malformed midpoint header
    NO_SLOT = 8  # header decoded but no free memory slot; info = header seq
    BAD_SLOT = 9  # FREE / FREE_MASK of a slot that is not allocated
    BAD_REG = 10  # unknown or read-only register
    BAD_ARG = 11  # argument out of range
    BAD_HERALD = 12  # herald frame for no running schedule, an attempt not fired, or bad CRC/framing; info = ERR_HERALD


class DoneReason(IntEnum):

    EXHAUSTED = 0
    ABORTED = 1
    COMPLETE = 2


class Reg(IntEnum):
    """Register addresses."""

    ID = 0x00  # ro: device id, meta.device_id
    VERSION = 0x01  # ro: wire_version in bits 15:0; bits 31:16: the features this device was built with ([feature_bits], bit 16 + n; 0 on a station)
    CONTROL = 0x02  # rw: bit0 HERALD_EN, bit1 HEADER_EN, bit2 CLEAR_COUNTERS (self-clearing), bit3 HDR_BLOCK (block mode, v4), bit4 LATE_JOIN (SCHEDULE_PAIRS past its t_start joins its grid, no LATE)
    STATUS = 0x03  # ro: bit0 schedule running, bit1 schedule FIFO full, bit2 event FIFO not empty
    ERR_CRC = 0x04  # ro: frames dropped for CRC or framing errors
    ERR_LATE = 0x05  # ro: schedules refused as LATE
    ERR_OVERFLOW = 0x06  # ro: schedules refused for a full FIFO
    ERR_BAD_HEADER = 0x07  # ro: malformed midpoint headers
    CNT_HERALD = 0x08  # ro: heralded successes
    CNT_BOTH = 0x09  # ro: attempts failed because both detectors clicked
    CNT_ATTEMPTS = 0x0A  # ro: attempts fired
    CNT_HEADERS = 0x0B  # ro: well-formed headers decoded
    SLOTS_FREE = 0x0C  # ro: free memory slots
    EVT_LOST = 0x0D  # ro: events lost to a full event FIFO
    SCRATCH = 0x0F  # rw: scratch register for link tests
    QUBITS = 0x10  # ro: memory qubits per schedule (device parameter, 6 by default)
    N_PORTS = 0x11  # ro: herald ports (hl_i / trig_o pairs)
    HERALD_WAIT = 0x12  # rw: cycles to wait for heralds in flight after the last attempt (default 4000)
    ERR_HERALD = 0x13  # ro: herald frames refused (BAD_HERALD)
    CNT_PAIRS = 0x14  # ro: pairs recorded (PAIR events)
    ST_DELAY = 0x18  # rw: station: fibre delay from an end to the station, cycles
    ST_WINDOW = 0x19  # rw: station: detection window, cycles (default 2 = 20 ns)
    CNT_ONE_END = 0x1A  # ro: station: windows with only one end's marker (never a herald)
    CNT_DARK = 0x1B  # ro: station: clicks with no window open
    CNT_MARKS = 0x1C  # ro: station: attempt markers seen (both ends)
    CNT_HL_DROP = 0x1D  # ro: station: heralds dropped for a full line queue (once for both lines)
    N_SLOTS = 0x1E  # ro: block mode: ring slots (>= 2048)
    BLOCK_FLUSH = 0x1F  # rw: block mode: close an open HDR_BLOCK this many cycles after its first arrival (32 bits; default 100000 = 1 ms)
    CNT_BLOCKS = 0x20  # ro: block mode: HDR_BLOCK events emitted
    CNT_PINNED = 0x21  # ro: block mode: ring slots pinned now
    TEST = 0x22  # rw: test-pattern generators on the inputs (bring-up with nothing attached; docs/physical-layer.md section 6): bits in [test_bits], reset 0


WRITABLE_REGS = frozenset({
    Reg.CONTROL,
    Reg.SCRATCH,
    Reg.HERALD_WAIT,
    Reg.ST_DELAY,
    Reg.ST_WINDOW,
    Reg.BLOCK_FLUSH,
    Reg.TEST,
})

#: registers a node device answers (the others: NAK(BAD_REG))
NODE_REGS = frozenset({
    Reg.ID,
    Reg.VERSION,
    Reg.CONTROL,
    Reg.STATUS,
    Reg.ERR_CRC,
    Reg.ERR_LATE,
    Reg.ERR_OVERFLOW,
    Reg.ERR_BAD_HEADER,
    Reg.CNT_HERALD,
    Reg.CNT_BOTH,
    Reg.CNT_ATTEMPTS,
    Reg.CNT_HEADERS,
    Reg.SLOTS_FREE,
    Reg.EVT_LOST,
    Reg.SCRATCH,
    Reg.QUBITS,
    Reg.N_PORTS,
    Reg.HERALD_WAIT,
    Reg.ERR_HERALD,
    Reg.CNT_PAIRS,
    Reg.N_SLOTS,
    Reg.BLOCK_FLUSH,
    Reg.CNT_BLOCKS,
    Reg.CNT_PINNED,
    Reg.TEST,
})

#: registers a station device answers (the others: NAK(BAD_REG))
STATION_REGS = frozenset({
    Reg.ID,
    Reg.VERSION,
    Reg.CONTROL,
    Reg.STATUS,
    Reg.ERR_CRC,
    Reg.CNT_HERALD,
    Reg.CNT_BOTH,
    Reg.EVT_LOST,
    Reg.SCRATCH,
    Reg.ST_DELAY,
    Reg.ST_WINDOW,
    Reg.CNT_ONE_END,
    Reg.CNT_DARK,
    Reg.CNT_MARKS,
    Reg.CNT_HL_DROP,
})


class ControlBit(IntEnum):

    HERALD_EN = 0
    HEADER_EN = 1
    CLEAR_COUNTERS = 2
    HDR_BLOCK = 3
    LATE_JOIN = 4


class TestBit(IntEnum):

    DET_GEN = 0
    DET_SEL = 1
    HL_GEN = 2
    HDR_GEN = 3
    HDR_BAD = 4
    N_LSB = 8
    GAP_LSB = 16


class FeatureBit(IntEnum):

    V2 = 0
    PAIRS = 1
    BLOCKS = 2
    HEADERS = 3
    FEATURES_LSB = 16


class StatusBit(IntEnum):

    RUNNING = 0
    SCHED_FULL = 1
    EVT_PENDING = 2


class Opcode(IntEnum):

    REG_READ = 0x01
    REG_WRITE = 0x02
    SCHEDULE = 0x03
    ABORT = 0x04
    FREE = 0x05
    TIME = 0x06
    FREE_MASK = 0x07
    SCHEDULE_PAIRS = 0x08
    TIME_SET = 0x09
    PIN_MASK = 0x0A
    UNPIN_MASK = 0x0B
    ACK = 0x80
    NAK = 0x81
    REG_VALUE = 0x82
    TIME_VALUE = 0x83
    HERALD = 0xA0
    DONE = 0xA1
    LATE = 0xA2
    HEADER = 0xA3
    ERROR = 0xA4
    PAIR = 0xA5
    HDR_BLOCK = 0xA6


@dataclass(frozen=True, slots=True)
class Message:
    """Base class of every frame payload; subclasses are generated per opcode."""

    OPCODE: ClassVar[int] = -1
    KIND: ClassVar[str] = ''
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>')

    #: (field name, bits) in wire order
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = ()

    def pack(self) -> bytes:
        return self.STRUCT.pack(*(getattr(self, f) for f in self.__slots__))

    @classmethod
    def unpack(cls, payload: bytes) -> Message:
        return cls(*cls.STRUCT.unpack(payload))


@dataclass(frozen=True, slots=True)
class RegRead(Message):
    """REG_READ (command, opcode 0x01): Read a 32-bit register. Response: REG_VALUE, or NAK(BAD_REG)."""

    OPCODE: ClassVar[int] = 0x01
    KIND: ClassVar[str] = 'command'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>B')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('addr', 8),)
    addr: int


@dataclass(frozen=True, slots=True)
class RegWrite(Message):
    """REG_WRITE (command, opcode 0x02): Write a 32-bit register. Response: ACK, or NAK(BAD_REG) for unknown or read-only registers."""

    OPCODE: ClassVar[int] = 0x02
    KIND: ClassVar[str] = 'command'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>BI')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('addr', 8), ('value', 32))
    addr: int
    value: int


@dataclass(frozen=True, slots=True)
class Schedule(Message):
    """SCHEDULE (command, opcode 0x03): Queue `count` attempts: attempt k fires the trigger at t_start + k*period and opens the detection window for `window` cycles from that cycle. Response: ACK when queued, NAK(OVERFLOW) when the schedule FIFO is full, NAK(BAD_ARG) when count == 0, window == 0 or period < window + 2. When the entry reaches the head of the FIFO and t_start is already in the past (t_start < now), it is refused with a LATE event and nothing fires. The first heralded success ends the schedule with HERALD; exhaustion ends it with DONE(reason=EXHAUSTED)."""

    OPCODE: ClassVar[int] = 0x03
    KIND: ClassVar[str] = 'command'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>QIIH')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('t_start', 64), ('count', 32), ('period', 32), ('window', 16))
    t_start: int
    count: int
    period: int
    window: int


@dataclass(frozen=True, slots=True)
class Abort(Message):
    """ABORT (command, opcode 0x04): Stop the running schedule (DONE with reason=ABORTED) and drop queued ones. Response: ACK."""

    OPCODE: ClassVar[int] = 0x04
    KIND: ClassVar[str] = 'command'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = ()


@dataclass(frozen=True, slots=True)
class Free(Message):
    """FREE (command, opcode 0x05): Return a memory slot to the header decoder's pool. Response: ACK, or NAK(BAD_SLOT) if the slot is not allocated."""

    OPCODE: ClassVar[int] = 0x05
    KIND: ClassVar[str] = 'command'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>H')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('slot', 16),)
    slot: int


@dataclass(frozen=True, slots=True)
class Time(Message):
    """TIME (command, opcode 0x06): Read the 64-bit timestamp. Response: TIME with the value at decode."""

    OPCODE: ClassVar[int] = 0x06
    KIND: ClassVar[str] = 'command'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = ()


@dataclass(frozen=True, slots=True)
class FreeMask(Message):
    """FREE_MASK (command, opcode 0x07): Return up to 240 memory slots at once: slot base + i for every set bit i of mask (bit 0 = base). Response: ACK when every named slot was allocated (all are freed), NAK(BAD_ARG) when mask == 0, NAK(BAD_SLOT) when any named slot is not allocated or beyond the pool (then none is freed). One command per 240 slots instead of one per slot: the host frees at the source's rate (mask is big-endian: its last byte holds bits 7..0)."""

    OPCODE: ClassVar[int] = 0x07
    KIND: ClassVar[str] = 'command'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>H30s')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('base', 16), ('mask', 240))
    base: int
    mask: int

    def pack(self) -> bytes:
        return self.STRUCT.pack(self.base, self.mask.to_bytes(30, 'big'))

    @classmethod
    def unpack(cls, payload: bytes) -> FreeMask:
        base, mask = cls.STRUCT.unpack(payload)
        return cls(base, int.from_bytes(mask, 'big'))


@dataclass(frozen=True, slots=True)
class SchedulePairs(Message):
    """SCHEDULE_PAIRS (command, opcode 0x08): Multi-pair schedule on herald port `port` (docs/physical-layer.md section 3): attempt k fires trig_o[port] at t_start + k*period, k = 0..count-1 (count = 2^32-1: until done), until `pairs` pairs are recorded. Each valid herald frame on hl_i[port] for an attempt this schedule fired records a pair on the next memory qubit (PAIR event); the `pairs`-th ends it with DONE(COMPLETE). After the last attempt the device waits HERALD_WAIT cycles for heralds in flight, then DONE(EXHAUSTED). Response: ACK when queued, NAK(OVERFLOW) when the schedule FIFO is full, NAK(BAD_ARG) when count == 0, period < 2, pairs == 0, pairs > QUBITS or port >= N_PORTS. LATE as for SCHEDULE."""

    OPCODE: ClassVar[int] = 0x08
    KIND: ClassVar[str] = 'command'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>QIIBB')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('t_start', 64), ('count', 32), ('period', 32), ('pairs', 8), ('port', 8))
    t_start: int
    count: int
    period: int
    pairs: int
    port: int


@dataclass(frozen=True, slots=True)
class TimeSet(Message):
    """TIME_SET (command, opcode 0x09): Set the device clock (docs/physical-layer.md section 1): mode 0 loads the timestamp counter with ts at the cycle the command executes; mode 1 arms it and loads ts at the next rising edge of input sync_i (PPS / White Rabbit style). Response: ACK, or NAK(BAD_ARG) for mode > 1."""

    OPCODE: ClassVar[int] = 0x09
    KIND: ClassVar[str] = 'command'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>QB')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('ts', 64), ('mode', 8))
    ts: int
    mode: int


@dataclass(frozen=True, slots=True)
class PinMask(Message):
    """PIN_MASK (command, opcode 0x0A): Block mode (docs/header-path.md section 3): pin ring slots base + i for every set bit i of mask (same packing as FREE_MASK), so the ring skips them instead of overwriting them (a verified pair the application still holds). Before applying, the device closes its open HDR_BLOCK. The response leaves after every event queued before the command executed (that block included) and before every event queued after, so the host sees pin changes in execution order among the blocks. Response: ACK, NAK(BAD_ARG) when mask == 0, NAK(BAD_SLOT) when a named slot is >= N_SLOTS (then nothing changes and no block is closed). Pinning a pinned slot is a no-op."""

    OPCODE: ClassVar[int] = 0x0A
    KIND: ClassVar[str] = 'command'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>H30s')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('base', 16), ('mask', 240))
    base: int
    mask: int

    def pack(self) -> bytes:
        return self.STRUCT.pack(self.base, self.mask.to_bytes(30, 'big'))

    @classmethod
    def unpack(cls, payload: bytes) -> PinMask:
        base, mask = cls.STRUCT.unpack(payload)
        return cls(base, int.from_bytes(mask, 'big'))


@dataclass(frozen=True, slots=True)
class UnpinMask(Message):
    """UNPIN_MASK (command, opcode 0x0B): Block mode: unpin ring slots (the ring may overwrite them again when it comes round). Closes the open HDR_BLOCK first and orders its response among the events, like PIN_MASK. Response: ACK, NAK(BAD_ARG) when mask == 0, NAK(BAD_SLOT) when a named slot is >= N_SLOTS. Unpinning an unpinned slot is a no-op."""

    OPCODE: ClassVar[int] = 0x0B
    KIND: ClassVar[str] = 'command'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>H30s')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('base', 16), ('mask', 240))
    base: int
    mask: int

    def pack(self) -> bytes:
        return self.STRUCT.pack(self.base, self.mask.to_bytes(30, 'big'))

    @classmethod
    def unpack(cls, payload: bytes) -> UnpinMask:
        base, mask = cls.STRUCT.unpack(payload)
        return cls(base, int.from_bytes(mask, 'big'))


@dataclass(frozen=True, slots=True)
class Ack(Message):
    """ACK (response, opcode 0x80): Command accepted and executed."""

    OPCODE: ClassVar[int] = 0x80
    KIND: ClassVar[str] = 'response'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>B')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('opcode', 8),)
    opcode: int


@dataclass(frozen=True, slots=True)
class Nak(Message):
    """NAK (response, opcode 0x81): Command refused; `code` is an error code."""

    OPCODE: ClassVar[int] = 0x81
    KIND: ClassVar[str] = 'response'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>BB')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('opcode', 8), ('code', 8))
    opcode: int
    code: int


@dataclass(frozen=True, slots=True)
class RegValue(Message):
    """REG_VALUE (response, opcode 0x82): Register value."""

    OPCODE: ClassVar[int] = 0x82
    KIND: ClassVar[str] = 'response'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>BI')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('addr', 8), ('value', 32))
    addr: int
    value: int


@dataclass(frozen=True, slots=True)
class TimeValue(Message):
    """TIME_VALUE (response, opcode 0x83): Current timestamp."""

    OPCODE: ClassVar[int] = 0x83
    KIND: ClassVar[str] = 'response'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>Q')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('ts', 64),)
    ts: int


@dataclass(frozen=True, slots=True)
class Herald(Message):
    """HERALD (event, opcode 0xA0): Heralded success: exactly one detector clicked in the window. ts = cycle of the (synchronized) click; attempt counts from 0."""

    OPCODE: ClassVar[int] = 0xA0
    KIND: ClassVar[str] = 'event'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>QBI')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('ts', 64), ('detector', 8), ('attempt', 32))
    ts: int
    detector: int
    attempt: int


@dataclass(frozen=True, slots=True)
class Done(Message):
    """DONE (event, opcode 0xA1): Schedule ended: reason EXHAUSTED (all attempts failed), ABORTED, or COMPLETE (SCHEDULE_PAIRS: all pairs recorded); attempts = attempts fired."""

    OPCODE: ClassVar[int] = 0xA1
    KIND: ClassVar[str] = 'event'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>QIB')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('ts', 64), ('attempts', 32), ('reason', 8))
    ts: int
    attempts: int
    reason: int


@dataclass(frozen=True, slots=True)
class Late(Message):
    """LATE (event, opcode 0xA2): A schedule reached the head of the FIFO after its start time; refused, nothing fired."""

    OPCODE: ClassVar[int] = 0xA2
    KIND: ClassVar[str] = 'event'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>QQ')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('t_start', 64), ('now', 64))
    t_start: int
    now: int


@dataclass(frozen=True, slots=True)
class Header(Message):
    """HEADER (event, opcode 0xA3): A well-formed midpoint header was decoded; the photon is stored in `slot`."""

    OPCODE: ClassVar[int] = 0xA3
    KIND: ClassVar[str] = 'event'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>IQH')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('seq', 32), ('ts', 64), ('slot', 16))
    seq: int
    ts: int
    slot: int


@dataclass(frozen=True, slots=True)
class Error(Message):
    """ERROR (event, opcode 0xA4): Asynchronous error (bad frame, malformed header, no free slot, lost events, bad herald)."""

    OPCODE: ClassVar[int] = 0xA4
    KIND: ClassVar[str] = 'event'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>BI')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('code', 8), ('info', 32))
    code: int
    info: int


@dataclass(frozen=True, slots=True)
class Pair(Message):
    """PAIR (event, opcode 0xA5): A heralded pair of a SCHEDULE_PAIRS schedule: ts = the attempt's fire cycle (t_start + attempt*period), attempt counts from 0 within the schedule, bell = the station's detector (0: Psi+, 1: Psi-), qubit = memory qubit (0, 1, ... in order within the schedule), port = herald port."""

    OPCODE: ClassVar[int] = 0xA5
    KIND: ClassVar[str] = 'event'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>QIBBB')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('ts', 64), ('attempt', 32), ('bell', 8), ('qubit', 8), ('port', 8))
    ts: int
    attempt: int
    bell: int
    qubit: int
    port: int


@dataclass(frozen=True, slots=True)
class HdrBlock(Message):
    """HDR_BLOCK (event, opcode 0xA6): Block mode (CONTROL.HDR_BLOCK set; docs/header-path.md section 2): arrivals of the midpoint stream, compactly. blk = block counter (u16, +1 per block, wraps; a gap = lost blocks), seq0/ts0/slot0 = header seq, decode timestamp and ring slot of the block's first arrival, n = arrivals in the block (>= 1, the first included), used = entry bytes used (0..48), bad = malformed headers since the previous block (saturating), entries = 48 bytes, big-endian (entry 0 in the first byte), unused bytes 0. Entry byte e: g = e >> 3, ph = e & 7. g = 31: 31 pulses without arrival (ph = 0). g < 31: g pulses without arrival, then one arrival at seq = previous + g + 1 whose decode timestamp has ts & 7 == ph and whose slot is the next unpinned ring slot after the previous arrival's."""

    OPCODE: ClassVar[int] = 0xA6
    KIND: ClassVar[str] = 'event'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>HIQHBBB48s')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('blk', 16), ('seq0', 32), ('ts0', 64), ('slot0', 16), ('n', 8), ('used', 8), ('bad', 8), ('entries', 384))
    blk: int
    seq0: int
    ts0: int
    slot0: int
    n: int
    used: int
    bad: int
    entries: int

    def pack(self) -> bytes:
        return self.STRUCT.pack(self.blk, self.seq0, self.ts0, self.slot0, self.n, self.used, self.bad, self.entries.to_bytes(48, 'big'))

    @classmethod
    def unpack(cls, payload: bytes) -> HdrBlock:
        blk, seq0, ts0, slot0, n, used, bad, entries = cls.STRUCT.unpack(payload)
        return cls(blk, seq0, ts0, slot0, n, used, bad, int.from_bytes(entries, 'big'))


MESSAGES: dict[int, type[Message]] = {
    RegRead.OPCODE: RegRead,
    RegWrite.OPCODE: RegWrite,
    Schedule.OPCODE: Schedule,
    Abort.OPCODE: Abort,
    Free.OPCODE: Free,
    Time.OPCODE: Time,
    FreeMask.OPCODE: FreeMask,
    SchedulePairs.OPCODE: SchedulePairs,
    TimeSet.OPCODE: TimeSet,
    PinMask.OPCODE: PinMask,
    UnpinMask.OPCODE: UnpinMask,
    Ack.OPCODE: Ack,
    Nak.OPCODE: Nak,
    RegValue.OPCODE: RegValue,
    TimeValue.OPCODE: TimeValue,
    Herald.OPCODE: Herald,
    Done.OPCODE: Done,
    Late.OPCODE: Late,
    Header.OPCODE: Header,
    Error.OPCODE: Error,
    Pair.OPCODE: Pair,
    HdrBlock.OPCODE: HdrBlock,
}
