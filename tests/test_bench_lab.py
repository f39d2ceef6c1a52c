"""The lab twin takes its physics from the nodes' benches: two nodes on simulated benches 0 and 1
(hwctl/instruments/sim/demo-bench.toml), their VOAs set from the bench file, the physics read back from the
instruments, and the pair rate of the lab (node devices + heralding station, SCHEDULE_PAIRS)
measured against the loss budget."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from hwctl.instruments import DEMO_BENCH, SIM_FILE
from hwctl.instruments.bench import Bench, BenchConfig
from hwctl.physics.bench import link_physics
from hwctl.sim import topologies
from hwctl.sim.twin.lab import Lab
from hwctl.wire import Done, Frame, FrameDecoder, Pair, SchedulePairs, encode

TEMPLATE = DEMO_BENCH
FIDELITY = 0.5
PAIRS_PER_ROUND = 6
ROUNDS = 60  # 360 pairs per point: relative standard error sqrt(1/360) = 5.3 %


def bench_physics(tmp_path: Path, att_db: float):
    """Both nodes' benches from the template with the VOAs at ``att_db``, applied to fresh
    simulated instruments; the link physics from what the instruments read back."""
    sim = tmp_path / f"sim{att_db}.yaml"
    shutil.copy(SIM_FILE, sim)
    text = TEMPLATE.read_text().replace('"@sim"', f'"{sim}@sim"').replace(
        "attenuation_db = 0.0", f"attenuation_db = {att_db}")
    file = tmp_path / f"bench{att_db}.toml"
    file.write_text(text)
    inputs = []
    for n in (0, 1):
        with Bench(BenchConfig.load(file, index=n)) as bench:
            bench.apply()
            inputs.append(bench.physics_inputs(from_instruments=True))
    return link_physics(FIDELITY, (inputs[0].attenuation_db, inputs[1].attenuation_db),
                        inputs[0].bias_current_ua)


def lab_rate(lp, seed: int) -> float:
    """Pairs per attempt on a K2 lab whose station has the bench's physics."""
    lab = Lab(topologies.by_name("K2"), p_photon=lp.p_photon, dark_prob=lp.dark_prob, seed=seed,
              node_kw={n: {"uart_cycles_per_byte": 0} for n in "AB"})
    dec = {n: FrameDecoder() for n in "AB"}
    attempts = pairs = 0
    for rnd in range(ROUNDS):
        t0 = lab.now + 1000
        for n, peer in (("A", "B"), ("B", "A")):
            lab.feed(n, encode(SchedulePairs(t0, 2**32 - 1, 50, PAIRS_PER_ROUND,
                                             lab.port(n, peer)), (rnd + 1) & 0xFF))
        out: list = []
        for _ in range(10_000):
            lab.advance(20_000_000)
            out += [f.msg for f in dec["A"].feed(lab.read("A")) if isinstance(f, Frame)]
            lab.read("B")
            if any(isinstance(m, Done) for m in out):
                break
        got = [m for m in out if isinstance(m, Pair)]
        assert len(got) == PAIRS_PER_ROUND
        attempts += got[-1].attempt + 1
        pairs += len(got)
    return pairs / attempts


def test_pair_rate_vs_voa_attenuation_follows_the_loss_budget(tmp_path: Path) -> None:
    """Expected: P_herald per common window from hwctl.physics.bench (loss budget + SNSPD at its
    nominal bias, whose dark counts add ~2 % of the heralds at 0 dB). Statistical error: 360
    geometric draws per point, relative s.e. sqrt(1/360) = 5.3 %; each point within 4 sigma, and
    the slope of ln(rate) vs A within 4 sigma of the loss budget's (dark counts bend it a little:
    the expected slope is taken from the expected rates, not -ln(10)/10)."""
    atts = [0.0, 3.0, 6.0, 10.0]
    rel = 1 / math.sqrt(ROUNDS * PAIRS_PER_ROUND)
    rates, expect, darks = [], [], []
    for i, a in enumerate(atts):
        lp = bench_physics(tmp_path, a)
        assert lp.eta_a == lp.eta_b  # both VOAs were set from the one bench file
        r = lab_rate(lp, seed=31 + i)
        z = (r - lp.herald_probability) / (lp.herald_probability * rel)
        assert abs(z) < 4, (a, r, lp.herald_probability, z)
        rates.append(r)
        expect.append(lp.herald_probability)
        darks.append(2 * lp.dark_prob * (1 - lp.dark_prob) * (1 - lp.p_photon))
    x = np.asarray(atts)
    slope = np.polyfit(x, np.log(rates), 1)[0]
    slope_expect = np.polyfit(x, np.log(expect), 1)[0]
    sigma = rel / math.sqrt(((x - x.mean()) ** 2).sum())
    assert abs(slope - slope_expect) < 4 * sigma, (slope, slope_expect, sigma)
    # with the dark-click heralds subtracted, the rate is the loss budget's: slope -ln(10)/10 per
    # dB (weighted fit; each point's error grows by rate / signal)
    signal = np.asarray(rates) - np.asarray(darks)
    w = signal / (np.asarray(rates) * rel)  # 1 / sigma of ln(signal)
    slope_signal, _ = np.polyfit(x, np.log(signal), 1, w=w)
    sigma_signal = 1 / math.sqrt((w**2 * (x - np.average(x, weights=w**2)) ** 2).sum())
    assert abs(slope_signal - (-math.log(10) / 10)) < 4 * sigma_signal, (slope_signal, sigma_signal)
