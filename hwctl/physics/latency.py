"""Metro IP latency model for the classical verification channel (pair-verification paper IV).

The paper fitted a probability density to Ookla's open fixed-broadband data for the Greater Dublin
Area, Q1 2024 (paper ref. [25]), and reads it as "typical metro latency about 10 ms, occasionally
20-30 ms" (paper V). The raw tiles are not shipped with hwctl, so the default model is a
*shifted log-normal* whose parameters are chosen to reproduce exactly those two statements:

    L = loc + X,   ln X ~ Normal(mu, sigma)

* ``loc`` = 2 ms: a floor for propagation + switching in a metro network (no latency below it);
* median of L = 10 ms  ->  mu = ln(8 ms);
* 95th percentile of L = 25 ms  ->  sigma = ln(23/8) / 1.6449 = 0.642.

Why a shifted log-normal: Internet latency samples are positive with a hard physical floor and a
long right tail from queueing; the log-normal is the usual two-parameter fit for such per-path
latency and per-tile mean latency (the Ookla tiles report per-tile averages, which are further
log-normal-like by aggregation), it has a closed-form maximum-likelihood fit (see :meth:`fit`), and
it is cheap to sample. A gamma fit gives a similar body but a lighter tail; the tail is what
decides the short-T2 memories, so we keep the heavier one.

The Ookla figure is an idle *round-trip* (ping) latency; like the paper we use it directly as the
one-way classical delay t_lat of the verification message, which is conservative by up to 2x.

Refit with real samples: ``LatencyModel.fit(samples_s, loc=...)`` (MLE of mu, sigma given loc).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_Z95 = 1.6448536269514722  # standard-normal 95th percentile


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Shifted log-normal one-way latency in seconds: L = loc + exp(Normal(mu, sigma))."""

    loc: float = 2e-3
    mu: float = math.log(8e-3)
    sigma: float = math.log(23.0 / 8.0) / _Z95

    def __post_init__(self) -> None:
        if self.loc < 0 or self.sigma <= 0:
            raise ValueError("need loc >= 0 and sigma > 0")

    @classmethod
    def from_median_p95(cls, median: float, p95: float, loc: float = 2e-3) -> LatencyModel:
        """Parameters from a median and a 95th percentile (both s, both > loc)."""
        if not loc < median < p95:
            raise ValueError("need loc < median < p95")
        mu = math.log(median - loc)
        sigma = (math.log(p95 - loc) - mu) / _Z95
        return cls(loc, mu, sigma)

    @classmethod
    def fit(cls, samples: np.ndarray, loc: float = 0.0) -> LatencyModel:
        """Maximum-likelihood fit of mu, sigma to latency samples (s) for a given floor ``loc``."""
        x = np.asarray(samples, dtype=float) - loc
        if x.size < 2 or np.any(x <= 0):
            raise ValueError("need >= 2 samples, all above loc")
        lx = np.log(x)
        return cls(loc, float(lx.mean()), float(lx.std()))

    @property
    def median(self) -> float:
        return self.loc + math.exp(self.mu)

    @property
    def mean(self) -> float:
        return self.loc + math.exp(self.mu + 0.5 * self.sigma**2)

    def quantile(self, q: float) -> float:
        """Inverse CDF at probability q (0 < q < 1)."""
        from statistics import NormalDist

        return self.loc + math.exp(self.mu + self.sigma * NormalDist().inv_cdf(q))

    def pdf(self, t: np.ndarray) -> np.ndarray:
        """Density (1/s) at latencies t (s); 0 at or below loc."""
        t = np.asarray(t, dtype=float)
        x = t - self.loc
        out = np.zeros_like(t)
        m = x > 0
        lx = np.log(x[m])
        out[m] = np.exp(-((lx - self.mu) ** 2) / (2 * self.sigma**2)) / (
            x[m] * self.sigma * math.sqrt(2 * math.pi)
        )
        return out

    def cdf(self, t: np.ndarray) -> np.ndarray:
        """P(L <= t)."""
        from math import erf

        t = np.asarray(t, dtype=float)
        x = t - self.loc
        out = np.zeros_like(t)
        m = x > 0
        z = (np.log(x[m]) - self.mu) / (self.sigma * math.sqrt(2))
        out[m] = 0.5 * (1 + np.vectorize(erf)(z))
        return out

    def sample(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray | float:
        """Draw latencies (s)."""
        return self.loc + rng.lognormal(self.mu, self.sigma, size)


#: The default Dublin-metro model (median 10 ms, p95 25 ms, floor 2 ms).
DUBLIN_Q1_2024 = LatencyModel()
