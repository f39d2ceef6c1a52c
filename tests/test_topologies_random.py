"""Random topologies for networks beyond the paper's (sim/topologies.py): reproducible, n nodes in
one component, the requested mean degree, Waxman link lengths with a 2 km mean."""

from __future__ import annotations

import networkx as nx
import pytest

from hwctl.errors import UserError
from hwctl.sim import topologies


@pytest.mark.parametrize("kind", ["ER", "WAX"])
def test_random_graph_is_reproducible_connected_with_mean_degree(kind: str) -> None:
    g = topologies.by_name(f"{kind}:400:6")
    again = topologies.by_name(f"{kind.lower()}:400:6:1")
    other = topologies.by_name(f"{kind}:400:6:2")
    assert sorted(g.edges) == sorted(again.edges) and sorted(g.edges) != sorted(other.edges)
    assert g.number_of_nodes() == 400 and nx.is_connected(g)
    mean_deg = 2 * g.number_of_edges() / 400
    assert 5.4 < mean_deg < 6.6  # expectation 6 (+ a few joining edges); sd about 0.17
    assert list(g.nodes)[:2] == ["N0", "N1"]


def test_waxman_links_have_lengths_with_the_tables_mean() -> None:
    g = topologies.by_name("WAX:300:4")
    lengths = [d["length_m"] for _, _, d in g.edges(data=True)]
    assert len(lengths) == g.number_of_edges()
    assert sum(lengths) / len(lengths) == pytest.approx(2000.0, rel=0.05)
    assert min(lengths) < 1000.0 < 3000.0 < max(lengths)  # short-range bias, but a spread


def test_grid_10x10() -> None:
    g = topologies.by_name("10x10")
    assert g.number_of_nodes() == 100 and g.number_of_edges() == 180
    assert topologies.matching_number(g) == 50


@pytest.mark.parametrize("name,needle", [
    ("ER:10:20", "mean degree"),
    ("ER:1:1", "at least 2"),
    ("WAX:50:40", "too high"),
    ("ER:9000000:4", "unknown topology"),
])
def test_bad_random_graphs_are_user_errors(name: str, needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        topologies.by_name(name)
