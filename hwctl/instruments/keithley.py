"""Keithley 2400 SourceMeter as the bias current source of a superconducting nanowire
single-photon detector (SNSPD): PyMeasure's ``Keithley2400`` driver plus the bench layer.

Command set: Keithley "Series 2400 SourceMeter User's Manual", SCPI reference (``:SOUR:FUNC``,
``:SOUR:CURR``, ``:SENS:VOLT:PROT``, ``OUTP``, ``:MEAS:VOLT?``, ``SYST:ERR?``); PyMeasure's driver
sends them. The bench layer adds a *safe* range: an SNSPD is biased with a few microamps just below
its switching current, so the bias setting is limited to 0-100 uA (the SourceMeter itself goes to
1.05 A, which would destroy the nanowire) and the compliance to 20 V. The voltage reading tells
whether the wire is superconducting (about 0 V) or latched in the normal state.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pymeasure.instruments

from hwctl.instruments.base import BenchInstrument, Reading, Setting


def _import_keithley2400() -> type:
    """PyMeasure's ``Keithley2400`` without running ``pymeasure.instruments.keithley/__init__``,
    which imports every Keithley driver and, through the 2281S, pandas (0.8 s of start-up, most
    of ``hwctl instruments check``). The package is stood in for by a bare module with the same
    ``__path__`` while the submodule loads, then removed: a later ``import
    pymeasure.instruments.keithley`` runs the real ``__init__`` and reuses the loaded submodule
    (the same class)."""
    name = "pymeasure.instruments.keithley"
    if name in sys.modules:
        return sys.modules[name].keithley2400.Keithley2400
    stub = types.ModuleType(name)
    stub.__path__ = [str(Path(pymeasure.instruments.__file__).with_name("keithley"))]
    sys.modules[name] = stub
    try:
        return importlib.import_module(f"{name}.keithley2400").Keithley2400
    finally:
        if sys.modules.get(name) is stub:
            del sys.modules[name]


Keithley2400 = _import_keithley2400()

MAX_BIAS_UA = 100.0


class Keithley2400Bias(BenchInstrument, Keithley2400):
    """Keithley 2400 sourcing the SNSPD bias current (current source, voltage compliance)."""

    KIND = "detector_bias"
    DRIVER = "keithley-2400"
    MODEL = "Keithley 2400 SourceMeter (SNSPD bias)"
    IDN_PATTERN = r"^KEITHLEY INSTRUMENTS INC\.,MODEL 24[0-4][0-9],"
    SETTINGS = (
        Setting("compliance_v", "V", "compliance_voltage", "voltage compliance (:SENS:VOLT:PROT)",
                0.1, 20.0),
        Setting("bias_current_ua", "uA", "bias_current", "bias current (:SOUR:FUNC CURR; :SOUR:CURR)",
                0.0, MAX_BIAS_UA, scale=1e-6),
        Setting("output", "", "source_enabled", "source output on (OUTP)", type=bool),
    )
    READINGS = (Reading("voltage_v", "V", "voltage"),)

    def __init__(self, adapter, name: str = "keithley-2400", **kwargs) -> None:
        super().__init__(adapter, name, **kwargs)

    @property
    def bias_current(self) -> float:
        """Source current in A (the SourceMeter is put in current-source mode when set)."""
        return float(self.source_current)

    @bias_current.setter
    def bias_current(self, amps: float) -> None:
        self.source_mode = "current"
        self.source_current = amps
