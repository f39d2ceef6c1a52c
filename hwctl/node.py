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

Time. Every node and device of a network counts one timebase (docs/physical-layer.md section 1):
node seconds are seconds since the shared epoch (:mod:`hwctl.timebase`, the system clock, so
separately started processes agree; across hosts the clocks must be disciplined: PTP, White
Rabbit), and the device counts cycles of the same reference. At start the service reads TIME: a
device already on the reference (the lab twin, a White Rabbit node) is used as it is; otherwise it
is set with TIME_SET; a device without TIME_SET (v2 RTL) gets a linear map from that TIME read
(:class:`DeviceClock`). ESP's ``t_min`` travels between nodes in shared seconds.

Physical layer, per request (docs/physical-layer.md section 5). On ``StartAttempts`` each end
sends one SCHEDULE_PAIRS(t_join, 2^32-1, period, pairs, port) to its device, ``t_join`` the first
point of the request's attempt grid (origin: t_min, sent by the initiator) that its command can
reach in time (:mod:`hwctl.pljoin`); the heralding station of the link (its own device) heralds
only attempts both ends fired and sends each herald to both ends, whose devices record the pairs
(PAIR events) until DONE(COMPLETE). Then the service tells ESP ``attempts_finished``. A LATE is
repaired by that end alone (it joins a later grid point). The two ends exchange
their pair lists once per request and count any mismatch in ``NodeCounters.disagree`` (must stay 0).

Config (TOML)::

    name = "A"
    listen = "tcp://127.0.0.1:6001"
    backend = "serial:///tmp/twinA"          # or twin://..., zmq+tcp://...
    duration = 30.0                          # seconds (omit: run until Ctrl-C)
    out = "results/A"                        # optional: write results/A/A.parquet (+ A.pairs.parquet)
    [peers.B]
    endpoint = "tcp://127.0.0.1:6002"
    length_m = 2000                          # fibre length of the link (control delay)
    port = 0                                 # herald port of this link on our device
                                             # (default: index of the peer in sorted names)
    [workload]                               # requests this node initiates (ESP §VI-B workload)
    fidelity = 0.75
    pairs = [1, 6]
    mean_backoff = 0.1                       # s, exponential between a completion and the next
    seed = 1
    rule = "node"                            # "node": this node initiates on each edge, one
                                             # request at a time; "edge": per edge one request at
                                             # a time, random initiator (the simulator's rule;
                                             # both ends need the same seed)
    [physical]
    period_cycles = 50                       # attempt period (500 ns, ESP Table IV)
    lead_s = 0.0005                          # least margin between now and the grid point an
                                             # end joins (the margin follows measured command
                                             # round trips above it, hwctl.pljoin)
    [verification]                           # optional: pair verification with one partner
    partner = "B"                            # one of [peers]; its device sees the same source
    memory = "nv"                            # Table I memory (short or full name)
    f_th = 0.81                              # fidelity threshold -> timeout (paper Eq. 1)
    skew_s = 0.0                             # partner's store time minus ours (s)
    report_interval_s = 0.001                # batching of ID reports
    [bench]                                  # optional: the node's instruments by VISA resource
    visa_library = "@sim"                    # (docs/instruments.md); or bench = "bench.toml";
    [bench.voa]                              # opened, set and snapshotted at start, snapshot in
    driver = "keysight-n7764a"               # the run's metadata ("instruments")
    resource = "TCPIP0::n7764a-0.bench::inst0::INSTR"
    attenuation_db = 3.0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import random
import signal
import tomllib
import zlib
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zmq
import zmq.asyncio

from hwctl import argtypes, noderobust, timebase
from hwctl.errors import DeviceError, LinkError, UserError
from hwctl.hdrpath import BATCH_BLOCKS, BATCH_WAIT_S, BlockPath, enable_blocks
from hwctl.journal import RequestJournal, resume
from hwctl.live import web_addr
from hwctl.nodetiming import NodeTiming, join_cycle
from hwctl.physics import fibre
from hwctl.physics import memory as _memory
from hwctl.pljoin import JoinPlanner
from hwctl.protocols.base import Completed, ProtocolViolation, Request, Send, StartAttempts
from hwctl.protocols.esp import EspMessage, MsgType
from hwctl.protocols.reliable import RobustConfig
from hwctl.protocols.verification import (
    FreeSlots,
    HeaderRejected,
    PairsDiscarded,
    PairsRevoked,
    PairsVerified,
    SendToPartner,
    VerificationConfig,
    VerificationCore,
)
from hwctl.recovery import K_HB, DeviceSupervisor, GenerationFailed, PeerLiveness, peer_failed
from hwctl.slots import SlotBook
from hwctl.transport import Backend, open_backend
from hwctl.transport.backend import OrderedResponse
from hwctl.transport.zmqsend import send_nowait
from hwctl.wire import (
    CLOCK_HZ,
    ControlBit,
    Done,
    DoneReason,
    Error,
    ErrorCode,
    HdrBlock,
    Header,
    Late,
    Pair,
    Reg,
    free_masks,
)
from hwctl.wire.bulk import HeaderBlock

if TYPE_CHECKING:
    from hwctl.instruments.bench import Bench, BenchConfig

log = logging.getLogger(__name__)

#: ZeroMQ message kinds between node services (first frame)
K_ESP = b"esp"  # an EspMessage
K_PL = b"pl"  # physical-layer coordination, JSON (see NodeService._generate)
K_VRF = b"vrf"  # a verification-core partner message (bitmap records)
#: received-message limits per peer: sustained rate (messages/s) and burst
RX_RATE = 5000.0
RX_BURST = 10000.0
#: largest message a peer may send (bytes; ZeroMQ disconnects a peer sending more)
MAX_MSG_BYTES = 1 << 18
#: requests a peer may keep buffered here before we know them (early pl messages, pair lists)
MAX_PENDING_RIDS = 256
#: a time in a peer message further than this from our clock is refused (s)
MAX_CLOCK_GAP_S = 3600.0

U32 = 0xFFFF_FFFF
#: the HEADER frame is ~19 bytes on the wire: a 3 Mbaud UART carries at most ~16k HEADERs/s
UART_HEADER_LIMIT_HZ = 3_000_000 / 10 / 19
#: a device whose TIME is further than this from the shared reference is set with TIME_SET (s)
CLOCK_TOLERANCE_S = 1e-3


@dataclass
class PeerConfig:
    name: str
    endpoint: str
    length_m: float = 2000.0
    port: int | None = None  # herald port on our device (None: index in sorted peer names)


@dataclass
class VerifyConfig:
    """``[verification]``: the partner node, the memory (paper Table I) and the threshold F_th."""

    partner: str
    memory: str = "nv"
    f_th: float = _memory.F_QKD
    skew_s: float = 0.0
    report_interval_s: float = 1e-3
    window_bits: int = 20
    #: block mode (wire v4, docs/header-path.md): HDR_BLOCK events, slot ring (hwctl.hdrpath)
    header_blocks: bool = False
    #: block mode: the application holds verified pairs this long (pinned), 0 = consumed at once
    hold_s: float = 0.0
    #: block mode: the source's pulse rate (first estimate of its period; refined from blocks)
    source_hz: float = 1.3e6

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
            window_bits=self.window_bits, consume_on_verify=self.hold_s == 0)


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
    rule: str = "node"
    period_cycles: int = 50
    lead_s: float = 0.0005
    verification: VerifyConfig | None = None
    #: ``[security]``: our ``.key_secret`` and the peers' public keys (name -> key or key file,
    #: or a directory of NAME.key): CurveZMQ on the listener and to every peer
    key: str | None = None
    allow: dict[str, str] | str | None = None
    bench: BenchConfig | None = None  # [bench] / bench = "file": instruments (docs/instruments.md)
    robust: RobustConfig | None = None  # [robust]: ESP robust mode (hwctl.noderobust), off by default

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> NodeConfig:
        from hwctl.nodeconfig import check_node_dict

        check_node_dict(d, source)  # every key known, every value typed and in range
        try:
            wl = d.get("workload", {})
            ph = d.get("physical", {})
            vf = d.get("verification")
            peers = [PeerConfig(n, p["endpoint"], float(p.get("length_m", 2000.0)),
                                None if p.get("port") is None else int(p["port"]))
                     for n, p in d.get("peers", {}).items()]
            vcfg = None
            if vf is not None:
                vcfg = VerifyConfig(
                    partner=str(vf["partner"]), memory=str(vf.get("memory", "nv")),
                    f_th=float(vf.get("f_th", _memory.F_QKD)), skew_s=float(vf.get("skew_s", 0.0)),
                    report_interval_s=float(vf.get("report_interval_s", 1e-3)),
                    window_bits=int(vf.get("window_bits", 20)),
                    header_blocks=bool(vf.get("header_blocks", False)),
                    hold_s=float(vf.get("hold_s", 0.0)),
                    source_hz=float(vf.get("source_hz", 1.3e6)))
                if vcfg.hold_s and not vcfg.header_blocks:
                    raise ValueError("[verification] hold_s needs header_blocks = true")
            cfg = cls(
                name=str(d["name"]), listen=str(d["listen"]), backend=str(d["backend"]), peers=peers,
                duration=None if d.get("duration") is None else float(d["duration"]),
                out=d.get("out"),
                fidelity=float(wl.get("fidelity", 0.75)),
                pairs=tuple(int(x) for x in wl.get("pairs", (1, 6))),  # type: ignore[arg-type]
                mean_backoff=float(wl.get("mean_backoff", 0.1)), seed=int(wl.get("seed", 0)),
                workload=bool(wl.get("enabled", True)), rule=str(wl.get("rule", "node")),
                period_cycles=int(ph.get("period_cycles", 50)),
                lead_s=float(ph.get("lead_s", 0.0005)),
                verification=vcfg,
                key=d.get("security", {}).get("key"),
                allow=d.get("security", {}).get("allow"),
                robust=noderobust.from_table(d.get("robust")),
            )
        except KeyError as exc:
            raise UserError(f"{source}: missing key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise UserError(f"{source}: {exc}") from None
        if not cfg.peers:
            raise UserError(f"{source}: node {cfg.name!r} has no [peers]")
        if cfg.rule not in ("node", "edge"):
            raise UserError(f"{source}: workload.rule must be \"node\" or \"edge\"")
        if len(cfg.pairs) != 2 or not 1 <= cfg.pairs[0] <= cfg.pairs[1]:
            raise UserError(f"{source}: workload.pairs must be [min, max] with 1 <= min <= max")
        if not 2 <= cfg.period_cycles <= U32 or not 0 < cfg.lead_s <= 10:
            raise UserError(f"{source}: physical: need period_cycles in 2..2^32-1 and lead_s in (0, 10]")
        gone = sorted({"window_cycles", "margin_s"} & set(ph))
        if gone:
            raise UserError(f"{source}: physical: {', '.join(gone)} no longer exist (the window is "
                            "the station's; lead_s replaces the per-round margin)")
        if (cfg.key is None) != (cfg.allow is None):
            raise UserError(f"{source}: [security] needs both key and allow (or neither)")
        from hwctl.transport.security import (
            load_allowlist,
            load_keypair,
            require_curve_off_loopback,
        )

        if cfg.key is None:
            require_curve_off_loopback(cfg.listen, False, f"{source}: listen")
        else:  # read now: a missing or wrong key file is found before anything opens
            load_keypair(cfg.key)
            names = set(load_allowlist(cfg.allow).values())
            missing = sorted({p.name for p in cfg.peers} - names)
            if missing:
                raise UserError(f"{source}: [security] allow has no key for peer(s) "
                                f"{', '.join(missing)}")
        if any(p.port is not None and not 0 <= p.port <= 255 for p in cfg.peers):
            raise UserError(f"{source}: peers: port must be in 0..255")
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
        if "bench" in d:  # bench_index fills {n} in a template bench's resource strings
            from hwctl.instruments.bench import BenchConfig

            idx = d.get("bench_index")
            if idx is not None and (isinstance(idx, bool) or not isinstance(idx, int) or idx < 0):
                raise UserError(f"{source}: bench_index must be an integer >= 0")
            cfg.bench = BenchConfig.from_node_config(source, d, index=idx)
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
    t_pl_start: float | None = None  # the later of the two ends' first join of the grid
    t_finish: float | None = None
    attempts: int = 0
    late: int = 0
    restarts: int = 0  # rounds restarted at both ends (a LATE at either end)
    disagree: int = 0  # pairs not held at both ends (checked once per request; must be 0)
    herald_ts: list[int] = field(default_factory=list)  # attempt cycle of each pair

    @property
    def latency(self) -> float | None:
        return None if self.t_finish is None else self.t_finish - self.t_submit


@dataclass
class NodeCounters:
    requests: int = 0
    completed: int = 0
    heralds: int = 0  # pairs recorded by this node's device (PAIR events, both roles)
    attempts: int = 0  # attempts fired by this node's device (both roles)
    schedules: int = 0  # SCHEDULE_PAIRS commands accepted by this node's device
    generations: int = 0  # requests this node took part in at the physical layer (both roles)
    late: int = 0
    late_after_first: int = 0  # LATEs after this node's first generation (goal: 0)
    exhausted: int = 0  # schedules that ran out of attempts (re-joined)
    late_heralds: int = 0  # BAD_HERALD: heralds still in flight when a schedule ended (refused)
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
    #: messages dropped, by cause (docs/reliability.md): never handled, never fatal
    dropped: dict[str, int] = field(default_factory=dict)
    #: messages not sent per peer: the peer is down and its send queue (1000) is full
    send_dropped: dict[str, int] = field(default_factory=dict)
    stale_msgs: int = 0  # pl messages / events for a request or round no longer running here
    pair_checks: int = 0  # requests whose pair lists were compared with the other end
    disagree: int = 0  # pairs held at one end only (must stay 0)


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
class PlAbort:
    """Robust mode: stop the generation of ``rid`` (its Lock's lease ended, or the peer restarted)."""

    rid: int
    reason: str


@dataclass(frozen=True, slots=True)
class PlMsg:
    """A ``pl`` message from a peer, queued with the device events of the running generation."""

    src: str
    d: dict


class NodeService:
    """One node: ESP core (+ verification core) + backend + ZeroMQ peers. ``await run()``."""

    def __init__(self, cfg: NodeConfig, *, rid_base: int | None = None,
                 ctx: zmq.asyncio.Context | None = None) -> None:
        """``rid_base``: request ids are ``rid_base + 1, + 2, ...`` and must not collide with
        another node's (ESP and the ``pl`` messages name requests by id). Default: derived from
        the node's name (CRC-32 << 24), so separately started ``hwctl node`` processes differ."""
        self.cfg = cfg
        if rid_base is None:
            rid_base = zlib.crc32(cfg.name.encode()) << 24
        delays = {p.name: fibre.delay(p.length_m) for p in cfg.peers}
        self.core = noderobust.make_core(cfg.name, delays, cfg.robust)
        #: latency breakdown (hwctl.nodetiming), diagnostic; on the node's clock (replayable)
        self.timing = NodeTiming(delays, clock=lambda: self.now())
        #: robust mode's actions and hooks (incarnation, HELLO, peer restarts): hwctl.noderobust
        self.robust = noderobust.RobustGlue(self.core, abort=self._pl_abort,
                                            finished=self._request_ended)
        self._pl_cancelled: set[int] = set()  # aborted (robust mode) before their generation
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
        self._curve = None  # CurveServer of the listener (hwctl.transport.security)
        self._curve_ctx: zmq.asyncio.Context | None = None
        #: crash-safe results (hwctl.results.ResultsWriter), set by ``hwctl node --out``
        self.results = None
        self._row_state: dict[int, list[bool]] = {}  # rid -> [completed, pairs checked]
        self._rows_written: set[int] = set()
        self._pairs_mine: dict[int, list] = {}  # pair lists waiting for the other end's
        self._pairs_peer: dict[int, list] = {}
        self._finished: dict[int, asyncio.Event] = {}  # workload: completion per request
        self._remote_q: dict[str, asyncio.Queue[int]] = {}  # "edge" rule: peer's requests done
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

    # ------------------------------------------------------------------ time
    def now(self) -> float:
        """Node time: seconds since the shared epoch (:mod:`hwctl.timebase`)."""
        return timebase.seconds()

    def device_cycle_at(self, t: float) -> int:
        """Device cycle at node time ``t`` (see :class:`DeviceClock`)."""
        return self.clock.cycle_at(t)

    def device_now(self) -> int:
        """Device ticks now, never before a HEADER timestamp already seen (the verification core's
        ``now``; the TIME map is only good to about half a command round trip)."""
        return max(self.clock.cycle_at(self.now()), self._max_ts)

    async def _sleep(self, delay: float) -> None:
        """Every timed wait of the node goes through this and :meth:`_wait` (with :meth:`now`, the
        node's only view of time: :mod:`hwctl.record` taps them to record and replay a session)."""
        await asyncio.sleep(delay)

    async def _wait(self, ev: asyncio.Event, delay: float) -> None:
        """Wait for ``ev`` at most ``delay`` seconds (see :meth:`_sleep`)."""
        await _wait_event(ev, delay)

    # ------------------------------------------------------------------ lifecycle
    async def start(self, backend: Backend | None = None) -> None:
        """Open the bench (apply its settings, snapshot), the backend by URL (or adopt an open
        ``backend``) and the ZeroMQ sockets."""
        if self.cfg.bench is not None and self.bench is None:
            from hwctl.instruments.bench import start_bench

            self.bench, self.bench_snapshot = await asyncio.to_thread(start_bench, self.cfg.bench)
        self.backend = backend if backend is not None else await open_backend(self.cfg.backend)
        if self.backend.device_kind == "station":
            await self.backend.close()
            raise UserError(f"node {self.cfg.name}: {self.cfg.backend} is a heralding station, "
                            "not a node device")
        self.backend.header_blocks = True  # runs of HEADERs as numpy blocks (see _on_headers)
        await self._sync_clock()
        v = self.cfg.verification
        if v is not None and v.header_blocks:
            self.hdrpath = await enable_blocks(self.backend, self.vcore, v.source_hz, v.hold_s)
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
            self._router = self._curve_ctx.socket(zmq.ROUTER)
            self._curve.secure(self._router)
        else:
            self._router = self.ctx.socket(zmq.ROUTER)
        self._router.linger = 0
        self._router.setsockopt(zmq.MAXMSGSIZE, MAX_MSG_BYTES)
        self._router.setsockopt(zmq.RCVHWM, 1000)
        try:
            self._router.bind(self.cfg.listen)
        except zmq.ZMQError as exc:
            await self.backend.close()
            raise UserError(f"node {self.cfg.name}: cannot listen on {self.cfg.listen}: {exc}") from None
        for p in self.cfg.peers:
            s = self.ctx.socket(zmq.DEALER)
            s.linger = 0
            s.setsockopt(zmq.SNDHWM, 1000)  # bounded per-peer buffer; beyond it: send_dropped
            s.setsockopt(zmq.IDENTITY, self.cfg.name.encode())
            if keys is not None and allow is not None:
                from hwctl.transport.security import secure_client

                secure_client(s, keys, next(k for k, n in allow.items() if n == p.name))
            s.connect(p.endpoint)
            self._out[p.name] = s
        self.liveness.beat()  # before any ESP message (hwctl.recovery.PeerLiveness.beat)

    async def _late_join_on(self) -> None:
        """Set CONTROL.LATE_JOIN (the device joins a request's attempt grid by itself, no LATE:
        hwctl.pljoin); a device that reads it back clear has no such bit: join by margin."""
        b = self.backend
        assert b is not None
        bit = 1 << ControlBit.LATE_JOIN
        try:
            ctl = await b.read_reg(Reg.CONTROL)
            await b.write_reg(Reg.CONTROL, ctl | bit)
            self._join.device_joins = bool(await b.read_reg(Reg.CONTROL) & bit)
        except DeviceError:
            self._join.device_joins = False

    async def _sync_clock(self) -> None:
        """Put the device on the shared reference (docs/physical-layer.md section 1)."""
        b = self.backend
        assert b is not None
        hz = float(b.clock_hz)
        t0 = self.now()
        c = await b.time()
        t1 = self.now()
        mid = (t0 + t1) / 2
        if abs(c / hz - mid) <= max(CLOCK_TOLERANCE_S, t1 - t0):
            self.clock, self.clock_sync = DeviceClock(0, 0.0, hz), "shared"
            return
        try:
            await b.time_set(round(self.now() * hz), 0)
            self.clock, self.clock_sync = DeviceClock(0, 0.0, hz), "time_set"
        except DeviceError:  # a v2 device: map its counter instead
            self.clock, self.clock_sync = DeviceClock(c, mid, hz), "mapped"
        log.info("%s: device clock %s", self.cfg.name, self.clock_sync)

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
        if self.hdrpath is not None:
            hp = self.hdrpath  # the pin loop talks to the device: it too survives a recovery
            coros += [sup.supervise(lambda: hp.pin_loop(self.backend)),
                      hp.app_loop(self.now, self._take, sup.up)]
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

    # ------------------------------------------------------------------ requests
    def submit(self, remote: str, pairs: int, fidelity: float | None = None) -> Request:
        self._rid_next += 1
        req = Request(self._rid_base + self._rid_next, self.cfg.name, remote,
                      self.cfg.fidelity if fidelity is None else fidelity, pairs, self.now())
        self.records[req.rid] = RequestRecord(req.rid, req.initiator, req.remote, req.pairs,
                                              req.fidelity, req.t)
        self.counters.requests += 1
        self._finished[req.rid] = asyncio.Event()
        if self.journal is not None:
            self.journal.submitted(req)
        self._apply(self.core.submit(req, req.t))
        return req

    async def _workload(self, peer: str) -> None:
        """ESP §VI-B-style workload on one edge: one request at a time, exponential back-off.
        Rule "node": this node initiates every request (each end of an edge runs one). Rule
        "edge" (the simulator's, sim.network): per edge one request at a time with a random
        initiator, back-off from the previous completion; both ends draw the same sequence from
        an RNG seeded by (seed, edge), so they agree without messages."""
        lo, hi = self.cfg.pairs
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
                self.timing.mark(act.request.rid, "start")
                self._pl_queue.put_nowait((act.request, act.peer, act.t_min))  # both ends fire
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
            self._events.put_nowait(PlAbort(rid, reason))
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
        assert self._router is not None
        while True:
            frames = await self._router.recv_multipart(copy=False)
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
            if not self._pl_queue.empty():  # a generation to start: its SCHEDULE_PAIRS goes out
                await asyncio.sleep(0)  # before the messages queued behind this one (hwctl.nodetiming)

    def _drop(self, cause: str) -> None:
        d = self.counters.dropped
        d[cause] = d.get(cause, 0) + 1
        self.counters.bad_msgs += 1

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
            return self.liveness.heartbeat(src, payload)
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
                self._check_pairs(rid, theirs=d["pairs"])
            elif rid == self._pl_rid and (tm is None or tm == last):
                if "failed" in d and src == self._pl_peer:
                    peer_failed(self, rid, tm)  # now: a new SYN for rid may follow
                self._events.put_nowait(PlMsg(src, d))  # the generation sorts it out
            elif last is not None and (tm is None or tm <= last):
                self.counters.stale_msgs += 1  # a generation that ended here
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

    # ------------------------------------------------------------------ verification
    def _vrf_apply(self) -> None:
        """Carry out the verification core's actions (paper §II-C2 steps 2-6)."""
        assert self.vcore is not None
        for act in self.vcore.drain():
            t = type(act)
            if t is SendToPartner:
                assert self.partner is not None
                self._send(self.partner, K_VRF, act.data)
            elif t is FreeSlots and self.hdrpath is not None:
                self.hdrpath.release(act.slots)  # ring slots expire; only our pins are undone
            elif t is FreeSlots:
                bad = self._slots.release(act.slots)
                self._free_wake.set()
                if bad:
                    self.counters.double_free += bad
                    log.error("%s: verification core freed %d slot(s) not held", self.cfg.name, bad)
            elif t is PairsVerified:
                self._pairs.append(act)
                if self.hdrpath is not None and self.hdrpath.hold_s:
                    self.hdrpath.hold(act.slots, act.seqs, self.now())
            elif t is HeaderRejected:
                log.warning("%s: HEADER seq %d rejected (duplicate or backwards)", self.cfg.name, act.seq)
            elif t in (PairsDiscarded, PairsRevoked):
                pass  # counted in vcore.metrics (discards by cause, revoked)
        self._vwake.set()

    def _on_header(self, ev: Header) -> None:
        if self.hdrpath is not None:  # a restarted device before block mode is on again
            self.hdrpath.stray_headers(1)
            return
        self._hold(np.array([ev.slot], dtype=np.int64), ev.seq)
        self._max_ts = max(self._max_ts, ev.ts)
        if self.vcore is not None:
            self.vcore.handle_header(ev.seq, ev.ts, ev.slot)  # O(1); may move the core's timer
            self._vwake.set()

    def _on_headers(self, b: HeaderBlock) -> None:
        """A run of HEADERs decoded in bulk (the path that keeps pace with a 1.3 MHz source)."""
        if self.hdrpath is not None:  # a restarted device before block mode is on again
            self.hdrpath.stray_headers(int(b.slot.size))
            return
        self._hold(b.slot, int(b.seq[0]))
        self._max_ts = max(self._max_ts, int(b.ts[-1]))
        if self.vcore is not None:
            self.vcore.handle_headers(b.seq, b.ts, b.slot)
            self._vwake.set()

    def _on_block_event(self, ev: HdrBlock | OrderedResponse) -> None:
        """Block mode: HDR_BLOCKs are decoded in batches (when the event queue runs dry or a batch
        is full), pin responses at their place in the stream (hwctl.hdrpath)."""
        hp = self.hdrpath
        if hp is None:
            self.counters.device_errors += 1  # block events without block mode: count, ignore
            return
        if type(ev) is OrderedResponse:
            self._flush_blocks()  # the blocks before the pin change, then the change
            hp.on_ordered(ev)
            return
        hp.on_block(ev)
        if hp.pending() >= BATCH_BLOCKS:
            self._flush_blocks()
        elif not self._block_timer:  # a few blocks: gather them for up to BATCH_WAIT_S
            self._block_timer = True
            asyncio.get_running_loop().call_later(BATCH_WAIT_S, self._flush_blocks)

    def _flush_blocks(self) -> None:
        hp = self.hdrpath
        self._block_timer = False
        if hp is None or not hp.pending():
            return
        self.counters.headers += hp.flush(self.clock.cycle_at(self.now()))
        self._max_ts = max(self._max_ts, hp.max_ts)
        if self.vcore is not None:
            self._vrf_apply()

    def _take(self, seqs: np.ndarray) -> None:
        """The application takes held verified pairs (block mode, ``hold_s``)."""
        if self.vcore is not None:
            self.vcore.release(seqs.tolist())
            self._vrf_apply()

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
                await self._wait(self._vwake, delay)
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
        } | ({"block_path": self.hdrpath.summary()} if self.hdrpath is not None else {})

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
        """Device events: HEADERs to the verification core, PAIR/DONE/LATE to the running
        generation; errors are counted, never dropped."""
        assert self.backend is not None
        while True:
            ev = await self.backend.next_event()
            if type(ev) is HdrBlock or type(ev) is OrderedResponse:
                self._on_block_event(ev)
            elif type(ev) is HeaderBlock:
                self._on_headers(ev)
            elif isinstance(ev, Header):
                self._on_header(ev)
            elif isinstance(ev, Error):
                if ev.code == ErrorCode.NO_SLOT:
                    self.counters.no_slot += 1  # that qubit is lost here: a gap for the core
                elif ev.code == ErrorCode.BAD_HEADER:
                    self.counters.bad_headers += 1
                elif ev.code == ErrorCode.BAD_HERALD:
                    # a herald for an attempt after the last pair (still in flight at COMPLETE)
                    # or for an aborted round: refused by the device at both ends alike
                    self.counters.late_heralds += 1
                else:
                    self.counters.device_errors += 1
                    log.warning("%s: device error %s", self.cfg.name, ev)
            else:
                if type(ev) is Done:
                    self.timing.done_seen(ev.ts, self.clock.time_at,
                                          getattr(getattr(self.backend, "link", None), "rx_ns", 0))
                self._events.put_nowait(ev)

    async def _pl_loop(self) -> None:
        while True:
            req, peer, t_min = await self._pl_queue.get()
            if req.rid in self._pl_cancelled:
                self._pl_cancelled.discard(req.rid)
                continue
            self._pl_rid, self._pl_tmin, self._pl_peer = req.rid, t_min, peer
            self._pl_tm[req.rid] = t_min
            if len(self._pl_tm) > 4096:
                del self._pl_tm[next(iter(self._pl_tm))]  # bounded: the oldest request goes
            later = []
            for d in self._pl_early.pop(req.rid, []):
                tm = d.get("tm")
                if tm is None or tm == t_min:
                    self._events.put_nowait(PlMsg(d.pop("_src", peer), d))
                elif tm > t_min:
                    later.append(d)  # for a later generation of this request
                else:
                    self.counters.stale_msgs += 1
            if later:
                self._pl_early[req.rid] = later
            self.counters.generations += 1
            try:
                await self.recovery.generate(req, peer, t_min)
            finally:
                self._pl_rid = self._pl_tmin = None
                self._pl_done.append(req.rid)

    def _remote_done(self, peer: str) -> asyncio.Queue[int]:
        """Requests of ``peer`` on our edge that finished here (for the "edge" workload rule)."""
        return self._remote_q.setdefault(peer, asyncio.Queue())

    def _port(self, peer: str) -> int:
        for p in self.cfg.peers:
            if p.name == peer:
                return p.port if p.port is not None else sorted(q.name for q in self.cfg.peers).index(peer)
        raise UserError(f"node {self.cfg.name}: no peer {peer!r} configured")

    async def _schedule_at(self, tc: int, pairs: int, port: int) -> int:
        """SCHEDULE_PAIRS from device cycle ``tc``; its round trip goes to the join planner."""
        b = self.backend
        assert b is not None
        t0 = self.now()  # the node's one clock (hwctl.record replays it)
        await b.schedule_pairs(tc, U32, self.cfg.period_cycles, pairs, port)
        self._join.note_rtt(self.now() - t0)
        self.counters.schedules += 1
        return tc

    async def _generate(self, req: Request, peer: str, t_min: float) -> None:
        """One request at the physical layer, at either end (docs/physical-layer.md section 5).

        The grid's origin is ``cycle_of(t_min)`` at both ends (ESP gives both the same t_min),
        so each end joins as soon as ESP starts it, the remote without waiting for the
        initiator's ``{rid, restart: 0, start}`` (still sent behind ACK for older remotes, and
        taken as a confirmation). Each end joins the grid ``origin + k*period`` at the first
        point its own command can reach its device in time (:class:`hwctl.pljoin.JoinPlanner`:
        the margin follows its measured command round trips) with one SCHEDULE_PAIRS, and
        collects PAIR events until DONE(COMPLETE): the station heralds only attempts both ends
        fired, and both get every herald at the same cycle, so both record the same pairs
        whichever grid point each joined at. A LATE (nothing fired) is repaired at that end alone
        by joining a later grid point; so is an exhausted schedule. Afterwards each end sends its
        pair list ``{rid, pairs, need}`` to the other, which counts any mismatch in
        ``counters.disagree``. (``{rid, late: round}`` from an older remote still makes the
        initiator restart both ends from a new start.)"""
        b = self.backend
        assert b is not None
        c = self.counters
        jp = self._join
        initiator = req.initiator == self.cfg.name
        rec = self.records.get(req.rid) if initiator else None
        port = self._port(peer)
        need: float | None = None
        pairs: list[tuple[int, int, int]] = []
        attempts = 0
        tc: int | None = None  # our join cycle of the running schedule
        origin = 0  # the request's grid origin (cycle of the initiator's start)
        retry = 0  # LATE / exhausted schedules of this request here
        dev_join: int | None = None  # the grid point our device joined at (from its DONE)
        done_ts = 0

        async def join() -> int:
            nonlocal need
            if need is None:
                self.timing.command_out(req.rid)
            t = await self._schedule_at(jp.join(origin, self.clock.cycle_at(self.now()), retry),
                                        req.pairs, port)
            if need is None:  # the later of the join cycle and the ACK (a device that joins
                need = max(0.0, self.clock.time_at(t) - t_min, self.now() - t_min)  # itself)
                self.timing.command_acked(req.rid, getattr(b, "tx_ns", 0))  # (replaced by the
                # device's own join below)
            return t

        rnd = 0
        origin = self.clock.cycle_at(t_min)  # round 0's origin is t_min at both ends
        tc = await join()  # the remote too, at once: no wait for the start message
        if initiator:  # for an older remote, which waits for it; after our command, which is
            self._send_pl(peer, rid=req.rid, restart=0, start=t_min)  # on the critical path
        if rec is not None:
            rec.t_min, rec.t_pl_start = t_min, t_min + (need or 0.0)

        async def restart() -> int:
            """Initiator, on an older remote's LATE notice: a new origin at both ends."""
            nonlocal rnd, origin
            rnd += 1
            if rec is not None:
                rec.restarts += 1
            t = self.now() + jp.margin_s(rnd)
            origin = self.clock.cycle_at(t)
            self._send_pl(peer, rid=req.rid, restart=rnd, start=t)
            await b.abort()
            return await join()

        while True:
            ev = await self._events.get()
            if self.recovery.screen(ev, peer):  # a device loss or a peer's failure ends us
                continue
            if isinstance(ev, PlAbort):
                if ev.rid == req.rid:  # robust mode: the core released the Lock (lease, restart)
                    await b.abort()
                    raise GenerationFailed(f"robust: {ev.reason}", tell_peer=True)
            elif isinstance(ev, PlMsg):
                d = ev.d
                if ev.src != peer:  # a third node meddling with this request
                    self._drop("pl_not_from_partner")
                elif initiator and d.get("late") == rnd:
                    tc, pairs = await restart(), []
                elif not initiator and isinstance(d.get("restart"), int) and d["restart"] >= rnd:
                    o = self.clock.cycle_at(float(d["start"]))
                    if d["restart"] == rnd and o == origin:
                        continue  # round 0's start, already joined at it (or a repeat)
                    if tc is not None:  # an older initiator's other start: join that grid
                        await b.abort()
                    rnd, origin = d["restart"], o
                    tc, pairs = await join(), []
                else:
                    c.stale_msgs += 1
            elif isinstance(ev, Pair):
                if tc is not None and ev.ts >= tc:
                    pairs.append((ev.ts, jp.attempt(origin, ev.ts), ev.bell))
                    c.heralds += 1
                    self.recovery.note_pairs(len(pairs))
                else:
                    c.stale_msgs += 1
            elif isinstance(ev, Late):
                if ev.t_start != tc:
                    continue
                c.late += 1
                c.late_after_first += c.generations > 1
                if rec is not None:
                    rec.late += 1
                jp.device_joins = False  # it did not join by itself (restarted?): margin from now
                retry += 1  # nothing fired here: join a later grid point, alone
                tc = await join()
            elif isinstance(ev, Done):
                attempts += ev.attempts
                if dev_join is None and tc is not None:  # where our device joined the grid
                    dev_join, done_ts = join_cycle(ev.ts, ev.attempts, origin, jp.period), ev.ts
                if ev.reason == DoneReason.COMPLETE and tc is not None and len(pairs) == req.pairs:
                    break
                if ev.reason == DoneReason.EXHAUSTED and tc is not None:
                    c.exhausted += 1  # 2^32-1 attempts without the pairs: go on from here
                    tc = await join()
        c.attempts += attempts
        if rec is not None:
            rec.attempts += attempts
            rec.herald_ts = [ts for ts, _, _ in pairs]
        self._apply(self.core.attempts_finished(req.rid, self.now()))
        if dev_join is not None:  # exact, where the ACK-based figure above is an upper bound
            need = max(0.0, self.clock.time_at(dev_join) - t_min)
            self.timing.finished(req.rid, t_min + need, t_min, done_ts)
            if rec is not None:
                rec.t_pl_start = t_min + self.timing.pl_start(req.rid, need)
        if not initiator and self.cfg.rule == "edge":
            self._remote_done(peer).put_nowait(req.rid)
        self._send_pl(peer, rid=req.rid, pairs=[list(x) for x in pairs], need=need)
        self._check_pairs(req.rid, mine=pairs)

    def _note_need(self, rid: int, need: float) -> None:
        """The remote end joined the grid ``need`` s after t_min: the request's generation started
        at the later of the two joins (the breakdown's "t_min lead")."""
        rec = self.records.get(rid)
        if rec is not None and rec.t_min is not None and rec.t_pl_start is not None:
            rec.t_pl_start = rec.t_min + self.timing.pl_start(rid, need)

    def _check_pairs(self, rid: int, *, mine: list | None = None, theirs: list | None = None) -> None:
        """Compare the two ends' pair lists of request ``rid`` once both are here: every pair must
        appear at both ends with the same attempt cycle, attempt number and Bell state."""
        if mine is not None:
            self._pairs_mine[rid] = [tuple(x) for x in mine]
        if theirs is not None:
            self._pairs_peer[rid] = [tuple(x) for x in theirs]
        if rid in self._pairs_mine and rid in self._pairs_peer:
            self._row_ready(rid, checked=True)  # after the counts below (call_soon)
            a, b = set(self._pairs_mine.pop(rid)), set(self._pairs_peer.pop(rid))
            bad = len(a ^ b)
            self.counters.pair_checks += 1
            if bad:
                self.counters.disagree += bad
                rec = self.records.get(rid)
                if rec is not None:
                    rec.disagree += bad
                log.error("%s: request %d: %d pair(s) not held at both ends", self.cfg.name, rid, bad)

    # ------------------------------------------------------------------ results
    def _row_ready(self, rid: int, *, completed: bool = False, checked: bool = False) -> None:
        """A request's row goes to the results writer once it is completed *and* its pair lists
        were compared (``disagree`` final): at most ~1 s of rows is lost on a crash."""
        if self.results is None or rid not in self.records:
            return
        st = self._row_state.setdefault(rid, [False, False])
        st[0] |= completed
        st[1] |= checked
        if st[0] and st[1]:
            del self._row_state[rid]
            self._rows_written.add(rid)
            # after the current handler: _check_pairs updates the record's disagree first
            asyncio.get_running_loop().call_soon(self._write_row, rid)

    def _write_row(self, rid: int) -> None:
        if self.results is not None:
            self.results.append(self._row(self.records[rid]))

    @staticmethod
    def _row(r: RequestRecord) -> dict:
        """The results writer's row: the shared schema's columns (hwctl.schema)."""
        d = asdict(r)
        d["latency"] = r.latency
        d["herald_ts"] = list(r.herald_ts)
        return schema_row(d)

    def unwritten_rows(self) -> list[dict]:
        """Rows the results writer has not had yet (open requests, unchecked pair lists)."""
        return [self._row(r) for rid, r in self.records.items() if rid not in self._rows_written]

    def snapshot(self) -> dict:
        d = asdict(self.counters)
        d["state"] = self.core.state.value
        d["clock_sync"] = self.clock_sync
        d["timing"] = self.timing.summary()
        d["recovery"] = self.recovery.snapshot()
        d["peers"] = self.liveness.snapshot()
        if self.journal is not None:
            d["journal"] = self.journal.snapshot()
        if self.backend is not None:
            # with the link-stamped latency segments (hwctl.nodetiming; replay leaves "link" out)
            d["link"] = {**self.backend.health(), "timing": self.timing.summary(link=True)}
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


#: node result row key -> schema column (hwctl.schema, docs/data.md); rows keep their in-memory names
REQUEST_COLUMNS = {"rid": "rid", "initiator": "initiator", "remote": "remote", "pairs": "pairs",
                   "fidelity": "fidelity", "t_submit": "t_request_s", "t_syn": "t_syn_s",
                   "t_ack": "t_ack_s", "t_min": "t_min_s", "t_pl_start": "pl_start_s",
                   "t_finish": "t_finish_s", "latency": "latency_s", "attempts": "attempts",
                   "late": "late", "restarts": "restarts", "disagree": "disagree",
                   "herald_ts": "herald_ts_cycles"}
PAIR_COLUMNS = {"node": "node", "partner": "partner", "seq": "seq", "slot": "slot",
                "store_ts": "store_ts_cycles", "verify_ts": "verify_ts_cycles",
                "fidelity": "fidelity"}


def _schema_cols(records: list[dict], names: dict[str, str], kind: str,
                 source: str) -> dict[str, list]:
    """In-memory rows -> schema columns (unknown times NaN, as the simulator writes them)."""
    from hwctl import schema

    floats = {c.name for c in schema.columns(kind, source) if c.type == "float64"}
    return {col: [float("nan") if (r.get(key) is None and col in floats) else r.get(key)
                  for r in records] for key, col in names.items()}


def schema_row(row: dict, source: str = "node") -> dict:
    """One in-memory request row (:meth:`NodeService.result_rows`) as a row of the shared schema."""
    return {k: v[0] for k, v in _schema_cols([row], REQUEST_COLUMNS, "requests", source).items()}


#: the requests table of a node (``<name>.parquet``), as written by hwctl.results.ResultsWriter:
#: the shared schema (hwctl.schema, docs/data.md)
def requests_schema(source: str = "node"):
    from hwctl import schema

    return schema.table("requests", source, {}).schema.remove_metadata()


def write_results(rows: list[dict], meta: dict, out: Path, name: str = "requests",
                  pairs: list[dict] | None = None, source: str = "node", *,
                  requests: bool = True) -> Path:
    """Requests as ``<name>.parquet`` and, with ``pairs`` (verified pairs,
    :meth:`NodeService.pair_rows`), ``<name>.pairs.parquet``, both in the shared schema
    (:mod:`hwctl.schema`: unit-suffixed columns, unknown times NaN, herald cycles as int64 lists)
    with the run's metadata inside the file. ``meta`` may give ``parameters`` and ``seed``; its
    other keys are stored as they are. ``requests=False``: only the pairs (``hwctl node --out``
    writes the requests incrementally, :mod:`hwctl.results`)."""
    from hwctl import schema

    rest = dict(meta)
    full = schema.run_metadata(source, rest.pop("parameters", {}), seed=rest.pop("seed", None),
                               **rest)
    path = out / f"{name}.parquet"
    if requests:
        schema.write(path, "requests", source,
                     _schema_cols(rows, REQUEST_COLUMNS, "requests", source), full)
    if pairs is not None:
        schema.write(out / f"{name}.pairs.parquet", "pairs", source,
                     _schema_cols(pairs, PAIR_COLUMNS, "pairs", source), full)
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
    parser.add_argument("--config", required=True,
                        help="node TOML file; examples/node.toml in the repository shows and "
                             "explains every key (docs/node.md)")
    parser.add_argument("--duration", type=argtypes.duration(), default=None,
                        help="override the config's duration (s)")
    parser.add_argument("--out", type=argtypes.out_dir, default=None, metavar="DIR",
                        help="write the results to DIR/NAME.parquet (requests) and, with "
                             "[verification], DIR/NAME.pairs.parquet, run metadata inside "
                             "(docs/data.md); overrides the config's out; default: the config's "
                             "out, else nothing is written")
    parser.add_argument("--report-every", type=argtypes.real(0.0, 3600.0, lo_open=True,
                                                             what="--report-every"), default=2.0,
                        help="seconds between status lines on stderr (default 2)")
    parser.add_argument("--web", metavar="[HOST:]PORT", nargs="?", const="127.0.0.1:8765",
                        default=None, type=web_addr,
                        help="serve a live view of this node (ESP state, requests, heralds, "
                             "latency, verified pairs, link health) at http://HOST:PORT/; "
                             "--web alone: 127.0.0.1:8765 (loopback; a free port if taken)")
    parser.add_argument("--json", action="store_true",
                        help="at the end, print the node's counters as one JSON document on stdout")
    parser.add_argument("--record", metavar="FILE", default=None,
                        help="record the session to FILE (device events and answers, peer "
                             "messages, clock readings; written as it happens) for `hwctl replay "
                             "FILE` (docs/twin.md, \"Record and replay\")")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    cfg = NodeConfig.load(args.config)
    if args.duration is not None:
        cfg.duration = args.duration
    if args.out:
        cfg.out = args.out
    console = Console(stderr=True)

    writer = None
    if cfg.out:
        from hwctl import schema
        from hwctl.results import ResultsWriter

        writer = ResultsWriter(Path(cfg.out), cfg.name, requests_schema(),
                               schema.run_metadata("node", asdict(cfg), seed=cfg.seed)
                               | {"schema": "hwctl.requests"})
        console.print(f"results of run {writer.run_id}: {writer.partial_path} (flushed each "
                      f"second), final Parquet when the node stops", soft_wrap=True)

    async def main() -> NodeService:
        node = NodeService(cfg)
        node.results = writer
        if cfg.out:  # the request journal: a restarted node resumes or expires its requests
            node.journal = RequestJournal(Path(cfg.out) / f"{cfg.name}.journal.jsonl")
        recorder = None
        if args.record:  # taps the backend, sockets, clock and waits (hwctl.record)
            from hwctl.record import Recorder

            recorder = Recorder(args.record, node)
            await recorder.start()
        else:
            await node.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # stop cleanly: results are still written
            loop.add_signal_handler(sig, node.stop)
        console.print(f"[green]node {cfg.name}[/] on {cfg.listen}, backend {cfg.backend}, "
                      f"peers {', '.join(p.name for p in cfg.peers)}, device clock "
                      f"{node.clock_sync}", soft_wrap=True)
        reporter = asyncio.create_task(_report(node, console, args.report_every))
        web = await _start_web(node, args.web) if args.web else None
        if web is not None:
            console.print(f"live view: {web.url}", soft_wrap=True)
        try:
            await node.run()
        except BaseException:
            if recorder is not None:
                recorder.abandon()  # no end record: the replay says where it stops
            raise
        finally:
            reporter.cancel()
            if web is not None:
                await web.close()
        if recorder is not None:
            recorder.close()
            console.print(f"recording: {recorder.path} ({recorder.entries} entries)",
                          soft_wrap=True)
        return node

    try:
        node = asyncio.run(main())
    except BaseException as exc:
        if writer is not None:  # what was flushed stays readable (hwctl.results.read_partial)
            writer.abandon()
            console.print(f"results so far: {writer.partial_path}", soft_wrap=True)
        if isinstance(exc, LinkError):
            raise UserError(f"link failed: {exc}") from None
        raise
    if args.json:
        from hwctl.output import print_json

        print_json(node.snapshot())
    else:
        console.print(f"node {cfg.name}: {node.snapshot()}", soft_wrap=True)
    if writer is not None:
        end = {"summary": node.snapshot(), "instruments": node.bench_snapshot}
        path = writer.close(final_rows=node.unwritten_rows(), metadata=end)
        if node.vcore is not None:
            write_results([], {"parameters": asdict(cfg), "seed": cfg.seed,
                               "run_id": writer.run_id, "requests_file": path.name, **end},
                          Path(cfg.out), path.name.removesuffix(".parquet"),
                          pairs=node.pair_rows(), requests=False)
        console.print(f"results: {path}", soft_wrap=True)
    return 0




async def _start_web(node: NodeService, addr: str):
    """The live view of this node (hwctl.live) on ``addr``, served from the node's loop."""
    import time

    from hwctl.live import LiveServer, snapshot

    t0 = time.monotonic()
    server = LiveServer(lambda: snapshot([node], title=f"hwctl node {node.cfg.name}", t0=t0,
                                         duration=node.cfg.duration), addr)
    await server.start()
    return server


async def _report(node: NodeService, console, every: float = 2.0) -> None:
    """One status line per ``every`` seconds: ``NAME: done/requests requests, ...``."""
    while True:
        await asyncio.sleep(every)
        c = node.counters
        v = node.verification_summary()
        vtxt = "" if v is None else (f", {v['verified']} verified pairs with {v['partner']} of "
                                     f"{v['headers']} headers, discards {v['discards']}")
        console.print(f"{node.cfg.name}: {c.completed}/{c.requests} requests, {c.heralds} heralds, "
                      f"{c.disagree} PL disagreements{vtxt}, state "
                      f"{node.core.state.value}, {c.late} LATE, link "
                      f"{node.backend.stats.as_dict() if node.backend else {}}", soft_wrap=True)
