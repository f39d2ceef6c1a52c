"""Stanford Research Systems DG645 digital delay/pulse generator: the attempt trigger.

Command set: SRS "DG645 Digital Delay Generator" operation manual, chapter "Remote Programming"
(commands ``DLAY``, ``TRAT``, ``TSRC``, ``LAMP``, ``LERR?``, ``*IDN?``). PyMeasure has no DG645
driver, so this one is written here on PyMeasure's instrument base.

Channels: T0=0, T1=1, A=2, B=3, C=4, D=5, E=6, F=7, G=8, H=9; ``DLAY c,d,t`` sets channel c to
channel d plus t seconds, ``DLAY?c`` answers ``d,t``. Outputs: T0=0, AB=1, CD=2, EF=3, GH=4. On a
heralded-entanglement node the AB output is the attempt trigger of the laser: its rising edge is A
(delay after T0), its width is B - A, and the internal trigger rate is the attempt rate.

Errors: the DG645 has no SCPI ``SYST:ERR?``; ``LERR?`` returns the oldest error code (0 = no
error) from its error buffer, so the queue is drained by reading ``LERR?`` until it answers 0.
Replies end with <CR><LF>.
"""

from __future__ import annotations

from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from hwctl.instruments.base import BenchInstrument, Setting

#: DG645 manual, "Error Codes" (the ones a driver can provoke; 0 = no error)
ERROR_CODES = {
    10: "Illegal value", 11: "Illegal mode", 12: "Illegal delay", 13: "Illegal link",
    14: "Recall failed", 15: "Not allowed", 16: "Failed self test",
    17: "Failed auto calibration", 30: "Lost data", 32: "No listener",
    110: "Illegal command", 111: "Undefined command", 112: "Illegal query", 113: "Illegal set",
    114: "Null parameter", 115: "Extra parameters", 116: "Missing parameters",
    117: "Parameter overflow", 118: "Invalid floating point number", 120: "Invalid integer",
    170: "Communication error", 254: "Too many errors",
}

TRIGGER_SOURCES = {
    "internal": 0, "external_rising": 1, "external_falling": 2, "single_external_rising": 3,
    "single_external_falling": 4, "single": 5, "line": 6,
}

MAX_DELAY_S = 2000.0  # DG645 delay range 0 .. 2000 s (5 ps resolution)


class DG645(BenchInstrument, Instrument):
    """SRS DG645 delay generator driving the attempt trigger (AB output)."""

    KIND = "delay_generator"
    DRIVER = "srs-dg645"
    MODEL = "Stanford Research Systems DG645"
    IDN_PATTERN = r"^Stanford Research Systems,DG645,"
    ERROR_QUERY = "LERR?"
    READ_TERMINATION = "\r\n"
    SETTINGS = (
        Setting("trigger_source", "", "trigger_source", "trigger source (TSRC)",
                choices=tuple(TRIGGER_SOURCES), type=str),
        Setting("trigger_rate_hz", "Hz", "trigger_rate", "internal trigger rate = attempt rate (TRAT)",
                100e-6, 10e6),
        Setting("delay_a_s", "s", "delay_a", "A after T0: attempt trigger edge (DLAY 2,0,t)",
                0.0, MAX_DELAY_S),
        Setting("width_ab_s", "s", "width_ab", "B after A: trigger pulse width (DLAY 3,2,t)",
                0.0, MAX_DELAY_S),
        Setting("amplitude_ab_v", "V", "amplitude_ab", "AB output amplitude (LAMP 1,v)", 0.5, 5.0),
    )

    def __init__(self, adapter, name: str = "srs-dg645", **kwargs) -> None:
        super().__init__(adapter, name, includeSCPI=False, **kwargs)

    def parse_error(self, text: str) -> tuple[int, str]:
        code = int(text.strip())
        return code, ERROR_CODES.get(code, "unknown error") if code else ""

    trigger_source = Instrument.control(
        "TSRC?", "TSRC %d", "Trigger source (str, one of TRIGGER_SOURCES).",
        validator=strict_discrete_set, values=TRIGGER_SOURCES, map_values=True,
        check_set_errors=True)
    trigger_rate = Instrument.control(
        "TRAT?", "TRAT %.10g", "Internal trigger rate in Hz (100 uHz .. 10 MHz).",
        validator=strict_range, values=[100e-6, 10e6], check_set_errors=True)
    delay_a = Instrument.control(
        "DLAY?2", "DLAY 2,0,%.12g", "Delay of A after T0 in s.",
        validator=strict_range, values=[0.0, MAX_DELAY_S], get_process_list=lambda v: v[1],
        check_set_errors=True)
    width_ab = Instrument.control(
        "DLAY?3", "DLAY 3,2,%.12g", "Delay of B after A (pulse width of AB) in s.",
        validator=strict_range, values=[0.0, MAX_DELAY_S], get_process_list=lambda v: v[1],
        check_set_errors=True)
    amplitude_ab = Instrument.control(
        "LAMP?1", "LAMP 1,%.3f", "AB output amplitude in V (0.5 .. 5.0).",
        validator=strict_range, values=[0.5, 5.0], check_set_errors=True)
