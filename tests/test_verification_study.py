"""`hwctl study verification`: the quick study end to end (CLI, data files, plots, physics checks)."""

from __future__ import annotations

import csv
import json

import pytest

from hwctl import cli


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_quick_study_via_cli(tmp_path, capsys) -> None:
    out = tmp_path / "study"
    assert cli.main(["study", "verification", "--quick", "--out", str(out), "--seed", "3",
                     "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)  # --json: stdout is the figures only
    from hwctl.output import jsonable

    assert figures == jsonable(json.loads((out / "params.json").read_text()))  # NaN -> null
    assert {m["short"] for m in figures["memories"]} >= {"nv"}
    f10 = {m["short"]: m["f_at_10ms"] for m in figures["memories"]}
    assert all(0.0 <= f <= 1.0 for f in f10.values())
    assert f10["ion-yb"] > f10["nv"] >= 0.81 > f10["sc-reagor"]  # T2: seconds vs microseconds
    assert figures["fig5_memory_points"] and "rate_hz" in figures["fig5_memory_points"][0]
    for stem in ("fig3_fidelity_vs_latency", "fig4_buffer_vs_latency", "fig5_rate_vs_timeout"):
        assert (out / f"{stem}.png").stat().st_size > 10_000
        assert (out / f"{stem}.csv").exists() and (out / f"{stem}.parquet").exists()
    params = json.loads((out / "params.json").read_text())
    assert params["config"]["seed"] == 3 and params["code_version"]
    # Fig. 3: the simulated fidelity at verification sits just below the closed form at t_lat
    pts = _rows(out / "fig3_sim_points.csv")
    assert pts
    for r in pts:
        assert float(r["fidelity_sim"]) <= float(r["fidelity_closed_form"]) + 1e-12
        assert float(r["fidelity_sim"]) == pytest.approx(float(r["fidelity_closed_form"]), abs=0.01)
    # Fig. 4: buffer grows with latency and follows Little's law
    b = [r for r in _rows(out / "fig4_buffer_vs_latency.csv") if r["node_pair"] == "C-E" and r["node"] == "a"]
    assert float(b[-1]["occupancy_mean"]) > float(b[0]["occupancy_mean"])
    for r in b:
        assert float(r["occupancy_mean"]) == pytest.approx(float(r["littles_law"]), rel=0.15)
    # Fig. 5: longer timeouts never lose rate; superconducting cavities get nothing at F >= 0.81
    rates = [float(r["rate_hz"]) for r in _rows(out / "fig5_rate_vs_timeout.csv")]
    assert rates == sorted(rates) and rates[-1] > 0
    pts5 = {(r["memory"], float(r["f_th"])): float(r["rate_hz"]) for r in _rows(out / "fig5_memory_points.csv")}
    assert pts5[("sc-reagor", 0.81)] == 0.0 and pts5[("ion-yb", 0.81)] > 0
    assert "sc-milul" in {m["short"] for m in figures["memories"]}


def test_study_bad_output_dir_is_a_user_error(tmp_path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert cli.main(["study", "verification", "--quick", "--no-plots", "--out", str(f / "sub")]) == 2
    assert "cannot create output directory" in capsys.readouterr().err


def test_summary_names_png_only_with_plots() -> None:
    """--no-plots: the summary's first line names the files written, not PNGs that are not
    there (it said "fig3/4/5 .png .csv .parquet" either way)."""
    from pathlib import Path

    from hwctl.study import wrote_line

    out = Path("study-out")
    assert "png" not in wrote_line(out, plots=False, wall_s=1.0)
    assert ".png" in wrote_line(out, plots=True, wall_s=1.0)
    assert "params.json" in wrote_line(out, plots=False, wall_s=1.0)


def test_interrupted_study_leaves_no_params_json_and_says_so(tmp_path, capsys,
                                                            monkeypatch) -> None:
    """Ctrl-C mid-study over an earlier complete study in the same --out: params.json (written
    last) is gone, so the directory's mix of new and old figure files is not taken for a
    finished study, and the command says what it left."""
    out = tmp_path / "study"
    out.mkdir()
    (out / "params.json").write_text("{}")  # an earlier, complete study
    (out / "fig5_rate_vs_timeout.csv").write_text("old")
    import hwctl.sim.verification

    real = hwctl.sim.verification.simulate
    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(hwctl.sim.verification, "simulate", interrupted)
    assert cli.main(["study", "verification", "--quick", "--no-plots", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert not (out / "params.json").exists()
    assert "incomplete" in err and str(out) in err and "Traceback" not in err, err


@pytest.mark.slow
def test_full_study(tmp_path) -> None:
    assert cli.main(["study", "verification", "--out", str(tmp_path), "--no-plots"]) == 0
    pts5 = {(r["memory"], float(r["f_th"])): float(r["rate_hz"]) for r in _rows(tmp_path / "fig5_memory_points.csv")}
    assert pts5[("ion-yb", 0.81)] >= pts5[("ion-ca", 0.81)] >= pts5[("sc-milul", 0.81)]
