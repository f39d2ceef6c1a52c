"""`hwctl demo --header-rate` above the HEADER-mode limit: block mode, or one clear line."""

from __future__ import annotations

import pytest

from hwctl.cli import main


@pytest.mark.parametrize(("argv", "msg"), [
    (["--header-rate", "1300000"], "cannot be carried by the 3 Mbaud device link with 1 km arms"),
    (["--header-rate", "1300000", "--arm-km", "2"], "use --arm-km >= 3.0"),
    (["--header-rate", "250", "--hold", "0.1"], "--hold needs block mode"),
    (["--header-rate", "-1"], "--header-rate must be in"),
    (["--header-rate", "1300000", "--arm-km", "-3"], "--arm-km must be in"),
])
def test_header_rate_errors_are_one_line(argv, msg, capsys) -> None:
    assert main(["demo", "--topology", "K2", "--duration", "1", "--no-web", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0], err


def test_block_mode_rate_check_accepts_the_paper_rate_at_10_km() -> None:
    import argparse

    from hwctl.demo import check_header_rate

    check_header_rate(argparse.Namespace(header_rate=1.3e6, arm_km=10.0, hold=0.0))
