"""Starvation scenarios of issue 15 and the overtaking measure (bounded waiting, docs/reliability.md).

A request r is *overtaken* by r' when r' shares a node with r, arrived after r, and its
generation started before r's. Scenarios (streams submit their next request the moment the
previous one completes, so there is always a newer competitor):

- ``tiebreak``: path A-B-C; B's request B->C is the oldest; A (lower id) streams A->B. In paper
  mode B, in SYN_SENT, accepts each of A's SYNs (A sorts before B) and then NACKs its own request.
- ``wake``: path X-A-B-Y; X streams X->A, Y streams Y->B, and A->B waits. In paper mode B's WAKE
  finds A busy, is NACKed, and B takes Y's next request.
- ``star``: K1,4 (hub A); every leaf streams to the hub and the hub streams to every leaf.

    python -m hwctl.sim.fairness            # paper vs fair mode, worst overtaking count per scenario
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx

from hwctl.protocols.base import Completed, Expired, Request
from hwctl.sim import topologies
from hwctl.sim.network import NetworkSim, RequestRecord, SimConfig

STREAM_LEN = 20


class StreamSim(NetworkSim):
    """NetworkSim whose streams submit their next request when the previous one ends."""

    def __init__(self, g: nx.Graph, cfg: SimConfig, first: list[Request],
                 streams: dict[int, tuple[str, str, int]]) -> None:
        self._streams = dict(streams)  # rid of the running request -> (initiator, remote, left)
        self._next_rid = 1000
        super().__init__(g, cfg, workload=first)

    def _continue(self, req: Request) -> None:
        s = self._streams.pop(req.rid, None)
        if s is None or s[2] <= 0:
            return
        i, j, left = s
        self._next_rid += 1
        nxt = Request(self._next_rid, i, j, req.fidelity, req.pairs, self.now)
        self._streams[nxt.rid] = (i, j, left - 1)
        self._at(self.now, self._arrive, nxt)

    def _completed(self, c: Completed) -> None:
        super()._completed(c)
        self._continue(c.request)

    def _expired(self, e: Expired) -> None:
        super()._expired(e)
        self._continue(e.request)


def overtakes(records: list[RequestRecord]) -> dict[int, int]:
    """Per request: how many requests sharing a node arrived later and started earlier."""
    out = {}
    for r in records:
        start = r.pl_start if not math.isnan(r.pl_start) else math.inf
        nodes = {r.initiator, r.remote}
        out[r.rid] = sum(1 for o in records if o.rid != r.rid and o.t_request > r.t_request
                         and nodes & {o.initiator, o.remote} and o.pl_start < start)
    return out


def _graph(edges: str) -> nx.Graph:
    g = nx.Graph()
    for e in edges.split(","):
        u, v = e.split("-")
        g.add_edge(u, v)
    return g


def scenario(name: str, fair: bool, seed: int = 1, **cfg_kw: Any) -> dict[str, Any]:
    """Run one scenario; returns the victim's overtaking count, the worst over all requests and
    the victim's rank among the requests that started at its nodes."""
    cfg = SimConfig(seed=seed, fair=fair, eta=0.05, **cfg_kw)
    n = STREAM_LEN
    if name == "tiebreak":
        g = _graph("A-B,B-C")
        victim = Request(1, "B", "C", 0.75, 1, 0.0)
        first = [victim, Request(2, "A", "B", 0.75, 1, 0.0)]
        streams = {2: ("A", "B", n - 1)}
    elif name == "wake":
        g = _graph("X-A,A-B,B-Y")
        first = [Request(2, "X", "A", 0.75, 1, 0.0), Request(3, "Y", "B", 0.75, 1, 0.0)]
        victim = Request(1, "A", "B", 0.75, 1, 1e-6)
        first.append(victim)
        streams = {2: ("X", "A", n - 1), 3: ("Y", "B", n - 1)}
    elif name == "star":
        g = topologies.by_name("K1,4")
        hub = max(g.nodes, key=g.degree)
        leaves = sorted(m for m in g.nodes if m != hub)
        first, streams, rid = [], {}, 1
        for leaf in leaves:
            for a, b in ((leaf, hub), (hub, leaf)):
                first.append(Request(rid, a, b, 0.75, 1, 1e-7 * rid))
                streams[rid] = (a, b, n - 1)
                rid += 1
        victim = first[0]
    else:
        raise ValueError(f"unknown scenario {name!r}")
    sim = StreamSim(g, cfg, first, streams)
    res = sim.run_to_quiescence(limit=60.0)
    ov = overtakes(res.records)
    return {"scenario": name, "fair": fair, "victim_overtaken": ov[victim.rid],
            "worst_overtaken": max(ov.values()), "requests": len(res.records),
            "all_done": all(r.done for r in res.records)}


def main() -> int:
    print(f"{'scenario':10s} {'mode':6s} {'victim overtaken':>17s} {'worst overtaken':>16s} "
          f"{'requests':>9s}")
    for name in ("tiebreak", "wake", "star"):
        for fair in (False, True):
            r = scenario(name, fair)
            print(f"{name:10s} {'fair' if fair else 'paper':6s} {r['victim_overtaken']:>17d} "
                  f"{r['worst_overtaken']:>16d} {r['requests']:>9d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
