"""Light in standard single-mode fibre (SMF-28-like), the only place these constants live.

- Group index n_g = 1.468 at 1550 nm, so v = c / n_g = 2.04e8 m/s, i.e. about 4.9 us per km.
- Attenuation 0.2 dB/km (ESP paper Table IV context; pair-verification paper II: 0.2 dB/km).
"""

from __future__ import annotations

C_VACUUM = 299_792_458.0  # m/s
GROUP_INDEX = 1.468
V_FIBRE = C_VACUUM / GROUP_INDEX  # m/s
ATTENUATION_DB_PER_KM = 0.2


def delay(length_m: float) -> float:
    """One-way propagation delay in seconds over ``length_m`` metres of fibre."""
    if length_m < 0:
        raise ValueError(f"fibre length must be >= 0, got {length_m}")
    return length_m / V_FIBRE


def transmittance(length_km: float, db_per_km: float = ATTENUATION_DB_PER_KM) -> float:
    """Fraction of photons surviving ``length_km`` of fibre: 10^(-a L / 10)."""
    return db_to_transmittance(db_per_km * length_km)


def db_to_transmittance(loss_db: float) -> float:
    """Convert a loss in dB to a transmittance: 10^(-dB/10)."""
    return 10.0 ** (-loss_db / 10.0)
