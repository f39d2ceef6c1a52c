"""The remote end schedules its device at its SYNACK, on the global attempt grid (hwctl.pljoin,
docs/physical-layer.md section 5 "Early schedule"): no ESP hop between ACK and its command, no
pair before t_min, an early schedule aborted on NACK before any SYNACK to that peer goes out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import types
from collections.abc import AsyncIterator

import pytest

from hwctl import timebase
from hwctl.node import NodeConfig, NodeService
from hwctl.node.physical import EARLY_SCHEDULE_ENV, PlEarly, PlEarlyDrop
from hwctl.pljoin import JoinPlanner
from hwctl.protocols.base import Request, Send
from hwctl.protocols.esp import EspMessage, MsgType
from hwctl.sim.twin.lab import LabServer
from hwctl.wire import Done, DoneReason, Pair, Reg, StatusBit


@pytest.fixture(autouse=True)
def _early_on(monkeypatch) -> None:
    """The config key decides (default on): no override from the environment."""
    monkeypatch.delenv(EARLY_SCHEDULE_ENV, raising=False)


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


class _Frame:
    __slots__ = ("bytes",)

    def __init__(self, b: bytes) -> None:
        self.bytes = b


class _Board:
    """A node device behind a board bridge, as far as these tests need one: a schedule runs
    until ABORTed (the peer never fires with it here), STATUS tells RUNNING, ABORT of a running
    schedule gives DONE(ABORTED); ``outage``: the first SCHEDULE_PAIRS waits for the bridge to
    come back and counts one retry (its answer was lost with the old bridge, which had passed
    the command to the device: that copy ran with the peer while every event was lost)."""

    def __init__(self, node: NodeService, outage: asyncio.Event | None = None) -> None:
        self.node = node
        self.outage = outage
        self.log: list[str] = []
        self.stats = types.SimpleNamespace(retries=0)
        self.running = False
        self.events: asyncio.Queue = asyncio.Queue()

    async def schedule_pairs(self, t_start: int, count: int, period: int, pairs: int,
                             port: int) -> None:
        self.log.append("schedule")
        self.running = True
        if self.outage is not None:
            outage, self.outage = self.outage, None
            await outage.wait()
            self.stats.retries += 1

    async def abort(self) -> None:
        self.log.append("abort")
        if self.running:
            self.running = False
            self.events.put_nowait(Done(self.node.clock.cycle_at(self.node.now()), 0,
                                        int(DoneReason.ABORTED)))

    async def read_reg(self, addr: int) -> int:
        assert addr == Reg.STATUS
        self.log.append("read STATUS")
        return int(self.running) << StatusBit.RUNNING

    async def next_event(self) -> object:
        return await self.events.get()


@contextlib.asynccontextmanager
async def _loops(node: NodeService) -> AsyncIterator[None]:
    """The node's physical-layer loop and event pump as tasks for the body, cancelled after."""
    tasks = [asyncio.create_task(node._pl_loop()), asyncio.create_task(node._event_pump())]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _remote_a(outage: asyncio.Event | None = None) -> tuple[NodeService, _Board, list, list]:
    """Node A, the remote of B's requests, on a :class:`_Board`, its node time virtual (``t``);
    ``sent``: its ESP messages to B (kinds), ``pl``: its ``pl`` messages."""
    node = NodeService(NodeConfig.from_dict({
        "name": "A", "listen": "tcp://127.0.0.1:1", "backend": "twin://",
        "peers": {"B": {"endpoint": "tcp://127.0.0.1:2"}}, "workload": {"enabled": False}}))
    t = [timebase.seconds()]
    node.now = lambda: t[0]  # type: ignore[method-assign]
    node.t = t  # type: ignore[attr-defined]
    dev = _Board(node, outage)
    node.backend = dev  # type: ignore[assignment]
    node._join.device_joins = True
    node.liveness.acked["B"] = node.liveness.send_ok["B"] = True
    sent: list = []
    pl: list = []
    node._send = lambda peer, kind, payload: (  # type: ignore[method-assign]
        sent.append(EspMessage.from_bytes(payload).kind) if kind == b"esp"
        else pl.append(json.loads(payload)))
    return node, dev, sent, pl


def _from_b(node: NodeService, kind: bytes, payload: bytes) -> None:
    assert node._rx_one([_Frame(b"B"), _Frame(kind), _Frame(payload)]) is None


async def _until(cond, what: str) -> None:
    """Let the node's tasks run until ``cond()``: a count of loop steps, not a time."""
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never: {what}")


def test_peer_done_before_our_generation_starts_ends_it_after_a_probe() -> None:
    """The hang of the eighth session (tests/test_faults_processes.py, the bridge killed under
    node A, early schedule on: A stuck at BUSY after a link retry). A, the remote, sends its
    early SCHEDULE_PAIRS at SYNACK; the bridge dies with the command on the device: that copy
    fires with B, B records its pairs and finishes, A's events of it are lost. The command's
    retry through the new bridge runs it again; A (before) aborted the early schedule and its
    generation, started by the ACK that came meanwhile, scheduled anew, alone on the grid: the
    device RUNNING for 2^32-1 attempts. B's pair list
    came before that generation started, so nothing told it the peer was done, and the
    watchdog's reconcile waits on a RUNNING schedule: BUSY for ever. Now the generation starts
    knowing the peer finished it: its DONE gets one probe, then the generation ends ("schedule
    lost") and the device is aborted. Driven by the watchdog's probe calls, in virtual time.
    (The early schedule is adopted since: the same wait, on the retried copy alone.)"""
    from hwctl.recovery import PROBE_S, RECONCILE_AFTER_S

    async def main() -> None:
        outage = asyncio.Event()
        node, dev, sent, pl = _remote_a(outage)
        async with _loops(node):
            req = Request(7, "B", "A", 0.75, 2, node.now())
            _from_b(node, b"esp", EspMessage(MsgType.SYN, "B", "A", 7, req).to_bytes())
            assert sent == [MsgType.SYNACK]
            await _until(lambda: dev.log == ["schedule"], "the early schedule went out")
            t_min = node.now() + 0.001
            _from_b(node, b"esp", EspMessage(MsgType.ACK, "B", "A", 7, t_min=t_min).to_bytes())
            node.t[0] += 0.02  # B's generation ran with the copy; its pair list comes
            c = node.clock.cycle_at(t_min) + 50
            _from_b(node, b"pl", json.dumps({"rid": 7, "tm": t_min, "need": 0.0,
                                             "pairs": [[c, 1, 0], [c + 50, 2, 1]]}).encode())
            outage.set()  # the new bridge: the retried command runs again, alone now
            await _until(lambda: node._pl_rid == 7 and node.recovery.early_retried,
                         "the generation adopted the retried early schedule")
            sup = node.recovery
            for _ in range(4):  # the watchdog's probes (hwctl.recovery.watchdog)
                node.t[0] += max(PROBE_S, RECONCILE_AFTER_S)
                await sup._check_generation(dev, sup.epoch)
                for _ in range(20):  # the generation takes what the probe queued
                    await asyncio.sleep(0)
                if node._pl_rid is None:
                    break
            assert node._pl_rid is None, "A stays BUSY: its generation waits on a lone schedule"
            assert sup.counters.schedules_lost == 1 and dev.log[-1] == "abort"
            assert not dev.running and node.core.lock is None
            assert pl[-1]["failed"].startswith("schedule lost")  # B is told

    asyncio.run(main())


def test_synack_held_behind_a_drop_goes_out_when_the_generation_meets_it() -> None:
    """A generation waiting for its device (a recovery under way) when B's ``failed`` releases
    its Lock: the early schedule is dropped, and B's new SYN for the request is answered with a
    SYNACK held until that schedule is aborted. The generation then meets the dropped early
    schedule first: it must abort it and send the held SYNACK (before, it only forgot the
    schedule, and the queued drop found nothing to do: the SYNACK was never sent, B stayed in
    SYN_SENT and A in SYN_RECEIVED for ever, B's SYN resends refused as duplicates)."""
    async def main() -> None:
        node, dev, sent, pl = _remote_a()
        async with _loops(node):
            req = Request(7, "B", "A", 0.75, 2, node.now())
            syn = EspMessage(MsgType.SYN, "B", "A", 7, req).to_bytes()
            _from_b(node, b"esp", syn)
            await _until(lambda: node.counters.early_schedules == 1, "early schedule acked")
            node.recovery.up.clear()  # the device is being recovered
            t_min = node.now() + 0.001
            _from_b(node, b"esp", EspMessage(MsgType.ACK, "B", "A", 7, t_min=t_min).to_bytes())
            await _until(lambda: node._pl_rid == 7, "the generation waits for the device")
            _from_b(node, b"pl", json.dumps({"rid": 7, "tm": t_min,
                                             "failed": "device lost: gone"}).encode())
            assert node.core.lock is None
            _from_b(node, b"esp", syn)  # B runs the request again
            assert sent == [MsgType.SYNACK]  # held behind the early schedule's abort
            node.recovery.up.set()
            await _until(lambda: sent == [MsgType.SYNACK, MsgType.SYNACK],
                         "the held SYNACK went out")
            assert dev.log[:2] == ["schedule", "abort"]  # the old schedule aborted first
            await _until(lambda: node._pl_rid is None and node.counters.early_schedules == 2,
                         "the failed generation ended, the new early schedule went out")
            assert node._early is not None and node._early.lock is node.core.lock

    asyncio.run(main())


def test_retried_early_schedule_is_adopted_and_checked_for_a_copy_after() -> None:
    """The process-fault hang as reproduced on the lab twin (pty, device restarted under both
    nodes; gdb on the stuck nodes: B BUSY for 300 s, its schedule RUNNING alone, 597M attempts):
    the remote's early SCHEDULE_PAIRS was answered only to a retry (a slow answer under load);
    meanwhile the schedule fired with A and held the request's pairs. Before, the retry made B
    abort it and schedule anew at ACK, alone. Now the generation adopts it and takes its PAIR
    events and DONE(COMPLETE); a copy of the command (possible only across a board-bridge
    restart) is looked for after the generation, as for the generation's own retried commands:
    one STATUS read, and an ABORT only if a schedule still runs."""
    async def main() -> None:
        outage = asyncio.Event()
        node, dev, sent, pl = _remote_a(outage)
        async with _loops(node):
            req = Request(7, "B", "A", 0.75, 2, node.now())
            _from_b(node, b"esp", EspMessage(MsgType.SYN, "B", "A", 7, req).to_bytes())
            await _until(lambda: dev.log == ["schedule"], "the early schedule went out")
            t_min = node.now() + 0.001
            _from_b(node, b"esp", EspMessage(MsgType.ACK, "B", "A", 7, t_min=t_min).to_bytes())
            c = node._join.origin(node.clock.cycle_at(t_min))
            e = node._early
            assert e is not None
            for k, ts in enumerate((c + 100, c + 250)):  # fired with B while the answer was late
                dev.events.put_nowait(Pair(ts, (ts - e.t_start) // 50, k % 2, k, 0))
            dev.events.put_nowait(Done(c + 260, (c + 260 - e.t_start) // 50,
                                       int(DoneReason.COMPLETE)))
            dev.running = False
            outage.set()
            await _until(lambda: pl and "pairs" in pl[-1], "the generation completed")
            assert pl[-1]["pairs"] == [[c + 100, 2, 0], [c + 250, 5, 1]]
            assert dev.log == ["schedule", "read STATUS"]  # no copy runs: nothing aborted
            assert node.core.lock is None and node.counters.early_schedules == 1
            assert node.recovery.counters.stray_schedules == 0

    asyncio.run(main())
