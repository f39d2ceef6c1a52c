"""``hwctl sweep``: a tiny grid end to end, resumption, the dataset's columns, and byte-identical
results from the local process pool and a Dask LocalCluster."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from hwctl import sweep as sweep_mod
from hwctl.cli import main as cli_main
from hwctl.sweep import execute, plan

TINY = dict(topologies=["K2", "2x2", "K1,3"], fidelities=[0.6, 0.8],
            protocols=["dqp", "esp", "greedy"], replicates=2, base_seed=5, duration=2.0,
            version="test")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for sub in ("runs", "requests") for p in sorted((root / sub).glob("*.parquet"))}


def test_tiny_grid_rows_and_resume(tmp_path) -> None:
    specs = plan(**TINY)
    assert len(specs) == 3 * 2 * 3 * 2
    stats = execute(specs, tmp_path)
    assert (stats.ran, stats.skipped) == (len(specs), 0)
    runs = ds.dataset(tmp_path / "runs").to_table().to_pylist()
    assert len(runs) == len(specs)
    keys = {(r["topology"], r["protocol"], r["fidelity"], r["replicate"]) for r in runs}
    assert keys == {(s.topology, s.protocol, s.fidelity, s.replicate) for s in specs}
    for r in runs:
        assert r["seed"] == 5 + r["replicate"] and r["code_version"] == "test"
        assert r["duration_s"] == 2.0 and r["requests"] > 0 and r["mean_latency_ms"] > 0
        assert r["edges"] == {"K2": 1, "2x2": 4, "K1,3": 3}[r["topology"]]
        assert r["matching_number"] == {"K2": 1, "2x2": 2, "K1,3": 1}[r["topology"]]
    reqs = ds.dataset(tmp_path / "requests").to_table()
    assert reqs.num_rows == sum(r["requests"] + r["open_requests"] for r in runs)
    assert {"seed", "code_version", "protocol", "t_finish_s", "t_request_s"} <= set(
        reqs.column_names)
    first = execute(specs, tmp_path)
    assert (first.ran, first.skipped) == (0, len(specs))
    before = _files(tmp_path)
    victim = tmp_path / "runs" / f"{specs[7].key}.parquet"
    victim.unlink()
    again = execute(specs, tmp_path)
    assert (again.ran, again.skipped) == (1, len(specs) - 1)
    assert _files(tmp_path) == before
    timings = [json.loads(line) for line in (tmp_path / "timings.jsonl").read_text().splitlines()]
    assert len(timings) == len(specs) + 1 and all(t["events"] > 0 for t in timings)


def test_more_replicates_run_only_the_new_ones(tmp_path) -> None:
    small = {**TINY, "topologies": ["K2"], "fidelities": [0.7], "protocols": ["esp"]}
    execute(plan(**{**small, "replicates": 1}), tmp_path)
    stats = execute(plan(**{**small, "replicates": 3}), tmp_path)
    assert (stats.ran, stats.skipped) == (2, 1)


def test_local_pool_and_dask_localcluster_give_byte_identical_results(tmp_path) -> None:
    distributed = pytest.importorskip("distributed")
    specs = plan(**{**TINY, "replicates": 1})
    execute(specs, tmp_path / "pool", jobs=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        stats = execute(specs, tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert stats.ran == len(specs) and stats.executor.startswith("dask")
    pool, dask = _files(tmp_path / "pool"), _files(tmp_path / "dask")
    assert len(pool) == 2 * len(specs)
    assert pool == dask


def test_cli_sweep_tiny(tmp_path, capsys) -> None:
    out = tmp_path / "sw"
    argv = ["sweep", "--out", str(out), "--topologies", "K2", "C5", "--fidelities", "0.75",
            "--protocols", "esp", "oracle", "--duration", "1", "--jobs", "1", "--quiet"]
    assert cli_main(argv) == 0
    cap = capsys.readouterr()
    assert "4 runs done" in cap.out and "deprecated" in cap.err
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["protocols"] == ["esp", "greedy"]
    assert cli_main(argv) == 0
    assert "0 runs done, 4 already there" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["sweep", "--topologies", "Q7"], "unknown topology"),
    (["sweep", "--fidelities", "0.2"], "fidelity must be in"),
    (["sweep", "--protocols", "tdma"], "unknown protocol"),
    (["sweep", "--replicates", "0"], "--replicates"),
    (["sweep", "--scheduler", "localhost"], "expected tcp://host:port"),
    (["sweep", "--topologies", "ER:10:20"], "mean degree"),
])
def test_cli_sweep_user_errors_are_one_line(tmp_path, capsys, argv, needle) -> None:
    try:
        code = cli_main(argv + ["--out", str(tmp_path / "x"), "--quiet"])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.slow
def test_whole_grid_one_replicate_reproduces_the_papers_claims(tmp_path) -> None:
    """The full grid (14 x 9 x 3 runs of 120 s): report written; on every paper topology and F,
    ESP's mean latency is within 8 % of the zero-delay greedy scheduler's; ESP gains nothing
    over DQP when nu = 1 and at least 25 % when nu > 1 (F = 0.75); and no cell is below the
    lower bound by more than 8 % (one replicate: sampling noise where the bound is tight)."""
    from hwctl.report import make_report
    from hwctl.sim.topologies import PAPER_TOPOLOGIES
    from hwctl.sweep import FIDELITIES

    specs = plan(PAPER_TOPOLOGIES, FIDELITIES, ["dqp", "esp", "greedy"], 1, 1, 120.0,
                 requests=False, version="test")
    execute(specs, tmp_path, jobs=2)
    make_report(tmp_path, tmp_path / "report")
    rows = ds.dataset(tmp_path / "runs").to_table().to_pylist()
    by = {(r["topology"], r["fidelity"], r["protocol"]): r for r in rows}
    for t in PAPER_TOPOLOGIES:
        for f in FIDELITIES:
            esp, greedy = by[t, f, "esp"], by[t, f, "greedy"]
            assert abs(esp["mean_latency_ms"] / greedy["mean_latency_ms"] - 1) < 0.08, (t, f)
        esp, dqp = by[t, 0.75, "esp"], by[t, 0.75, "dqp"]
        gain = dqp["mean_latency_ms"] / esp["mean_latency_ms"]
        assert (0.9 < gain < 1.1) if esp["matching_number"] == 1 else gain > 1.25, (t, gain)
    import csv

    for c in csv.DictReader((tmp_path / "report" / "bound.csv").open()):
        assert float(c["ratio_to_bound"]) > 0.92, c


def test_sweep_rows_follow_the_shared_schema(tmp_path, capsys) -> None:
    """Runs and requests of a sweep are in hwctl.schema (source "sweep"): the declared columns in
    order and type, the run metadata inside, the simulator's names and types for every shared
    request column; `hwctl report` reads the dataset."""
    import math

    import pyarrow.parquet as pq

    from hwctl import schema

    specs = plan(["K2", "2x2"], [0.7], ["esp", "greedy"], 1, 3, 2.0, version="0.1.0+abc")
    execute(specs, tmp_path)
    for kind, sub in (("runs", "runs"), ("requests", "requests")):
        for spec in specs:
            path = tmp_path / sub / f"{spec.key}.parquet"
            t = pq.read_table(path)
            want = schema.table(kind, "sweep", {}).schema.remove_metadata()
            assert t.schema.remove_metadata() == want, (kind, t.schema)
            meta = schema.read_metadata(path)
            assert meta["schema"] == f"hwctl.{kind}" and meta["source"] == "sweep"
            assert meta["schema_version"] == schema.SCHEMA_VERSION
            assert meta["seed"] == spec.seed and meta["topology"] == spec.topology
            assert meta["git_rev"] == "abc" and meta["parameters"]["protocol"] == spec.protocol
            rows = t.to_pylist()
            assert rows and all(r["seed"] == spec.seed and r["code_version"] == "0.1.0+abc"
                                for r in rows)
            if kind == "runs":
                (row,) = rows
                assert type(row["requests"]) is int and type(row["pairs"]) is int
                assert meta["summary"]["requests"] == row["requests"]
            else:
                done = [r for r in rows if not math.isnan(r["t_finish_s"])]
                assert done and all(r["latency_s"] == r["t_finish_s"] - r["t_request_s"]
                                    for r in done)
    # the same quantity, the same name and type as a `hwctl sim` file
    sim = tmp_path / "sim.parquet"
    assert cli_main(["sim", "--topology", "K2", "--duration", "1", "--out", str(sim)]) == 0
    sim_types = {f.name: f.type for f in pq.read_schema(sim)}
    sweep_types = {f.name: f.type for f in pq.read_schema(
        tmp_path / "requests" / f"{specs[0].key}.parquet")}
    shared = set(sim_types) & set(sweep_types)
    assert {c.name for c in schema.REQUESTS_COMMON} | {"pl_finish_s"} <= shared
    assert all(sim_types[n] == sweep_types[n] for n in shared)
    capsys.readouterr()
    assert cli_main(["report", str(tmp_path), "--out", str(tmp_path / "report")]) == 0


def test_resuming_an_old_format_dataset_is_one_line(tmp_path, capsys) -> None:
    """A dataset written before the shared schema (plain Arrow tables, no run metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "runs").mkdir()
    pq.write_table(pa.table({"topology": ["K2"], "nodes": pa.array([2], pa.int32())}),
                   tmp_path / "runs" / "K2__esp__F0.7__t2__s1.parquet")
    code = cli_main(["sweep", "--out", str(tmp_path), "--topologies", "K2", "--fidelities",
                     "0.7", "--protocols", "esp", "--duration", "1", "--jobs", "1", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "format before the shared schema" in err
    assert "new --out directory" in err


# ------------------------------------------------------------------------------------------------
# Ctrl-C: the pool stops at once, the finished runs are kept, the user is told how to resume

_REAL_RUN_ONE = sweep_mod.run_one


def _first_runs_others_hang(spec):
    """Replicate 0 is a real (tiny) run; every other run never ends by itself: the driver's
    Ctrl-C must not wait for it (it used to wait for every run in progress or queued)."""
    import signal
    import threading

    if spec.replicate == 0:
        return _REAL_RUN_ONE(spec)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # Ctrl-C is the driver's
    threading.Event().wait()  # (killed by the driver)
    raise AssertionError("unreachable")


class _CtrlCAfterFirst:
    """A progress bar whose first advance (the first run's files written) is where Ctrl-C
    lands in the driver."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, *a, **k) -> int:
        return 0

    def advance(self, task: int) -> None:
        raise KeyboardInterrupt


def test_ctrl_c_stops_the_pool_at_once_and_keeps_finished_runs(tmp_path, monkeypatch,
                                                                capsys) -> None:
    import multiprocessing

    monkeypatch.setattr(sweep_mod, "run_one", _first_runs_others_hang)
    monkeypatch.setattr(sweep_mod, "progress_bar", lambda *a, **k: _CtrlCAfterFirst())
    specs = plan(**{**TINY, "topologies": ["K2"], "fidelities": [0.7], "protocols": ["esp"],
                    "replicates": 4})
    before = set(multiprocessing.active_children())
    with pytest.raises(KeyboardInterrupt):  # returns although three runs never end
        execute(specs, tmp_path, jobs=2)
    assert set(multiprocessing.active_children()) <= before  # the workers were stopped
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [f"{specs[0].key}.parquet"]
    assert not [p for p in (tmp_path / "requests").iterdir() if p.name.startswith(".")]
    err = capsys.readouterr().err
    assert "hwctl sweep: interrupted: stopping 2 worker(s)" in err and "finished runs are kept" in err


def _k2_sweep(out, *, jobs: int) -> list[str]:
    """``hwctl sweep`` of three 1 s ESP runs on K2 at F = 0.7 into ``out``."""
    return ["sweep", "--out", str(out), "--topologies", "K2", "--fidelities", "0.7",
            "--protocols", "esp", "--duration", "1", "--replicates", "3", "--jobs", str(jobs),
            "--quiet"]


def test_cli_ctrl_c_says_what_it_kept_and_how_to_resume(tmp_path, monkeypatch, capsys) -> None:
    def run(spec):
        if spec.replicate == 1:
            raise KeyboardInterrupt  # (serial: Ctrl-C lands in the run)
        return _REAL_RUN_ONE(spec)

    monkeypatch.setattr(sweep_mod, "run_one", run)
    out = tmp_path / "my sweep"
    argv = _k2_sweep(out, jobs=1)
    assert cli_main(argv) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert f"stopped; 1 of 3 runs are in {out} (1 new" in err
    assert err.strip().endswith(f"Resume with: hwctl sweep --out '{out}' " + " ".join(argv[3:]))
    monkeypatch.setattr(sweep_mod, "run_one", _REAL_RUN_ONE)
    assert cli_main(argv) == 0
    assert "2 runs done, 1 already there, of 3" in capsys.readouterr().out


def _table5_first_then_hang(job):
    """``hwctl sim --table5``'s job: the first returns at once, the others never end."""
    import signal
    import threading

    if job[0] == "K2" and job[1] == "dqp":
        return {}
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    threading.Event().wait()
    raise AssertionError("unreachable")


def test_table5_ctrl_c_stops_the_pool_at_once(monkeypatch, capsys) -> None:
    """``hwctl sim --table5 --jobs 2`` used concurrent.futures' pool too: 13 s to stop at
    load 9 (the queued runs ran first)."""
    import multiprocessing

    from hwctl import simcli

    monkeypatch.setattr(simcli, "_one", _table5_first_then_hang)
    monkeypatch.setattr(simcli, "progress_bar", lambda *a, **k: _CtrlCAfterFirst())
    monkeypatch.setattr(simcli, "_cost", lambda job: 1.0 if job[:2] == ("K2", "dqp") else 0.0)
    before = set(multiprocessing.active_children())
    with pytest.raises(KeyboardInterrupt):
        simcli.table5_rows(duration=1.0, jobs=2)
    assert set(multiprocessing.active_children()) <= before
    assert "hwctl sim: interrupted: stopping 2 worker(s)" in capsys.readouterr().err


def _first_runs_then_a_worker_dies(spec):
    import os
    import signal

    if spec.replicate == 0:
        return _REAL_RUN_ONE(spec)
    os.kill(os.getpid(), signal.SIGKILL)  # out of memory, or killed


def test_a_worker_that_dies_ends_the_sweep_with_one_line(tmp_path, monkeypatch, capsys) -> None:
    """(a multiprocessing.Pool would wait for the lost run for ever)"""
    monkeypatch.setattr(sweep_mod, "run_one", _first_runs_then_a_worker_dies)
    out = tmp_path / "sw"
    argv = _k2_sweep(out, jobs=2)
    assert cli_main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "a worker process died" in err and "Resume with: hwctl sweep" in err


def test_report_of_an_interrupted_sweep_says_it_is_incomplete(tmp_path, monkeypatch,
                                                               capsys) -> None:
    """A sweep stopped by Ctrl-C leaves whole runs, and `hwctl report` draws from them: the report
    says (stderr and index page) that the sweep did not finish, with how many of its runs are
    there, instead of a Table V that looks whole. After the resume it says nothing."""
    def run(spec):
        if spec.replicate == 1:
            raise KeyboardInterrupt
        return _REAL_RUN_ONE(spec)

    monkeypatch.setattr(sweep_mod, "run_one", run)
    out = tmp_path / "sw"
    argv = _k2_sweep(out, jobs=1)
    assert cli_main(argv) == 130
    capsys.readouterr()
    assert cli_main(["report", str(out)]) == 0
    err = capsys.readouterr().err
    assert "incomplete" in err and "1 of its 3 runs" in err and "hwctl sweep --out" in err, err
    index = (out / "report" / "index.md").read_text()
    assert "incomplete" in index and "1 of its 3 runs" in index
    monkeypatch.setattr(sweep_mod, "run_one", _REAL_RUN_ONE)
    assert cli_main(argv) == 0
    capsys.readouterr()
    assert cli_main(["report", str(out)]) == 0
    assert "incomplete" not in capsys.readouterr().err
    assert "incomplete" not in (out / "report" / "index.md").read_text()


def test_table5_ctrl_c_says_what_it_left_in_out_dir(tmp_path, monkeypatch, capsys) -> None:
    """`hwctl sim --table5 --out-dir D` stopped by Ctrl-C (one process): it said only
    "interrupted", leaving D with some runs' Parquet files, no table5.json, and a re-run that
    refuses those files. It now says how many runs are there, that the table is missing and that
    --force runs it again."""
    from hwctl import simcli

    real = simcli._one
    calls: list[int] = []

    def one(job):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(simcli, "_one", one)
    out = tmp_path / "t5"
    assert cli_main(["sim", "--table5", "--jobs", "1", "--duration", "0.5", "--no-greedy",
                     "--out-dir", str(out)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "2 of 28 runs" in err and str(out) in err and "no table5.json" in err, err
    assert "--force" in err, err
    assert len(list(out.glob("*.parquet"))) == 2 and not (out / "table5.json").exists()


def test_executor_named_is_the_one_that_ran(tmp_path) -> None:
    """One run with --jobs 2 runs in this process (no pool for one run): the summary and
    timings.jsonl said 'pool x2'."""
    specs = plan(**{**TINY, "topologies": ["K2"], "fidelities": [0.7], "protocols": ["esp"],
                    "replicates": 1})
    stats = execute(specs, tmp_path, jobs=2)
    assert stats.executor == "serial"
    rec = json.loads((tmp_path / "timings.jsonl").read_text().splitlines()[-1])
    assert rec["executor"] == "serial"


def test_topology_names_are_canonical(capsys) -> None:
    """`--topologies 2X2 k2` ran as '2X2' / 'k2': run keys apart from '2x2' / 'K2' (a later sweep
    with the paper's spelling ran them again) and a report that did not find '2x2' for Fig. 7.
    Names are taken in their canonical spelling."""
    from hwctl.sim.topologies import canonical

    assert [canonical(t) for t in ["2X2", " k2 ", "K2,3", "k1,3", "f2", "w6", "c5", "02x3",
                                   "er:100:4", "Wax:50:3.0:7"]] == \
        ["2x2", "K2", "K2,3", "K1,3", "F2", "W6", "C5", "2x3", "ER:100:4", "WAX:50:3:7"]
    a = plan(["2X2", "k2"], [0.7], ["esp"], version="t")
    b = plan(["2x2", "K2"], [0.7], ["esp"], version="t")
    assert [s.key for s in a] == [s.key for s in b]
    assert cli_main(["sim", "--topology", "2X2", "--duration", "0.5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["topology"] == "2x2"
