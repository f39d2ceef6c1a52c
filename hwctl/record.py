"""Record a node session and replay it offline (``hwctl node --record FILE``, ``hwctl demo --record
DIR``, ``hwctl replay FILE``).

What is recorded. Everything the node service (:class:`hwctl.node.NodeService`) takes in from
outside, in the order its host logic consumed it: each device event (the wire message, or a run of
HEADERs as arrays; the device's timestamps are inside, the host time of arrival is added), each
device command with its arguments and the device's answer (or the error), each message from a
peer (all ZeroMQ frames), each timed wait that ended (ESP timer, verification timer, workload
back-off), every reading of the node clock (:meth:`NodeService.now`), every reading of the
device link's retry counter the node's logic decides on
(:meth:`hwctl.recovery.DeviceSupervisor.link_retries`: a retry depends on the machine's load)
and of its lost-frame counter (``link_losses``: the legacy pool's slot check decides on it),
and where each step of each of the node's asyncio tasks began. What the node sends its peers is recorded too. The recorder is
a tap on one ``NodeService`` instance: it wraps the backend's methods, the node's sockets, clock
and waits, and (through the event loop's task factory) the coroutines of the node's own tasks; the
node's code is unchanged.

The file is JSON lines: a header (the node's configuration, request-id base, code and wire
versions, instrument snapshot), then one entry per line, and an ``end`` entry with the node's final
counters when the node stops. Crash safety, as the request journal's (:mod:`hwctl.journal`): each
entry is written and flushed to the kernel as it happens (a ``kill -9`` loses nothing written);
``fsync`` follows at most ``fsync_s`` (1 s) after an entry and at most once per ``fsync_s``, on the
recording's own thread (:class:`hwctl.durable.Flusher`: entries are written from the node's event
loop, which an ``fsync`` of 3-5 ms would stall, once per step of every task), and at close (a
machine crash loses at most the entries of the last ``fsync_s``). A node that crashes leaves a
file whose last line may be cut: the replay uses every whole entry before it and says where the
recording stops.

Replay. :func:`replay` builds the same ``NodeService`` from the header, without device, sockets
or network: a backend, router and peer sockets that answer from the recording. One cursor walks
the entries: a task step runs only when the recording says it began (so the node's tasks
interleave exactly as they did), a clock reading returns the recorded value, a device answer,
event, peer message or timed wait is handed to the task that waits for it when its step comes up,
and nothing sleeps (the replay runs as fast as the host logic). The cores are sans-IO and every
input, clock reading and interleaving is the recorded one, so the replay produces the same
requests, pairs, verified pairs and counters. Every message the node sends and every device
command it issues is compared with the recording as it goes; the first difference stops the
replay with "diverged at line N" (never silently different results).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections.abc
import json
import math
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hwctl import argtypes, errors, timebase
from hwctl.durable import Flusher
from hwctl.errors import UserError
from hwctl.transport.backend import LinkStats, OrderedResponse
from hwctl.wire import CLOCK_HZ, WIRE_VERSION
from hwctl.wire._spec import MESSAGES
from hwctl.wire.bulk import HeaderBlock

if TYPE_CHECKING:
    from hwctl.node import NodeConfig, NodeService
    from hwctl.transport import Backend

FORMAT = "hwctl-recording"
FORMAT_VERSION = 5
#: formats this hwctl replays (1: before block mode, robust mode and reconnects were recorded;
#: 2: before the link-retry readings were; 3: before the link-loss readings were; 4: before the
#: re-sync after a device restart turned the go's HEADER_EN on again)
READS_VERSIONS = (1, 2, 3, 4, 5)
#: backend commands the node issues (recorded with arguments and answer)
COMMANDS = ("time", "time_set", "schedule_pairs", "schedule", "abort", "free", "free_mask",
            "read_reg", "write_reg", "pin_mask", "unpin_mask")
#: HeaderBlock arrays and their dtypes (as hwctl.wire.bulk.BulkDecoder makes them)
_HB_FIELDS = ("ev_seq", "seq", "ts", "slot")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str) -> bytes:
    return base64.b64decode(s)


def _msg_hex(m: Any) -> str:
    """A wire message as the recording stores it: opcode and payload, hex."""
    return (bytes((m.OPCODE,)) + m.pack()).hex()


def _msg(h: str) -> Any:
    raw = bytes.fromhex(h)
    return MESSAGES[raw[0]].unpack(raw[1:])


def _task_key(prefix: str) -> str:
    """The node task a clock reading or wait belongs to: its name without ``NAME/`` for the
    node's own tasks (:meth:`NodeService.run` names them), ``main`` for anything else."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    name = task.get_name() if task is not None else ""
    return name[len(prefix):] if name.startswith(prefix) else "main"


class _TaskKeys:
    """:func:`_task_key` for one event loop, remembered per task (a task keeps its name): the
    recorder and the replay ask for it at every entry."""

    def __init__(self, prefix: str, loop: asyncio.AbstractEventLoop) -> None:
        self._prefix, self._loop = prefix, loop
        self._memo: dict[asyncio.Task | None, str] = {}

    def __call__(self) -> str:
        task = asyncio.current_task(self._loop)
        key = self._memo.get(task)
        if key is None:
            if len(self._memo) > 4096:  # bounded (tasks come and go in a long session)
                self._memo.clear()
            name = task.get_name() if task is not None else ""
            p = self._prefix
            key = self._memo[task] = name[len(p):] if name.startswith(p) else "main"
        return key


def _err(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "msg": str(exc), "code": getattr(exc, "code", None)}


def _rebuild_err(d: dict) -> BaseException:
    cls = getattr(errors, d["type"], None)
    if not (isinstance(cls, type) and issubclass(cls, errors.HwctlError)):
        return errors.LinkError(f"{d['type']}: {d['msg']}")
    if cls is errors.DeviceError:
        return errors.DeviceError(d["msg"], d.get("code"))
    return cls(d["msg"])


def _initial_state(node: NodeService) -> dict:
    """What the node holds before the recorder is attached: the peer-liveness incarnation
    (random) and first "last heard" times (hwctl.recovery.PeerLiveness), and the request journal
    as it was (hwctl.journal: an earlier life's requests)."""
    d: dict[str, Any] = {}
    robust = getattr(node, "robust", None)
    if robust is not None and robust.enabled:  # the robust core's life (its boot time in ns)
        d["esp_incarnation"] = robust.incarnation
    live = getattr(node, "liveness", None)
    if live is not None:
        d.update(incarnation=live.incarnation, last_heard=dict(live.last))
    journal = getattr(node, "journal", None)
    if journal is not None:
        try:
            d["journal"] = journal.path.read_text()
        except OSError:
            d["journal"] = ""
    return d


def _restore_state(node: NodeService, state: dict, tmp: Path) -> None:
    live = getattr(node, "liveness", None)
    if live is not None and "incarnation" in state:
        live.incarnation = state["incarnation"]
        live.last.update(state["last_heard"])
    if "journal" in state:  # the same journal in a scratch file: resume() decides the same way
        from hwctl.journal import RequestJournal

        path = tmp / f"{node.cfg.name}.journal.jsonl"
        path.write_text(state["journal"])
        node.journal = RequestJournal(path)


def config_dict(cfg: NodeConfig) -> dict:
    """The node's configuration as the recording's header stores it (JSON)."""
    d = asdict(cfg)
    d["bench"] = None  # instruments are not replayed; their snapshot is in the header
    return d


def config_from_dict(d: dict) -> NodeConfig:
    """The inverse of :func:`config_dict`, for the replay: no instruments, no CurveZMQ keys (the
    replay opens no socket), no duration (the recording says when the session ended)."""
    from hwctl.node import NodeConfig, PeerConfig, VerifyConfig

    d = dict(d)
    d["peers"] = [PeerConfig(**p) for p in d["peers"]]
    d["pairs"] = tuple(d["pairs"])
    if d.get("verification") is not None:
        d["verification"] = VerifyConfig(**d["verification"])
    if d.get("robust") is not None:
        from hwctl.protocols.reliable import RobustConfig

        d["robust"] = RobustConfig(**d["robust"])
    d.update(bench=None, key=None, allow=None, duration=None, out=None)
    return NodeConfig(**d)


# ---------------------------------------------------------------------------- task steps
#: node (by id) -> what wraps its tasks' steps: a Recorder (logs each step) or a replay gate
_STEPPED: dict[int, Any] = {}


def _install_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    """Wrap the coroutine of every task a tapped node creates (a coroutine whose ``self`` is the
    node: :meth:`NodeService.run`'s tasks) so each step of it is logged (recording) or waits for
    its turn (replay). Other tasks are left as they are."""
    prev = loop.get_task_factory()
    if getattr(prev, "_hwctl_record", False):
        return

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task:
        frame = getattr(coro, "cr_frame", None)
        owner = frame.f_locals.get("self") if frame is not None else None
        node = owner if owner is None or id(owner) in _STEPPED else getattr(owner, "node", None)
        hook = _STEPPED.get(id(node)) if node is not None else None
        if hook is not None and hook.node is node:  # the node's, or its supervisor's / liveness'
            coro = _Stepped(coro, hook)
        return prev(loop, coro, **kw) if prev is not None else asyncio.Task(coro, loop=loop, **kw)

    factory._hwctl_record = True  # type: ignore[attr-defined]
    loop.set_task_factory(factory)


class _Stepped(collections.abc.Coroutine):
    """A node task's coroutine, one step (``send`` / ``throw``) at a time through ``hook``."""

    def __init__(self, coro: Any, hook: Any) -> None:
        self._coro, self._hook = coro, hook

    def send(self, value: Any) -> Any:
        if not self._hook.step(False):
            return None  # not this task's turn (replay): asyncio runs the step again soon
        return self._coro.send(value)

    def throw(self, *exc: Any) -> Any:
        self._hook.step(True)
        return self._coro.throw(*exc)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Any:
        return self

    def __next__(self) -> Any:
        return self.send(None)


# ---------------------------------------------------------------------------- recording
class Recorder:
    """Taps one node and writes its session to ``path`` (module docstring). Create it in the
    node's event loop before :meth:`NodeService.start`; open the backend with :meth:`start` (or
    tap one with :meth:`tap_backend`, call ``node.start(backend)``, then :meth:`tap_sockets`);
    :meth:`close` it when the node has stopped."""

    def __init__(self, path: str | Path, node: NodeService, *, fsync_s: float = 1.0) -> None:
        from hwctl.node import code_version

        self.path = Path(path)
        self.node = node
        self.entries = 0
        self._prefix = f"{node.cfg.name}/"
        self._fsync_s = fsync_s  # < 0: no fsync at all (the kernel has every entry)
        self._last_sync = 0.0  # time.monotonic() of the last fsync: the first entry's at once
        self._dirty = False  # entries written since the fsync's descriptor was taken
        self._flusher = Flusher(self._sync_behind, f"record-{node.cfg.name}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())
        except OSError as exc:
            raise UserError(f"cannot write the recording {str(self.path)!r}: {exc.strerror}") from None
        self._write({"format": FORMAT, "version": FORMAT_VERSION, "node": node.cfg.name,
                     "config": config_dict(node.cfg), "rid_base": node._rid_base,
                     "code_version": code_version(), "wire_version": WIRE_VERSION,
                     "instruments": node.bench_snapshot, "started_s": timebase.seconds(),
                     "state": _initial_state(node)})
        self._key = _TaskKeys(self._prefix, asyncio.get_running_loop())
        self._tap_node()
        _STEPPED[id(node)] = self
        _install_task_factory(asyncio.get_running_loop())

    # -- writing
    def _write(self, d: dict) -> None:
        if self._f.closed:
            return
        self._f.write(json.dumps(d, separators=(",", ":")) + "\n")
        self._f.flush()  # a crash of the process loses nothing written
        self.entries += 1
        if self._fsync_s >= 0:  # ... a crash of the machine at most the last fsync_s
            self._dirty = True
            self._flusher.due(self._last_sync + self._fsync_s)

    def _sync_behind(self) -> None:
        """The entries' ``fsync`` on the flusher's thread, on a duplicate of the file's
        descriptor (the entries written before the dup are in the kernel, so its fsync makes
        them durable). :meth:`close` and :meth:`abandon` stop the flusher before the file is
        closed, so the descriptor is open here."""
        if not self._dirty or self._f.closed:
            return
        fd = os.dup(self._f.fileno())
        self._dirty = False  # an entry written from here on asks for the next run
        self._last_sync = time.monotonic()  # ... due fsync_s from now, not at once
        try:
            os.fsync(fd)
        except OSError:  # the next entry's fsync (or close's) tries again
            self._dirty = True
            raise  # logged by the flusher
        finally:
            os.close(fd)

    def step(self, thrown: bool) -> bool:
        """A step of one of the node's tasks begins (the order the replay follows)."""
        key = self._key()
        if key != "main":
            self._write({"s": key, "x": 1} if thrown else {"s": key})
        return True

    def close(self, end: dict | None = None) -> None:
        """The ``end`` entry (the node's final counters, which the replay is compared with)."""
        _STEPPED.pop(id(self.node), None)
        if self._f.closed:
            return
        self._write({"end": end if end is not None else self.node.snapshot()})
        self._flusher.close()  # after the fsync that is due by now, if any
        self._f.flush()
        os.fsync(self._f.fileno())  # every entry, the end included, on the caller's thread
        self._f.close()

    def abandon(self) -> None:
        """Close without ``end`` (the node failed): the replay says where the recording stops.
        What the flusher had due by now is synced; the rest is in the kernel (a process crash
        loses nothing of it)."""
        _STEPPED.pop(id(self.node), None)
        self._flusher.close()
        if not self._f.closed:
            self._f.close()

    # -- taps
    def _tap_node(self) -> None:
        node = self.node
        real_now, real_sleep, real_wait = node.now, node._sleep, node._wait

        def now() -> float:
            t = real_now()
            self._write({"n": self._key(), "t": t})
            return t

        async def sleep(delay: float) -> None:
            await real_sleep(delay)
            self._write({"w": self._key()})

        async def wait(ev: asyncio.Event, delay: float) -> None:
            await real_wait(ev, delay)
            self._write({"w": self._key()})

        node.now, node._sleep, node._wait = now, sleep, wait  # type: ignore[method-assign]

        sup = getattr(node, "recovery", None)
        if sup is not None:
            real_retries = sup.link_retries

            def link_retries(b: Any) -> int:
                v = real_retries(b)
                self._write({"lr": self._key(), "v": v})
                return v

            sup.link_retries = link_retries  # type: ignore[method-assign]
            real_losses = sup.link_losses

            def link_losses(b: Any) -> int:
                v = real_losses(b)
                self._write({"ll": self._key(), "v": v})
                return v

            sup.link_losses = link_losses  # type: ignore[method-assign]

        real_call_later = node._call_later
        serial = 0

        def call_later(delay: float, fn: Callable[[], None]) -> Any:
            nonlocal serial
            serial += 1
            n = serial

            def fire() -> None:
                self._write({"cb": n})  # where it ran among the task steps (the replay runs it)
                fn()

            return real_call_later(delay, fire)

        node._call_later = call_later  # type: ignore[method-assign]

        real_open = node._open_backend

        async def open_backend(url: str) -> Any:
            try:
                b = await real_open(url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._write({"open": url, "x": _err(exc), "k": self._key(),
                             "t": timebase.seconds()})
                raise
            self._write({"open": url, "k": self._key(), "t": timebase.seconds()})
            return self.tap_backend(b)  # a reconnect: the new link's events and answers too

        node._open_backend = open_backend  # type: ignore[method-assign]

    def tap_backend(self, backend: Backend) -> Backend:
        """Record the events and command answers ``backend`` gives the node (wraps its methods
        on this instance only)."""
        real_next = backend.next_event
        self._write({"backend": {"url": backend.url, "clock_hz": float(backend.clock_hz)}})

        async def next_event(timeout: float | None = None):
            try:
                ev = await real_next(timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._write({"ex": _err(exc), "k": self._key(), "t": timebase.seconds()})
                raise
            if type(ev) is HeaderBlock:
                self._write({"hb": [getattr(ev, f).tolist() for f in _HB_FIELDS],
                             "k": self._key(), "t": timebase.seconds()})
            elif type(ev) is OrderedResponse:  # a pin command's answer at its place (block mode)
                self._write({"or": [_msg_hex(ev.command), _msg_hex(ev.response)],
                             "k": self._key(), "t": timebase.seconds()})
            else:
                self._write({"e": _msg_hex(ev), "k": self._key(), "t": timebase.seconds()})
            return ev

        backend.next_event = next_event  # type: ignore[method-assign]
        for name in COMMANDS:
            setattr(backend, name, self._tap_command(name, getattr(backend, name)))
        return backend

    def _tap_command(self, name: str, real: Any) -> Any:
        async def command(*args: Any) -> Any:
            try:
                r = await real(*args)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._write({"c": name, "a": list(args), "x": _err(exc), "k": self._key(),
                             "t": timebase.seconds()})
                raise
            if hasattr(r, "OPCODE"):  # a wire message (PIN_MASK's ACK / NAK)
                self._write({"c": name, "a": list(args), "rm": _msg_hex(r), "k": self._key(),
                             "t": timebase.seconds()})
            else:
                self._write({"c": name, "a": list(args), "r": r, "k": self._key(),
                             "t": timebase.seconds()})
            return r

        return command

    def tap_sockets(self) -> None:
        """Record what the node's listener receives and what it sends to each peer (after
        :meth:`NodeService.start` opened the sockets)."""
        node = self.node
        assert node._router is not None
        node._router = _TapRouter(node._router, self)  # type: ignore[assignment]
        node._out = {p: _TapDealer(s, self, p) for p, s in node._out.items()}  # type: ignore[misc]

    async def start(self) -> None:
        """Open the node's backend by URL, tap it, start the node, tap its sockets."""
        import asyncio
        import time

        from hwctl.node.devwait import open_device
        from hwctl.transport import open_backend

        cfg = self.node.cfg  # waits for the device as the node does (not recorded: before it)
        backend = self.tap_backend(await open_device(
            cfg.backend, name=cfg.name, wait_s=cfg.device_wait_s, opener=open_backend,
            sleep=asyncio.sleep, now=time.monotonic))
        await self.node.start(backend)
        self.tap_sockets()


class _TapRouter:
    def __init__(self, sock: Any, rec: Recorder) -> None:
        self._sock, self._rec = sock, rec

    async def recv_multipart(self, *a: Any, **kw: Any) -> list:
        frames = await self._sock.recv_multipart(*a, **kw)
        parts = [f.bytes if hasattr(f, "bytes") else bytes(f) for f in frames]
        node = self._rec.node
        if node._curve is not None and parts:  # the sender is who its CurveZMQ key says
            parts[0] = (node._sender(frames) or "").encode()
        self._rec._write({"rx": [_b64(p) for p in parts], "k": self._rec._key(),
                          "t": timebase.seconds()})
        return frames

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _TapDealer:
    def __init__(self, sock: Any, rec: Recorder, peer: str) -> None:
        self._sock, self._rec, self._peer = sock, rec, peer

    def send_multipart(self, parts: list[bytes], *a: Any, **kw: Any) -> Any:
        entry: dict[str, Any] = {"o": self._peer, "p": [_b64(bytes(p)) for p in parts],
                                 "k": self._rec._key()}
        try:
            r = self._sock.send_multipart(parts, *a, **kw)
        except Exception as exc:
            entry["x"] = type(exc).__name__
            self._rec._write(entry)
            raise
        self._rec._write(entry)
        return r

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


# ---------------------------------------------------------------------------- reading
@dataclass(repr=False)
class Recording:
    """A recording read back: header, entries, and why it ends where it does."""

    def __repr__(self) -> str:  # short: asyncio formats a finished task's result at times
        return f"Recording({str(self.path)!r}, {len(self.entries)} entries)"

    path: Path
    header: dict
    entries: list[dict]
    end: dict | None  # the node's final counters; None when the recording was cut
    truncated: str | None  # why the recording stops early (None: it ends cleanly)

    @property
    def span_s(self) -> float:
        """Host seconds from the first to the last timestamped entry."""
        ts = [e["t"] for e in self.entries if "t" in e and "n" not in e]
        return (max(ts) - min(ts)) if ts else 0.0


def load(path: str | Path) -> Recording:
    """Read a recording; a cut last line or a missing ``end`` is reported in ``truncated``, a
    file that is not a recording is a :class:`UserError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"recording {str(path)!r} not found") from None
    except OSError as exc:
        raise UserError(f"cannot read the recording {str(path)!r}: {exc.strerror}") from None
    lines = raw.split(b"\n")
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UserError(f"{path}: not an hwctl recording (hwctl node --record writes them)")
    if header.get("version") not in READS_VERSIONS:
        raise UserError(f"{path}: recording format {header.get('version')}, this hwctl reads "
                        f"{', '.join(map(str, READS_VERSIONS))}")
    entries: list[dict] = []
    end = None
    truncated = None
    body, last = lines[1:-1], lines[-1]  # a whole file ends with "\n": last is b""
    try:  # every line at once (one parse, not one per line); a damaged line: line by line
        whole = json.loads(b"[" + b",".join(body) + b"]")
    except ValueError:
        whole = None
    if whole is not None and len(whole) == len(body) and all(type(e) is dict for e in whole):
        for i, e in enumerate(whole):
            if "end" in e:
                end = e["end"]
                break
            e["_line"] = i + 2
            entries.append(e)
        body = []
    for i, line in enumerate(body):
        try:
            e = json.loads(line)
        except ValueError:
            truncated = f"line {i + 2} is damaged; replayed up to line {i + 1}"
            break
        if "end" in e:
            end = e["end"]
            break
        e["_line"] = i + 2  # line of the file (the header is line 1)
        entries.append(e)
    if truncated is None and end is None:
        cut = " (its last line is cut)" if last else ""
        truncated = (f"the recording ends at line {len(entries) + 1} without the node's end "
                     f"record{cut}: the node or its host stopped while recording; replayed up "
                     "to there")
    return Recording(path, header, entries, end, truncated)


# ---------------------------------------------------------------------------- replay
class ReplayDiverged(BaseException):
    """The node did something the recording does not show (a bug, or a recording of other code).
    A BaseException, like a cancellation: the node's catch-all handlers must not count it."""


class ReplayEnded(BaseException):
    """The recording ends in the middle of a step of the node (a cut recording): that step stops
    there, so nothing after the last recorded input is made up."""


@dataclass(repr=False)
class ReplayResult:
    """What :func:`replay` gives back: the node after the replay, and how the replay went."""

    def __repr__(self) -> str:  # short: asyncio.run formats the main task's result at its end
        return (f"ReplayResult({self.recording!r}, consumed {self.consumed}/{self.total}, "
                f"diverged {self.diverged!r})")

    node: NodeService
    recording: Recording
    consumed: int  # entries replayed (inputs, clock readings, task steps, messages sent)
    total: int  # entries in the recording
    diverged: str | None = None
    wall_s: float = 0.0
    sends_checked: int = 0
    commands_checked: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        return self.recording.span_s / self.wall_s if self.wall_s > 0 else math.inf


class _Frame:
    __slots__ = ("bytes",)

    def __init__(self, b: bytes) -> None:
        self.bytes = b


#: entry kinds a task consumes (an input from outside), by the kind of wait
_CONSUMES = {"event": ("e", "hb", "or", "ex"), "cmd": ("c",), "rx": ("rx",), "wake": ("w",),
             "open": ("open",)}
#: turns of the event loop without progress after which the replay is stuck
STALL_TURNS = 2000


class _Replayer:
    """The replay's device, sockets, clock and waits, and the gate that runs the node's task
    steps in the recorded order (one cursor over the recorded entries)."""

    def __init__(self, rec: Recording, node: NodeService) -> None:
        self.rec = rec
        self.node = node
        self.loop = asyncio.get_running_loop()
        self.prefix = f"{node.cfg.name}/"
        self.entries = [e for e in rec.entries if "backend" not in e]
        self.cursor = 0
        self.rest_from: int | None = None  # where the node's stop begins in the recording
        self.active = True
        #: task key -> (wait kind, future, command name and args) of a task waiting for an input
        self.waiting: dict[str, tuple[str, asyncio.Future, tuple | None]] = {}
        self.diverged: str | None = None
        self.sends_checked = 0
        self.commands_checked = 0
        self.last_t = rec.header.get("started_s", 0.0)
        self.handed: str | None = None  # the task whose input the driver just handed over
        self.checking_sends = True
        self.tail: deque[float] = deque()  # clock readings of "main" left when the replay ends
        #: the node's timer callbacks (NodeService._call_later) by serial, run where recorded
        self.callbacks: dict[int, Callable[[], None]] = {}
        self._cb_serial = 0
        self.backend: Any = None  # the recorded device (every link the node opens: the same)
        self.key = _TaskKeys(self.prefix, self.loop)
        self._n = len(self.entries)
        #: format 3 records the link-retry readings; older recordings answer from the backend
        self.retries_recorded = rec.header.get("version", 0) >= 3
        #: format 4 records the link-loss readings too
        self.losses_recorded = rec.header.get("version", 0) >= 4
        #: block mode reads CNT_PINNED at start since format 4 (hwctl.hdrpath.enable_blocks);
        #: an older recording's node did not, and the replay's skips it (notes say so)
        self.pins_read_at_start = rec.header.get("version", 0) >= 4
        #: since format 5 the re-sync after a device restart turns HEADER_EN on again when the
        #: go ran (NodeService.enable_headers, hwctl.recovery._resync); an older recording's
        #: node did not, and the replay's does not either
        self.headers_reenabled = rec.header.get("version", 0) >= 5
        self.notes: list[str] = []

    def at(self, i: int | None = None) -> dict | None:
        i = self.cursor if i is None else i
        return self.entries[i] if i < self._n else None

    def diverge(self, why: str) -> BaseException:
        """Stop here: the recording ended (a cut file) or the node left it (diverged)."""
        self.active = False
        if self.cursor >= len(self.entries):
            return ReplayEnded()
        if self.diverged is None:
            self.diverged = f"diverged at line {self.entries[self.cursor]['_line']}: {why}"
        return ReplayDiverged(self.diverged)

    # -- the gate (hook of _Stepped)
    def step(self, thrown: bool) -> bool:
        key = self.key()
        if key == "main":
            return True
        if not self.active:
            # the replay is over: no step the recording does not have runs (a task woken at the
            # very end would change the results); only the cancellations that stop the node
            return thrown
        e = self.at()
        if e is not None and e.get("s") == key:
            # a step the recording began by throwing into the task is either a timed wait that
            # timed out (its end was just handed over) or the node being stopped (not replayed)
            if e.get("x") and self.handed != key:
                return False
            self.handed = None
            self.cursor += 1
            return True
        return False

    # -- the node's clock and waits
    def now(self) -> float:
        e = self.at()
        if not self.active:
            # after the replay: the readings the recorder's final snapshot made (outside the
            # node's tasks), so the replay's snapshot reads the same clock
            return self.tail.popleft() if self.tail and self.key() == "main" else self.last_t
        if e is None or e.get("n") != self.key():
            raise self.diverge(f"the node reads its clock in task {self.key()}; the recording "
                               f"has {_describe(e)}")
        self.cursor += 1
        self.last_t = e["t"]
        return e["t"]

    def link_retries(self, b: Any) -> int:
        """The link's retry counter as the recorded node read it at this point."""
        if not self.active or not self.retries_recorded:
            return b.stats.retries  # (the recorded link's final figure: never changes)
        e = self.at()
        if e is None or e.get("lr") != self.key():
            raise self.diverge(f"the node reads its link's retries in task {self.key()}; the "
                               f"recording has {_describe(e)}")
        self.cursor += 1
        return e["v"]

    def link_losses(self, b: Any) -> int:
        """The link's lost-frame counter as the recorded node read it at this point."""
        if not self.active or not self.losses_recorded:
            return b.stats.events_lost + b.stats.rx_frame_errors  # (final figures: unchanging)
        e = self.at()
        if e is None or e.get("ll") != self.key():
            raise self.diverge(f"the node reads its link's losses in task {self.key()}; the "
                               f"recording has {_describe(e)}")
        self.cursor += 1
        return e["v"]

    async def wake(self, *_: Any) -> None:
        await self.consume("wake")

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """The node's timer callback: run by the driver where the recording has it run."""
        self._cb_serial += 1
        self.callbacks[self._cb_serial] = fn

    async def open_backend(self, url: str) -> Any:
        """A reconnect: the device link the recording shows opening (or failing to)."""
        e = await self.consume("open")
        if "x" in e:
            raise _rebuild_err(e["x"])
        return self.backend

    # -- inputs
    async def consume(self, kind: str, cmd: tuple | None = None) -> dict:
        """The recorded input this call of the node gets: at once when the recording shows it
        in the same step (the real call did not wait), else when the driver hands it over."""
        key = self.key()
        e = self.at()
        if self.active and e is not None and self._is_input(e, kind, key, cmd):
            self.cursor += 1
            return e
        fut = self.loop.create_future()
        self.waiting[key] = (kind, fut, cmd)
        e = await fut
        if self.at() is not e:  # the gate let this task's step begin just before it
            raise self.diverge(f"task {key} resumed out of turn")
        self.cursor += 1
        return e

    def _is_input(self, e: dict, kind: str, key: str, cmd: tuple | None) -> bool:
        if not any(k in e for k in _CONSUMES[kind]) or e.get("k", e.get("w")) != key:
            return False
        if kind == "cmd":
            if cmd is not None and _is_token(cmd[0], list(cmd[1])) and _is_token(e["c"], e["a"]):
                pass  # a fresh random SCRATCH token: the recorded one is used (_ReplayBackend)
            elif cmd is None or (e["c"], e["a"]) != (cmd[0], list(cmd[1])):
                raise self.diverge(f"the node sends the device {cmd and cmd[0]}"
                                   f"{cmd and tuple(cmd[1])}, the recording answers "
                                   f"{e['c']}{tuple(e['a'])}")
            self.commands_checked += 1
        return True

    def send(self, peer: str, parts: list[bytes]) -> None:
        if not self.active or not self.checking_sends:
            return
        e = self.at()
        got = [_b64(bytes(p)) for p in parts]
        if e is None or e.get("o") != peer or e["p"] != got:
            raise self.diverge(f"the node sends {_show(parts)} to {peer}; the recording has "
                               f"{_describe(e)}")
        self.cursor += 1
        self.sends_checked += 1
        if e.get("x") == "Again":
            import zmq

            raise zmq.Again()

    # -- the driver
    def hand_over(self) -> None:
        """If the entry at the cursor starts a step of a task that waits for an input, and the
        input follows, give it to the task. A step of a waiting task with no input after it
        happened inside the real transport (a retry): nothing to replay, skipped."""
        e = self.at()
        if e is None:
            return
        if "cb" in e:  # a timer callback of the node ran here
            fn = self.callbacks.pop(e["cb"], None)
            if fn is None:
                raise self.diverge(f"the recording runs timer callback {e['cb']}, which the node "
                                   "has not set")
            self.cursor += 1
            fn()
            return
        key = e.get("s")
        if key is None:  # an input taken by an ungated task (starting the node)
            key = e.get("k", e.get("w"))
            w = self.waiting.get(key) if key == "main" else None
            try:
                if w is not None and self._is_input(e, w[0], key, w[2]):
                    del self.waiting[key]
                    w[1].set_result(e)
            except ReplayDiverged as exc:
                w[1].set_exception(exc)  # type: ignore[index]
            return
        w = self.waiting.get(key)
        if w is None:
            return  # the task is runnable (or will be, by another task's step)
        nxt = self.at(self.cursor + 1)
        try:
            if nxt is not None and self._is_input(nxt, w[0], key, w[2]):
                del self.waiting[key]
                self.handed = key
                w[1].set_result(nxt)
                return
        except ReplayDiverged as exc:
            w[1].set_exception(exc)
            return
        self.cursor += 1

    def rest_is_shutdown(self) -> bool:
        """Only what the node did after it stopped remains: its tasks' cancellations, timer
        callbacks that fired while they were cancelled, and the final snapshot's clock readings
        and messages (outside the node's tasks)."""
        return all("s" in e or "cb" in e or e.get("k", e.get("n")) == "main"
                   for e in self.entries[self.cursor:])


def _is_token(name: str, args: list) -> bool:
    """WRITE_REG of SCRATCH: the supervisor's random device-life token (hwctl.recovery)."""
    from hwctl.wire import Reg

    return name == "write_reg" and len(args) == 2 and args[0] == int(Reg.SCRATCH)


def _is_go(e: dict) -> bool:
    """A command of the host's go between start and run (NodeService.enable_headers): the
    CONTROL write that turns HEADER_EN on."""
    from hwctl.wire import ControlBit, Reg

    a = e.get("a")
    return (e.get("c") == "write_reg" and isinstance(a, list) and len(a) == 2
            and a[0] == int(Reg.CONTROL) and bool(int(a[1]) >> ControlBit.HEADER_EN & 1))


def _describe(e: dict | None) -> str:
    if e is None:
        return "nothing more"
    if "s" in e:
        return f"a step of task {e['s']} next"
    if "n" in e:
        return f"a clock reading of task {e['n']} next"
    if "lr" in e:
        return f"a link-retry reading of task {e['lr']} next"
    if "ll" in e:
        return f"a link-loss reading of task {e['ll']} next"
    if "o" in e:
        return f"{_show([_unb64(p) for p in e['p']])} to {e['o']} next"
    if "c" in e:
        return f"the answer to {e['c']}{tuple(e['a'])} next"
    return f"an input of task {e.get('k', e.get('w'))} next"


def _show(parts: list[bytes]) -> str:
    text = b" | ".join(parts)
    return repr(text[:120]) + ("..." if len(text) > 120 else "")


def _header_block(arrays: list[list[int]]) -> HeaderBlock:
    ev, seq, ts, slot = arrays
    return HeaderBlock(np.asarray(ev, dtype=np.uint8), np.asarray(seq, dtype=np.int64),
                       np.asarray(ts, dtype=np.uint64), np.asarray(slot, dtype=np.int64))


class _ReplayBackend:
    """The device as the recording shows it (what the node uses of a Backend)."""

    def __init__(self, rp: _Replayer, url: str, clock_hz: float, health: dict) -> None:
        self._rp = rp
        self.url = url
        self.clock_hz = clock_hz
        self.header_blocks = True
        self.device_kind = "node"
        self.stats = LinkStats(**{k: v for k, v in health.items()
                                  if k in LinkStats.__dataclass_fields__})
        self._health = health

    @property
    def reads_pins_at_start(self) -> bool:
        """Whether block mode's start reads CNT_PINNED (hwctl.hdrpath.enable_blocks): not in a
        recording made before it did (format <= 3), where the recorded node skipped it."""
        rp = self._rp
        if not rp.pins_read_at_start:
            rp.notes.append(f"format {rp.rec.header.get('version')} recording: block mode's "
                            "start-up CNT_PINNED read (format 4) skipped, as the recorded node "
                            "made none")
        return rp.pins_read_at_start

    def __getattr__(self, name: str) -> Any:
        if name in COMMANDS:
            async def command(*args: Any) -> Any:
                e = await self._rp.consume("cmd", (name, args))
                if _is_token(name, list(args)):  # the token the device holds: the recorded one
                    sup = getattr(self._rp.node, "recovery", None)
                    if sup is not None:
                        sup.token = e["a"][1]
                if "x" in e:
                    raise _rebuild_err(e["x"])
                if "rm" in e:
                    return _msg(e["rm"])
                return e.get("r")

            return command
        raise AttributeError(name)

    async def next_event(self, timeout: float | None = None) -> Any:
        e = await self._rp.consume("event")
        if "ex" in e:
            raise _rebuild_err(e["ex"])
        if "hb" in e:
            return _header_block(e["hb"])
        if "or" in e:
            return OrderedResponse(_msg(e["or"][0]), _msg(e["or"][1]))
        return _msg(e["e"])

    def health(self) -> dict:
        return dict(self._health)

    async def close(self) -> None:
        return None


class _ReplayCtx:
    """The node's ZeroMQ context in the replay: sockets that bind and connect nowhere."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.rp: _Replayer | None = None
        self._peer_of = {p.endpoint: p.name for p in cfg.peers}

    def socket(self, kind: int) -> Any:
        import zmq

        assert self.rp is not None
        if kind == zmq.ROUTER:
            return _ReplayRouter(self.rp)
        return _ReplayDealer(self.rp, "", self._peer_of)


class _ReplayRouter:
    def __init__(self, rp: _Replayer) -> None:
        self._rp = rp
        self.linger = 0

    def setsockopt(self, *_: Any) -> None:
        return None

    def bind(self, *_: Any) -> None:
        return None

    async def recv_multipart(self, *_: Any, **__: Any) -> list:
        e = await self._rp.consume("rx")
        return [_Frame(_unb64(p)) for p in e["rx"]]

    def close(self, *_: Any) -> None:
        return None


class _ReplayDealer:
    def __init__(self, rp: _Replayer, peer: str, peer_of: dict[str, str] | None = None) -> None:
        self._rp, self._peer, self._peer_of = rp, peer, peer_of or {}
        self.linger = 0

    def setsockopt(self, *_: Any) -> None:
        return None

    def connect(self, endpoint: str) -> None:
        self._peer = self._peer_of.get(endpoint, endpoint)

    def send_multipart(self, parts: list[bytes], *_: Any, **__: Any) -> None:
        self._rp.send(self._peer, parts)

    def close(self, *_: Any) -> None:
        return None


async def replay(path: str | Path | Recording) -> ReplayResult:
    """Re-run the recorded node's host logic from ``path`` (module docstring): no device, no
    network, no waiting. The returned node holds the replayed records, pairs and counters."""
    from hwctl.node import NodeService

    rec = path if isinstance(path, Recording) else load(path)
    h = rec.header
    try:
        cfg = config_from_dict(h["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{rec.path}: the recording's node configuration is not readable by this "
                        f"hwctl ({exc})") from None
    ctx = _ReplayCtx(cfg)
    state = h.get("state") or {}
    node = NodeService(cfg, rid_base=int(h["rid_base"]), ctx=ctx,  # type: ignore[arg-type]
                       incarnation=state.get("esp_incarnation"))
    rp = _Replayer(rec, node)
    ctx.rp = rp
    meta = next((e["backend"] for e in rec.entries if "backend" in e), {})
    node.now = rp.now  # type: ignore[method-assign]
    node._sleep = rp.wake  # type: ignore[method-assign]
    node._wait = rp.wake  # type: ignore[method-assign]
    node._call_later = rp.call_later  # type: ignore[method-assign]
    node._open_backend = rp.open_backend  # type: ignore[method-assign]
    node.recovery.link_retries = rp.link_retries  # type: ignore[method-assign]
    node.recovery.link_losses = rp.link_losses  # type: ignore[method-assign]
    backend = _ReplayBackend(rp, meta.get("url", cfg.backend), float(meta.get("clock_hz", CLOCK_HZ)),
                             (rec.end or {}).get("link") or {})
    rp.backend = backend
    node.bench_snapshot = h.get("instruments")
    if any("unsupported" in e for e in rec.entries):
        why = next(e["unsupported"] for e in rec.entries if "unsupported" in e)
        raise UserError(f"{rec.path}: the session used {why}, which the replay does not support "
                        "yet")
    import tempfile

    scratch = tempfile.TemporaryDirectory(prefix="hwctl-replay-")
    _restore_state(node, state, Path(scratch.name))

    async def start_node() -> None:
        """NodeService.start on the recorded device and replay sockets (nothing is opened); what
        it sends was not recorded (the recorder taps the sockets after start) and is not checked."""
        rp.checking_sends = False
        try:
            await node.start(backend)  # type: ignore[arg-type]
        finally:
            rp.checking_sends = True

    loop = asyncio.get_running_loop()
    old_factory = loop.get_task_factory()
    _STEPPED[id(node)] = rp
    _install_task_factory(loop)
    t0 = time.perf_counter()
    start = asyncio.create_task(start_node(), name="replay/start")
    run: asyncio.Task | None = None
    notes: list[str] = []
    try:
        stall, last = 0, -1
        while rp.active and rp.cursor < len(rp.entries):
            if run is None and start.done():
                start.result()
                # what the host did to the device between start and run (e.g. the demo enabling
                # the header decoders): not the node's logic, nothing to replay
                while (e := rp.at()) is not None and e.get("k") == "main" and "c" in e:
                    if _is_go(e) and rp.headers_reenabled:  # the go (enable_headers): the
                        node._headers_wanted = True  # node wants headers on every device life
                    rp.cursor += 1
                run = asyncio.create_task(node.run(), name="replay/run")
            if run is not None and run.done():
                break
            rp.hand_over()
            await asyncio.sleep(0)
            if rp.cursor != last:
                stall, last = 0, rp.cursor
                continue
            stall += 1
            if stall >= STALL_TURNS:
                if rp.rest_is_shutdown():
                    rp.rest_from = rp.cursor
                    rp.cursor = len(rp.entries)  # the node's stop: replayed by stopping it
                else:
                    rp.diverge(f"the node waits, the recording has {_describe(rp.at())}")
                break
        if run is None and start.done() and not rp.diverged:
            start.result()
    finally:
        consumed = rp.cursor
        rest = rp.entries[rp.cursor if rp.rest_from is None else rp.rest_from:]
        rp.tail.extend(e["t"] for e in rest if e.get("n") == "main")
        rp.active = False  # from here on only the node's stop runs (see _Replayer.step)
        node.stop()
        if run is not None:
            try:
                await run
            except (ReplayDiverged, ReplayEnded):
                pass
            except Exception as exc:
                if not rp.diverged:
                    notes.append(f"the node stopped with {exc!r}")
            if not rp.diverged:  # timer callbacks that ran while the node stopped, in order
                for e in rest:  # (their clock readings come first in the tail)
                    fn = rp.callbacks.pop(e["cb"], None) if "cb" in e else None
                    if fn is not None:
                        fn()
        elif not start.done():
            start.cancel()
        elif not start.cancelled():
            start.exception()  # (a divergence in start: reported as such, no "never retrieved")
        _STEPPED.pop(id(node), None)
        loop.set_task_factory(old_factory)
        if node.journal is not None:
            node.journal.close()
        scratch.cleanup()
    res = ReplayResult(node, rec, consumed, len(rp.entries), rp.diverged,
                       time.perf_counter() - t0, rp.sends_checked, rp.commands_checked,
                       rp.notes + notes)
    return res


def summary(res: ReplayResult) -> dict:
    """The replay's figures (``hwctl replay`` prints them; ``--json`` as one document)."""
    node = res.node
    done = [r for r in node.records.values() if r.t_finish is not None]
    lat = sorted(r.latency for r in done if r.latency is not None)
    snap = node.snapshot()
    d = {
        "node": node.cfg.name, "recording": str(res.recording.path),
        "entries": res.total, "consumed": res.consumed,
        "complete": res.recording.truncated is None, "truncated": res.recording.truncated,
        "diverged": res.diverged, "recorded_s": res.recording.span_s, "replay_s": res.wall_s,
        "speedup": res.speedup if math.isfinite(res.speedup) else None,
        "requests": len(node.records), "completed": len(done),
        "mean_latency_s": sum(lat) / len(lat) if lat else None,
        "heralds": node.counters.heralds, "verified_pairs": len(node.pair_rows()),
        "sends_checked": res.sends_checked, "commands_checked": res.commands_checked,
        "counters": {k: v for k, v in snap.items() if k != "link"},
        "notes": list(res.notes),
    }
    end = res.recording.end or {}
    if isinstance(d["counters"].get("journal"), dict) and isinstance(end.get("journal"), dict):
        # the replay's journal is a scratch copy of the recorded one: name the original
        d["counters"]["journal"]["path"] = end["journal"].get("path")
    if res.recording.end is not None:
        want = {k: v for k, v in res.recording.end.items() if k != "link"}
        diff = _diff(want, json.loads(json.dumps(d["counters"])))
        d["same_counters_as_recorded"] = not diff
        if diff:
            d["counter_differences"] = diff
    return d


_ABSENT = object()


def _diff(want: Any, got: Any, path: str = "") -> list[str]:
    """Where two JSON documents differ: ``key.sub: recorded X, replayed Y`` lines. A counter
    the recording has no key for (one added to hwctl since it was made) that the replay has at
    0 is no difference: the recorded node had nothing to count there either."""
    if isinstance(want, dict) and isinstance(got, dict):
        return [x for k in sorted(set(want) | set(got), key=str)
                for x in _diff(want.get(k, _ABSENT), got.get(k),
                               f"{path}.{k}" if path else str(k))]
    if want is _ABSENT:
        if got == 0 and not isinstance(got, bool):
            return []
        want = None
    return [] if want == got else [f"{path}: recorded {want!r}, replayed {got!r}"]


# ---------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", help="a file written by `hwctl node --record FILE` (or one "
                                          "of `hwctl demo --record DIR`)")
    parser.add_argument("--out", default=None, metavar="DIR", type=argtypes.out_dir,
                        help="write the replayed results as DIR/NAME.parquet (requests) and, "
                             "with [verification], DIR/NAME.pairs.parquet, in the shared schema "
                             "(docs/data.md), metadata saying they were replayed")
    parser.add_argument("--force", action="store_true", help=argtypes.FORCE_HELP)
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON document on stdout")


def run(args: argparse.Namespace) -> int:
    import sys

    from hwctl.output import print_json

    rec = load(args.recording)
    if args.out:  # the node's own results may be there: never replaced by the replay's
        name = str(rec.header.get("config", {}).get("name", ""))
        argtypes.refuse_existing([Path(args.out) / f"{name}.parquet",
                                  Path(args.out) / f"{name}.pairs.parquet"], "--out",
                                 force=args.force)
    res = asyncio.run(replay(rec))
    d = summary(res)
    if args.out:
        from hwctl.node import write_results

        node = res.node
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"parameters": rec.header["config"], "seed": rec.header["config"].get("seed"),
                "replayed_from": str(rec.path), "recorded_code_version":
                rec.header.get("code_version"), "summary": d["counters"],
                "instruments": rec.header.get("instruments"), "replay": {
                    k: d[k] for k in ("complete", "truncated", "diverged", "consumed")}}
        path = write_results(node.result_rows(), meta, out, node.cfg.name,
                             pairs=node.pair_rows() if node.vcore is not None else None)
        d["results"] = str(path)
    if args.json:
        print_json(d)
    else:
        lat = d["mean_latency_s"]
        print(f"replayed {d['node']} from {d['recording']}: {d['consumed']}/{d['entries']} entries, "
              f"{d['recorded_s']:.2f} s recorded in {d['replay_s']:.2f} s; {d['completed']}/"
              f"{d['requests']} requests completed, mean latency "
              f"{'-' if lat is None else f'{1e3 * lat:.2f} ms'}, {d['heralds']} heralds, "
              f"{d['verified_pairs']} verified pairs")
        if "results" in d:
            print(f"results: {d['results']}")
    for note in d["notes"]:
        print(f"hwctl replay: note: {note}", file=sys.stderr)
    if d["truncated"]:
        print(f"hwctl replay: {d['truncated']}", file=sys.stderr)
    if d["diverged"]:
        print(f"hwctl replay: {d['diverged']}", file=sys.stderr)
        return 1
    if d.get("same_counters_as_recorded") is False:
        print("hwctl replay: the replayed counters differ from the recorded ones: "
              + "; ".join(d["counter_differences"]), file=sys.stderr)
        return 1
    return 0
