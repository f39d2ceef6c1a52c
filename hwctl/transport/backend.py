"""One asyncio API over any link: registers, attempt schedules, device time and the event stream.

Commands are sent one at a time. Each gets a fresh 8-bit sequence number; when no response comes
within ``timeout`` seconds the *same bytes* are sent again (up to ``retries`` times), and the
device's one-deep retry memory (spec.toml) guarantees a retried command is executed at most once.
Everything that goes wrong is counted in :class:`LinkStats` and never dropped quietly: frames that
fail CRC/COBS, timeouts, retries, stale responses, NAKs and gaps in the 8-bit event sequence
(events lost on the device or the line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass

import numpy as np

from hwctl.errors import DeviceError, DeviceNotFound, LinkError, LinkTimeout, VersionMismatch
from hwctl.transport.links import Link
from hwctl.wire import (
    CLOCK_HZ,
    DEVICE_ID,
    STATION_ID,
    WIRE_VERSION,
    Abort,
    ErrorCode,
    Frame,
    Free,
    FreeMask,
    Message,
    Nak,
    Opcode,
    PinMask,
    Reg,
    RegRead,
    RegValue,
    RegWrite,
    Schedule,
    SchedulePairs,
    Time,
    TimeSet,
    TimeValue,
    UnpinMask,
    encode,
)
from hwctl.wire.bulk import BulkDecoder, HeaderBlock
from hwctl.wire.features import FeatureMissing, features_of_version, required_feature

log = logging.getLogger(__name__)

#: commands whose place among the events matters: the device orders their response after the
#: events queued before them (docs/header-path.md section 3), and the backend also queues it,
#: as an :class:`OrderedResponse`, on the event stream at the point it arrived
ORDERED_COMMANDS = (PinMask, UnpinMask)


@dataclass(frozen=True, slots=True)
class OrderedResponse:
    """The response (ACK/NAK) to an ordered command, at its place on the event stream: events
    before it were sent by the device before the command executed, events after it after."""

    command: Message
    response: Message


def _try_acquire(lock: asyncio.Lock) -> bool:
    """Take ``lock`` without waiting, from a callback (True), or leave it (False): its
    ``acquire`` returns at once when the lock is free and nobody waits for it; a call that
    would wait is closed unstarted (its waiter removed)."""
    if lock.locked():
        return False
    c = lock.acquire()
    try:
        c.send(None)
    except StopIteration:
        return True
    c.close()
    return False


def cycles_to_seconds(cycles: int, clock_hz: int = CLOCK_HZ) -> float:
    """The one place device-cycle differences become seconds (timestamps stay integers)."""
    return cycles / clock_hz


def seconds_to_cycles(seconds: float, clock_hz: int = CLOCK_HZ) -> int:
    return round(seconds * clock_hz)


@dataclass(slots=True)
class LinkStats:
    commands: int = 0
    retries: int = 0
    timeouts: int = 0  # commands that failed after every retry
    rx_frame_errors: int = 0  # frames from the device that failed CRC / COBS / length
    stale_responses: int = 0  # a seq no command of ours is waiting for, nor was just answered
    #: another answer to the command just answered: its retry crossed the first answer (a slow
    #: response, or copies of the retry queued while a bridge was down), harmless
    dup_responses: int = 0
    #: answers read in the loop iteration their command's timeout fired in (the host's own loop
    #: was late past the deadline, the answer had come): taken, not a timeout
    late_reads: int = 0
    naks: int = 0
    events: int = 0
    events_lost: int = 0  # gaps in the 8-bit event sequence
    #: events decoded here but dropped because the consumer let ``max_held_events`` pile up
    events_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Backend:
    """A device (FPGA, board bridge or twin) behind a byte link. Use :func:`open_backend`."""

    #: decoded events held for a consumer that does not take them (a HeaderBlock counts as its
    #: length); beyond it new events are dropped and counted in ``stats.events_dropped``
    MAX_HELD_EVENTS = 1 << 20

    def __init__(self, link: Link, url: str, *, timeout: float = 0.25, retries: int = 4) -> None:
        self.link = link
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.stats = LinkStats()
        self.clock_hz = CLOCK_HZ
        self._dec = BulkDecoder()
        #: deliver runs of HEADER events as one HeaderBlock (numpy arrays) instead of one Header
        #: message each: what a consumer at the source's rate wants (the node service sets it).
        #: Reads of only a few frames still come as single Header messages: handle both.
        self.header_blocks = False
        self._seq = random.randrange(256)
        self._lock = asyncio.Lock()
        self._pending: tuple[int, asyncio.Future[Message]] | None = None
        self._answered: int | None = None  # seq of the last command answered
        self._pending_cmd: Message | None = None
        # decoded events for the consumer: a deque and a flag (next_events takes them in batches)
        self._evq: deque[Message | HeaderBlock | OrderedResponse] = deque()
        self._ev_held = 0  # events in _evq, a HeaderBlock counted as its length
        self._ev_ready = asyncio.Event()
        self._ev_end = False  # closed / link failed: consumers get LinkError once _evq is empty
        #: :meth:`sink_events`' consumer while it waits: events go to it, not to ``_evq``
        self._ev_sink: Callable[[Message | HeaderBlock | OrderedResponse], None] | None = None
        self.max_held_events = self.MAX_HELD_EVENTS
        self._last_drop_log = -1e9
        self._last_ev_seq: int | None = None
        self._last_gap_log = -1e9
        self._closed = False
        self.rx_error: BaseException | None = None
        #: what :meth:`handshake` found: "node" (ID = meta.device_id) or "station" (a heralding
        #: station's host link, ID = meta.station_id: registers and HERALD events only)
        self.device_kind = ""
        #: a node's build features (VERSION bits 31:16, spec [feature_bits]; read by
        #: :meth:`handshake`, None before): commands of a feature the bitstream lacks are refused
        #: here with :class:`~hwctl.wire.features.FeatureMissing`, never sent
        self.features: int | None = None
        #: wall clock (``time.time_ns()``) when the last command frame was handed to the link
        self.tx_ns = 0
        self._rx_task = asyncio.get_running_loop().create_task(self._rx_loop())

    # ---------------------------------------------------------------- lifecycle
    async def handshake(self) -> None:
        """Synchronise the retry memory (TIME is always re-executed) and check ID and VERSION."""
        try:
            await self.time()
        except LinkTimeout:
            raise DeviceNotFound(
                f"no hwctl device answered at {self.url} (checked {self.retries + 1} times in "
                f"{(self.retries + 1) * self.timeout:.2f} s)"
            ) from None
        dev_id = await self.read_reg(Reg.ID)
        if dev_id not in (DEVICE_ID, STATION_ID):
            raise VersionMismatch(f"device at {self.url} is not an hwctl device (ID 0x{dev_id:08x})")
        self.device_kind = "node" if dev_id == DEVICE_ID else "station"
        version_reg = await self.read_reg(Reg.VERSION)
        version = version_reg & 0xFFFF
        if version != WIRE_VERSION:
            raise VersionMismatch(
                f"device at {self.url} speaks wire version {version}, this host speaks "
                f"{WIRE_VERSION}: update the bitstream/firmware or hwctl"
            )
        self.features = features_of_version(version_reg) if self.device_kind == "node" else None

    async def close(self) -> None:
        """Close the link and end the event stream (a waiting :meth:`next_event` raises LinkError)."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.link.close()
        except BaseException:  # interrupted (cancelled): the stream still ends, at once
            self._rx_task.cancel()
            self._end_events()
            raise
        self._rx_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._rx_task
        self._end_events()

    async def __aenter__(self) -> Backend:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ---------------------------------------------------------------- commands
    async def command(self, msg: Message) -> Message:
        """Send one command and return its response (ACK, NAK, REG_VALUE or TIME_VALUE).
        FeatureMissing (one line, nothing sent) for a command of a feature the device's build
        lacks, once :meth:`handshake` has read the features."""
        self._check_feature(msg)
        async with self._lock:
            if self._closed:
                raise LinkError(f"backend {self.url} is closed")
            frame, fut = self._begin(msg)
            try:
                return await self._exchange(msg, frame, fut, sent=False)
            finally:
                self._pending = None

    def command_now(self, msg: Message) -> asyncio.Task[Message] | None:
        """:meth:`command`, its frame written here, in the caller (an event-loop callback):
        the task that waits for the response (and resends on a timeout, as :meth:`command`),
        raising DeviceError on NAK as :meth:`schedule_pairs` does. None, with nothing sent, when
        that cannot be done now: another command holds the link (they go one at a time), or the
        link cannot write from a callback (:attr:`hwctl.transport.links.Link.SEND_NOW`; a
        link whose ``send`` a test replaced). Saves the task hop to the caller's coroutine
        that would send it (the initiator's SCHEDULE_PAIRS at SYNACK, hwctl.node.physical)."""
        self._check_feature(msg)
        link = self.link
        if (self._closed or not type(link).SEND_NOW or "send" in vars(link)
                or not _try_acquire(self._lock)):
            return None
        try:
            frame, fut = self._begin(msg)
            link.send_now(frame)
            self.tx_ns = time.time_ns()  # the frame left (hwctl.nodetiming)
        except BaseException:
            self._pending = None
            self._lock.release()
            raise

        async def rest() -> Message:
            try:
                resp = await self._exchange(msg, frame, fut, sent=True)
            finally:
                self._pending = None
                self._lock.release()
            return self._refused(msg, resp)

        return asyncio.get_running_loop().create_task(rest())

    def _begin(self, msg: Message) -> tuple[bytes, asyncio.Future[Message]]:
        """A command's frame with a fresh sequence number, and the future of its response
        (call with the lock held)."""
        self._seq = (self._seq + 1) & 0xFF
        seq = self._seq
        frame = encode(msg, seq)
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending = (seq, fut)
        self._pending_cmd = msg
        self.stats.commands += 1
        return frame, fut

    async def _exchange(self, msg: Message, frame: bytes, fut: asyncio.Future[Message], *,
                        sent: bool) -> Message:
        """Send ``frame`` (unless ``sent``: its first copy left already) and wait for the
        response, sending the same bytes again on each timeout (module docstring)."""
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            if attempt or not sent:
                await self.link.send(frame)
                self.tx_ns = time.time_ns()  # the frame left (hwctl.nodetiming)
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that races with the response, and the caller never ends.
                async with asyncio.timeout(self.timeout):
                    return await asyncio.shield(fut)
            except TimeoutError:
                if fut.done() and not fut.cancelled():
                    # the answer was read in the same loop iteration as the timeout fired (the
                    # host's loop came back from a stall past the deadline and read the answer
                    # waiting on the link just before the timer ran): the host was late, not the
                    # device; on the last try this was a LinkTimeout and a reconnect
                    self.stats.late_reads += 1
                    return fut.result()
                if self.rx_error is not None:
                    raise LinkError(f"link to {self.url} failed: {self.rx_error!r}") from None
                continue
        self.stats.timeouts += 1
        raise LinkTimeout(
            f"no response to {type(msg).__name__} from {self.url} after "
            f"{self.retries + 1} tries"
        )

    def _check_feature(self, msg: Message, nak: bool = False) -> None:
        """Raise FeatureMissing when ``msg`` needs a feature the device was built without (or, with
        ``nak``, when the device refused it as an unknown opcode and its features are unknown)."""
        feat = required_feature(msg)
        if feat is None:
            return
        if self.features is not None and not self.features >> int(feat) & 1:
            raise FeatureMissing(Opcode(msg.OPCODE).name, feat, self.features, self.url)
        if nak and self.features is None:
            raise FeatureMissing(Opcode(msg.OPCODE).name, feat, None, self.url)

    async def _ok(self, msg: Message) -> Message:
        return self._refused(msg, await self.command(msg))

    def _refused(self, msg: Message, resp: Message) -> Message:
        """``resp``, or DeviceError when it is a NAK."""
        if isinstance(resp, Nak):
            if resp.code == ErrorCode.BAD_OPCODE:
                self._check_feature(msg, nak=True)
            self.stats.naks += 1
            raise DeviceError(
                f"{Opcode(msg.OPCODE).name} refused by {self.url}: {_code_name(resp.code)}",
                resp.code,
            )
        return resp

    async def read_reg(self, addr: int) -> int:
        """REG_READ: the 32-bit value of register ``addr`` (DeviceError on NAK, e.g. BAD_REG)."""
        resp = await self._ok(RegRead(int(addr)))
        assert isinstance(resp, RegValue)
        return resp.value

    async def write_reg(self, addr: int, value: int) -> None:
        """REG_WRITE of ``value`` (taken mod 2^32) to register ``addr`` (DeviceError on NAK)."""
        await self._ok(RegWrite(int(addr), value & 0xFFFF_FFFF))

    async def schedule(self, t_start: int, count: int, period: int, window: int) -> None:
        """Queue ``count`` attempts from device cycle ``t_start`` (DeviceError on NAK)."""
        await self._ok(Schedule(t_start, count, period, window))

    async def schedule_pairs(self, t_start: int, count: int, period: int, pairs: int,
                             port: int) -> None:
        """SCHEDULE_PAIRS (wire v3): attempts on herald port ``port`` from device cycle
        ``t_start`` until ``pairs`` pairs are recorded (DeviceError on NAK)."""
        await self._ok(SchedulePairs(t_start, count, period, pairs, port))

    async def time_set(self, ts: int, mode: int = 0) -> None:
        """TIME_SET (wire v3): load the device counter with ``ts`` now (mode 0) or at the next
        sync_i edge (mode 1). DeviceError(BAD_OPCODE) from a device without it."""
        await self._ok(TimeSet(ts, mode))

    async def abort(self) -> None:
        """ABORT the running schedule: DONE(ABORTED) follows with the attempts fired so far."""
        await self._ok(Abort())

    async def free(self, slot: int) -> None:
        """FREE one memory slot (DeviceError NAK(BAD_SLOT) if it is not allocated)."""
        await self._ok(Free(slot))

    async def free_mask(self, base: int, mask: int) -> None:
        """FREE_MASK: slots ``base + i`` for each set bit i of ``mask``, all or nothing (see
        :func:`hwctl.wire.free_masks` to pack a set of slots)."""
        await self._ok(FreeMask(base, mask))

    async def pin_mask(self, base: int, mask: int) -> Message:
        """PIN_MASK (wire v4, block mode): returns ACK or NAK; the same response also comes on the
        event stream as an :class:`OrderedResponse` at its place among the HDR_BLOCK events."""
        return await self.command(PinMask(base, mask))

    async def unpin_mask(self, base: int, mask: int) -> Message:
        """UNPIN_MASK (wire v4): like :meth:`pin_mask`."""
        return await self.command(UnpinMask(base, mask))

    async def time(self) -> int:
        """Device time in cycles (value at decode on the device)."""
        resp = await self._ok(Time())
        assert isinstance(resp, TimeValue)
        return resp.ts

    # ---------------------------------------------------------------- events
    async def next_event(self, timeout: float | None = None) -> Message:
        """Next event from the device (HERALD, DONE, LATE, HEADER, ERROR; with
        ``header_blocks`` set, runs of HEADERs decoded in bulk come as one :class:`HeaderBlock`,
        while a read of only a few frames still gives single HEADERs)."""
        if not self._evq:
            await self._wait_events(timeout)
        ev = self._evq.popleft()
        self._ev_held -= len(ev) if type(ev) is HeaderBlock else 1
        return ev  # type: ignore[return-value]

    async def next_events(self, max_items: int | None = None,
                          timeout: float | None = None) -> list[Message | HeaderBlock | OrderedResponse]:
        """Every event decoded so far (at most ``max_items``), waiting up to ``timeout`` seconds
        for the first: a consumer at line rate pays the asyncio wake-up once per batch, not once
        per event (benchmarks/RESULTS.md, "pty link"). Items as :meth:`next_event` gives them, in
        arrival order (with ``header_blocks`` set, runs of HEADERs as :class:`HeaderBlock`)."""
        if not self._evq:
            await self._wait_events(timeout)
        q = self._evq
        if max_items is None or max_items >= len(q):
            out = list(q)
            q.clear()
            self._ev_held = 0
            return out
        out = [q.popleft() for _ in range(max(1, max_items))]
        self._ev_held -= sum(len(e) if type(e) is HeaderBlock else 1 for e in out)
        return out

    async def sink_events(self, fn: Callable[[Message | HeaderBlock | OrderedResponse], None]) -> None:
        """Hand every event to ``fn`` as it is decoded, in the link's callback (the events held
        now first, in order), until the stream ends: then LinkError, as from
        :meth:`next_event`. With a link that decodes in its reader (:meth:`_rx_loop`) a device
        event reaches ``fn`` in the callback that read it, not two task hops later through
        :meth:`next_event` (benchmarks/RESULTS.md, tenth session). An exception of ``fn``
        ends the sink and is raised here (the events after it wait for :meth:`next_event`)."""
        err: list[BaseException] = []

        def take(ev: Message | HeaderBlock | OrderedResponse) -> None:
            try:
                fn(ev)
            except Exception as exc:
                self._ev_sink = None  # what follows is held, as for a consumer that stopped
                err.append(exc)
                self._ev_ready.set()

        try:
            while True:
                while self._evq and not err:
                    ev = self._evq.popleft()
                    self._ev_held -= len(ev) if type(ev) is HeaderBlock else 1
                    take(ev)
                if err:
                    raise err[0]
                if self._ev_end:
                    raise LinkError(f"backend {self.url} is closed"
                                    + (f": {self.rx_error!r}" if self.rx_error else ""))
                self._ev_sink = take
                self._ev_ready.clear()
                await self._ev_ready.wait()
                self._ev_sink = None
        finally:
            self._ev_sink = None

    async def _wait_events(self, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not self._evq:
                    if self._ev_end:
                        raise LinkError(f"backend {self.url} is closed"
                                        + (f": {self.rx_error!r}" if self.rx_error else ""))
                    self._ev_ready.clear()
                    await self._ev_ready.wait()
        except TimeoutError:
            raise LinkTimeout(f"no event from {self.url} within {timeout} s") from None

    def pending_events(self) -> int:
        """Events waiting for the consumer (a HeaderBlock counted as its length)."""
        return self._ev_held

    def _put_event(self, ev: Message | HeaderBlock | OrderedResponse, n: int = 1, *,
                   force: bool = False) -> None:
        sink = self._ev_sink
        if sink is not None:
            sink(ev)
            return
        room = self.max_held_events - self._ev_held
        if n > room and not force:
            # the consumer stalled: keep what fits, drop and count the rest (like the device's
            # event FIFO), never grow without bound
            if room > 0 and type(ev) is HeaderBlock:
                self._evq.append(HeaderBlock(ev.ev_seq[:room], ev.seq[:room], ev.ts[:room],
                                             ev.slot[:room]))
                self._ev_held += room
                self._ev_ready.set()
                n -= room
            self.stats.events_dropped += n
            now = time.monotonic()
            if now - self._last_drop_log >= 1.0:
                self._last_drop_log = now
                log.warning("%s: consumer behind, %d event(s) dropped on the host so far",
                            self.url, self.stats.events_dropped)
            return
        self._evq.append(ev)
        self._ev_held += n
        self._ev_ready.set()

    def _end_events(self) -> None:
        self._ev_end = True
        self._ev_ready.set()

    async def events(self) -> AsyncIterator[Message]:
        """Every event as it arrives, until the backend is closed (then the iteration ends)."""
        while True:
            try:
                yield await self.next_event()
            except LinkError:
                if self._closed:
                    return
                raise

    def health(self) -> dict:
        """Link counters (and decoder counters) for status displays and result files."""
        d = self.stats.as_dict()
        d["bytes_out"], d["bytes_in"] = self.link.bytes_out, self.link.bytes_in
        return d

    # ---------------------------------------------------------------- receive
    async def _rx_loop(self) -> None:
        """The device's bytes, decoded. A link that can (:meth:`Link.sink_ready`) hands its
        chunks to :meth:`_sink` in the callback that read them: the frames are decoded, a
        command's answer set and the events queued there, not one task hop later here
        (benchmarks/RESULTS.md, tenth session); this loop then only waits for the end."""
        link = self.link
        try:
            while True:
                ready = getattr(link, "sink_ready", None)
                if ready is not None and link.sink is None and ready():
                    link.sink = self._sink
                chunk = await link.recv()
                if not chunk:
                    break
                self._feed(chunk)
        except Exception as exc:
            self.rx_error = exc
        finally:
            if getattr(link, "sink", None) == self._sink:
                link.sink = None
            if not self._closed:
                self._end_events()

    def _sink(self, chunk: bytes) -> None:
        """:meth:`_feed` in the link's callback; a failure ends the stream as in :meth:`_rx_loop`."""
        try:
            self._feed(chunk)
        except Exception as exc:
            self.link.sink = None  # nothing more is decoded (the loop's end, as before)
            self.rx_error = exc
            self._rx_task.cancel()  # (its finally ends the events)

    def _feed(self, chunk: bytes) -> None:
        for item in self._dec.feed(chunk):
            if type(item) is HeaderBlock:
                self._on_block(item)
                continue
            if not isinstance(item, Frame):
                self.stats.rx_frame_errors += 1
                if self.stats.rx_frame_errors & (self.stats.rx_frame_errors - 1) == 0:
                    log.warning("%s: bad frame from device (%s), %d so far", self.url,
                                item.code.name, self.stats.rx_frame_errors)
                continue
            self._on_frame(item)

    def _on_frame(self, f: Frame) -> None:
        if f.msg.KIND == "response":
            p = self._pending
            if (p is not None and p[0] == f.seq and not p[1].done()
                    and _answers(self._pending_cmd, f.msg)):
                p[1].set_result(f.msg)
                self._answered = f.seq
                if isinstance(self._pending_cmd, ORDERED_COMMANDS):
                    # never dropped: one per command, and the consumer orders pins by it
                    self._put_event(OrderedResponse(self._pending_cmd, f.msg), force=True)
            elif f.seq == self._answered:
                # the next command has the next seq: this answer cannot be taken for its answer
                self.stats.dup_responses += 1
            else:
                self.stats.stale_responses += 1
            return
        if f.msg.KIND != "event":
            self.stats.rx_frame_errors += 1
            return
        if self._last_ev_seq is not None:
            self._count_lost((f.seq - self._last_ev_seq - 1) & 0xFF, f.seq)
        self._last_ev_seq = f.seq
        self.stats.events += 1
        self._put_event(f.msg)

    def _on_block(self, b: HeaderBlock) -> None:
        """HEADER events decoded in bulk: the same event-seq accounting, vectorised."""
        ev = b.ev_seq.astype(np.int64)
        gaps = int(((ev[1:] - ev[:-1] - 1) & 0xFF).sum())
        if self._last_ev_seq is not None:
            gaps += (int(ev[0]) - self._last_ev_seq - 1) & 0xFF
        self._count_lost(gaps, int(ev[-1]))
        self._last_ev_seq = int(ev[-1])
        self.stats.events += len(b)
        if self.header_blocks:
            self._put_event(b, len(b))
        else:
            for f in b.frames():
                self._put_event(f.msg)

    def _count_lost(self, gap: int, seq: int) -> None:
        if gap:
            self.stats.events_lost += gap
            now = time.monotonic()
            if now - self._last_gap_log >= 1.0:  # counted always, logged at most 1/s
                self._last_gap_log = now
                log.warning("%s: %d event(s) lost before event seq %d (%d lost so far)",
                            self.url, gap, seq, self.stats.events_lost)


def _answers(cmd: Message | None, resp: Message) -> bool:
    """``resp`` is of a kind that answers ``cmd`` (spec.toml: REG_READ -> REG_VALUE, TIME ->
    TIME_VALUE, every other command -> ACK; NAK for any). A response of another kind with the
    pending command's seq is an earlier link life's late answer (a reconnect while the device
    still answers the old backend's commands), not this command's."""
    if isinstance(resp, Nak) or cmd is None:
        return True
    if isinstance(cmd, RegRead):
        return isinstance(resp, RegValue)
    if isinstance(cmd, Time):
        return isinstance(resp, TimeValue)
    return not isinstance(resp, RegValue | TimeValue)


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"
