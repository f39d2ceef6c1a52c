"""Santec TSL-550 tunable laser: PyMeasure's ``TSL550`` plus the bench layer.

Command set: Santec "TSL-550 Operation Manual", SCPI command mode (``:WAV``, ``:POW``,
``:POW:UNIT``, ``:POW:STAT``, ``:POW:SHUT``, ``:POW:ACT?``, ``:SYST:ERR?``); PyMeasure's driver
sends them and checks ``SYST:ERR?`` after wavelength and power writes. The bench layer always
works in dBm (it sets ``:POW:UNIT 0`` before writing a power) and adds ranges: 1500-1630 nm and
-15..+13 dBm (the TSL-550's tuning and output ranges). Messages end with <CR>.
"""

from __future__ import annotations

import math

from pymeasure.instruments.santec.tsl550 import TSL550

from hwctl.instruments.base import BenchInstrument, Reading, Setting


class TSL550Laser(BenchInstrument, TSL550):
    """Santec TSL-550: wavelength (nm), power (dBm), diode on/off, shutter."""

    KIND = "laser"
    DRIVER = "santec-tsl550"
    MODEL = "Santec TSL-550 tunable laser"
    IDN_PATTERN = r"^SANTEC,TSL-5[57]0,"
    READ_TERMINATION = "\r"
    WRITE_TERMINATION = "\r"
    SETTINGS = (
        Setting("wavelength_nm", "nm", "wavelength_setpoint", "output wavelength (:WAV)",
                1500.0, 1630.0),
        Setting("power_dbm", "dBm", "power_dbm", "output power (:POW:UNIT 0; :POW)", -15.0, 13.0),
        Setting("diode_on", "", "laser_enabled", "laser diode current on (:POW:STAT)", type=bool),
        Setting("shutter_open", "", "output_enabled", "internal shutter open (:POW:SHUT)", type=bool),
    )
    READINGS = (Reading("power_monitor_dbm", "dBm", "measured_power_dbm"),)

    def __init__(self, adapter, name: str = "santec-tsl550", **kwargs) -> None:
        super().__init__(adapter, name, **kwargs)

    @property
    def power_dbm(self) -> float:
        p = float(self.power_setpoint)
        return p if self.power_unit == "dBm" else 10 * math.log10(p)

    @power_dbm.setter
    def power_dbm(self, dbm: float) -> None:
        self.power_unit = "dBm"
        self.power_setpoint = dbm

    def measured_power_dbm(self) -> float:
        p = float(self.power)
        return p if self.power_unit == "dBm" else 10 * math.log10(max(p, 1e-30))
