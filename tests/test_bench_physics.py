"""Bench settings -> twin physics (hwctl.physics.bench): consistency with the loss budget and the
K2-calibrated heralding model, and the heralding rate measured on the twin vs VOA attenuation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwctl.physics import bench as bp
from hwctl.physics import heralding, loss
from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.wire import FrameDecoder, Herald, Schedule, encode


def test_nominal_bench_is_the_calibrated_model() -> None:
    for f in (0.6, 0.75, 0.9):
        lp = bp.link_physics(f)
        assert lp.p_photon == pytest.approx(heralding.success_probability(f), rel=1e-12)
        assert lp.dark_prob == 0.0
        lp = bp.link_physics(f, (0.0, 0.0), bp.SNSPD.nominal_bias_ua)
        assert lp.p_photon == pytest.approx(heralding.success_probability(f), rel=1e-12)
        assert lp.dark_rate_hz == pytest.approx(bp.SNSPD.dark_ref_hz)


def test_voa_is_one_more_element_of_the_loss_budget() -> None:
    for length, nodes, att in ((10.0, 0, 0.0), (15.0, 1, 3.0), (20.0, 1, 12.5)):
        assert bp.arm_arrival_probability(length, nodes, att) == pytest.approx(
            loss.arrival_probability(length, nodes) * 10 ** (-att / 10), rel=1e-12)
    assert bp.arm_arrival_probability(10.0, 0, math.inf) == 0.0
    # single-click with unequal arms: p = alpha (eta_A + eta_B)
    lp = bp.link_physics(0.75, (10.0, 0.0))
    assert lp.p_photon == pytest.approx(0.25 * heralding.ETA * (0.1 + 1.0), rel=1e-12)
    assert bp.link_physics(0.75, (math.inf, math.inf)).p_photon == 0.0
    with pytest.raises(ValueError):
        bp.transmittance(-1.0)


def test_snspd_efficiency_and_dark_counts_vs_bias() -> None:
    d = bp.SNSPD
    i = np.linspace(0.0, d.i_switch_ua - 1e-6, 200)
    eff = [d.efficiency(x) for x in i]
    dark = [d.dark_rate_hz(x) for x in i]
    assert all(b > a for a, b in zip(eff, eff[1:], strict=False))  # rises ...
    assert eff[-1] == pytest.approx(d.eta_max, rel=0.01)  # ... onto the plateau
    assert d.efficiency(d.i_50_ua) == pytest.approx(d.eta_max / 2)
    assert all(b > a for a, b in zip(dark, dark[1:], strict=False))
    # latched above the switching current: no clicks at all
    assert d.efficiency(d.i_switch_ua + 0.1) == 0.0 and d.dark_rate_hz(d.i_switch_ua + 0.1) == 0.0
    lo, hi = bp.link_physics(0.75, bias_current_ua=7.0), bp.link_physics(0.75, bias_current_ua=9.8)
    assert lo.p_photon < hi.p_photon and lo.dark_prob < hi.dark_prob


def _measure(lp: bp.LinkPhysics, heralds: int, seed: int) -> tuple[float, int]:
    """Run the twin until ``heralds`` heralds (one schedule each); return heralds per attempt."""
    twin = TwinModel(TwinConfig(p_photon=lp.p_photon, dark_prob=lp.dark_prob, seed=seed,
                                uart_cycles_per_byte=0))
    dec = FrameDecoder()
    attempts = 0
    for k in range(heralds):
        twin.feed(encode(Schedule(twin.now + 10, 0xFFFF_FFFF, 50, 2), (k + 1) & 0xFF))
        events: list[Herald] = []
        while not events:  # the twin decides attempts block by block
            twin.advance_to(twin.next_deadline())
            events = [f.msg for f in dec.feed(twin.read())
                      if isinstance(getattr(f, "msg", None), Herald)]
        assert len(events) == 1
        attempts += events[0].attempt + 1
    return heralds / attempts, attempts


def test_heralding_rate_follows_voa_attenuation_on_the_twin() -> None:
    """Both nodes' VOAs at A dB: the per-attempt herald probability must be
    alpha*eta0*2*10^(-A/10) (loss budget), measured on the twin per attempt.

    Statistical error: K heralds over N attempts estimate p by K/N with relative standard error
    sqrt((1-p)/K) (negative binomial), 5.0 % for K = 400. Each point must lie within 4 sigma,
    and the fitted slope of ln p vs A must be -ln(10)/10 = -0.230/dB within 4 sigma of the fit
    (sigma_slope from the per-point errors). The seeds are fixed, so the run is reproducible."""
    k = 400
    atts = [0.0, 3.0, 6.0, 10.0]
    rel_err = math.sqrt(1.0 / k)
    measured = []
    for i, a in enumerate(atts):
        lp = bp.link_physics(0.5, (a, a))
        p_hat, _ = _measure(lp, k, seed=100 + i)
        z = (p_hat - lp.herald_probability) / (lp.herald_probability * rel_err)
        assert abs(z) < 4, (a, p_hat, lp.herald_probability, z)
        measured.append(p_hat)
    slope, _ = np.polyfit(atts, np.log(measured), 1)
    x = np.asarray(atts)
    sigma_slope = rel_err / math.sqrt(((x - x.mean()) ** 2).sum())
    assert abs(slope - (-math.log(10) / 10)) < 4 * sigma_slope, (slope, sigma_slope)
    # the test can tell: ignoring the VOA (p at 0 dB) would be off by > 20 sigma at 10 dB
    p0 = bp.link_physics(0.5).herald_probability
    assert abs(measured[-1] - p0) / (measured[-1] * rel_err) > 20


def test_dark_counts_from_detector_bias_on_the_twin() -> None:
    """Close to the switching current the dark counts add false heralds: the twin's herald rate
    with both arms blocked (VOA shutters closed) is the dark-count term 2 d (1 - d) alone."""
    lp = bp.link_physics(0.75, (math.inf, math.inf), bias_current_ua=9.95, window_s=20e-6)
    assert lp.p_photon == 0.0 and lp.dark_prob > 0
    p_hat, _ = _measure(lp, 400, seed=7)
    expect = 2 * lp.dark_prob * (1 - lp.dark_prob)
    assert abs(p_hat - expect) < 4 * expect / math.sqrt(400)


def test_herald_probability_is_the_twins_detector_model() -> None:
    for p, d in ((1e-4, 0.0), (1e-3, 1e-5), (0.2, 0.05)):
        assert bp.herald_probability(p, d) == pytest.approx(
            p * (1 - d) + 2 * (1 - p) * d * (1 - d), rel=1e-12)
