"""Node service: two ESP nodes over ZeroMQ on loopback, each driving its node device of a lab twin
(node devices + heralding station on the shared clock) by URL."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from hwctl import timebase
from hwctl.errors import UserError
from hwctl.node import NodeConfig, NodeService, write_results
from hwctl.sim import topologies
from hwctl.sim.twin.lab import Lab, LabServer
from hwctl.stall import StallBound
from hwctl.wire import Reg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pair_configs(url_a: str, url_b: str, **kw) -> tuple[NodeConfig, NodeConfig]:
    pa, pb = free_port(), free_port()
    base = {"duration": None, "workload": {"fidelity": 0.75, "pairs": [1, 3], "mean_backoff": 0.02, **kw}}
    a = NodeConfig.from_dict({"name": "A", "listen": f"tcp://127.0.0.1:{pa}", "backend": url_a,
                              "peers": {"B": {"endpoint": f"tcp://127.0.0.1:{pb}"}}, **base})
    b = NodeConfig.from_dict({"name": "B", "listen": f"tcp://127.0.0.1:{pb}", "backend": url_b,
                              "peers": {"A": {"endpoint": f"tcp://127.0.0.1:{pa}"}},
                              **base | {"workload": base["workload"] | {"seed": 2}}})
    return a, b


async def drive(na: NodeService, nb: NodeService, done: Callable[[], bool], bound: StallBound,
                why: Callable[[], object] = lambda: None) -> None:
    """Run two started nodes until ``done()``; a crash of either surfaces at once, and a stall
    (``bound``: no progress for its ``stall_s``, hwctl.stall) fails with ``why()`` beside it,
    never the total time a loaded machine takes. Both are stopped before it returns."""
    runs = [asyncio.create_task(na.run()), asyncio.create_task(nb.run())]
    loop = asyncio.get_running_loop()
    while not done():
        assert bound.ok(loop.time()), (bound.describe(), why())
        for r in runs:
            if r.done():
                r.result()  # surface a crash
        await asyncio.sleep(0.02)
    na.stop()
    nb.stop()
    await asyncio.gather(*runs)


async def run_pair(a: NodeConfig, b: NodeConfig, until_completed: int, timeout: float = 60.0):
    """``timeout`` only bounds a hang: the loop ends on the completion count and fails only when
    neither node made any progress (messages, device events) for ``timeout`` s (hwctl.stall);
    it was a 20 s total, which a loaded machine exceeded (docs/reliability.md "Test suite under
    load")."""
    na, nb = NodeService(a, rid_base=0), NodeService(b, rid_base=1_000_000)
    await na.start()
    await nb.start()
    bound = StallBound(lambda: tuple((n.counters.msgs_in, n.counters.heralds, n.counters.completed,
                                      n.backend.stats.events if n.backend else 0)
                                     for n in (na, nb)), timeout)
    await drive(na, nb, lambda: na.counters.completed + nb.counters.completed >= until_completed,
                bound, lambda: (na.snapshot(), nb.snapshot()))
    return na, nb


def _check(na: NodeService, nb: NodeService) -> None:
    done = [r for n in (na, nb) for r in n.records.values() if r.t_finish is not None]
    assert done
    for r in done:
        assert len(r.herald_ts) == r.pairs  # exactly the requested pairs, each a device PAIR
        assert r.t_syn is not None and r.t_ack is not None and r.t_syn <= r.t_ack <= r.t_finish
        assert r.attempts >= r.pairs and r.latency > 0
        assert r.herald_ts == sorted(r.herald_ts) and r.disagree == 0
        # attempts: what both ends fired from the later join to the last pair (the simulator's
        # count); the initiator's device fired more (at least the ~28 after the last pair while
        # its herald was in flight)
        origin = -(-timebase.cycle_of(r.t_min) // 50) * 50  # the first grid point >= t_min
        join = origin + round((timebase.cycle_of(r.t_pl_start) - origin) / 50) * 50
        assert r.attempts == (r.herald_ts[-1] - join) // 50 + 1
        assert r.fired > r.attempts
    for n in (na, nb):
        c = n.counters
        assert c.bad_msgs == 0 and c.device_errors == 0 and c.disagree == 0
        assert n.backend.stats.events_lost == 0 and n.backend.stats.timeouts == 0
        assert n.clock_sync == "shared"  # the lab's devices count the shared reference
    # every completed request's pair lists were compared at both ends (the last may be in flight)
    assert na.counters.pair_checks + nb.counters.pair_checks >= 2 * (len(done) - 1)


def k2_lab(p: float = 0.02, seed: int = 3) -> Lab:
    return Lab(topologies.by_name("K2"), p_photon=p, seed=seed, start=timebase.cycle_now())


def test_two_nodes_on_the_lab_over_pty(tmp_path) -> None:
    with LabServer(k2_lab()) as srv:
        a, b = pair_configs(srv.urls["A"], srv.urls["B"])
        na, nb = asyncio.run(run_pair(a, b, until_completed=8))
    assert srv.error is None
    _check(na, nb)
    # both ends generated requests and the contention was resolved by ESP, not by luck
    assert na.counters.completed > 0 and nb.counters.completed > 0
    rows = na.result_rows() + nb.result_rows()
    path = write_results(rows, {"test": True}, tmp_path)
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    assert t.num_rows == len(rows)
    assert t.schema.field("herald_ts_cycles").type.value_type.bit_width == 64
    assert set(t.column("disagree").to_pylist()) <= {0}


def test_devices_join_the_grid_themselves_no_late() -> None:
    """The lab's devices have CONTROL.LATE_JOIN: each end schedules at the grid's origin (t_min,
    already past when the command arrives) and its device starts at the next grid point, so no
    schedule is ever LATE, whatever the host's latency, and the pairs agree."""
    with LabServer(k2_lab(p=0.05, seed=4)) as srv:
        a, b = pair_configs(srv.urls["A"], srv.urls["B"])
        na, nb = asyncio.run(run_pair(a, b, until_completed=6))
    _check(na, nb)
    assert na._join.device_joins and nb._join.device_joins
    assert na.counters.late + nb.counters.late == 0
    assert all(m.reg(Reg.ERR_LATE) == 0 for m in srv.lab.nodes.values())


def test_late_end_rejoins_alone(monkeypatch) -> None:
    """Devices without LATE_JOIN (the bit left clear): a margin shorter than the host -> device
    latency (and no round trip measured yet) makes the first schedules LATE: the late end joins
    a later point of the attempt grid on its own (no restart of the other end), and the pairs
    still agree (the station heralds only attempts both ends fired)."""
    async def no_late_join(self) -> None:
        return None

    monkeypatch.setattr(NodeService, "_late_join_on", no_late_join)
    with LabServer(k2_lab(p=0.05, seed=4)) as srv:
        a, b = pair_configs(srv.urls["A"], srv.urls["B"])
        for c in (a, b):
            c.lead_s = 1e-6
        na, nb = asyncio.run(run_pair(a, b, until_completed=4))
    _check(na, nb)
    assert na.counters.late + nb.counters.late > 0
    assert sum(r.restarts for n in (na, nb) for r in n.records.values()) == 0
    # each LATE cost that end one more SCHEDULE_PAIRS, nothing at the other end (a generation
    # still waiting for its start when the nodes stop has sent none: <=)
    assert (na.counters.schedules + nb.counters.schedules
            <= na.counters.generations + nb.counters.generations + na.counters.late
            + nb.counters.late)


def test_config_errors_are_one_line(tmp_path) -> None:
    p = tmp_path / "node.toml"
    p.write_text('name = "A"\nlisten = "tcp://127.0.0.1:1"\n')
    with pytest.raises(UserError, match="missing key 'backend'"):
        NodeConfig.load(p)
    p.write_text("name = \n")
    with pytest.raises(UserError, match="not valid TOML"):
        NodeConfig.load(p)
    with pytest.raises(UserError, match="not found"):
        NodeConfig.load(tmp_path / "nope.toml")
    p.write_text('name = "A"\nlisten = "tcp://127.0.0.1:1"\nbackend = "twin://"\n')
    with pytest.raises(UserError, match="no \\[peers\\]"):
        NodeConfig.load(p)


def test_cli_reports_bad_backend_url(tmp_path, capsys) -> None:
    from hwctl.cli import main

    p = tmp_path / "node.toml"
    p.write_text(f'name = "A"\nlisten = "tcp://127.0.0.1:{free_port()}"\nbackend = "carrier-pigeon://x"\n'
                 '[peers.B]\nendpoint = "tcp://127.0.0.1:9"\n')
    assert main(["node", "--config", str(p), "--duration", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unsupported backend URL" in err[0]
