"""Node service: ESP (ESP paper §V) and pair verification (pair-verification paper §II-C2) driving
a device by URL, peers over ZeroMQ.

``hwctl node --config node.toml`` runs one node. The service is an asyncio driver around two
sans-IO cores, :class:`hwctl.protocols.esp.EspNode` and (optionally)
:class:`hwctl.protocols.verification.VerificationCore`. It feeds them requests (its own workload),
peer messages, device events and timer expiries, and carries out their actions:

- ESP ``Send``            -> ZeroMQ to the peer (one DEALER per neighbour, our ROUTER for incoming)
- ESP ``StartAttempts``   -> attempt schedules on the device, at *both* ends (see below)
- ESP ``Completed``       -> a result record (latency L = NL_finish - NL_start, ESP paper eq. (3))
- HEADER events           -> ``VerificationCore.handle_headers`` (runs decoded in bulk) or
  ``handle_header`` (single frames); the memory slot stays allocated
- ``SendToPartner``       -> ZeroMQ to the verification partner (same peer sockets as ESP)
- ``FreeSlots``           -> FREE_MASK commands of up to 240 slots (each slot freed exactly once,
  checked; a NAK falls back to FREE per slot)
- ``PairsVerified``       -> result rows (seq, slot, store/verify ticks, fidelity at verification)

Every ZeroMQ message is ``[kind, payload]``; ``kind`` tells the streams apart on one link:
``esp`` (an EspMessage), ``pl`` (physical-layer coordination, JSON) and ``vrf`` (a verification
partner message, :func:`hwctl.protocols.verification.encode_records`).

Time. Protocol cores for ESP use node seconds; the verification core and the device use device
cycles (ticks). :class:`DeviceClock` is the one conversion (a linear map fixed by a TIME read at
start). ESP's ``t_min`` travels between nodes, so node clocks must agree (one process: a shared
``epoch``; separate hosts: synchronised clocks, see docs/node.md).

Physical layer (both ends fire). On ``StartAttempts`` both nodes queue SCHEDULE(t_start, 2^32-1,
period, window) at ``t_start = t_min + margin`` on their own device, so both lasers fire the same
attempt k at ``t_start + k*period``. The heralding station's verdict is decided once, by the
*initiator's* device (its detector inputs model the station; the remote sets CONTROL.HERALD_EN = 0
so its own detector inputs are ignored). The initiator relays each HERALD to the remote together
with the start time of the next round (``pl`` messages); the remote ABORTs its schedule on the
relay, checks from CNT_ATTEMPTS that it fired the heralded attempt, and queues the next round (or
finishes on the last herald). A LATE at either end restarts the round at both with twice the
margin. Disagreements (the remote did not fire the heralded attempt, was LATE, heralded itself,
exhausted, a herald from an aborted round) are counted in ``NodeCounters.disagree``.

Config (TOML)::

    name = "A"
    listen = "tcp://127.0.0.1:6001"
    backend = "serial:///tmp/twinA"          # or twin://..., zmq+tcp://...
    duration = 30.0                          # seconds (omit: run until Ctrl-C)
    out = "results/A"                        # optional: write <name>.parquet + meta.json
    [peers.B]
    endpoint = "tcp://127.0.0.1:6002"
    length_m = 2000                          # fibre length of the link (control delay)
    [workload]                               # requests this node initiates (ESP §VI-B workload)
    fidelity = 0.75
    pairs = [1, 6]
    mean_backoff = 0.1                       # s, exponential between a completion and the next
    seed = 1
    [physical]
    period_cycles = 50
    window_cycles = 2
    margin_s = 0.004                         # scheduling slack of each round (adapts on LATE)
    [verification]                           # optional: pair verification with one partner
    partner = "B"                            # one of [peers]; its device sees the same source
    memory = "nv"                            # Table I memory (short or full name)
    f_th = 0.81                              # fidelity threshold -> timeout (paper Eq. 1)
    skew_s = 0.0                             # partner's store time minus ours (s)
    report_interval_s = 0.001                # batching of ID reports
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import time
import tomllib
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import zmq
import zmq.asyncio

from hwctl.errors import DeviceError, LinkError, UserError
from hwctl.physics import fibre
from hwctl.physics import memory as _memory
from hwctl.protocols.base import Completed, Request, Send, StartAttempts
from hwctl.protocols.esp import EspMessage, EspNode, MsgType
from hwctl.protocols.verification import (
    FreeSlots,
    HeaderRejected,
    PairsDiscarded,
    PairsRevoked,
    PairsVerified,
    SendToPartner,
    VerificationConfig,
    VerificationCore,
    VerificationProtocolError,
)
from hwctl.slots import SlotBook
from hwctl.transport import Backend, open_backend
from hwctl.wire import (
    CLOCK_HZ,
    ControlBit,
    Done,
    DoneReason,
    Error,
    ErrorCode,
    Header,
    Herald,
    Late,
    Reg,
    free_masks,
)
from hwctl.wire.bulk import HeaderBlock

log = logging.getLogger(__name__)

#: ZeroMQ message kinds between node services (first frame)
K_ESP = b"esp"  # an EspMessage
K_PL = b"pl"  # physical-layer coordination, JSON (see NodeService._station / _follow)
K_VRF = b"vrf"  # a verification-core partner message (bitmap records)

U32 = 0xFFFF_FFFF
#: the HEADER frame is ~19 bytes on the wire: a 3 Mbaud UART carries at most ~16k HEADERs/s
UART_HEADER_LIMIT_HZ = 3_000_000 / 10 / 19
#: the adaptive scheduling margin never grows beyond this (s)
MAX_MARGIN_S = 0.05


@dataclass
class PeerConfig:
    name: str
    endpoint: str
    length_m: float = 2000.0


@dataclass
class VerifyConfig:
    """``[verification]``: the partner node, the memory (paper Table I) and the threshold F_th."""

    partner: str
    memory: str = "nv"
    f_th: float = _memory.F_QKD
    skew_s: float = 0.0
    report_interval_s: float = 1e-3
    window_bits: int = 20

    def memory_model(self) -> _memory.Memory:
        for m in _memory.TABLE_I:
            if self.memory in (m.short, m.name):
                return m
        raise UserError(f"[verification] memory {self.memory!r} is not in Table I; known: "
                        f"{', '.join(m.short for m in _memory.TABLE_I)}")

    def core_config(self, clock_hz: float = CLOCK_HZ) -> VerificationConfig:
        """Timeout from T1/T2 and F_th (paper Eq. 1, exact), report interval in device ticks."""
        return VerificationConfig.from_memory(
            self.memory_model(), self.f_th, clock_hz=clock_hz, skew_s=self.skew_s,
            report_interval_ticks=max(1, round(self.report_interval_s * clock_hz)),
            window_bits=self.window_bits)


@dataclass
class NodeConfig:
    name: str
    listen: str
    backend: str
    peers: list[PeerConfig]
    duration: float | None = None
    out: str | None = None
    fidelity: float = 0.75
    pairs: tuple[int, int] = (1, 6)
    mean_backoff: float = 0.1
    seed: int = 0
    workload: bool = True
    period_cycles: int = 50
    window_cycles: int = 2
    margin_s: float = 0.004
    verification: VerifyConfig | None = None

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> NodeConfig:
        try:
            wl = d.get("workload", {})
            ph = d.get("physical", {})
            vf = d.get("verification")
            peers = [PeerConfig(n, p["endpoint"], float(p.get("length_m", 2000.0)))
                     for n, p in d.get("peers", {}).items()]
            vcfg = None
            if vf is not None:
                vcfg = VerifyConfig(
                    partner=str(vf["partner"]), memory=str(vf.get("memory", "nv")),
                    f_th=float(vf.get("f_th", _memory.F_QKD)), skew_s=float(vf.get("skew_s", 0.0)),
                    report_interval_s=float(vf.get("report_interval_s", 1e-3)),
                    window_bits=int(vf.get("window_bits", 20)))
            cfg = cls(
                name=str(d["name"]), listen=str(d["listen"]), backend=str(d["backend"]), peers=peers,
                duration=None if d.get("duration") is None else float(d["duration"]),
                out=d.get("out"),
                fidelity=float(wl.get("fidelity", 0.75)),
                pairs=tuple(int(x) for x in wl.get("pairs", (1, 6))),  # type: ignore[arg-type]
                mean_backoff=float(wl.get("mean_backoff", 0.1)), seed=int(wl.get("seed", 0)),
                workload=bool(wl.get("enabled", True)),
                period_cycles=int(ph.get("period_cycles", 50)),
                window_cycles=int(ph.get("window_cycles", 2)),
                margin_s=float(ph.get("margin_s", 0.004)),
                verification=vcfg,
            )
        except KeyError as exc:
            raise UserError(f"{source}: missing key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise UserError(f"{source}: {exc}") from None
        if not cfg.peers:
            raise UserError(f"{source}: node {cfg.name!r} has no [peers]")
        if len(cfg.pairs) != 2 or not 1 <= cfg.pairs[0] <= cfg.pairs[1]:
            raise UserError(f"{source}: workload.pairs must be [min, max] with 1 <= min <= max")
        if cfg.window_cycles < 1 or cfg.period_cycles < cfg.window_cycles + 2 or cfg.margin_s <= 0:
            raise UserError(f"{source}: physical: need window_cycles >= 1, period_cycles >= "
                            "window_cycles + 2 and margin_s > 0")
        if vcfg is not None:
            if vcfg.partner not in {p.name for p in cfg.peers}:
                raise UserError(f"{source}: verification.partner {vcfg.partner!r} is not one of [peers]")
            if not 0.5 < vcfg.f_th < 1.0:
                raise UserError(f"{source}: verification.f_th must be in (0.5, 1)")
            if vcfg.report_interval_s <= 0:
                raise UserError(f"{source}: verification.report_interval_s must be > 0")
            try:
                vcfg.core_config()
            except ValueError as exc:
                raise UserError(f"{source}: verification: {exc}") from None
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        try:
            with open(path, "rb") as f:
                d = tomllib.load(f)
        except FileNotFoundError:
            raise UserError(f"config file {str(path)!r} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{path}: not valid TOML ({exc})") from None
        return cls.from_dict(d, str(path))


@dataclass
class RequestRecord:
    """One request seen by its initiator; times in seconds on the node clock, heralds in cycles."""

    rid: int
    initiator: str
    remote: str
    pairs: int
    fidelity: float
    t_submit: float
    t_syn: float | None = None  # last SYN sent (earlier ones were rejected: SYNREJ / NACK)
    t_ack: float | None = None  # SYN -> SYNACK -> ACK done at the initiator
    t_min: float | None = None
    t_pl_start: float | None = None
    t_finish: float | None = None
    attempts: int = 0
    late: int = 0
    restarts: int = 0  # rounds restarted at both ends (a LATE at either end)
    herald_ts: list[int] = field(default_factory=list)

    @property
    def latency(self) -> float | None:
        return None if self.t_finish is None else self.t_finish - self.t_submit


#: kinds of physical-layer disagreement between the two ends of a link (NodeCounters.disagree)
DISAGREE_KINDS = (
    "remote_short",  # remote's device had not fired the heralded attempt when the relay came
    "remote_late",  # remote's device refused the round's start (LATE): it fired nothing
    "remote_herald",  # remote's own detectors heralded (HERALD_EN should be 0 there)
    "exhausted",  # a schedule ran out of attempts before the request was done
    "stale_herald",  # initiator: a herald from a round already aborted/closed (not counted)
    "late_notice",  # initiator: the remote's LATE for a round already heralded
)


@dataclass
class NodeCounters:
    requests: int = 0
    completed: int = 0
    heralds: int = 0
    attempts: int = 0  # attempts fired by this node's device (both roles)
    schedules: int = 0  # SCHEDULE commands accepted by this node's device
    generations: int = 0  # requests this node took part in at the physical layer (both roles)
    late: int = 0
    device_errors: int = 0
    headers: int = 0
    no_slot: int = 0  # ERROR(NO_SLOT): a header came with every slot in use (qubit lost here)
    bad_headers: int = 0
    slots_freed: int = 0  # slots freed (acknowledged FREE_MASK / FREE commands)
    double_free: int = 0  # the core asked to free a slot that is not held (must stay 0)
    slot_conflicts: int = 0  # a HEADER gave a slot we still hold (must stay 0)
    msgs_in: int = 0
    msgs_out: int = 0
    bad_msgs: int = 0
    stale_msgs: int = 0  # pl messages for a request no longer running here
    disagree: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DISAGREE_KINDS, 0))


@dataclass(frozen=True, slots=True)
class DeviceClock:
    """The one host-time <-> device-tick conversion of a node: device cycle ``c0`` is node time
    ``t0`` (fixed by a TIME read at start, midpoint of its round trip), ``hz`` cycles per second."""

    c0: int = 0
    t0: float = 0.0
    hz: float = float(CLOCK_HZ)

    def cycle_at(self, t: float) -> int:
        return self.c0 + round((t - self.t0) * self.hz)

    def time_at(self, cycle: int) -> float:
        return self.t0 + (cycle - self.c0) / self.hz


async def _cancel_all(tasks: list[asyncio.Task]) -> None:
    """Cancel and reap ``tasks``, cancelling again while any survives: on Python 3.11 a
    cancellation that races with ``asyncio.wait_for`` (used by the backend's retry loop) can be
    swallowed, and a task that loops on would then never end."""
    pending = set(tasks)
    while pending:
        for t in pending:
            t.cancel()
        done, pending = await asyncio.wait(pending, timeout=0.2)
        for t in done:
            if not t.cancelled():
                t.exception()  # reaped (a task's error was raised by run() already)


async def _wait_event(ev: asyncio.Event, delay: float) -> None:
    """Wait for ``ev`` at most ``delay`` seconds. Uses ``asyncio.timeout``: Python 3.11's
    ``wait_for`` can swallow a cancellation that races with the event (the task then never ends)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay):
            await ev.wait()


@dataclass(frozen=True, slots=True)
class PlMsg:
    """A ``pl`` message from a peer, queued with the device events of the running generation."""

    src: str
    d: dict


class NodeService:
    """One node: ESP core (+ verification core) + backend + ZeroMQ peers. ``await run()``."""

    def __init__(self, cfg: NodeConfig, *, epoch: float | None = None, rid_base: int = 0,
                 ctx: zmq.asyncio.Context | None = None) -> None:
        self.cfg = cfg
        self.epoch = time.monotonic() if epoch is None else epoch
        delays = {p.name: fibre.delay(p.length_m) for p in cfg.peers}
        self.core = EspNode(cfg.name, delays)
        self.rng = random.Random(cfg.seed)
        self.ctx = ctx or zmq.asyncio.Context.instance()
        self.records: dict[int, RequestRecord] = {}
        self.counters = NodeCounters()
        self.backend: Backend | None = None
        self.clock = DeviceClock()
        self._rid_base = rid_base
        self._rid_next = 0
        self._stop = asyncio.Event()
        self._timer_wake = asyncio.Event()
        self._out: dict[str, zmq.asyncio.Socket] = {}
        self._router: zmq.asyncio.Socket | None = None
        self._pl_queue: asyncio.Queue[tuple[Request, str, float]] = asyncio.Queue()
        self._events: asyncio.Queue = asyncio.Queue()  # HERALD/DONE/LATE and PlMsg
        self._pl_rid: int | None = None  # request running at the physical layer here
        self._control: int | None = None  # last CONTROL value written
        self._margin = cfg.margin_s  # adaptive scheduling margin (doubles on LATE, decays back)
        self._stash: deque = deque()  # events taken out of order while waiting for a DONE
        self.error: BaseException | None = None
        # verification
        v = cfg.verification
        self.vcore = VerificationCore(v.core_config()) if v is not None else None
        self.partner = v.partner if v is not None else None
        self._vwake = asyncio.Event()
        self._slots = SlotBook()  # slots allocated by HEADERs and not yet freed; FREE queue
        self._free_wake = asyncio.Event()
        self._free_busy = 0  # slots in the FREE_MASK commands on their way
        self._max_ts = 0
        self._pairs: list[PairsVerified] = []

    # ------------------------------------------------------------------ time
    def now(self) -> float:
        return time.monotonic() - self.epoch

    def device_cycle_at(self, t: float) -> int:
        """Device cycle at node time ``t`` (see :class:`DeviceClock`)."""
        return self.clock.cycle_at(t)

    def device_now(self) -> int:
        """Device ticks now, never before a HEADER timestamp already seen (the verification core's
        ``now``; the TIME map is only good to about half a command round trip)."""
        return max(self.clock.cycle_at(self.now()), self._max_ts)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, backend: Backend | None = None) -> None:
        """Open the backend by URL (or adopt an open ``backend``) and the ZeroMQ sockets."""
        self.backend = backend if backend is not None else await open_backend(self.cfg.backend)
        self.backend.header_blocks = True  # runs of HEADERs as numpy blocks (see _on_headers)
        t_before = self.now()
        c = await self.backend.time()
        self.clock = DeviceClock(c, (t_before + self.now()) / 2, float(self.backend.clock_hz))
        self._router = self.ctx.socket(zmq.ROUTER)
        self._router.linger = 0
        try:
            self._router.bind(self.cfg.listen)
        except zmq.ZMQError as exc:
            await self.backend.close()
            raise UserError(f"node {self.cfg.name}: cannot listen on {self.cfg.listen}: {exc}") from None
        for p in self.cfg.peers:
            s = self.ctx.socket(zmq.DEALER)
            s.linger = 0
            s.setsockopt(zmq.IDENTITY, self.cfg.name.encode())
            s.connect(p.endpoint)
            self._out[p.name] = s

    async def run(self) -> None:
        """Serve until ``stop()`` or ``cfg.duration``; raises the first fatal error."""
        if self.backend is None:
            await self.start()
        coros = [self._rx_loop(), self._timer_loop(), self._pl_loop(), self._event_pump(),
                 self._free_loop()]
        if self.vcore is not None:
            coros.append(self._vrf_timer_loop())
        tasks = [asyncio.create_task(c) for c in coros]
        if self.cfg.workload:
            tasks += [asyncio.create_task(self._workload(p.name)) for p in self.cfg.peers]
        stopper = asyncio.create_task(self._stop.wait())
        try:
            timeout = self.cfg.duration
            done, _ = await asyncio.wait([stopper, *tasks], timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stopper and t.exception() is not None:
                    self.error = t.exception()
                    raise t.exception()  # type: ignore[misc]
        finally:
            await _cancel_all([*tasks, stopper])
            await self.close()

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        if self.backend is not None:
            await self.backend.close()
        for s in [*self._out.values(), *([self._router] if self._router else [])]:
            s.close(0)

    # ------------------------------------------------------------------ requests
    def submit(self, remote: str, pairs: int, fidelity: float | None = None) -> Request:
        self._rid_next += 1
        req = Request(self._rid_base + self._rid_next, self.cfg.name, remote,
                      self.cfg.fidelity if fidelity is None else fidelity, pairs, self.now())
        self.records[req.rid] = RequestRecord(req.rid, req.initiator, req.remote, req.pairs,
                                              req.fidelity, req.t)
        self.counters.requests += 1
        self._apply(self.core.submit(req, req.t))
        return req

    async def _workload(self, peer: str) -> None:
        """ESP §VI-B-style workload on one edge: one request at a time, exponential back-off."""
        lo, hi = self.cfg.pairs
        while True:
            await asyncio.sleep(self.rng.expovariate(1.0 / self.cfg.mean_backoff))
            req = self.submit(peer, self.rng.randint(lo, hi))
            while self.records[req.rid].t_finish is None:
                await asyncio.sleep(0.005)

    # ------------------------------------------------------------------ core actions
    def _apply(self, actions: list) -> None:
        now = self.now()
        for act in actions:
            if type(act) is Send:
                msg: EspMessage = act.msg
                rec = self.records.get(msg.rid)
                if rec is not None and not msg.wake:
                    if msg.kind is MsgType.SYN:  # the last SYN: the one that got SYNACK
                        rec.t_syn = now
                    elif msg.kind is MsgType.ACK:
                        rec.t_ack = now
                self._send(msg.dst, K_ESP, msg.to_bytes())
            elif type(act) is StartAttempts:
                self._pl_queue.put_nowait((act.request, act.peer, act.t_min))  # both ends fire
            elif type(act) is Completed:
                rec = self.records[act.request.rid]
                rec.t_finish = act.t_finish
                self.counters.completed += 1
        self._timer_wake.set()

    def _send(self, peer: str, kind: bytes, payload: bytes) -> None:
        sock = self._out.get(peer)
        if sock is None:
            raise UserError(f"node {self.cfg.name}: no peer {peer!r} configured")
        self.counters.msgs_out += 1
        sock.send_multipart([kind, payload], zmq.NOBLOCK)

    def _send_pl(self, peer: str, **d: object) -> None:
        self._send(peer, K_PL, json.dumps(d).encode())

    async def _rx_loop(self) -> None:
        assert self._router is not None
        while True:
            ident, *parts = await self._router.recv_multipart()
            self.counters.msgs_in += 1
            if len(parts) != 2:
                self.counters.bad_msgs += 1
                continue
            kind, payload = parts
            src = ident.decode(errors="replace")
            try:
                if kind == K_ESP:
                    msg = EspMessage.from_bytes(payload)
                    self._apply(self.core.receive(msg, self.now()))
                elif kind == K_PL:
                    d = json.loads(payload)
                    if not isinstance(d, dict) or not isinstance(d.get("rid"), int):
                        raise ValueError("pl message without rid")
                    if d["rid"] == self._pl_rid or self._pl_rid is None:
                        self._events.put_nowait(PlMsg(src, d))  # the generation sorts it out
                    else:
                        self.counters.stale_msgs += 1
                elif kind == K_VRF and self.vcore is not None and src == self.partner:
                    self.vcore.handle_message(payload, self.device_now())
                    self._vrf_apply()
                else:
                    self.counters.bad_msgs += 1
            except (ValueError, KeyError, VerificationProtocolError) as exc:
                self.counters.bad_msgs += 1
                log.warning("%s: bad message from %r: %s", self.cfg.name, ident, exc)

    async def _timer_loop(self) -> None:
        while True:
            t = self.core.get_timer()
            self._timer_wake.clear()
            if t is None:
                await self._timer_wake.wait()
                continue
            delay = t - self.now()
            if delay > 0:
                await _wait_event(self._timer_wake, delay)
                continue
            self._apply(self.core.handle_timer(self.now()))

    # ------------------------------------------------------------------ verification
    def _vrf_apply(self) -> None:
        """Carry out the verification core's actions (paper §II-C2 steps 2-6)."""
        assert self.vcore is not None
        for act in self.vcore.drain():
            t = type(act)
            if t is SendToPartner:
                assert self.partner is not None
                self._send(self.partner, K_VRF, act.data)
            elif t is FreeSlots:
                bad = self._slots.release(act.slots)
                self._free_wake.set()
                if bad:
                    self.counters.double_free += bad
                    log.error("%s: verification core freed %d slot(s) not held", self.cfg.name, bad)
            elif t is PairsVerified:
                self._pairs.append(act)
            elif t is HeaderRejected:
                log.warning("%s: HEADER seq %d rejected (duplicate or backwards)", self.cfg.name, act.seq)
            elif t in (PairsDiscarded, PairsRevoked):
                pass  # counted in vcore.metrics (discards by cause, revoked)
        self._vwake.set()

    def _on_header(self, ev: Header) -> None:
        self._hold(np.array([ev.slot], dtype=np.int64), ev.seq)
        self._max_ts = max(self._max_ts, ev.ts)
        if self.vcore is not None:
            self.vcore.handle_header(ev.seq, ev.ts, ev.slot)  # O(1); may move the core's timer
            self._vwake.set()

    def _on_headers(self, b: HeaderBlock) -> None:
        """A run of HEADERs decoded in bulk (the path that keeps pace with a 1.3 MHz source)."""
        self._hold(b.slot, int(b.seq[0]))
        self._max_ts = max(self._max_ts, int(b.ts[-1]))
        if self.vcore is not None:
            self.vcore.handle_headers(b.seq, b.ts, b.slot)
            self._vwake.set()

    def _hold(self, slots: np.ndarray, seq0: int) -> None:
        self.counters.headers += int(slots.size)
        conflicts = self._slots.allocated(slots)
        if conflicts:
            self.counters.slot_conflicts += conflicts
            log.error("%s: %d HEADER(s) from seq %d in slots still held", self.cfg.name, conflicts, seq0)
        if self.vcore is None:
            # no verification partner configured: nothing will match, hand the slots back
            self._slots.release(slots)
            self._free_wake.set()

    async def _vrf_timer_loop(self) -> None:
        """Drive the verification core's timer (device ticks) like the ESP one (node seconds)."""
        core = self.vcore
        assert core is not None
        while True:
            self._vwake.clear()
            t = core.get_timer()
            if t is None:
                await self._vwake.wait()
                continue
            delay = self.clock.time_at(t) - self.now()
            if delay > 0:
                await _wait_event(self._vwake, delay)
                continue
            # due by the host clock: never pass a tick before the deadline (rounding in the map)
            core.handle_timer(max(self.device_now(), t))
            self._vrf_apply()
            await asyncio.sleep(0)

    async def _free_loop(self) -> None:
        """Slots handed back to the device: everything queued so far, packed into FREE_MASK
        commands of up to 240 slots (one command in flight, as the link requires). A NAK (some
        slot not allocated: a bug somewhere) falls back to FREE per slot so the others are not
        lost, and counts the refused ones."""
        b = self.backend
        assert b is not None
        while True:
            await self._free_wake.wait()
            self._free_wake.clear()
            while self._slots.n_pending:
                for base, mask in free_masks(self._slots.take()):
                    n = mask.bit_count()
                    self._free_busy = n  # stays set if we are cancelled mid-command (then unknown)
                    try:
                        await b.free_mask(base, mask)
                        self.counters.slots_freed += n
                    except DeviceError as exc:
                        log.warning("%s: %s; freeing those %d slots one by one", self.cfg.name, exc, n)
                        await self._free_each(base, mask)
                    self._free_busy = 0

    async def _free_each(self, base: int, mask: int) -> None:
        b = self.backend
        assert b is not None
        for i in range(mask.bit_length()):
            if mask >> i & 1:
                try:
                    await b.free(base + i)
                    self.counters.slots_freed += 1
                except DeviceError as exc:
                    self.counters.device_errors += 1
                    log.warning("%s: %s", self.cfg.name, exc)

    def verification_summary(self) -> dict | None:
        """Metrics of the verification core (JSON-friendly), or None without one."""
        if self.vcore is None:
            return None
        v = self.cfg.verification
        assert v is not None
        _ = self.vcore.occupancy  # ingest staged headers (the core does it lazily) ...
        self._vrf_apply()  # ... and carry out what that decided, so the books balance
        m = self.vcore.metrics
        c = self.counters
        return {
            "partner": v.partner, "memory": v.memory_model().name, "f_th": v.f_th,
            "timeout_s": self.vcore.config.timeout_ticks / self.vcore.config.clock_hz,
            "headers": m.headers, "missing_local": m.missing_local, "verified": m.verified,
            "verified_rate_hz": m.verified_rate(self.vcore.config.clock_hz),
            "discards": {k.name: n for k, n in m.discards.items()}, "revoked": m.revoked,
            "rejected_headers": m.rejected_headers,
            "fidelity_mean": None if not m.verified else m.mean_fidelity,
            "fidelity_min": None if not m.verified else m.fidelity_min,
            "occupancy": m.occupancy, "max_occupancy": m.max_occupancy,
            "messages_sent": m.messages_sent, "bytes_sent": m.bytes_sent,
            "messages_received": m.messages_received,
            "no_slot": c.no_slot, "slots_freed": c.slots_freed, "slots_held": self._slots.n_held,
            "free_pending": self._slots.n_pending + self._free_busy, "double_free": c.double_free,
            "slot_conflicts": c.slot_conflicts,
        }

    def pair_rows(self) -> list[dict]:
        """One row per verified pair: seq, slot, store/verify ticks (device), fidelity."""
        rows = []
        for a in self._pairs:
            fid = a.fidelity.tolist() if a.fidelity is not None else [None] * len(a.seqs)
            for s, sl, st, vt, f in zip(a.seqs.tolist(), a.slots.tolist(), a.store_ts.tolist(),
                                        a.verify_ts.tolist(), fid, strict=True):
                rows.append({"node": self.cfg.name, "partner": self.partner, "seq": s, "slot": sl,
                             "store_ts": st, "verify_ts": vt, "fidelity": f})
        return rows

    # ------------------------------------------------------------------ physical layer
    async def _event_pump(self) -> None:
        """Device events: HEADERs to the verification core, the rest to the running generation;
        errors are counted, never dropped."""
        assert self.backend is not None
        while True:
            ev = await self.backend.next_event()
            if type(ev) is HeaderBlock:
                self._on_headers(ev)
            elif isinstance(ev, Header):
                self._on_header(ev)
            elif isinstance(ev, Error):
                if ev.code == ErrorCode.NO_SLOT:
                    self.counters.no_slot += 1  # that qubit is lost here: a gap for the core
                elif ev.code == ErrorCode.BAD_HEADER:
                    self.counters.bad_headers += 1
                else:
                    self.counters.device_errors += 1
                    log.warning("%s: device error %s", self.cfg.name, ev)
            else:
                self._events.put_nowait(ev)

    async def _pl_loop(self) -> None:
        while True:
            req, peer, t_min = await self._pl_queue.get()
            self._pl_rid = req.rid
            self.counters.generations += 1
            try:
                if req.initiator == self.cfg.name:
                    await self._station(req, peer, t_min)
                else:
                    await self._follow(req, peer, t_min)
            finally:
                self._pl_rid = None

    async def _set_station(self, station: bool) -> None:
        """CONTROL.HERALD_EN = 1 at the station's device (initiator), 0 at the remote's."""
        assert self.backend is not None
        want = (1 << ControlBit.HEADER_EN) | ((1 << ControlBit.HERALD_EN) if station else 0)
        if self._control != want:
            await self.backend.write_reg(Reg.CONTROL, want)
            self._control = want

    async def _schedule(self, t: float) -> int | None:
        """SCHEDULE(cycle of node time ``t``, 2^32-1 attempts); the t_start cycle, None if NAKed."""
        b = self.backend
        assert b is not None
        tc = self.clock.cycle_at(t)
        try:
            await b.schedule(tc, U32, self.cfg.period_cycles, self.cfg.window_cycles)
        except DeviceError as exc:
            self.counters.device_errors += 1
            log.warning("%s: %s", self.cfg.name, exc)
            return None
        self.counters.schedules += 1
        return tc

    def _disagree(self, kind: str, detail: str = "") -> None:
        self.counters.disagree[kind] += 1
        log.info("%s: physical-layer disagreement: %s %s", self.cfg.name, kind, detail)

    async def _next(self):
        """Next item of the running generation: stashed first, then device events / pl messages."""
        if self._stash:
            return self._stash.popleft()
        return await self._events.get()

    async def _abort_done(self, wait_s: float = 0.002) -> int | None:
        """After an ABORT: attempts fired by the aborted schedule, from its DONE(ABORTED).

        ABORT of a schedule that had not started (still queued) emits no DONE: then None after
        ``wait_s``. The device sends the DONE right after the ABORT's ACK, so normally it is
        already queued here. Other items met meanwhile are stashed for :meth:`_next`."""
        t_end = time.monotonic() + wait_s
        while True:
            try:
                ev = self._events.get_nowait()
            except asyncio.QueueEmpty:
                if time.monotonic() >= t_end:
                    return None
                await asyncio.sleep(0.0002)
                continue
            if isinstance(ev, Done) and ev.reason == DoneReason.ABORTED:
                return ev.attempts
            self._stash.append(ev)

    def _late(self) -> None:
        self._margin = min(2 * self._margin, MAX_MARGIN_S)

    async def _station(self, req: Request, peer: str, t_min: float) -> None:
        """Initiator: its device models the heralding station. Runs rounds until ``req.pairs``
        heralds. Every round's start (node time) is decided here and sent to the remote first
        (``pl`` message ``{rid, round, start}``, with the previous round's herald)."""
        b = self.backend
        assert b is not None
        rec = self.records[req.rid]
        c = self.counters
        await self._set_station(True)
        rnd, pairs, attempts = 0, 0, 0
        herald: dict | None = None
        tc: int | None = None

        async def begin(restart: bool) -> int | None:
            """Start round ``rnd`` at both ends ``margin`` from now; retry (margin x2) on a NAK."""
            nonlocal herald
            if restart:
                rec.restarts += 1
                self._late()
            while True:
                t = max(t_min, self.now()) + self._margin
                if rec.t_pl_start is None:
                    rec.t_min, rec.t_pl_start = t_min, t
                self._send_pl(peer, rid=req.rid, round=rnd, start=t, herald=herald)
                herald = None
                tc = await self._schedule(t)
                if tc is not None:
                    return tc
                rec.restarts += 1
                self._late()

        tc = await begin(False)
        clean = True  # no LATE in this round
        while True:
            ev = await self._next()
            if isinstance(ev, PlMsg):
                d = ev.d
                if d.get("rid") != req.rid or not d.get("late"):
                    c.stale_msgs += 1
                elif d.get("round") == rnd:
                    await b.abort()  # the remote cannot fire this round: restart it at both ends
                    attempts += await self._abort_done() or 0
                    clean = False
                    tc = await begin(True)
                else:
                    self._disagree("late_notice", f"rid {req.rid} round {d.get('round')}")
                continue
            if isinstance(ev, Late):
                if ev.t_start != tc:
                    continue
                rec.late += 1
                c.late += 1
                clean = False
                tc = await begin(True)
                continue
            if isinstance(ev, Done):
                if ev.reason == DoneReason.EXHAUSTED:
                    attempts += ev.attempts
                    self._disagree("exhausted")
                    tc = await begin(True)
                continue
            if isinstance(ev, Herald):
                if ev.ts < tc:
                    self._disagree("stale_herald", f"rid {req.rid}: ts {ev.ts} < t_start {tc}")
                    continue
                pairs += 1
                attempts += ev.attempt + 1
                rec.herald_ts.append(ev.ts)
                c.heralds += 1
                if clean:
                    self._margin = max(self.cfg.margin_s, 0.98 * self._margin)
                herald = {"attempt": ev.attempt, "ts": ev.ts}
                if pairs >= req.pairs:
                    self._send_pl(peer, rid=req.rid, round=rnd, herald=herald, done=True)
                    break
                rnd += 1
                clean = True
                tc = await begin(False)
        rec.attempts += attempts
        c.attempts += attempts
        self._apply(self.core.attempts_finished(req.rid, self.now()))

    async def _follow(self, req: Request, peer: str, t_min: float) -> None:
        """Remote: fire the rounds the initiator announces on our device (HERALD_EN = 0). On each
        announcement ABORT the running round, queue the next, then check from the aborted round's
        DONE that we fired the heralded attempt; finish on the last herald."""
        b = self.backend
        assert b is not None
        await self._set_station(False)
        rnd: int | None = None
        tc: int | None = None
        active = False
        while True:
            ev = await self._next()
            if isinstance(ev, PlMsg):
                d = ev.d
                if d.get("rid") != req.rid:
                    self.counters.stale_msgs += 1
                    continue
                was_active, active = active, False
                if was_active:
                    await b.abort()
                if not d.get("done"):  # queue the next round first: it is on the critical path
                    rnd = int(d["round"])
                    tc = await self._schedule(float(d["start"]))
                    active = tc is not None
                    if not active:
                        self._send_pl(peer, rid=req.rid, round=rnd, late=True)
                fired = (await self._abort_done() or 0) if was_active else 0
                self.counters.attempts += fired
                h = d.get("herald")
                if h is not None and fired < int(h["attempt"]) + 1:
                    self._disagree("remote_short", f"rid {req.rid}: fired {fired}, heralded "
                                   f"attempt {h['attempt']}")
                if d.get("done"):
                    break
            elif isinstance(ev, Late):
                if ev.t_start == tc and active:
                    active = False
                    self.counters.late += 1
                    self._disagree("remote_late", f"rid {req.rid} round {rnd}")
                    self._send_pl(peer, rid=req.rid, round=rnd, late=True)
            elif isinstance(ev, Herald):
                self._disagree("remote_herald")
                active = False
            elif isinstance(ev, Done) and ev.reason == DoneReason.EXHAUSTED:
                self.counters.attempts += ev.attempts
                self._disagree("exhausted")
                active = False
        self._apply(self.core.attempts_finished(req.rid, self.now()))

    # ------------------------------------------------------------------ results
    def snapshot(self) -> dict:
        d = asdict(self.counters)
        d["state"] = self.core.state.value
        if self.backend is not None:
            d["link"] = self.backend.health()
        v = self.verification_summary()
        if v is not None:
            d["verification"] = v
        return d

    def result_rows(self) -> list[dict]:
        rows = []
        for r in self.records.values():
            d = asdict(r)
            d["latency"] = r.latency
            d["herald_ts"] = list(r.herald_ts)
            rows.append(d)
        return rows


def write_results(rows: list[dict], meta: dict, out: Path, name: str = "requests",
                  pairs: list[dict] | None = None) -> Path:
    """Requests as Parquet (integer cycle timestamps kept as int64 lists) + meta JSON beside it;
    with ``pairs`` (verified pairs, :meth:`NodeService.pair_rows`) also ``<name>.pairs.parquet``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.parquet"
    cols = ["rid", "initiator", "remote", "pairs", "fidelity", "t_submit", "t_syn", "t_ack",
            "t_min", "t_pl_start", "t_finish", "latency", "attempts", "late", "restarts",
            "herald_ts"]
    table = pa.table({c: [r.get(c) for r in rows] for c in cols[:-1]} |
                     {"herald_ts": pa.array([r.get("herald_ts", []) for r in rows], pa.list_(pa.uint64()))})
    pq.write_table(table, path)
    if pairs is not None:
        pq.write_table(pa.table({
            "node": pa.array([r["node"] for r in pairs], pa.string()),
            "partner": pa.array([r["partner"] for r in pairs], pa.string()),
            "seq": pa.array([r["seq"] for r in pairs], pa.uint32()),
            "slot": pa.array([r["slot"] for r in pairs], pa.uint16()),
            "store_ts": pa.array([r["store_ts"] for r in pairs], pa.int64()),
            "verify_ts": pa.array([r["verify_ts"] for r in pairs], pa.int64()),
            "fidelity": pa.array([r["fidelity"] for r in pairs], pa.float64()),
        }), out / f"{name}.pairs.parquet")
    (out / f"{name}.meta.json").write_text(json.dumps(meta, indent=2, default=str))
    return path


def code_version() -> str:
    import subprocess

    from hwctl import __version__

    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=2, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"{__version__}+{rev}" if rev else __version__


# ---------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="node TOML file (see `pydoc hwctl.node`)")
    parser.add_argument("--duration", type=float, default=None, help="override the config's duration (s)")
    parser.add_argument("--out", default=None, help="write requests.parquet and meta JSON here")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    cfg = NodeConfig.load(args.config)
    if args.duration is not None:
        cfg.duration = args.duration
    if args.out:
        cfg.out = args.out
    console = Console(stderr=True)

    async def main() -> NodeService:
        node = NodeService(cfg)
        await node.start()
        console.print(f"[green]node {cfg.name}[/] on {cfg.listen}, backend {cfg.backend}, "
                      f"peers {', '.join(p.name for p in cfg.peers)}")
        reporter = asyncio.create_task(_report(node, console))
        try:
            await node.run()
        finally:
            reporter.cancel()
        return node

    try:
        node = asyncio.run(main())
    except LinkError as exc:
        raise UserError(f"link failed: {exc}") from None
    console.print(f"node {cfg.name}: {node.snapshot()}")
    if cfg.out:
        path = write_results(node.result_rows(), {"config": asdict(cfg), "version": code_version(),
                                                  "counters": node.snapshot()}, Path(cfg.out), cfg.name,
                             pairs=node.pair_rows() if node.vcore is not None else None)
        console.print(f"results: {path}")
    return 0


async def _report(node: NodeService, console) -> None:
    while True:
        await asyncio.sleep(2.0)
        c = node.counters
        v = node.verification_summary()
        vtxt = "" if v is None else (f", {v['verified']} verified pairs with {v['partner']} of "
                                     f"{v['headers']} headers, discards {v['discards']}")
        console.print(f"{node.cfg.name}: {c.completed}/{c.requests} requests, {c.heralds} heralds, "
                      f"{sum(c.disagree.values())} PL disagreements{vtxt}, state "
                      f"{node.core.state.value}, link {node.backend.stats.as_dict() if node.backend else {}}")
