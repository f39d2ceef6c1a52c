"""Bench instrument drivers (hwctl.instruments): every driver on its pyvisa-sim definition
(normal path, out-of-range value, instrument error, timeout, wrong identity) and byte-exact
protocol tests with PyMeasure's ProtocolAdapter."""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from pymeasure.adapters import ProtocolAdapter

from hwctl.demo import SIM_BENCHES
from hwctl.errors import (
    IdentityMismatch,
    InstrumentError,
    InstrumentNotFound,
    InstrumentTimeout,
    SettingOutOfRange,
    UserError,
)
from hwctl.instruments import DRIVERS, SIM_FILE, driver_class

#: driver -> (resource on simulated bench 0, its sim device, settings to apply, one setting whose
#: sim definition test_instrument_error tightens: (setting, sim property, a value the driver
#: allows, the sim's new maximum in the instrument's unit; None: drop the value from its set))
CASES = {
    "srs-dg645": ("TCPIP0::dg645-0.bench::5025::SOCKET", "dg645",
                  {"trigger_source": "external_rising", "trigger_rate_hz": 2e6, "delay_a_s": 1.25e-7,
                   "width_ab_s": 5e-9, "amplitude_ab_v": 3.3},
                  ("trigger_rate_hz", "trigger_rate", 5e6, "1e6")),
    "keithley-2400": ("GPIB0::24::INSTR", "keithley2400",
                      {"compliance_v": 1.5, "bias_current_ua": 8.75, "output": True},
                      ("bias_current_ua", "source_current", 90.0, "5e-05")),
    "keysight-n7764a": ("TCPIP0::n7764a-0.bench::inst0::INSTR", "n7764a",
                        {"wavelength_nm": 1310.0, "attenuation_db": 12.5, "output": True},
                        ("attenuation_db", "attenuation", 40.0, "30")),
    "keysight-n7734a": ("TCPIP0::n7734a-0.bench::inst0::INSTR", "n7734a", {"port": 3},
                        ("port", "port", 4, None)),
    "santec-tsl550": ("GPIB0::1::INSTR", "tsl550",
                      {"wavelength_nm": 1550.12, "power_dbm": -3.0, "diode_on": True,
                       "shutter_open": True},
                      ("wavelength_nm", "wavelength", 1620.0, "1600")),
    "thorlabs-pm100usb": ("USB0::0x1313::0x8072::P2000000::INSTR", "pm100usb",
                          {"wavelength_nm": 1310.0, "average_count": 250},
                          ("average_count", "average", 5000, "1000")),
    "keysight-53230a": ("USB0::0x0957::0x1907::MY54100000::INSTR", "c53230a",
                        {"gate_time_s": 0.25, "input_level_v": -0.3, "input_impedance_ohm": 50.0},
                        ("input_level_v", "level", 4.0, "2")),
}


def test_every_driver_has_a_case_and_a_sim_device() -> None:
    assert set(CASES) == set(DRIVERS)
    sim = yaml.safe_load(SIM_FILE.read_text())
    for key, (resource, device, _, _) in CASES.items():
        assert sim["resources"][resource]["device"] == device, key
        # eight independent simulated benches: the same instruments on bench 0..7
        assert sum(r["device"] == device for r in sim["resources"].values()) == SIM_BENCHES


@pytest.fixture
def sim(tmp_path: Path):
    """A fresh copy of the simulated bench: pyvisa caches one library (and its devices) per
    file, so a copy per test gives every test instruments in their power-on state."""

    def make(edit=None) -> str:
        path = tmp_path / f"bench{len(list(tmp_path.iterdir()))}.yaml"
        if edit is None:
            shutil.copy(SIM_FILE, path)
        else:
            data = yaml.safe_load(SIM_FILE.read_text())
            edit(data)
            path.write_text(yaml.safe_dump(data))
        return f"{path}@sim"

    return make


@pytest.mark.parametrize("driver", list(CASES))
def test_connect_apply_read_back_snapshot(sim, driver: str) -> None:
    resource, _, settings, _ = CASES[driver]
    cls = driver_class(driver)
    with_name = f"bench.{driver}"
    inst = cls.connect(resource, visa_library=sim(), timeout_ms=500, name=with_name)
    try:
        assert inst.identity.serial and inst.stale_errors == []
        before = inst.settings()
        for k, v in settings.items():  # power-on state differs: the read-back proves the writes
            assert before[k] != v, k
        inst.apply(settings)
        after = inst.settings()
        for k, v in settings.items():
            assert after[k] == (pytest.approx(v, rel=1e-9) if isinstance(v, float) else v), k
        snap = inst.snapshot()
        assert snap["driver"] == driver and snap["resource"] == resource
        idn = ",".join(snap["identity"][k] for k in ("manufacturer", "model", "serial", "firmware"))
        assert re.search(cls.IDN_PATTERN, idn, re.IGNORECASE)
        assert set(snap["settings"]) == {s.name for s in cls.SETTINGS}
        assert set(snap["readings"]) == {r.name for r in cls.READINGS}
        assert all(snap["units"][s.name] == s.unit for s in cls.SETTINGS)
    finally:
        inst.adapter.close()


@pytest.mark.parametrize("driver", list(CASES))
def test_out_of_range_refused_before_sending(sim, driver: str) -> None:
    resource, _, _, _ = CASES[driver]
    cls = driver_class(driver)
    inst = cls.connect(resource, visa_library=sim(), timeout_ms=500)
    try:
        before = inst.settings()
        for s in cls.SETTINGS:
            bad = [s.type(s.hi * 2 + 1)] if s.hi is not None else []
            bad += ["not a value"] if s.type is not str else [17]
            for value in bad:
                with pytest.raises(SettingOutOfRange) as exc:
                    inst.set(s.name, value)
                assert s.name in str(exc.value)
                if s.hi is not None and not isinstance(value, str):
                    assert s.unit in str(exc.value) and "out of range" in str(exc.value)
        with pytest.raises(SettingOutOfRange, match="no setting"):
            inst.set("no_such_setting", 1)
        # apply validates everything first: one bad value, nothing sent
        good = CASES[driver][2]
        first = next(iter(good))
        with pytest.raises(SettingOutOfRange):
            inst.apply(good | {cls.SETTINGS[-1].name: "wrong"})
        assert inst.settings() == before, f"{first} was sent although apply was refused"
    finally:
        inst.adapter.close()


@pytest.mark.parametrize("driver", list(CASES))
def test_instrument_error_from_the_error_queue(sim, driver: str) -> None:
    """The simulated instrument accepts a narrower range than the driver (another option of
    the model): it refuses the write and queues an error, which the driver raises."""
    resource, device, _, (setting, prop, value, sim_max) = CASES[driver]

    def tighten(data: dict) -> None:
        specs = data["devices"][device]["properties"][prop]["specs"]
        if "valid" in specs:
            specs["valid"] = [v for v in specs["valid"] if v != value]
        else:
            specs["max"] = sim_max

    cls = driver_class(driver)
    inst = cls.connect(resource, visa_library=sim(tighten), timeout_ms=500)
    try:
        with pytest.raises(InstrumentError) as exc:
            inst.set(setting, value)
        assert exc.value.errors and exc.value.errors[0][0] != 0
        assert setting in str(exc.value)
        inst.raise_errors("queue drained")  # the error was read out: nothing left
        # an unknown command is an instrument error too
        inst.write("HWCTL:NO:SUCH:COMMAND 1")
        with pytest.raises(InstrumentError):
            inst.raise_errors("after an unknown command")
    finally:
        inst.adapter.close()


@pytest.mark.parametrize("driver", list(CASES))
def test_timeout_is_a_clear_exception(sim, driver: str) -> None:
    resource, device, _, _ = CASES[driver]
    cls = driver_class(driver)
    lib = sim()
    inst = cls.connect(resource, visa_library=lib, timeout_ms=50)
    try:
        with pytest.raises(InstrumentTimeout, match=r"no answer to 'HWCTL:NOTHING\?' within 50 ms"):
            inst.ask("HWCTL:NOTHING?")
    finally:
        inst.adapter.close()

    def mute(data: dict) -> None:  # an instrument that does not answer *IDN?
        data["devices"][device]["dialogues"] = [
            d for d in data["devices"][device]["dialogues"] if d["q"] != "*IDN?"]

    with pytest.raises(InstrumentTimeout, match=r"\*IDN\?"):
        cls.connect(resource, visa_library=sim(mute), timeout_ms=50)


@pytest.mark.filterwarnings("ignore:read string doesn't end with termination")
def test_wrong_instrument_and_missing_resource(sim) -> None:
    lib = sim()
    voa = driver_class("keysight-n7764a")
    with pytest.raises(IdentityMismatch, match="expected a Keysight N7764A.*N7734A"):
        voa.connect(CASES["keysight-n7734a"][0], visa_library=lib)
    with pytest.raises(InstrumentNotFound):
        voa.connect("GPIB7::29::INSTR", visa_library=lib)
    with pytest.raises(InstrumentNotFound):
        voa.connect("not a resource", visa_library=lib)
    assert issubclass(IdentityMismatch, UserError) and issubclass(InstrumentNotFound, UserError)


def test_pm100_without_sensor_head(sim) -> None:
    def unplug(data: dict) -> None:
        for d in data["devices"]["pm100usb"]["dialogues"]:
            if d["q"] == "SYST:SENSOR:IDN?":
                d["r"] = "no sensor,0,0,0,0,0"

    with pytest.raises(InstrumentError, match="No sensor connected"):
        driver_class("thorlabs-pm100usb").connect(CASES["thorlabs-pm100usb"][0],
                                                  visa_library=sim(unplug))


def test_pm100_refuses_wavelength_outside_the_head(sim) -> None:
    """PyMeasure's PM100 driver truncates silently; the bench driver refuses (head: 700-1800 nm)."""
    pm = driver_class("thorlabs-pm100usb").connect(CASES["thorlabs-pm100usb"][0],
                                                    visa_library=sim())
    try:
        with pytest.raises(SettingOutOfRange, match=r"S122C \[700, 1800\] nm"):
            pm.set("wavelength_nm", 532.0)
        assert pm.get("wavelength_nm") == 1550.0
    finally:
        pm.adapter.close()


# --- byte-exact protocol (PyMeasure ProtocolAdapter) ---------------------------------------------


@contextmanager
def protocol(driver: str, pairs: list[tuple[bytes | None, bytes | None]]):
    """Connect through a ProtocolAdapter and require exactly ``pairs`` on the wire (the check of
    pymeasure.test.expected_protocol, with the connect step included)."""
    adapter = ProtocolAdapter(pairs)
    inst = driver_class(driver).connect(adapter)
    yield inst
    assert adapter._index == len(pairs), f"unsent: {pairs[adapter._index:]}"
    assert adapter._write_buffer is None and adapter._read_buffer is None


SCPI_OK = b'+0,"No error"'


def test_protocol_dg645() -> None:
    idn = b"Stanford Research Systems,DG645,s/n004025,ver1.00.10A"
    with protocol("srs-dg645", [
        (b"*IDN?", idn), (b"LERR?", b"0"),
        (b"DLAY 2,0,1.25e-07", None), (b"LERR?", b"0"),
        (b"TRAT 2000000", None), (b"LERR?", b"12"), (b"LERR?", b"0"),
    ]) as dg:
        dg.set("delay_a_s", 125e-9)
        with pytest.raises(InstrumentError, match="12 Illegal delay"):
            dg.set("trigger_rate_hz", 2e6)


def test_protocol_keithley_bias() -> None:
    idn = b"KEITHLEY INSTRUMENTS INC.,MODEL 2400,4108360,C32 Oct 4 2010/A02 /K/J"
    with protocol("keithley-2400", [
        (b"*IDN?", idn),
        (b":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS", None),
        (b"SYST:ERR?", b'0,"No error"'),
        (b":SOURCE:FUNCTION CURR", None), (b":SOURCE:CURRENT 9e-06", None),
        (b"SYST:ERR?", b'0,"No error"'),
        (b":SOURCE:CURRENT?", b"+9.000000E-06"),
    ]) as k:
        k.set("bias_current_ua", 9.0)
        assert k.get("bias_current_ua") == pytest.approx(9.0)


def test_protocol_voa_switch_counter() -> None:
    idn = b"Keysight Technologies,N7764A,MY53000123,V1.3.0"
    with protocol("keysight-n7764a", [
        (b"*IDN?", idn), (b"SYST:ERR?", SCPI_OK),
        (b":INP1:ATT 10.000DB", None), (b"SYST:ERR?", SCPI_OK),
        (b":INP1:WAV 1550.1200NM", None), (b"SYST:ERR?", b'-222,"Data out of range"'),
        (b"SYST:ERR?", SCPI_OK),
        (b":INP1:WAV?", b"+1.55012000E-006"),
    ]) as voa:
        voa.set("attenuation_db", 10)
        with pytest.raises(InstrumentError, match='-222 Data out of range'):
            voa.set("wavelength_nm", 1550.12)
        assert voa.get("wavelength_nm") == 1550.12
    with protocol("keysight-n7734a", [
        (b"*IDN?", b"Keysight Technologies,N7734A,MY1,V1"), (b"SYST:ERR?", SCPI_OK),
        (b":ROUT1:CHAN1 A,2", None), (b"SYST:ERR?", SCPI_OK), (b":ROUT1:CHAN1?", b"A,2"),
    ]) as sw:
        sw.set("port", 2)
        assert sw.get("port") == 2
    with protocol("keysight-53230a", [
        (b"*IDN?", b"Keysight Technologies,53230A,MY1,03.05"), (b"SYST:ERR?", SCPI_OK),
        (b"CONF:TOT:TIM 0.5,(@1)", None), (b"SYST:ERR?", SCPI_OK),
        (b"READ?", b"+6.000000000000000E+03"), (b"SENS:TOT:GATE:TIME?", b"+5.000000000E-01"),
    ]) as c:
        c.set("gate_time_s", 0.5)
        assert c.readings() == {"count_rate_hz": 12000.0}


def test_protocol_laser_and_power_meter() -> None:
    with protocol("santec-tsl550", [
        (b"*IDN?", b"SANTEC,TSL-550,06020001,0001.0000"), (b"SYST:ERR?", SCPI_OK),
        (b":POWer:UNIT 0", None), (b":POWer -3", None), (b"SYST:ERR?", SCPI_OK),
    ]) as laser:
        laser.set("power_dbm", -3.0)
    with protocol("thorlabs-pm100usb", [
        (b"*IDN?", b"Thorlabs,PM100USB,P2000000,1.7.0"),
        (b"SYST:SENSOR:IDN?", b"S122C,19010101,01-Jan-2024,1,18,289"),
        (b"SYST:ERR?", SCPI_OK),
        (b"SENS:CORR:WAV? MIN", b"700.0"), (b"SENS:CORR:WAV? MAX", b"1800.0"),
        (b"SENS:CORR:WAV 1310", None), (b"SYST:ERR?", SCPI_OK),
        (b"MEAS:POW?", b"2.5E-06"),
    ]) as pm:
        pm.set("wavelength_nm", 1310)
        assert pm.readings() == {"power_w": 2.5e-06}
