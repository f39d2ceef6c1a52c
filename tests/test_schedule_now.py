"""The initiator's SCHEDULE_PAIRS written in the callback that handled SYNACK, before its ACK
(hwctl.node.physical ``_schedule_now``, :meth:`hwctl.transport.backend.Backend.command_now`):
the command path, the generation adopting it, a generation that does not run aborting it."""

from __future__ import annotations

import asyncio

import pytest

from hwctl import timebase
from hwctl.errors import DeviceError, LinkError
from hwctl.node import NodeConfig, NodeService
from hwctl.node.physical import SCHEDULE_NOW_ENV, PlStart, _Now
from hwctl.protocols.base import Request
from hwctl.protocols.esp import EspMessage, MsgType
from hwctl.sim.twin.lab import LabServer
from hwctl.stall import StallBound
from hwctl.transport import Backend
from hwctl.transport.links import Link
from hwctl.wire import Ack, ErrorCode, Nak, SchedulePairs, encode
from tests.test_node import _check, drive, k2_lab, pair_configs


class _Wire(Link):
    """A link that keeps what the backend writes; the test answers through ``answer``."""

    SEND_NOW = True

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.send_now(data)

    def send_now(self, data: bytes) -> None:
        if self._closed:
            raise LinkError("link closed")
        self.frames.append(data)

    def answer(self, b: Backend, resp) -> None:
        """The device's response to the command ``b`` sent last (its sequence number)."""
        self._deliver(encode(resp, b._seq))


def _cmd() -> SchedulePairs:
    return SchedulePairs(1000, 2**32 - 1, 50, 2, 0)


def test_command_now_writes_in_the_caller_one_at_a_time_and_resends_on_timeout() -> None:
    async def main() -> None:
        link = _Wire()
        b = Backend(link, "test://", timeout=0.05, retries=2)
        t = b.command_now(_cmd())
        assert t is not None and len(link.frames) == 1  # written before any await
        assert b.command_now(_cmd()) is None and len(link.frames) == 1  # one at a time
        link.answer(b, Ack(SchedulePairs.OPCODE))
        assert isinstance(await t, Ack)
        # the link is free again; a NAK is DeviceError, as from schedule_pairs
        t = b.command_now(_cmd())
        assert t is not None
        link.answer(b, Nak(SchedulePairs.OPCODE, ErrorCode.OVERFLOW))
        with pytest.raises(DeviceError):
            await t
        # no answer: the same bytes again after the timeout (a retry), then the answer
        t = b.command_now(_cmd())
        assert t is not None
        while len(link.frames) < 4:
            await asyncio.sleep(0.01)
        assert link.frames[-1] == link.frames[-2] and b.stats.retries == 1
        link.answer(b, Ack(SchedulePairs.OPCODE))
        assert isinstance(await t, Ack)
        # a command through the task path waits for the link as before, and holds it
        slow = asyncio.create_task(b.command(_cmd()))
        await asyncio.sleep(0)
        assert b.command_now(_cmd()) is None
        link.answer(b, Ack(SchedulePairs.OPCODE))
        await slow
        # a link that cannot write from a callback, or whose send a test replaced: never
        link.send = link.send_now  # type: ignore[method-assign,assignment]
        assert b.command_now(_cmd()) is None
        await b.close()

    asyncio.run(main())


def _initiator(events: list) -> NodeService:
    node = NodeService(NodeConfig.from_dict({
        "name": "A", "listen": "tcp://127.0.0.1:1", "backend": "twin://",
        "peers": {"B": {"endpoint": "tcp://127.0.0.1:2"}}, "workload": {"enabled": False}}))

    class _Aborts:
        async def abort(self) -> None:
            events.append("abort")

    node.backend = _Aborts()  # type: ignore[assignment]
    return node


async def _acked() -> object:
    return Ack(SchedulePairs.OPCODE)


async def _refused() -> object:
    raise DeviceError("refused", ErrorCode.OVERFLOW)


@pytest.mark.parametrize("answer", ["ack", "nak", "old life"])
def test_a_command_whose_generation_does_not_run_is_aborted(answer: str) -> None:
    """The pl loop takes the request's PlStart but skips the generation (cancelled): the
    command sent at SYNACK is ABORTed once acknowledged (its DONE(ABORTED) skipped by the next
    generation), never when the device refused it or it went to an earlier device life."""

    async def main() -> None:
        events: list = []
        node = _initiator(events)
        req = Request(rid=7, initiator="A", remote="B", fidelity=0.75, pairs=2, t=0.0)
        task = asyncio.ensure_future(_refused() if answer == "nak" else _acked())
        epoch = node.recovery.epoch + (answer == "old life")
        node._pre = _Now(7, 1.0, 0, 0, 0.0, epoch, task)
        node._pl_cancelled.add(7)
        node._pl_queue.put_nowait(PlStart(req, "B", 1.0))
        loop = asyncio.create_task(node._pl_loop())
        for _ in range(100):
            await asyncio.sleep(0)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        assert node._pre is None and 7 not in node._pl_cancelled
        aborted = answer == "ack"
        assert events == (["abort"] if aborted else [])
        assert node._stale_aborts == aborted and node.counters.schedules_now_aborted == aborted

    asyncio.run(main())


async def _run_logged(a: NodeConfig, b: NodeConfig, until: int) -> tuple[NodeService, NodeService,
                                                                         dict[str, list]]:
    """Two nodes as tests.test_node.run_pair, each node's SCHEDULE_PAIRS commands sent in a
    callback and ESP messages logged in order."""
    na, nb = NodeService(a, rid_base=0), NodeService(b, rid_base=1_000_000)
    log: dict[str, list] = {"A": [], "B": []}
    for n in (na, nb):
        await n.start()
        name, real_now, real_send = n.cfg.name, n.backend.command_now, n._send

        def command_now(msg, name=name, real=real_now):
            t = real(msg)
            log[name].append(("cmd", msg.pairs, t is not None))
            return t

        def send(peer, kind, payload, name=name, real=real_send):
            if kind == b"esp":
                m = EspMessage.from_bytes(payload)
                log[name].append((m.kind, m.rid))
            real(peer, kind, payload)

        n.backend.command_now = command_now  # type: ignore[method-assign]
        n._send = send  # type: ignore[method-assign]
    bound = StallBound(lambda: tuple((n.counters.msgs_in, n.counters.heralds, n.counters.completed)
                                     for n in (na, nb)), 60.0)
    await drive(na, nb, lambda: na.counters.completed + nb.counters.completed >= until, bound)
    return na, nb, log


@pytest.mark.parametrize(("env", "link", "now"), [("1", "pty", True), ("0", "unix", False),
                                                  ("", "pty", False), ("", "unix", True)])
def test_initiator_command_goes_out_before_its_ack(monkeypatch, env: str, link: str,
                                                   now: bool) -> None:
    """On the lab twin: where it is on (the switch, or unset on a link whose write wakes its
    reader: a Unix socket, not a pty), every ACK an initiator sent came right after its
    SCHEDULE_PAIRS was written (in the same callback), the generations adopted those commands
    and the pairs agree (0 disagreements, no pair before t_min); off, none is sent that way."""
    if env:
        monkeypatch.setenv(SCHEDULE_NOW_ENV, env)
    else:
        monkeypatch.delenv(SCHEDULE_NOW_ENV, raising=False)
    on = "1" if now else "0"
    with LabServer(k2_lab(p=0.05, seed=11), device_link=link) as srv:
        a, b = pair_configs(srv.urls["A"], srv.urls["B"])
        na, nb, log = asyncio.run(_run_logged(a, b, 6))
    assert srv.error is None
    _check(na, nb)
    for n in (na, nb):
        for r in n.records.values():
            if r.t_finish is not None:
                assert r.herald_ts[0] >= timebase.cycle_of(r.t_min)
    adopted = sum(n.counters.schedules_now for n in (na, nb))
    assert sum(n.counters.schedules_now_aborted for n in (na, nb)) == 0
    acks = 0
    for name, entries in log.items():
        for i, e in enumerate(entries):
            if e[0] is MsgType.ACK:
                acks += 1
                before = entries[i - 1] if i else None
                if on == "1":
                    rec = (na if name == "A" else nb).records[e[1]]
                    assert before == ("cmd", rec.pairs, True), (name, entries[max(0, i - 3):i + 1])
        assert not any(e[0] == "cmd" for e in entries) or on == "1"
    assert acks >= 5
    # adopted by their generations (a node's last may still wait for its answer at the stop)
    assert (adopted >= acks - 2) if now else adopted == 0
