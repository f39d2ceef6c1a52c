"""Thorlabs PM100USB optical power meter: PyMeasure's ``ThorlabsPM100USB`` plus the bench layer.

Command set: Thorlabs "PM100USB Optical Power and Energy Meter" manual, SCPI commands
(``SENS:CORR:WAV``, ``SENS:AVER:COUN``, ``MEAS:POW?``, ``SYST:SENS:IDN?``, ``SYST:ERR?``). PyMeasure's
driver reads the sensor head's identity and flags on connect. Its wavelength setter silently
truncates to the sensor's range; the bench layer refuses a wavelength outside the head's range
instead (queried from the head), so a typo in a bench file is an error, not a silent change.
"""

from __future__ import annotations

import warnings

from pymeasure.instruments.thorlabs.thorlabspm100usb import ThorlabsPM100USB

from hwctl.errors import SettingOutOfRange
from hwctl.instruments.base import BenchInstrument, Reading, Setting


class PM100USB(BenchInstrument, ThorlabsPM100USB):
    """Thorlabs PM100USB with a photodiode head: power in W at a calibration wavelength."""

    KIND = "power_meter"
    DRIVER = "thorlabs-pm100usb"
    MODEL = "Thorlabs PM100USB power meter"
    IDN_PATTERN = r"^Thorlabs,PM100(USB|D|A),"
    SETTINGS = (
        Setting("wavelength_nm", "nm", "wavelength_checked",
                "calibration wavelength (SENS:CORR:WAV), within the head's range", 185.0, 25000.0),
        Setting("average_count", "", "average_count", "samples averaged per reading (SENS:AVER:COUN)",
                1, 10000, type=int),
    )
    READINGS = (Reading("power_w", "W", "power"),)

    def __init__(self, adapter, name: str = "thorlabs-pm100usb", **kwargs) -> None:
        with warnings.catch_warnings():  # PyMeasure flags the PM100 as "SCPI support unknown"
            warnings.simplefilter("ignore", FutureWarning)
            super().__init__(adapter, name, **kwargs)

    @property
    def wavelength_checked(self) -> float:
        return float(self.wavelength)

    @wavelength_checked.setter
    def wavelength_checked(self, nm: float) -> None:
        lo, hi = float(self.wavelength_min), float(self.wavelength_max)
        if not lo <= nm <= hi:
            raise SettingOutOfRange(f"{self.where}: wavelength_nm {nm:g} nm is outside the range "
                                    f"of sensor {self.sensor_name} [{lo:g}, {hi:g}] nm")
        self.write(f"SENS:CORR:WAV {nm:g}")

    @property
    def average_count(self) -> int:
        return int(float(self.values("SENS:AVER:COUN?")[0]))

    @average_count.setter
    def average_count(self, n: int) -> None:
        self.write(f"SENS:AVER:COUN {int(n)}")
