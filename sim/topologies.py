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
    if m := re.fullmatch(r"(\d+)[xX](\d+)", s):
        rows, cols = int(m[1]), int(m[2])
        grid = nx.grid_2d_graph(rows, cols)
        names = _letters(rows * cols)
        return nx.relabel_nodes(grid, {(r, c): names[r * cols + c] for r, c in grid.nodes})
    elif m := re.fullmatch(r"[kK](\d+),(\d+)", s):
        g = nx.complete_bipartite_graph(int(m[1]), int(m[2]))
    elif m := re.fullmatch(r"[kK](\d+)", s):
        g = nx.complete_graph(int(m[1]))
    elif m := re.fullmatch(r"[fF](\d+)", s):
        n = int(m[1])
        g = nx.Graph()
        for k in range(n):
            a, b = 1 + 2 * k, 2 + 2 * k
            g.add_edges_from([(0, a), (0, b), (a, b)])
    elif m := re.fullmatch(r"[wW](\d+)", s):
        g = nx.wheel_graph(int(m[1]))
    elif m := re.fullmatch(r"[cC](\d+)", s):
        g = nx.cycle_graph(int(m[1]))
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
    if path.exists():
        text = path.read_text()
        pairs = [ln.replace("-", " ").split() for ln in text.splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
    else:
        pairs = [p.split("-") for p in spec.split(",") if p.strip()]
    g = nx.Graph()
    for p in pairs:
        if len(p) != 2 or p[0] == p[1]:
            raise UserError(f"bad edge {'-'.join(p)!r} in {spec!r}: expected u-v with u != v")
        g.add_edge(p[0].strip(), p[1].strip())
    if g.number_of_edges() == 0:
        raise UserError(f"no edges in {spec!r}")
    return g


def matching_number(g: nx.Graph) -> int:
    """nu(G): size of a maximum matching (ESP paper §VI-E)."""
    return len(nx.max_weight_matching(g, maxcardinality=True))
