"""Worst setup paths of a routed nextpnr-ecp5 design from its SDF (``--sdf``), grouped by endpoint.

nextpnr prints one critical path per clock; a timing round needs the whole list of failing
endpoints (which registers, how far over, through what). This walks the SDF's delays (cell
IOPATHs and INTERCONNECTs, the max corner, as nextpnr's own report) from every clock-to-out to
every setup check and prints, per endpoint register (bits of one vector together), the worst
arrival + setup against the period and the path that gives it.

Usage: python fpga/bench/sdf_paths.py D/w.sdf [--period NS] [--top N] [--paths K]
(``fpga/bench/hdrpath_pnr.sh`` writes D/w.sdf). Single clock: every clock-to-out starts a path.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from collections.abc import Iterator

_TOK = re.compile(r'\(|\)|"[^"]*"|[^\s()]+')
_CLOCKS = {"CLK", "WCK", "CLKI", "CLKA", "CLKB"}


def _unesc(name: str) -> str:
    return re.sub(r"\\(.)", r"\1", name)


def _tokens(text: str) -> Iterator[str]:
    for m in _TOK.finditer(text):
        yield m.group(0)


def _parse(text: str) -> list:
    """Nested lists from the SDF's parentheses."""
    stack: list[list] = [[]]
    for t in _tokens(text):
        if t == "(":
            stack.append([])
        elif t == ")":
            top = stack.pop()
            stack[-1].append(top)
        else:
            stack[-1].append(t)
    return stack[0]


def _maxdelay(triple: list) -> float:
    """(a:b:c) -> c in ns (TIMESCALE 1ps)."""
    vals = [float(v) for v in triple[0].split(":") if v]
    return max(vals) / 1000.0


Graph = tuple[dict[str, list[tuple[str, float]]], dict[str, float], dict[str, float]]


def load(path: str) -> Graph:
    with open(path, encoding="utf-8") as f:
        tree = _parse(f.read())
    delayfile = tree[0]
    edges: dict[str, list[tuple[str, float]]] = defaultdict(list)   # dst -> [(src, delay)]
    starts: dict[str, float] = {}                                   # Q pins: clock-to-out
    checks: dict[str, float] = {}                                   # data pins: setup
    for cell in delayfile:
        if not isinstance(cell, list) or not cell or cell[0] != "CELL":
            continue
        inst = ""
        for item in cell[1:]:
            if item[0] == "INSTANCE":
                inst = _unesc(item[1]) if len(item) > 1 else ""
            elif item[0] == "DELAY":
                for ab in item[1:]:
                    for d in ab[1:]:
                        if d[0] == "IOPATH":
                            a, b = d[1], d[2]
                            if isinstance(a, list):     # (posedge CLK)
                                a = a[1]
                            dl = _maxdelay(d[3])
                            if a in _CLOCKS:
                                starts[f"{inst}/{b}"] = max(starts.get(f"{inst}/{b}", 0.0), dl)
                            else:
                                edges[f"{inst}/{b}"].append((f"{inst}/{a}", dl))
                        elif d[0] == "INTERCONNECT":
                            src, dst = _unesc(d[1]), _unesc(d[2])
                            edges[dst].append((src, _maxdelay(d[3])))
            elif item[0] == "TIMINGCHECK":
                for c in item[1:]:
                    if c[0] in ("SETUPHOLD", "SETUP"):
                        port = c[1][1] if isinstance(c[1], list) else c[1]
                        clk = c[2][1] if isinstance(c[2], list) else c[2]
                        if clk in _CLOCKS:
                            key = f"{inst}/{port}"
                            checks[key] = max(checks.get(key, 0.0), _maxdelay(c[3]))
    return edges, starts, checks


def analyse(edges: dict[str, list[tuple[str, float]]], starts: dict[str, float],
            checks: dict[str, float]
            ) -> tuple[list[tuple[float, str]], dict[str, float], dict[str, str | None]]:
    arr: dict[str, float] = {}
    prev: dict[str, str | None] = {}
    sys.setrecursionlimit(100000)

    def at(node: str) -> float:
        if node in arr:
            return arr[node]
        arr[node] = float("-inf")          # (a combinational loop reads as unreachable)
        if node in starts:
            best, bp = starts[node], None
        else:
            best, bp = float("-inf"), None
        for src, dl in edges.get(node, ()):
            t = at(src) + dl
            if t > best:
                best, bp = t, src
        arr[node], prev[node] = best, bp
        return best

    res = []
    for node, setup in checks.items():
        t = at(node)
        if t != float("-inf"):
            res.append((t + setup, node))
    return res, arr, prev


def _group(node: str) -> str:
    """Endpoint register name without the bit / cell suffixes yosys and nextpnr add."""
    inst = node.rsplit("/", 1)[0]
    inst = re.sub(r"_TRELLIS_FF_Q(_\d+)?.*$", "", inst)
    inst = re.sub(r"\.\d+\$DPRAM_COMB\d$", "", inst)
    inst = re.sub(r"\$.*$", "", inst)
    return inst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sdf")
    ap.add_argument("--period", type=float, default=5.0, help="clock period in ns (default 5)")
    ap.add_argument("--top", type=int, default=25, help="endpoint groups listed (default 25)")
    ap.add_argument("--paths", type=int, default=4, help="paths printed in full (default 4)")
    ap.add_argument("--match", action="append", default=[],
                    help="also print the worst path into the endpoint groups containing this")
    a = ap.parse_args(argv)
    try:
        edges, starts, checks = load(a.sdf)
    except OSError as e:
        print(f"sdf_paths: {e}", file=sys.stderr)
        return 2
    res, arr, prev = analyse(edges, starts, checks)
    res.sort(reverse=True)
    worst: dict[str, tuple[float, str, int]] = {}
    for t, node in res:
        g = _group(node)
        if g in worst:
            worst[g] = (worst[g][0], worst[g][1], worst[g][2] + (t > a.period))
        else:
            worst[g] = (t, node, int(t > a.period))
    failing = sum(1 for t, _ in res if t > a.period)
    print(f"{len(res)} endpoints, {failing} over {a.period} ns; worst {res[0][0]:.2f} ns "
          f"({1000.0 / res[0][0]:.1f} MHz)")
    groups = sorted(worst.items(), key=lambda kv: -kv[1][0])
    for g, (t, node, nf) in groups[: a.top]:
        src = node
        while prev.get(src):
            src = prev[src]
        print(f"{t:6.2f} ns  {nf:4d} over  {g}  <- {_group(src)}")
    shown = groups[: a.paths] + [kv for kv in groups[a.paths:]
                                 if any(m in kv[0] for m in a.match)]
    for _g, (t, node, _) in shown:
        print(f"\n{t:.2f} ns to {node}:")
        chain = []
        n: str | None = node
        while n:
            chain.append(n)
            n = prev.get(n)
        for n in reversed(chain):
            print(f"  {arr[n]:6.2f}  {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
