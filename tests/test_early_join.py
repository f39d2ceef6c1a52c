"""The remote end schedules its device at its SYNACK, on the global attempt grid (hwctl.pljoin,
docs/physical-layer.md section 5 "Early schedule"): no ESP hop between ACK and its command, no
pair before t_min, an early schedule aborted on NACK before any SYNACK to that peer goes out."""

from __future__ import annotations

import asyncio
import types

import pytest

from hwctl import timebase
from hwctl.node import NodeConfig, NodeService
from hwctl.node.physical import PlEarly, PlEarlyDrop
from hwctl.pljoin import JoinPlanner
from hwctl.protocols.base import Request, Send
from hwctl.protocols.esp import EspMessage, MsgType
from hwctl.sim.twin.lab import LabServer


@pytest.fixture(autouse=True)
def _early_on(monkeypatch) -> None:
    import hwctl.node.physical

    monkeypatch.setattr(hwctl.node.physical, "EARLY_SCHEDULE", True)


def test_grid_origin_and_early_start_share_the_global_phase() -> None:
    jp = JoinPlanner(period=50, floor_s=0.0005, hz=100_000_000)
    assert jp.origin(1000) == 1000 and jp.origin(1001) == 1050 and jp.origin(1049) == 1050
    assert jp.early_start(1049) == 1000 and jp.early_start(1050) == 1050
    # an early start and any later origin are on one grid: the station sees both ends' markers
    for now, t_min in ((12_345, 40_017), (7, 7), (99, 150)):
        assert (jp.origin(t_min) - jp.early_start(now)) % 50 == 0


class _Device:
    """Commands as the node issues them (a backend without I/O)."""

    def __init__(self, retry: bool = False) -> None:
        self.log: list[tuple] = []
        self.stats = types.SimpleNamespace(retries=0)
        self.retry = retry

    async def schedule_pairs(self, t_start: int, count: int, period: int, pairs: int,
                             port: int) -> None:
        self.log.append(("schedule", t_start, pairs, port))
        self.stats.retries += self.retry  # the answer came only to a retry

    async def abort(self) -> None:
        self.log.append(("abort",))


def _node(retry: bool = False) -> tuple[NodeService, _Device, list]:
    node = NodeService(NodeConfig.from_dict({
        "name": "A", "listen": "tcp://127.0.0.1:1", "backend": "twin://",
        "peers": {"B": {"endpoint": "tcp://127.0.0.1:2"}, "C": {"endpoint": "tcp://127.0.0.1:3"}},
        "workload": {"enabled": False}}))
    dev = _Device(retry)
    node.backend = dev  # type: ignore[assignment]
    node._join.device_joins = True  # CONTROL.LATE_JOIN read back set
    sent: list = []
    node._send = lambda peer, kind, payload: sent.append(  # type: ignore[method-assign]
        (peer, EspMessage.from_bytes(payload).kind if kind == b"esp" else kind))
    return node, dev, sent


async def _drain(node: NodeService) -> list:
    """Run the pl loop's queued early-schedule items (what ``_pl_loop`` does with them)."""
    done = []
    while not node._pl_queue.empty():
        item = node._pl_queue.get_nowait()
        if type(item) is PlEarly:
            await node._early_schedule(item)
        elif type(item) is PlEarlyDrop:
            await node._early_drop(item)
        done.append(type(item).__name__)
    return done


def test_early_schedule_at_synack_and_abort_on_nack_before_the_next_synack() -> None:
    """SYN from B -> SYNACK and at once the early SCHEDULE_PAIRS (no ACK needed). B answers NACK
    (it was locked by another node meanwhile), then sends a new SYN: our SYNACK to it waits until
    the old schedule is aborted, so B's next schedule can never meet it at the station; the
    abort's DONE(ABORTED) is marked stale for the next generation."""
    async def main() -> None:
        node, dev, sent = _node()
        r1 = Request(7, "B", "A", 0.75, 3, 0.0)
        node._apply(node.core.receive(EspMessage(MsgType.SYN, "B", "A", 7, r1), 1.0))
        assert sent == [("B", MsgType.SYNACK)]
        assert await _drain(node) == ["PlEarly"]
        (kind, t_start, pairs, port), = dev.log
        assert kind == "schedule" and pairs == 3 and t_start % 50 == 0
        assert node.counters.early_schedules == 1
        node._apply(node.core.receive(EspMessage(MsgType.NACK, "B", "A", 7), 1.001))
        r2 = Request(8, "B", "A", 0.75, 2, 0.0)
        node._apply(node.core.receive(EspMessage(MsgType.SYN, "B", "A", 8, r2), 1.002))
        assert sent == [("B", MsgType.SYNACK)]  # the second SYNACK is held
        assert await _drain(node) == ["PlEarlyDrop", "PlEarly"]
        assert [x[0] for x in dev.log] == ["schedule", "abort", "schedule"]  # abort first
        assert sent == [("B", MsgType.SYNACK), ("B", MsgType.SYNACK)]
        assert node._stale_aborts == 1 and node.counters.early_aborted == 1
        assert node._early is not None and node._early.rid == 8

    asyncio.run(main())


def test_early_schedule_dropped_before_it_went_out_sends_nothing() -> None:
    """A NACK handled before the pl loop got to the early schedule: no command, no abort, and
    a SYNACK to another peer is never held."""
    async def main() -> None:
        node, dev, sent = _node()
        node._apply(node.core.receive(EspMessage(MsgType.SYN, "B", "A", 7,
                                                 Request(7, "B", "A", 0.75, 1, 0.0)), 1.0))
        node._apply(node.core.receive(EspMessage(MsgType.NACK, "B", "A", 7), 1.001))
        node._apply(node.core.receive(EspMessage(MsgType.SYN, "C", "A", 9,
                                                 Request(9, "C", "A", 0.75, 1, 0.0)), 1.002))
        assert sent == [("B", MsgType.SYNACK), ("C", MsgType.SYNACK)]  # C's not held
        assert await _drain(node) == ["PlEarly", "PlEarlyDrop"]
        assert dev.log == [] and node._stale_aborts == 0

    asyncio.run(main())


def test_early_schedule_whose_command_was_retried_is_aborted_not_used() -> None:
    """A retried SCHEDULE_PAIRS may have run twice (a board bridge): the copy would wait in the
    device's FIFO behind the running one and block the next schedule for ever. The early
    schedule is aborted at once (ABORT clears the FIFO) and the generation schedules at ACK."""
    async def main() -> None:
        node, dev, _ = _node(retry=True)
        node._apply(node.core.receive(EspMessage(MsgType.SYN, "B", "A", 7,
                                                 Request(7, "B", "A", 0.75, 2, 0.0)), 1.0))
        assert await _drain(node) == ["PlEarly"]
        assert [x[0] for x in dev.log] == ["schedule", "abort"]
        assert node._early is not None and node._early.acked is None  # not adopted
        assert node._stale_aborts == 1

    asyncio.run(main())


def test_devices_without_late_join_schedule_at_ack() -> None:
    node, _, _ = _node()
    node._join.device_joins = False
    acts = node.core.receive(EspMessage(MsgType.SYN, "B", "A", 7,
                                        Request(7, "B", "A", 0.75, 1, 0.0)), 1.0)
    assert [type(a) for a in acts] == [Send]
    node._apply(acts)
    assert node._pl_queue.empty() and node._early is None


def test_two_nodes_remote_fires_from_synack_no_pair_before_t_min() -> None:
    """On the lab twin (devices with LATE_JOIN): every generation's remote end scheduled at its
    SYNACK, the pairs agree, and no pair's attempt is before the request's t_min (the
    initiator joins at the grid origin, the first grid point at or after t_min)."""
    from tests.test_node import _check, k2_lab, pair_configs, run_pair

    with LabServer(k2_lab(p=0.05, seed=6)) as srv:
        a, b = pair_configs(srv.urls["A"], srv.urls["B"])
        na, nb = asyncio.run(run_pair(a, b, until_completed=6))
    _check(na, nb)
    early = na.counters.early_schedules + nb.counters.early_schedules
    assert early >= 5  # the remote end of each generation (the last may still be running)
    for n in (na, nb):
        for r in n.records.values():
            if r.t_finish is not None:
                assert r.herald_ts[0] >= timebase.cycle_of(r.t_min)
