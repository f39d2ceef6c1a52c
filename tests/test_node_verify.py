"""Node service with pair verification and both-ends attempts: two nodes, two pty twins fed by one
shared midpoint header source, ZeroMQ on loopback."""

from __future__ import annotations

import asyncio
import socket
import time

import pyarrow.parquet as pq
import pytest

from hwctl.errors import UserError
from hwctl.node import NodeConfig, NodeService, write_results
from hwctl.wire import FREE_MASK_BITS, Ack, Header, Herald, Nak, Opcode, Reg
from sim.twin import TwinConfig, TwinModel
from sim.twin.header import HeaderSource
from sim.twin.serve import PtyTwinServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vconfigs(url_a: str, url_b: str) -> tuple[NodeConfig, NodeConfig]:
    pa, pb = free_port(), free_port()
    wl = {"fidelity": 0.75, "pairs": [1, 3], "mean_backoff": 0.02}
    ver = {"memory": "nv", "f_th": 0.81, "report_interval_s": 0.0005}
    a = NodeConfig.from_dict({"name": "A", "listen": f"tcp://127.0.0.1:{pa}", "backend": url_a,
                              "peers": {"B": {"endpoint": f"tcp://127.0.0.1:{pb}"}},
                              "workload": wl | {"seed": 1}, "verification": ver | {"partner": "B"}})
    b = NodeConfig.from_dict({"name": "B", "listen": f"tcp://127.0.0.1:{pb}", "backend": url_b,
                              "peers": {"A": {"endpoint": f"tcp://127.0.0.1:{pa}"}},
                              "workload": wl | {"seed": 2}, "verification": ver | {"partner": "A"}})
    return a, b


async def run_verified(a: NodeConfig, b: NodeConfig, epoch: float, *, verified: int, completed: int,
                       timeout: float = 25.0) -> tuple[NodeService, NodeService]:
    na, nb = NodeService(a, epoch=epoch, rid_base=0), NodeService(b, epoch=epoch, rid_base=1_000_000)
    await na.start()
    await nb.start()
    runs = [asyncio.create_task(na.run()), asyncio.create_task(nb.run())]
    t_end = time.monotonic() + timeout
    while (min(na.vcore.metrics.verified, nb.vcore.metrics.verified) < verified
           or min(na.counters.completed, nb.counters.completed) < completed):
        assert time.monotonic() < t_end, (na.snapshot(), nb.snapshot())
        for r in runs:
            if r.done():
                r.result()
        await asyncio.sleep(0.02)
    na.stop()
    nb.stop()
    await asyncio.gather(*runs)
    return na, nb


def _frames(model: TwinModel, kind: type) -> list:
    return [r.msg for r in model.tx_log if isinstance(r.msg, kind)]


def test_verified_pairs_and_both_ends_fire(tmp_path) -> None:
    # one source, 1 kHz, each arm keeps 60 %; headers start 0.3 s after the shared time origin
    src = HeaderSource(period=100_000, seed=11, phase=30_000_000, seq0=0xFFFF_FF00, arrival=(0.6, 0.6))
    ma = TwinModel(TwinConfig(p_photon=0.02, seed=3, **src.arm(0)), record=True)
    mb = TwinModel(TwinConfig(p_photon=0.02, seed=4, **src.arm(1)), record=True)
    t0 = time.monotonic()
    ta, tb = PtyTwinServer(ma, mode="realtime"), PtyTwinServer(mb, mode="realtime")
    ta.start(t0)
    tb.start(t0)
    try:
        # a generous command timeout: a loaded CI machine must not turn a slow ACK into a retry
        a, b = vconfigs(ta.url + "?timeout=2", tb.url + "?timeout=2")
        na, nb = asyncio.run(run_verified(a, b, t0, verified=60, completed=4))
    finally:
        ta.stop()
        tb.stop()

    # --- verification: the same pairs at both ends, each stored at both twins, above F_th
    hdr = {n: {h.seq for h in _frames(m, Header)} for n, m in (("A", ma), ("B", mb))}
    pa, pb = ({r["seq"] for r in n.pair_rows()} for n in (na, nb))
    common = pa & pb
    assert len(common) >= 50
    assert pa <= hdr["A"] & hdr["B"] and pb <= hdr["A"] & hdr["B"]
    assert len(pa ^ pb) <= 5 + len(common) // 10  # only what was in flight at the stop differs
    for n, o in ((na, nb), (nb, na)):
        v = n.verification_summary()
        assert v["verified"] == len(n.pair_rows()) and v["discards"]["PARTNER_MISSING"] > 0
        assert v["rejected_headers"] == 0
        # a revocation only follows the partner's timeout (a stall longer than the 119 ms timeout)
        assert v["revoked"] <= o.verification_summary()["discards"]["TIMEOUT"]
        assert 0.81 < v["fidelity_min"] <= v["fidelity_mean"] <= 1.0
        assert {r["partner"] for r in n.pair_rows()} == {"B" if n is na else "A"}

    # --- slots: every HEADER's slot handed back exactly once (device ACKed each FREE_MASK, no NAK)
    for n, m in ((na, ma), (nb, mb)):
        c = n.counters
        assert c.double_free == 0 and c.slot_conflicts == 0 and c.device_errors == 0
        assert [x for x in _frames(m, Ack) if x.opcode == Opcode.FREE_MASK]
        assert not _frames(m, Nak)
        assert n.backend.stats.retries == 0  # so each ACK is one executed FREE_MASK
        # the device's own books: every HEADER allocated a slot; those not allocated now were freed
        dev_freed = len(_frames(m, Header)) - len(m.allocated_slots())
        assert 0 <= dev_freed - c.slots_freed <= FREE_MASK_BITS  # one command cut short by the stop
        v = n.verification_summary()
        assert c.headers == v["headers"] <= len(_frames(m, Header))  # the twin ran on after the stop
        assert c.slots_freed + v["free_pending"] + v["slots_held"] == c.headers
        assert v["slots_held"] == v["occupancy"]

    # --- physical layer: both devices got SCHEDULEs and fired; only the station heralds
    for n, m in ((na, ma), (nb, mb)):
        scheds = [x for x in _frames(m, Ack) if x.opcode == Opcode.SCHEDULE]
        assert 0 <= len(scheds) - n.counters.schedules <= 1 and n.counters.schedules > 0
        assert m.reg(Reg.CNT_ATTEMPTS) > 0
    remote_rounds = {n.cfg.name: sum(1 for r in o.records.values() if r.t_finish is not None)
                     for n, o in ((na, nb), (nb, na))}
    assert remote_rounds["A"] > 0 and remote_rounds["B"] > 0  # each was remote at least once
    for n, m in ((na, ma), (nb, mb)):
        heralds = _frames(m, Herald)
        assert 0 <= len(heralds) - n.counters.heralds - n.counters.disagree["stale_herald"] <= 1
        assert n.counters.disagree["remote_herald"] == 0  # HERALD_EN = 0 at the remote works
        assert n.counters.disagree["exhausted"] == 0
    done = [r for n in (na, nb) for r in n.records.values() if r.t_finish is not None]
    for r in done:
        assert len(r.herald_ts) == r.pairs and r.attempts >= r.pairs
    # disagreements are counted, and rare compared with the rounds run
    rounds = sum(n.counters.heralds for n in (na, nb))
    assert sum(sum(n.counters.disagree.values()) for n in (na, nb)) < rounds

    # --- results: requests + verified pairs + metrics in meta
    path = write_results(na.result_rows() + nb.result_rows(),
                         {"nodes": {n.cfg.name: n.snapshot() for n in (na, nb)}}, tmp_path,
                         pairs=na.pair_rows() + nb.pair_rows())
    t = pq.read_table(tmp_path / "requests.pairs.parquet")
    assert path.exists() and t.num_rows == len(pa) + len(pb)
    assert t.schema.field("seq").type.bit_width == 32
    assert 0.81 < min(t.column("fidelity").to_pylist())


def test_verification_config_errors() -> None:
    base = {"name": "A", "listen": "tcp://127.0.0.1:1", "backend": "twin://",
            "peers": {"B": {"endpoint": "tcp://127.0.0.1:2"}}}
    with pytest.raises(UserError, match="not one of \\[peers\\]"):
        NodeConfig.from_dict(base | {"verification": {"partner": "C"}})
    with pytest.raises(UserError, match="not in Table I"):
        NodeConfig.from_dict(base | {"verification": {"partner": "B", "memory": "cheese"}})
    with pytest.raises(UserError, match="f_th"):
        NodeConfig.from_dict(base | {"verification": {"partner": "B", "f_th": 0.4}})
    with pytest.raises(UserError, match="missing key 'partner'"):
        NodeConfig.from_dict(base | {"verification": {"memory": "nv"}})
    with pytest.raises(UserError, match="period_cycles"):
        NodeConfig.from_dict(base | {"physical": {"period_cycles": 3, "window_cycles": 2}})
    cfg = NodeConfig.from_dict(base | {"verification": {"partner": "B", "memory": "Ion trap (40Ca+)"}})
    assert cfg.verification is not None
    cc = cfg.verification.core_config()
    assert abs(cc.timeout_ticks / cc.clock_hz - 0.0905) < 0.001  # Ca+ at F_th = 0.81 (docs)
