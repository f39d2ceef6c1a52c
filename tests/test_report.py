"""``hwctl report`` on a tiny sweep: Table V statistics against a direct computation, every figure
and its data, the index page, and user errors."""

from __future__ import annotations

import csv
import math

import pyarrow.dataset as ds
import pytest
from scipy import stats as sst

from hwctl.cli import main as cli_main
from hwctl.report import linfit, make_report, stat
from hwctl.sweep import execute, plan


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    specs = plan(["K2", "2x2", "K1,3", "C5"], [0.6, 0.75], ["dqp", "esp", "greedy"],
                 replicates=3, base_seed=2, duration=8.0, version="test")
    execute(specs, root)
    return root


def test_stat_is_student_t() -> None:
    s = stat([1.0, 2.0, 3.0])
    assert s.mean == 2.0 and s.n == 3
    assert s.half == pytest.approx(sst.t.ppf(0.975, 2) * 1.0 / math.sqrt(3))
    one = stat([5.0])
    assert one.mean == 5.0 and math.isnan(one.half) and one.fmt() == "5.00"


def test_linfit_recovers_a_line() -> None:
    fit = linfit([1, 2, 3, 4], [3.0, 5.0, 7.0, 9.0])
    assert fit.slope == pytest.approx(2.0) and fit.intercept == pytest.approx(1.0)
    assert fit.r2 == pytest.approx(1.0) and fit.slope_ci95 == pytest.approx(0.0, abs=1e-9)


def test_report_files_and_table_statistics(tiny, tmp_path) -> None:
    out = tmp_path / "rep"
    index = make_report(tiny, out)
    for name in ("table5.md", "table5.csv", "bound.csv", "index.md"):
        assert (out / name).stat().st_size > 0
    for k in (6, 7, 8, 9, 10, 11):
        assert (out / f"fig{k}.png").stat().st_size > 1000
        assert (out / f"fig{k}.csv").stat().st_size > 0
    text = index.read_text()
    assert "Table V (F = 0.75)" in text and "fig11.png" in text and "not drawn" not in text
    runs = ds.dataset(tiny / "runs").to_table().to_pylist()
    rows = list(csv.DictReader((out / "table5.csv").open()))
    assert len(rows) == 4 * 3
    row = next(r for r in rows if r["topology"] == "2x2" and r["protocol"] == "esp")
    lat = [r["mean_latency_ms"] for r in runs if r["topology"] == "2x2"
           and r["protocol"] == "esp" and r["fidelity"] == 0.75]
    assert len(lat) == 3 and int(row["replicates"]) == 3
    assert float(row["mean_latency_ms"]) == pytest.approx(sum(lat) / 3, rel=1e-5)
    sd = math.sqrt(sum((x - sum(lat) / 3) ** 2 for x in lat) / 2)
    assert float(row["mean_latency_ci95"]) == pytest.approx(
        sst.t.ppf(0.975, 2) * sd / math.sqrt(3), rel=1e-4)
    # paired difference to the greedy scheduler, replicate by replicate
    greedy = {r["replicate"]: r["mean_latency_ms"] for r in runs if r["topology"] == "2x2"
              and r["protocol"] == "greedy" and r["fidelity"] == 0.75}
    esp = {r["replicate"]: r["mean_latency_ms"] for r in runs if r["topology"] == "2x2"
           and r["protocol"] == "esp" and r["fidelity"] == 0.75}
    diffs = [(esp[k] / greedy[k] - 1) * 100 for k in esp]
    assert float(row["vs_greedy_pct"]) == pytest.approx(sum(diffs) / 3, rel=1e-4, abs=1e-6)
    # Fig. 11: per-replicate range over F, then the mean
    fig11 = {(r["topology"], r["protocol"]): float(r["range_ms"])
             for r in csv.DictReader((out / "fig11.csv").open())}
    rng = []
    for k in range(3):
        v = [r["mean_latency_ms"] for r in runs if r["topology"] == "C5" and r["protocol"] == "dqp"
             and r["replicate"] == k]
        rng.append(max(v) - min(v))
    assert fig11["C5", "dqp"] == pytest.approx(sum(rng) / 3, rel=1e-4)


def test_report_on_a_partial_grid_says_what_it_cannot_draw(tmp_path) -> None:
    root = tmp_path / "sw"
    execute(plan(["K2", "C5"], [0.75], ["esp"], duration=2.0, version="t", requests=False), root)
    text = make_report(root, root / "report").read_text()
    assert text.count("not drawn") == 3  # Fig. 7 (no requests), Fig. 10 (no DQP), Fig. 11


def test_cli_report(tmp_path, capsys) -> None:
    root = tmp_path / "sw"
    execute(plan(["K2"], [0.75], ["esp"], duration=1.0, version="t", requests=False), root)
    assert cli_main(["report", str(root), "--out", str(tmp_path / "r")]) == 0
    assert "report written" in capsys.readouterr().out
    assert cli_main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "no sweep dataset" in err and err.count("\n") == 1


def test_cli_report_says_when_it_uses_another_fidelity(tmp_path, capsys) -> None:
    """--fidelity 0.75 on a dataset of F = 0.6 only: the report uses 0.6 and says so on stderr
    (not a silent swap); the asked-for F present: nothing said."""
    root = tmp_path / "sw"
    execute(plan(["K2"], [0.6], ["esp"], duration=1.0, version="t", requests=False), root)
    assert cli_main(["report", str(root), "--out", str(tmp_path / "r"), "--fidelity", "0.75"]) == 0
    err = capsys.readouterr().err
    assert "F = 0.75 is not in the dataset" in err and "F = 0.6" in err
    assert cli_main(["report", str(root), "--out", str(tmp_path / "r2"), "--fidelity", "0.6"]) == 0
    assert "not in the dataset" not in capsys.readouterr().err
    # one topology: no growth line to fit, said in words (no 'nan ± nan')
    index = (tmp_path / "r2" / "index.md").read_text()
    assert "nan" not in index and "growth: not fitted" in index


def test_report_on_a_damaged_run_file_is_one_line(tmp_path, capsys) -> None:
    """A run file cut short (a disk that filled, a copy interrupted) was a pyarrow traceback."""
    from hwctl.cli import main
    from hwctl.sweep import execute, plan

    specs = plan(["K2", "2x2"], [0.75], ["esp"], replicates=1, duration=1.0, version="test")
    execute(specs, tmp_path / "sw")
    victim = tmp_path / "sw" / "runs" / f"{specs[1].key}.parquet"
    victim.write_bytes(victim.read_bytes()[:100])
    assert main(["report", str(tmp_path / "sw"), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert victim.name in err and "run the same `hwctl sweep` again" in err
    stats = execute(specs, tmp_path / "sw")  # the damaged run is run again
    assert (stats.ran, stats.skipped) == (1, 1) and "damaged" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "sw"), "--out", str(tmp_path / "rep")]) == 0


def test_report_on_a_run_file_names_the_mistake(tmp_path, capsys) -> None:
    """`hwctl report run.parquet` (a `hwctl sim --out` file, not a sweep directory) said
    "--out 'run.parquet/report' is not writable": the default --out was checked before the
    dataset. The dataset comes first, and its error says what a sweep dataset is."""
    run = tmp_path / "run.parquet"
    run.write_bytes(b"PAR1")
    assert cli_main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no sweep dataset" in err and "not writable" not in err, err


def test_report_on_a_demo_dir_or_the_runs_dir_says_what_to_give(tmp_path, capsys) -> None:
    """`hwctl report hwctl-demo` (a demo's or node's output) and `hwctl report sweep/runs` (the
    dataset's runs folder) said only "expected DIR/runs/*.parquet": the first now says what that
    directory is and where its figures are, the second names the dataset directory."""
    demo = tmp_path / "hwctl-demo"
    demo.mkdir()
    (demo / "requests.parquet").write_bytes(b"PAR1")
    assert cli_main(["report", str(demo)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "demo or node" in err and "hwctl export" in err, err
    root = tmp_path / "sw"
    execute(plan(["K2"], [0.75], ["esp"], duration=1.0, version="t", requests=False), root)
    assert cli_main(["report", str(root / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"hwctl report {root}" in err, err


def test_report_out_inside_the_dataset_folders_is_refused(tmp_path, capsys) -> None:
    """`--out SWEEP/runs/rep`: the report's files (bound.csv...) went into the dataset's runs
    folder, and the next `hwctl report` failed on them as damaged runs."""
    root = tmp_path / "sw"
    execute(plan(["K2"], [0.75], ["esp"], duration=1.0, version="t", requests=False), root)
    for sub in ("runs", "requests"):
        assert cli_main(["report", str(root), "--out", str(root / sub / "rep")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "inside the dataset" in err, err
    assert not (root / "runs" / "rep").exists()
    assert cli_main(["report", str(root), "--out", str(tmp_path / "r")]) == 0


def test_report_says_which_figures_it_drew_and_why_not_the_others(tmp_path, capsys) -> None:
    """A K2 + K3 sweep with per-request rows: Fig. 7 (2x2 only) and Fig. 11 (two fidelities)
    are not drawn. The index said the generic three reasons under each, the fit with two
    |E| values printed '± nan', and stdout claimed 'fig6-11'."""
    root = tmp_path / "sw"
    execute(plan(["K2", "K3"], [0.75], ["esp", "dqp"], replicates=2, duration=2.0, version="t"),
            root)
    assert cli_main(["report", str(root), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "fig6-11" not in out and "fig7" not in out and "fig11" not in out, out
    assert "fig6" in out and "fig10" in out, out
    index = (tmp_path / "r" / "index.md").read_text()
    assert "nan" not in index, index
    sec7 = index.split("## Fig. 7")[1].split("##")[0]
    assert "2x2" in sec7 and "Fig. 10" not in sec7 and "Fig. 11" not in sec7, sec7
    sec11 = index.split("## Fig. 11")[1].split("##")[0]
    assert "two or more fidelities" in sec11 and "Fig. 7" not in sec11, sec11
