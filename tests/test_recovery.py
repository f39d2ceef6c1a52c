"""Device restart recovery and peer liveness of the node service (hwctl.recovery, issue 16):
the lab twin goes away and comes back under two running nodes, a peer dies and a new one takes
its place. Waits on the nodes' own counters, never on elapsed time; the deadlines only bound a
hang."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hwctl import recovery, timebase
from hwctl.node import NodeConfig, NodeService
from hwctl.recovery import Backoff, DeviceMark, restart_reason
from sim import topologies
from sim.twin.lab import Lab, LabServer

HANG_S = 60.0  # only if something hangs
P_LONG = 5e-5  # per-attempt success probability for generations of tens of ms


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _configs(url_a: str, url_b: str) -> tuple[NodeConfig, NodeConfig]:
    pa, pb = _port(), _port()
    wl = {"fidelity": 0.75, "pairs": [2, 4], "mean_backoff": 0.02}
    a = NodeConfig.from_dict({"name": "A", "listen": f"tcp://127.0.0.1:{pa}", "backend": url_a,
                              "peers": {"B": {"endpoint": f"tcp://127.0.0.1:{pb}"}},
                              "workload": wl | {"seed": 1}})
    b = NodeConfig.from_dict({"name": "B", "listen": f"tcp://127.0.0.1:{pb}", "backend": url_b,
                              "peers": {"A": {"endpoint": f"tcp://127.0.0.1:{pa}"}},
                              "workload": wl | {"seed": 2}})
    return a, b


def _lab(p: float = 0.004) -> Lab:
    return Lab(topologies.by_name("K2"), p_photon=p, seed=3, start=timebase.cycle_now())


async def _until(cond, runs, what: str) -> None:
    t_end = asyncio.get_running_loop().time() + HANG_S
    while not cond():
        assert asyncio.get_running_loop().time() < t_end, f"hang: {what}"
        for r in runs:
            if r.done():
                r.result()  # a node that ended: its error
        await asyncio.sleep(0.01)


def _done(*nodes: NodeService) -> int:
    return sum(n.counters.completed for n in nodes)


def test_backoff_and_restart_signature() -> None:
    b = Backoff(0.05, 2.0)
    assert [b.next() for _ in range(8)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    b.reset()
    assert b.next() == 0.05
    m = DeviceMark(token=7, time=1000, pairs=5)
    assert restart_reason(m, DeviceMark(7, 2000, 6), 7) is None  # the same life, later
    assert "SCRATCH" in restart_reason(m, DeviceMark(0, 2000, 6), 7)  # reset register
    assert "backwards" in restart_reason(m, DeviceMark(7, 10, 6), 7)
    assert "cleared" in restart_reason(m, DeviceMark(7, 2000, 0), 7)
    assert restart_reason(None, DeviceMark(7, 1, None), 7) is None


def test_lab_restart_mid_generation_both_nodes_recover(tmp_path) -> None:
    """The lab (both node devices and the station; the first one heralds nothing) goes away while
    a generation runs and comes back as a new lab: both nodes reconnect, find restarted devices (SCRATCH token gone), end the
    generation in flight with a reason at both ends (ESP releases the Lock, the initiator runs
    the request again) and go on completing requests; every completed request has its pairs,
    held at both ends."""

    async def main() -> tuple[NodeService, NodeService]:
        # the first lab heralds nothing: the first generation is certainly still running when
        # the lab goes away (with LATE_JOIN a generation at p = 0.004 lasts < 1 ms)
        srv = LabServer(_lab(p=0.0), link_dir=str(tmp_path / "lab")).start()
        a, b = _configs(srv.urls["A"], srv.urls["B"])
        na, nb = NodeService(a, rid_base=0), NodeService(b, rid_base=1_000_000)
        await na.start()
        await nb.start()
        runs = [asyncio.create_task(na.run()), asyncio.create_task(nb.run())]
        try:
            # stop the lab while both ends run a generation (with its schedule on the device)
            await _until(lambda: na._pl_rid is not None and nb._pl_rid is not None
                         and na.counters.schedules and nb.counters.schedules, runs,
                         "a generation in flight")
            in_flight = na._pl_rid
            srv.stop()
            await _until(lambda: not na.recovery.up.is_set() and not nb.recovery.up.is_set(),
                         runs, "both nodes see the device gone")
            srv = LabServer(_lab(P_LONG), link_dir=str(tmp_path / "lab")).start()
            await _until(lambda: na.recovery.epoch == 1 and nb.recovery.epoch == 1, runs,
                         "both devices back")
            before = _done(na, nb)
            await _until(lambda: _done(na, nb) >= before + 4, runs, "requests after the restart")
            rec = na.records.get(in_flight) or nb.records.get(in_flight)
            await _until(lambda: rec.t_finish is not None, runs, "the interrupted request")
        finally:
            na.stop()
            nb.stop()
            await asyncio.gather(*runs, return_exceptions=True)
            srv.stop()
        for r in runs:
            r.result()
        return na, nb

    na, nb = asyncio.run(main())
    for n in (na, nb):
        r = n.recovery.counters
        assert r.device_lost == 1 and r.device_restarts == 1 and r.path_restarts == 0
        assert r.reconnect_attempts >= 1 and r.downtime_s > 0
        assert n.clock_sync == "shared"  # the new lab counts the shared reference again
        assert n.counters.disagree == 0 and n.counters.device_errors == 0
    # the generation in flight ended at both ends for a stated reason, then ran again and
    # completed (the interrupted request, above)
    assert na.recovery.counters.generations_failed == 1
    assert nb.recovery.counters.generations_failed == 1
    causes = na.recovery.counters.failed_by | nb.recovery.counters.failed_by
    assert set(causes) <= {"device lost", "peer failed"}, causes
    for n in (na, nb):
        for r in n.records.values():
            if r.t_finish is not None:
                assert len(r.herald_ts) == r.pairs


def test_dead_peer_is_detected_and_released_then_a_new_peer_is_served(tmp_path,
                                                                        monkeypatch) -> None:
    """B stops answering (its service ends without a word, as after kill -9) while A holds a
    Lock with it: A declares B dead after PEER_DEAD_S of silence, ends the generation, releases
    the Lock through the robust core's release path; a new B (new incarnation) starts on the
    same address and A completes requests with it."""
    monkeypatch.setattr(recovery, "PEER_DEAD_S", 1.0)  # a shorter stated bound for the test

    async def main() -> tuple[NodeService, NodeService]:
        srv = LabServer(_lab(p=0.002), link_dir=str(tmp_path / "lab")).start()
        a, b = _configs(srv.urls["A"], srv.urls["B"])
        na, nb = NodeService(a, rid_base=0), NodeService(b, rid_base=1_000_000)
        await na.start()
        await nb.start()
        ra, rb = asyncio.create_task(na.run()), asyncio.create_task(nb.run())
        nb2 = None
        try:
            await _until(lambda: _done(na, nb) >= 2, [ra, rb], "first requests")
            await _until(lambda: na._pl_rid is not None, [ra, rb], "A in a generation")
            rb.cancel()  # B vanishes mid-generation: no message, no goodbye
            await asyncio.gather(rb, return_exceptions=True)
            await _until(lambda: not na.liveness.alive["B"], [ra], "A declares B dead")
            await _until(lambda: na.core.lock is None or na.core.lock.peer != "B"
                         or na._pl_rid is None, [ra], "A releases B's Lock")
            nb2 = NodeService(b, rid_base=2_000_000)
            await nb2.start()
            rb2 = asyncio.create_task(nb2.run())
            base = na.counters.completed
            await _until(lambda: na.counters.completed >= base + 2 and nb2.counters.completed
                         >= 1, [ra, rb2], "A and the new B complete requests")
        finally:
            na.stop()
            if nb2 is not None:
                nb2.stop()
            await asyncio.gather(ra, *([rb2] if nb2 is not None else []),
                                 return_exceptions=True)
            srv.stop()
        ra.result()
        return na, nb2

    na, nb2 = asyncio.run(main())
    assert na.liveness.deaths["B"] == 1 and na.liveness.alive["B"]
    # the generation with the dead B either ended for that reason or completed (B's device
    # kept firing after its service died, so the station could still herald)
    assert set(na.recovery.counters.failed_by) <= {"peer dead", "peer restarted"}
    assert na.counters.disagree == 0 and nb2.counters.disagree == 0


@pytest.mark.parametrize("bad", [b"{", b"[]", b'{"inc": -1}', b'{"inc": 1.5}', b'{"inc": 1, "x": 2}'])
def test_bad_heartbeats_are_dropped(bad: bytes) -> None:
    async def main() -> str | None:
        a, _ = _configs("twin://", "twin://")
        na = NodeService(a, rid_base=0)
        return na.liveness.heartbeat("B", bad)

    assert asyncio.run(main()) in {"hb_not_json", "hb_bad_shape"}
