"""A node service in a process of its own, seen from the parent (``hwctl demo``, issue 13).

In one CPython process the demo's four node services share one event loop and one interpreter
lock: every step of a request (ESP message, SCHEDULE_PAIRS acknowledged, PAIR noticed) waits
behind the other nodes' work, and those waits are most of the demo's latency overhead over the
simulator (docs/node.md "Per-request physical layer: measurements"). In a lab every node is its
own process on its own host. :class:`NodeProcess` forks one :class:`~hwctl.node.NodeService` per
node (the config, an opened bench, everything is inherited: nothing is pickled on the way in) and
keeps a mirror of what the demo's table and live view read (``cfg``, ``counters``, ``records``
of finished requests, ``core.state``, ``backend.stats``, ``vcore.metrics``, ``partner``), updated
from the child every ``UPDATE_S``; at the end it has the child's result rows, verified pairs and
snapshot, so :mod:`hwctl.demo` writes the same result files either way.

Protocol on the pipe: parent -> child ``"go"`` (start the workload; every node is up), ``"stop"``;
child -> parent ``("started",)`` or ``("error", exc)``, ``("update", view)``, and once
``("final", view, rows, pair_rows, snapshot, error)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from hwctl.errors import UserError
from hwctl.node import NodeConfig, NodeCounters, NodeService, RequestRecord
from hwctl.recovery import patient

#: the child sends its counters and newly finished requests this often (s)
UPDATE_S = 0.25


@dataclass
class _View:
    counters: NodeCounters
    state: str
    records: list[RequestRecord]  # finished since the last view
    stats: Any = None  # backend LinkStats
    metrics: Any = None  # verification metrics


@dataclass
class _State:
    value: str = "idle"


@dataclass
class _Core:
    state: _State = field(default_factory=_State)


@dataclass
class _Backend:
    stats: Any


@dataclass
class _VCore:
    metrics: Any


def _view(node: NodeService, sent: set[int]) -> _View:
    new = [r for rid, r in node.records.items() if r.t_finish is not None and rid not in sent]
    sent.update(r.rid for r in new)
    return _View(node.counters, node.core.state.value, new,
                 node.backend.stats if node.backend is not None else None,
                 node.vcore.metrics if node.vcore is not None else None)


async def _child_main(cfg: NodeConfig, rid_base: int, conn: Connection, bench, snap,
                      enable_headers: bool, record: str | None = None) -> None:
    node = NodeService(cfg, rid_base=rid_base)
    node.bench, node.bench_snapshot = bench, snap
    rec = None
    try:
        if record is not None:  # hwctl demo --record (hwctl.record)
            from hwctl.record import Recorder

            rec = Recorder(record, node)
            await rec.start()
        else:
            await node.start()
    except BaseException as exc:
        if rec is not None:
            rec.abandon()
        conn.send(("error", _picklable(exc)))
        return
    loop = asyncio.get_running_loop()
    go, stop = asyncio.Event(), asyncio.Event()

    def on_msg() -> None:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent went away
            msg = "stop"
        (go if msg == "go" else stop).set()
        if msg != "go":
            go.set()
            loop.remove_reader(conn.fileno())

    loop.add_reader(conn.fileno(), on_msg)
    conn.send(("started",))
    await go.wait()
    if enable_headers and not stop.is_set():
        assert node.backend is not None
        async with patient(node.backend):  # before run(): not yet supervised (hwctl.recovery)
            await node.enable_headers()  # (the node owns HEADER_EN: node/verify.py)
    sent: set[int] = set()
    run = asyncio.create_task(node.run())
    while not stop.is_set() and not run.done():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(UPDATE_S):
                await stop.wait()
        conn.send(("update", _view(node, sent)))
    node.stop()
    err = None
    try:
        await run
    except BaseException as exc:
        err = _picklable(exc)
    if rec is not None:
        rec.close() if err is None else rec.abandon()
    conn.send(("final", _view(node, sent), node.result_rows(), node.pair_rows(), node.snapshot(),
               err))


def _picklable(exc: BaseException) -> BaseException:
    return exc if isinstance(exc, UserError) else RuntimeError(repr(exc))


def _child(cfg: NodeConfig, rid_base: int, conn: Connection, bench, snap,
           enable_headers: bool, record: str | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (Ctrl-C reaches us too)
    asyncio.run(_child_main(cfg, rid_base, conn, bench, snap, enable_headers, record))


class NodeProcess:
    """One node service in a forked process; a NodeService-like mirror for the parent."""

    def __init__(self, cfg: NodeConfig, *, rid_base: int, enable_headers: bool = False,
                 record: str | None = None) -> None:
        """``enable_headers``: at :meth:`go`, set CONTROL.HEADER_EN on the device (a lab whose
        header decoders start off, so no header takes a slot before its node is there to free
        it: node processes take a while to start on a loaded machine)."""
        self.cfg = cfg
        self.enable_headers = enable_headers
        self.record = record  # the child records its session there (hwctl.record)
        self.rid_base = rid_base
        self.counters = NodeCounters()
        self.records: dict[int, RequestRecord] = {}
        self.core = _Core()
        self.backend: _Backend | None = None
        self.vcore: _VCore | None = None
        self.partner = cfg.verification.partner if cfg.verification is not None else None
        self.bench = None  # adopted by the child at start (an opened bench)
        self.bench_snapshot: dict | None = None
        self.error: BaseException | None = None
        self._final: tuple | None = None
        self._proc: multiprocessing.Process | None = None
        self._conn: Connection | None = None

    async def start(self) -> None:
        """Fork the node service and wait until it is up (its backend open, sockets bound)."""
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child, name=f"hwctl-node-{self.cfg.name}", daemon=True,
                                 args=(self.cfg, self.rid_base, child, self.bench,
                                       self.bench_snapshot, self.enable_headers, self.record))
        self._proc.start()
        child.close()
        self.bench = None  # the child's now (it closes it)
        try:
            msg = await asyncio.to_thread(self._conn.recv)
        except EOFError:
            msg = ("error", RuntimeError(f"node {self.cfg.name}: process ended at start"))
        if msg[0] == "error":
            await self.close()
            raise msg[1]

    def go(self) -> None:
        """Start the workload (call once every node is up)."""
        assert self._conn is not None
        self._conn.send("go")

    def poll(self) -> None:
        """Take the child's updates; a failed child raises its error here."""
        conn = self._conn
        while conn is not None and self._final is None and conn.poll():
            try:
                self._take(conn.recv())
            except EOFError:
                self.error = RuntimeError(f"node {self.cfg.name}: process ended")
                break
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        if self._conn is not None and self._final is None:
            with contextlib.suppress(OSError):
                self._conn.send("stop")

    async def finish(self) -> None:
        """Wait for the child's final state (after :meth:`stop`)."""
        conn = self._conn
        while conn is not None and self._final is None:
            try:
                self._take(await asyncio.to_thread(conn.recv))
            except EOFError:
                self.error = self.error or RuntimeError(f"node {self.cfg.name}: process ended")
                break

    def _take(self, msg: tuple) -> None:
        if msg[0] in ("update", "final"):
            v: _View = msg[1]
            self.counters = v.counters
            self.core.state.value = v.state
            for r in v.records:
                self.records[r.rid] = r
            self.backend = _Backend(v.stats) if v.stats is not None else None
            self.vcore = _VCore(v.metrics) if v.metrics is not None else None
        if msg[0] == "final":
            self._final = msg[2:5]
            if msg[5] is not None:
                self.error = msg[5]

    # ------------------------------------------------------------------ results (after finish)
    def result_rows(self) -> list[dict]:
        return self._final[0] if self._final else []

    def pair_rows(self) -> list[dict]:
        return self._final[1] if self._final else []

    def snapshot(self) -> dict:
        return self._final[2] if self._final else {}

    async def close(self) -> None:
        p = self._proc
        if p is not None and p.is_alive():
            self.stop()
            await asyncio.to_thread(p.join, 10)
            if p.is_alive():  # pragma: no cover - a hung child
                p.kill()
                p.join()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
