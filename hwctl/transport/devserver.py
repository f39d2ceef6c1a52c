"""Device sessions for servers that share one device among ZeroMQ clients (board bridge, served
twin): sans-IO, time passed in.

The device has a one-deep retry memory keyed by the 8-bit command seq (spec.toml): a command
whose seq equals the previous command's is answered with the cached response and *not executed*.
With two clients passing their own seqs through, client B's command could make client A's
SCHEDULE look like a retry: acknowledged and never run. So the server owns the device's seq
space (issue 16, "device command sessions that cannot be confused between clients"):

- Each client's command frames are decoded (per-client decoder, bad frames counted and dropped),
  queued (bounded, at most one waiting command per client) and sent to the device one at a time,
  re-encoded with a device seq the server allocates. The device's response is re-encoded with
  the client's own seq and sent to that client only.
- A client retry (same seq and bytes as its last command) is answered from the client's cached
  response when there is one, resent with the *same* device seq while that command is the last
  the device saw (so the device de-duplicates it), and ignored while it is still queued. A
  command never runs twice because of another client.
- Events (HERALD, DONE, LATE, HEADER, ERROR) pass through unchanged to every live client.
- Resources are bounded: the client table (``max_clients``; a client silent for ``client_ttl_s``
  is forgotten, one silent for ``evict_idle_s`` makes room when the table is full, and while it
  is full of live clients a newcomer is refused), the command queue, per-client byte rate (token bucket), message size and
  parts. Everything dropped is counted by cause in :attr:`DeviceSessions.drops`.

Control messages (:mod:`hwctl.transport.zmqwire`): ``[CONTROL, b"status"]`` (answered by the
server with its status JSON), ``[CONTROL, b"ping"]`` (keep-alive, no answer).
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from hwctl.transport.zmqwire import CONTROL, PING, STATUS
from hwctl.wire import Frame, FrameDecoder, Reg, RegRead, encode
from hwctl.wire._spec import MESSAGES, Message
from hwctl.wire.codec import MAX_FRAME, cobs_decode, decode_body

#: the server's own command (:meth:`DeviceSessions.prime`); ROUTER identities are never empty
_PRIME = b""
RESPONSE_OPCODES = frozenset(c.OPCODE for c in MESSAGES.values() if c.KIND == "response")


@dataclass(frozen=True)
class ServerLimits:
    """Resource limits of a device server (docs/reliability.md)."""

    max_clients: int = 32
    client_ttl_s: float = 30.0
    #: when the table is full, a client silent this long makes room for a new one (longer than
    #: the clients' keep-alive interval, so a live host is never pushed out)
    evict_idle_s: float = 3.0
    max_message_bytes: int = 1 << 16
    #: per-client token bucket: sustained bytes/s and burst (the UART carries 300 kB/s)
    rate_bytes_s: float = 1e6
    burst_bytes: int = 1 << 18
    #: commands waiting for the device (all clients together)
    max_queue: int = 64
    #: a command the device has not answered after this long is given up (the client retries)
    cmd_timeout_s: float = 1.0


@dataclass
class _Client:
    ident: bytes
    last_seen: float
    tokens: float
    dec: FrameDecoder = field(default_factory=FrameDecoder)
    last_seq: int | None = None  # the client's last command: its seq and body
    last_msg: Message | None = None
    last_resp: bytes | None = None  # response to it, re-encoded with the client's seq
    dev_seq: int | None = None  # device seq it was sent with (None: not sent yet)
    messages: int = 0


@dataclass
class Step:
    """What to do after an input: bytes for the device, messages for clients, status requests."""

    to_device: bytearray = field(default_factory=bytearray)
    to_clients: list[tuple[bytes, list[bytes]]] = field(default_factory=list)
    status_for: list[bytes] = field(default_factory=list)


class DeviceSessions:
    """Client table + command serialiser for one device (module docstring)."""

    def __init__(self, limits: ServerLimits | None = None, *, seed: int | None = None) -> None:
        self.limits = limits or ServerLimits()
        self.clients: OrderedDict[bytes, _Client] = OrderedDict()  # least recently seen first
        self.drops: Counter[str] = Counter()
        self._dev_seq = random.Random(seed).randrange(256)
        self._queue: deque[tuple[bytes, int, Message]] = deque()  # (ident, client seq, command)
        #: the command on the device: (ident, client seq, device seq, sent at)
        self._outstanding: tuple[bytes, int, int, float] | None = None
        self._last_dev: tuple[bytes, int, int] | None = None  # last command sent to the device
        self._dev_buf = bytearray()
        self._dev_overlong = False
        self.commands = 0
        self.responses = 0
        self.events = 0
        self.clients_seen = 0
        self.clients_expired = 0
        self.clients_evicted = 0
        self.retries = 0
        self.primed = False  # the device answered our own first command (prime)

    # ---------------------------------------------------------------- clients
    def client_message(self, ident: bytes, parts: list[bytes], now: float) -> Step:
        step = Step()
        size = sum(len(p) for p in parts)
        if not 1 <= len(parts) <= 2 or size > self.limits.max_message_bytes:
            self.drops["malformed" if size <= self.limits.max_message_bytes else "too_large"] += 1
            return step
        c = self._client(ident, now)
        if c is None:
            self.drops["client_table_full"] += 1
            return step
        c.messages += 1
        lim = self.limits
        c.tokens = min(lim.burst_bytes, c.tokens + (now - c.last_seen) * lim.rate_bytes_s)
        c.last_seen = now
        self.clients.move_to_end(ident)
        if len(parts) == 2:
            if parts[0] != CONTROL:
                self.drops["malformed"] += 1
            elif parts[1] == STATUS:
                step.status_for.append(ident)
            elif parts[1] != PING:
                self.drops["unknown_control"] += 1
            return step
        if size > c.tokens:
            self.drops["rate_limited"] += 1
            return step
        c.tokens -= size
        for item in c.dec.feed(parts[0]):
            if not isinstance(item, Frame):
                self.drops["bad_frame_from_client"] += 1
            elif item.msg.KIND != "command":
                self.drops["not_a_command"] += 1
            else:
                self._command(c, item, now, step)
        self._pump(now, step)
        return step

    def _client(self, ident: bytes, now: float) -> _Client | None:
        c = self.clients.get(ident)
        if c is not None:
            return c
        self.expire(now)
        if len(self.clients) >= self.limits.max_clients:
            oldest = next(iter(self.clients.values()))
            if now - oldest.last_seen < self.limits.evict_idle_s:
                return None
            del self.clients[oldest.ident]
            self.clients_evicted += 1
        c = _Client(ident, now, float(self.limits.burst_bytes))
        self.clients[ident] = c
        self.clients_seen += 1
        return c

    def _command(self, c: _Client, f: Frame, now: float, step: Step) -> None:
        if f.seq == c.last_seq and f.msg == c.last_msg:  # a retry
            self.retries += 1
            if c.last_resp is not None:
                step.to_clients.append((c.ident, [c.last_resp]))
                return
            if any(q[0] == c.ident for q in self._queue):
                return  # still waiting its turn
            if (c.dev_seq is not None and self._last_dev == (c.ident, f.seq, c.dev_seq)):
                # the device saw this command last: resend with the same seq, it de-duplicates
                step.to_device += encode(f.msg, c.dev_seq)
                self._outstanding = (c.ident, f.seq, c.dev_seq, now)
                return
        # a new command: replaces any command of this client still waiting
        for k, q in enumerate(self._queue):
            if q[0] == c.ident:
                del self._queue[k]
                self.drops["superseded"] += 1
                break
        if len(self._queue) >= self.limits.max_queue:
            self.drops["queue_full"] += 1
            return
        c.last_seq, c.last_msg, c.last_resp, c.dev_seq = f.seq, f.msg, None, None
        self._queue.append((c.ident, f.seq, f.msg))

    def _pump(self, now: float, step: Step) -> None:
        o = self._outstanding
        if o is not None and now - o[3] > self.limits.cmd_timeout_s:
            self.drops["device_timeout"] += 1
            self._outstanding = o = None
        while o is None and self._queue:
            ident, cseq, msg = self._queue.popleft()
            c = self.clients.get(ident)
            if c is None or c.last_seq != cseq or c.last_msg is not msg:
                continue  # client gone or superseded
            self._dev_seq = (self._dev_seq + 1) & 0xFF
            c.dev_seq = self._dev_seq
            step.to_device += encode(msg, self._dev_seq)
            self._outstanding = o = (ident, cseq, self._dev_seq, now)
            self._last_dev = (ident, cseq, self._dev_seq)
            self.commands += 1

    def prime(self, now: float) -> Step:
        """Take over the device's retry memory (call once, when a server starts on a device that
        may have run before: a bridge restarted under a running board). The device answers a
        command whose seq equals its last one from its cache *without running it*; a new
        server's first seq collides with the previous server's last one with probability 1/256,
        and that client's command would then be acknowledged and never run (a stale device
        state). So the first command is one of ours, a harmless ID read, whose answer (fresh or
        the cached one) is dropped; every later seq differs from it."""

        step = Step()
        if self._outstanding is None and not self._queue:
            self._dev_seq = (self._dev_seq + 1) & 0xFF
            step.to_device += encode(RegRead(int(Reg.ID)), self._dev_seq)
            self._outstanding = (_PRIME, -1, self._dev_seq, now)
            self._last_dev = (_PRIME, -1, self._dev_seq)
            self.commands += 1
        return step

    # ---------------------------------------------------------------- device
    def device_data(self, data: bytes, now: float) -> Step:
        """Bytes from the device: responses routed to their client, events to every client."""
        step = Step()
        events = bytearray()
        start = 0
        while True:
            zero = data.find(0, start)
            if zero == -1:
                self._dev_append(data[start:])
                break
            self._dev_append(data[start:zero])
            start = zero + 1
            raw, overlong = bytes(self._dev_buf), self._dev_overlong
            self._dev_buf.clear()
            self._dev_overlong = False
            if overlong:
                self.drops["bad_frame_from_device"] += 1
                continue
            if not raw:
                continue
            try:
                body = cobs_decode(raw)
            except ValueError:
                body = b""
            if len(body) >= 2 and body[1] in RESPONSE_OPCODES:
                self._response(body, step)
            else:
                # events, and frames the clients' decoders will count as bad: unchanged
                events += raw
                events.append(0)
                self.events += 1
        if events:
            out = bytes(events)
            for ident in self.clients:
                step.to_clients.append((ident, [out]))
        self._pump(now, step)
        return step

    def _dev_append(self, data: bytes) -> None:
        if self._dev_overlong:
            return
        self._dev_buf += data
        if len(self._dev_buf) > MAX_FRAME + 2:
            self._dev_overlong = True
            self._dev_buf.clear()

    def _response(self, body: bytes, step: Step) -> None:
        f = decode_body(body)
        o = self._outstanding
        if not isinstance(f, Frame):
            self.drops["bad_frame_from_device"] += 1
            return
        if o is None or f.seq != o[2]:
            self.drops["stale_response"] += 1
            return
        self._outstanding = None
        self.responses += 1
        if o[0] == _PRIME:
            self.primed = True
            return
        c = self.clients.get(o[0])
        if c is None or c.last_seq != o[1]:
            self.drops["response_for_gone_client"] += 1
            return
        c.last_resp = encode(f.msg, o[1])
        step.to_clients.append((c.ident, [c.last_resp]))

    # ---------------------------------------------------------------- time
    def expire(self, now: float) -> Step:
        """Forget clients silent for ``client_ttl_s``; give up an unanswered command."""
        ttl = self.limits.client_ttl_s
        while self.clients:
            ident, c = next(iter(self.clients.items()))
            if now - c.last_seen <= ttl:
                break
            del self.clients[ident]
            self.clients_expired += 1
        step = Step()
        self._pump(now, step)
        return step

    def counters(self) -> dict:
        return {
            "clients": len(self.clients),
            "clients_seen": self.clients_seen,
            "clients_expired": self.clients_expired,
            "clients_evicted": self.clients_evicted,
            "commands_to_device": self.commands,
            "responses_from_device": self.responses,
            "event_frames": self.events,
            "command_retries": self.retries,
            "primed": self.primed,
            "queued_commands": len(self._queue),
            "drops": dict(self.drops),
            "dropped_total": sum(self.drops.values()),
        }


# ---------------------------------------------------------------------------- ZeroMQ glue
def configure_router(sock, limits: ServerLimits) -> None:
    """A server's ROUTER: bounded queues both ways, oversized messages refused by ZeroMQ (the
    peer is disconnected), and a full or unknown peer reported on send instead of a silent drop."""
    import zmq

    sock.linger = 0
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.setsockopt(zmq.RCVHWM, 1000)
    sock.setsockopt(zmq.MAXMSGSIZE, limits.max_message_bytes + 64)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)


def send(sock, ident: bytes, parts: list[bytes], sessions: DeviceSessions) -> bool:
    """Send without blocking; a full queue or a vanished peer is a counted drop."""
    import zmq

    try:
        sock.send_multipart([ident, *parts], zmq.NOBLOCK)
        return True
    except zmq.Again:
        sessions.drops["send_queue_full"] += 1
    except zmq.ZMQError:
        sessions.drops["send_unroutable"] += 1
    return False
