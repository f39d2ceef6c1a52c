"""Sends to a peer that is down are counted (issue 16: "drops are counted and visible"). With
zmq.asyncio a send past the high-water mark returns a failed Future instead of raising, so the
node used to count it as sent (hwctl.transport.zmqsend)."""

from __future__ import annotations

import asyncio
import socket

import pytest
import zmq
import zmq.asyncio

from hwctl.node import K_PL, NodeConfig, NodeService
from hwctl.recovery import K_HB
from hwctl.transport.zmqsend import send_nowait


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_a(transport: str = "zmq") -> NodeService:
    """Node A on a twin, no workload, with one peer B at a free port where nothing listens."""
    cfg = NodeConfig.from_dict({"name": "A", "listen": f"tcp://127.0.0.1:{_port()}",
                                "backend": "twin://", "workload": {"enabled": False},
                                "peers": {"B": {"endpoint": f"tcp://127.0.0.1:{_port()}"}},
                                "peer_transport": transport})
    return NodeService(cfg, rid_base=0)


@pytest.mark.parametrize("transport", ["stream", "zmq"])
def test_sends_to_a_down_peer_are_counted_as_dropped(transport: str) -> None:
    """B never runs: A's queue for it fills up to its high-water mark (1000), every later send is
    a counted drop in A's summary; each send is counted exactly once, as sent or as dropped, and
    no failed Future is left unretrieved."""

    async def main() -> tuple[dict, int, list]:
        loop = asyncio.get_running_loop()
        unhandled: list = []
        loop.set_exception_handler(lambda _loop, ctx: unhandled.append(ctx.get("message")))
        node = _node_a(transport)
        await node.start()
        try:
            out0 = node.counters.msgs_out  # the first heartbeat
            n = 3000
            for i in range(n):
                node._send("B", K_PL if i % 2 else K_HB, b'{"rid": 1, "late": 0}')
            await asyncio.sleep(0)  # a late outcome would come now
            snap = node.snapshot()
            return snap, snap["msgs_out"] - out0, unhandled
        finally:
            await node.close()

    snap, sent, unhandled = asyncio.run(main())
    dropped = snap["send_dropped"].get("B", 0)
    assert sent + dropped == 3000  # each send counted once
    # about the high-water mark (1000, the first heartbeat included) went into the queue
    assert 900 <= sent <= 1100 and dropped >= 1900, (sent, dropped)
    assert not unhandled, unhandled


def test_send_nowait_reports_every_outcome() -> None:
    """Plain and asyncio sockets, a full queue and a send queued behind an earlier one."""
    ctx = zmq.Context()
    try:
        s = ctx.socket(zmq.DEALER)
        s.linger = 0
        s.setsockopt(zmq.SNDHWM, 1)
        s.connect(f"tcp://127.0.0.1:{_port()}")  # nobody there
        outcomes = [send_nowait(s, [b"x"], lambda ok: None) for _ in range(50)]
        assert outcomes[0] is True and outcomes[-1] is False
        s.close()
        assert send_nowait(s, [b"x"], lambda ok: None) is False  # closed: a drop, no raise
    finally:
        ctx.term()

    async def main() -> tuple[list, list]:
        actx = zmq.asyncio.Context()
        late: list[bool] = []
        try:
            a = actx.socket(zmq.DEALER)
            a.linger = 0
            a.setsockopt(zmq.SNDHWM, 1)
            a.connect(f"tcp://127.0.0.1:{_port()}")
            now = [send_nowait(a, [b"x"], late.append) for _ in range(50)]
            # a blocking send waits in the socket's queue: the next non-blocking one is pending
            blocked = a.send_multipart([b"y"])
            pending = send_nowait(a, [b"z"], late.append)
            blocked.cancel()
            await asyncio.sleep(0)
            assert late == []  # still waiting for room in the queue
            a.close()  # it never got room: dropped, reported once
            await asyncio.sleep(0.01)
            return [*now, pending], late
        finally:
            actx.term()

    now, late = asyncio.run(main())
    assert now[0] is True and now[49] is False
    assert now[50] is None and late == [False]


def test_peer_dealers_are_plain_sockets_of_the_node_context() -> None:
    """The DEALERs only send, never wait: plain sockets (a zmq.asyncio send built a Future per
    message, 8-20 us p50 more on every ESP message; benchmarks/RESULTS.md, seventh session),
    sharing the node's context and its I/O thread."""

    async def main() -> tuple[object, bool]:
        node = _node_a()
        await node.start()
        try:
            s = node._out["B"]
            return s, s.context.underlying == node.ctx.underlying
        finally:
            await node.close()

    sock, same_ctx = asyncio.run(main())
    assert isinstance(sock, zmq.Socket) and not isinstance(sock, zmq.asyncio.Socket)
    assert same_ctx


def test_the_default_peer_transport_is_the_stream() -> None:
    """Without [security] keys the node's peers are plain stream connections
    (hwctl.transport.peerstream), and the listener's framing faults reach the node's counters."""
    from hwctl.transport.peerstream import StreamDealer, StreamListener

    async def main() -> tuple[object, object, dict]:
        node = _node_a("stream")
        await node.start()
        try:
            node._router.on_drop("peer_bad_frame")
            return node._out["B"], node._router, dict(node.counters.dropped)
        finally:
            await node.close()

    out, router, dropped = asyncio.run(main())
    assert isinstance(out, StreamDealer) and isinstance(router, StreamListener)
    assert dropped == {"peer_bad_frame": 1}
