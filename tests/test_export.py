"""``hwctl export RUN.parquet --hdf5``: columns, metadata and the instrument snapshot in HDF5."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hwctl.cli import main
from hwctl.instruments import SIM_FILE
from hwctl.instruments.bench import Bench, BenchConfig

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "node-bench.toml"


def test_node_style_run_with_bench_snapshot(tmp_path: Path, capsys) -> None:
    """A run as the node service stores it (Parquet + <stem>.meta.json + pairs) whose metadata
    holds the bench snapshot taken at start; the HDF5 file gives all of it back."""
    sim = tmp_path / "sim.yaml"
    shutil.copy(SIM_FILE, sim)
    node = tmp_path / "node.toml"
    node.write_text(EXAMPLE.read_text().replace('"@sim"', f'"{sim}@sim"'))
    with Bench(BenchConfig.from_node_config(node)) as bench:
        snapshot = bench.start()
    run = tmp_path / "requests.parquet"
    herald_ts = [[10, 2**63 + 5], [], [7]]
    pq.write_table(pa.table({
        "rid": pa.array([1, 2, 3], pa.int64()),
        "initiator": ["A", "A", "B"],
        "latency": pa.array([0.01, None, 0.03], pa.float64()),
        "attempts": pa.array([5, 6, None], pa.int64()),
        "herald_ts": pa.array(herald_ts, pa.list_(pa.uint64())),
    }), run)
    pq.write_table(pa.table({"seq": pa.array([4, 9], pa.uint32()),
                             "fidelity": [0.9, 0.8]}), tmp_path / "requests.pairs.parquet")
    meta = {"seed": 3, "nodes": {"A": {"counters": {"heralds": 2}}}, "instruments": snapshot,
            "names": ["A", "B"], "mixed": [1, "x"]}
    (tmp_path / "requests.meta.json").write_text(json.dumps(meta))

    assert main(["export", str(run), "--hdf5"]) == 0
    out = tmp_path / "requests.h5"
    assert f"wrote {out}" in capsys.readouterr().out
    with h5py.File(out) as f:
        r = f["requests"]
        assert r["rid"].dtype == np.int64 and list(r["rid"][:]) == [1, 2, 3]
        assert [s.decode() for s in r["initiator"][:]] == ["A", "A", "B"]
        lat = r["latency"][:]
        assert lat[0] == 0.01 and math.isnan(lat[1])
        assert math.isnan(r["attempts"][2])
        assert r["herald_ts"][0].dtype == np.uint64  # cycle stamps stay integers
        assert [list(map(int, x)) for x in r["herald_ts"][:]] == herald_ts
        assert list(f["pairs/seq"][:]) == [4, 9]
        assert json.loads(f.attrs["meta_json"]) == meta
        voa = f["meta/instruments/instruments/voa"]
        assert voa["settings"].attrs["attenuation_db"] == 3.0
        assert voa["identity"].attrs["model"] == "N7764A"
        assert f["meta/instruments/instruments/snspd_bias/settings"].attrs["bias_current_ua"] == 9.0
        assert f["meta/nodes/A/counters"].attrs["heralds"] == 2
        assert list(f["meta"].attrs["names"]) == ["A", "B"]
        assert json.loads(f["meta"].attrs["mixed"]) == [1, "x"]


def test_simulator_run_metadata_from_parquet_schema(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run.parquet"
    assert main(["sim", "--topology", "K2", "--duration", "0.5", "--seed", "1",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "x.h5"
    assert main(["export", str(run), "--hdf5", str(out)]) == 0
    rows = pq.read_table(run).num_rows
    with h5py.File(out) as f:
        assert f["requests"].attrs["rows"] == rows > 0
        assert f["meta"].attrs["topology"] == "K2"
        assert "protocol" in json.loads(f.attrs["meta_json"])["parameters"]


def test_export_mistakes_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path / "none.parquet"), "--hdf5"]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    assert main(["export", str(bad), "--hdf5"]) == 2
    assert "not a Parquet file" in capsys.readouterr().err
    assert main(["export", str(bad)]) == 2
    assert "--hdf5" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.h5*"))


def test_export_of_an_output_directory_names_its_run_files(tmp_path: Path, capsys) -> None:
    """`hwctl export hwctl-demo --hdf5`: the demo's output directory, not a run file. It said
    "run file 'hwctl-demo' not found" (it is there); it now says it is a directory and names the
    run files in it."""
    d = tmp_path / "hwctl-demo"
    d.mkdir()
    (d / "requests.parquet").write_bytes(b"x")
    (d / "requests.pairs.parquet").write_bytes(b"x")
    assert main(["export", str(d), "--hdf5"]) == 2
    err = capsys.readouterr().err
    assert "not found" not in err and "is a directory" in err, err
    assert "requests.parquet" in err and "requests.pairs.parquet" in err, err
    assert not list(tmp_path.glob("*.h5"))
