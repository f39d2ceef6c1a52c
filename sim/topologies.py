"""Topologies of the ESP paper (Fig. 5) and user-supplied graphs.

Names: ``NxM`` Manhattan grids, ``Kn`` complete, ``Km,n`` complete bipartite (``K1,n`` = star),
``Fn`` friendship graph (n triangles sharing one vertex), ``Wn`` wheel on n vertices (hub + cycle
of n-1), ``Cn`` cycle. Nodes are relabelled A, B, C, ... in networkx's node order (row-major for
grids, so the 3x3 grid is A B C / D E F / G H I as in Fig. 4). ``--edges A-B,B-C`` or a file with
one ``u v`` pair per line gives any other graph.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import networkx as nx

from hwctl.errors import UserError

#: the 14 topologies of ESP paper Table V / Fig. 5, in the paper's order
PAPER_TOPOLOGIES = ["2x2", "2x3", "3x3", "K2", "K3", "K4", "K2,3", "K1,3", "K1,4",
                    "F2", "F3", "W6", "C5", "C6"]


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
    else:
        raise UserError(
            f"unknown topology {name!r}: use NxM, Kn, Km,n, Fn, Wn, Cn "
            f"(paper: {', '.join(PAPER_TOPOLOGIES)}), or --edges"
        )
    if g.number_of_edges() == 0:
        raise UserError(f"topology {name!r} has no edges")
    return relabel(g)


def from_edges(spec: str) -> nx.Graph:
    """``A-B,B-C`` inline, or a path to a file with one ``u v`` (or ``u-v``) pair per line."""
    path = Path(spec)
    if path.is_file():
        if path.stat().st_size > 64 * MAX_EDGES:
            raise UserError(f"edge file {spec!r} is too large (at most {MAX_EDGES} edges)")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read edge file {spec!r}: {exc}") from None
        pairs = [ln.replace("-", " ").split() for ln in text.splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
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
