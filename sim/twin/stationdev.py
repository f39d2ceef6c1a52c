"""The heralding station's own host link in the twin (docs/physical-layer.md section 2, "The
station has a host link"; issue 13): a :class:`~hwctl.sim.twin.station.StationModel` served like a node
device, with the same framing (COBS, CRC-16, 8-bit sequence numbers) and the station's registers.

Sans-IO, as the node device twin: the driver (:class:`hwctl.sim.twin.lab.Lab`) feeds host bytes at its
``now`` (:meth:`StationHost.feed`), tells it the heralds its model decided
(:meth:`StationHost.collect`, after each ``advance_to`` of the model) and reads the bytes it sends
(:meth:`StationHost.read`).

What it answers, as the RTL station (fpga/rtl/station_regs.v, cmd_decoder.v with ``NODE = 0``):

- REG_READ of the registers of ``STATION_REGS`` (spec ``device = "station"`` or ``"both"``): ID
  reads ``meta.station_id``, VERSION the wire version, ST_DELAY / ST_WINDOW / CNT_* the model's
  registers; any other register -> NAK(BAD_REG).
- REG_WRITE of SCRATCH, CONTROL (bits 1:0 kept; CLEAR_COUNTERS clears every counter), ST_DELAY and
  ST_WINDOW (they apply to the windows the station has not decided yet: set them while the link
  is idle); any other register -> NAK(BAD_REG).
- TIME -> TIME_VALUE (device counter), TIME_SET mode 0 loads it now, mode 1 arms it for
  :meth:`StationHost.sync_edge`; mode > 1 -> NAK(BAD_ARG).
- Any node command (SCHEDULE, SCHEDULE_PAIRS, ABORT, FREE, ...) -> NAK(BAD_OPCODE).
- A repeated command (same sequence number as the previous one, the host's retry) gets the same
  response again and is not executed twice (REG_READ and TIME are read again).
- One HERALD event per herald, for monitoring: ``ts`` = attempt cycle, ``detector`` = Bell state,
  ``attempt`` = the station's herald count (low 32 bits), sent at the cycle the window closed.
- CRC / framing errors: ERR_CRC += 1 and ERROR(code, info=ERR_CRC).

Not modelled (kept simple on purpose, documented in docs/twin.md): UART pacing of this link
(frames leave at the cycle they are made) and event-FIFO overflow (EVT_LOST stays 0).
"""

from __future__ import annotations

from hwctl.sim.twin.station import StationModel
from hwctl.wire import (
    STATION_ID,
    STATION_REGS,
    WIRE_VERSION,
    Ack,
    ControlBit,
    Error,
    ErrorCode,
    Frame,
    FrameDecoder,
    FrameError,
    Herald,
    Message,
    Nak,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    StatusBit,
    Time,
    TimeSet,
    TimeValue,
    encode,
)

U32 = 0xFFFF_FFFF
U64 = (1 << 64) - 1
#: counter registers (CONTROL.CLEAR_COUNTERS clears them)
_COUNTERS = (Reg.CNT_HERALD, Reg.CNT_BOTH, Reg.CNT_ONE_END, Reg.CNT_DARK, Reg.CNT_MARKS,
             Reg.CNT_HL_DROP)


class StationHost:
    """Host link of one heralding station (see the module docstring)."""

    def __init__(self, model: StationModel) -> None:
        self.model = model
        self._dec = FrameDecoder()
        self._out = bytearray()
        self._control = 0
        self._scratch = 0
        self._err_crc = 0
        self._offset = 0  # device counter - shared clock (TIME_SET)
        self._sync_armed: int | None = None
        self._ev_seq = 0
        self._last_seq: int | None = None
        self._last_resp = b""
        self._n_heralds = len(model.heralds)  # heralds already reported
        self._herald_base = 0  # CNT_HERALD at the last CLEAR_COUNTERS (the event's attempt field)

    # ------------------------------------------------------------------ I/O
    def feed(self, data: bytes) -> None:
        """Host bytes; every completed frame is executed at the model's ``now``."""
        for item in self._dec.feed(data):
            self._on_frame(item)

    def read(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def collect(self) -> None:
        """HERALD events for the heralds the model decided since the last call."""
        hs = self.model.heralds
        for _, t, bell in hs[self._n_heralds:]:
            self._n_heralds += 1
            n = (self._n_heralds - 1 - self._herald_base) & U32
            self._emit(Herald((t + self._offset) & U64, bell, n))

    def sync_edge(self) -> None:
        """A rising edge on ``sync_i``: an armed TIME_SET mode 1 loads its value now."""
        if self._sync_armed is not None:
            self._offset = self._sync_armed - self.model.now
            self._sync_armed = None

    def reg(self, addr: int) -> int:
        """Register value as a REG_READ now would return it (KeyError: not a station register)."""
        a = Reg(addr)
        if a not in STATION_REGS:
            raise KeyError(a)
        if a == Reg.ID:
            return STATION_ID
        if a == Reg.VERSION:
            return WIRE_VERSION & 0xFFFF
        if a == Reg.CONTROL:
            return self._control
        if a == Reg.SCRATCH:
            return self._scratch
        if a == Reg.STATUS:
            busy = any(b > self.model.now for b in self.model._line_busy)
            return busy << StatusBit.RUNNING
        if a == Reg.ERR_CRC:
            return self._err_crc
        if a == Reg.EVT_LOST:
            return 0
        return self.model.reg(a) & U32

    # ------------------------------------------------------------------ internals
    def _on_frame(self, item: Frame | FrameError) -> None:
        if isinstance(item, FrameError):
            if item.code in (ErrorCode.CRC, ErrorCode.FRAMING):
                self._err_crc = (self._err_crc + 1) & U32
                self._emit(Error(int(item.code), self._err_crc))
                return
            self._respond(item.raw[0], Nak(item.raw[1], int(item.code)))
            return
        seq, msg = item.seq, item.msg
        if seq == self._last_seq and not isinstance(msg, RegRead | Time):
            self._out += self._last_resp  # the host's retry: the same answer, not run twice
            return
        if msg.KIND != "command":
            self._respond(seq, Nak(msg.OPCODE, int(ErrorCode.BAD_OPCODE)))
            return
        self._respond(seq, self._execute(msg))

    def _execute(self, msg: Message) -> Message:
        op = msg.OPCODE
        m = self.model
        if isinstance(msg, RegRead):
            try:
                return RegValue(msg.addr, self.reg(msg.addr))
            except (ValueError, KeyError):
                return Nak(op, int(ErrorCode.BAD_REG))
        if isinstance(msg, RegWrite):
            if msg.addr == Reg.SCRATCH:
                self._scratch = msg.value
            elif msg.addr == Reg.CONTROL:
                if msg.value >> ControlBit.CLEAR_COUNTERS & 1:
                    m.reg(Reg.CNT_HERALD)  # commit the windows closed so far, then clear
                    for r in _COUNTERS:
                        m.regs[r] = 0
                    self._err_crc = 0
                    self._herald_base = self._n_heralds
                self._control = msg.value & 0b11
            elif msg.addr == Reg.ST_DELAY:
                m.delay = msg.value
                m._dirty = True
            elif msg.addr == Reg.ST_WINDOW:  # (0: no window, nothing heralds, as the RTL)
                m.window = msg.value
                m._dirty = True
            else:
                return Nak(op, int(ErrorCode.BAD_REG))
            return Ack(op)
        if isinstance(msg, Time):
            return TimeValue((m.now + self._offset) & U64)
        if isinstance(msg, TimeSet):
            if msg.mode > 1:
                return Nak(op, int(ErrorCode.BAD_ARG))
            if msg.mode == 0:
                self._offset = msg.ts - m.now
            else:
                self._sync_armed = msg.ts
            return Ack(op)
        return Nak(op, int(ErrorCode.BAD_OPCODE))  # node commands: not a station's

    def _respond(self, seq: int, msg: Message) -> None:
        frame = encode(msg, seq)
        self._last_seq, self._last_resp = seq, frame
        self._out += frame

    def _emit(self, msg: Message) -> None:
        self._out += encode(msg, self._ev_seq)
        self._ev_seq = (self._ev_seq + 1) & 0xFF
