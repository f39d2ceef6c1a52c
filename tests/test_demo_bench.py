"""`hwctl demo` on simulated benches: every node opens its bench, applies it and stores the
snapshot in the run's metadata; the stations take their physics from the benches, so the VOA
setting in the bench file changes the measured heralding rate as the loss budget says."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hwctl import schema
from hwctl.cli import main
from hwctl.errors import UserError
from hwctl.instruments import DEMO_BENCH
from hwctl.node import NodeConfig
from hwctl.physics.bench import link_physics


def run_demo(tmp_path: Path, att_db: float) -> dict:
    bench = tmp_path / f"bench{att_db}.toml"
    bench.write_text(DEMO_BENCH.read_text().replace("attenuation_db = 0.0",
                                                    f"attenuation_db = {att_db}"))
    out = tmp_path / f"demo{att_db}"
    assert main(["demo", "--duration", "3", "--topology", "K2", "--transport", "inproc",
                 "--fidelity", "0.5",
                 "--header-rate", "0", "--no-plot", "--bench", str(bench), "--out", str(out)]) == 0
    return schema.read_metadata(out / "requests.parquet")


def test_demo_heralding_rate_follows_the_bench_voa(tmp_path: Path, capsys) -> None:
    """Both nodes' VOAs at 0 dB, then at 10 dB (F = 0.5, SNSPD at its nominal 9 uA; 3 s of real
    time each). The station's herald probability per common window (CNT_HERALD over the windows
    both ends fired, (CNT_MARKS - CNT_ONE_END) / 2) must match hwctl.physics.bench within 4 sigma,
    sigma = expected / sqrt(heralds) (Poisson; on a loaded 2-vCPU VM about 100 heralds at 0 dB,
    10 %, and 60 at 10 dB, 13 %; at least 15 are required for the comparison to mean something)."""
    rates = {}
    for att in (0.0, 10.0):
        meta = run_demo(tmp_path, att)
        b = meta["bench"]
        # the snapshot each node took at start: identity, settings read back, readings
        for i, n in enumerate("AB"):
            snap = meta["instruments"][n]["instruments"]
            assert set(snap) == {"trigger", "laser", "voa", "switch", "monitor", "snspd_bias",
                                 "counter"}
            assert snap["voa"]["settings"]["attenuation_db"] == att
            assert snap["voa"]["resource"] == f"TCPIP0::n7764a-{i}.bench::inst0::INSTR"
            assert snap["snspd_bias"]["identity"]["model"] == "MODEL 2400"
            assert snap["snspd_bias"]["settings"]["bias_current_ua"] == 9.0
        lp = link_physics(0.5, (att, att), 9.0)
        assert b["physics"]["A-B"]["p_photon"] == pytest.approx(lp.p_photon)
        assert meta["lab"]["stations"]["A-B"]["p_photon"] == pytest.approx(lp.p_photon)
        st = meta["lab"]["station_counters"]["A-B"]
        windows = (st["CNT_MARKS"] - st["CNT_ONE_END"]) / 2
        heralds = st["CNT_HERALD"]
        assert heralds >= 15, st
        rate = heralds / windows
        z = (rate - lp.herald_probability) / (lp.herald_probability / math.sqrt(heralds))
        assert abs(z) < 4, (att, rate, lp.herald_probability, z)
        rates[att] = rate
    # 10 dB on both arms: the rate falls to the loss budget's ~0.1 (plus the dark heralds)
    expect = link_physics(0.5, (10, 10), 9.0).herald_probability / \
        link_physics(0.5, (0, 0), 9.0).herald_probability
    assert rates[10.0] / rates[0.0] == pytest.approx(expect, rel=0.4)
    assert "requests" in capsys.readouterr().out


def test_node_config_bench_mistakes_are_one_line(tmp_path: Path) -> None:
    base = {"name": "A", "listen": "tcp://127.0.0.1:1", "backend": "twin://",
            "peers": {"B": {"endpoint": "tcp://127.0.0.1:2"}}}
    cfg = NodeConfig.from_dict(base | {"bench": str(DEMO_BENCH), "bench_index": 1}, "node.toml")
    assert cfg.bench is not None and cfg.bench.instrument("voa").resource.startswith(
        "TCPIP0::n7764a-1.bench")
    with pytest.raises(UserError, match="bench_index must be an integer >= 0"):
        NodeConfig.from_dict(base | {"bench": str(DEMO_BENCH), "bench_index": -1}, "node.toml")
    with pytest.raises(UserError, match=r"bench\.voa\.resource: .*template"):
        NodeConfig.from_dict(base | {"bench": str(DEMO_BENCH)}, "node.toml")
    with pytest.raises(UserError, match=r"node\.toml: bench\.x\.driver: unknown driver"):
        NodeConfig.from_dict(base | {"bench": {"x": {"driver": "y", "resource": "GPIB0::1::INSTR"}}},
                             "node.toml")
    assert NodeConfig.from_dict(base, "node.toml").bench is None


def _node_toml(tmp_path: Path, bench: str, extra: str = "") -> Path:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = tmp_path / "node.toml"
    p.write_text(f'name = "A"\nlisten = "tcp://127.0.0.1:{port}"\nbackend = "twin://"\n'
                 f'{bench}\n{extra}[peers.B]\nendpoint = "tcp://127.0.0.1:9"\n'
                 '[workload]\nenabled = false\n')
    return p


def test_node_cli_applies_the_bench_and_stores_its_snapshot(tmp_path: Path, capsys) -> None:
    node = _node_toml(tmp_path, f'bench = "{DEMO_BENCH}"\nbench_index = 5')
    out = tmp_path / "out"
    assert main(["node", "--config", str(node), "--duration", "0.3", "--out", str(out)]) == 0
    meta = schema.read_metadata(out / "A.parquet")
    snap = meta["instruments"]["instruments"]
    assert snap["voa"]["resource"] == "TCPIP0::n7764a-5.bench::inst0::INSTR"
    assert snap["laser"]["settings"] == {"wavelength_nm": 1550.12, "power_dbm": 3.0,
                                         "diode_on": True, "shutter_open": True}
    assert snap["counter"]["readings"]["count_rate_hz"] > 0
    assert meta["parameters"]["bench"]["instruments"][2]["name"] == "voa"
    capsys.readouterr()
    # an instrument missing at start: the node stops before it runs, one line, exit 2
    bad = tmp_path / "bad.toml"
    bad.write_text(DEMO_BENCH.read_text().replace("GPIB{n}::24::INSTR", "GPIB{n}::29::INSTR"))
    node = _node_toml(tmp_path, f'bench = "{bad}"\nbench_index = 5')
    assert main(["node", "--config", str(node), "--duration", "0.3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bench.snspd_bias at GPIB5::29::INSTR: nothing answers *IDN?" in err[0]
