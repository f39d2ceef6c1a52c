"""The node service (ESP driver): :class:`NodeService` drives the ESP core (ESP paper §V) with its
workload, peer messages (plain streams, hwctl.transport.peerstream, or ZeroMQ) and timers, and is put together from the parts in
:mod:`hwctl.node.clock`, :mod:`~hwctl.node.physical`, :mod:`~hwctl.node.verify` and
:mod:`~hwctl.node.results`."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import zlib
from collections import deque
from typing import TYPE_CHECKING

import zmq
import zmq.asyncio

from hwctl.errors import UserError
from hwctl.hdrpath import BlockPath, enable_blocks
from hwctl.journal import RequestJournal, resume
from hwctl.node import robust as noderobust
from hwctl.node.clock import DeviceClock, DeviceTime
from hwctl.node.config import NodeConfig
from hwctl.node.devwait import open_device
from hwctl.node.limits import (
    K_ESP,
    K_PL,
    K_VRF,
    MAX_CLOCK_GAP_S,
    MAX_MSG_BYTES,
    MAX_PENDING_RIDS,
    RX_BURST,
    RX_RATE,
)
from hwctl.node.physical import (
    PhysicalLayer,
    PlAbort,
    PlItem,
    PlMsg,
    PlStart,
    _Early,
    _Now,
    early_schedule_on,
    schedule_now_on,
)
from hwctl.node.records import NodeCounters, RequestRecord
from hwctl.node.results import ResultRows
from hwctl.node.verify import VerificationDriver
from hwctl.nodetiming import NodeTiming
from hwctl.physics import fibre
from hwctl.pljoin import JoinPlanner
from hwctl.protocols.base import Completed, ProtocolViolation, Request, Send, StartAttempts
from hwctl.protocols.esp import EspMessage, MsgType
from hwctl.protocols.verification import (
    PairsVerified,
    VerificationCore,
)
from hwctl.recovery import (
    K_HB,
    PEER_DEAD_S,
    DeviceSupervisor,
    PeerLiveness,
    patient,
    peer_failed,
    peer_failed_queued,
)
from hwctl.slots import SlotBook
from hwctl.transport import Backend
from hwctl.transport.peerstream import StreamDealer, StreamListener, peer_transport
from hwctl.transport.zmqrecv import FdReceiver
from hwctl.transport.zmqsend import send_nowait
from hwctl.wire import CLOCK_HZ

if TYPE_CHECKING:
    from hwctl.instruments.bench import Bench

log = logging.getLogger("hwctl.node")


def plain(ctx: zmq.asyncio.Context) -> zmq.Context:
    """Plain (not zmq.asyncio) sockets of ``ctx``'s ZeroMQ context; a stand-in context (the
    replay's, hwctl.record) makes its own."""
    return zmq.Context.shadow(ctx.underlying) if isinstance(ctx, zmq.asyncio.Context) else ctx


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


class NodeService(DeviceTime, PhysicalLayer, VerificationDriver, ResultRows):
    """One node: ESP core (+ verification core) + backend + peers. ``await run()``."""

    def __init__(self, cfg: NodeConfig, *, rid_base: int | None = None,
                 ctx: zmq.asyncio.Context | None = None, incarnation: int | None = None) -> None:
        """``rid_base``: request ids are ``rid_base + 1, + 2, ...`` and must not collide with
        another node's (ESP and the ``pl`` messages name requests by id). Default: derived from
        the node's name (CRC-32 << 24), so separately started ``hwctl node`` processes differ.
        ``incarnation``: robust mode's life number (default: the boot time in ns,
        :func:`hwctl.node.robust.make_core`; a replay gives the recorded one)."""
        self.cfg = cfg
        if rid_base is None:
            rid_base = zlib.crc32(cfg.name.encode()) << 24
        delays = {p.name: fibre.delay(p.length_m) for p in cfg.peers}
        self.core = noderobust.make_core(cfg.name, delays, cfg.robust, incarnation)
        #: latency breakdown (hwctl.nodetiming), diagnostic; on the node's clock (replayable)
        self.timing = NodeTiming(delays, clock=lambda: self.now())
        #: robust mode's actions and hooks (incarnation, HELLO, peer restarts): hwctl.node.robust
        self.robust = noderobust.RobustGlue(self.core, abort=self._pl_abort,
                                            finished=self._request_ended)
        self._pl_cancelled: set[int] = set()  # aborted (robust mode) before their generation
        self._pl_skip: set[tuple[int, float]] = set()  # (rid, t_min) failed before it started
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
        self._out: dict[str, zmq.Socket] = {}  # plain sockets (start())
        self._router: FdReceiver | None = None  # the listener (start())
        #: generations to start, and the remote's early schedules and their drops, in order
        self._pl_queue: asyncio.Queue[PlItem] = asyncio.Queue()
        self._early: _Early | None = None  # the remote's schedule sent at its SYNACK
        self._early_on = early_schedule_on(cfg.early_schedule)  # (hwctl.node.physical)
        self._stale_aborts = 0  # DONE(ABORTED)s of dropped early schedules still to come
        #: the initiator's command at SYNACK (hwctl.node.physical): on, off, None (the link's say)
        self._now_on = schedule_now_on()
        self._pre: _Now | None = None  # that command, until its generation adopts it
        self._events: asyncio.Queue = asyncio.Queue()  # HERALD/DONE/LATE and PlMsg
        self._pl_rid: int | None = None  # request running at the physical layer here
        self._pl_early: dict[int, list[dict]] = {}  # pl messages before our StartAttempts
        self._pl_done: deque[int] = deque(maxlen=1024)  # requests finished here
        #: rid -> t_min of the last generation started here (pl messages carry it as "tm": a
        #: generation ended by a fault and run again never takes the old one's messages)
        self._pl_tm: dict[int, float] = {}
        self._pl_tmin: float | None = None  # t_min of the running generation
        self._pl_peer: str | None = None  # its peer
        self._peer_names = {p.name for p in cfg.peers}
        self._rx_tokens: dict[str, tuple[float, float]] = {}  # per-peer token bucket
        self._last_drop_log = -1e9
        #: "stream" (hwctl.transport.peerstream) or "zmq" (ZeroMQ; always with [security] keys,
        #: and with a stand-in context: the replay's, hwctl.record)
        self.peer_transport = peer_transport(cfg.peer_transport, secured=cfg.key is not None,
                                             stand_in=ctx is not None
                                             and not isinstance(ctx, zmq.Context))
        self._curve = None  # CurveServer of the listener (hwctl.transport.security)
        self._curve_ctx: zmq.asyncio.Context | None = None
        #: crash-safe results (hwctl.results.ResultsWriter), set by ``hwctl node --out``
        self.results = None
        self._row_state: dict[int, list[bool]] = {}  # rid -> [completed, pairs checked]
        self._rows_written: set[int] = set()
        #: pair lists waiting for the other end's: rid -> (t_min of the generation, list)
        self._pairs_mine: dict[int, tuple[float | None, list]] = {}
        self._pairs_peer: dict[int, tuple[float | None, list]] = {}
        self._finished: dict[int, asyncio.Event] = {}  # workload: completion per request
        self._remote_q: dict[str, asyncio.Queue[int]] = {}  # "edge" rule: peer's requests done
        #: set once the session with each peer first came up (its heartbeat acknowledged ours):
        #: the workload's first request on an edge waits for it (see _workload)
        self._peer_up: dict[str, asyncio.Event] = {p.name: asyncio.Event() for p in cfg.peers}
        #: where this end joins each request's attempt grid (margin from its command latency)
        self._join = JoinPlanner(cfg.period_cycles, cfg.lead_s, CLOCK_HZ)
        #: how the device clock was found: "shared" (already on the reference), "time_set", "mapped"
        self.clock_sync = ""
        self.error: BaseException | None = None
        self.bench: Bench | None = None  # open instruments, when cfg.bench
        self.bench_snapshot: dict | None = None  # identity/settings/readings at start, for the run
        # verification
        v = cfg.verification
        self.vcore = VerificationCore(v.core_config()) if v is not None else None
        self.partner = v.partner if v is not None else None
        self._vwake = asyncio.Event()
        self._slots = SlotBook()  # slots allocated by HEADERs and not yet freed; FREE queue
        self._free_wake = asyncio.Event()
        self._free_busy = 0  # slots in the FREE_MASK commands on their way
        #: held by the free loop while it sends, and by a mid-run slot sweep (node/verify.py
        #: _slot_check), so the sweep's count and candidates never miss a FREE on its way
        self._slot_lock = asyncio.Lock()
        #: the one owner of CONTROL.HEADER_EN while the node runs: held by a slot reclaim for as
        #: long as it has HEADER_EN off, and by enable_headers (the demo's go), so neither lands
        #: in the middle of the other (node/verify.py). Its holder awaits device commands only,
        #: each bounded by the link's timeout and ended by the link's close (the recovery closes
        #: a lost link before it reconnects): that is its lease.
        self._ctl_lock = asyncio.Lock()
        #: a reclaim turned HEADER_EN off and its restore has not reached the device (the link
        #: broke mid-sweep): the next reclaim (after the reconnect) turns it on again
        self._headers_owed = False
        #: the go ran (enable_headers): headers are wanted on every device life, so the
        #: recovery's re-sync after a device restart (whose HEADER_EN is at its reset value)
        #: turns HEADER_EN on again (hwctl.recovery ``_resync``, counted ``headers_reenabled``)
        self._headers_wanted = False
        #: (backend, its link's losses) when the legacy pool's slots were last reconciled
        self._loss_seen: tuple[object, int] | None = None
        self._max_ts = 0
        self._pairs: list[PairsVerified] = []
        self.hdrpath: BlockPath | None = None  # block mode (hwctl.hdrpath), set up in start()
        self._block_timer = False  # a batch flush is scheduled
        #: device restart recovery and peer heartbeats (hwctl.recovery, docs/reliability.md)
        self.recovery = DeviceSupervisor(self)
        self.liveness = PeerLiveness(self)
        #: the request journal (hwctl.journal), set by ``hwctl node --out``
        self.journal: RequestJournal | None = None
        if self.robust.enabled:  # one life number for the heartbeats and the robust ESP core
            self.liveness.incarnation = self.robust.incarnation

    async def start(self, backend: Backend | None = None) -> None:
        """Open the bench (apply its settings, snapshot), the backend by URL (or adopt an open
        ``backend``) and the ZeroMQ sockets."""
        if self.cfg.bench is not None and self.bench is None:
            from hwctl.instruments.bench import start_bench

            self.bench, self.bench_snapshot = await asyncio.to_thread(start_bench, self.cfg.bench)
        if backend is None:  # waited for: started before its twin/bridge (hwctl.node.devwait)
            backend = await open_device(self.cfg.backend, name=self.cfg.name,
                                        wait_s=self.cfg.device_wait_s, opener=self._open_backend,
                                        sleep=self._sleep, now=self.now)
        self.backend = backend
        if self.backend.device_kind == "station":
            await self.backend.close()
            raise UserError(f"node {self.cfg.name}: {self.cfg.backend} is a heralding station, "
                            "not a node device")
        self.backend.header_blocks = True  # runs of HEADERs as numpy blocks (see _on_headers)
        async with patient(self.backend):  # not yet supervised: a late answer is load (recovery)
            await self._sync_clock()
            v = self.cfg.verification
            if v is not None and v.header_blocks:
                self.hdrpath = await enable_blocks(self.backend, self.vcore, v.source_hz,
                                                   v.hold_s)
            await self._reclaim_slots()  # legacy pool: slots of HEADERs sent before we listened
            await self._late_join_on()
            await self.recovery.install()
        keys = allow = None
        if self.cfg.key is not None:
            from hwctl.transport.security import CurveServer, load_allowlist, load_keypair

            keys, allow = load_keypair(self.cfg.key), load_allowlist(self.cfg.allow)
            missing = self._peer_names - set(allow.values())
            if missing:
                await self.backend.close()
                raise UserError(f"node {self.cfg.name}: [security] allow has no key for "
                                f"peer(s) {', '.join(sorted(missing))}")
            # the listener's own context: the ZAP handler (allowlist) is per context
            self._curve_ctx = zmq.asyncio.Context()
            self._curve = CurveServer(self._curve_ctx, keys, allow)
            self._router = plain(self._curve_ctx).socket(zmq.ROUTER)
            self._curve.secure(self._router)
        elif self.peer_transport == "stream":  # (hwctl.transport.peerstream)
            self._router = StreamListener()
            self._router.on_drop = self._drop
            # one connection per configured peer; a silent one may be replaced after the time
            # its peer counts as dead (hwctl.transport.peerstream, "One connection per name")
            self._router.names = {n.encode() for n in self._peer_names}
            self._router.name_lease_s = PEER_DEAD_S
        else:
            self._router = plain(self.ctx).socket(zmq.ROUTER)
        if isinstance(self._router, zmq.Socket):  # received through the loop's reader on its FD
            self._router = FdReceiver(self._router)  # (hwctl.transport.zmqrecv)
        self._router.linger = 0
        self._router.setsockopt(zmq.MAXMSGSIZE, MAX_MSG_BYTES)
        self._router.setsockopt(zmq.RCVHWM, 1000)
        try:
            self._router.bind(self.cfg.listen)
        except (zmq.ZMQError, OSError, ValueError) as exc:
            await self.backend.close()
            raise UserError(f"node {self.cfg.name}: cannot listen on {self.cfg.listen}: {exc}") from None
        # the DEALERs only ever send, without waiting: plain sockets of the same context (one
        # I/O thread); zmq.asyncio's Future per send cost 8-20 us more p50 and ~2x at p99 on
        # every ESP message (benchmarks/RESULTS.md, seventh session)
        for p in self.cfg.peers:
            s = StreamDealer() if self.peer_transport == "stream" else plain(self.ctx).socket(zmq.DEALER)
            s.linger = 0
            s.setsockopt(zmq.SNDHWM, 1000)  # bounded per-peer buffer; beyond it: send_dropped
            s.setsockopt(zmq.IDENTITY, self.cfg.name.encode())
            if keys is not None and allow is not None:
                from hwctl.transport.security import secure_client

                secure_client(s, keys, next(k for k, n in allow.items() if n == p.name))
            try:
                s.connect(p.endpoint)
            except (OSError, ValueError) as exc:  # a stream endpoint's name that does not resolve
                await self.close()
                raise UserError(f"node {self.cfg.name}: peer {p.name}: {p.endpoint}: {exc}") from None
            self._out[p.name] = s
        self.liveness.beat()  # before any ESP message (hwctl.recovery.PeerLiveness.beat)

    async def run(self) -> None:
        """Serve until ``stop()`` or ``cfg.duration``; raises the first fatal error."""
        if self.backend is None:
            await self.start()
        self._apply(self.robust.hello(self.now()))  # robust mode: announce this incarnation
        if self.journal is not None:  # after HELLO, so peers have released the earlier life
            resume(self, self.journal)  # an earlier life's open requests (hwctl.journal)
        sup = self.recovery  # the device-facing loops survive a device restart
        coros = [self._rx_loop(), self._timer_loop(), sup.supervise(self._pl_loop),
                 sup.supervise(self._event_pump), sup.supervise(self._free_loop), sup.watchdog(),
                 self.liveness.run()]
        if self.vcore is not None:
            coros.append(self._vrf_timer_loop())
            v = self.cfg.verification
            if self.hdrpath is None and v is not None and v.pool_slots:  # (legacy pool)
                coros.append(sup.supervise(self._slot_watch))
        if self.hdrpath is not None:
            hp = self.hdrpath  # the pin loop talks to the device: it too survives a recovery
            coros.append(sup.supervise(lambda: hp.pin_loop(self.backend, self._sleep)))
            if hp.hold_s:  # the application takes held pairs (without hold_s none are held)
                coros.append(self._app_loop())
        # named NAME/coroutine (hwctl.record keys the node's clock readings by task)
        tasks = [asyncio.create_task(c, name=f"{self.cfg.name}/{c.__name__}.{i}")
                 for i, c in enumerate(coros)]
        if self.cfg.workload:
            tasks += [asyncio.create_task(self._workload(p.name),
                                          name=f"{self.cfg.name}/_workload/{p.name}")
                      for p in self.cfg.peers]
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
        if self.bench is not None:
            self.bench.close()
            self.bench = None
        if self.backend is not None:
            await self.backend.close()
        if self.journal is not None:
            self.journal.close()
        for s in [*self._out.values(), *([self._router] if self._router else [])]:
            s.close(0)
        if self._curve is not None:
            self._curve.stop()
            self._curve = None
        if self._curve_ctx is not None:
            self._curve_ctx.term()
            self._curve_ctx = None

    def submit(self, remote: str, pairs: int, fidelity: float | None = None) -> Request:
        self._rid_next += 1
        req = Request(self._rid_base + self._rid_next, self.cfg.name, remote,
                      self.cfg.fidelity if fidelity is None else fidelity, pairs, self.now())
        self.records[req.rid] = RequestRecord(req.rid, req.initiator, req.remote, req.pairs,
                                              req.fidelity, req.t)
        self.counters.requests += 1
        self._finished[req.rid] = asyncio.Event()
        acts = self.core.submit(req, req.t)
        # the SYN before the journal's record (a write + flush, ~25 us p50 on the loaded 2-core
        # machine, in every `hwctl node --out` request's queue time; benchmarks/RESULTS.md,
        # seventh session): both happen before submit() returns, so a caller that got the
        # request back has it journaled; anything else the core answers goes after the record
        journal_first = self.journal is not None and any(type(a) is not Send for a in acts)
        if journal_first:
            self.journal.submitted(req)
        self._apply(acts)
        if self.journal is not None and not journal_first:
            self.journal.submitted(req)
        return req

    async def _workload(self, peer: str) -> None:
        """ESP §VI-B-style workload on one edge: one request at a time, exponential back-off.
        Rule "node": this node initiates every request (each end of an edge runs one). Rule
        "edge" (the simulator's, hwctl.sim.network): per edge one request at a time with a random
        initiator, back-off from the previous completion; both ends draw the same sequence from
        an RNG seeded by (seed, edge), so they agree without messages."""
        lo, hi = self.cfg.pairs
        # a workload starts on an edge when both ends are up (as the demo's `go`): a request
        # submitted to a peer that has not started yet would wait for its process to start
        # (seconds between separately started `hwctl node`s), not for the network
        await self._peer_up[peer].wait()
        if self.cfg.rule == "edge":
            u, v = sorted((self.cfg.name, peer))
            rng = random.Random(f"{self.cfg.seed}:{u}-{v}")
            while True:
                await self._sleep(rng.expovariate(1.0 / self.cfg.mean_backoff))
                initiator = u if rng.random() < 0.5 else v
                pairs = rng.randint(lo, hi)
                if initiator == self.cfg.name:
                    req = self.submit(peer, pairs)
                    await self._finished[req.rid].wait()
                    del self._finished[req.rid]
                else:  # the peer's request on this edge: wait until it finished here
                    await self._remote_done(peer).get()
        while True:
            await self._sleep(self.rng.expovariate(1.0 / self.cfg.mean_backoff))
            req = self.submit(peer, self.rng.randint(lo, hi))
            await self._finished[req.rid].wait()
            del self._finished[req.rid]

    def _apply(self, actions: list) -> None:
        now = self.now()
        if len(actions) > 1 and type(actions[-1]) is StartAttempts:  # (SYNACK: [ACK, Start])
            self._schedule_now(actions[-1])  # the initiator's command first (its critical path)
        for act in actions:
            if type(act) is Send:
                msg: EspMessage = act.msg
                rec = self.records.get(msg.rid)
                if rec is not None and not msg.wake:
                    if msg.kind is MsgType.SYN:  # the last SYN: the one that got SYNACK
                        rec.t_syn = now
                    elif msg.kind is MsgType.ACK:
                        rec.t_ack = now
                if self._early is not None and self._early_hold(msg.dst, msg):
                    continue
                self._send(msg.dst, K_ESP, msg.to_bytes())
                if msg.kind is MsgType.SYNACK:
                    self._early_lock(msg)
            elif type(act) is StartAttempts:
                self.timing.mark(act.request.rid, "start")
                self._pl_queue.put_nowait(PlStart(act.request, act.peer, act.t_min))  # both ends
            elif type(act) is Completed:
                rec = self.records[act.request.rid]
                rec.t_finish = act.t_finish
                self.counters.completed += 1
                if self.journal is not None:
                    self.journal.completed(rec.rid, act.t_finish)
                self._row_ready(rec.rid, completed=True)
                self._request_ended(rec.rid)
            else:  # robust mode: Expired, AbortAttempts; RemoteError in either mode
                self.robust.handle(act)
        if self._early is not None:
            lock = getattr(self.core, "lock", None)
            self._early_check(None if lock is None else lock.request.rid)
        self._timer_wake.set()

    def _request_ended(self, rid: int) -> None:
        """A request of ours completed or expired: the workload may go on."""
        ev = self._finished.get(rid)
        if ev is not None:
            ev.set()

    def _pl_abort(self, rid: int, reason: str) -> None:
        """Robust mode: the core released the Lock of ``rid`` (lease, peer restarted): stop its
        generation (or skip it when it has not started)."""
        if self._pl_rid == rid:
            self._events.put_nowait(PlAbort(rid, reason, self.recovery.gens_ended))
            self.recovery.release(f"robust: {reason}", tell_peer=True)
        else:
            self._pl_cancelled.add(rid)

    def _send(self, peer: str, kind: bytes, payload: bytes) -> None:
        sock = self._out.get(peer)
        if sock is None:
            raise UserError(f"node {self.cfg.name}: no peer {peer!r} configured")
        if kind == K_ESP and not self.liveness.send_ok[peer]:  # no session (hwctl.recovery)
            if not self.liveness.hold(peer, payload):
                self.counters.send_dropped[peer] = self.counters.send_dropped.get(peer, 0) + 1
            return
        # peer down and its queue full: counted, never silent (zmq.asyncio reports it in a
        # returned Future, not by raising: hwctl.transport.zmqsend)
        ok = send_nowait(sock, [kind, payload], lambda ok: self._sent(peer, ok))
        if ok is not None:
            self._sent(peer, ok)

    def _sent(self, peer: str, ok: bool) -> None:
        if ok:
            self.counters.msgs_out += 1
        else:
            self.counters.send_dropped[peer] = self.counters.send_dropped.get(peer, 0) + 1

    def _send_pl(self, peer: str, **d: object) -> None:
        if d.get("rid") == self._pl_rid and self._pl_tmin is not None:
            d["tm"] = self._pl_tmin  # names the generation (see _pl_tm)
        self._send(peer, K_PL, json.dumps(d).encode())

    async def _rx_loop(self) -> None:
        """Every received message is checked and handled on its own: a bad, forged, unexpected
        or excess message is counted by cause (``counters.dropped``) and dropped; no input from
        the network ends the service (docs/reliability.md)."""
        r = self._router
        assert r is not None
        if type(r) in (FdReceiver, StreamListener):  # (not tapped: hwctl.record) in the reader callback,
            await r.serve(self._rx_msg)  # one loop iteration less per message (RESULTS.md)
        while True:
            if not self._rx_msg(await r.recv_multipart(copy=False)):
                await asyncio.sleep(0)

    def _rx_msg(self, frames: list) -> bool:
        """One received message (:meth:`_rx_loop`); False when a generation is to start: its
        SCHEDULE_PAIRS goes out before the messages queued behind this one (hwctl.nodetiming)."""
        self.counters.msgs_in += 1
        try:
            cause = self._rx_one(frames)
        except Exception as exc:  # the last line of defence: a bug must not end the node
            cause = f"error_{type(exc).__name__}"
            if self._drop_log_ok():
                log.warning("%s: message dropped (%s: %s)", self.cfg.name,
                            type(exc).__name__, exc)
        if cause:
            self._drop(cause)
        return self._pl_queue.empty()

    def _drop(self, cause: str) -> None:
        d = self.counters.dropped
        d[cause] = d.get(cause, 0) + 1
        self.counters.bad_msgs += 1
        if cause == "peer_bad_hello" and d[cause] == 1:  # said once: the likely cause and fix
            log.warning("%s: a connection to our listener %s did not open with hwctl's stream "
                        "hello (peer_bad_hello): a peer with [security] keys or peer_transport "
                        "= \"zmq\" speaks ZeroMQ; every node of a network needs the same "
                        "peer_transport and [security] (docs/node.md, \"Peer link\")",
                        self.cfg.name, self.cfg.listen)

    def _drop_log_ok(self) -> bool:
        now = self.now()
        if now - self._last_drop_log >= 1.0:  # counted always, logged at most once a second
            self._last_drop_log = now
            return True
        return False

    def _rx_one(self, frames: list) -> str | None:
        """Check and handle one message; returns the cause when it is dropped."""
        if len(frames) != 3:
            return "bad_parts"
        src = self._sender(frames)
        if src is None:
            return "unknown_peer"
        if not self._rate_ok(src):
            return "rate_limited"
        self.liveness.heard(src)
        kind, payload = frames[1].bytes, frames[2].bytes
        if kind == K_HB:
            cause = self.liveness.heartbeat(src, payload)
            if self.liveness.send_ok[src]:
                self._peer_up[src].set()
            return cause
        if kind == K_ESP:
            try:
                msg = EspMessage.from_bytes(payload)
            except ValueError:  # bad layout, or a request the core's types refuse
                return "esp_malformed"
            if msg.src != src:
                return "esp_forged_src"  # a peer speaking for another node
            if msg.dst != self.cfg.name:
                return "esp_wrong_dst"
            if msg.kind is MsgType.ACK and (not math.isfinite(msg.t_min)
                                            or abs(msg.t_min - self.now()) > MAX_CLOCK_GAP_S):
                return "esp_bad_time"  # only ACK carries t_min (others send 0.0)
            r = msg.request
            if r is not None and not (1 <= r.pairs <= 1000 and 0.0 <= r.fidelity < 1.0
                                      and {r.initiator, r.remote} == {src, self.cfg.name}):
                return "esp_bad_request"
            if self.robust.mode_mismatch(msg):
                return "esp_mode_mismatch"  # a peer with the other [robust] setting
            if not self.liveness.acked[src]:
                return "esp_no_session"  # for an earlier life of ours, or before the handshake
            rec = self.records.get(msg.rid)
            self.timing.esp_in(msg, None if rec is None or msg.wake else rec.t_syn)
            try:
                acts = self.core.receive(msg, self.now())
            except ProtocolViolation:  # out of turn for the core's state: refused by the core
                return "esp_protocol_violation"
            self._apply(acts)
            self.robust.after_receive()
        elif kind == K_PL:
            try:
                d = json.loads(payload)
            except ValueError:
                return "pl_not_json"
            cause = self._check_pl(d)
            if cause:
                return cause
            rid, tm = d["rid"], d.get("tm")
            last = self._pl_tm.get(rid)
            if "pairs" in d:
                if rid not in self._pairs_mine and len(self._pairs_peer) >= MAX_PENDING_RIDS:
                    return "pl_pairs_table_full"
                if d.get("need") is not None:
                    self._note_need(rid, float(d["need"]))
                self._check_pairs(rid, theirs=d["pairs"], tm=tm)
                if rid == self._pl_rid and tm == self._pl_tmin and src == self._pl_peer:
                    self.recovery.peer_finished()  # while ours runs (hwctl.recovery)
            elif rid == self._pl_rid and (tm is None or tm == last):
                if "failed" in d and src == self._pl_peer:
                    peer_failed(self, rid, tm, str(d["failed"]))  # now: a new SYN for rid may follow
                self._events.put_nowait(PlMsg(src, d))  # the generation sorts it out
            elif last is not None and (tm is None or tm <= last):
                self.counters.stale_msgs += 1  # a generation that ended here
            elif "failed" in d and peer_failed_queued(self, src, rid, tm):
                pass  # its generation was queued here: Lock released, queued start skipped
            else:  # before our StartAttempts for it
                early = self._pl_early.get(rid)
                if early is None and len(self._pl_early) >= MAX_PENDING_RIDS:
                    return "pl_early_table_full"
                if early is not None and len(early) >= 8:
                    return "pl_early_full"
                self._pl_early.setdefault(rid, []).append({**d, "_src": src})
        elif kind == K_VRF and self.vcore is not None and src == self.partner:
            self.vcore.handle_message(payload, self.device_now())
            self._vrf_apply()
        else:
            return "unexpected_kind"
        return None

    def _sender(self, frames: list) -> str | None:
        """The peer a message is from: the name the allowlist gives its CurveZMQ key when the
        listener runs CURVE (identity = key), else the routing id it chose; None when that is not
        a configured peer."""
        if self._curve is not None:
            from hwctl.transport.security import user_id

            name = self._curve.peer_name(user_id(frames[-1]))
        else:
            name = frames[0].bytes.decode(errors="replace")
        return name if name in self._peer_names else None

    def _rate_ok(self, src: str) -> bool:
        """Token bucket per peer: RX_RATE messages/s sustained, RX_BURST at once."""
        now = self.now()
        tokens, last = self._rx_tokens.get(src, (RX_BURST, now))
        tokens = min(RX_BURST, tokens + (now - last) * RX_RATE)
        if tokens < 1.0:
            self._rx_tokens[src] = (tokens, now)
            return False
        self._rx_tokens[src] = (tokens - 1.0, now)
        return True

    def _check_pl(self, d: object) -> str | None:
        """Shape and ranges of a ``pl`` message (see :meth:`_generate`)."""
        if not isinstance(d, dict):
            return "pl_not_object"
        rid = d.get("rid")
        if type(rid) is not int or not 0 <= rid < 2**63:
            return "pl_bad_rid"
        tm = d.get("tm", 0.0)
        if "tm" in d and (type(tm) not in (int, float) or not math.isfinite(tm)
                          or abs(tm - self.now()) > MAX_CLOCK_GAP_S):
            return "pl_bad_tm"
        keys = set(d) - {"rid", "tm"}
        if keys in ({"pairs"}, {"pairs", "need"}):
            need = d.get("need")
            if need is not None and (type(need) not in (int, float) or not 0 <= need <= 3600):
                return "pl_bad_need"  # (NaN and inf fail the range test)
            p = d["pairs"]
            if not isinstance(p, list) or len(p) > 1000 or not all(
                    isinstance(x, list) and len(x) == 3
                    and all(type(v) is int and 0 <= v < 2**64 for v in x) for x in p):
                return "pl_bad_pairs"
        elif keys == {"failed"}:  # the sender's end of the generation failed (hwctl.recovery)
            if not isinstance(d["failed"], str) or len(d["failed"]) > 200:
                return "pl_bad_failed"
        elif keys == {"late"}:
            if type(d["late"]) is not int or not 0 <= d["late"] <= 10**6:
                return "pl_bad_round"
        elif keys == {"restart", "start"}:
            if type(d["restart"]) is not int or not 0 <= d["restart"] <= 10**6:
                return "pl_bad_round"
            t = d["start"]
            if type(t) not in (int, float) or not math.isfinite(t) \
                    or abs(t - self.now()) > MAX_CLOCK_GAP_S:
                return "pl_bad_start"
        else:
            return "pl_bad_shape"
        return None

    async def _timer_loop(self) -> None:
        while True:
            t = self.core.get_timer()
            self._timer_wake.clear()
            if t is None:
                await self._timer_wake.wait()
                continue
            delay = t - self.now()
            if delay > 0:
                await self._wait(self._timer_wake, delay)
                continue
            self._apply(self.core.handle_timer(self.now()))

