"""Node service in robust mode (issue 15): two in-process node services on the lab twin whose
ZeroMQ ESP path loses, duplicates and reorders messages (hwctl.sim.faults.SendShim); requests complete
or expire with a reason and no service ends. Wall-clock timeouts here only bound a hang."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hwctl import timebase
from hwctl.errors import UserError
from hwctl.node import K_ESP, NodeConfig, NodeService
from hwctl.protocols.esp import MsgType
from hwctl.sim import topologies
from hwctl.sim.faults import FaultConfig, FaultModel, SendShim
from hwctl.sim.twin.lab import Lab, LabServer
from hwctl.stall import StallBound

ROBUST = {"enabled": True, "rto": 0.005, "rto_max": 0.05, "lease": 1.0, "busy_lease": 3.0,
          "request_ttl": 30.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _configs(url_a: str, url_b: str, robust: dict) -> tuple[NodeConfig, NodeConfig]:
    pa, pb = free_port(), free_port()
    wl = {"fidelity": 0.75, "pairs": [1, 2], "mean_backoff": 0.02}
    a = NodeConfig.from_dict({"name": "A", "listen": f"tcp://127.0.0.1:{pa}", "backend": url_a,
                              "peers": {"B": {"endpoint": f"tcp://127.0.0.1:{pb}"}},
                              "workload": wl, "robust": robust})
    b = NodeConfig.from_dict({"name": "B", "listen": f"tcp://127.0.0.1:{pb}", "backend": url_b,
                              "peers": {"A": {"endpoint": f"tcp://127.0.0.1:{pa}"}},
                              "workload": wl | {"seed": 2}, "robust": robust})
    return a, b


def _shim(n: NodeService, seed: int, cfg: FaultConfig) -> SendShim:
    loop = asyncio.get_running_loop()
    shim = SendShim(FaultModel(cfg, seed), n.cfg.name, n._send, loop.call_later, loop.time,
                    kinds=frozenset({K_ESP}))
    n._send = shim  # type: ignore[method-assign]
    return shim


async def _run(na: NodeService, nb: NodeService, done: int, hang: float = 60.0) -> None:
    runs = [asyncio.create_task(na.run()), asyncio.create_task(nb.run())]
    t_end = asyncio.get_running_loop().time() + hang  # bounds a hang only
    while na.counters.completed + nb.counters.completed < done:
        for r in runs:
            assert not r.done(), r.exception()  # no service ends
        assert asyncio.get_running_loop().time() < t_end, (na.snapshot(), nb.snapshot())
        await asyncio.sleep(0.02)
    for r in runs:
        assert not r.done(), r.exception()
    na.stop()
    nb.stop()
    await asyncio.gather(*runs)


def test_lossy_duplicating_reordering_path_requests_complete() -> None:
    faults = FaultConfig(loss=0.15, duplicate=0.15, reorder=0.3, reorder_window=3e-3)

    async def main() -> tuple[NodeService, NodeService, list[SendShim]]:
        lab = Lab(topologies.by_name("K2"), p_photon=0.05, seed=3, start=timebase.cycle_now())
        with LabServer(lab) as srv:
            a, b = _configs(srv.urls["A"], srv.urls["B"], ROBUST)
            na, nb = NodeService(a, rid_base=0), NodeService(b, rid_base=1_000_000)
            await na.start()
            await nb.start()
            shims = [_shim(na, 1, faults), _shim(nb, 2, faults)]
            await _run(na, nb, done=12)
            return na, nb, shims

    na, nb, shims = asyncio.run(main())
    for n in (na, nb):
        arq = n.core.arq
        assert arq is not None
        # the faults happened and the link layer repaired them
        assert arq.stats.retransmitted > 0
        assert not any(k.startswith("error_") for k in n.counters.dropped), n.counters.dropped
        assert n.counters.dropped.get("esp_mode_mismatch", 0) == 0
        for r in n.records.values():  # every request completed, expired with a reason, or open
            assert r.t_finish is None or len(r.herald_ts) == r.pairs
            assert r.rid not in n.robust.expired or r.t_finish is None
        assert n.counters.disagree == 0
    assert sum(s.model.lost for s in shims) > 0 and sum(s.model.duplicated for s in shims) > 0
    assert sum(n.core.arq.stats.duplicates for n in (na, nb)) > 0
    # incarnations: each side knows the other's life (the HELLO or the first message told it)
    assert na.robust.peer_incarnations()["B"] == nb.robust.incarnation
    assert nb.robust.peer_incarnations()["A"] == na.robust.incarnation


def test_unreachable_peer_requests_expire_with_a_reason() -> None:
    """B never runs: A's requests expire with reason ttl (the core's lifetime), A keeps serving.
    The requests are the application's (``submit``): A's workload waits for its peer's session
    before its first request on the edge, so with B absent it submits none."""
    cfg = ROBUST | {"request_ttl": 0.2}

    async def main() -> NodeService:
        lab = Lab(topologies.by_name("K2"), p_photon=0.05, seed=3, start=timebase.cycle_now())
        with LabServer(lab) as srv:
            a, _ = _configs(srv.urls["A"], srv.urls["B"], cfg)
            na = NodeService(a, rid_base=0)
            await na.start()
            run = asyncio.create_task(na.run())
            for pairs in (1, 2, 1):
                na.submit("B", pairs)
            # bounds a hang only: no progress (messages, expiries) for 60 s (hwctl.stall)
            bound = StallBound(lambda: (na.counters.msgs_out, sum(na.robust.stats.expired.values())),
                               60.0)
            while sum(na.robust.stats.expired.values()) < 3:
                assert not run.done(), run.exception()
                assert bound.ok(asyncio.get_running_loop().time()), (bound.describe(), na.snapshot())
                await asyncio.sleep(0.02)
            assert not run.done()
            na.stop()
            await run
            return na

    na = asyncio.run(main())
    assert na.counters.completed == 0
    assert na.counters.requests == 3  # the application's; the workload waited for B
    assert set(na.robust.stats.expired) == {"ttl"}
    assert len(na.robust.expired) >= 3 and set(na.robust.expired.values()) == {"ttl"}
    # the SYN was retransmitted while nobody answered
    assert na.core.arq is not None and na.core.arq.stats.retransmitted > 0


def test_robust_table_is_checked_strictly(tmp_path) -> None:
    base = {"name": "A", "listen": "tcp://127.0.0.1:7001", "backend": "twin://?seed=1",
            "peers": {"B": {"endpoint": "tcp://127.0.0.1:7002"}}}
    assert NodeConfig.from_dict(base).robust is None  # default: off (paper mode)
    assert NodeConfig.from_dict(base | {"robust": {"enabled": False, "rto": 0.01}}).robust is None
    on = NodeConfig.from_dict(base | {"robust": {"enabled": True}}).robust
    assert on is not None and on.rto == 1e-3
    for bad, words in [({"enabld": True}, "did you mean 'enabled'"),
                       ({"enabled": "yes"}, "true or false"),
                       ({"enabled": True, "rto": "1"}, "number"),
                       ({"enabled": True, "rto": -1.0}, "rto"),
                       ({"enabled": True, "lease": float("inf")}, "lease"),
                       ({"enabled": True, "rto": 0.5, "rto_max": 0.1}, "rto <= rto_max"),
                       ({"enabled": True, "lease": 0.01, "rto_max": 0.05}, "lease")]:
        with pytest.raises(UserError, match=words):
            NodeConfig.from_dict(base | {"robust": bad})


def test_mode_mismatch_is_counted_not_fatal() -> None:
    from hwctl.node.robust import RobustGlue, make_core
    from hwctl.protocols.esp import EspMessage

    paper = RobustGlue(make_core("A", {"B": 1e-5}, None), abort=lambda r, s: None,
                       finished=lambda r: None)
    assert paper.mode_mismatch(EspMessage(MsgType.HELLO, "B", "A", 0, seq=1, inc=5))
    assert not paper.mode_mismatch(EspMessage(MsgType.SYN, "B", "A", 1))
    from hwctl.protocols.reliable import RobustConfig

    rob = RobustGlue(make_core("A", {"B": 1e-5}, RobustConfig(), incarnation=7),
                     abort=lambda r, s: None, finished=lambda r: None)
    assert rob.incarnation == 7
    assert rob.mode_mismatch(EspMessage(MsgType.NACK, "B", "A", 1))
    assert not rob.mode_mismatch(EspMessage(MsgType.NACK, "B", "A", 1, seq=1, inc=3))
