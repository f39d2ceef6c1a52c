"""Awaiting a plain ZeroMQ socket's messages through the event loop's reader on its FD.

:mod:`zmq.asyncio` builds, per received message, a Future with its bookkeeping (a timeout
check, a done-callback, the socket's EVENTS read three times, its watch state updated) on top of
the wake-up itself. :class:`FdReceiver` does the least that is correct: try a non-blocking
receive; when there is nothing, wait for the socket's FD (ZeroMQ's signaller: readable when the
socket's state may have changed) and try again. The FD is edge-like (it stays readable until
ZeroMQ takes the signal, which a receive or an EVENTS read does), so a wake without a waiter
reads EVENTS to take it, and a waiter always receives before it waits: no message is missed.
Used for the node service's ROUTER (benchmarks/RESULTS.md, seventh session).

The FD is also taken by any other operation on the socket that processes ZeroMQ's commands: a
send, or an EVENTS read, made while a receive waits can take the signal of a message that has
just arrived; the FD then stays quiet and the waiter would sleep for ever with a message readable
(pyzmq/ipykernel: check EVENTS after every operation, "edge-triggered"). So :meth:`send`,
:meth:`send_multipart` and ``getsockopt(EVENTS)`` through this wrapper check EVENTS afterwards and
wake a waiting receive when a message is readable (``tests/test_zmqrecv.py -k send``). The node's
ROUTER only receives; this keeps the class correct for a socket that also sends.

Everything but :meth:`FdReceiver.recv_multipart`, the sends above and :meth:`FdReceiver.close` is
the plain socket's (``bind``, ``setsockopt``, ...): the recorder's tap (hwctl.record) wraps this like any
socket with an awaitable ``recv_multipart``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import zmq


class FdReceiver:
    """A plain :class:`zmq.Socket` with an awaitable ``recv_multipart`` (see the module)."""

    def __init__(self, sock: zmq.Socket) -> None:
        self.__dict__["sock"] = sock  # attribute writes go to the socket (linger, ...)
        self.__dict__["_loop"] = None
        self.__dict__["_waiter"] = None
        self.__dict__["_drain"] = None  # serve()'s reader while it runs
        self.__dict__["_served"] = None  # serve()'s end

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.sock, name, value)

    async def recv_multipart(self, copy: bool = True) -> list:
        sock = self.sock
        while True:
            try:
                return sock.recv_multipart(zmq.NOBLOCK, copy=copy)
            except zmq.Again:
                pass
            loop = self._loop
            if loop is None:
                loop = asyncio.get_running_loop()
                loop.add_reader(sock.getsockopt(zmq.FD), self._wake)
                self.__dict__["_loop"] = loop
            waiter = loop.create_future()
            self.__dict__["_waiter"] = waiter
            try:
                await waiter
            finally:
                self.__dict__["_waiter"] = None

    async def serve(self, fn: Callable[[list], bool], copy: bool = False) -> None:
        """Hand every message to ``fn`` in the loop's reader callback of the socket's FD, not in
        a task woken by it (one loop iteration less per message: benchmarks/RESULTS.md,
        tenth session); until cancelled, or raises what ``fn`` or a receive raised. ``fn``
        returns False to let the tasks it woke run before the next message (the rest is taken
        in a callback after theirs). Not together with :meth:`recv_multipart`."""
        loop = asyncio.get_running_loop()
        sock = self.sock
        done: asyncio.Future[None] = loop.create_future()

        def drain() -> None:
            if done.done() or sock.closed:
                return
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=copy)
                except zmq.Again:
                    return
                except Exception as exc:
                    done.set_exception(exc)
                    return
                try:
                    go = fn(frames)
                except Exception as exc:
                    done.set_exception(exc)
                    return
                if not go:
                    loop.call_soon(drain)  # after the wake-ups fn made (FIFO)
                    return

        if self._loop is None:
            loop.add_reader(sock.getsockopt(zmq.FD), self._wake)
            self.__dict__["_loop"] = loop
        self.__dict__["_drain"], self.__dict__["_served"] = drain, done
        try:
            drain()  # what is already queued (its FD signal may have been taken)
            await done
        finally:
            self.__dict__["_drain"] = self.__dict__["_served"] = None

    def send(self, data: Any, flags: int = 0, **kw: Any) -> Any:
        try:
            return self.sock.send(data, flags, **kw)
        finally:
            self._check_in()

    def send_multipart(self, msg_parts: Any, flags: int = 0, **kw: Any) -> Any:
        try:
            return self.sock.send_multipart(msg_parts, flags, **kw)
        finally:
            self._check_in()

    def getsockopt(self, option: int) -> Any:
        v = self.sock.getsockopt(option)
        if option == zmq.EVENTS and v & zmq.POLLIN:
            self._wake_waiter()
        return v

    def _check_in(self) -> None:
        """After an operation that may have taken the FD's signal: a readable message wakes the
        waiting receive (it would not see the FD again for it)."""
        if (self._waiter is not None or self._drain is not None) and not self.sock.closed \
                and self.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self._wake_waiter()

    def _wake_waiter(self) -> None:
        if self._drain is not None:
            self._loop.call_soon(self._drain)
            return
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _wake(self) -> None:
        d = self._drain
        if d is not None:
            d()  # (takes the FD's signal with its receives)
            return
        w = self._waiter
        if w is not None:
            if not w.done():
                w.set_result(None)
        elif not self.sock.closed:
            self.sock.getsockopt(zmq.EVENTS)  # take the signal; the next receive gets the message

    def close(self, linger: int | None = None) -> None:
        loop = self._loop
        if loop is not None and not self.sock.closed:
            if not loop.is_closed():
                loop.remove_reader(self.sock.getsockopt(zmq.FD))
            self.__dict__["_loop"] = None
        w = self._waiter
        if w is not None and not w.done():
            w.cancel()
        d = self._served
        if d is not None and not d.done():
            d.cancel()
        self.sock.close(linger)
