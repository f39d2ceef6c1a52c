"""A provable lower bound on the mean request latency of *any* scheduler under the ESP paper's
workload (§VI-B), for checking ESP against something that is a bound (docs/esp-scale.md has the
proof; the centralized greedy scheduler of :mod:`hwctl.sim.network` is not one).

Setting. Every edge e runs a closed loop: back-off (exponential, mean beta = 50 ms), one request of
|R| uniform in 1..6 pairs, wait until it completes, back-off, ... A request's busy time B (PL_start to
PL_finish, eq. 7) has a law fixed by the physics alone: mean g_e = E|R| E[cycle] / p(F) + L_e / v
(:func:`hwctl.physics.heralding.mean_generation_time`), whatever the scheduler does. Invariant (1)
of §IV: at any instant the edges that are generating form a matching.

Long-run quantities per edge: request rate x_e and mean latency Lbar_e. Renewal (each cycle of an
edge is one back-off plus one latency): x_e = 1 / (Lbar_e + beta). The request-weighted mean latency
is then

    Lbar = sum_e x_e Lbar_e / sum_e x_e = |E| / X - beta,     X = sum_e x_e,

decreasing in the total request rate X. Constraints every scheduler obeys (long-run averages, for
schedulers that do not look at |R|, as ESP, DQP and greedy do not):

- busy fraction at a node: sum_{e at v} g_e x_e <= 1 (one generation at a time, invariant (1));
- odd sets S (Edmonds): sum_{e inside S} g_e x_e <= (|S| - 1) / 2, in particular the whole graph:
  sum_e g_e x_e <= nu(G), the matching number;
- an edge's latency is at least its busy time: Lbar_e >= g_e, i.e. x_e <= 1 / (g_e + beta).

So X <= X* = max { sum x_e : the constraints above } (a linear programme) and

    Lbar >= |E| / X* - beta.

Dropping constraints only raises X*, so the bound stays valid with any subset of the odd-set
constraints: we use every odd set for graphs of up to :data:`ODD_SET_MAX_NODES` nodes (then the
constraints describe the matching polytope exactly) and the whole graph's (nu) otherwise. With a
uniform g and only the nu and per-edge constraints, X* = min(|E| / (g + beta), nu / g), i.e. the
closed form ``Lbar >= max(g, |E| g / nu - beta)``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import networkx as nx
import numpy as np

from hwctl.physics import heralding

#: every odd node set enters the LP for graphs up to this size (2^n subsets)
ODD_SET_MAX_NODES = 12


@dataclass(frozen=True)
class LatencyBound:
    """Lower bound on the long-run mean request latency (seconds) and its ingredients."""

    latency_s: float
    max_request_rate: float  # X*, requests per second over the whole network
    mean_busy_s: float  # mean of g_e over edges
    closed_form_s: float  # max(g, |E| g / nu - beta) with the mean g
    matching_number: int


def _g(graph: nx.Graph, fidelity: float, link_length_m: float, eta: float | None) -> np.ndarray:
    pairs = (heralding.PAIRS_MIN + heralding.PAIRS_MAX) / 2
    return np.array([heralding.mean_generation_time(pairs, fidelity, eta,
                                                    d.get("length_m", link_length_m))
                     for _, _, d in graph.edges(data=True)])


def latency_lower_bound(graph: nx.Graph, fidelity: float, *,
                        mean_backoff: float = heralding.MEAN_BACKOFF,
                        link_length_m: float = heralding.LINK_LENGTH_M,
                        eta: float | None = None,
                        matching_number: int | None = None) -> LatencyBound:
    """Solve the LP of the module docstring and return the bound."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    edges = list(graph.edges)
    m = len(edges)
    if m == 0:
        raise ValueError("graph has no edges")
    g = _g(graph, fidelity, link_length_m, eta)
    nu = (len(nx.max_weight_matching(graph, maxcardinality=True)) if matching_number is None
          else matching_number)
    index = {n: k for k, n in enumerate(graph.nodes)}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    rhs: list[float] = []
    for k, (u, v) in enumerate(edges):  # node constraints
        for node in (u, v):
            rows.append(index[node])
            cols.append(k)
            vals.append(g[k])
    rhs.extend([1.0] * graph.number_of_nodes())
    r = graph.number_of_nodes()
    odd_sets: list[tuple[int, ...]] = []
    n = graph.number_of_nodes()
    if n <= ODD_SET_MAX_NODES:
        odd_sets = [s for size in range(3, n + 1, 2) for s in itertools.combinations(range(n), size)]
    else:
        odd_sets = [tuple(range(n))]  # whole graph: sum g x <= nu
    for s in odd_sets:
        members = set(s)
        inside = [k for k, (u, v) in enumerate(edges) if index[u] in members and index[v] in members]
        if not inside:
            continue
        limit = float(nu) if len(s) == n else (len(s) - 1) / 2
        rows.extend([r] * len(inside))
        cols.extend(inside)
        vals.extend(g[k] for k in inside)
        rhs.append(limit)
        r += 1
    a_ub = coo_matrix((vals, (rows, cols)), shape=(r, m)).tocsr()
    caps = 1.0 / (g + mean_backoff)
    res = linprog(-np.ones(m), A_ub=a_ub, b_ub=np.array(rhs),
                  bounds=list(zip(np.zeros(m), caps, strict=True)), method="highs")
    if not res.success:  # pragma: no cover - the LP is always feasible (x = 0) and bounded
        raise RuntimeError(f"bound LP failed: {res.message}")
    x_star = float(-res.fun)
    gbar = float(g.mean())
    closed = max(gbar, m * gbar / nu - mean_backoff)
    return LatencyBound(m / x_star - mean_backoff, x_star, gbar, closed, nu)
