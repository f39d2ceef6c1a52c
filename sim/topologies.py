"""Topologies of the ESP paper (Fig. 5) and user-supplied graphs.

Names: ``NxM`` Manhattan grids, ``Kn`` complete, ``Km,n`` complete bipartite (``K1,n`` = star),
``Fn`` friendship graph (n triangles sharing one vertex), ``Wn`` wheel on n vertices (hub + cycle
of n-1), ``Cn`` cycle. Nodes are relabelled A, B, C, ... in networkx's node order (row-major for
grids, so the 3x3 grid is A B C / D E F / G H I as in Fig. 4); graphs of more than 26 nodes are
labelled N0, N1, ... ``--edges A-B,B-C`` or a file with one ``u v`` pair per line gives any other
graph.

Random graphs, for networks far larger than the paper's (docs/esp-scale.md):

- ``ER:n:k[:seed]`` Erdős-Rényi G(n, p) with mean degree k (p = k / (n - 1)).
- ``WAX:n:k[:seed]`` Waxman: n nodes uniform in the unit square, edge (u, v) with probability
  beta * exp(-d(u, v) / (alpha * L)), alpha = 0.15, L the largest distance between two nodes, and
  beta chosen from the drawn positions so that the expected mean degree is k. Every edge gets a
  fibre length proportional to its Euclidean length, scaled so the mean link is 2 km (Table IV).

Both use their own numpy generator seeded with ``seed`` (default 1), so a name always gives the
same graph. Components left disconnected are joined to the largest one by one edge each (from the
component's first node to a node of the largest component drawn with the same generator), so a
graph of n nodes has n nodes and one component.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np

from hwctl.errors import UserError
from hwctl.physics import heralding

#: the 14 topologies of ESP paper Table V / Fig. 5, in the paper's order
PAPER_TOPOLOGIES = ["2x2", "2x3", "3x3", "K2", "K3", "K4", "K2,3", "K1,3", "K1,4",
                    "F2", "F3", "W6", "C5", "C6"]


#: Waxman distance-decay parameter alpha (fraction of the largest distance)
WAXMAN_ALPHA = 0.15
#: largest named topology or edge list (nodes, edges): the simulator's work grows with both, and
#: a typo such as 3000x3000 must be refused, not run for hours
MAX_NODES = 5000
MAX_EDGES = 50_000


def _size_check(name: str, nodes: int, edges: int, min_nodes: int, form: str) -> None:
    if nodes < min_nodes:
        raise UserError(f"topology {name!r}: {form} needs at least {min_nodes} nodes")
    if nodes > MAX_NODES or edges > MAX_EDGES:
        raise UserError(f"topology {name!r} is too large ({nodes} nodes, {edges} edges; at most "
                        f"{MAX_NODES} nodes and {MAX_EDGES} edges)")


def _letters(n: int) -> list[str]:
    letters = string.ascii_uppercase
    if n <= 26:
        return list(letters[:n])
    return [f"N{i}" for i in range(n)]


def relabel(g: nx.Graph) -> nx.Graph:
    nodes = list(g.nodes)
    return nx.relabel_nodes(g, dict(zip(nodes, _letters(len(nodes)), strict=True)))


def canonical(name: str) -> str:
    """The canonical spelling of a topology name (``2X2`` -> ``2x2``, ``k2`` -> ``K2``,
    ``er:100:4`` -> ``ER:100:4``): run keys, tables and reports name a topology one way. A name
    that is no topology comes back as given (:func:`by_name` says why)."""
    s = name.strip().replace(" ", "")
    if m := re.fullmatch(r"(\d{1,6})[xX](\d{1,6})", s, re.ASCII):
        return f"{int(m[1])}x{int(m[2])}"
    if m := re.fullmatch(r"([kK])(\d{1,6}),(\d{1,6})", s, re.ASCII):
        return f"K{int(m[2])},{int(m[3])}"
    if m := re.fullmatch(r"([kKfFwWcC])(\d{1,6})", s, re.ASCII):
        return f"{m[1].upper()}{int(m[2])}"
    if m := re.fullmatch(r"(er|wax):(\d{1,6}):(\d{1,6}(?:\.\d*)?)(?::(\d{1,18}))?", s,
                         re.ASCII | re.IGNORECASE):
        return (f"{m[1].upper()}:{int(m[2])}:{float(m[3]):g}"
                + (f":{int(m[4])}" if m[4] is not None else ""))
    return name


def by_name(name: str) -> nx.Graph:
    """Build a named topology; raises UserError with the list of valid forms."""
    s = name.strip().replace(" ", "")
    if m := re.fullmatch(r"(\d{1,6})[xX](\d{1,6})", s, re.ASCII):
        rows, cols = int(m[1]), int(m[2])
        if rows < 1 or cols < 1:
            raise UserError(f"topology {name!r}: an NxM grid needs N, M >= 1")
        _size_check(name, rows * cols, rows * (cols - 1) + cols * (rows - 1), 2, "NxM")
        grid = nx.grid_2d_graph(rows, cols)
        names = _letters(rows * cols)
        return nx.relabel_nodes(grid, {(r, c): names[r * cols + c] for r, c in grid.nodes})
    elif m := re.fullmatch(r"[kK](\d{1,6}),(\d{1,6})", s, re.ASCII):
        a, b = int(m[1]), int(m[2])
        if a < 1 or b < 1:
            raise UserError(f"topology {name!r}: Km,n needs m, n >= 1")
        _size_check(name, a + b, a * b, 2, "Km,n")
        g = nx.complete_bipartite_graph(a, b)
    elif m := re.fullmatch(r"[kK](\d{1,6})", s, re.ASCII):
        n = int(m[1])
        _size_check(name, n, n * (n - 1) // 2, 2, "Kn")
        g = nx.complete_graph(n)
    elif m := re.fullmatch(r"[fF](\d{1,6})", s, re.ASCII):
        n = int(m[1])
        _size_check(name, 2 * n + 1, 3 * n, 3, "Fn (n >= 1 triangles)")
        g = nx.Graph()
        for k in range(n):
            a, b = 1 + 2 * k, 2 + 2 * k
            g.add_edges_from([(0, a), (0, b), (a, b)])
    elif m := re.fullmatch(r"[wW](\d{1,6})", s, re.ASCII):
        n = int(m[1])
        _size_check(name, n, 2 * (n - 1), 4, "Wn")
        g = nx.wheel_graph(n)
    elif m := re.fullmatch(r"[cC](\d{1,6})", s, re.ASCII):
        n = int(m[1])
        _size_check(name, n, n, 3, "Cn")
        g = nx.cycle_graph(n)
    elif m := re.fullmatch(r"(er|wax):(\d{1,6}):(\d{1,6}(?:\.\d*)?)(?::(\d{1,18}))?", s,
                           re.ASCII | re.IGNORECASE):
        kind, n, k = m[1].lower(), int(m[2]), float(m[3])
        seed = int(m[4]) if m[4] is not None else 1
        _size_check(name, n, int(n * k / 2), 2, f"{m[1].upper()}:n:k")
        if not 0 < k <= n - 1:
            raise UserError(f"topology {name!r}: mean degree must be in (0, n - 1]")
        g = erdos_renyi(n, k, seed) if kind == "er" else waxman(n, k, seed)
        return relabel(g)
    else:
        raise UserError(
            f"unknown topology {name!r}: use NxM, Kn, Km,n, Fn, Wn, Cn "
            f"(paper: {', '.join(PAPER_TOPOLOGIES)}), ER:n:k[:seed], WAX:n:k[:seed], or --edges"
        )
    if g.number_of_edges() == 0:
        raise UserError(f"topology {name!r} has no edges")
    return relabel(g)


def from_edges(spec: str) -> nx.Graph:
    """``A-B,B-C`` inline, or a path to a file with one ``u v`` (or ``u-v``, ``u,v``) pair per
    line; ``#`` starts a comment (a whole line or after an edge)."""
    path = Path(spec)
    if path.is_dir():
        raise UserError(f"edge file {spec!r} is a directory, expected a file with one 'u v' per "
                        "line (or write the edges inline: A-B,B-C)")
    if path.is_file():
        if path.stat().st_size > 64 * MAX_EDGES:
            raise UserError(f"edge file {spec!r} is too large (at most {MAX_EDGES} edges)")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read edge file {spec!r}: {exc}") from None
        pairs = []
        for i, raw in enumerate(text.splitlines(), 1):
            ln = raw.split("#", 1)[0].strip()
            if not ln:
                continue
            p = ln.replace("-", " ").replace(",", " ").split()
            if len(p) != 2:  # named by its number and as written
                raise UserError(f"edge file {spec!r} line {i}: {ln!r}: expected two node names "
                                "'u v' (or u-v, u,v)")
            if p[0] == p[1]:
                raise UserError(f"edge file {spec!r} line {i}: {ln!r}: a node linked to itself")
            pairs.append(p)
    elif "/" in spec or path.suffix in (".txt", ".edges", ".csv"):  # names never have a '/'
        raise UserError(f"edge file {spec!r} not found (or write the edges inline: A-B,B-C)")
    else:
        pairs = [p.split("-") for p in spec.split(",") if p.strip()]
    g = nx.Graph()
    for p in pairs:
        if len(p) != 2 or p[0] == p[1]:
            raise UserError(f"bad edge {'-'.join(p)!r} in {spec!r}: expected u-v with u != v")
        if not p[0].strip() or not p[1].strip():
            raise UserError(f"bad edge {'-'.join(p)!r} in {spec!r}: empty node name")
        g.add_edge(p[0].strip(), p[1].strip())
    if g.number_of_nodes() > MAX_NODES or g.number_of_edges() > MAX_EDGES:
        raise UserError(f"graph {spec[:40]!r} is too large (at most {MAX_NODES} nodes and "
                        f"{MAX_EDGES} edges)")
    if g.number_of_edges() == 0:
        raise UserError(f"no edges in {spec!r}")
    return g


def matching_number(g: nx.Graph) -> int:
    """nu(G): size of a maximum matching (ESP paper §VI-E)."""
    return len(nx.max_weight_matching(g, maxcardinality=True))


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    iu, ju = np.triu_indices(n, k=1)
    return iu, ju


def _join_components(g: nx.Graph, rng: np.random.Generator,
                     length: Callable[[int, int], float] | None) -> None:
    """Join every component to the largest one by one edge (module docstring)."""
    comps = sorted((sorted(c) for c in nx.connected_components(g)), key=lambda c: (-len(c), c[0]))
    giant = comps[0]
    for comp in comps[1:]:
        u, v = comp[0], giant[int(rng.integers(len(giant)))]
        if length is None:
            g.add_edge(u, v)
        else:
            g.add_edge(u, v, length_m=length(u, v))


def erdos_renyi(n: int, mean_degree: float, seed: int = 1) -> nx.Graph:
    """G(n, p) with p = k / (n - 1), joined into one component (module docstring)."""
    rng = np.random.default_rng(seed)
    iu, ju = _pairs(n)
    keep = rng.random(iu.size) < mean_degree / (n - 1)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(iu[keep].tolist(), ju[keep].tolist(), strict=True))
    _join_components(g, rng, None)
    return g


def waxman(n: int, mean_degree: float, seed: int = 1, alpha: float = WAXMAN_ALPHA,
           mean_link_m: float = heralding.LINK_LENGTH_M) -> nx.Graph:
    """Waxman graph with expected mean degree k and fibre lengths (module docstring)."""
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 2))
    iu, ju = _pairs(n)
    d = np.hypot(*(pos[iu] - pos[ju]).T)
    w = np.exp(-d / (alpha * d.max()))
    beta = mean_degree * n / 2 / w.sum()
    if beta > 1.0:
        raise UserError(f"WAX:{n}:{mean_degree:g}: mean degree too high for alpha = {alpha} "
                        f"(beta would be {beta:.2f} > 1)")
    keep = rng.random(iu.size) < beta * w
    scale = mean_link_m / float(d[keep].mean()) if keep.any() else mean_link_m

    def length(u: int, v: int) -> float:
        return float(np.hypot(*(pos[u] - pos[v]))) * scale

    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from((int(u), int(v), {"length_m": float(dd) * scale})
                     for u, v, dd in zip(iu[keep], ju[keep], d[keep], strict=True))
    _join_components(g, rng, length)
    return g
