"""Node-to-node messages over plain stream sockets (TCP or Unix), without ZeroMQ's threads.

Why. A ZeroMQ message between two node services wakes three threads: the sender's libzmq I/O
thread (the application thread only queues it), the receiver's I/O thread, and the receiving
application thread (through ZeroMQ's signaller FD). On a loaded 2-vCPU machine each wake waits
for a CPU: a one-message ping-pong between two processes measured p50 0.48-0.51 ms, p90
2.5-3.3 ms over ZeroMQ against p50 0.27 ms, p90 0.35-0.39 ms over a plain TCP socket at load ~2
(benchmarks/RESULTS.md, eleventh session), and ESP's handshake is three such messages in a row.
Here the sender's ``send`` writes to the kernel in the calling thread and the receiver's event
loop reads in its reader callback: one wake per message.

The same interface as the node's ZeroMQ sockets (:class:`StreamListener` for the ROUTER,
:class:`StreamDealer` for a DEALER: ``bind``/``connect``, ``setsockopt`` for the options the node
sets, ``send_multipart``, ``recv_multipart``/``serve``, ``close``), so
:class:`hwctl.node.NodeService`, its recorder's taps (hwctl.record) and its drop accounting
(:func:`hwctl.transport.zmqsend.send_nowait`) work unchanged. Everything runs in event-loop
callbacks (no task, no thread).

Wire (one direction per connection: the connecting node sends, the listener only reads):

- hello: ``MAGIC`` (8 bytes) + ``u8 n`` + the sender's name (n bytes, UTF-8), once, first;
- then messages: ``u32`` big-endian body length ``L`` (1 <= L <= max size + 256), body = ``u8 k``
  + kind (k bytes) + payload (L - 1 - k bytes): the two frames ``[kind, payload]`` of the ZeroMQ
  link. The listener hands the node ``[name, kind, payload]``, as a ROUTER does
  ``[identity, kind, payload]``.

Faults (counted in :attr:`StreamListener.drops` and reported through ``on_drop(cause)``, never
raised): a connection whose first bytes are not a hello (``peer_bad_hello``, closed), that sends
no complete hello within ``HELLO_TIMEOUT_S`` (``peer_hello_timeout``, closed: the lease of a
connection without a name), a hello naming no peer of ``names`` (``peer_unknown_name``, closed;
the node sets ``names`` to its configured peers), or a body length
out of range (``peer_oversized``, closed: a stream cannot be resynchronised after a bad length;
ZeroMQ's MAXMSGSIZE disconnects the same way); a body whose kind length overruns it
(``peer_bad_frame``: dropped, the stream goes on); a connection accepted while ``MAX_PENDING``
others have not said hello yet closes the oldest of those (``peer_hello_evicted``): idle
connections cannot fill the listener, a real peer (whose hello follows its connect at once) is
named long before ``MAX_PENDING`` newer ones arrive; a hello beyond ``MAX_CONNS`` named
connections (``peer_too_many``, closed; at most one per name of ``names``); an ``accept`` that fails (out of descriptors:
``peer_accept_failed``, accepting paused for ``RECONNECT_S``, as the connection stays queued and
the socket readable). What a well-framed message says is the node's to check
(unknown peer, forged source, bad payload: :meth:`NodeService._rx_one`).

One connection per name. A hello naming a peer that has a connection already (``old``):

- ``old`` has ended (its EOF or reset is waiting, read now): the new connection takes the name at
  once (a restarted peer; counted in :attr:`StreamListener.reconnects`, not a fault). Whole
  messages still unread in ``old`` are dropped, each counted (``peer_superseded``): they are its
  previous life's, and must not follow the new life's;
- ``old`` is open but has sent nothing for ``name_lease_s`` (the node sets its peer-dead time,
  :data:`hwctl.recovery.PEER_DEAD_S`; a live peer sends a heartbeat every 0.5 s): ``old`` is
  closed and the new one takes the name (``peer_replaced``, logged): a hung previous life, or an
  impostor that connected first and holds the name idle, cannot lock the peer out for longer;
- else the new connection is closed (``peer_duplicate_name``, logged): a second connection
  cannot silently take over a live peer (ZeroMQ's ROUTER also refuses a routing id in use). A
  refused :class:`StreamDealer` retries every ``RECONNECT_S``.

Without keys nothing proves a name (next paragraph): this rule keeps the live peer's stream and
makes a duplicate visible; it is not authentication.

Authentication. As the ZeroMQ link without keys: the peer's name is the one its hello gives,
and such a listener may only bind to loopback (:func:`hwctl.transport.security.
require_curve_off_loopback`, checked by the node's config). A node with ``[security]`` keys keeps
the ZeroMQ link with CurveZMQ (hwctl.transport.security): identity = key.

Back-pressure: while the node holds delivery (``serve``'s function returned False) a
connection with a read's worth (``_READ``) already buffered is not read; TCP then pushes back on
the sender (its queue, then ``send_dropped``), as ZeroMQ's RCVHWM does.

Sending never blocks: a message goes to the kernel at once when the connection is up and
nothing is queued, else into a queue of at most ``hwm`` messages (ZeroMQ's SNDHWM: kept across a
reconnect, sent after the new hello); a full queue raises :class:`zmq.Again` (the node counts it
in ``send_dropped``). The connection is retried every ``RECONNECT_S`` while the peer is down. A
message the kernel had only partly taken when the connection broke is lost (as with ZeroMQ: the
node's liveness and recovery deal with a peer that went away; counted in
:attr:`StreamDealer.lost`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq

MAGIC = b"HWCTLPS1"
#: a connection must complete its hello within this (s)
HELLO_TIMEOUT_S = 5.0
#: named inbound connections at once (a node has a few peers; more is a fault or an attack)
MAX_CONNS = 64
#: inbound connections without a hello yet; one more evicts the oldest (module docstring)
MAX_PENDING = 16
#: a named connection silent this long may be replaced by a new hello of its name (s; the
#: node sets its peer-dead time)
NAME_LEASE_S = 3.0
#: retry interval of a peer connection that is down (s; ZeroMQ's reconnect interval)
RECONNECT_S = 0.1
_READ = 1 << 16
_HDR = 4

log = logging.getLogger("hwctl.transport.peerstream")


#: overrides the config's ``peer_transport`` in every node process of a run ("stream" or
#: "zmq"), e.g. for a benchmark's A/B pair
PEER_TRANSPORT_ENV = "HWCTL_PEER_TRANSPORT"
TRANSPORTS = ("stream", "zmq")


def peer_transport(configured: str = "stream", *, secured: bool = False,
                   stand_in: bool = False) -> str:
    """The node's peer transport: "zmq" with CurveZMQ keys (``secured``) or a stand-in ZeroMQ
    context (the replay's), else :data:`PEER_TRANSPORT_ENV` when set, else ``configured``."""
    if secured or stand_in:
        return "zmq"
    v = os.environ.get(PEER_TRANSPORT_ENV, "")
    if v and v not in TRANSPORTS:
        from hwctl.errors import UserError

        raise UserError(f"{PEER_TRANSPORT_ENV}={v!r}: must be stream or zmq")
    return v or configured


def parse_endpoint(endpoint: str) -> tuple[int, Any]:
    """``tcp://host:port`` / ``ipc://path`` -> (address family, address). ``*`` as host binds
    every IPv4 interface, ``*`` as port an ephemeral one."""
    scheme, sep, rest = endpoint.partition("://")
    if scheme == "ipc" and sep and rest:
        return socket.AF_UNIX, rest
    host, colon, port = rest.rpartition(":")
    if scheme != "tcp" or not sep or not colon or not host:
        raise ValueError(f"not a tcp:// or ipc:// endpoint: {endpoint!r}")
    p = 0 if port == "*" else int(port)
    if host == "*":
        return socket.AF_INET, ("0.0.0.0", p)
    if host.startswith("["):
        return socket.AF_INET6, (host[1:-1], p)
    try:
        info = socket.getaddrinfo(host, p, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                  socket.AI_NUMERICHOST)
    except socket.gaierror:  # a name: resolved once, here (never on the event loop's retries)
        info = socket.getaddrinfo(host, p, socket.AF_UNSPEC, socket.SOCK_STREAM)
    fam, _, _, _, addr = info[0]
    return fam, addr


def _tune(sock: socket.socket) -> None:
    sock.setblocking(False)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def hello(name: bytes) -> bytes:
    if not 1 <= len(name) <= 255:
        raise ValueError("a peer name is 1-255 bytes")
    return MAGIC + bytes([len(name)]) + name


def frame(kind: bytes, payload: bytes) -> bytes:
    """One message on the wire (module docstring)."""
    if len(kind) > 255:
        raise ValueError("a message kind is at most 255 bytes")
    return (1 + len(kind) + len(payload)).to_bytes(4, "big") + bytes([len(kind)]) + kind + payload


class Frame:
    """A received frame (``.bytes``, as a :class:`zmq.Frame` received with ``copy=False``)."""

    __slots__ = ("bytes",)

    def __init__(self, b: bytes) -> None:
        self.bytes = b

    def __repr__(self) -> str:
        return f"Frame({self.bytes!r})"


class _Close(Exception):
    """A fault that ends the connection (its cause)."""


class _Conn:
    __slots__ = ("sock", "fd", "buf", "name", "timer", "eof", "paused", "last_rx")

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.buf = bytearray()
        self.name: bytes | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.eof = False  # the peer closed: dropped once its buffer is delivered
        self.paused = False  # not read while held with a full buffer (_readable)
        self.last_rx = now  # loop time of its last bytes (or of its accept)


class StreamListener:
    """The node's listener (in place of its ROUTER): accepts peer connections and hands every
    message to ``serve``'s function, or to ``recv_multipart`` (module docstring)."""

    def __init__(self) -> None:
        self.linger = 0
        self.max_msg = 1 << 18
        self.rcvhwm = 1000
        #: fault -> count (module docstring); ``on_drop(cause)`` is called for each too
        self.drops: dict[str, int] = {}
        self.on_drop: Callable[[str], None] | None = None
        self.accepted = 0
        #: names taken over from a connection that had ended (a restarted peer)
        self.reconnects = 0
        #: the names a hello may give (None: any); the node sets its configured peers
        self.names: set[bytes] | None = None
        self.name_lease_s = NAME_LEASE_S
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._path: str | None = None
        self._conns: dict[int, _Conn] = {}
        self._unnamed: dict[int, _Conn] = {}  # no hello yet, oldest first
        self._named: dict[bytes, _Conn] = {}
        self._last_log = -1e18
        self._fn: Callable[[list], bool] | None = None
        self._served: asyncio.Future[None] | None = None
        self._held = False
        self._pending: dict[int, _Conn] = {}  # connections with bytes left while held
        self._q: deque[list] = deque()  # recv_multipart's messages (not serving)
        self._waiter: asyncio.Future[None] | None = None
        self._accept_timer: asyncio.TimerHandle | None = None  # accepting paused (_accept)

    # -- the node's socket interface
    def setsockopt(self, option: int, value: Any) -> None:
        if option == zmq.MAXMSGSIZE:
            self.max_msg = int(value)
        elif option == zmq.RCVHWM:
            self.rcvhwm = int(value)

    def bind(self, endpoint: str) -> None:
        """Listen on ``endpoint`` (raises OSError / ValueError when it cannot)."""
        fam, addr = parse_endpoint(endpoint)
        self._loop = asyncio.get_running_loop()
        sock = socket.socket(fam, socket.SOCK_STREAM)
        try:
            if fam == socket.AF_UNIX:
                with contextlib.suppress(FileNotFoundError):  # a stale socket file (as ZeroMQ)
                    if stat.S_ISSOCK(os.stat(addr).st_mode):
                        os.unlink(addr)
                self._path = addr
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(MAX_CONNS + MAX_PENDING)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._accept)

    async def serve(self, fn: Callable[[list], bool]) -> None:
        """Hand every message to ``fn`` in the reader callback that read it; ``fn`` returns
        False to let the tasks it woke run before the next message (the rest follows in a
        callback after theirs), as :meth:`hwctl.transport.zmqrecv.FdReceiver.serve`. Until
        closed or cancelled; raises what ``fn`` raised."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._fn, self._served = fn, done
        try:
            while self._q and not self._held:  # taken before serve() began
                if not fn(self._q.popleft()):
                    self._hold()
            for c in list(self._conns.values()):
                self._pending[c.fd] = c
            if not self._held:
                self._resume()
            await done
        finally:
            self._fn = self._served = None

    async def recv_multipart(self, copy: bool = True) -> list:
        """The next message (the task path: a recorded session's tap, hwctl.record)."""
        while not self._q:
            if self.closed:
                raise zmq.ZMQError(errno.ENOTSOCK, "closed")
            assert self._loop is not None
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._q.popleft()

    def close(self, linger: int | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        loop = self._loop
        for c in list(self._conns.values()):
            self._drop_conn(c)
        if self._accept_timer is not None:
            self._accept_timer.cancel()
            self._accept_timer = None
        if self._sock is not None:
            if loop is not None and not loop.is_closed():
                loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        if self._served is not None and not self._served.done():
            self._served.cancel()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()

    # -- connections
    def _count(self, cause: str) -> None:
        self.drops[cause] = self.drops.get(cause, 0) + 1
        if self.on_drop is not None:
            self.on_drop(cause)

    def _accept(self) -> None:
        assert self._sock is not None and self._loop is not None
        while True:
            try:
                s, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # that one connection: gone already
                continue
            except OSError:  # EMFILE, ENFILE, ENOBUFS...: the connection stays in the backlog,
                # so the socket stays readable: pause accepting (else a busy loop), keep listening
                self._count("peer_accept_failed")
                self._loop.remove_reader(self._sock.fileno())
                self._accept_timer = self._loop.call_later(RECONNECT_S, self._accept_again)
                return
            if len(self._unnamed) >= MAX_PENDING:  # idle ones cannot fill the listener
                self._drop_conn(next(iter(self._unnamed.values())))
                self._count("peer_hello_evicted")
            _tune(s)
            c = _Conn(s, self._loop.time())
            self._conns[c.fd] = c
            self._unnamed[c.fd] = c
            self.accepted += 1
            c.timer = self._loop.call_later(HELLO_TIMEOUT_S, self._hello_timeout, c)
            self._loop.add_reader(c.fd, self._readable, c)
            self._readable(c)  # a peer's hello is usually here already: named before an eviction
            if self.closed:
                return

    def _accept_again(self) -> None:
        self._accept_timer = None
        if not self.closed and self._sock is not None and self._loop is not None:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def _hello_timeout(self, c: _Conn) -> None:
        c.timer = None
        if c.name is None and self._conns.get(c.fd) is c:
            self._drop_conn(c)
            self._count("peer_hello_timeout")

    def _drop_conn(self, c: _Conn) -> None:
        if c.name is not None and self._named.get(c.name) is c:
            del self._named[c.name]
        if self._conns.get(c.fd) is c:
            del self._conns[c.fd]
            self._pending.pop(c.fd, None)
            self._unnamed.pop(c.fd, None)
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(c.fd)
        if c.timer is not None:
            c.timer.cancel()
            c.timer = None
        c.sock.close()

    def _readable(self, c: _Conn) -> None:
        if self._held and len(c.buf) >= _READ:  # delivery held, a read's worth waits already:
            assert self._loop is not None  # stop reading (TCP pushes back, as ZeroMQ's RCVHWM)
            self._loop.remove_reader(c.fd)  # until _pump has taken what is here
            c.paused = True
            self._pending[c.fd] = c
            return
        try:
            data = c.sock.recv(_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the peer closed (or reset) its end: what it sent before still counts
            c.eof = True
            assert self._loop is not None
            self._loop.remove_reader(c.fd)
            if self._held:
                self._pending[c.fd] = c
            else:
                self._pump(c)
            return
        c.buf += data
        assert self._loop is not None
        c.last_rx = self._loop.time()
        if self._held:  # after the tasks the last message woke (serve)
            self._pending[c.fd] = c
            return
        self._pump(c)

    def _hold(self) -> None:
        self._held = True
        assert self._loop is not None
        self._loop.call_soon(self._resume)

    def _resume(self) -> None:
        self._held = False
        while self._pending and not self._held:
            _, c = self._pending.popitem()
            self._pump(c)

    def _pump(self, c: _Conn) -> None:
        """Deliver the whole messages in ``c``'s buffer (until held)."""
        try:
            while not self._held and not self.closed:
                msg = self._next(c)
                if msg is None:
                    if c.eof:
                        self._drop_conn(c)
                    elif c.paused and self._conns.get(c.fd) is c:  # all taken: read again
                        c.paused = False
                        assert self._loop is not None
                        self._loop.add_reader(c.fd, self._readable, c)
                    return
                self._deliver(msg)
            if self._conns.get(c.fd) is c:
                self._pending[c.fd] = c  # held: the rest after the woken tasks
        except _Close as exc:
            self._drop_conn(c)
            self._count(str(exc))

    def _next(self, c: _Conn) -> list | None:
        """The next whole message of ``c`` (None: incomplete). A body whose kind overruns it is
        counted and skipped; a bad hello or length raises :class:`_Close`."""
        buf = c.buf
        while True:
            if c.name is None:
                if len(buf) < len(MAGIC) + 1:
                    if not MAGIC.startswith(bytes(buf[:len(MAGIC)])):
                        raise _Close("peer_bad_hello")
                    return None
                n = buf[len(MAGIC)]
                if buf[:len(MAGIC)] != MAGIC or n == 0:
                    raise _Close("peer_bad_hello")
                if len(buf) < len(MAGIC) + 1 + n:
                    return None
                name = bytes(buf[len(MAGIC) + 1:len(MAGIC) + 1 + n])
                del buf[:len(MAGIC) + 1 + n]
                if c.timer is not None:
                    c.timer.cancel()
                    c.timer = None
                self._unnamed.pop(c.fd, None)
                self._claim(c, name)
                c.name = name
                assert c.name is not None
            if len(buf) < _HDR:
                return None
            size = int.from_bytes(buf[:_HDR], "big")
            if not 1 <= size <= self.max_msg + 256:
                raise _Close("peer_oversized")
            if len(buf) < _HDR + size:
                return None
            k = buf[_HDR]
            if 1 + k > size:
                del buf[:_HDR + size]
                self._count("peer_bad_frame")
                continue
            kind = bytes(buf[_HDR + 1:_HDR + 1 + k])
            payload = bytes(buf[_HDR + 1 + k:_HDR + size])
            del buf[:_HDR + size]
            return [Frame(c.name), Frame(kind), Frame(payload)]

    def _claim(self, c: _Conn, name: bytes) -> None:
        """Give ``name`` to ``c`` by the rule of the module docstring (raises :class:`_Close`
        when ``c`` may not have it)."""
        if self.names is not None and name not in self.names:
            raise _Close("peer_unknown_name")
        old = self._named.get(name)
        if old is not None:
            assert self._loop is not None
            if self._ended(old):
                self._supersede(old)
                self.reconnects += 1
            elif self._loop.time() - old.last_rx >= self.name_lease_s:
                self._drop_conn(old)
                self._count("peer_replaced")
                self._log("a new connection replaced %r's, silent for %.1f s (peer_replaced)",
                          name, self._loop.time() - old.last_rx)
            else:
                self._log("refused a second connection as %r while its connection is live "
                          "(peer_duplicate_name: a second process with that name?)", name)
                raise _Close("peer_duplicate_name")
        elif len(self._named) >= MAX_CONNS:
            raise _Close("peer_too_many")
        self._named[name] = c

    def _ended(self, c: _Conn) -> bool:
        """Whether ``c``'s peer has closed it: what is waiting in the kernel is read into its
        buffer (a few reads; a peer that keeps sending is live)."""
        if c.eof:
            return True
        for _ in range(4):
            try:
                data = c.sock.recv(_READ)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                data = b""
            if not data:
                c.eof = True
                return True
            c.buf += data
        return False

    def _supersede(self, c: _Conn) -> None:
        """Drop ended ``c``, counting the whole messages it still had (module docstring)."""
        self._drop_conn(c)
        try:
            while self._next(c) is not None:
                self._count("peer_superseded")
        except _Close:
            pass

    def _log(self, fmt: str, *args: Any) -> None:
        assert self._loop is not None
        now = self._loop.time()
        if now - self._last_log >= 1.0:  # counted always, logged at most once a second
            self._last_log = now
            log.warning("peer listener: " + fmt, *args)

    def _deliver(self, msg: list) -> None:
        fn = self._fn
        if fn is None:  # the task path
            if len(self._q) >= self.rcvhwm:
                self._count("peer_rx_overflow")
                return
            self._q.append(msg)
            w = self._waiter
            if w is not None and not w.done():
                w.set_result(None)
            return
        try:
            go = fn(msg)
        except Exception as exc:
            if self._served is not None and not self._served.done():
                self._served.set_exception(exc)
            self._fn = None
            return
        if not go:
            self._hold()


class StreamDealer:
    """A connection to one peer's listener (in place of a DEALER): sends only (module
    docstring)."""

    def __init__(self) -> None:
        self.linger = 0
        self.hwm = 1000
        self.name = b""
        #: messages lost with a connection that broke while the kernel had part of them
        self.lost = 0
        self.connects = 0
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._addr: tuple[int, Any] | None = None
        self._sock: socket.socket | None = None
        self._up = False  # connected (hello queued first)
        self._hello_q = False  # _q[0] is the connection's hello
        self._q: deque[bytes] = deque()  # whole frames; the first may be partly sent
        self._off = 0  # bytes of _q[0] already sent
        self._timer: asyncio.TimerHandle | None = None
        self._writing = False

    def setsockopt(self, option: int, value: Any) -> None:
        if option == zmq.SNDHWM:
            self.hwm = int(value)
        elif option == zmq.IDENTITY:
            self.name = bytes(value)

    def connect(self, endpoint: str) -> None:
        self._addr = parse_endpoint(endpoint)
        self._loop = asyncio.get_running_loop()
        hello(self.name)  # checks the name
        self._dial()

    def send_multipart(self, parts: Any, flags: int = 0, **_: Any) -> None:
        """Queue ``[kind, payload]`` and write what the kernel takes now; raises
        :class:`zmq.Again` when ``hwm`` messages wait already, :class:`zmq.ZMQError` when
        closed."""
        if self.closed:
            raise zmq.ZMQError(errno.ENOTSOCK, "closed")
        kind, payload = parts
        data = frame(bytes(kind), bytes(payload))
        if len(self._q) - self._hello_q >= self.hwm:
            raise zmq.Again()
        self._q.append(data)
        if self._up and len(self._q) == 1:
            self._flush()

    def close(self, linger: int | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._shut()
        self._q.clear()

    # -- the connection
    def _dial(self) -> None:
        self._timer = None
        if self.closed:
            return
        assert self._addr is not None and self._loop is not None
        fam, addr = self._addr
        try:
            s = socket.socket(fam, socket.SOCK_STREAM)
        except OSError:  # out of descriptors, say: try again later, never give up on the peer
            self._retry()
            return
        _tune(s)
        err = s.connect_ex(addr)
        self._sock = s
        if err == 0:
            self._connected()
        elif err in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            self._loop.add_writer(s.fileno(), self._connect_done)
        else:
            self._retry()

    def _connect_done(self) -> None:
        s = self._sock
        assert s is not None and self._loop is not None
        self._loop.remove_writer(s.fileno())
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._retry()
        else:
            self._connected()

    def _connected(self) -> None:
        s = self._sock
        assert s is not None and self._loop is not None
        self.connects += 1
        self._up = True
        self._q.appendleft(hello(self.name))
        self._hello_q = True
        self._loop.add_reader(s.fileno(), self._readable)  # the peer's end (EOF: it went away)
        self._flush()

    def _readable(self) -> None:
        s = self._sock
        if s is None:
            return
        try:
            data = s.recv(_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._retry()
        # else: the listener sends nothing; anything it does is ignored

    def _flush(self) -> None:
        s = self._sock
        q = self._q
        while q and self._up and s is not None:
            head = q[0]
            try:
                n = s.send(memoryview(head)[self._off:] if self._off else head)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self._retry()
                return
            self._off += n
            if self._off < len(head):
                if not self._writing:
                    assert self._loop is not None
                    self._loop.add_writer(s.fileno(), self._flush)
                    self._writing = True
                return
            q.popleft()
            self._off = 0
            self._hello_q = False
        if self._writing and s is not None and self._loop is not None:
            self._loop.remove_writer(s.fileno())
            self._writing = False

    def _shut(self) -> None:
        s = self._sock
        if s is None:
            return
        self._sock = None
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.remove_reader(s.fileno())
            loop.remove_writer(s.fileno())
        self._writing = False
        s.close()
        self._up = False
        if self._hello_q:  # not (all) sent: the next connection sends its own
            self._q.popleft()
            self._hello_q = False
        elif self._off:  # a message the kernel took part of: lost (module docstring)
            self._q.popleft()
            self.lost += 1
        self._off = 0

    def _retry(self) -> None:
        self._shut()
        if not self.closed and self._timer is None and self._loop is not None:
            self._timer = self._loop.call_later(RECONNECT_S, self._dial)
