"""A node's bench: the instruments named in its config, by VISA resource string, with settings.

In the node config (``hwctl node --config node.toml``) either a ``[bench]`` table or
``bench = "bench.toml"`` (a file, relative to the node config, holding the same keys at its top)::

    [bench]
    visa_library = "@sim"        # "@sim": hwctl's simulated bench (pyvisa-sim); "@py": pyvisa-py;
                                 # "" or absent: the system VISA; "file.yaml@sim": your simulation
    timeout_ms = 1000            # VISA timeout of every instrument (per instrument: timeout_ms)

    [bench.voa]                  # one table per instrument; its name is yours
    driver = "keysight-n7764a"   # hwctl.instruments.DRIVERS
    resource = "TCPIP0::n7764a-0.bench::inst0::INSTR"
    attenuation_db = 3.0         # every other key is a setting of the driver (unit in the name)
    wavelength_nm = 1550
    output = true

Validation happens before any instrument is opened and reports every mistake, each as
``file: bench.<name>.<key>: why`` (:class:`BenchConfigError`). At start the bench opens every instrument (``*IDN?`` checked),
applies the settings in the driver's order (the error queue read after each write) and takes a
:meth:`Bench.snapshot` (identity, settings read back, readings) for the run's metadata.
:meth:`Bench.physics_inputs` gives the numbers the physics layer needs
(:func:`hwctl.physics.bench.link_physics`): the node's arm attenuation and detector bias.
"""

from __future__ import annotations

import math
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwctl.errors import HwctlError, SettingOutOfRange, UserError
from hwctl.instruments import DRIVERS, driver_class, visa_library
from hwctl.instruments.base import BenchInstrument, Health

#: keys of [bench] that are not instruments
BENCH_KEYS = {"visa_library": str, "timeout_ms": (int, float)}
#: keys of an instrument table that are not settings
INSTRUMENT_KEYS = {"driver", "resource", "timeout_ms"}


class BenchConfigError(UserError):
    """Every mistake of a bench table, each ``file: key: why`` (in ``mistakes``); the message
    lists them on one line, separated by `` ; `` (the CLI prints a user error as one line)."""

    def __init__(self, mistakes: list[str]) -> None:
        super().__init__(" ; ".join(mistakes))
        self.mistakes = mistakes


@dataclass
class InstrumentConfig:
    name: str
    driver: str
    resource: str
    settings: dict[str, Any] = field(default_factory=dict)
    timeout_ms: float | None = None


@dataclass
class BenchConfig:
    source: str  # file the bench came from (for messages)
    instruments: list[InstrumentConfig]
    visa_library: str = ""
    timeout_ms: float = 1000.0

    @classmethod
    def from_dict(cls, table: Any, source: str, prefix: str = "bench",
                  index: int | None = None) -> BenchConfig:
        """Validate a bench table; raise BenchConfigError listing every mistake (file: key:
        why). With ``index``, ``{n}`` in a resource string becomes it, ``{n:02}`` zero-padded to
        2 digits (a template bench shared by the nodes of a demo, node n on simulated bench n)."""
        errors: list[str] = []

        def bad(key: str, why: str) -> None:
            errors.append(f"{source}: {key}: {why}")

        if not isinstance(table, dict):
            raise UserError(f"{source}: {prefix}: expected a table of instruments")
        cfg = cls(source=source, instruments=[])
        if "visa_library" in table:
            if isinstance(table["visa_library"], str):
                cfg.visa_library = table["visa_library"]
            else:
                bad(f"{prefix}.visa_library", "expected a string such as \"@sim\" or \"@py\"")
        if "timeout_ms" in table:
            t = table["timeout_ms"]
            if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= 600_000:
                bad(f"{prefix}.timeout_ms", f"expected a number of ms in (0, 600000], got {t!r}")
            else:
                cfg.timeout_ms = float(t)
        resources: dict[str, str] = {}
        for name, entry in table.items():
            if name in BENCH_KEYS:
                continue
            at = f"{prefix}.{name}"
            if not isinstance(entry, dict):
                bad(at, f"unknown key (bench keys: {', '.join(BENCH_KEYS)}; an instrument is a "
                        "table with driver and resource)")
                continue
            driver, resource = entry.get("driver"), entry.get("resource")
            if index is not None and isinstance(resource, str):
                resource = re.sub(r"\{n(?::(\d+))?\}",
                                  lambda m: format(index, f"0{m.group(1)}" if m.group(1) else ""),
                                  resource)
            if driver is None:
                bad(f"{at}.driver", f"missing; one of {', '.join(DRIVERS)}")
                continue
            if driver not in DRIVERS:
                bad(f"{at}.driver", f"unknown driver {driver!r}; one of {', '.join(DRIVERS)}")
                continue
            if not isinstance(resource, str) or "::" not in resource or "{" in resource:
                bad(f"{at}.resource", "missing or not a VISA resource string "
                                      "(e.g. \"GPIB0::24::INSTR\", \"TCPIP0::host::inst0::INSTR\"; {n} only in a "
                                      "template bench)")
                continue
            if resource in resources:
                bad(f"{at}.resource", f"{resource!r} is already used by bench.{resources[resource]}")
                continue
            resources[resource] = name
            inst = InstrumentConfig(name, driver, resource)
            if "timeout_ms" in entry:
                t = entry["timeout_ms"]
                if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= 600_000:
                    bad(f"{at}.timeout_ms", f"expected a number of ms in (0, 600000], got {t!r}")
                else:
                    inst.timeout_ms = float(t)
            cls_ = driver_class(driver)
            for key, value in entry.items():
                if key in INSTRUMENT_KEYS:
                    continue
                try:
                    s = cls_.setting(key)
                except SettingOutOfRange:
                    bad(f"{at}.{key}", f"not a setting of {driver}; its settings: "
                        + ", ".join(f"{s.name} {s.range_text()}" for s in cls_.SETTINGS))
                    continue
                try:
                    inst.settings[key] = s.validate(value)
                except SettingOutOfRange as exc:
                    bad(f"{at}.{key}", str(exc).partition(": ")[2])
            cfg.instruments.append(inst)
        if errors:
            raise BenchConfigError(errors)
        return cfg

    @classmethod
    def from_node_config(cls, path: str | Path, node: dict | None = None,
                         index: int | None = None) -> BenchConfig | None:
        """The bench of a node config file (``[bench]`` or ``bench = "file"``), None if it has
        none. ``node`` is the already parsed file, if the caller has it; ``index`` fills ``{n}``
        in resource strings."""
        path = Path(path)
        if node is None:
            node = _load_toml(path)
        bench = node.get("bench")
        if bench is None:
            return None
        if isinstance(bench, str):
            file = (path.parent / bench) if not Path(bench).is_absolute() else Path(bench)
            return cls.from_dict(_load_toml(file, f"{path}: bench"), str(file), index=index)
        return cls.from_dict(bench, str(path), index=index)

    @classmethod
    def load(cls, path: str | Path, index: int | None = None) -> BenchConfig:
        """A bench file (the keys of ``[bench]`` at its top)."""
        return cls.from_dict(_load_toml(Path(path), "bench file"), str(path), index=index)

    def instrument(self, name: str) -> InstrumentConfig:
        for i in self.instruments:
            if i.name == name:
                return i
        raise KeyError(name)


def _load_toml(path: Path, what: str = "config file") -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"{what} {str(path)!r} not found") from None
    except IsADirectoryError:
        raise UserError(f"{what} {str(path)!r} is a directory, expected a TOML file") from None
    except OSError as exc:  # unreadable
        raise UserError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:  # a binary file (tomllib reads UTF-8 text)
        raise UserError(f"{path}: not a TOML file (not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None


@dataclass(frozen=True, slots=True)
class PhysicsInputs:
    """What the physics layer takes from a bench: total attenuation of the node's arm (dB, the
    sum over its attenuators, which are in series) and the detector bias (uA, None if the bench
    has no detector bias source)."""

    attenuation_db: float = 0.0
    bias_current_ua: float | None = None


class Bench:
    """The open instruments of one node. Use as a context manager, or call :meth:`close`."""

    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.instruments: dict[str, BenchInstrument] = {}
        #: set by :meth:`check`: why the VISA library did not load (None: it did)
        self.library_problem: str | None = None

    def _connect(self, ic: InstrumentConfig) -> BenchInstrument:
        cls = driver_class(ic.driver)
        return cls.connect(ic.resource, visa_library=visa_library(self.config.visa_library),
                           timeout_ms=ic.timeout_ms or self.config.timeout_ms,
                           name=f"bench.{ic.name}")

    def open(self) -> Bench:
        """Connect every instrument (``*IDN?`` checked); raises the first failure, naming it."""
        for ic in self.config.instruments:
            if ic.name not in self.instruments:
                self.instruments[ic.name] = self._connect(ic)
        return self

    def apply(self) -> None:
        """Apply every instrument's settings from the bench file (error queue read per write)."""
        self.open()
        for ic in self.config.instruments:
            self.instruments[ic.name].apply(ic.settings)

    def start(self) -> dict[str, Any]:
        """What a node does at start: open, apply, and return the snapshot for the run."""
        self.apply()
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        """Identity, settings read back and readings of every instrument, JSON-ready."""
        self.open()
        return {
            "source": self.config.source,
            "visa_library": self.config.visa_library,
            "taken_unix": time.time(),
            "instruments": {n: inst.snapshot() for n, inst in self.instruments.items()},
        }

    def check(self) -> list[Health]:
        """Identify each instrument and report its health; never raises for one instrument.
        Each failure says what was tried (``step``), what failed (``problem``) and what to do
        (``hint``). A VISA library that does not load is found once (``library_problem``), and
        no instrument is tried then."""
        from hwctl.instruments.base import (
            HINT_LIBRARY,
            HINT_QUEUE,
            HINT_VISA,
            library_problem,
        )

        out = []
        lib = repr(self.config.visa_library) if self.config.visa_library else "(the system's)"
        why = None if self.instruments else library_problem(visa_library(self.config.visa_library))
        self.library_problem = None if why is None else f"VISA library {lib}: {why}"
        for ic in self.config.instruments:
            t0 = time.perf_counter()
            h = Health(ic.name, ic.driver, ic.resource, ok=False)
            if why is not None:
                h.step, h.problem, h.hint = "load the VISA library", f"not tried ({why})", \
                    HINT_LIBRARY
                out.append(h)
                continue
            step = "open"
            try:
                inst = self.instruments.get(ic.name) or self._connect(ic)
                self.instruments[ic.name] = inst
                h.identity = str(inst.identity)
                if inst.stale_errors:
                    h.step, h.hint = "error queue", HINT_QUEUE
                    h.problem = "errors left in the queue: " + "; ".join(
                        f"{c} {m}" for c, m in inst.stale_errors)
                    inst.stale_errors = []
                step = "readings"
                h.readings = inst.readings()
                step = "error queue"
                inst.raise_errors("health check")
                h.ok = not h.problem
            except HwctlError as exc:
                where = f"bench.{ic.name} at {ic.resource}: "
                text = " ".join(str(exc).split())
                h.problem = text[len(where):] if text.startswith(where) else text
                h.step = getattr(exc, "step", step)
                h.hint = getattr(exc, "hint", HINT_VISA)
            except Exception as exc:  # noqa: BLE001 - a driver's own fault: one line, no traceback
                h.problem = f"{exc.__class__.__name__}: {' '.join(str(exc).split())}"
                h.step, h.hint = step, HINT_VISA
            h.seconds = time.perf_counter() - t0
            out.append(h)
        return out

    def physics_inputs(self, from_instruments: bool = False) -> PhysicsInputs:
        """Arm attenuation and detector bias, from the bench file or (``from_instruments``) as
        read back from the open instruments."""
        att, bias = 0.0, None
        for ic in self.config.instruments:
            kind = driver_class(ic.driver).KIND
            if kind not in ("attenuator", "detector_bias"):
                continue
            if from_instruments:
                inst = self.open().instruments[ic.name]
                values = {s: inst.get(s) for s in ("attenuation_db", "bias_current_ua", "output")
                          if any(x.name == s for x in inst.SETTINGS)}
            else:
                values = ic.settings
            if kind == "attenuator":  # a closed output shutter blocks the arm
                att += float(values.get("attenuation_db", 0.0)) if values.get("output", True) \
                    else math.inf
            elif values.get("output", True):
                bias = (bias or 0.0) + float(values.get("bias_current_ua", 0.0))
            else:
                bias = (bias or 0.0)  # source off: no bias
        return PhysicsInputs(att, bias)

    def close(self) -> None:
        for inst in self.instruments.values():
            try:
                inst.adapter.close()
            except Exception:  # noqa: BLE001 - closing must not hide the run's own error
                pass
        self.instruments.clear()

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_bench(config: BenchConfig | None) -> tuple[Bench | None, dict[str, Any] | None]:
    """What a node does at start with its bench: open every instrument, apply the bench file's
    settings and take the snapshot for the run's metadata. ``(None, None)`` without a bench. A
    failure (instrument missing, wrong identity, setting refused) closes the bench and is one
    UserError naming the instrument, so the node stops with one line before it runs. Blocking
    VISA I/O: an asyncio caller runs it in a thread (``asyncio.to_thread``)."""
    if config is None:
        return None, None
    bench = Bench(config)
    try:
        return bench, bench.start()
    except HwctlError as exc:
        bench.close()
        if isinstance(exc, UserError):
            raise
        raise UserError(f"{config.source}: bench start failed: {exc}") from None


def edge_physics(inputs: dict[str, PhysicsInputs], edges: list[tuple[str, str]],
                 fidelity: float) -> dict[tuple[str, str], Any]:
    """The per-attempt physics of each link ``(u, v)`` from its ends' benches
    (:func:`hwctl.physics.bench.link_physics`; ``inputs`` from :meth:`Bench.physics_inputs`):
    u's attenuators on arm A, v's on arm B, and the station's detectors biased by u's detector
    bias source (the lower-named end's bench holds the station's SNSPD bias, a convention of the
    demo). A node without a bench: 0 dB; no bias source: the calibrated detector."""
    from hwctl.physics.bench import link_physics

    out = {}
    for u, v in edges:
        a, b = inputs.get(u, PhysicsInputs()), inputs.get(v, PhysicsInputs())
        out[u, v] = link_physics(fidelity, (a.attenuation_db, b.attenuation_db), a.bias_current_ua)
    return out
