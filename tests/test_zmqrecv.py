"""hwctl.transport.zmqrecv.FdReceiver: a plain ZeroMQ socket awaited through the event loop's
reader on its FD (the node service's ROUTER). No message may be missed: ones queued before the
first wait, ones arriving while waiting, bursts, and wakes that come while nobody waits. The
timeouts only bound a hang."""

from __future__ import annotations

import asyncio
import select
import socket
import time

import pytest
import zmq

from hwctl.transport.zmqrecv import FdReceiver

HANG_S = 60.0  # bounds a hang only


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _router_and_dealer(identity: bytes | None = b"B") -> tuple[zmq.Context, FdReceiver, zmq.Socket]:
    """A context, an FdReceiver around a ROUTER bound on a free loopback port (linger 0) and a
    DEALER connected to it (linger 0, ``identity`` if given)."""
    ctx = zmq.Context()
    ep = f"tcp://127.0.0.1:{_port()}"
    router = FdReceiver(ctx.socket(zmq.ROUTER))
    router.linger = 0  # forwarded to the socket
    router.bind(ep)
    d = ctx.socket(zmq.DEALER)
    d.linger = 0
    if identity is not None:
        d.setsockopt(zmq.IDENTITY, identity)
    d.connect(ep)
    return ctx, router, d


def test_every_message_arrives_in_order_and_close_releases_the_reader() -> None:
    async def main() -> tuple[list, list, bool]:
        ctx, router, d = _router_and_dealer()
        assert router.sock.linger == 0  # forwarded to the socket
        got: list = []
        d.send_multipart([b"k", b"0"])  # queued before the first wait
        frames = await asyncio.wait_for(router.recv_multipart(copy=False), HANG_S)
        got.append([f.bytes for f in frames])

        async def later() -> None:  # arrives while the receiver waits
            await asyncio.sleep(0.01)
            d.send_multipart([b"k", b"1"])

        t = asyncio.create_task(later())
        got.append(await asyncio.wait_for(router.recv_multipart(), HANG_S))
        await t
        for i in range(2, 202):  # a burst, while nobody waits (wakes with no waiter)
            d.send_multipart([b"k", str(i).encode()])
        await asyncio.sleep(0.05)
        burst = [await asyncio.wait_for(router.recv_multipart(), HANG_S) for _ in range(200)]
        # a receive that waits when the socket closes ends (cancelled), the reader is released
        waiting = asyncio.create_task(router.recv_multipart())
        await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        fd = router.sock.getsockopt(zmq.FD)
        router.close(0)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, HANG_S)
        released = loop.remove_reader(fd) is False  # nothing left registered on it
        d.close(0)
        ctx.term()
        return got, burst, released

    got, burst, released = asyncio.run(main())
    assert got == [[b"B", b"k", b"0"], [b"B", b"k", b"1"]]
    assert [m[2] for m in burst] == [str(i).encode() for i in range(2, 202)]
    assert released


def test_a_send_on_the_same_socket_does_not_lose_the_wake_up() -> None:
    """ZeroMQ's FD is edge-like: a send on the socket processes its pending commands, which takes
    the signal of a message that has just arrived; the FD then stays quiet although the message
    is readable. FdReceiver's own send checks EVENTS afterwards and wakes the waiting receive
    (without that check the receive below never ends: the HANG_S bound fails it)."""
    async def main() -> tuple[bool, list]:
        ctx, router, d = _router_and_dealer()
        d.send(b"0")
        await asyncio.wait_for(router.recv_multipart(), HANG_S)  # connected, reader installed
        waiting = asyncio.create_task(router.recv_multipart())
        while router._waiter is None:  # the receive waits on the FD
            await asyncio.sleep(0.001)
        d.send(b"1")
        fd = router.sock.getsockopt(zmq.FD)
        # the message's signal is on the FD (not yet seen by the loop: no await since)
        assert select.select([fd], [], [], HANG_S)[0]
        time.sleep(0.005)  # past libzmq's command throttle (a send processes commands then)
        router.send_multipart([b"B", b"reply"])  # takes the signal
        took = not select.select([fd], [], [], 0)[0]
        got = await asyncio.wait_for(waiting, HANG_S)
        assert await asyncio.wait_for(asyncio.to_thread(d.recv), HANG_S) == b"reply"
        router.close(0)
        d.close(0)
        ctx.term()
        return took, got

    took, got = asyncio.run(main())
    assert took  # the case this test is about: the FD went quiet with a message readable
    assert got == [b"B", b"1"]


def test_serve_hands_every_message_over_in_order_and_defers_after_false() -> None:
    """serve(): messages queued before it, a burst, and ones sent while it waits, each once and
    in order; ``fn`` returning False lets the task it woke run before the next message; close
    ends serve (cancelled) and releases the reader."""

    async def main() -> tuple[list, list, bool]:
        ctx, router, d = _router_and_dealer(identity=None)
        got: list[int] = []
        order: list[str] = []
        woke = asyncio.Event()
        all_in = asyncio.Event()

        async def woken() -> None:
            while True:
                await woke.wait()
                woke.clear()
                order.append("task")

        def fn(frames: list) -> bool:
            i = int(frames[2].bytes)
            got.append(i)
            order.append(f"m{i}")
            if len(got) == 402:
                all_in.set()
            if i % 50 == 7:
                woke.set()
                return False  # the woken task runs before the next message
            return True

        d.send_multipart([b"k", b"0"])  # queued before serve
        await asyncio.sleep(0.05)
        w = asyncio.create_task(woken())
        s = asyncio.create_task(router.serve(fn))
        for i in range(1, 201):  # a burst
            d.send_multipart([b"k", str(i).encode()])
        await asyncio.sleep(0.05)
        for i in range(201, 402):  # one by one, while serve waits
            d.send_multipart([b"k", str(i).encode()])
            if i % 20 == 0:
                await asyncio.sleep(0.001)
        await asyncio.wait_for(all_in.wait(), HANG_S)
        loop = asyncio.get_running_loop()
        fd = router.sock.getsockopt(zmq.FD)
        router.close(0)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(s, HANG_S)
        released = not loop.remove_reader(fd)
        w.cancel()
        d.close(0)
        ctx.term()
        return got, order, released

    got, order, released = asyncio.run(main())
    assert got == list(range(402))
    for i in range(7, 402, 50):  # the task ran right after each message that returned False
        k = order.index(f"m{i}")
        assert order[k + 1] == "task", order[k - 2:k + 3]
    assert released
