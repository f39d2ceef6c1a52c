"""The software twin (sim/twin/model.py) as the scoring oracle of the RTL testbenches.

The twin is the golden model: every verdict (LATE or not, which attempt heralds with which click,
both-click counting, DONE/EXHAUSTED, header slots, NO_SLOT, BAD_HEADER numbering, FREE results,
counters) comes from a :class:`~hwctl.sim.twin.model.TwinModel` driven through its public API (wire
frames in, ``tx_log`` messages out, ``inject_click`` / ``inject_header``, ``reg``). This module only
adds the RTL's constant pipeline latencies, listed in fpga/README.md "RTL latencies" and named
here once:

- ``SCHED_CHECK_LAT``: the RTL checks a popped entry (LATE or wait) this many cycles after the
  cycle the previous entry ended (or after the push when idle); the twin checks at that cycle.
  The oracle submits each entry to the twin at the RTL's check cycle.
- ``EVAL_LAT``: the RTL's entry ends this many cycles after the twin's (herald record pipeline);
  event timestamps are not affected.
- ``DET_LAT`` / ``HDR_LAT``: detector / header pins reach the timestamped logic through a 2-FF
  synchronizer; the twin is given the synchronized (stamped) cycle.

All times are 64-bit timestamps of the RTL's own counter (the twin's ``now`` is set to them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwctl.sim.twin.model import TwinConfig, TwinModel
from hwctl.wire import (
    MESSAGES,
    Ack,
    ControlBit,
    Free,
    FreeMask,
    Message,
    Reg,
    RegWrite,
    Schedule,
    encode,
)

SCHED_CHECK_LAT = 8
EVAL_LAT = 1
#: Cycles from a detector pin rising to the synchronized edge the herald logic timestamps.
DET_LAT = 2
#: Cycles from a pin change on hdr_i to the header decoder seeing it (2-FF synchronizer).
HDR_LAT = 2

@dataclass(frozen=True)
class Entry:
    t_start: int
    count: int
    period: int
    window: int

    def t(self, k: int) -> int:
        return self.t_start + k * self.period


@dataclass
class SchedResult:
    """Expected events (wire messages), trigger cycles, RTL end cycle and counter increments."""

    events: list[Message] = field(default_factory=list)
    fires: list[int] = field(default_factory=list)
    end: int = 0
    both: int = 0
    late: int = 0
    heralds: int = 0


class _Driver:
    """A click-driven twin (no random photons, instant UART) fed with wire frames."""

    def __init__(self, now: int, *, n_slots: int = 8, control: int | None = None) -> None:
        cfg = TwinConfig(p_photon=0.0, dark_prob=0.0, uart_cycles_per_byte=0, n_slots=n_slots)
        self.twin = TwinModel(cfg, record=True)
        self.twin.advance_to(now)
        self._seq = 0
        self._seen = 0
        if control is not None:
            self.command(RegWrite(int(Reg.CONTROL), control))

    def command(self, msg: Message) -> Message:
        """Execute one command at ``now``; returns its response."""
        self._seq = (self._seq + 1) & 0xFF
        n = len(self.twin.tx_log)
        self.twin.feed(encode(msg, self._seq))
        resp = [r.msg for r in self.twin.tx_log[n:] if r.msg.KIND != "event"]
        assert len(resp) == 1, resp
        return resp[0]

    def events(self) -> list[Message]:
        """Events sent since the last call (responses left out)."""
        new = self.twin.tx_log[self._seen:]
        self._seen = len(self.twin.tx_log)
        return [r.msg for r in new if r.msg.KIND == "event"]

    def reg(self, r: Reg) -> int:
        return self.twin.reg(int(r))


def run_schedules(
    entries: list[Entry], clicks: list[tuple[int, int]], t_idle: int, herald_en: bool = True
) -> SchedResult:
    """Expected RTL behaviour for ``entries`` queued back to back on a scheduler idle at ``t_idle``.

    ``clicks``: (synchronized timestamp, detector); clicks before ``t_idle`` cannot fall in any
    window (the first check is at ``t_idle + SCHED_CHECK_LAT``) and are ignored. Each entry is
    handed to the twin at the RTL's check cycle (previous RTL end + ``SCHED_CHECK_LAT``); the twin
    decides LATE / attempts / HERALD / DONE; the RTL end is the twin's end + ``EVAL_LAT`` (a LATE
    entry ends at its check cycle).
    """
    control = (herald_en << ControlBit.HERALD_EN) | (1 << ControlBit.HEADER_EN)
    d = _Driver(t_idle, control=control)
    tw = d.twin
    todo = sorted(c for c in clicks if c[0] >= t_idle)

    def run_to(cycle: int) -> None:
        # Clicks go in at their own cycle, as a test bench would drive them (a click injected
        # ahead of time inside a heralded schedule's nominal span would not reach the next one).
        while todo and todo[0][0] <= cycle:
            ts, det = todo.pop(0)
            tw.advance_to(ts)
            tw.inject_click(ts, det)
        tw.advance_to(cycle)

    res = SchedResult()
    end = t_idle
    for e in entries:
        check = end + SCHED_CHECK_LAT
        run_to(check - 1)
        tw.advance_to(check)
        attempts0 = d.reg(Reg.CNT_ATTEMPTS)
        late0 = d.reg(Reg.ERR_LATE)
        resp = d.command(Schedule(e.t_start, e.count, e.period, e.window))
        assert isinstance(resp, Ack), resp
        while tw.running:  # stop at the cycle the entry ends
            nxt = tw.next_deadline()
            assert nxt is not None
            if todo and todo[0][0] < nxt:
                ts, det = todo.pop(0)
                tw.advance_to(ts)
                tw.inject_click(ts, det)
            else:
                tw.advance_to(nxt)
        res.events += d.events()
        res.fires += [e.t(k) for k in range(d.reg(Reg.CNT_ATTEMPTS) - attempts0)]
        end = check if d.reg(Reg.ERR_LATE) != late0 else tw.now + EVAL_LAT
    res.end = end
    res.late = d.reg(Reg.ERR_LATE)
    res.both = d.reg(Reg.CNT_BOTH)
    res.heralds = d.reg(Reg.CNT_HERALD)
    return res


class HeaderOracle:
    """The twin's header path (slot pool, NO_SLOT, BAD_HEADER count, HEADER_EN, FREE).

    Call :meth:`header` with the cycle at which the RTL samples the CRC byte's stop bit on the
    synchronized line (pin + ``HDR_LAT``); that is the HEADER timestamp.
    """

    def __init__(self, now: int, n_slots: int) -> None:
        self.d = _Driver(now, n_slots=n_slots)
        self.header_en = True

    def _at(self, cycle: int) -> None:
        if cycle > self.d.twin.now:
            self.d.twin.advance_to(cycle)

    def header(self, cycle: int, seq: int, *, corrupt: bool = False) -> None:
        self._at(cycle)
        self.d.twin.inject_header(seq, corrupt=corrupt)

    def free(self, cycle: int, base: int, mask: int = 1) -> bool:
        """FREE(base) for mask 1, else FREE_MASK(base, mask), applied at ``cycle``; ACKed?"""
        self._at(cycle)
        cmd = Free(base) if mask == 1 else FreeMask(base, mask)
        return isinstance(self.d.command(cmd), Ack)

    def allocated(self) -> list[int]:
        """Slots the twin holds allocated now."""
        return self.d.twin.allocated_slots()

    def set_header_en(self, cycle: int, en: bool) -> None:
        self._at(cycle)
        self.header_en = en
        ctl = (1 << ControlBit.HERALD_EN) | (en << ControlBit.HEADER_EN)
        assert isinstance(self.d.command(RegWrite(int(Reg.CONTROL), ctl)), Ack)

    def events(self) -> list[Message]:
        return self.d.events()

    @property
    def good(self) -> int:
        return self.d.reg(Reg.CNT_HEADERS)

    @property
    def bad(self) -> int:
        return self.d.reg(Reg.ERR_BAD_HEADER)

    @property
    def n_free(self) -> int:
        return self.d.reg(Reg.SLOTS_FREE)


def decode_event(op: int, payload: int) -> Message:
    """An RTL event (opcode + 16-byte payload, fields left-aligned big-endian) as a wire message."""
    cls = MESSAGES[op]
    assert cls.KIND == "event", f"unexpected event opcode {op:#x}"
    return cls(*cls.STRUCT.unpack_from(payload.to_bytes(16, "big")))
