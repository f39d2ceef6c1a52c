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


def test_expected_pairs_from_the_cores_and_the_loss_budget() -> None:
    """docs/verification.md "How many pairs to expect": E = N p_A p_B with N the pulses both
    cores covered (stored + inferred missing, the smaller), p from the source's arms."""
    from hwctl.demo import expected_pairs, header_source
    from hwctl.physics.loss import arrival_probability
    from hwctl.sim import topologies

    src = header_source(topologies.by_name("K2"), "A", "B", 1.3e6, seed=1, arm_km=10.0)
    assert src.arrival == (arrival_probability(10.0),) * 2
    assert abs(src.arrival[0] - 0.1) < 1e-12  # 4 + 4 dB + 10 km x 0.2 dB/km = 10 dB
    a = {"headers": 1_000, "missing_local": 9_000}
    b = {"headers": 990, "missing_local": 8_990}
    n, pa, pb, e = expected_pairs(a, b, src.arrival)
    assert n == 9_980 and pa == pb == src.arrival[0]
    assert abs(e - 9_980 * 0.01) < 1e-6
