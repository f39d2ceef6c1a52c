"""From bench settings to the twin's physics: VOA attenuation and SNSPD bias -> arrival
probability, detection efficiency, dark counts and the per-attempt herald probability.

Attenuation (loss budget)
-------------------------
A variable optical attenuator in a photon's path is one more loss element of the budget in
:mod:`hwctl.physics.loss`: ``A`` dB multiply the photon's arrival probability by ``10^(-A/10)``
(:func:`hwctl.physics.fibre.db_to_transmittance`), i.e. the path loss becomes
``loss.path_loss_db(...) + A``. :func:`arm_arrival_probability` is exactly that; for the
heralding arm it scales the arm's end-to-end efficiency. A closed VOA shutter is ``A = inf``.

Single-click heralding with two arms
------------------------------------
:mod:`hwctl.physics.heralding` uses ``p = 2 alpha eta`` (ESP paper §II-B, Hermans et al. NJP 25
013011 (2023)) for two identical arms. With unequal arm efficiencies eta_A, eta_B each node's
photon (emitted with probability alpha) is detected independently, so to first order in
alpha*eta

    p_photon = alpha * (eta_A + eta_B),     eta_X = eta_0 * T_X * eta_det(I) / eta_det(I_nom)

with T_X the VOA transmittance of arm X and eta_0 the K2-calibrated end-to-end efficiency
(:data:`hwctl.physics.heralding.ETA`), which already contains the detector at its nominal bias
I_nom. With both VOAs at 0 dB and the nominal bias this is ``2 alpha eta_0``, the calibrated model.

SNSPD efficiency and dark counts vs bias current
------------------------------------------------
A superconducting nanowire detector's system detection efficiency rises with the bias current I
as a sigmoid and saturates on a plateau below the switching current I_sw (Marsili et al.,
Nature Photonics 7, 210 (2013), Fig. 3; review: Natarajan, Tanner, Hadfield, Supercond. Sci.
Technol. 25, 063001 (2012), §3). The dark-count rate grows about exponentially with I close to
I_sw (same references). Above I_sw the wire latches into the normal state and clicks no more
(no photon detection, no dark counts) until the bias is lowered. Phenomenological model:

    eta_det(I) = eta_max / (1 + exp(-(I - I_50) / w))            for I < I_sw, else 0
    R_dark(I)  = R_ref * exp((I - I_ref) / I_d)                  for I < I_sw, else 0

The parameters of :data:`SNSPD` are typical of a WSi/NbN device and are assumptions of this
model, not fitted to a paper. A detector window of duration tau sees a dark click with
probability ``d = 1 - exp(-R_dark tau)`` (Poisson). The herald probability of one attempt
(exactly one of the two detectors clicks; the photon goes to either with probability 1/2 and each
detector may also dark-click) is

    P_herald = p (1 - d) + 2 (1 - p) d (1 - d)          (:func:`herald_probability`)

which is what the twin's node device and station draw per window
(:func:`hwctl.physics.heralding.outcome_probs`, the one detector model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwctl.physics import fibre, heralding, loss


@dataclass(frozen=True, slots=True)
class Snspd:
    """SNSPD efficiency and dark counts vs bias (module docstring); currents in uA."""

    eta_max: float = 0.90  # plateau system detection efficiency
    i_50_ua: float = 6.5  # bias at half the plateau efficiency
    width_ua: float = 0.4  # sigmoid width
    i_switch_ua: float = 10.0  # switching current: above it the wire latches (no clicks)
    dark_ref_hz: float = 100.0  # dark-count rate at i_dark_ref_ua
    i_dark_ref_ua: float = 9.0
    dark_slope_ua: float = 0.35  # e-folding current of the dark-count rate
    nominal_bias_ua: float = 9.0  # the operating point the K2 calibration stands for

    def efficiency(self, bias_ua: float) -> float:
        if not 0.0 <= bias_ua < self.i_switch_ua:
            return 0.0
        return self.eta_max / (1.0 + math.exp(-(bias_ua - self.i_50_ua) / self.width_ua))

    def dark_rate_hz(self, bias_ua: float) -> float:
        if not 0.0 <= bias_ua < self.i_switch_ua:
            return 0.0
        return self.dark_ref_hz * math.exp((bias_ua - self.i_dark_ref_ua) / self.dark_slope_ua)

    def relative_efficiency(self, bias_ua: float) -> float:
        """eta_det(I) / eta_det(I_nom): the factor on the calibrated end-to-end efficiency."""
        return self.efficiency(bias_ua) / self.efficiency(self.nominal_bias_ua)


#: the detector model of the simulated bench (assumed parameters, see module docstring)
SNSPD = Snspd()


def transmittance(attenuation_db: float) -> float:
    """10^(-A/10); A = inf (shutter closed) gives 0."""
    if attenuation_db < 0 or math.isnan(attenuation_db):
        raise ValueError(f"attenuation must be >= 0 dB, got {attenuation_db}")
    return 0.0 if math.isinf(attenuation_db) else fibre.db_to_transmittance(attenuation_db)


def arm_arrival_probability(length_km: float, intermediate_nodes: int = 0,
                            attenuation_db: float = 0.0) -> float:
    """Arrival probability of a photon on a path of the loss budget (:mod:`hwctl.physics.loss`)
    with a VOA of ``attenuation_db`` in it: 10^(-(path_loss_db + A)/10)."""
    if math.isinf(attenuation_db):
        return 0.0
    return fibre.db_to_transmittance(loss.path_loss_db(length_km, intermediate_nodes)
                                     + attenuation_db)


def herald_probability(p_photon: float, dark_prob: float) -> float:
    """Probability that exactly one of the two detectors clicks in one attempt, from the one
    detector model of the twin (:func:`hwctl.physics.heralding.outcome_probs`)."""
    _, only0, only1, _ = heralding.outcome_probs(p_photon, dark_prob)
    return only0 + only1


@dataclass(frozen=True, slots=True)
class LinkPhysics:
    """The twin's per-attempt physics for one link, with the figures it came from."""

    p_photon: float  # probability a heralding photon is detected (TwinConfig.p_photon)
    dark_prob: float  # dark click per detector per window (TwinConfig.dark_prob)
    eta_a: float  # end-to-end efficiency of arm A (incl. VOA and detector)
    eta_b: float
    detector_efficiency: float  # eta_det at the bias (SNSPD model), 1.0-relative if no bias given
    dark_rate_hz: float

    @property
    def herald_probability(self) -> float:
        return herald_probability(self.p_photon, self.dark_prob)


def link_physics(fidelity: float, attenuation_db: tuple[float, float] = (0.0, 0.0),
                 bias_current_ua: float | None = None, *, detector: Snspd = SNSPD,
                 window_s: float = heralding.DETECTION_WINDOW,
                 eta: float | None = None) -> LinkPhysics:
    """Per-attempt physics of a single-click link whose two arms have VOAs at ``attenuation_db``
    (dB, arm A and arm B) and whose station detectors are biased at ``bias_current_ua``
    (None: the detector at its calibrated operating point and no dark counts, the twin's default).
    ``eta``: end-to-end efficiency at 0 dB and nominal bias (default: the K2 calibration)."""
    alpha = heralding.bright_state_population(fidelity)
    eta0 = heralding.ETA if eta is None else eta
    if bias_current_ua is None:
        rel, eff, dark_hz = 1.0, detector.efficiency(detector.nominal_bias_ua), 0.0
    else:
        rel = detector.relative_efficiency(bias_current_ua)
        eff, dark_hz = detector.efficiency(bias_current_ua), detector.dark_rate_hz(bias_current_ua)
    eta_a = eta0 * transmittance(attenuation_db[0]) * rel
    eta_b = eta0 * transmittance(attenuation_db[1]) * rel
    p = alpha * (eta_a + eta_b)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"photon detection probability {p} out of [0, 1]")
    d = -math.expm1(-dark_hz * window_s)
    return LinkPhysics(p, d, eta_a, eta_b, eff, dark_hz)
