"""A node's bench (hwctl.instruments.bench): config validation (one line per mistake: file, key,
why), start (open, apply, snapshot), health check, and `hwctl instruments` on the example bench."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from hwctl.cli import main
from hwctl.errors import UserError
from hwctl.instruments import DEMO_BENCH, SIM_FILE
from hwctl.instruments.bench import Bench, BenchConfig, BenchConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "node-bench.toml"


def _fresh_example(tmp_path: Path) -> Path:
    """The example node config on its own copy of the simulated bench (fresh instruments)."""
    sim = tmp_path / "sim.yaml"
    shutil.copy(SIM_FILE, sim)
    text = EXAMPLE.read_text().replace('visa_library = "@sim"', f'visa_library = "{sim}@sim"')
    assert str(sim) in text
    node = tmp_path / "node.toml"
    node.write_text(text)
    return node


def test_example_bench_validates() -> None:
    cfg = BenchConfig.from_node_config(EXAMPLE)
    assert cfg is not None and cfg.visa_library == "@sim"
    assert {i.driver for i in cfg.instruments} == {
        "srs-dg645", "santec-tsl550", "keysight-n7764a", "keysight-n7734a", "thorlabs-pm100usb",
        "keithley-2400", "keysight-53230a"}
    assert cfg.instrument("voa").settings["attenuation_db"] == 3.0


def test_every_mistake_is_one_line_with_file_key_and_why(tmp_path: Path) -> None:
    node = tmp_path / "node.toml"
    node.write_text("""
name = "A"
[bench]
visa_library = 5
timeout_ms = -1
stray = 1
[bench.voa]
driver = "keysight-n7764a"
resource = "TCPIP0::n7764a-0.bench::inst0::INSTR"
attenuation_db = 75
atenuation_db = 3
output = "yes"
[bench.voa2]
driver = "keysight-n7764a"
resource = "TCPIP0::n7764a-0.bench::inst0::INSTR"
[bench.nodriver]
resource = "GPIB0::1::INSTR"
[bench.typo]
driver = "keithley-2401"
resource = "GPIB0::24::INSTR"
[bench.noresource]
driver = "keithley-2400"
[bench.bias]
driver = "keithley-2400"
resource = "GPIB0::24::INSTR"
bias_current_ua = 500
""")
    with pytest.raises(BenchConfigError) as exc:
        BenchConfig.from_node_config(node)
    lines = exc.value.mistakes
    assert str(exc.value) == " ; ".join(lines) and "\n" not in str(exc.value)
    expect = [
        ("bench.visa_library", "expected a string"),
        ("bench.timeout_ms", "expected a number of ms"),
        ("bench.stray", "unknown key"),
        ("bench.voa.attenuation_db", "75 dB is out of range [0, 45] dB"),
        ("bench.voa.atenuation_db", "not a setting of keysight-n7764a"),
        ("bench.voa.output", "expected true or false"),
        ("bench.voa2.resource", "already used by bench.voa"),
        ("bench.nodriver.driver", "missing"),
        ("bench.typo.driver", "unknown driver 'keithley-2401'"),
        ("bench.noresource.resource", "not a VISA resource string"),
        ("bench.bias.bias_current_ua", "500 uA is out of range [0, 100] uA"),
    ]
    assert len(lines) == len(expect), lines
    for line, (key, why) in zip(lines, expect, strict=True):
        assert line.startswith(f"{node}: {key}: ") and why in line, line


def test_bench_file_referenced_from_node_config(tmp_path: Path) -> None:
    (tmp_path / "bench.toml").write_text(
        '[voa]\ndriver = "keysight-n7764a"\nresource = "TCPIP0::n7764a-1.bench::inst0::INSTR"\n'
        'attenuation_db = 99\n')
    node = tmp_path / "node.toml"
    node.write_text('name = "A"\nbench = "bench.toml"\n')
    with pytest.raises(UserError, match=r"bench\.toml: bench\.voa\.attenuation_db: 99 dB"):
        BenchConfig.from_node_config(node)
    node.write_text('name = "A"\nbench = "missing.toml"\n')
    with pytest.raises(UserError, match="not found"):
        BenchConfig.from_node_config(node)
    node.write_text('name = "A"\n')
    assert BenchConfig.from_node_config(node) is None


def test_start_applies_settings_and_snapshot_reads_them_back(tmp_path: Path) -> None:
    cfg = BenchConfig.from_node_config(_fresh_example(tmp_path))
    with Bench(cfg) as bench:
        before = bench.snapshot()
        assert before["instruments"]["voa"]["settings"]["attenuation_db"] == 0.0  # power-on
        snap = bench.start()
    # JSON round trip, as stored in the run's metadata
    snap = json.loads(json.dumps(snap))
    for ic in cfg.instruments:
        got = snap["instruments"][ic.name]
        assert got["driver"] == ic.driver and got["resource"] == ic.resource
        assert got["identity"]["serial"]
        for k, v in ic.settings.items():
            assert got["settings"][k] == (pytest.approx(v) if isinstance(v, float) else v), (ic.name, k)
    assert snap["instruments"]["snspd_bias"]["readings"]["voltage_v"] < 1e-3  # superconducting
    assert snap["instruments"]["counter"]["units"]["count_rate_hz"] == "Hz"


def test_physics_inputs_from_file_and_instruments(tmp_path: Path) -> None:
    cfg = BenchConfig.from_node_config(_fresh_example(tmp_path))
    with Bench(cfg) as bench:
        assert bench.physics_inputs().attenuation_db == 3.0
        assert bench.physics_inputs().bias_current_ua == 9.0
        # before the settings are applied, the instruments are at power-on: VOA shutter closed,
        # bias source off
        live = bench.physics_inputs(from_instruments=True)
        assert math.isinf(live.attenuation_db) and live.bias_current_ua == 0.0
        bench.apply()
        assert bench.physics_inputs(from_instruments=True) == bench.physics_inputs()


def test_check_cli_reports_every_instrument_healthy(tmp_path: Path, capsys) -> None:
    node = _fresh_example(tmp_path)
    snap_file = tmp_path / "snap.json"
    assert main(["instruments", "check", "--config", str(node), "--apply",
                 "--snapshot", str(snap_file)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("7/7 instruments healthy")
    assert sum(line.startswith("ok ") for line in out) == 7
    snap = json.loads(snap_file.read_text())
    assert snap["instruments"]["voa"]["settings"]["attenuation_db"] == 3.0
    assert main(["instruments", "check", "--config", str(node), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(i["ok"] for i in report["instruments"]) and len(report["instruments"]) == 7


@pytest.mark.filterwarnings("ignore:read string doesn't end with termination")
def test_check_cli_reports_a_missing_instrument(tmp_path: Path, capsys) -> None:
    node = _fresh_example(tmp_path)
    node.write_text(node.read_text().replace("GPIB0::24::INSTR", "GPIB5::9::INSTR"))
    assert main(["instruments", "check", "--config", str(node)]) == 1
    out = capsys.readouterr().out
    assert "FAIL snspd_bias" in out and "nothing answers *IDN?" in out
    assert "6/7 instruments healthy" in out


def test_cli_user_mistakes_exit_2(tmp_path: Path, capsys) -> None:
    node = tmp_path / "bad.toml"
    node.write_text('[bench.voa]\ndriver = "keysight-n7764a"\nresource = "GPIB0::2::INSTR"\n'
                    'attenuation_db = -1\nport = 3\n')
    assert main(["instruments", "check", "--config", str(node)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert "bench.voa.attenuation_db: -1 dB is out of range [0, 45] dB" in err[0]
    assert "bench.voa.port: not a setting of keysight-n7764a" in err[0]
    assert main(["instruments", "check", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "not found" in capsys.readouterr().err
    node = tmp_path / "node.toml"
    node.write_text('name = "A"\n')
    assert main(["instruments", "check", "--config", str(node)]) == 2
    assert "no [bench]" in capsys.readouterr().err


def test_list_cli(capsys) -> None:
    assert main(["instruments", "list", "--config", str(EXAMPLE), "--resources"]) == 0
    out = capsys.readouterr().out
    assert "keysight-n7764a" in out and "attenuation_db" in out and "[0, 45] dB" in out
    assert "TCPIP0::n7764a-0.bench::inst0::INSTR" in out
    assert "VISA resources (224)" in out  # 32 simulated benches x 7 instruments


def test_template_bench_for_node_n() -> None:
    template = DEMO_BENCH
    with pytest.raises(BenchConfigError, match=r"bench\.voa\.resource: .*\{n\} only in a template"):
        BenchConfig.load(template)
    cfg = BenchConfig.load(template, index=3)
    assert cfg.instrument("voa").resource == "TCPIP0::n7764a-3.bench::inst0::INSTR"
    assert cfg.instrument("monitor").resource == "USB0::0x1313::0x8072::P2000003::INSTR"
    assert cfg.instrument("counter").resource == "USB0::0x0957::0x1907::MY54100003::INSTR"
    with Bench(cfg) as bench:  # every resource of bench 3 exists on the simulated bench
        health = bench.check()
    assert all(h.ok for h in health), [h.problem for h in health if not h.ok]


def test_start_bench_for_a_node(tmp_path: Path) -> None:
    from hwctl.instruments.bench import start_bench

    assert start_bench(None) == (None, None)
    node = _fresh_example(tmp_path)
    bench, snap = start_bench(BenchConfig.from_node_config(node))
    try:
        assert snap["instruments"]["voa"]["settings"]["attenuation_db"] == 3.0
    finally:
        bench.close()
    # a setting the instrument refuses (this simulated VOA stops at 2 dB) stops the node with
    # one UserError naming the instrument and the instrument's own error
    sim = Path(str(BenchConfig.from_node_config(node).visa_library).removesuffix("@sim"))
    sim.write_text(sim.read_text().replace(
        'q: ":INP1:ATT {}DB"\n        specs:\n          type: float\n          min: 0\n          max: 45',
        'q: ":INP1:ATT {}DB"\n        specs:\n          type: float\n          min: 0\n          max: 2'))
    node2 = tmp_path / "node2.toml"
    node2.write_text(node.read_text().replace(str(sim), str(tmp_path / "sim2.yaml")))
    shutil.copy(sim, tmp_path / "sim2.yaml")
    with pytest.raises(UserError, match=r"bench start failed: bench\.voa .*-222 Data out of range"):
        start_bench(BenchConfig.from_node_config(node2))


def test_physics_cli_follows_the_bench_file(tmp_path: Path, capsys) -> None:
    from hwctl.physics.bench import link_physics

    def p_photon(att: str) -> float:
        node = tmp_path / f"n{att}.toml"
        node.write_text(EXAMPLE.read_text().replace("attenuation_db = 3.0", f"attenuation_db = {att}"))
        assert main(["instruments", "physics", "--config", str(node), "--fidelity", "0.8"]) == 0
        line = capsys.readouterr().out.splitlines()[-1]
        return float(line.split("p_photon = ")[1].split(",")[0])

    for att in ("0.0", "3.0", "10.0"):
        expect = link_physics(0.8, (float(att), 0.0), 9.0).p_photon
        assert p_photon(att) == pytest.approx(expect, rel=1e-3)
    assert main(["instruments", "physics", "--config", str(EXAMPLE), "--fidelity", "1.5"]) == 2


def test_demo_bench_covers_every_simulated_node_and_refuses_beyond() -> None:
    """The default demo bench has one simulated bench per node up to hwctl.demo.SIM_BENCHES (a 3x3
    demo failed on node 8 when the simulation had 8 benches); beyond that, one clear line."""
    import argparse

    from hwctl.demo import SIM_BENCHES, demo_benches

    last = BenchConfig.load(DEMO_BENCH, index=SIM_BENCHES - 1)
    with Bench(last) as bench:
        snap = bench.start()
    assert all(i["identity"]["serial"] for i in snap["instruments"].values())
    args = argparse.Namespace(bench=None)
    with pytest.raises(UserError, match="--bench none"):
        demo_benches(args, [f"N{i}" for i in range(SIM_BENCHES + 1)])


def test_check_cli_one_status_line_per_instrument(tmp_path: Path, capsys, monkeypatch) -> None:
    """What was tried, what failed and the hint, on the instrument's one line; no traceback."""
    node = _fresh_example(tmp_path)
    node.write_text(node.read_text().replace("GPIB0::24::INSTR", "GPIB5::9::INSTR"))
    from hwctl.instruments.thorlabs import PM100USB

    def broken(self):  # a driver's own fault (not a VISA error)
        raise RuntimeError("sensor head\nunplugged")

    monkeypatch.setattr(PM100USB, "readings", broken)
    assert main(["instruments", "check", "--config", str(node)]) == 1
    cap = capsys.readouterr()
    assert cap.err == "" and "Traceback" not in cap.out
    lines = {ln.split()[1]: ln for ln in cap.out.splitlines() if ln.startswith("FAIL")}
    assert set(lines) == {"snspd_bias", "monitor"}
    assert "*IDN? at GPIB5::9::INSTR: nothing answers" in lines["snspd_bias"]
    assert "; hint: check the resource string" in lines["snspd_bias"]
    assert "readings at USB0::0x1313" in lines["monitor"]
    assert "RuntimeError: sensor head unplugged" in lines["monitor"]
    assert main(["instruments", "check", "--config", str(node), "--json"]) == 1
    rep = {i["name"]: i for i in json.loads(capsys.readouterr().out)["instruments"]}
    assert rep["snspd_bias"]["step"] == "*IDN?" and rep["snspd_bias"]["hint"]


def test_check_cli_no_visa_library_is_said_once(tmp_path: Path, capsys) -> None:
    node = tmp_path / "node.toml"
    node.write_text(EXAMPLE.read_text().replace('visa_library = "@sim"',
                                                'visa_library = "@nosuchlib"'))
    assert main(["instruments", "check", "--config", str(node), "--apply"]) == 1
    cap = capsys.readouterr()
    out = cap.out.splitlines()
    assert cap.err == "" and "Traceback" not in cap.out
    assert out[0].startswith("FAIL bench: VISA library '@nosuchlib': ")
    assert "hint: install pyvisa-py" in out[0] and '"@sim"' in out[0]
    assert sum(ln.startswith("skip ") for ln in out) == 7
    assert sum("no VISA library" in ln for ln in out) == 7 and cap.out.count("hint:") == 1
    assert out[-1].startswith("0/7 instruments healthy")
