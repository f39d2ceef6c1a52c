"""Two-node simulation through the real cores (sim/verification.py) against the physics."""

from __future__ import annotations

import pytest

from hwctl.physics import memory as mem
from hwctl.physics.loss import PATHS
from hwctl.sim.verification import Scenario, simulate


def test_sim_rate_fidelity_and_buffer_match_physics() -> None:
    m = mem.memory_by_short("ion-ca")
    pair = PATHS["C-E"]
    sc = Scenario(memory=m, pair=pair, latency_s=5e-3, emit_s=40e-3, seq0=0xFFFF0000, seed=4)
    r = simulate(sc)
    # every pair with both photons stored is verified (timeout 90 ms >> 5 ms), none inconsistent
    assert r.verified_pairs == r.pairs_arrived > 0
    assert r.inconsistent == 0 and r.leaked_slots == 0
    # the pair rate is the binomial arrival rate (4 sigma)
    exp = r.pulses * pair.pair_arrival_probability
    assert abs(r.pairs_arrived - exp) < 4 * exp**0.5
    # verification takes the latency plus at most report interval + batch granularity
    assert 5e-3 <= r.verify_delay_mean_s <= 5e-3 + sc.report_interval_s + sc.chunk_s
    f_lo = mem.fidelity(m, 5e-3 + pair.skew + 150e-6, 5e-3 + 150e-6)
    f_hi = mem.fidelity(m, 5e-3 + pair.skew, 5e-3)
    assert f_lo <= r.fidelity_mean <= f_hi
    # buffer occupancy at node A ~ R * eta_A * (latency + report delay) (Little's law)
    a = r.nodes[0]
    little = sc.rate_hz * pair.a.eta * (sc.latency_s + 0.5 * sc.report_interval_s + 0.5 * sc.chunk_s)
    assert a.occupancy_mean == pytest.approx(little, rel=0.1)
    assert a.discards["TIMEOUT"] == 0 and a.discards["PARTNER_MISSING"] > 0


def test_sim_superconducting_cavity_fails_at_metro_latency() -> None:
    # paper Fig. 3 / V: ~10 ms metro latency is fine except for superconducting cavities
    for short, ok in (("sc-milul", False), ("nv", True)):
        r = simulate(Scenario(memory=mem.memory_by_short(short), latency_s=10e-3, emit_s=10e-3))
        assert (r.verified_pairs > 0) == ok
        assert r.leaked_slots == 0
        if not ok:
            assert r.nodes[0].discards["TIMEOUT"] == r.nodes[0].headers
