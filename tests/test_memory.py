"""Closed-form singlet fidelity vs qutip.mesolve of the paper's Lindblad equation (paper III, Eq. 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwctl.physics import memory as mem
from hwctl.physics.memory import TABLE_I, Memory

qutip = pytest.importorskip("qutip")

OPTS = {"atol": 1e-13, "rtol": 1e-11, "nsteps": 100_000}


def _singlet():
    up, dn = qutip.basis(2, 0), qutip.basis(2, 1)
    psi = (qutip.tensor(up, dn) - qutip.tensor(dn, up)).unit()
    return psi


def _c_ops(m: Memory, convention: str, which: str = "AB"):
    g1, kappa = m.rates(convention)
    i2 = qutip.qeye(2)
    ops = []
    for q in which:
        for op, rate in ((qutip.sigmam(), g1), (qutip.sigmaz(), kappa)):
            full = qutip.tensor(op, i2) if q == "A" else qutip.tensor(i2, op)
            ops.append(math.sqrt(rate) * full)
    return ops


def _mesolve_fidelity(m: Memory, t_a: float, t_b: float, convention: str, n: int = 9) -> np.ndarray:
    """Idle only the longer-stored qubit for |t_a - t_b|, then both for min(t_a, t_b)."""
    psi = _singlet()
    proj = psi.proj()
    h = qutip.qzero([2, 2])
    rho = psi.proj()
    extra = abs(t_a - t_b)
    if extra > 0:
        r = qutip.mesolve(h, rho, [0.0, extra], _c_ops(m, convention, "A" if t_a > t_b else "B"),
                          options=OPTS)
        rho = r.states[-1]
    tl = np.linspace(0.0, min(t_a, t_b), n)
    r = qutip.mesolve(h, rho, tl, _c_ops(m, convention), e_ops=[proj], options=OPTS)
    return np.asarray(r.expect[0]).real, tl


@pytest.mark.parametrize("convention", ["physical", "literal"])
@pytest.mark.parametrize("m", TABLE_I, ids=[m.short for m in TABLE_I])
def test_closed_form_matches_mesolve_equal_times(m: Memory, convention: str) -> None:
    horizon = 2.0 * min(m.t1, m.t2)
    f_num, tl = _mesolve_fidelity(m, horizon, horizon, convention, n=21)
    f_cf = mem.fidelity(m, tl, convention=convention)
    assert np.max(np.abs(f_num - f_cf)) <= 1e-6
    assert f_num[-1] < 0.9  # the grid reaches real decay, so the comparison is not vacuous


@pytest.mark.parametrize("m", TABLE_I, ids=[m.short for m in TABLE_I])
def test_closed_form_matches_mesolve_unequal_times(m: Memory) -> None:
    base = 0.3 * m.t2
    for skew in (0.05 * m.t2, 0.5 * m.t2):
        f_num, tl = _mesolve_fidelity(m, base + skew, base, "physical", n=5)
        f_cf = mem.fidelity(m, tl + skew, tl)
        assert np.max(np.abs(f_num - f_cf)) <= 1e-6
        # symmetric in which qubit idles longer
        assert mem.fidelity(m, base + skew, base) == pytest.approx(mem.fidelity(m, base, base + skew))


def test_physical_convention_coherence_rate_is_one_over_t2() -> None:
    for m in TABLE_I:
        assert m.coherence_rate("physical") == pytest.approx(1.0 / m.t2)
        # equal-time closed form reduces to [exp(-t/T1) + exp(-2t/T2)] / 2
        t = 0.1 * m.t2
        assert mem.fidelity(m, t) == pytest.approx(0.5 * (math.exp(-t / m.t1) + math.exp(-2 * t / m.t2)))


def test_timeout_inverts_fidelity_and_matches_eq1_when_t1_long() -> None:
    for m in TABLE_I:
        for f_th in (0.81, 0.9, 0.99):
            for skew in (0.0, 1e-3 * m.t2):
                t = mem.timeout(m, f_th, skew)
                assert mem.fidelity(m, t, t + skew) == pytest.approx(f_th, abs=1e-12)
                assert mem.fidelity(m, 0.99 * t, 0.99 * t + skew) > f_th
    yb = TABLE_I[0]  # T1 / T2 ~ 3: Eq. 1 (T1 -> inf) overestimates the timeout a bit
    assert mem.timeout(yb, 0.81) < mem.timeout_dephasing_only(yb, 0.81)
    long_t1 = Memory("T1>>T2", 1e9, 1.0)
    assert mem.timeout(long_t1, 0.81) == pytest.approx(mem.timeout_dephasing_only(long_t1, 0.81), rel=1e-6)
    assert mem.timeout(long_t1, 1.0) == 0.0


def test_paper_claim_10ms_ok_except_superconducting_cavities() -> None:
    for m in TABLE_I:
        ok = mem.fidelity(m, 10e-3) >= mem.F_QKD
        assert ok == (not m.short.startswith("sc-")), m.name


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        Memory("bad", 1.0, 3.0).rates("physical")
    with pytest.raises(ValueError):
        Memory("bad", 0.0, 1.0)
    with pytest.raises(ValueError):
        mem.timeout(TABLE_I[0], 1.5)
    with pytest.raises(ValueError):
        mem.fidelity(TABLE_I[0], -1.0)
    assert mem.memory_by_short("nv").t1 == 200.0
    with pytest.raises(KeyError):
        mem.memory_by_short("nope")
