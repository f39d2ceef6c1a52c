"""What every bench driver shares: connect with an ``*IDN?`` check, settings validated with units
and ranges before anything is sent, the error queue read after every write, and VISA faults
turned into hwctl's error taxonomy (:mod:`hwctl.errors`).

Drivers are PyMeasure instruments (``pymeasure.instruments.Instrument``): where PyMeasure already
has the instrument (Keithley 2400, Thorlabs PM100USB, Santec TSL-550) the hwctl driver subclasses
PyMeasure's and adds :class:`BenchInstrument`; where it has none (SRS DG645, Keysight N7764A,
Keysight N7734A, Keysight 53230A) the driver is written here on the same PyMeasure/pyvisa base, so
every driver can be tested byte for byte with PyMeasure's ``ProtocolAdapter`` and on pyvisa-sim.

A *setting* is what a bench file may set (``attenuation_db = 10``): its unit is in its name, as
everywhere in hwctl, and :class:`Setting` holds its range (the instrument's range, or a narrower
safe range such as a detector's maximum bias). A *reading* is a measured value stored in the
run's snapshot. :meth:`BenchInstrument.snapshot` returns identity, settings and readings.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

import pyvisa
import pyvisa.constants
import pyvisa.errors
from pymeasure.adapters import Adapter, VISAAdapter

from hwctl.errors import (
    IdentityMismatch,
    InstrumentError,
    InstrumentNotFound,
    InstrumentTimeout,
    SettingOutOfRange,
)

E = TypeVar("E", bound=Exception)

log = logging.getLogger(__name__)

#: the error queue is read at most this many times after one write (a queue that never empties
#: is itself reported as an error)
MAX_ERRORS = 32


@dataclass(frozen=True, slots=True)
class Identity:
    """The four fields of an IEEE 488.2 ``*IDN?`` answer."""

    manufacturer: str
    model: str
    serial: str
    firmware: str

    @classmethod
    def parse(cls, idn: str) -> Identity:
        parts = [p.strip() for p in idn.strip().split(",")]
        parts += [""] * (4 - len(parts))
        return cls(parts[0], parts[1], parts[2], ",".join(parts[3:]).strip(","))

    def __str__(self) -> str:
        return f"{self.manufacturer} {self.model} s/n {self.serial} fw {self.firmware}"


@dataclass(frozen=True)
class Setting:
    """One bench setting: name (unit in the name), unit, range and the driver attribute it maps
    to. ``scale`` converts the bench unit to the driver's SI unit (e.g. 1e-6 for uA -> A)."""

    name: str
    unit: str
    attr: str
    doc: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] | None = None
    type: type = float
    scale: float = 1.0

    def validate(self, value: Any, where: str = "") -> Any:
        """Check type and range; return the value in the bench unit. Raises SettingOutOfRange."""
        at = f"{where}{self.name}"
        if self.type is bool:
            if not isinstance(value, bool):
                raise SettingOutOfRange(f"{at}: expected true or false, got {value!r}")
            return value
        if self.type is str:
            if not isinstance(value, str):
                raise SettingOutOfRange(f"{at}: expected a string, got {value!r}")
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingOutOfRange(f"{at}: expected an integer, got {value!r}")
        else:
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise SettingOutOfRange(f"{at}: expected a number in {self.unit}, got {value!r}")
            value = float(value)
        if self.choices is not None and value not in self.choices:
            raise SettingOutOfRange(
                f"{at}: {value!r} is not one of {', '.join(map(repr, self.choices))}")
        if self.lo is not None and value < self.lo or self.hi is not None and value > self.hi:
            raise SettingOutOfRange(
                f"{at}: {value:g} {self.unit} is out of range [{self.lo:g}, {self.hi:g}] {self.unit}")
        return value

    def range_text(self) -> str:
        if self.choices is not None:
            return " | ".join(map(str, self.choices))
        if self.type is bool:
            return "true | false"
        return f"[{self.lo:g}, {self.hi:g}] {self.unit}"


@dataclass(frozen=True)
class Reading:
    """One measured value for the snapshot: a driver attribute (or method name) and its unit."""

    name: str
    unit: str
    attr: str
    scale: float = 1.0


#: what to do about each kind of instrument fault (``hwctl instruments check``'s hint)
HINT_ADDRESS = ("check the resource string, that the instrument is on and connected (cable, "
                "network, GPIB address) and that no other program holds it")
HINT_TIMEOUT = ("is it on and at this address? check its interface settings (termination, baud "
                "rate) and [bench] timeout_ms")
HINT_IDENTITY = "the resource string names another instrument, or its driver = is wrong"
HINT_QUEUE = "errors an earlier session left (now read and cleared): run the check again"
HINT_VISA = "a VISA error: check the instrument's front panel and the cable, then check again"
HINT_LIBRARY = ('install pyvisa-py (`pip install pyvisa-py`) and set visa_library = "@py" in '
                '[bench], or install your vendor\'s VISA (NI-VISA, Keysight IO Libraries) and '
                'leave visa_library out; visa_library = "@sim" runs hwctl\'s simulated bench')


def tagged(exc: E, step: str, hint: str) -> E:
    """``exc`` with what was tried (``step``, e.g. ``*IDN?``) and what to do (``hint``): the
    per-instrument line of ``hwctl instruments check``."""
    exc.step, exc.hint = step, hint  # type: ignore[attr-defined]
    return exc


def library_problem(visa_library: str) -> str | None:
    """Why the VISA library ``visa_library`` (``""``: the system's) cannot be loaded, or None:
    a bench-wide fault, found once instead of once per instrument."""
    try:
        pyvisa.ResourceManager(visa_library)
    except (ValueError, OSError, pyvisa.errors.Error) as exc:
        return " ".join(str(exc).split()).rstrip(".") or exc.__class__.__name__
    return None


def _visa_fault(exc: Exception, where: str, what: str, timeout_ms: float | None) -> Exception:
    """A pyvisa exception as an hwctl error naming the instrument and the command."""
    code = getattr(exc, "error_code", None)
    if code == pyvisa.constants.StatusCode.error_timeout:
        t = f" within {timeout_ms:g} ms" if timeout_ms is not None else ""
        return tagged(InstrumentTimeout(f"{where}: no answer to {what!r}{t} (VISA timeout)"),
                      what, HINT_TIMEOUT)
    if code in (pyvisa.constants.StatusCode.error_resource_not_found,
                pyvisa.constants.StatusCode.error_invalid_resource_name):
        return tagged(InstrumentNotFound(f"{where}: no instrument at this VISA resource ({exc})"),
                      what, HINT_ADDRESS)
    return tagged(InstrumentError(f"{where}: VISA error on {what!r}: {exc}"), what, HINT_VISA)


class BenchInstrument:
    """Mixin for PyMeasure instruments that sit on an hwctl bench (put it first in the bases).

    Subclasses set the class attributes below; :meth:`connect` is the one way to open one.
    """

    #: role on the bench: delay_generator, detector_bias, attenuator, switch, laser, power_meter,
    #: counter (the physics layer reads attenuators and detector biases by role)
    KIND: ClassVar[str]
    #: key in a bench file (``driver = "srs-dg645"``)
    DRIVER: ClassVar[str]
    #: the instrument whose documented command set the driver speaks
    MODEL: ClassVar[str]
    #: ``*IDN?`` must match this (case-insensitive search), or connect refuses the instrument
    IDN_PATTERN: ClassVar[str]
    SETTINGS: ClassVar[tuple[Setting, ...]] = ()
    READINGS: ClassVar[tuple[Reading, ...]] = ()
    #: error-queue query and the code meaning "no error"
    ERROR_QUERY: ClassVar[str] = "SYST:ERR?"
    READ_TERMINATION: ClassVar[str] = "\n"
    WRITE_TERMINATION: ClassVar[str] = "\n"

    identity: Identity
    resource: str
    timeout_ms: float | None
    stale_errors: list[tuple[int, str]]

    # --- connect -------------------------------------------------------------------------------

    @classmethod
    def connect(cls, resource: str | Adapter, *, visa_library: str = "", timeout_ms: float = 1000,
                name: str | None = None) -> Self:
        """Open ``resource`` (a VISA resource string, or a PyMeasure adapter in tests), check
        ``*IDN?`` against :attr:`IDN_PATTERN` *before* the driver sends anything else, then drain
        errors left in the queue by earlier sessions (kept in :attr:`stale_errors`)."""
        where = f"{name or cls.DRIVER} at {resource}" if isinstance(resource, str) \
            else (name or cls.DRIVER)
        if isinstance(resource, Adapter):
            adapter = resource
        else:
            try:
                adapter = VISAAdapter(resource, visa_library=visa_library, timeout=timeout_ms,
                                      read_termination=cls.READ_TERMINATION,
                                      write_termination=cls.WRITE_TERMINATION)
            except pyvisa.errors.VisaIOError as exc:
                raise _visa_fault(exc, where, "open", timeout_ms) from None
            except (ValueError, OSError, pyvisa.errors.Error) as exc:
                raise tagged(InstrumentNotFound(f"{where}: cannot open VISA resource ({exc})"),
                             "open", HINT_ADDRESS) from None
        try:
            adapter.write("*IDN?")
            with warnings.catch_warnings():  # an empty answer is reported below, not as a warning
                warnings.filterwarnings("ignore", "read string doesn't end with termination")
                idn = adapter.read().strip()
        except pyvisa.errors.VisaIOError as exc:
            adapter.close()
            raise _visa_fault(exc, where, "*IDN?", timeout_ms) from None
        if not idn:  # (pyvisa-sim opens any address and answers nothing)
            adapter.close()
            raise tagged(InstrumentNotFound(f"{where}: nothing answers *IDN? at this VISA "
                                            f"resource"), "*IDN?", HINT_ADDRESS)
        if not re.search(cls.IDN_PATTERN, idn, re.IGNORECASE):
            adapter.close()
            raise tagged(IdentityMismatch(f"{where}: expected a {cls.MODEL}, but *IDN? answers "
                                          f"{idn!r}"), "*IDN?", HINT_IDENTITY)
        try:  # the driver's own start-up commands (e.g. the PM100 asks for its sensor head)
            inst = cls(adapter, name or cls.DRIVER)  # type: ignore[call-arg]
        except pyvisa.errors.VisaIOError as exc:
            adapter.close()
            raise _visa_fault(exc, where, "driver start-up", timeout_ms) from None
        except (OSError, ValueError) as exc:
            adapter.close()
            raise tagged(InstrumentError(f"{where}: driver start-up failed: {exc}"),
                         "driver start-up", HINT_VISA) from None
        inst.identity = Identity.parse(idn)
        inst.resource = resource if isinstance(resource, str) else "(adapter)"
        inst.timeout_ms = timeout_ms if isinstance(resource, str) else None
        inst.stale_errors = inst.read_errors()
        if inst.stale_errors:
            log.warning("%s: errors left in the queue before connect: %s", where, inst.stale_errors)
        return inst

    @property
    def where(self) -> str:
        return f"{self.name} at {getattr(self, 'resource', '?')}"  # type: ignore[attr-defined]

    # --- I/O with VISA faults translated ---------------------------------------------------------

    def write(self, command: str, **kwargs: Any) -> None:
        self._last_command = command
        self._unchecked = True  # a write since the last complete error-queue read
        try:
            super().write(command, **kwargs)  # type: ignore[misc]
        except pyvisa.errors.VisaIOError as exc:
            raise _visa_fault(exc, self.where, command, getattr(self, "timeout_ms", None)) from None

    def read(self, **kwargs: Any) -> str:
        try:
            return super().read(**kwargs)  # type: ignore[misc]
        except pyvisa.errors.VisaIOError as exc:
            raise _visa_fault(exc, self.where, getattr(self, "_last_command", "read"),
                              getattr(self, "timeout_ms", None)) from None

    # --- error queue ----------------------------------------------------------------------------

    def parse_error(self, text: str) -> tuple[int, str]:
        """SCPI ``<code>,"<message>"``; code 0 means the queue is empty."""
        code, _, msg = text.strip().partition(",")
        try:
            return int(float(code)), msg.strip().strip('"')
        except ValueError:
            raise InstrumentError(f"{self.where}: unreadable error-queue entry {text!r}") from None

    def read_errors(self) -> list[tuple[int, str]]:
        """Read the error queue until it reports no error; return the errors read."""
        errors = []
        for _ in range(MAX_ERRORS):
            code, msg = self.parse_error(self.ask(self.ERROR_QUERY))  # type: ignore[attr-defined]
            if code == 0:
                self._unchecked = False
                return errors
            errors.append((code, msg))
        raise InstrumentError(f"{self.where}: error queue did not empty after {MAX_ERRORS} reads",
                              errors)

    def raise_errors(self, context: str) -> None:
        """Read the error queue; raise InstrumentError naming ``context`` if it held anything."""
        errors = self.read_errors()
        if errors:
            listed = "; ".join(f"{c} {m}" for c, m in errors)
            raise InstrumentError(f"{self.where}: {context}: instrument reports {listed}", errors)

    def check_set_errors(self) -> list:
        """PyMeasure calls this after a property set with ``check_set_errors=True``."""
        self.raise_errors(f"after {getattr(self, '_last_command', 'write')!r}")
        return []

    def check_errors(self) -> list:
        self.raise_errors("error check")
        return []

    # --- settings, readings, snapshot -----------------------------------------------------------

    @classmethod
    def setting(cls, name: str) -> Setting:
        for s in cls.SETTINGS:
            if s.name == name:
                return s
        raise SettingOutOfRange(f"{cls.DRIVER} has no setting {name!r}; it has "
                                f"{', '.join(s.name for s in cls.SETTINGS)}")

    @classmethod
    def validate_settings(cls, settings: dict[str, Any], where: str = "") -> dict[str, Any]:
        """Validate a whole settings table (every key known, every value in range)."""
        out = {}
        for key, value in settings.items():
            try:
                s = cls.setting(key)
            except SettingOutOfRange as exc:
                raise SettingOutOfRange(f"{where}{exc}") from None
            out[key] = s.validate(value, where)
        return out

    def set(self, name: str, value: Any) -> None:
        """Validate ``value`` (bench unit), send it, then read the error queue."""
        s = self.setting(name)
        v = s.validate(value, f"{self.where}: ")
        driver_value = v * s.scale if s.type is float else v
        context = f"setting {name} = {v!r} {s.unit}".rstrip()
        try:
            setattr(self, s.attr, driver_value)
        except InstrumentError as exc:  # the driver's own error check after its write
            raise type(exc)(f"{exc} ({context})", exc.errors) from None
        if getattr(self, "_unchecked", True):  # no error check ran after the last write
            self.raise_errors(context)

    def apply(self, settings: dict[str, Any]) -> None:
        """Validate all first (nothing is sent if one is wrong), then set each in order."""
        self.validate_settings(settings, f"{self.where}: ")
        for s in self.SETTINGS:  # in the driver's order (e.g. compliance before bias current)
            if s.name in settings:
                self.set(s.name, settings[s.name])

    def get(self, name: str) -> Any:
        s = self.setting(name)
        v = getattr(self, s.attr)
        if s.type is float:
            return float(f"{float(v) / s.scale:.12g}")  # no 1549.9999999999998 from nm -> m -> nm
        return s.type(v)

    def settings(self) -> dict[str, Any]:
        return {s.name: self.get(s.name) for s in self.SETTINGS}

    def readings(self) -> dict[str, float]:
        out = {}
        for r in self.READINGS:
            v = getattr(self, r.attr)
            v = v() if callable(v) else v
            out[r.name] = float(v) / r.scale
        return out

    def snapshot(self) -> dict[str, Any]:
        """Identity, settings (read back from the instrument) and readings, JSON-ready."""
        return {
            "driver": self.DRIVER,
            "kind": self.KIND,
            "model": self.MODEL,
            "resource": getattr(self, "resource", None),
            "identity": {
                "manufacturer": self.identity.manufacturer, "model": self.identity.model,
                "serial": self.identity.serial, "firmware": self.identity.firmware,
            },
            "settings": self.settings(),
            "units": {s.name: s.unit for s in self.SETTINGS} | {r.name: r.unit for r in self.READINGS},
            "readings": self.readings(),
        }


@dataclass
class Health:
    """Result of :func:`check_instrument`: ok, what was found, and what went wrong."""

    name: str
    driver: str
    resource: str
    ok: bool
    identity: str = ""
    problem: str = ""
    readings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    step: str = ""  # what was tried when it failed (open, *IDN?, readings, ...)
    hint: str = ""  # what to do about it

