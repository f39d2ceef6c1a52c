"""The node's stream peer transport (hwctl.transport.peerstream): framing, order, the hold after a
generation start, reconnects, the queue bound, and hostile input (garbled and oversized frames,
bad or missing hellos, idle connections, duplicate names, too many connections) counted and dropped without ending the listener."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest
import zmq

from hwctl.transport import peerstream as ps
from hwctl.transport.zmqsend import send_nowait


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _until(cond: Callable[[], bool], limit: int = 20_000) -> None:
    """Wait for ``cond`` on the loop's own progress (no wall-clock budget in the assertion)."""
    for _ in range(limit):
        if cond():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")


class _Serve:
    """A listener served into a list (``fn`` may be replaced)."""

    def __init__(self, endpoint: str) -> None:
        self.got: list[list[bytes]] = []
        self.lst = ps.StreamListener()
        self.lst.bind(endpoint)
        self.fn: Callable[[list], bool] = lambda f: self.got.append([x.bytes for x in f]) or True
        self.task = asyncio.create_task(self.lst.serve(lambda f: self.fn(f)))

    async def close(self) -> None:
        self.lst.close()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def _dealer(name: bytes, endpoint: str) -> ps.StreamDealer:
    d = ps.StreamDealer()
    d.setsockopt(zmq.IDENTITY, name)
    d.connect(endpoint)
    return d


@pytest.mark.parametrize("kind", ["tcp", "ipc"])
def test_messages_arrive_whole_and_in_order_with_the_senders_name(kind, tmp_path) -> None:
    ep = f"tcp://127.0.0.1:{_port()}" if kind == "tcp" else f"ipc://{tmp_path}/a.sock"

    async def main() -> list:
        srv = _Serve(ep)
        d = _dealer(b"B", ep)
        big = bytes(range(256)) * 1000  # more than one read, and more than the socket buffer
        for i in range(200):
            d.send_multipart([b"esp", b"%d" % i])
        d.send_multipart([b"pl", big])
        d.send_multipart([b"vrf", b""])
        await _until(lambda: len(srv.got) == 202)
        d.close()
        await srv.close()
        return srv.got

    got = asyncio.run(main())
    assert got[:200] == [[b"B", b"esp", b"%d" % i] for i in range(200)]
    assert got[200] == [b"B", b"pl", bytes(range(256)) * 1000]
    assert got[201] == [b"B", b"vrf", b""]


def test_a_message_that_starts_work_lets_the_woken_tasks_run_before_the_next() -> None:
    """``fn`` returning False holds the rest until the tasks it woke have run (as the ZeroMQ
    receiver's serve: a generation's SCHEDULE_PAIRS goes out before the messages behind its
    start)."""

    async def main() -> list[str]:
        ep = f"tcp://127.0.0.1:{_port()}"
        order: list[str] = []
        wake = asyncio.Event()

        async def worker() -> None:
            await wake.wait()
            order.append("task")

        t = asyncio.create_task(worker())
        srv = _Serve(ep)

        def fn(f: list) -> bool:
            order.append(f[2].bytes.decode())
            if f[2].bytes == b"start":
                wake.set()
                return False
            return True

        srv.fn = fn
        d = _dealer(b"B", ep)
        for m in (b"a", b"start", b"b", b"c"):
            d.send_multipart([b"esp", m])
        await _until(lambda: len(order) == 5)
        await t
        d.close()
        await srv.close()
        return order

    assert asyncio.run(main()) == ["a", "start", "task", "b", "c"]


def test_a_dealer_queues_until_its_peer_listens_and_reconnects_after_a_restart() -> None:
    async def main() -> tuple[list, list, int]:
        ep = f"tcp://127.0.0.1:{_port()}"
        d = _dealer(b"B", ep)
        d.send_multipart([b"esp", b"early"])  # nobody listens yet: queued
        await asyncio.sleep(0.05)
        srv = _Serve(ep)
        await _until(lambda: len(srv.got) == 1)
        first = srv.got
        await srv.close()  # the peer goes away ...
        await _until(lambda: not d._up)
        d.send_multipart([b"esp", b"while down"])
        srv2 = _Serve(ep)  # ... and comes back on the same endpoint
        d.send_multipart([b"esp", b"after"])
        await _until(lambda: len(srv2.got) == 2)
        d.close()
        await srv2.close()
        return first, srv2.got, d.connects

    first, second, connects = asyncio.run(main())
    assert first == [[b"B", b"esp", b"early"]]
    assert second == [[b"B", b"esp", b"while down"], [b"B", b"esp", b"after"]]
    assert connects == 2


def test_a_full_queue_is_a_counted_drop_and_a_closed_dealer_refuses() -> None:
    async def main() -> list:
        d = _dealer(b"B", f"tcp://127.0.0.1:{_port()}")  # nothing listens
        d.setsockopt(zmq.SNDHWM, 3)
        late: list[bool] = []
        out = [send_nowait(d, [b"hb", b"x"], late.append) for _ in range(5)]
        d.close()
        out.append(send_nowait(d, [b"hb", b"x"], late.append))
        assert not late
        return out

    assert asyncio.run(main()) == [True, True, True, False, False, False]


def _raw(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


async def _closed(s: socket.socket) -> bool:
    """The listener closed this raw connection (EOF or reset on our end)."""
    s.setblocking(False)
    for _ in range(20_000):
        try:
            if s.recv(1) == b"":
                return True
        except BlockingIOError:
            pass
        except ConnectionResetError:
            return True
        await asyncio.sleep(0.001)
    return False


def test_hostile_input_is_counted_dropped_and_never_ends_the_listener() -> None:
    """Bad hello, a garbled frame (kind longer than its body), an oversized length, a stranger's
    name (each connection its own name: one connection per name, test_one_connection_per_name):
    each counted by cause; the listener goes on serving a good peer throughout."""

    async def main() -> tuple[dict, list, list]:
        port = _port()
        ep = f"tcp://127.0.0.1:{port}"
        srv = _Serve(ep)
        causes: list[str] = []
        srv.lst.on_drop = causes.append
        good = _dealer(b"B", ep)

        bad_hello = _raw(port)  # not our protocol (a ZeroMQ greeting, say)
        bad_hello.sendall(b"\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f")
        assert await _closed(bad_hello)

        garbled = _raw(port)  # kind length 200 in a 3-byte body, then a good message
        garbled.sendall(ps.hello(b"G") + (3).to_bytes(4, "big") + b"\xc8ab"
                        + ps.frame(b"esp", b"after garbled"))
        await _until(lambda: [b"G", b"esp", b"after garbled"] in srv.got)

        huge = _raw(port)  # a length beyond the limit: the stream cannot be trusted further
        huge.sendall(ps.hello(b"H") + (srv.lst.max_msg + 1000).to_bytes(4, "big") + b"x" * 100)
        assert await _closed(huge)

        zero = _raw(port)
        zero.sendall(ps.hello(b"O") + (0).to_bytes(4, "big"))
        assert await _closed(zero)

        stranger = _raw(port)  # framing is fine; who it claims to be is the node's to check
        stranger.sendall(ps.hello(b"Z") + ps.frame(b"esp", b"from Z"))
        await _until(lambda: [b"Z", b"esp", b"from Z"] in srv.got)

        good.send_multipart([b"esp", b"still served"])
        await _until(lambda: [b"B", b"esp", b"still served"] in srv.got)
        for s in (bad_hello, garbled, huge, zero, stranger):
            s.close()
        good.close()
        await srv.close()
        return dict(srv.lst.drops), causes, srv.got

    drops, causes, got = asyncio.run(main())
    assert drops == {"peer_bad_hello": 1, "peer_bad_frame": 1, "peer_oversized": 2}
    assert sorted(causes) == sorted(c for c, n in drops.items() for _ in range(n))
    assert [b"G", b"esp", b"after garbled"] in got


def test_silent_and_excess_connections_are_closed(monkeypatch) -> None:
    """The hello lease: a connection without a whole hello is closed after HELLO_TIMEOUT_S; a
    hello beyond MAX_CONNS named connections is refused."""
    monkeypatch.setattr(ps, "HELLO_TIMEOUT_S", 0.05)
    monkeypatch.setattr(ps, "MAX_CONNS", 2)

    async def main() -> tuple[dict, bool, bool]:
        port = _port()
        srv = _Serve(f"tcp://127.0.0.1:{port}")
        silent = _raw(port)  # connects, says nothing: closed after the hello timeout
        half = _raw(port)
        half.sendall(ps.MAGIC[:3])  # a hello that never completes
        closed_silent = await _closed(silent)
        closed_half = await _closed(half)
        a, b = _raw(port), _raw(port)
        a.sendall(ps.hello(b"B"))
        b.sendall(ps.hello(b"C"))
        await _until(lambda: len(srv.lst._named) == 2)
        c = _raw(port)  # a third name at once: refused
        c.sendall(ps.hello(b"D"))
        assert await _closed(c)
        for s in (silent, half, a, b, c):
            s.close()
        await srv.close()
        return dict(srv.lst.drops), closed_silent, closed_half

    drops, closed_silent, closed_half = asyncio.run(main())
    assert closed_silent and closed_half
    assert drops == {"peer_hello_timeout": 2, "peer_too_many": 1}


def test_idle_connections_cannot_lock_the_peers_out(monkeypatch) -> None:
    """Connections that never say hello (the hello lease far away) fill at most MAX_PENDING
    places: one more evicts the oldest, and a real peer still gets in and is served."""
    monkeypatch.setattr(ps, "HELLO_TIMEOUT_S", 1e6)
    monkeypatch.setattr(ps, "MAX_PENDING", 2)

    async def main() -> tuple[dict, list, list[bool]]:
        port = _port()
        ep = f"tcp://127.0.0.1:{port}"
        srv = _Serve(ep)
        idle = [_raw(port) for _ in range(6)]  # more than MAX_PENDING + MAX_CONNS would be too
        await _until(lambda: srv.lst.accepted == 6)
        evicted = [await _closed(s) for s in idle[:4]]
        good = _dealer(b"B", ep)
        good.send_multipart([b"esp", b"in"])
        await _until(lambda: [b"B", b"esp", b"in"] in srv.got)
        for s in idle:
            s.close()
        good.close()
        await srv.close()
        return dict(srv.lst.drops), srv.got, evicted

    drops, got, evicted = asyncio.run(main())
    assert evicted == [True] * 4
    # the dealer's connection may have evicted one more idle one before its hello was read
    assert drops.get("peer_hello_evicted") in (4, 5) and set(drops) == {"peer_hello_evicted"}
    assert got == [[b"B", b"esp", b"in"]]


def test_one_connection_per_name() -> None:
    """A second hello of a live peer's name is refused (counted); a peer that closed comes back
    at once; a name silent for the lease is taken over (counted); a name not configured is
    refused."""

    async def main() -> tuple[dict, list, list[bool], ps.StreamListener]:
        port = _port()
        srv = _Serve(f"tcp://127.0.0.1:{port}")
        lst = srv.lst
        lst.names = {b"B"}
        lst.name_lease_s = 1e6
        closed = []
        r1 = _raw(port)
        r1.sendall(ps.hello(b"B") + ps.frame(b"esp", b"1"))
        await _until(lambda: [b"B", b"esp", b"1"] in srv.got)
        imp = _raw(port)  # an impostor while B is live: refused, B keeps its stream
        imp.sendall(ps.hello(b"B") + ps.frame(b"esp", b"forged"))
        closed.append(await _closed(imp))
        r1.sendall(ps.frame(b"esp", b"2"))
        await _until(lambda: [b"B", b"esp", b"2"] in srv.got)
        # B restarts: its old connection closes (a last message in flight), the new one says
        # hello at once, before the listener may have read the old one's end
        r1.sendall(ps.frame(b"esp", b"last"))
        r1.close()
        r2 = _raw(port)
        r2.sendall(ps.hello(b"B") + ps.frame(b"esp", b"3"))
        await _until(lambda: [b"B", b"esp", b"3"] in srv.got)
        lst.name_lease_s = 0.0  # r2 silent "for the lease": a new hello takes the name
        r3 = _raw(port)
        r3.sendall(ps.hello(b"B") + ps.frame(b"esp", b"4"))
        await _until(lambda: [b"B", b"esp", b"4"] in srv.got)
        closed.append(await _closed(r2))
        z = _raw(port)
        z.sendall(ps.hello(b"Z") + ps.frame(b"esp", b"z"))
        closed.append(await _closed(z))
        for s in (imp, r2, r3, z):
            s.close()
        await srv.close()
        return dict(lst.drops), srv.got, closed, lst

    drops, got, closed, lst = asyncio.run(main())
    assert closed == [True, True, True]
    assert [b"B", b"esp", b"forged"] not in got and [b"B", b"esp", b"z"] not in got
    # the old life's last message: delivered before its end was read, or counted as superseded
    last = [b"B", b"esp", b"last"] in got
    assert last != bool(drops.pop("peer_superseded", 0))
    assert drops == {"peer_duplicate_name": 1, "peer_replaced": 1, "peer_unknown_name": 1}
    bodies = [m[2] for m in got]
    assert bodies == [b"1", b"2", *([b"last"] if last else []), b"3", b"4"]


def test_a_refused_dealer_comes_back_when_the_name_is_free() -> None:
    """A StreamDealer refused as a duplicate retries; once the holder has gone it gets in."""

    async def main() -> list:
        port = _port()
        ep = f"tcp://127.0.0.1:{port}"
        srv = _Serve(ep)
        srv.lst.name_lease_s = 1e6
        holder = _raw(port)
        holder.sendall(ps.hello(b"B"))
        await _until(lambda: b"B" in srv.lst._named)
        d = _dealer(b"B", ep)
        await _until(lambda: srv.lst.drops.get("peer_duplicate_name", 0) >= 1)
        holder.close()
        d.send_multipart([b"esp", b"back"])
        await _until(lambda: [b"B", b"esp", b"back"] in srv.got)
        d.close()
        await srv.close()
        return srv.got

    assert asyncio.run(main()) == [[b"B", b"esp", b"back"]]


def test_messages_sent_before_a_peer_closes_are_delivered() -> None:
    async def main() -> list:
        port = _port()
        srv = _Serve(f"tcp://127.0.0.1:{port}")
        s = _raw(port)
        s.sendall(ps.hello(b"B") + ps.frame(b"esp", b"1") + ps.frame(b"esp", b"2"))
        s.close()
        await _until(lambda: len(srv.got) == 2 and not srv.lst._conns)
        await srv.close()
        return srv.got

    assert asyncio.run(main()) == [[b"B", b"esp", b"1"], [b"B", b"esp", b"2"]]


def test_recv_multipart_path_and_its_bound() -> None:
    """Without serve (a recorded session's tap awaits recv_multipart): the same messages, at most
    RCVHWM waiting, the excess counted."""

    async def main() -> tuple[list, dict]:
        port = _port()
        lst = ps.StreamListener()
        lst.setsockopt(zmq.RCVHWM, 2)
        lst.bind(f"tcp://127.0.0.1:{port}")
        s = _raw(port)
        s.sendall(ps.hello(b"B") + b"".join(ps.frame(b"esp", b"%d" % i) for i in range(3)))
        await _until(lambda: sum(lst.drops.values()) == 1)
        got = [[f.bytes for f in await lst.recv_multipart()] for _ in range(2)]
        s.close()
        lst.close()
        return got, dict(lst.drops)

    got, drops = asyncio.run(main())
    assert got == [[b"B", b"esp", b"0"], [b"B", b"esp", b"1"]]
    assert drops == {"peer_rx_overflow": 1}


def test_endpoints_and_the_transport_choice(monkeypatch) -> None:
    assert ps.parse_endpoint("tcp://127.0.0.1:5") == (socket.AF_INET, ("127.0.0.1", 5))
    assert ps.parse_endpoint("tcp://*:0") == (socket.AF_INET, ("0.0.0.0", 0))
    assert ps.parse_endpoint("ipc:///tmp/x") == (socket.AF_UNIX, "/tmp/x")
    assert ps.parse_endpoint("tcp://[::1]:7")[0] == socket.AF_INET6
    with pytest.raises(ValueError):
        ps.parse_endpoint("udp://1.2.3.4:5")
    monkeypatch.delenv(ps.PEER_TRANSPORT_ENV, raising=False)
    assert ps.peer_transport() == "stream"
    assert ps.peer_transport("stream", secured=True) == "zmq"  # CurveZMQ keys: ZeroMQ
    monkeypatch.setenv(ps.PEER_TRANSPORT_ENV, "zmq")
    assert ps.peer_transport("stream") == "zmq"
    monkeypatch.setenv(ps.PEER_TRANSPORT_ENV, "tcp")
    from hwctl.errors import UserError

    with pytest.raises(UserError):
        ps.peer_transport()


def test_a_dealer_that_cannot_open_a_socket_tries_again(monkeypatch) -> None:
    """No descriptor left for the connection (EMFILE): retried, not given up."""
    async def main() -> list:
        ep = f"tcp://127.0.0.1:{_port()}"
        srv = _Serve(ep)
        real, fails = socket.socket, [2]

        def flaky(*a, **kw):
            if fails[0]:
                fails[0] -= 1
                raise OSError(24, "Too many open files")
            return real(*a, **kw)

        monkeypatch.setattr(ps.socket, "socket", flaky)
        d = _dealer(b"B", ep)
        d.send_multipart([b"esp", b"x"])
        await _until(lambda: len(srv.got) == 1)
        monkeypatch.setattr(ps.socket, "socket", real)
        d.close()
        await srv.close()
        return srv.got

    assert asyncio.run(main()) == [[b"B", b"esp", b"x"]]


def test_an_accept_that_fails_pauses_the_listener_instead_of_spinning() -> None:
    """accept() failing with EMFILE (out of descriptors) leaves the connection in the backlog, so
    the listening socket stays readable: retried in every loop iteration, that is a busy loop.
    The listener counts it and pauses accepting, then accepts the waiting peer when it can."""

    class _Failing:  # the listening socket, with accept() failing until ``ok``
        def __init__(self, real: socket.socket) -> None:
            self.real, self.ok, self.calls = real, False, 0

        def fileno(self) -> int:
            return self.real.fileno()

        def accept(self):
            self.calls += 1
            if not self.ok:
                raise OSError(24, "Too many open files")
            return self.real.accept()

        def close(self) -> None:
            self.real.close()

    async def main() -> tuple[int, dict, list]:
        port = _port()
        srv = _Serve(f"tcp://127.0.0.1:{port}")
        fake = _Failing(srv.lst._sock)
        srv.lst._sock = fake  # type: ignore[assignment]
        d = _dealer(b"B", f"tcp://127.0.0.1:{port}")
        await _until(lambda: fake.calls >= 1)
        for _ in range(200):  # loop iterations, not time: a spinning reader runs in each
            await asyncio.sleep(0)
        calls = fake.calls
        fake.ok = True
        d.send_multipart([b"esp", b"x"])
        await _until(lambda: len(srv.got) == 1)
        d.close()
        await srv.close()
        return calls, dict(srv.lst.drops), srv.got

    calls, drops, got = asyncio.run(main())
    assert calls <= 3  # paused after the failure (a spinning listener: ~200)
    assert drops.get("peer_accept_failed", 0) >= 1
    assert got == [[b"B", b"esp", b"x"]]


def test_a_held_listener_stops_reading_instead_of_buffering_without_bound() -> None:
    """While the node holds delivery after each message (its generation queue is not empty:
    ``fn`` returns False), one message is handed on per loop iteration; the listener must not go
    on reading 64 KiB per iteration into the connection's buffer (a peer sending fast would
    grow it without bound: ZeroMQ's RCVHWM pushes back instead). It stops reading, so TCP pushes
    back, and every message still arrives, in order."""
    n, size = 3000, 1000

    async def main() -> tuple[int, list[int]]:
        port = _port()
        srv = _Serve(f"tcp://127.0.0.1:{port}")
        seen: list[int] = []
        most = 0

        def fn(f: list) -> bool:
            nonlocal most
            most = max(most, *(len(c.buf) for c in srv.lst._conns.values()), 0)
            seen.append(int.from_bytes(f[2].bytes[:4], "big"))
            return False  # hold after every message

        srv.fn = fn
        raw = _raw(port)
        data = ps.hello(b"B") + b"".join(
            ps.frame(b"esp", i.to_bytes(4, "big") + bytes(size - 4)) for i in range(n))
        sender = asyncio.get_running_loop().run_in_executor(None, raw.sendall, data)
        await _until(lambda: len(seen) == n, limit=200_000)
        await sender
        raw.close()
        await srv.close()
        return most, seen

    most, seen = asyncio.run(main())
    assert seen == list(range(n))
    assert most <= 2 * ps._READ + 2 * 1024  # (unbounded: ~ the whole 3 MB)
