"""A peer's ``{rid, tm, failed}`` for a generation whose StartAttempts is still queued here (the
physical-layer loop is busy, e.g. with a device that went away) must release the ESP Lock at once,
before the initiator's new SYN for the same request is handled (docs/reliability.md "Device
restart recovery", step 5). Otherwise the new SYN meets the old Lock, is dropped as a duplicate
(paper-mode ESP has no retransmission), the Lock is released later when the queued generation
fails on the early message, and both nodes wait for ever: the initiator in SYN_SENT, the remote
IDLE (the 1-in-20 hang of test_faults_processes after a lab restart). Driven through the node's
message handler alone: no sockets, no device, no physical-layer loop."""

from __future__ import annotations

import asyncio
import json

import pytest

from hwctl.node import NodeConfig, NodeService
from hwctl.node.limits import K_PL
from hwctl.protocols.base import Request
from hwctl.protocols.esp import EspMessage, MsgType, State
from hwctl.recovery import K_ESP


class _Frame:
    __slots__ = ("bytes",)

    def __init__(self, b: bytes) -> None:
        self.bytes = b


def _node_b() -> tuple[NodeService, list[tuple[str, bytes, bytes]]]:
    cfg = NodeConfig.from_dict({
        "name": "B", "listen": "tcp://127.0.0.1:7112", "backend": "twin://",
        "peers": {"A": {"endpoint": "tcp://127.0.0.1:7111"}}, "workload": {"enabled": False}})
    n = NodeService(cfg, rid_base=0)
    sent: list[tuple[str, bytes, bytes]] = []
    n._send = lambda peer, kind, payload: sent.append((peer, kind, payload))  # no sockets
    n.liveness.acked["A"] = n.liveness.send_ok["A"] = True  # the session with A is up
    return n, sent


def _rx(n: NodeService, kind: bytes, payload: bytes) -> str | None:
    return n._rx_one([_Frame(b"A"), _Frame(kind), _Frame(payload)])


def _esp(kind: MsgType, rid: int, **kw: object) -> bytes:
    return EspMessage(kind, "A", "B", rid, **kw).to_bytes()  # type: ignore[arg-type]


def _synacks(sent: list[tuple[str, bytes, bytes]]) -> int:
    return sum(1 for _, k, p in sent
               if k == K_ESP and EspMessage.from_bytes(p).kind is MsgType.SYNACK)


@pytest.mark.parametrize("running", [None, 6, 7],
                         ids=["pl_idle", "earlier_request_ending", "earlier_generation_ending"])
def test_failed_before_our_start_releases_the_lock_for_the_new_syn(running: int | None) -> None:
    """``running``: the rid whose generation the pl loop is still ending (None: idle). After
    ``attempts_finished`` it may still check for a stray schedule (STATUS read) or reconnect to
    a device lost right then (hwctl.recovery.DeviceSupervisor.generate): the Lock is free, the
    next request's StartAttempts waits behind it. 7: an earlier generation of the same request,
    so ``_pl_rid`` names it already."""
    async def main() -> None:
        n, sent = _node_b()
        now = n.now()
        if running is not None:
            n._pl_rid, n._pl_tmin, n._pl_peer = running, now - 1.0, "A"
            n._pl_tm[running] = now - 1.0
        req = Request(7, "A", "B", 0.5, 2, now)
        assert _rx(n, K_ESP, _esp(MsgType.SYN, 7, request=req)) is None
        assert _synacks(sent) == 1
        t_min = now + 0.01
        assert _rx(n, K_ESP, _esp(MsgType.ACK, 7, t_min=t_min)) is None
        assert n.core.state is State.READY and n._pl_queue.qsize() == 1  # not taken yet
        # A's device went away: A ends the generation, tells us, and runs the request again
        fail = json.dumps({"rid": 7, "tm": t_min, "failed": "device lost: gone"}).encode()
        assert _rx(n, K_PL, fail) is None
        assert n.core.lock is None  # released at once, before the next message
        assert _rx(n, K_ESP, _esp(MsgType.SYN, 7, request=req)) is None
        assert _synacks(sent) == 2, "the new SYN was not answered: A waits in SYN_SENT for ever"
        assert n.core.state is State.SYN_RECEIVED
        assert n.recovery.counters.failed_before_start == 1
        # the failed generation's StartAttempts, still queued, is skipped by the pl loop
        assert (7, t_min) in n._pl_skip
        assert not n._pl_early.get(7)
        # the new generation runs, the failed one is skipped
        t_min2 = n.now() + 0.02
        assert _rx(n, K_ESP, _esp(MsgType.ACK, 7, t_min=t_min2)) is None
        ran: list[tuple[int, float]] = []
        done = asyncio.Event()

        async def generate(r: Request, peer: str, tm: float) -> None:
            ran.append((r.rid, tm))
            done.set()

        n.recovery.generate = generate  # type: ignore[method-assign]
        n._pl_rid = n._pl_tmin = None
        pl = asyncio.create_task(n._pl_loop())
        await asyncio.wait_for(done.wait(), 60)  # bounds a hang only
        pl.cancel()
        assert ran == [(7, t_min2)] and not n._pl_skip

    asyncio.run(main())


def test_failed_for_another_generation_is_not_taken_for_the_queued_one() -> None:
    """A ``failed`` whose ``tm`` is not the queued generation's leaves the Lock alone."""
    async def main() -> None:
        n, sent = _node_b()
        now = n.now()
        req = Request(7, "A", "B", 0.5, 2, now)
        _rx(n, K_ESP, _esp(MsgType.SYN, 7, request=req))
        t_min = now + 0.01
        _rx(n, K_ESP, _esp(MsgType.ACK, 7, t_min=t_min))
        fail = json.dumps({"rid": 7, "tm": t_min + 1.0, "failed": "device lost"}).encode()
        assert _rx(n, K_PL, fail) is None
        assert n.core.state is State.READY and not n._pl_skip

    asyncio.run(main())


def test_a_refused_syn_is_sent_again_and_ends_the_stall() -> None:
    """Paper mode: the stall itself, whatever refused the SYN. B holds a Lock for A's request
    (here: never told the generation failed), A runs the request again: B refuses the new SYN
    as a duplicate. Once B's Lock goes (its generation fails later), nothing would ever make A
    send again; A's liveness loop sends the unanswered SYN again after SYN_RESEND_S (node time,
    passed in), and B, IDLE now, answers it."""
    from hwctl.recovery import SYN_RESEND_S

    async def main() -> None:
        cfg = NodeConfig.from_dict({
            "name": "A", "listen": "tcp://127.0.0.1:7111", "backend": "twin://",
            "peers": {"B": {"endpoint": "tcp://127.0.0.1:7112"}}, "workload": {"enabled": False}})
        a = NodeService(cfg, rid_base=0)
        t = [a.now()]
        a.now = lambda: t[0]  # type: ignore[method-assign]
        to_b: list[bytes] = []
        a._send = lambda peer, kind, payload: to_b.append(payload) if kind == K_ESP else None
        a.liveness.acked["B"] = a.liveness.send_ok["B"] = True
        a.liveness.inc["B"] = 1
        b, from_b = _node_b()
        req = a.submit("B", 2)
        assert [EspMessage.from_bytes(m).kind for m in to_b] == [MsgType.SYN]
        # B holds a stale Lock for this request (READY, its start queued): the SYN is refused
        b.core.receive(EspMessage.from_bytes(to_b[0]), b.now())
        b.core.receive(EspMessage(MsgType.ACK, "A", "B", req.rid, t_min=b.now()), b.now())
        assert b.core.state is State.READY
        assert _rx(b, K_ESP, to_b[0]) is None and _synacks(from_b) == 0  # refused: no answer
        assert b.robust.stats.remote_errors == 1
        b.core.attempts_failed(req.rid, b.now())  # B's Lock goes later: B IDLE, A in SYN_SENT
        assert b.core.state is State.IDLE and a.core.state is State.SYN_SENT
        t[0] += SYN_RESEND_S / 2
        a.liveness.last["B"] = t[0]  # B's heartbeats keep coming
        assert not a.liveness.resend_syn(t[0])  # not yet
        t[0] += SYN_RESEND_S / 2
        a.liveness.last["B"] = t[0] - 2.9  # B silent: its death declaration releases the SYN
        assert not a.liveness.resend_syn(t[0])
        a.liveness.last["B"] = t[0]
        assert a.liveness.resend_syn(t[0])
        assert not a.liveness.resend_syn(t[0] + SYN_RESEND_S / 2)  # at most once per period
        assert a.liveness.snapshot()["B"]["syn_resends"] == 1
        assert _rx(b, K_ESP, to_b[-1]) is None
        assert _synacks(from_b) == 1 and b.core.state is State.SYN_RECEIVED  # the stall ends
        answer = next(p for _, k, p in reversed(from_b) if k == K_ESP)
        a._rx_one([_Frame(b"B"), _Frame(K_ESP), _Frame(answer)])
        assert a.core.state is State.READY
        assert not a.liveness.resend_syn(t[0] + 10 * SYN_RESEND_S)  # answered: nothing to send

    asyncio.run(main())
