"""GENERATED from hwctl/wire/spec.toml by hwctl.wire.gen. Do not edit."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

WIRE_VERSION = 2
DEVICE_ID = 0x48574354
CLOCK_HZ = 100000000
UART_BAUD = 3000000
MAX_PAYLOAD = 32
HEADER_MARKER = 0x7E
HEADER_BIT_CYCLES = 16


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


class DoneReason(IntEnum):

    EXHAUSTED = 0
    ABORTED = 1


class Reg(IntEnum):
    """Register addresses."""

    ID = 0x00  # ro: device id, meta.device_id
    VERSION = 0x01  # ro: wire_version in bits 15:0
    CONTROL = 0x02  # rw: bit0 HERALD_EN, bit1 HEADER_EN, bit2 CLEAR_COUNTERS (self-clearing)
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


WRITABLE_REGS = frozenset({
    Reg.CONTROL,
    Reg.SCRATCH,
})


class ControlBit(IntEnum):

    HERALD_EN = 0
    HEADER_EN = 1
    CLEAR_COUNTERS = 2


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
    ACK = 0x80
    NAK = 0x81
    REG_VALUE = 0x82
    TIME_VALUE = 0x83
    HERALD = 0xA0
    DONE = 0xA1
    LATE = 0xA2
    HEADER = 0xA3
    ERROR = 0xA4


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
    """DONE (event, opcode 0xA1): Schedule ended without success: reason EXHAUSTED (all attempts failed) or ABORTED."""

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
    """ERROR (event, opcode 0xA4): Asynchronous error (bad frame, malformed header, no free slot, lost events)."""

    OPCODE: ClassVar[int] = 0xA4
    KIND: ClassVar[str] = 'event'
    STRUCT: ClassVar[struct.Struct] = struct.Struct('>BI')
    FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (('code', 8), ('info', 32))
    code: int
    info: int


MESSAGES: dict[int, type[Message]] = {
    RegRead.OPCODE: RegRead,
    RegWrite.OPCODE: RegWrite,
    Schedule.OPCODE: Schedule,
    Abort.OPCODE: Abort,
    Free.OPCODE: Free,
    Time.OPCODE: Time,
    FreeMask.OPCODE: FreeMask,
    Ack.OPCODE: Ack,
    Nak.OPCODE: Nak,
    RegValue.OPCODE: RegValue,
    TimeValue.OPCODE: TimeValue,
    Herald.OPCODE: Herald,
    Done.OPCODE: Done,
    Late.OPCODE: Late,
    Header.OPCODE: Header,
    Error.OPCODE: Error,
}
