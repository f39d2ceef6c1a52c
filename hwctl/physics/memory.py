"""Quantum-memory decoherence of a stored Bell singlet, in closed form (pair-verification paper III).

Model (paper III-B, Eqs. 3-4)
-----------------------------
Each of the two memory qubits (A, B) idles under the trivial Hamiltonian H = 0 and two jump
operators acting on that qubit only::

    L_1 = sqrt(gamma_1) sigma_-        amplitude damping, gamma_1 = 1 / T1
    L_2 = sqrt(kappa)   sigma_z        pure dephasing

The Lindblad equation  d rho/dt = sum_k L_k rho L_k^+ - 1/2 {L_k^+ L_k, rho}  (paper Eq. 4) starts
from the singlet |psi-> = (|01> - |10>)/sqrt(2); the figure of merit is F = <psi-| rho |psi-> (Eq. 2).

Because the four jump operators are local and the Hamiltonian is zero, the evolution factorises
into one single-qubit channel per qubit, and each qubit can idle for its own time (t_A, t_B: the
paper's "time discrepancy caused by unequal quantum channel lengths"). A single-qubit channel after
time t keeps the excited population with factor a = exp(-gamma_1 t) and multiplies the coherence
by c = exp(-Gamma t) with Gamma = gamma_1 / 2 + 2 kappa. Writing the singlet in that basis gives
(derivation in docs/verification.md)::

    F(t_A, t_B) = [ a_A + a_B + 2 c_A c_B ] / 4

and for equal times F(t) = [exp(-t/T1) + exp(-2 Gamma t)] / 2.

Which dephasing rate?
---------------------
The paper's extraction says the decay rates are gamma_1 = 1/T1 and gamma_2 = 1/T2 (via its ref. [12]);
it does not fix the normalisation of the sigma_z jump operator. Two readings are provided:

* ``"physical"`` (default): T2 is the measured coherence time of one qubit, i.e. Gamma = 1/T2, so
  kappa = (1/T2 - 1/(2 T1)) / 2. Then F(t) = [exp(-t/T1) + exp(-2t/T2)] / 2, which for T1 >> T2
  reduces to the dephasing-only law F = [1 + exp(-2t/T2)] / 2 of Munro et al. (paper ref. [8])
  that gives the paper's timeout Eq. (1):  t_timeout = -(T2 / 2) ln(2 F_th - 1).
  Requires T2 <= 2 T1 (true for all six Table I memories).
* ``"literal"``: L_2 = sqrt(1/T2) sigma_z, i.e. kappa = 1/T2, Gamma = 1/(2 T1) + 2/T2. Coherence then
  decays ~2x faster than the memory's quoted T2; kept so the two readings can be compared.

Both readings are validated against ``qutip.mesolve`` of Eq. 4 in tests/test_memory.py for all six
Table I memories (max abs difference <= 1e-6).

Table I (paper, with its sources) is :data:`TABLE_I`. Times in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Convention = Literal["physical", "literal"]


@dataclass(frozen=True, slots=True)
class Memory:
    """A quantum-memory technology: longitudinal (T1) and transverse (T2) relaxation times in s."""

    name: str
    t1: float
    t2: float
    short: str = ""

    def __post_init__(self) -> None:
        if not (self.t1 > 0 and self.t2 > 0):
            raise ValueError(f"{self.name}: T1 and T2 must be > 0 (got {self.t1}, {self.t2})")

    def rates(self, convention: Convention = "physical") -> tuple[float, float]:
        """(gamma_1, kappa): amplitude-damping rate and sigma_z jump rate of paper Eq. 3, in 1/s."""
        gamma1 = 1.0 / self.t1
        if convention == "physical":
            kappa = (1.0 / self.t2 - 0.5 * gamma1) / 2.0
            if kappa < -1e-15 * gamma1:
                raise ValueError(f"{self.name}: T2 > 2 T1 is unphysical in the 'physical' convention")
            return gamma1, max(kappa, 0.0)
        if convention == "literal":
            return gamma1, 1.0 / self.t2
        raise ValueError(f"unknown convention {convention!r}")

    def coherence_rate(self, convention: Convention = "physical") -> float:
        """Gamma: decay rate of one qubit's off-diagonal element, gamma_1 / 2 + 2 kappa (1/s)."""
        g1, k = self.rates(convention)
        return 0.5 * g1 + 2.0 * k


#: Paper Table I, in its row order. Sources: a Kreuter 2005, b Wang 2021, c Rancic 2018,
#: d Maurer 2012, e Milul 2023, f Reagor 2016 (paper refs. [18]-[23]).
TABLE_I: tuple[Memory, ...] = (
    Memory("Ion trap (171Yb+)", 12000.0, 4200.0, "ion-yb"),
    Memory("Rare-earth ions (167Er3+)", 600.0, 1.3, "rare-earth"),
    Memory("Ion trap (40Ca+)", 1.14, 0.5, "ion-ca"),
    Memory("NV centre (nuclear spin)", 200.0, 0.5, "nv"),
    Memory("Superconducting cavity (Milul 2023)", 0.0256, 0.034, "sc-milul"),
    Memory("Superconducting cavity (Reagor 2016)", 0.0012, 0.00072, "sc-reagor"),
)

#: QKD fidelity threshold used in the paper (Fig. 3, ref. [26]).
F_QKD = 0.81


def fidelity(
    memory: Memory,
    t_a: float | np.ndarray,
    t_b: float | np.ndarray | None = None,
    convention: Convention = "physical",
) -> float | np.ndarray:
    """Singlet fidelity after qubit A idled ``t_a`` s and qubit B ``t_b`` s (default ``t_b = t_a``).

    F = [exp(-g1 t_A) + exp(-g1 t_B) + 2 exp(-Gamma (t_A + t_B))] / 4  (closed form of paper Eq. 4,
    derivation in the module docstring). Works elementwise on arrays.
    """
    if t_b is None:
        t_b = t_a
    g1 = 1.0 / memory.t1
    gam = memory.coherence_rate(convention)
    ta = np.asarray(t_a, dtype=float)
    tb = np.asarray(t_b, dtype=float)
    if np.any(ta < 0) or np.any(tb < 0):
        raise ValueError("storage times must be >= 0")
    f = (np.exp(-g1 * ta) + np.exp(-g1 * tb) + 2.0 * np.exp(-gam * (ta + tb))) / 4.0
    return float(f) if f.ndim == 0 else f


def timeout(
    memory: Memory,
    f_th: float,
    skew: float = 0.0,
    convention: Convention = "physical",
) -> float:
    """Storage time t (s) at which the pair fidelity falls to ``f_th`` (paper II-C2, Eq. 1).

    ``skew`` >= 0 is how much longer the *other* qubit has already been stored (unequal channel
    lengths): solves F(t, t + skew) = f_th for t. Returns 0 if the pair is already below threshold.
    With finite T1, F decreases strictly to 0, so a root always exists; bisection on a doubling
    bracket finds it to ~1e-15 relative.
    """
    if not 0.0 < f_th <= 1.0:
        raise ValueError(f"fidelity threshold must be in (0, 1], got {f_th}")
    if skew < 0:
        raise ValueError("skew must be >= 0")

    def g(t: float) -> float:
        return float(fidelity(memory, t, t + skew, convention)) - f_th

    if g(0.0) <= 0.0:
        return 0.0
    hi = min(memory.t1, memory.t2) * 1e-3 + 1e-12
    while g(hi) > 0.0:
        hi *= 2.0
        if hi > 1e6 * max(memory.t1, memory.t2):
            return math.inf
    lo = 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if g(mid) > 0.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return 0.5 * (lo + hi)


def timeout_dephasing_only(memory: Memory, f_th: float) -> float:
    """The paper's Eq. (1) approximation (T1 -> inf): t = -(T2 / 2) ln(2 F_th - 1), in seconds."""
    if not 0.5 < f_th <= 1.0:
        raise ValueError("Eq. 1 needs 1/2 < F_th <= 1")
    return -0.5 * memory.t2 * math.log(2.0 * f_th - 1.0)


def memory_by_short(short: str) -> Memory:
    """Look a Table I memory up by its short name (``ion-yb``, ``nv``, ``sc-milul``, ...)."""
    for m in TABLE_I:
        if m.short == short:
            return m
    raise KeyError(f"unknown memory {short!r}; known: {', '.join(m.short for m in TABLE_I)}")
