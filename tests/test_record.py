"""Record and replay (hwctl.record): a short twin run of two nodes is recorded (``hwctl demo
--record``) and each node's recording is replayed offline (``hwctl replay``); the replay must give
exactly the recorded results: every request row, every verified pair, every counter."""

from __future__ import annotations

import asyncio
import json
import math

import pyarrow.parquet as pq
import pytest

from hwctl import record, schema
from hwctl.cli import main


def _rows(path, **match) -> list[dict]:
    rows = pq.read_table(path).to_pylist()
    out = []
    for r in rows:
        if all(r[k] == v for k, v in match.items()):
            out.append({k: (None if isinstance(v, float) and math.isnan(v) else v)
                        for k, v in r.items()})
    return out


def _without_silent(d: dict) -> dict:
    for p in d.get("peers", {}).values():
        p.pop("silent_s", None)
    return d


@pytest.fixture(scope="module", params=["inproc", "pty"])
def recorded(request, tmp_path_factory):
    """A 2 s K2 demo with pair verification, both nodes recorded."""
    d = tmp_path_factory.mktemp(f"rec-{request.param}")
    rc = main(["demo", "--duration", "2", "--topology", "K2", "--transport", request.param,
               "--fidelity", "0.5", "--header-rate", "1000", "--out", str(d / "demo"),
               "--no-web", "--no-plot", "--json", "--record", str(d / "rec")])
    assert rc == 0
    return d


def test_replay_reproduces_the_recorded_results_exactly(recorded, capsys) -> None:
    capsys.readouterr()
    demo = recorded / "demo"
    meta = schema.read_metadata(demo / "requests.parquet")
    for n in ("A", "B"):
        out = recorded / f"replay-{n}"
        rc = main(["replay", str(recorded / "rec" / f"{n}.rec"), "--out", str(out), "--json"])
        assert rc == 0, capsys.readouterr().err
        d = json.loads(capsys.readouterr().out)
        assert d["diverged"] is None and d["complete"] and d["consumed"] == d["entries"], \
            {k: d[k] for k in ("diverged", "truncated", "consumed", "entries")}
        assert d["sends_checked"] > 0 and d["commands_checked"] > 0
        # the same requests (every column: times, attempts, heralds) and verified pairs as the run
        want = _rows(demo / "requests.parquet", initiator=n)
        got = _rows(out / f"{n}.parquet")
        assert want and got == want
        want_pairs = _rows(demo / "requests.pairs.parquet", node=n)
        assert want_pairs and _rows(out / f"{n}.pairs.parquet") == want_pairs
        # and the same counters as the node reported at the end of the run
        # (but "silent_s": seconds since a peer was heard, read when the snapshot was taken)
        recorded_counters = _without_silent({k: v for k, v in meta["nodes"][n].items()
                                             if k != "link"})
        assert _without_silent(json.loads(json.dumps(d["counters"]))) == recorded_counters
        assert d["same_counters_as_recorded"] is True
        assert d["completed"] == meta["nodes"][n]["completed"] > 0


def test_truncated_recording_replays_up_to_where_it_ends(recorded, tmp_path, capsys) -> None:
    whole = asyncio.run(record.replay(recorded / "rec" / "A.rec"))
    full_rows = {r["rid"]: r for r in whole.node.result_rows()}
    first = min(r["t_finish"] for r in full_rows.values() if r["t_finish"] is not None)
    lines = (recorded / "rec" / "A.rec").read_bytes().split(b"\n")
    # cut in the middle of a line (a crash) some entries after the first request completed
    k = next(i for i, ln in enumerate(lines)
             if ln.startswith(b'{"n":') and json.loads(ln)["t"] > first) + 20
    assert k < len(lines) - 2, "the run ended right after its first completion"
    cut = tmp_path / "cut.rec"
    cut.write_bytes(b"\n".join(lines[:k]) + b"\n" + lines[k][: len(lines[k]) // 2])
    capsys.readouterr()
    rc = main(["replay", str(cut), "--json"])
    captured = capsys.readouterr()
    assert rc == 0
    d = json.loads(captured.out)
    assert not d["complete"] and d["diverged"] is None
    assert "ends at line" in captured.err and "replayed up to there" in captured.err
    assert 0 < d["consumed"] <= d["entries"] < len(lines)
    # what the cut recording gives is what the full run had at that point: every request it
    # completed has the full run's ESP times (a row is final only later, when the other end's
    # pair list has been compared: disagree and the generation's counts may still change, and
    # t_pl_start, the later of the two ends' grid joins, once the other end's join has arrived)
    res = asyncio.run(record.replay(cut))
    done = {r["rid"]: r for r in res.node.result_rows() if r["t_finish"] is not None}
    fixed = ("rid", "initiator", "remote", "pairs", "fidelity", "t_submit", "t_syn", "t_ack",
             "t_min", "t_finish")
    assert done and all({k: full_rows[rid][k] for k in fixed} == {k: r[k] for k in fixed}
                        for rid, r in done.items())


def test_replay_reports_a_recording_the_node_does_not_follow(recorded, tmp_path, capsys) -> None:
    lines = (recorded / "rec" / "B.rec").read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith('{"o":'))
    e = json.loads(lines[i])
    e["p"][-1] = "AAAA"  # the node sent something else than this
    lines[i] = json.dumps(e)
    bad = tmp_path / "bad.rec"
    bad.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["replay", str(bad)]) == 1
    assert f"diverged at line {i + 1}:" in capsys.readouterr().err


def test_not_a_recording_is_one_line(tmp_path, capsys) -> None:
    p = tmp_path / "x.rec"
    p.write_text("hello\n")
    assert main(["replay", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an hwctl recording" in err
    assert main(["replay", str(tmp_path / "missing.rec")]) == 2
