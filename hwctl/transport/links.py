"""Byte links under the backend: in-memory pairs, an in-process lab device, serial (pyserial
``serial_for_url``), ZeroMQ. The in-process twin (``twin://``) lives with the twin
(:mod:`hwctl.sim.twin.link`) and registers itself in :mod:`hwctl.transport.schemes`.

Every link moves raw wire bytes both ways and knows nothing about frames: ``await send(data)``,
``await recv()`` (next chunk, ``b""`` once closed), ``await close()``. Small on purpose (see
docs/twin.md "Transports"): the serial link lets the event loop read a port that has a file
descriptor (real ports, ptys) and reads the others (``loop://``, ``socket://``, ``spy://``) in
one thread that hands chunks to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from hwctl.errors import DeviceBusy, DeviceNotFound, LinkError

log = logging.getLogger(__name__)


def _read_ready(fd: int, limit: int, tty_more: int | None
                ) -> tuple[list[bytes], bool, OSError | None]:
    """What a readable non-blocking ``fd`` holds now, up to ``limit`` bytes: (chunks, end of
    file, error). A tty (``tty_more``: the read size below which it is drained) gives at most
    4095 bytes a read and an empty read after bytes only means "nothing more now" (pyserial sets
    VMIN = 0), so reading stops at a short read; a socket's empty read is its end. An OSError
    (port vanished, connection reset) ends the link."""
    parts: list[bytes] = []
    n = 0
    while n < limit:
        try:
            data = os.read(fd, limit - n)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as exc:
            return parts, True, exc
        if not data:
            return parts, (not parts) if tty_more else True, None
        parts.append(data)
        n += len(data)
        if tty_more and len(data) < tty_more:
            break  # drained: no read that can only say "nothing more" (tty_more)
    return parts, False, None


class Link(ABC):
    """A bidirectional byte pipe to one device."""

    #: most bytes one :meth:`recv` joins from chunks already waiting
    COALESCE = 1 << 18
    #: the link delivers its chunks from an event-loop callback of its own (a reader, or a
    #: thread's ``call_soon_threadsafe``), never from inside another coroutine's call (a
    #: :class:`MemoryLink` delivers inside its peer's ``send``): a consumer may then take the
    #: chunks in that callback (:attr:`sink`) instead of from :meth:`recv`
    SINK_OK = False
    #: :meth:`send` never waits (it hands the bytes over in the caller and returns): the
    #: backend may send a command from a callback (:meth:`send_now`,
    #: :meth:`hwctl.transport.backend.Backend.command_now`)
    SEND_NOW = False
    #: a write reaches the device's reader without a kernel worker in between (a socket, an
    #: in-process lab; not a pty, whose writes a kworker delivers): a command written from a
    #: callback gets there sooner (hwctl.node.physical ``_schedule_now``)
    WRITE_WAKES = False

    def __init__(self) -> None:
        self._rx: asyncio.Queue[bytes] = asyncio.Queue()
        self._closed = False
        self._eof = False  # the end marker was taken while joining chunks
        self.bytes_out = 0
        self.bytes_in = 0
        #: wall clock (``time.time_ns()``) when the last chunk reached the event loop: the
        #: node's latency breakdown (hwctl.nodetiming) times device events from here
        self.rx_ns = 0
        #: set by the consumer (only where :attr:`SINK_OK`, and only while no chunk waits in
        #: :meth:`recv`'s queue): chunks go to it in the callback that read them, one task
        #: hop less per device event than :meth:`recv` (the backend's decoder; the end of the
        #: link still comes through :meth:`recv` as ``b""``)
        self.sink: Callable[[bytes], None] | None = None

    @abstractmethod
    async def send(self, data: bytes) -> None: ...

    def send_now(self, data: bytes) -> None:
        """:meth:`send` in the caller, for a link with :attr:`SEND_NOW` (the same errors)."""
        raise NotImplementedError(f"{type(self).__name__} cannot send from a callback")

    async def recv(self) -> bytes:
        """Next chunk of bytes from the device; ``b""`` when the link is closed.

        Chunks that are already waiting (the consumer fell behind) are joined, up to
        :attr:`COALESCE` bytes, so the per-read cost of the decoder is paid once per look rather
        than once per small device read (a tty hands over at most ~4 KiB at a time)."""
        if self._eof or (self._closed and self._rx.empty()):
            return b""
        data = await self._rx.get()
        if not data or self._rx.empty():
            return data
        parts = [data]
        n = len(data)
        while n < self.COALESCE and not self._rx.empty():
            more = self._rx.get_nowait()
            if not more:
                self._eof = True  # closed after these bytes: the next recv says so
                break
            parts.append(more)
            n += len(more)
        return b"".join(parts)

    def _deliver(self, data: bytes) -> None:
        self.bytes_in += len(data)
        self.rx_ns = time.time_ns()
        sink = self.sink
        if sink is not None:
            sink(data)
        else:
            self._rx.put_nowait(data)

    def _took(self, parts: list[bytes], eof: bool, err: OSError | None, gone: str) -> None:
        """The end of an event-loop reader's turn (links read from a file descriptor,
        :func:`_read_ready`): deliver what it read; at the end of file or an error, record why
        (``gone`` when the other end just closed), stop reading and wake ``recv`` with b""."""
        if parts:
            self._deliver(parts[0] if len(parts) == 1 else b"".join(parts))
        if err is not None:
            self.error = err
        if not eof:
            return
        if self.error is None:
            self.error = LinkError(gone)
        self._loop.remove_reader(self._fd)
        self._reading = False
        self._rx.put_nowait(b"")

    def sink_ready(self) -> bool:
        """A :attr:`sink` may be set now: the link supports it and no chunk waits in the queue
        (set later, it would pass them)."""
        return self.SINK_OK and self._rx.empty() and not self._closed

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._rx.put_nowait(b"")


class MemoryLink(Link):
    """One end of an in-memory pipe (tests); :func:`memory_pair` makes two joined ends."""

    peer: MemoryLink

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise LinkError("link closed")
        self.bytes_out += len(data)
        self.peer._deliver(data)


def memory_pair() -> tuple[MemoryLink, MemoryLink]:
    a, b = MemoryLink(), MemoryLink()
    a.peer, b.peer = b, a
    return a, b


class LabLink(Link):
    """One node device of an in-process lab (:class:`hwctl.sim.twin.lab.LabServer`, real time on the
    shared clock): bytes go to the lab's thread, the device's bytes come back through the loop."""

    SINK_OK = True  # (delivered by call_soon_threadsafe)
    SEND_NOW = True  # (handed to the lab's inbox under its lock)
    WRITE_WAKES = True  # (the lab thread's wake pipe)

    def __init__(self, server, node: str) -> None:
        super().__init__()
        self.server, self.node = server, node
        loop = asyncio.get_running_loop()
        server.attach(node, lambda data: loop.call_soon_threadsafe(self._deliver, data))

    async def send(self, data: bytes) -> None:
        self.send_now(data)

    def send_now(self, data: bytes) -> None:
        if self._closed:
            raise LinkError("link closed")
        self.bytes_out += len(data)
        self.server.send(self.node, data)


class SerialLink(Link):
    """pyserial ``serial_for_url``. A port with a file descriptor (a real port, a pty) is read by
    the event loop itself (``add_reader``: the bytes reach the decoder in the loop iteration the
    kernel hands them over, with no thread, no wake-up pipe and no interpreter-lock hand-over;
    measured on the 2x2 demo, the reader thread added ~2 ms to every device event while the
    loop was busy, docs/node.md). Ports without one (``loop://``, ``socket://``, ``spy://``)
    are read in a thread that hands chunks to the event loop."""

    SINK_OK = True  # (the loop's reader, or the thread's call_soon_threadsafe)
    SEND_NOW = True  # (a write(2), or pyserial's blocking write: never a wait on the loop)

    def __init__(self, port_url: str, *, baud: int) -> None:
        import serial

        super().__init__()
        try:
            # exclusive: a second hwctl process on the same port (a node started twice, a
            # selftest on a running node's port) is refused instead of interleaving responses
            self.ser = serial.serial_for_url(port_url, baudrate=baud, timeout=0.02, write_timeout=2,
                                             exclusive=True)
        except (serial.SerialException, ValueError, OSError) as exc:
            msg = serial_open_error(port_url, exc)
            raise (DeviceBusy(msg) if port_busy(exc) else DeviceNotFound(msg)) from None
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._fd = _fileno(self.ser)
        self._reading = self._fd is not None  # registered with the loop's add_reader
        if self._fd is not None:
            os.set_blocking(self._fd, False)
            self._loop.add_reader(self._fd, self._readable)
        else:
            self._thread = threading.Thread(target=self._reader, name=f"serial-rx {port_url}",
                                            daemon=True)
            self._thread.start()

    #: most bytes one wake-up of the loop's reader takes (several reads): bounds the callback
    READ_MAX = 1 << 16
    #: a read shorter than this (half a tty's 4 KiB line-discipline buffer, which one read
    #: empties: at most 4095 bytes) found the port drained, and the reader stops there instead
    #: of reading again; a backlog (full reads) is still taken whole. A read of a drained tty
    #: is not free: Linux's n_tty_read first waits for the tty's pending flush work
    #: (tty_buffer_flush_work) before it answers EAGAIN, and that kworker, which has just woken
    #: this reader, is often not scheduled yet on a busy machine: the node's loop stood still
    #: for up to 2-4 ms (p99) in the reader of device events, DONE included
    #: (benchmarks/RESULTS.md, tenth session). Bytes that come later wake the loop again.
    TTY_MORE = 2048

    def _readable(self) -> None:
        """The loop's reader: everything the kernel holds now (up to :attr:`READ_MAX`), in one
        chunk. A tty hands over at most 4095 bytes per read (the line discipline's buffer), so
        one read per loop iteration capped the host at 4 KiB per iteration: with 20 ms
        iterations (a busy node, or two nodes in one process) that is about the line rate of
        a 3 Mbaud UART, and a host that fell behind could never catch up while the device's
        backlog overflowed (benchmarks/RESULTS.md, hdr_block, seventh session). Reading again
        until the port has nothing left removes the cap."""
        assert self._fd is not None
        parts, eof, err = _read_ready(self._fd, self.READ_MAX, self.TTY_MORE)
        self._took(parts, eof, err, "serial port closed by the other end")

    def _reader(self) -> None:
        ser = self.ser
        try:
            while not self._stop.is_set():
                data = ser.read(max(1, min(ser.in_waiting, 65536)))
                if data:
                    self._loop.call_soon_threadsafe(self._deliver, data)
        except Exception as exc:  # port vanished (USB unplugged): surfaced, not swallowed
            if not self._stop.is_set():
                self.error = exc
                self._loop.call_soon_threadsafe(self._rx.put_nowait, b"")

    async def send(self, data: bytes) -> None:
        self.send_now(data)

    def send_now(self, data: bytes) -> None:
        if self._closed or self.error:
            raise LinkError(f"serial link down: {self.error!r}" if self.error else "link closed")
        self.bytes_out += len(data)
        try:
            fd = self._fd
            if fd is None:
                self.ser.write(data)
            else:
                # one write(2) (the fd is non-blocking): pyserial's write follows every write
                # with a select() on the port and its abort pipe and builds a timeout object,
                # ~15-30 us more on every command under load, on a request's path (the
                # initiator's SCHEDULE_PAIRS; benchmarks/RESULTS.md, eleventh session)
                try:
                    n = os.write(fd, data)
                except (BlockingIOError, InterruptedError):
                    n = 0
                if n < len(data):  # the port's buffer is full: pyserial waits (write_timeout)
                    self.ser.write(data[n:])
        except Exception as exc:  # the port vanished before the reader saw it: a lost link
            # (pyserial raises SerialException or OSError; the supervisor recovers a LinkError)
            self.error = exc
            raise LinkError(f"serial link down: {exc!r}") from None

    async def close(self) -> None:
        """Stop reading and close the port. The port is closed whatever interrupts the wait for
        the reader thread (a cancelled task, an executor already shut down at the loop's end):
        left open, its exclusive lock would refuse every reopen (a reconnect) for as long as the
        process lives. A second close after an interrupted one finds it closed."""
        if not self.ser.is_open:
            return
        self._stop.set()
        if self._reading:  # (also after a failed write: the fd must leave the loop before
            self._loop.remove_reader(self._fd)  # the port closes it)
            self._reading = False
        try:
            await super().close()
            t = self._thread
            if t is not None and t.is_alive():  # (its reads time out every 20 ms)
                await asyncio.get_running_loop().run_in_executor(None, t.join, 1.0)
        finally:
            try:
                self.ser.close()  # (a reader thread still in a read gets an error: stopped)
            except Exception as exc:  # closing a port that vanished: it is gone either way
                log.debug("closing %s: %r", getattr(self.ser, "port", "?"), exc)


class UnixLink(Link):
    """A device served on a Unix stream socket, ``unix:///PATH`` (the lab twin's devices with
    ``hwctl twin --lab --device-link unix`` and the demo's: docs/twin.md). The same bytes as a
    serial port, read by the event loop (``add_reader``) and written with one ``write(2)``,
    without a pty's kernel worker: a pty hands every write to a kworker (the tty flip buffer's
    work) that must run before the reader wakes, and on a busy 2-vCPU machine that kworker
    waits for a CPU behind everything else (a pty round trip between two processes at load 10:
    mean 330-400 us, p99 4-5 ms, against 67 us / 0.11 ms over a Unix socket, both at real-time
    priority; benchmarks/RESULTS.md, twelfth session). A socket's write wakes the reader
    directly. The link ends when the server closes the connection (a lab that stopped, or a
    newer host that connected to the same device: the device has one host, as a UART)."""

    SINK_OK = True  # (the loop's reader)
    SEND_NOW = True  # (one write(2); a full socket buffer is waited for, as pyserial does)
    WRITE_WAKES = True
    #: most bytes one wake-up of the loop's reader takes
    READ_MAX = 1 << 16
    #: how long a write may wait for room in a full socket buffer (pyserial's write_timeout)
    WRITE_TIMEOUT_S = 2.0

    def __init__(self, path: str) -> None:
        super().__init__()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise DeviceNotFound(f"no device at unix://{path}: "
                                 f"{exc.strerror or exc} (is the lab running?)") from None
        sock.setblocking(False)
        self.sock = sock
        self._fd = sock.fileno()
        self.error: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._readable)
        self._reading = True

    def _readable(self) -> None:
        parts, eof, err = _read_ready(self._fd, self.READ_MAX, None)
        self._took(parts, eof, err, "device socket closed by the other end")

    async def send(self, data: bytes) -> None:
        self.send_now(data)

    def send_now(self, data: bytes) -> None:
        if self._closed or self.error:
            raise LinkError(f"device socket down: {self.error!r}" if self.error else "link closed")
        self.bytes_out += len(data)
        view = memoryview(data)
        deadline = time.monotonic() + self.WRITE_TIMEOUT_S
        try:
            while view:
                try:
                    view = view[os.write(self._fd, view):]
                except (BlockingIOError, InterruptedError):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("device socket full (nobody reading)") from None
                    select.select([], [self._fd], [], left)
        except (OSError, TimeoutError) as exc:
            self.error = exc
            raise LinkError(f"device socket down: {exc!r}") from None

    async def close(self) -> None:
        if self._closed:
            return
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False
        await super().close()
        self.sock.close()


def _fileno(ser) -> int | None:
    """The port's file descriptor when it has one the event loop can watch (POSIX serial ports
    and ptys), else None (URL handlers such as ``loop://``, and ``spy://``, whose log is in its
    own read; Windows ports)."""
    if os.name != "posix" or type(ser).__module__ != "serial.serialposix":
        return None
    try:
        fd = ser.fileno()
    except (AttributeError, OSError, ValueError, NotImplementedError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


class ZmqLink(Link):
    """ZeroMQ DEALER to a board bridge or twin ROUTER (``zmq+tcp://host:port``)."""

    #: seconds between keep-alive pings (servers forget clients silent for 30 s by default)
    KEEPALIVE_S = 1.0

    def __init__(self, endpoint: str, *, curve: tuple | None = None) -> None:
        """``curve``: (our KeyPair, the server's public key) for CurveZMQ
        (hwctl.transport.security)."""
        import zmq
        import zmq.asyncio

        super().__init__()
        self._zmq = zmq
        self.ctx = zmq.asyncio.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        if curve is not None:
            from hwctl.transport.security import secure_client

            secure_client(self.sock, *curve)
        try:
            self.sock.connect(endpoint)
        except zmq.ZMQError as exc:
            self.sock.close(0)
            raise DeviceNotFound(f"cannot connect to {endpoint!r}: {exc}") from None
        self.endpoint = endpoint
        self.send_dropped = 0  # frames not sent: no connection up or its queue full
        self._ctl: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)
        self._task = asyncio.get_running_loop().create_task(self._reader())
        self._ping = asyncio.get_running_loop().create_task(self._keepalive())

    async def _keepalive(self) -> None:
        """A ping every KEEPALIVE_S: servers forget silent clients (hwctl.transport.devserver)."""
        from hwctl.transport.zmqwire import CONTROL, PING

        while True:
            await asyncio.sleep(self.KEEPALIVE_S)
            with contextlib.suppress(self._zmq.Again):
                await self.sock.send_multipart([CONTROL, PING], self._zmq.NOBLOCK)

    async def _reader(self) -> None:
        from hwctl.transport.zmqwire import is_control

        while True:
            parts = await self.sock.recv_multipart()
            if is_control(parts):
                if self._ctl.full():  # nobody asked: an unsolicited reply is dropped
                    continue
                self._ctl.put_nowait(parts[1])
            elif len(parts) == 1:
                self._deliver(parts[0])

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise LinkError("link closed")
        try:
            # never block: with no connection up (server gone, CURVE handshake refused) or its
            # queue full, the frame is lost like on a noisy line; the backend's retry and
            # timeout take over
            await self.sock.send(data, self._zmq.NOBLOCK)
            self.bytes_out += len(data)
        except self._zmq.Again:
            self.send_dropped += 1

    async def status(self, timeout: float = 1.0) -> dict:
        """Ask the bridge (or twin server) for its status/health JSON."""
        import json

        from hwctl.errors import LinkTimeout
        from hwctl.transport.zmqwire import CONTROL, STATUS

        with contextlib.suppress(self._zmq.Again):  # no connection: times out below
            await self.sock.send_multipart([CONTROL, STATUS], self._zmq.NOBLOCK)
        try:
            return json.loads(await asyncio.wait_for(self._ctl.get(), timeout))
        except TimeoutError:
            raise LinkTimeout(f"no status reply from {self.endpoint} within {timeout} s") from None

    async def close(self) -> None:
        if self._closed:
            return
        await super().close()
        for task in (self._task, self._ping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.sock.close(0)


def serial_open_error(port_url: str, exc: BaseException) -> str:
    """Why ``port_url`` did not open, in one line with what to do (pyserial's own text names the
    port and its errno twice: ``[Errno 2] could not open port X: [Errno 2] No such file ...``)."""
    import errno

    n = getattr(exc, "errno", None)
    if n is None and "Connection refused" in str(exc):  # (socket://: errno only in the text)
        n = errno.ECONNREFUSED
    board = not port_url.startswith("/") or port_url.startswith("/dev/")
    why = {errno.ENOENT: "no such device (is the board plugged in and powered? `ls /dev/ttyUSB* "
                         "/dev/ttyACM*` lists the ports)" if board else
                         # a path outside /dev is a twin's link (examples/node.toml's
                         # /tmp/hwctl-lab/A): missing, or dangling once its twin stopped
                         "no such device (a path outside /dev is a twin's link: is its twin "
                         "running? start `hwctl twin --lab TOPOLOGY --link-dir DIR` or "
                         "`hwctl twin --pty --link PATH` first)",
           errno.EACCES: "permission denied (add your user to the dialout group: `sudo usermod "
                         "-aG dialout $USER`, then log in again)",
           errno.EBUSY: BUSY, errno.EAGAIN: BUSY,
           errno.ECONNREFUSED: "connection refused (nothing listens there)"}.get(n)
    return f"cannot open serial port {port_url!r}: {why or _short(exc)}"


#: why a port did not open when another program holds it (EBUSY; EAGAIN: its exclusive lock)
BUSY = ("in use by another program (a running `hwctl node` or `hwctl bridge` on this port, a "
        "selftest, a serial terminal?): stop that one first")


def port_busy(exc: BaseException) -> bool:
    """True when ``exc`` (from opening a serial port) says another program holds the port."""
    import errno

    return getattr(exc, "errno", None) in (errno.EBUSY, errno.EAGAIN)


def _short(exc: BaseException) -> str:
    s = str(exc).strip() or type(exc).__name__
    return s.splitlines()[0]
