"""`hwctl demo` end to end on a short run: twins on ptys / ZeroMQ, node services, result files."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from hwctl.cli import main


@pytest.mark.parametrize("transport", ["pty", "zmq", "inproc"])
def test_demo_short_run_writes_results(tmp_path, capsys, transport: str) -> None:
    out = tmp_path / "demo"
    rc = main(["demo", "--duration", "2", "--topology", "K2", "--transport", transport,
               "--fidelity", "0.5", "--out", str(out)])
    assert rc == 0
    t = pq.read_table(out / "requests.parquet").to_pylist()
    done = [r for r in t if r["latency"] is not None]
    assert done, "no request completed in 2 s"
    for r in done:
        assert len(r["herald_ts"]) == r["pairs"] and r["latency"] > 0
    meta = json.loads((out / "requests.meta.json").read_text())
    assert meta["topology"] == [["A", "B"]] and meta["version"]
    assert set(meta["twins"]) == {"A", "B"} and meta["twins"]["A"]["p_photon"] > 0
    for node in meta["nodes"].values():
        assert node["link"]["rx_frame_errors"] == 0 and node["link"]["events_lost"] == 0
    assert (out / "demo.png").stat().st_size > 1000
    text = capsys.readouterr().out
    assert "requests" in text and "latency L" in text


def test_demo_bad_topology_is_one_line(capsys) -> None:
    assert main(["demo", "--topology", "Q7", "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown topology" in err[0]
