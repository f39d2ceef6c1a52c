"""Node service: the ESP core (ESP paper §V) driving a device by URL, peers over ZeroMQ.

``hwctl node --config node.toml`` runs one node. The service is an asyncio driver around the
sans-IO :class:`hwctl.protocols.esp.EspNode`: it feeds the core requests (its own workload),
control messages from peers and timer expiries, and carries out the core's actions:

- ``Send``           -> ZeroMQ to the peer (one DEALER per neighbour, our ROUTER for incoming)
- ``StartAttempts``  -> attempt schedules on the device (initiator side, see below)
- ``Completed``      -> a result record (latency L = NL_finish - NL_start, ESP paper eq. (3))

Physical layer. The heralding station's verdict is one event seen by both ends of a link. In this
service the *initiator* of a request drives the link: it converts ``t_min`` (seconds, node clock)
to a device cycle, queues SCHEDULE(t_start, count, period, window) with one attempt per
``period_cycles`` (500 ns by default, ESP Table IV), and relays every HERALD to the remote node
(``pl`` messages) until the request has its pairs; then both cores get ``attempts_finished``.
LATE schedules are retried with twice the margin and counted; DONE(EXHAUSTED) re-arms.

Config (TOML)::

    name = "A"
    listen = "tcp://127.0.0.1:6001"
    backend = "serial:///tmp/twinA"          # or twin://..., zmq+tcp://...
    duration = 30.0                          # seconds (omit: run until Ctrl-C)
    out = "results/A"                        # optional: write requests.parquet + meta.json
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
    margin_s = 0.002                         # scheduling slack added to t_min
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import zmq
import zmq.asyncio

from hwctl.errors import DeviceError, LinkError, UserError
from hwctl.physics import fibre
from hwctl.protocols.base import Completed, Request, Send, StartAttempts
from hwctl.protocols.esp import EspMessage, EspNode, MsgType
from hwctl.transport import Backend, open_backend
from hwctl.wire import Done, Error, Header, Herald, Late

log = logging.getLogger(__name__)

#: ZeroMQ message kinds between node services (first frame)
K_ESP = b"esp"  # an EspMessage
K_PL = b"pl"  # physical-layer relay from initiator to remote: JSON {rid, pairs, attempt, done}


@dataclass
class PeerConfig:
    name: str
    endpoint: str
    length_m: float = 2000.0


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
    margin_s: float = 0.002

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> NodeConfig:
        try:
            wl = d.get("workload", {})
            ph = d.get("physical", {})
            peers = [PeerConfig(n, p["endpoint"], float(p.get("length_m", 2000.0)))
                     for n, p in d.get("peers", {}).items()]
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
                margin_s=float(ph.get("margin_s", 0.002)),
            )
        except KeyError as exc:
            raise UserError(f"{source}: missing key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise UserError(f"{source}: {exc}") from None
        if not cfg.peers:
            raise UserError(f"{source}: node {cfg.name!r} has no [peers]")
        if len(cfg.pairs) != 2 or not 1 <= cfg.pairs[0] <= cfg.pairs[1]:
            raise UserError(f"{source}: workload.pairs must be [min, max] with 1 <= min <= max")
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
    herald_ts: list[int] = field(default_factory=list)

    @property
    def latency(self) -> float | None:
        return None if self.t_finish is None else self.t_finish - self.t_submit


@dataclass
class NodeCounters:
    requests: int = 0
    completed: int = 0
    heralds: int = 0
    attempts: int = 0
    late: int = 0
    device_errors: int = 0
    headers: int = 0
    msgs_in: int = 0
    msgs_out: int = 0
    bad_msgs: int = 0


class NodeService:
    """One node: ESP core + backend + ZeroMQ peers. ``await run()``; ``stop()`` ends it."""

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
        self._rid_base = rid_base
        self._rid_next = 0
        self._stop = asyncio.Event()
        self._timer_wake = asyncio.Event()
        self._out: dict[str, zmq.asyncio.Socket] = {}
        self._router: zmq.asyncio.Socket | None = None
        self._pl_queue: asyncio.Queue[tuple[Request, str, float]] = asyncio.Queue()
        self._events: asyncio.Queue = asyncio.Queue()
        self._dev0: tuple[int, float] = (0, 0.0)
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ time
    def now(self) -> float:
        return time.monotonic() - self.epoch

    def device_cycle_at(self, t: float) -> int:
        """Device cycle at node time ``t`` (linear map fixed at start from one TIME read)."""
        c0, t0 = self._dev0
        return c0 + round((t - t0) * (self.backend.clock_hz if self.backend else 1e8))

    # ------------------------------------------------------------------ lifecycle
    async def start(self, backend: Backend | None = None) -> None:
        """Open the backend by URL (or adopt an open ``backend``) and the ZeroMQ sockets."""
        self.backend = backend if backend is not None else await open_backend(self.cfg.backend)
        t_before = self.now()
        c = await self.backend.time()
        self._dev0 = (c, (t_before + self.now()) / 2)
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
        tasks = [asyncio.create_task(c) for c in
                 (self._rx_loop(), self._timer_loop(), self._pl_loop(), self._event_pump())]
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
            for t in [*tasks, stopper]:
                t.cancel()
            for t in [*tasks, stopper]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
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
                if act.request.initiator == self.cfg.name:
                    self._pl_queue.put_nowait((act.request, act.peer, act.t_min))
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

    async def _rx_loop(self) -> None:
        assert self._router is not None
        while True:
            ident, *parts = await self._router.recv_multipart()
            self.counters.msgs_in += 1
            if len(parts) != 2:
                self.counters.bad_msgs += 1
                continue
            kind, payload = parts
            try:
                if kind == K_ESP:
                    msg = EspMessage.from_bytes(payload)
                    self._apply(self.core.receive(msg, self.now()))
                elif kind == K_PL:
                    d = json.loads(payload)
                    if d.get("done"):
                        self._apply(self.core.attempts_finished(int(d["rid"]), self.now()))
                else:
                    self.counters.bad_msgs += 1
            except (ValueError, KeyError) as exc:
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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._timer_wake.wait(), delay)
                continue
            self._apply(self.core.handle_timer(self.now()))

    # ------------------------------------------------------------------ physical layer
    async def _event_pump(self) -> None:
        """Device events go to the running generation; stray errors are counted, never dropped."""
        assert self.backend is not None
        while True:
            ev = await self.backend.next_event()
            if isinstance(ev, Error):
                self.counters.device_errors += 1
                log.warning("%s: device error %s", self.cfg.name, ev)
                continue
            if isinstance(ev, Header):
                # midpoint headers belong to the verification core (not run here): count them
                # and hand the memory slot back so the decoder never runs out
                self.counters.headers += 1
                await self.backend.free(ev.slot)
                continue
            self._events.put_nowait(ev)

    async def _pl_loop(self) -> None:
        while True:
            req, peer, t_min = await self._pl_queue.get()
            await self._generate(req, peer, t_min)

    async def _generate(self, req: Request, peer: str, t_min: float) -> None:
        """Run attempts until ``req.pairs`` heralds, then release both ends."""
        b = self.backend
        assert b is not None
        rec = self.records[req.rid]
        cfg = self.cfg
        margin = cfg.margin_s
        pairs = 0
        while pairs < req.pairs:
            t0 = max(t_min, self.now() + margin)
            t_start = self.device_cycle_at(t0)
            try:
                await b.schedule(t_start, 0xFFFF_FFFF, cfg.period_cycles, cfg.window_cycles)
            except DeviceError as exc:
                self.counters.device_errors += 1
                log.warning("%s: %s", cfg.name, exc)
                await asyncio.sleep(margin)
                continue
            if rec.t_pl_start is None:
                rec.t_pl_start = t0
                rec.t_min = t_min
            ev = await self._events.get()
            if isinstance(ev, Late):
                rec.late += 1
                self.counters.late += 1
                margin *= 2
                continue
            if isinstance(ev, Herald):
                pairs += 1
                rec.attempts += ev.attempt + 1
                rec.herald_ts.append(ev.ts)
                self.counters.heralds += 1
                self.counters.attempts += ev.attempt + 1
                t_min = self.now()
                self._send(peer, K_PL, json.dumps({"rid": req.rid, "pairs": pairs, "attempt": ev.attempt}).encode())
            elif isinstance(ev, Done):
                rec.attempts += ev.attempts
                self.counters.attempts += ev.attempts
        self._send(peer, K_PL, json.dumps({"rid": req.rid, "done": True}).encode())
        self._apply(self.core.attempts_finished(req.rid, self.now()))

    # ------------------------------------------------------------------ results
    def snapshot(self) -> dict:
        d = asdict(self.counters)
        d["state"] = self.core.state.value
        if self.backend is not None:
            d["link"] = self.backend.health()
        return d

    def result_rows(self) -> list[dict]:
        rows = []
        for r in self.records.values():
            d = asdict(r)
            d["latency"] = r.latency
            d["herald_ts"] = list(r.herald_ts)
            rows.append(d)
        return rows


def write_results(rows: list[dict], meta: dict, out: Path, name: str = "requests") -> Path:
    """Requests as Parquet (integer cycle timestamps kept as int64 lists) + meta JSON beside it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.parquet"
    cols = ["rid", "initiator", "remote", "pairs", "fidelity", "t_submit", "t_syn", "t_ack",
            "t_min", "t_pl_start", "t_finish", "latency", "attempts", "late", "herald_ts"]
    table = pa.table({c: [r.get(c) for r in rows] for c in cols[:-1]} |
                     {"herald_ts": pa.array([r.get("herald_ts", []) for r in rows], pa.list_(pa.uint64()))})
    pq.write_table(table, path)
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
                                                  "counters": node.snapshot()}, Path(cfg.out), cfg.name)
        console.print(f"results: {path}")
    return 0


async def _report(node: NodeService, console) -> None:
    while True:
        await asyncio.sleep(2.0)
        c = node.counters
        console.print(f"{node.cfg.name}: {c.completed}/{c.requests} requests, {c.heralds} heralds, "
                      f"state {node.core.state.value}, link {node.backend.stats.as_dict() if node.backend else {}}")
