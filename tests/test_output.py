"""Output conventions of the CLI (hwctl.output): -v/--log-level on every command, logs and progress
on stderr (stdout stays clean data), tables that fit 80 columns."""

from __future__ import annotations

import argparse
import io
import json
import logging
from pathlib import Path

import pytest

from hwctl import cli, output
from hwctl.output import fit_table, log_level, setup_logging, table_width


def _parsers(p: argparse.ArgumentParser, path: str):
    yield path, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, child in a.choices.items():
                yield from _parsers(child, f"{path} {name}")


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_has_log_options(name: str) -> None:
    parser = cli.build_parser([name])
    seen = 0
    for path, p in _parsers(parser, "hwctl"):
        opts = {o for a in p._actions for o in a.option_strings}
        assert {"-v", "--verbose", "--log-level"} <= opts, path
        seen += 1
    assert seen >= 2


@pytest.mark.parametrize("argv,level", [
    (["sim"], logging.WARNING),
    (["sim", "-v"], logging.INFO),
    (["-v", "sim"], logging.INFO),
    (["sim", "-vv"], logging.DEBUG),
    (["--log-level", "error", "sim"], logging.ERROR),
    (["sim", "--log-level", "DEBUG"], logging.DEBUG),
    (["-vv", "sim", "--log-level", "warning"], logging.WARNING),
])
def test_log_level_from_args(argv: list[str], level: int) -> None:
    args = cli.build_parser(argv).parse_args(argv)
    assert args.command == "sim"
    assert log_level(args) == level


def test_bad_log_level_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["sim", "--log-level", "loud"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--log-level" in err


def test_logs_go_to_stderr_through_rich(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        setup_logging(logging.INFO)
        logging.getLogger("hwctl.node").info("hello from the node")
        logging.getLogger("hwctl.sim.network").debug("not shown at INFO")
        out, err = capsys.readouterr()
        assert out == ""
        assert "hello from the node" in err and "INFO" in err
        assert "not shown" not in err
    finally:
        setup_logging(logging.WARNING)


def test_redirected_logs_are_one_unwrapped_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    """stderr redirected (capsys is not a terminal): a 300-character record stays on one line
    with its time, level and logger, not wrapped at rich's default 80 columns."""
    long = "x" * 300
    try:
        setup_logging(logging.INFO)
        logging.getLogger("hwctl.node").warning("peer b stalled: %s", long)
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln]
        assert len(lines) == 1, err
        assert " WARNING hwctl.node: peer b stalled: " + long in lines[0]
    finally:
        setup_logging(logging.WARNING)


def test_sim_stdout_is_data_only(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    rc = cli.main(["sim", "-v", "--topology", "K2", "--duration", "0.2", "--json"])
    assert rc == 0
    out = capsys.readouterr().out
    json.loads(out)  # nothing but the JSON document on stdout


def test_progress_bars_draw_on_stderr(monkeypatch: pytest.MonkeyPatch, tmp_path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``hwctl study`` used to draw its bar on stdout (into redirected output)."""
    from hwctl import simcli, study

    def fake_study(cfg, out, plots, progress):
        for _ in range(3):
            progress(3, "fake step")
        return ["summary line"]

    monkeypatch.setattr(study, "run_study", fake_study)
    rc = cli.main(["study", "verification", "--quick", "--no-plots", "--out", str(tmp_path)])
    assert rc == 0
    out, _err = capsys.readouterr()
    assert out == "summary line\n"
    assert output.progress(True).console.stderr  # the one progress bar simcli and sweep use
    assert simcli.progress_bar is output.progress


DEMO_COLUMNS = ("node", "state", "done", "heralds", "mean L", "PL dis", "verified", "F ver",
                "disc m/t/p", "frames", "retry/lost")
DEMO_ROWS = [(n, "BUSY", "26/30", "1234", "31 ms", "0", "12 w/B", "0.9812", "0/1/0", "45678",
              "0/0") for n in "ABCD"]


def _render(renderable, width: int) -> str:
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, legacy_windows=False).print(renderable)
    return buf.getvalue()


@pytest.mark.parametrize("width", [60, 80, 100])
def test_wide_table_switches_to_compact_layout(width: int) -> None:
    text = _render(fit_table(DEMO_COLUMNS, DEMO_ROWS, title="demo", width=width), width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    for row in DEMO_ROWS:  # every value is still there
        for cell in row:
            assert cell in text
    assert table_width(DEMO_COLUMNS, DEMO_ROWS) > 100  # so all three used the compact layout
    assert "│" not in text


def test_narrow_table_stays_a_table() -> None:
    cols, rows = ("resource", "used", "available", "%"), [("LUT4", "1234", "7680", "16")]
    text = _render(fit_table(cols, rows, title="top", width=80), 80)
    assert "│" in text and "LUT4" in text and "7680" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_long_sim_run_shows_progress_on_stderr(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """One `hwctl sim` run of simulated hours takes minutes: on a terminal it shows a bar of
    simulated seconds on stderr (gone at the end); stdout keeps only the figures."""
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stderr counts as a terminal
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    rc = cli.main(["sim", "--topology", "3x3", "--duration", "30", "--json"])
    assert rc == 0
    out, err = capsys.readouterr()
    json.loads(out)
    assert "simulated s" in err


def test_progress_callback_changes_no_result() -> None:
    from hwctl.sim import topologies
    from hwctl.sim.network import SimConfig, simulate

    g, cfg = topologies.by_name("3x3"), SimConfig(duration=30.0, seed=3)
    seen: list[float] = []
    a = simulate(g, cfg, "3x3")
    b = simulate(g, cfg, "3x3", on_progress=seen.append)
    assert a.summary == b.summary and a.events == b.events
    assert seen and seen == sorted(seen) and 0 < seen[-1] <= 30.0


@pytest.mark.parametrize("argv", [["sim", "--topology", "K2", "--duration", "1"],
                                  ["instruments", "list"], ["--help"]])
def test_stdout_closed_by_the_reader_is_not_a_traceback(argv: list[str], tmp_path) -> None:
    """`hwctl sim ... | head -2`: the reader closes the pipe while hwctl still prints. That ends
    the command quietly (as `cat` does), not with a BrokenPipeError traceback on stderr. The
    pipe's read end is closed before hwctl starts, so every write meets it closed."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = os.environ | {"PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([sys.executable, "-m", "hwctl", *argv], stdout=w,
                           stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env, timeout=120)
    finally:
        os.close(w)
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr
    assert p.stderr == "", p.stderr


def test_redirected_progress_is_a_plain_line_now_and_then(capsys) -> None:
    """stderr redirected (`hwctl sweep ... 2> sweep.log`, nohup): rich drew nothing until the end,
    so a long sweep showed no progress. A line at most every `every` seconds instead, the last at
    the end; a short run prints none."""
    clock = [0.0]
    with output.LineProgress(eta=True, every=10.0, clock=lambda: clock[0]) as bar:
        task = bar.add_task("sweep", total=4)
        bar.advance(task)
        clock[0] = 11.0
        bar.advance(task)  # 10 s since the start: a line
        clock[0] = 12.0
        bar.advance(task)  # 1 s since: none
        clock[0] = 14.0
    err = capsys.readouterr().err.splitlines()
    assert err == ["sweep: 2/4 (50 %), 0:00:11 elapsed, ~0:00:11 left",
                   "sweep: 3/4 (75 %), 0:00:14 elapsed, ~0:00:05 left"], err  # the end
    with output.LineProgress(every=10.0, clock=lambda: 0.0) as bar:
        bar.advance(bar.add_task("short", total=2), 2)
    assert capsys.readouterr().err == ""
    assert isinstance(output.progress(True), output.LineProgress)  # (capsys: not a terminal)


def test_redirected_sweep_shows_progress(tmp_path, monkeypatch, capsys) -> None:
    """The sweep's progress reaches a redirected stderr (every line, with a 0 s interval)."""
    monkeypatch.setattr(output.LineProgress, "__init__", _every_call(output.LineProgress.__init__))
    assert cli.main(["sweep", "--out", str(tmp_path / "sw"), "--topologies", "K2",
                     "--fidelities", "0.7", "--protocols", "esp", "--duration", "1",
                     "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert "1/1 (100 %)" in err, err


def _every_call(init):
    def patched(self, **kw):
        init(self, **{**kw, "every": 0.0})
    return patched


def test_sim_figures_without_requests_are_a_dash_not_nan(capsys) -> None:
    """A run too short for any request to complete printed 'mean latency L (ms)  nan': a dash and
    why, as the node and the demo say 'no latency yet'."""
    assert cli.main(["sim", "--topology", "K2", "--duration", "0.001"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower(), out
    assert "- (no request completed)" in out, out
