"""Single-click heralded entanglement between adjacent nodes (ESP paper §II-B, Table IV).

Model
-----
Each node prepares its communication qubit in sqrt(alpha)|0> + sqrt(1-alpha)|1> (alpha = bright-state
population) and emits a photon towards the heralding station H at L/2. With end-to-end detection
efficiency eta (emission, fibre, coupling, detector), a single click at H heralds a Bell pair:

    p_success = 2 * alpha * eta            (one attempt; valid for alpha*eta << 1)
    F        ~= 1 - alpha                  (the two-photon term is the infidelity)

so a request for fidelity F sets alpha = 1 - F (Hermans et al., NJP 25 013011 (2023), the ESP
paper's ref. [14]; docs/esp.md "Physics and the one calibration"). One attempt per physical-layer cycle; the cycle is uniform in
[450, 550] ns (Table IV), drawn per attempt. The number of attempts to the first success is
geometric, so a request of p pairs needs a sum of p geometric numbers of attempts; the simulator
samples that sum directly (one event per request) instead of simulating every 500 ns cycle. The last
herald reaches the nodes one photon flight (L/2) plus one herald flight (L/2) after its attempt.

Calibration (the only fitted number)
------------------------------------
eta is fixed once from the K2 row of ESP paper Table V at F = 0.75 (18.82 ms DQP, 18.75 ms ESP mean
request latency). On K2 there is one edge and one request at a time, so the mean latency is pure
generation time plus the control-plane handshake:

    L_K2 = E[|R|] * E[cycle] / p + t_overhead,   E[|R|] = 3.5 (|R| uniform in 1..6)

with t_overhead = 3 one-way control delays (SYN, SYNACK, ACK before t_min) + the final photon and
herald flight (L/v). Solving for p with L_K2 the mean of the two table entries gives eta below.
Nothing else is fitted: every other topology comes out of the protocols.
"""

from __future__ import annotations

import math
import random

from hwctl.physics import fibre

CYCLE_MIN = 450e-9  # s, Table IV
CYCLE_MAX = 550e-9  # s, Table IV
CYCLE_MEAN = (CYCLE_MIN + CYCLE_MAX) / 2
CYCLE_VAR = (CYCLE_MAX - CYCLE_MIN) ** 2 / 12
DETECTION_WINDOW = 20e-9  # s, Table IV
LINK_LENGTH_M = 2000.0  # Table IV
PAIRS_MIN, PAIRS_MAX = 1, 6  # Table IV, request size
QUBITS_PER_NODE = 6  # Table IV
MEAN_BACKOFF = 0.050  # s, Table IV "request arrival period"

#: ESP paper Table V, K2 row, F = 0.75: mean request latency (s) per protocol.
K2_CALIBRATION = {"fidelity": 0.75, "dqp": 18.82e-3, "esp": 18.75e-3}
#: Same row, mean jitter (s): not used for calibration, compared against in tests/docs.
K2_JITTER = {"dqp": 13.89e-3, "esp": 13.47e-3}


def bright_state_population(fidelity: float) -> float:
    """alpha = 1 - F for the single-click scheme."""
    if not 0.5 <= fidelity < 1.0:
        raise ValueError(f"fidelity must be in [0.5, 1), got {fidelity}")
    return 1.0 - fidelity


def success_probability(fidelity: float, eta: float | None = None) -> float:
    """Per-attempt herald probability p = 2 * alpha * eta."""
    eta = ETA if eta is None else eta
    p = 2.0 * bright_state_population(fidelity) * eta
    if not 0.0 < p <= 1.0:
        raise ValueError(f"success probability {p} out of (0, 1] (eta={eta}, F={fidelity})")
    return p


def control_overhead(link_length_m: float = LINK_LENGTH_M) -> float:
    """ESP handshake (SYN, SYNACK, ACK: 3 one-way delays) + final photon/herald flight (L/v)."""
    d = fibre.delay(link_length_m)
    return 3 * d + d


def herald_flight(link_length_m: float = LINK_LENGTH_M) -> float:
    """Photon to the station at L/2 plus herald back to the node: L / v."""
    return fibre.delay(link_length_m)


def calibrate_eta(mean_latency: float, fidelity: float,
                  mean_pairs: float = (PAIRS_MIN + PAIRS_MAX) / 2,
                  overhead: float | None = None) -> float:
    """Invert L = E|R| * E[cycle] / p + overhead for eta (see module docstring)."""
    overhead = control_overhead() if overhead is None else overhead
    gen = mean_latency - overhead
    if gen <= 0:
        raise ValueError("calibration latency must exceed the control overhead")
    p = mean_pairs * CYCLE_MEAN / gen
    return p / (2.0 * bright_state_population(fidelity))


#: End-to-end detection efficiency, calibrated once from the K2 row (module docstring).
ETA = calibrate_eta((K2_CALIBRATION["dqp"] + K2_CALIBRATION["esp"]) / 2, K2_CALIBRATION["fidelity"])


def sample_attempts(rng: random.Random, pairs: int, p: float) -> int:
    """Total attempts for ``pairs`` successes: a sum of geometric numbers (inverse transform)."""
    if p >= 1.0:
        return pairs
    log_q = math.log1p(-p)
    total = 0
    for _ in range(pairs):
        u = 1.0 - rng.random()  # (0, 1]
        total += 1 + int(math.log(u) / log_q)
    return total


def sample_cycles_duration(rng: random.Random, attempts: int) -> float:
    """Duration of ``attempts`` cycles, each uniform in [450, 550] ns.

    Exact sum for up to 32 cycles; beyond that the normal limit of the sum (mean n*500 ns,
    variance n*(100 ns)^2/12), whose error is far below one cycle.
    """
    if attempts <= 32:
        return sum(rng.uniform(CYCLE_MIN, CYCLE_MAX) for _ in range(attempts))
    return attempts * CYCLE_MEAN + math.sqrt(attempts * CYCLE_VAR) * rng.gauss(0.0, 1.0)


def sample_generation_time(rng: random.Random, pairs: int, fidelity: float,
                           link_length_m: float = LINK_LENGTH_M,
                           eta: float | None = None) -> tuple[float, int]:
    """Time from t_min until the last of ``pairs`` heralds reaches the nodes, and attempts used."""
    attempts = sample_attempts(rng, pairs, success_probability(fidelity, eta))
    return sample_cycles_duration(rng, attempts) + herald_flight(link_length_m), attempts


def mean_generation_time(pairs: float, fidelity: float, eta: float | None = None,
                         link_length_m: float = LINK_LENGTH_M) -> float:
    """Analytic mean of :func:`sample_generation_time`."""
    return pairs * CYCLE_MEAN / success_probability(fidelity, eta) + herald_flight(link_length_m)


def outcome_probs(p_photon: float, dark_prob: float) -> tuple[float, float, float, float]:
    """Detector outcome of one detection window at the heralding station (single-click scheme,
    ESP paper §II-B): a heralding photon reaches one of the two detectors with probability
    ``p_photon`` (~ 2*alpha*eta, :func:`success_probability`), equally likely either one; each
    detector adds a dark click with probability ``dark_prob`` per window. Returns P(no click),
    P(only detector 0), P(only detector 1), P(both). Exactly one click is a herald (the detector
    names the Bell state: 0 = Psi+, 1 = Psi-); a dark-count herald is a false herald, as on
    hardware. The one place the twin's node and station models take their detector physics from."""
    p, d = p_photon, dark_prob
    if not (0.0 <= p <= 1.0 and 0.0 <= d <= 1.0):
        raise ValueError(f"p_photon and dark_prob must be in [0, 1] (got {p}, {d})")
    only = 0.5 * p * (1 - d) + (1 - p) * d * (1 - d)
    both = p * d + (1 - p) * d * d
    none = (1 - p) * (1 - d) ** 2
    return none, only, only, both
