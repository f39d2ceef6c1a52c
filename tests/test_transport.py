"""Host transports: open_backend(url) over an in-process twin, a pty serial link, ZeroMQ and
in-memory pipes with injected faults (retry idempotence, counted errors, one-line user errors)."""

from __future__ import annotations

import asyncio
import os
import tty

import pytest

from hwctl.errors import (
    BadUrl,
    DeviceError,
    DeviceNotFound,
    LinkError,
    LinkTimeout,
    UserError,
    VersionMismatch,
)
from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.sim.twin.serve import PtyTwinServer, ZmqTwinServer
from hwctl.transport import Backend, SerialLink, memory_pair, open_backend
from hwctl.wire import Done, ErrorCode, Herald, Late, Message, Reg, Schedule

#: bounds a hang only (a loaded machine is slower, not stuck): never a speed requirement
HANG_S = 300.0
#: a command's patience where an answer is expected: retries at the usual 0.25 s up to this
PATIENT_RETRIES = 240  # 60 s


def arun(coro, timeout: float = HANG_S):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def scheduled_outcome(b: Backend) -> Message:
    """One SCHEDULE 200 ms ahead and its outcome (HERALD or DONE). A real-time device that a
    stalled host reaches after the start answers LATE, a legal outcome of speed: then the
    schedule is sent again, so no verdict depends on how fast the machine is."""
    while True:
        now = await b.time()
        await b.schedule(now + 20_000_000, 100_000, 50, 2)
        ev = await b.next_event(timeout=HANG_S)
        if not isinstance(ev, Late):
            return ev


async def _exercise(b: Backend) -> list:
    """The same script against every backend: registers, one schedule, its outcome."""
    await b.write_reg(Reg.SCRATCH, 0x1234_5678)
    assert await b.read_reg(Reg.SCRATCH) == 0x1234_5678
    with pytest.raises(DeviceError) as ei:
        await b.write_reg(Reg.ID, 0)
    assert ei.value.code == ErrorCode.BAD_REG
    with pytest.raises(DeviceError):
        await b.schedule(0, 0, 50, 2)  # count == 0 -> BAD_ARG
    ev = await scheduled_outcome(b)
    assert isinstance(ev, Herald | Done)
    assert await b.read_reg(Reg.CNT_ATTEMPTS) >= 1
    return [ev]


def test_twin_url_virtual_and_deterministic() -> None:
    async def go(seed: int):
        # a 60 s response timeout (a hang bound): a stalled machine must not make a legal
        # retry (checked below)
        b = await open_backend(f"twin://?mode=virtual&seed={seed}&p=1e-3&timeout=60")
        async with b:
            out = []
            for _ in range(20):
                now = await b.time()
                await b.schedule(now + 50_000, 1_000_000, 50, 2)  # > one UART round trip
                ev = await b.next_event(timeout=HANG_S)
                assert isinstance(ev, Herald)
                out.append(ev.attempt)
            assert b.stats.retries == 0 and b.stats.events_lost == 0
            return out

    a = arun(go(4))
    assert a == arun(go(4)) and a != arun(go(5))


def test_twin_url_runs_the_common_script() -> None:
    async def go():
        async with await open_backend("twin://?p=0.01", retries=PATIENT_RETRIES) as b:
            await _exercise(b)

    arun(go())


def test_serial_over_pty_realtime() -> None:
    with PtyTwinServer(TwinModel(TwinConfig(p_photon=0.01, seed=2)), mode="realtime") as srv:
        async def go():
            async with await open_backend(f"serial://{srv.port}?baud=3000000",
                                          retries=PATIENT_RETRIES) as b:
                await _exercise(b)
                assert b.stats.rx_frame_errors == 0

        arun(go())
        assert srv.error is None


def test_zmq_twin_server_and_status() -> None:
    with ZmqTwinServer(TwinModel(TwinConfig(p_photon=0.01)), mode="realtime") as srv:
        async def go():
            async with await open_backend(srv.url, retries=PATIENT_RETRIES) as b:
                await _exercise(b)
                st = await b.link.status()
                assert st["kind"] == "twin" and st["ok"] and st["bytes_in"] > 0

        arun(go())


@pytest.mark.parametrize(
    "url",
    ["", "http://x", "tcp://127.0.0.1:5", "serial://", "serial:///dev/x?speed=9",
     "twin://?mode=warp", "twin://?p=abc", "twin://?p=3", "twin://?colour=red", "zmq+tcp://"],
)
def test_bad_urls_are_one_line_user_errors(url: str) -> None:
    with pytest.raises(BadUrl) as ei:
        arun(open_backend(url))
    assert isinstance(ei.value, UserError) and "\n" not in str(ei.value)


def test_missing_devices() -> None:
    with pytest.raises(DeviceNotFound):
        arun(open_backend("serial:///dev/does-not-exist-hwctl"))
    # loop:// echoes our own commands back: nothing answers
    with pytest.raises(DeviceNotFound, match="no hwctl device answered"):
        arun(open_backend("loop://?timeout=0.05&retries=1"))
    # nobody listens on this zmq port
    with pytest.raises(DeviceNotFound):
        arun(open_backend("zmq+tcp://127.0.0.1:9?timeout=0.05&retries=1"))


# ---------------------------------------------------------------- fault injection
class FaultyDevice:
    """A twin behind an in-memory link that drops or corrupts chosen frames."""

    def __init__(self, model: TwinModel, *, drop_responses=(), corrupt_commands=()) -> None:
        self.model = model
        self.host, self.dev = memory_pair()
        self.drop_responses = set(drop_responses)  # indices of response frames to drop
        self.corrupt_commands = set(corrupt_commands)
        self.n_resp = 0
        self.n_cmd = 0
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        buf = bytearray()
        while True:
            chunk = await self.dev.recv()
            if not chunk:
                return
            buf += chunk
            while b"\x00" in buf:
                i = buf.index(0) + 1
                frame, buf = bytearray(buf[:i]), buf[i:]
                if self.n_cmd in self.corrupt_commands:
                    frame[1] ^= 0x20
                self.n_cmd += 1
                self.model.feed(bytes(frame))
                out = self.model.read()
                for f in out.split(b"\x00")[:-1]:
                    f += b"\x00"
                    is_resp = len(f) > 2
                    if self.n_resp in self.drop_responses:
                        self.n_resp += 1
                        continue
                    self.n_resp += is_resp
                    await self.dev.send(f)


def test_lost_response_is_retried_and_executed_once() -> None:
    async def go():
        model = TwinModel(TwinConfig(p_photon=0.0, uart_cycles_per_byte=0))
        dev = FaultyDevice(model, drop_responses={3})  # 0..2 handshake, 3 = SCHEDULE's ACK
        # 0.25 s: the dropped answer costs one timeout; a loaded machine may add legal retries
        # (answered from the device's retry memory), never a second execution; as many as
        # 60 s take (a hang bound, not the 1 s of retries=3 a stalled machine could use up)
        b = Backend(dev.host, "mem://", timeout=0.25, retries=PATIENT_RETRIES)
        await b.handshake()
        await b.schedule(100, 5, 50, 2)
        assert b.stats.retries >= 1
        model.advance_to(10_000)
        await dev.dev.send(model.read())
        ev = await b.next_event(timeout=HANG_S)
        assert ev == Done(100 + 4 * 50 + 2, 5, 0)
        assert model.reg(Reg.CNT_ATTEMPTS) == 5  # one schedule ran, not two
        with pytest.raises(LinkTimeout):
            await b.next_event(timeout=0.05)
        await b.close()

    arun(go())


def test_corrupted_command_counted_on_device_and_retried() -> None:
    async def go():
        model = TwinModel(TwinConfig(p_photon=0.0, uart_cycles_per_byte=0))
        dev = FaultyDevice(model, corrupt_commands={3})
        b = Backend(dev.host, "mem://", timeout=0.25, retries=PATIENT_RETRIES)  # (see above)
        await b.handshake()
        await b.write_reg(Reg.SCRATCH, 7)
        assert b.stats.retries >= 1
        assert await b.read_reg(Reg.ERR_CRC) == 1
        ev = await b.next_event(timeout=HANG_S)  # the device reported the bad frame as an event
        assert ev.code == ErrorCode.CRC
        await b.close()

    arun(go())


def test_no_answer_at_all_times_out() -> None:
    async def go():
        host, dev = memory_pair()
        b = Backend(host, "mem://", timeout=0.02, retries=2)
        with pytest.raises(LinkTimeout):
            await b.read_reg(Reg.ID)
        assert b.stats.timeouts == 1 and b.stats.retries == 2
        await b.close()

    arun(go())


def test_version_mismatch_is_a_user_error() -> None:
    async def go():
        model = TwinModel(TwinConfig(uart_cycles_per_byte=0))
        real = model.reg
        model.reg = lambda a: 99 if a == Reg.VERSION else real(a)  # a future bitstream
        dev = FaultyDevice(model)
        b = Backend(dev.host, "mem://", timeout=0.2, retries=PATIENT_RETRIES)
        with pytest.raises(VersionMismatch, match="wire version 99"):
            await b.handshake()
        await b.close()

    arun(go())


def test_event_gaps_are_counted() -> None:
    async def go():
        model = TwinModel(TwinConfig(header_period=200, n_slots=255, event_fifo_depth=2))
        b = Backend((await _pumped(model)), "mem://")
        n_overflow = 0
        # every event the model made is on its way: read until the gap and its report came (a
        # hang bound, not a silence of 0.3 s ending the read early on a stalled machine)
        while not (b.stats.events_lost > 0 and n_overflow > 0):
            ev = await b.next_event(timeout=HANG_S)
            n_overflow += getattr(ev, "code", 0) == ErrorCode.EVENT_OVERFLOW
        assert b.stats.events_lost > 0 and n_overflow > 0
        await b.close()

    arun(go())


async def _pumped(model: TwinModel):
    host, dev = memory_pair()
    model.advance_to(100_000)
    await dev.send(model.read())
    return host


def test_schedule_overflow_nak_names_the_error() -> None:
    async def go():
        async with await open_backend("twin://?p=0") as b:
            now = await b.time()
            for _ in range(5):
                await b.schedule(now + 10**9, 10, 50, 2)
            with pytest.raises(DeviceError, match="SCHEDULE refused .*OVERFLOW"):
                await b.schedule(now + 10**9, 10, 50, 2)

    arun(go())


def test_schedule_message_type_exported() -> None:
    assert Schedule.OPCODE == 0x03


def test_link_joins_waiting_chunks_and_keeps_the_end() -> None:
    """recv() joins chunks already queued (bounded by COALESCE) and still reports the close."""

    async def main() -> list[bytes]:
        host, dev = memory_pair()
        host.COALESCE = 10
        for piece in (b"ab", b"cd", b"efghijk", b"lm"):
            await dev.send(piece)
        got = [await host.recv()]  # ab + cd + efghijk: stops once 10 bytes are reached
        await dev.send(b"no")
        await host.close()  # end marker queued behind lm + no
        got += [await host.recv(), await host.recv(), await host.recv()]
        return got

    assert asyncio.run(main()) == [b"abcdefghijk", b"lmno", b"", b""]


def test_serial_link_on_a_pty_is_read_by_the_event_loop() -> None:
    """A pty (a port with a file descriptor) is read by the event loop: no reader thread; bytes
    arrive in order and the end of the other side closes the stream."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)

    async def main() -> bytes:
        link = SerialLink(path, baud=3_000_000)
        assert link._thread is None and link._fd is not None
        got = bytearray()
        for k in range(20):
            os.write(master, bytes([k]) * 100)
            while len(got) < 100 * (k + 1):  # bounded by pytest's timeout only if broken
                got += await asyncio.wait_for(link.recv(), 10)
        await link.send(b"xyz")
        await link.close()
        return bytes(got)

    try:
        data = asyncio.run(main())
        assert data == b"".join(bytes([k]) * 100 for k in range(20))
        assert os.read(master, 3) == b"xyz"
    finally:
        os.close(master)
        os.close(slave)


def test_serial_link_on_a_pty_ends_when_the_other_side_closes() -> None:
    """The event-loop reader of a pty: the other side gone (EIO) ends the stream with b"" and
    takes the fd out of the loop; close() afterwards is clean."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)

    async def main() -> tuple[bytes, bytes, bool]:
        link = SerialLink(path, baud=3_000_000)
        os.write(master, b"last")
        first = await asyncio.wait_for(link.recv(), 10)
        os.close(master)
        end = await asyncio.wait_for(link.recv(), 10)  # bounds a hang only
        reading = link._reading
        await link.close()
        return first, end, reading

    try:
        first, end, reading = asyncio.run(main())
        assert first == b"last" and end == b"" and not reading
    finally:
        os.close(slave)


def test_a_second_answer_to_a_retried_command_is_a_duplicate_not_stale() -> None:
    """A command answered late is retried; the device answers both copies (the second from its
    retry memory): the second answer is counted in ``dup_responses``, not as a stale response
    (a seq no command of ours waits for, nor was just answered: an old bridge life's)."""
    from hwctl.wire import Frame, FrameDecoder, RegValue, encode

    async def go() -> tuple[int, int, int]:
        host, dev = memory_pair()
        b = Backend(host, "mem://", timeout=0.05, retries=1000)
        dec = FrameDecoder()

        async def device() -> int:
            frames: list[Frame] = []
            while len(frames) < 2:  # the command, then its retry (the first answer is "late")
                frames += [f for f in dec.feed(await dev.recv()) if isinstance(f, Frame)]
            for f in frames[:2]:
                await dev.send(encode(RegValue(int(Reg.SCRATCH), 5), f.seq))
            return frames[0].seq

        task = asyncio.create_task(device())
        assert await b.read_reg(Reg.SCRATCH) == 5
        seq = await task
        while b.stats.dup_responses < 1:  # the second answer, on its way
            await asyncio.sleep(0.001)
        await dev.send(encode(RegValue(int(Reg.SCRATCH), 5), (seq + 128) & 0xFF))
        while b.stats.stale_responses < 1:
            await asyncio.sleep(0.001)
        dup, stale, retries = b.stats.dup_responses, b.stats.stale_responses, b.stats.retries
        await b.close()
        return dup, stale, retries

    dup, stale, retries = arun(go())
    assert retries >= 1 and dup == 1 and stale == 1


def test_sink_events_takes_held_events_then_those_decoded_in_the_reader_callback() -> None:
    """A link that delivers from a loop callback (SINK_OK) is decoded in that callback, and
    Backend.sink_events hands the events to its consumer there, in order, the ones held before
    it first; an exception of the consumer is raised by sink_events and what follows waits for
    next_event; the link's end is a LinkError, as from next_event."""
    from hwctl.transport.links import MemoryLink
    from hwctl.wire import encode

    class LoopLink(MemoryLink):
        SINK_OK = True

    async def go():
        loop = asyncio.get_running_loop()
        host, dev = LoopLink(), MemoryLink()
        host.peer, dev.peer = dev, host
        b = Backend(host, "mem://")

        def from_device(*evs: Message) -> None:  # as a reader callback hands them over
            loop.call_soon(host._deliver, b"".join(encode(e, i) for i, e in enumerate(evs)))

        from_device(Late(1, 0), Late(2, 0))  # held before the consumer comes
        await asyncio.sleep(0.01)
        assert b.pending_events() == 2 and host.sink is not None  # decoded in the callback
        got: list = []
        seen_in_callback: list[bool] = []

        def take(ev) -> None:
            got.append(ev.ts if type(ev) is Done else ev.t_start)
            seen_in_callback.append(asyncio.current_task() is None)
            if got[-1] == 5:
                raise ValueError("consumer bug")

        s = asyncio.create_task(b.sink_events(take))
        await asyncio.sleep(0.01)
        assert got == [1, 2] and b.pending_events() == 0
        from_device(Late(3, 0), Done(4, 0, 0))
        await asyncio.sleep(0.01)
        assert got == [1, 2, 3, 4] and seen_in_callback[2:] == [True, True]
        from_device(Late(5, 0), Late(6, 0))
        with pytest.raises(ValueError, match="consumer bug"):
            await asyncio.wait_for(s, HANG_S)
        assert got == [1, 2, 3, 4, 5]
        assert (await b.next_event(timeout=HANG_S)).t_start == 6  # held for the next consumer
        s = asyncio.create_task(b.sink_events(take))
        await asyncio.sleep(0.01)
        await host.close()
        with pytest.raises(LinkError):
            await asyncio.wait_for(s, HANG_S)
        await b.close()

    arun(go())


def test_an_answer_read_after_the_hosts_own_stall_is_taken_not_a_timeout() -> None:
    """The host's loop was busy past a command's deadline (decoding a batch, or not scheduled)
    while the device's answer waited on the link: in the iteration after the stall the answer
    is read first and the timeout fires right after it. The answer counts; the link is not
    declared dead (LinkTimeout makes the node reconnect its device) because the host itself was
    late. Deterministic: the stall ends only after the deadline has passed on the loop's clock."""
    from hwctl.wire import Frame, FrameDecoder, RegValue, encode

    async def go() -> int:
        host, dev = memory_pair()
        timeout = 0.02
        b = Backend(host, "mem://", timeout=timeout, retries=0)  # the last try: no resend
        dec = FrameDecoder()
        loop = asyncio.get_running_loop()

        async def device() -> None:
            frames: list[Frame] = []
            while not frames:
                frames += [f for f in dec.feed(await dev.recv()) if isinstance(f, Frame)]
            # the host's timer was armed before this task ran: its deadline is behind this
            end = loop.time() + 2 * timeout
            while loop.time() < end:  # the host's loop stalls (this step holds it) ...
                pass
            # ... and the answer it would have had in time is on the link when it comes back
            await dev.send(encode(RegValue(int(Reg.SCRATCH), 5), frames[0].seq))

        task = asyncio.create_task(device())
        try:
            value = await b.read_reg(Reg.SCRATCH)
            assert b.stats.late_reads == 1 and b.stats.timeouts == 0
            return value
        finally:
            await task
            await b.close()

    assert arun(go()) == 5


def test_an_answer_of_the_wrong_kind_is_stale_not_taken() -> None:
    """A REG_READ whose seq is echoed by an ACK (an earlier link life's late answer with the same
    seq, e.g. after a reconnect to a device still answering the old backend's commands) is not
    its answer: counted stale, and the REG_VALUE that follows is taken. It was taken and
    ``read_reg``'s assertion ended the node service."""
    from hwctl.wire import Ack, Frame, FrameDecoder, Opcode, RegValue, encode

    async def go() -> tuple[int, int]:
        host, dev = memory_pair()
        b = Backend(host, "mem://", timeout=HANG_S, retries=0)
        dec = FrameDecoder()

        async def device() -> None:
            frames: list[Frame] = []
            while not frames:
                frames += [f for f in dec.feed(await dev.recv()) if isinstance(f, Frame)]
            await dev.send(encode(Ack(int(Opcode.REG_WRITE)), frames[0].seq))
            await dev.send(encode(RegValue(int(Reg.SCRATCH), 5), frames[0].seq))

        task = asyncio.create_task(device())
        try:
            return await b.read_reg(Reg.SCRATCH), b.stats.stale_responses
        finally:
            await task
            await b.close()

    assert arun(go()) == (5, 1)
