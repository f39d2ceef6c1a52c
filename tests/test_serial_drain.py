"""The serial link's loop reader takes everything a pty holds in one wake-up (issue 14,
benchmarks/RESULTS.md "hdr_block, seventh session"): a tty hands over at most 4095 bytes per
read, and one read per event-loop iteration capped a busy host at 4 KiB per iteration, about
the device's line rate at 20 ms iterations. No timing: the bytes are in the pty before the loop
runs the reader; the timeout only bounds a hang."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Iterator

import pytest

from hwctl.transport.links import SerialLink

HANG = 300.0

pytestmark = pytest.mark.skipif(os.name != "posix", reason="ptys")


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    """A raw pty: the device side's fd and the path the link opens; both ends closed after
    (a test may close the device side itself)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_one_wake_up_takes_more_than_one_tty_read(pty) -> None:
    master, path = pty
    data = bytes(range(1, 256)) * 40  # 10,200 bytes: more than two tty reads, fits the pty

    async def go() -> tuple[bytes, bytes]:
        link = SerialLink(f"{path}", baud=3_000_000)
        try:
            os.write(master, data)  # all of it before the loop runs the reader
            first = await asyncio.wait_for(link.recv(), HANG)
            rest = b""
            while len(first) + len(rest) < len(data):
                rest += await asyncio.wait_for(link.recv(), HANG)
            assert link.error is None and link._reading  # an empty read after bytes is no EOF
            return first, rest
        finally:
            await link.close()

    first, rest = asyncio.run(go())
    assert first + rest == data
    assert len(first) == len(data)  # one wake-up, one chunk (at most 4095 before)
    assert len(first) <= SerialLink.READ_MAX


def test_the_other_end_closing_still_ends_the_link(pty) -> None:
    master, path = pty

    async def go() -> tuple[bytes, bytes, BaseException | None]:
        link = SerialLink(f"{path}", baud=3_000_000)
        try:
            os.write(master, b"last words\0")
            got = await asyncio.wait_for(link.recv(), HANG)
            os.close(master)  # the device side goes away
            end = await asyncio.wait_for(link.recv(), HANG)
            return got, end, link.error
        finally:
            await link.close()

    got, end, err = asyncio.run(go())
    assert got == b"last words\0" and end == b"" and err is not None


def test_a_short_read_is_the_last_of_a_wake_up(pty, monkeypatch) -> None:
    """A device event (a few dozen bytes) costs one read: no second read that could only say
    EAGAIN, which in Linux first waits for the tty's flush work (a kworker that a busy machine
    may not have scheduled yet; benchmarks/RESULTS.md, tenth session)."""
    master, path = pty
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        out = real_read(fd, n)
        reads.append(len(out))
        return out

    async def go() -> bytes:
        link = SerialLink(f"{path}", baud=3_000_000)
        monkeypatch.setattr(os, "read", counting_read)
        try:
            os.write(master, b"\x05" * 40 + b"\0")  # one event frame's worth
            return await asyncio.wait_for(link.recv(), HANG)
        finally:
            monkeypatch.undo()
            await link.close()

    got = asyncio.run(go())
    assert got == b"\x05" * 40 + b"\0"
    assert reads == [41]


def test_a_command_is_one_write_and_a_full_port_still_takes_all_of_it(pty, monkeypatch) -> None:
    """SerialLink.send writes a frame with one write(2), not pyserial's write (a select after
    every write); what a full port does not take goes through pyserial's waiting write."""
    master, path = pty
    writes: list[int] = []
    real = os.write

    def spy(fd: int, data: bytes) -> int:
        writes.append(fd)
        return real(fd, data)

    async def go() -> bytes:
        link = SerialLink(f"{path}", baud=3_000_000)
        try:
            import serial

            monkeypatch.setattr(os, "write", spy)
            fallback: list[bytes] = []
            monkeypatch.setattr(serial.Serial, "write",
                                lambda self, d: fallback.append(bytes(d)) or len(d))
            await link.send(b"frame\0")
            assert writes == [link._fd] and fallback == []
            monkeypatch.setattr(os, "write", lambda fd, d: 2)  # the port takes 2 bytes only
            await link.send(b"second\0")
            assert fallback == [b"cond\0"]
            monkeypatch.setattr(os, "write", spy)
            return os.read(master, 100)
        finally:
            await link.close()

    got = asyncio.run(go())
    assert got == b"frame\0"


def test_a_close_interrupted_while_the_reader_thread_stops_still_closes_the_port(pty) -> None:
    """A port without a file descriptor the loop can watch (``spy://`` here, as ``socket://``
    and ``loop://``) is read in a thread, and close() waits for that thread in an executor. A
    close cancelled there (a node stopping, its tasks cancelled; an executor already shut down
    at the loop's end) left the port open, and a second close() returned at once: the port's
    exclusive lock stayed held, and the reconnect's open was refused (DeviceBusy) for as long
    as the process lived. The port is closed whatever interrupts the wait; the wait is events
    (the join entered, the task cancelled), never time."""
    import threading

    _, path = pty
    url = f"spy://{path}?file=/dev/null"

    async def go() -> tuple[bool, bool]:
        link = SerialLink(url, baud=3_000_000)
        assert link._thread is not None  # (the thread-read kind of port)
        entered, release = threading.Event(), threading.Event()
        join = link._thread.join

        def slow_join(timeout: float | None = None) -> None:
            entered.set()
            release.wait(HANG)
            join(timeout)

        link._thread.join = slow_join  # type: ignore[method-assign]
        closing = asyncio.create_task(link.close())
        while not entered.is_set():  # the close waits for the reader thread now
            await asyncio.sleep(0.01)
        closing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        release.set()
        await link.close()  # a second close: the port is closed, nothing else to do
        was_open = link.ser.is_open
        again = SerialLink(url, baud=3_000_000)  # exclusive: refused while the port is open
        try:
            return was_open, again.ser.is_open
        finally:
            await again.close()

    was_open, reopened = asyncio.run(go())
    assert not was_open and reopened


def test_a_backend_whose_close_is_interrupted_ends_its_event_stream(pty) -> None:
    """The backend above such a link: its close() cancelled in the link's close still closes
    the port and ends the event stream (a consumer waiting for events gets LinkError, not a
    wait for ever), and a second close() returns."""
    import threading

    from hwctl.errors import LinkError
    from hwctl.transport.backend import Backend

    _, path = pty
    url = f"spy://{path}?file=/dev/null"

    async def go() -> tuple[bool, BaseException | None]:
        b = Backend(SerialLink(url, baud=3_000_000), url)
        link = b.link
        assert isinstance(link, SerialLink) and link._thread is not None
        entered, release = threading.Event(), threading.Event()
        join = link._thread.join

        def slow_join(timeout: float | None = None) -> None:
            entered.set()
            release.wait(HANG)
            join(timeout)

        link._thread.join = slow_join  # type: ignore[method-assign]
        waiting = asyncio.create_task(b.next_event())
        closing = asyncio.create_task(b.close())
        while not entered.is_set():
            await asyncio.sleep(0.01)
        closing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        release.set()
        err: BaseException | None = None
        try:
            await asyncio.wait_for(waiting, HANG)
        except LinkError as exc:
            err = exc
        await b.close()
        return link.ser.is_open, err

    was_open, err = asyncio.run(go())
    assert not was_open and isinstance(err, LinkError)
