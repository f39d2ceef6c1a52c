"""Bad command-line arguments are one-line usage errors (exit 2), never tracebacks."""

from __future__ import annotations

import pytest

from hwctl.cli import main


@pytest.mark.parametrize("argv", [
    ["study", "verification", "--quick", "--seed", "-5"],
    ["demo", "--seed", "-1"],
    ["sim", "--seed", "x"],
    ["twin", "--seed", str(2**63)],
])
def test_bad_seed_is_a_usage_error(argv: list[str], capsys, tmp_path) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, *(["--out", str(tmp_path / "o")] if argv[0] == "study" else [])])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "invalid seed" in err[-1] and "Traceback" not in "".join(err)
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_seed_accepts_hex_and_zero() -> None:
    from hwctl.argtypes import seed

    assert seed("0") == 0 and seed("0x10") == 16


@pytest.mark.parametrize(("argv", "hint"), [
    (["demo", "--duration", "5m"], "300"),
    (["sim", "--duration", "2h"], "7200"),
    (["sweep", "--duration", "90s"], "90"),
])
def test_duration_with_a_unit_says_seconds(argv, hint, capsys) -> None:
    """`--duration 5m` said "must be a number, got '5m'": the option is in seconds, and the
    number meant is named."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    line = capsys.readouterr().err.strip()
    assert "in seconds" in line and line.endswith(f"write {hint} (see hwctl {argv[0]} --help)"), line
