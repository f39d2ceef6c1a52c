"""Node services in processes of their own (hwctl.node.proc) on a lab in its own process
(hwctl.sim.twin.labproc), as ``hwctl demo`` runs them: the parent's mirrors feed the live view and
the result rows. Waits on the mirrors' counters; timeouts only bound a hang."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from hwctl import timebase
from hwctl.errors import UserError
from hwctl.live import snapshot
from hwctl.node import NodeConfig
from hwctl.node.proc import NodeProcess
from hwctl.sim import topologies
from hwctl.sim.twin.lab import Lab
from hwctl.sim.twin.labproc import LabProcess
from hwctl.stall import StallBound

HANG_S = 120.0  # only if something hangs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configs(urls: dict[str, str]) -> list[NodeConfig]:
    ports = {n: free_port() for n in "AB"}
    wl = {"fidelity": 0.75, "pairs": [1, 3], "mean_backoff": 0.02, "rule": "edge", "seed": 5}
    return [NodeConfig.from_dict({"name": n, "listen": f"tcp://127.0.0.1:{ports[n]}",
                                  "backend": urls[n], "duration": None, "workload": wl,
                                  "peers": {p: {"endpoint": f"tcp://127.0.0.1:{ports[p]}"}}})
            for n, p in (("A", "B"), ("B", "A"))]


async def run(urls: dict[str, str]) -> tuple[list[NodeProcess], dict]:
    nodes = [NodeProcess(c, rid_base=(i + 1) * 1_000_000) for i, c in enumerate(configs(urls))]
    try:
        for nd in nodes:
            await nd.start()
        for nd in nodes:
            nd.go()
        # bounds a hang only: the children report no progress at all for HANG_S (hwctl.stall)
        bound = StallBound(lambda: tuple((nd.counters.msgs_in, nd.counters.heralds,
                                          nd.counters.completed) for nd in nodes), HANG_S)
        while sum(nd.counters.completed for nd in nodes) < 6:
            assert bound.ok(time.monotonic()), (bound.describe(), [nd.counters for nd in nodes])
            for nd in nodes:
                nd.poll()
            await asyncio.sleep(0.05)
        view = snapshot(nodes, title="t", t0=time.monotonic(), duration=None)
        for nd in nodes:
            nd.stop()
        for nd in nodes:
            await nd.finish()
    finally:
        for nd in nodes:
            await nd.close()
    return nodes, view


def test_node_processes_mirror_counters_records_and_results() -> None:
    lab = Lab(topologies.by_name("K2"), p_photon=0.02, seed=3, start=timebase.cycle_now())
    with LabProcess(lab) as lp:
        nodes, view = asyncio.run(run(lp.urls))
        st = lp.station_counters()
    assert lp.error is None
    assert st["A-B"]["CNT_HERALD"] > 0
    # the live view from the mirrors: both nodes, their completed requests and latencies
    assert {v["name"] for v in view["nodes"]} == {"A", "B"}
    assert sum(v["completed"] for v in view["nodes"]) >= 6
    assert any(v["mean_latency_ms"] for v in view["nodes"])
    assert view["edges"][0]["requests"] >= 1
    for nd in nodes:
        assert nd.error is None
        snap = nd.snapshot()
        assert snap["disagree"] == 0 and snap["clock_sync"] == "shared" and snap["device_errors"] == 0
        assert snap["completed"] == nd.counters.completed
        rows = nd.result_rows()
        done = [r for r in rows if r["latency"] is not None]
        assert done and all(len(r["herald_ts"]) == r["pairs"] and r["disagree"] == 0 for r in done)
        # the mirror holds every finished request of the child
        assert {r["rid"] for r in done} == set(nd.records)


def test_node_process_start_error_is_raised_in_the_parent() -> None:
    lab = Lab(topologies.by_name("K2"), p_photon=0.0, start=timebase.cycle_now())
    with LabProcess(lab) as lp, socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cfg = configs(lp.urls)[0]
        cfg.listen = f"tcp://127.0.0.1:{busy.getsockname()[1]}"  # address in use

        async def main() -> None:
            with pytest.raises(UserError, match="cannot listen"):
                await NodeProcess(cfg, rid_base=1).start()

        asyncio.run(main())
