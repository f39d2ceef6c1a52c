"""Keysight lightwave and counter instruments that PyMeasure does not have, written on its base.

- :class:`N7764A`: Keysight N7764A 4-channel variable optical attenuator (same ``:INPut:ATTenuation``
  / ``:INPut:WAVelength`` / ``:OUTPut:STATe`` commands as the 81577A module and the N776x family;
  Keysight "N77xx Series Programming Guide", attenuator commands). Attenuation 0-45 dB.
- :class:`N7734A`: Keysight N773xA optical switch (1x4 here), ``:ROUTe[n][:CHANnel[m]] A,<port>``
  (same programming guide, switch ``ROUTe`` commands; the 8159x switch modules use it too).
- :class:`Counter53230A`: Keysight 53230A universal counter in totalize mode: gated photon counts
  from a detector output (Keysight "53210A/53220A/53230A Programming Guide": ``CONFigure:TOTalize:
  TIMed``, ``SENSe:TOTalize:GATE:TIME``, ``INPut:LEVel``, ``INPut:IMPedance``, ``READ?``).

All three are SCPI instruments: errors come from ``SYST:ERR?`` (``+0,"No error"`` when empty).
"""

from __future__ import annotations

from pymeasure.instruments import Instrument, SCPIMixin
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from hwctl.instruments.base import BenchInstrument, Reading, Setting

VOA_MAX_DB = 45.0  # N7764A attenuation range 0 .. 45 dB
VOA_WAVELENGTH_NM = (1260.0, 1640.0)  # calibrated wavelength range of the N776x attenuators
SWITCH_PORTS = 4


class N7764A(BenchInstrument, SCPIMixin, Instrument):
    """Keysight N7764A variable optical attenuator, channel 1 (the arm of this node)."""

    KIND = "attenuator"
    DRIVER = "keysight-n7764a"
    MODEL = "Keysight N7764A variable optical attenuator"
    IDN_PATTERN = r"^(Keysight|Agilent) Technologies,(N776[1-4]A|8157[0-9]A),"
    SETTINGS = (
        Setting("wavelength_nm", "nm", "wavelength", "calibration wavelength (:INP1:WAV)",
                *VOA_WAVELENGTH_NM, scale=1e-9),
        Setting("attenuation_db", "dB", "attenuation", "attenuation (:INP1:ATT)", 0.0, VOA_MAX_DB),
        Setting("output", "", "output_enabled", "output shutter open (:OUTP1:STAT)", type=bool),
    )

    def __init__(self, adapter, name: str = "keysight-n7764a", **kwargs) -> None:
        super().__init__(adapter, name, **kwargs)

    attenuation = Instrument.control(
        ":INP1:ATT?", ":INP1:ATT %.3fDB", "Attenuation in dB (0 .. 45).",
        validator=strict_range, values=[0.0, VOA_MAX_DB], check_set_errors=True)
    wavelength = Instrument.control(
        ":INP1:WAV?", ":INP1:WAV %.4fNM", "Calibration wavelength; set in nm, read in m.",
        validator=strict_range, values=[w * 1e-9 for w in VOA_WAVELENGTH_NM],
        set_process=lambda m: m * 1e9, check_set_errors=True)
    output_enabled = Instrument.control(
        ":OUTP1:STAT?", ":OUTP1:STAT %d", "Output (shutter) open (bool).",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True,
        check_set_errors=True)


class N7734A(BenchInstrument, SCPIMixin, Instrument):
    """Keysight N773xA 1x4 optical switch: routes common port A to one of ports 1..4."""

    KIND = "switch"
    DRIVER = "keysight-n7734a"
    MODEL = "Keysight N773xA optical switch (1x4)"
    IDN_PATTERN = r"^(Keysight|Agilent) Technologies,(N773[1-4]A|8159[0-9][AB]),"
    SETTINGS = (
        Setting("port", "", "port", "output port connected to A (:ROUT1:CHAN1 A,<port>)",
                choices=tuple(range(1, SWITCH_PORTS + 1)), type=int),
    )

    def __init__(self, adapter, name: str = "keysight-n7734a", **kwargs) -> None:
        super().__init__(adapter, name, **kwargs)

    port = Instrument.control(
        ":ROUT1:CHAN1?", ":ROUT1:CHAN1 A,%d", "Port routed to A (int 1..4).",
        validator=strict_discrete_set, values=range(1, SWITCH_PORTS + 1),
        get_process_list=lambda v: int(v[-1]), check_set_errors=True)


class Counter53230A(BenchInstrument, SCPIMixin, Instrument):
    """Keysight 53230A counter totalizing detector clicks over a timed gate."""

    KIND = "counter"
    DRIVER = "keysight-53230a"
    MODEL = "Keysight 53230A universal counter"
    IDN_PATTERN = r"^(Keysight|Agilent) Technologies,532[123]0A,"
    SETTINGS = (
        Setting("gate_time_s", "s", "gate_time", "totalize gate (CONF:TOT:TIM; SENS:TOT:GATE:TIME)",
                1e-6, 1000.0),
        Setting("input_level_v", "V", "input_level", "channel 1 trigger level (INP1:LEV)",
                -5.0, 5.0),
        Setting("input_impedance_ohm", "ohm", "input_impedance", "channel 1 input impedance",
                choices=(50.0, 1e6)),
    )
    READINGS = (Reading("count_rate_hz", "Hz", "count_rate"),)

    def __init__(self, adapter, name: str = "keysight-53230a", **kwargs) -> None:
        super().__init__(adapter, name, **kwargs)

    @property
    def gate_time(self) -> float:
        return float(self.values("SENS:TOT:GATE:TIME?")[0])

    @gate_time.setter
    def gate_time(self, seconds: float) -> None:
        """Configure timed totalize on channel 1 with this gate (CONF presets the function)."""
        seconds = strict_range(seconds, [1e-6, 1000.0])
        self.write(f"CONF:TOT:TIM {seconds:.9g},(@1)")
        self.check_set_errors()

    input_level = Instrument.control(
        "INP1:LEV?", "INP1:LEV %.4g", "Channel 1 trigger level in V (-5 .. 5).",
        validator=strict_range, values=[-5.0, 5.0], check_set_errors=True)
    input_impedance = Instrument.control(
        "INP1:IMP?", "INP1:IMP %.6g", "Channel 1 input impedance in ohm (50 or 1e6).",
        validator=strict_discrete_set, values=[50.0, 1e6], check_set_errors=True)

    def count_rate(self) -> float:
        """One gated totalize (READ?), as counts per second of gate."""
        counts = float(self.values("READ?")[0])
        return counts / self.gate_time
