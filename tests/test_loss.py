"""Loss budget and latency model (pair-verification paper IV)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwctl.physics import latency, loss


def test_path_loss_budget() -> None:
    # 4 dB source + 4 dB memory + 8 dB per intermediate node + 0.2 dB/km
    assert loss.path_loss_db(0.0) == pytest.approx(8.0)
    assert loss.path_loss_db(10.0, 1) == pytest.approx(18.0)
    assert loss.arrival_probability(10.0, 0) == pytest.approx(0.1)
    assert loss.arrival_probability(10.0, 1) == pytest.approx(10 ** -1.8)
    with pytest.raises(ValueError):
        loss.path_loss_db(-1.0)
    with pytest.raises(ValueError):
        loss.path_loss_db(1.0, -1)


def test_node_pairs() -> None:
    ce, bd = loss.PATHS["C-E"], loss.PATHS["B-D"]
    assert ce.pair_arrival_probability > bd.pair_arrival_probability
    assert ce.pair_arrival_probability == pytest.approx(ce.a.eta * ce.b.eta)
    # 2 km difference -> ~9.8 us
    assert ce.skew == pytest.approx(2e3 / (299_792_458.0 / 1.468))


def test_latency_default_matches_documented_summary() -> None:
    m = latency.DUBLIN_Q1_2024
    assert m.median == pytest.approx(10e-3)
    assert m.quantile(0.95) == pytest.approx(25e-3)
    assert m.quantile(0.5) == pytest.approx(m.median)
    rng = np.random.default_rng(1)
    x = m.sample(rng, 200_000)
    assert np.all(x > m.loc)
    assert np.median(x) == pytest.approx(10e-3, rel=0.02)
    assert x.mean() == pytest.approx(m.mean, rel=0.02)
    # pdf integrates to ~1 and agrees with the cdf
    t = np.linspace(0, 0.5, 200_001)
    assert np.trapezoid(m.pdf(t), t) == pytest.approx(1.0, abs=1e-3)
    assert m.cdf(np.array([m.median]))[0] == pytest.approx(0.5)


def test_latency_fit_recovers_parameters() -> None:
    true = latency.LatencyModel(1e-3, math.log(5e-3), 0.4)
    x = true.sample(np.random.default_rng(2), 100_000)
    fit = latency.LatencyModel.fit(x, loc=1e-3)
    assert fit.mu == pytest.approx(true.mu, abs=0.01)
    assert fit.sigma == pytest.approx(true.sigma, abs=0.01)
    m2 = latency.LatencyModel.from_median_p95(12e-3, 30e-3, loc=1e-3)
    assert m2.median == pytest.approx(12e-3) and m2.quantile(0.95) == pytest.approx(30e-3)
    with pytest.raises(ValueError):
        latency.LatencyModel.fit(np.array([1.0]))
    with pytest.raises(ValueError):
        latency.LatencyModel.from_median_p95(1e-3, 2e-3, loc=5e-3)
