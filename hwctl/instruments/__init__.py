"""Lab instruments around a heralded-entanglement node, driven over VISA (pyvisa), with a
simulated bench on pyvisa-sim.

Drivers (``driver`` key in a bench file -> class, instrument whose command set it speaks):

=====================  =========================================  ===============================
driver                 instrument                                 role (``KIND``)
=====================  =========================================  ===============================
``srs-dg645``          SRS DG645 delay generator (own driver)     delay_generator: attempt trigger
``keithley-2400``      Keithley 2400 SourceMeter (PyMeasure)      detector_bias: SNSPD bias current
``keysight-n7764a``    Keysight N7764A VOA (own driver)           attenuator: the node's arm
``keysight-n7734a``    Keysight N773xA 1x4 switch (own driver)    switch
``santec-tsl550``      Santec TSL-550 tunable laser (PyMeasure)   laser
``thorlabs-pm100usb``  Thorlabs PM100USB power meter (PyMeasure)  power_meter
``keysight-53230a``    Keysight 53230A counter (own driver)       counter: gated click counts
=====================  =========================================  ===============================

Every driver checks ``*IDN?`` on connect, validates settings (units in the names, ranges) before
sending, reads the error queue after each write and raises :mod:`hwctl.errors` exceptions
(:class:`~hwctl.errors.InstrumentTimeout`, :class:`~hwctl.errors.InstrumentError`, ...); see
:mod:`hwctl.instruments.base`. A node's bench (``[bench]`` in its config) is
:mod:`hwctl.instruments.bench`; the simulated instruments are ``hwctl/instruments/sim/bench.yaml``
(:data:`SIM_FILE`), selected with ``visa_library = "@sim"``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hwctl.instruments.base import BenchInstrument

#: driver key -> "module:Class" (imported only when used: start-up stays fast)
DRIVERS: dict[str, str] = {
    "srs-dg645": "hwctl.instruments.srs:DG645",
    "keithley-2400": "hwctl.instruments.keithley:Keithley2400Bias",
    "keysight-n7764a": "hwctl.instruments.keysight:N7764A",
    "keysight-n7734a": "hwctl.instruments.keysight:N7734A",
    "santec-tsl550": "hwctl.instruments.santec:TSL550Laser",
    "thorlabs-pm100usb": "hwctl.instruments.thorlabs:PM100USB",
    "keysight-53230a": "hwctl.instruments.keysight:Counter53230A",
}

#: pyvisa-sim definitions of every driver's instrument (package data)
SIM_FILE = Path(__file__).with_name("sim") / "bench.yaml"
#: the bench of every node of ``hwctl demo`` (a template: node n on simulated bench n)
DEMO_BENCH = Path(__file__).with_name("sim") / "demo-bench.toml"


def driver_class(key: str) -> type[BenchInstrument]:
    """The driver class for a bench file's ``driver`` key (KeyError if unknown)."""
    module, _, cls = DRIVERS[key].partition(":")
    return getattr(importlib.import_module(module), cls)


def visa_library(spec: str) -> str:
    """A bench's ``visa_library``: ``"@sim"`` means pyvisa-sim on hwctl's simulated bench;
    ``"file.yaml@sim"``, ``"@py"`` (pyvisa-py) or ``""`` (the system VISA) pass through."""
    return f"{SIM_FILE}@sim" if spec == "@sim" else spec
