"""Loss budget of a midpoint-source entanglement-distribution path (pair-verification paper IV).

Paper IV (after Bali et al., ICC 2024, paper ref. [24]): each intermediate node costs 8 dB, the
source node and the memory node cost 4 dB each, fibre costs 0.2 dB/km (from
:mod:`hwctl.physics.fibre`). One photon of a pair reaches its memory with probability
eta = 10^(-loss_dB / 10); the two photons of a pair travel independent paths, so both arrive with
probability eta_A * eta_B (arrival of a *pair*, the upper bound of the verified-pair rate).

The paper's Fig. 1 topology is not given numerically; :data:`PATHS` holds the two destination
pairs used by the study (C-E: no intermediate node, B-D: one intermediate node on each side) with
fibre lengths chosen as metro distances. They are documented assumptions, not the paper's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwctl.physics import fibre

INTERMEDIATE_NODE_DB = 8.0
SOURCE_NODE_DB = 4.0
MEMORY_NODE_DB = 4.0


def path_loss_db(length_km: float, intermediate_nodes: int = 0) -> float:
    """Loss (dB) of one photon path: source node + memory node + intermediate nodes + fibre."""
    if intermediate_nodes < 0:
        raise ValueError("intermediate_nodes must be >= 0")
    if length_km < 0:
        raise ValueError("length_km must be >= 0")
    return (
        SOURCE_NODE_DB
        + MEMORY_NODE_DB
        + INTERMEDIATE_NODE_DB * intermediate_nodes
        + fibre.ATTENUATION_DB_PER_KM * length_km
    )


def arrival_probability(length_km: float, intermediate_nodes: int = 0) -> float:
    """Probability that one photon reaches its memory: 10^(-path_loss_db / 10)."""
    return fibre.db_to_transmittance(path_loss_db(length_km, intermediate_nodes))


@dataclass(frozen=True, slots=True)
class Path:
    """One photon path from the source to a memory node."""

    length_km: float
    intermediate_nodes: int = 0

    @property
    def loss_db(self) -> float:
        return path_loss_db(self.length_km, self.intermediate_nodes)

    @property
    def eta(self) -> float:
        return arrival_probability(self.length_km, self.intermediate_nodes)

    @property
    def delay(self) -> float:
        """One-way fibre delay (s), source to memory."""
        return fibre.delay(self.length_km * 1e3)


@dataclass(frozen=True, slots=True)
class NodePair:
    """Two memory nodes fed by one source: the pair of paths and its derived figures."""

    name: str
    a: Path
    b: Path

    @property
    def pair_arrival_probability(self) -> float:
        return self.a.eta * self.b.eta

    @property
    def skew(self) -> float:
        """|delay_A - delay_B| (s): the paper's time discrepancy from unequal channel lengths."""
        return abs(self.a.delay - self.b.delay)


#: Destination pairs of the study (assumed lengths; see module docstring).
PATHS: dict[str, NodePair] = {
    "C-E": NodePair("C-E", Path(10.0, 0), Path(12.0, 0)),
    "B-D": NodePair("B-D", Path(15.0, 1), Path(20.0, 1)),
}
