"""The example configs in examples/ load, describe a consistent two-node network, mention every key
hwctl node reads, and run: both nodes on an in-process lab twin, with only the addresses swapped
for free ports and the lab's ptys."""

from __future__ import annotations

import asyncio
import re
import tomllib
from pathlib import Path

from hwctl import timebase
from hwctl.node import NodeConfig
from hwctl.sim import topologies
from hwctl.sim.twin.lab import Lab, LabServer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
A, B = EXAMPLES / "node.toml", EXAMPLES / "node-B.toml"

def test_examples_load_and_form_one_network() -> None:
    a, b = NodeConfig.load(A), NodeConfig.load(B)
    assert (a.name, b.name) == ("A", "B")
    (pa,), (pb,) = a.peers, b.peers
    assert pa.name == b.name and pb.name == a.name
    assert pa.endpoint == b.listen and pb.endpoint == a.listen
    assert pa.length_m == pb.length_m  # one fibre, seen from both ends
    assert a.backend.endswith("/A") and b.backend.endswith("/B")
    assert a.seed != b.seed and a.fidelity == b.fidelity


def test_node_example_mentions_every_key() -> None:
    """examples/node.toml documents the whole format: every key the strict config check knows
    (hwctl.node.validate) appears in it, set or commented out; a new key without an example fails."""
    from hwctl.node import validate as nodeconfig

    text = A.read_text()
    tables = {"": nodeconfig.TOP, "peers.B": nodeconfig.PEER, **nodeconfig.SECTIONS}
    removed = {"window_cycles", "margin_s"}  # known only to explain what replaced them
    for section, spec in tables.items():
        if section:
            assert re.search(rf"^#?\s*\[{re.escape(section)}\]", text, re.M), section
        for key in set(spec) - removed:
            assert re.search(rf"^#?\s*{re.escape(key)}\s*=", text, re.M), f"{section}.{key}"


def test_cli_help_points_at_the_example(capsys) -> None:
    from hwctl.cli import main

    try:
        main(["node", "--help"])
    except SystemExit:
        pass
    out = " ".join(capsys.readouterr().out.split())
    assert "examples/node.toml" in out and "NAME.parquet" in out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_example_network_runs_on_the_lab_twin(tmp_path: Path) -> None:
    from hwctl.node import NodeService

    ports = {"A": _free_port(), "B": _free_port()}
    lab = Lab(topologies.by_name("K2"), p_photon=0.02, seed=3, start=timebase.cycle_now())
    with LabServer(lab) as srv:
        cfgs = []
        for path in (A, B):
            d = tomllib.loads(path.read_text())
            me = d["name"]
            (peer,) = d["peers"]
            d |= {"listen": f"tcp://127.0.0.1:{ports[me]}", "backend": srv.urls[me],
                  "out": str(tmp_path), "duration": None}
            d["peers"][peer]["endpoint"] = f"tcp://127.0.0.1:{ports[peer]}"
            d["workload"]["mean_backoff"] = 0.02
            cfgs.append(NodeConfig.from_dict(d, str(path)))

        async def run() -> list[NodeService]:
            nodes = [NodeService(c, rid_base=k * 1_000_000) for k, c in enumerate(cfgs)]
            for n in nodes:
                await n.start()
            tasks = [asyncio.create_task(n.run()) for n in nodes]
            while min(n.counters.completed for n in nodes) < 2:
                for t in tasks:
                    if t.done():
                        t.result()
                await asyncio.sleep(0.02)
            for n in nodes:
                n.stop()
            await asyncio.gather(*tasks)
            return nodes

        nodes = asyncio.run(asyncio.wait_for(run(), 120))
    assert srv.error is None
    for n in nodes:
        assert n.counters.disagree == 0 and n.counters.device_errors == 0
    # `hwctl node`'s end-of-run line: the figures in words, not the nested counter dict
    from hwctl.node.cli import final_summary

    for n in nodes:
        line = final_summary(n)
        assert "\n" not in line and "{" not in line and "mean latency" in line, line
        assert f"{n.counters.completed} of {n.counters.requests} requests completed" in line
