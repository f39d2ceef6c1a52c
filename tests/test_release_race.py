"""A generation whose ESP Lock is released while its device finishes (27d84fa): the device's
PAIR events and DONE(COMPLETE) are queued for the generation, then, before the generation takes
them, the peer is declared dead (or restarts, or says it failed). The release path frees ESP's
Lock at once and queues its marker (PeerDead, or the ``failed`` message) *behind* the DONE. The
generation must end as a failed generation with the release's cause (the request runs again,
its pairs discarded and counted), never call ``attempts_finished`` without a Lock: that
ProtocolViolation ended node A in a CI run of tests/test_recovery.py's dead-peer test.

The interleaving is driven explicitly: the events and the release happen in one step of the
test's coroutine (the generation cannot run in between), node time is virtual, and the
liveness verdict comes from :meth:`hwctl.recovery.PeerLiveness.declare_dead` ticks at virtual
times. No sockets, no device, no sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from hwctl import recovery
from hwctl.node import NodeService
from hwctl.node.limits import K_PL
from hwctl.protocols.base import Request
from hwctl.protocols.esp import EspMessage, MsgType
from hwctl.recovery import K_HB
from hwctl.wire import Done, DoneReason, Pair
from tests.test_early_join import _Board, _from_b, _remote_a, _until


@contextlib.asynccontextmanager
async def _loops(node: NodeService) -> AsyncIterator[list[asyncio.Task]]:
    """The node's physical-layer loop and event pump as tasks (yielded: the test checks the pl
    loop is still alive), cancelled after."""
    tasks = [asyncio.create_task(node._pl_loop()), asyncio.create_task(node._event_pump())]
    try:
        yield tasks
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _hb(node: NodeService, inc: int) -> None:
    """A heartbeat from B's life ``inc`` that acknowledges ours: B's session is up."""
    _from_b(node, K_HB, json.dumps({"inc": inc, "ack": node.liveness.incarnation}).encode())


async def _start(node: NodeService, dev: _Board, rid: int) -> tuple[float, int]:
    """B's request ``rid`` with A as its remote: SYN, A's early schedule, ACK; returns its t_min
    and the early schedule's join cycle once the generation runs (it adopted the schedule)."""
    req = Request(rid, "B", "A", 0.75, 2, node.now())
    n0 = len(dev.log)
    _from_b(node, b"esp", EspMessage(MsgType.SYN, "B", "A", rid, req).to_bytes())
    await _until(lambda: dev.log[n0:] == ["schedule"], "the early schedule went out")
    e = node._early
    assert e is not None and e.rid == rid
    t_start = e.t_start
    t_min = node.now() + 0.001
    _from_b(node, b"esp", EspMessage(MsgType.ACK, "B", "A", rid, t_min=t_min).to_bytes())
    await _until(lambda: node._pl_rid == rid and node._early is None, "the generation runs")
    return t_min, t_start


def _device_finishes(node: NodeService, dev: _Board, t_start: int) -> list[list[int]]:
    """The device's two PAIR events and DONE(COMPLETE), through the node's event entry (the
    link's reader callback): queued for the generation, not yet taken. Returns the pair list
    the generation would report."""
    c = t_start + 200
    for k, ts in enumerate((c, c + 150)):
        node._device_event(Pair(ts, (ts - t_start) // 50, k % 2, k, 0))
    node._device_event(Done(c + 160, (c + 160 - t_start) // 50, int(DoneReason.COMPLETE)))
    dev.running = False
    o = node._join.origin(node.clock.cycle_at(node._pl_tmin))  # type: ignore[arg-type]
    return [[c, node._join.attempt(o, c), 0], [c + 150, node._join.attempt(o, c + 150), 1]]


def _declare_b_dead(node: NodeService) -> None:
    """A's liveness ticks at virtual times from B's last message, one per heartbeat, until B is
    declared dead (no await in between, as in the real loop's tick)."""
    live = node.liveness
    t = live.last["B"]
    while not live.declare_dead(t := t + recovery.HEARTBEAT_S):
        assert t <= live.last["B"] + recovery.PEER_DEAD_S + recovery.HEARTBEAT_S
    node.t[0] = max(node.t[0], t)  # type: ignore[attr-defined]


@pytest.mark.parametrize("cause", ["peer dead", "peer restarted", "peer failed"])
def test_lock_released_behind_the_devices_done_fails_the_generation(cause: str) -> None:
    async def main() -> None:
        node, dev, sent, pl = _remote_a()
        async with _loops(node) as (pl_loop, _pump):
            _hb(node, 1)
            t_min, t_start = await _start(node, dev, 7)
            n_pl = len(pl)
            _device_finishes(node, dev, t_start)
            # the release, before the generation takes the DONE queued above
            if cause == "peer dead":
                _declare_b_dead(node)
            elif cause == "peer restarted":
                _hb(node, 2)
            else:
                _from_b(node, K_PL, json.dumps({"rid": 7, "tm": t_min,
                                                "failed": "device lost: gone"}).encode())
            assert node.core.lock is None and node._pl_rid == 7  # released, DONE not taken
            await _until(lambda: node._pl_rid is None or pl_loop.done(), "the generation ended")
            assert not pl_loop.done(), f"the pl loop died: {pl_loop.exception()!r}"
            rc = node.recovery.counters
            assert rc.failed_by == {cause: 1}, rc.failed_by
            assert rc.pairs_discarded == 2
            assert not any("pairs" in m for m in pl[n_pl:])  # no pair list: nothing held
            # the peer said it failed: nothing to tell it; dead / restarted: its next life may
            # still meet the generation's id
            assert any("failed" in m for m in pl[n_pl:]) is (cause != "peer failed")
            assert dev.log[-1] == "abort"
            assert node.counters.completed == 0

            # B's next life (or B again) is served: the release's marker, still queued behind
            # the DONE taken above, is stale for the next generation
            _hb(node, 3)
            node.t[0] += 0.01  # type: ignore[attr-defined]
            _t_min2, t_start2 = await _start(node, dev, 8)
            n_pl = len(pl)
            want = _device_finishes(node, dev, t_start2)
            await _until(lambda: node._pl_rid is None, "the next generation ended")
            assert not pl_loop.done()
            assert rc.failed_by == {cause: 1}
            got = [m for m in pl[n_pl:] if "pairs" in m]
            assert [m["pairs"] for m in got] == [want] and got[0]["rid"] == 8
            assert node.core.lock is None

    asyncio.run(main())
