"""Serve a software twin on a pseudo-terminal or a ZeroMQ socket (also ``hwctl twin``).

- :class:`PtyTwinServer`: the twin behind a pty; pyserial opens the slave side like a real UART
  (``serial:///dev/pts/N`` or the ``--link`` symlink). Output is paced at the modelled UART rate
  (3 Mbaud 8N1), so a pty behaves like the real line even though ptys ignore baud rates.
- :class:`ZmqTwinServer`: the twin behind a ZeroMQ ROUTER speaking :mod:`hwctl.transport.zmqwire`,
  exactly like the board bridge (``zmq+tcp://host:port``).

Both run the sans-IO model in a background thread with a :class:`~hwctl.sim.twin.pacing.Pacer`
(``realtime`` or ``virtual`` time; behind real time, the model catches up in 5 ms slices, as the
lab's server does: :class:`~hwctl.sim.twin.pacing.CatchUp`). ``hwctl twin`` runs one in the
foreground:

    hwctl twin --pty --link /tmp/twin0          # then: hwctl node ... backend serial:///tmp/twin0
    hwctl twin --zmq tcp://127.0.0.1:5555 --mode virtual --seed 3
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import select
import threading
import time
import tty
from collections.abc import Callable

from hwctl import argtypes
from hwctl.sim.twin.lab import claim_lock
from hwctl.sim.twin.model import TwinConfig, TwinModel
from hwctl.sim.twin.pacing import (
    BACKLOG_MAX,
    MAX_WAIT,
    LatencyTimer,
    Pacer,
    TimeMode,
    UartBacklog,
    precise_timers,
)
from hwctl.transport.devserver import DeviceSessions, ServerLimits, Step, configure_router, send
from hwctl.transport.security import (
    CurveServer,
    KeyPair,
    add_curve_arguments,
    curve_from_args,
    require_curve_off_loopback,
)
from hwctl.wire import Reg


class _ServerBase:
    kind = "twin"

    def __init__(self, model: TwinModel, *, mode: TimeMode | str = TimeMode.REALTIME,
                 speed: float = 1.0, idle_grace: float = 2e-4,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``clock``: the wall clock real time follows (tests pass a fake one). Behind it, the
        model catches up in slices (:class:`~hwctl.sim.twin.pacing.CatchUp`, in the pacer)."""
        self.model = model
        self.pacer = Pacer(model, mode, speed=speed, idle_grace=idle_grace, clock=clock)
        self.lock = threading.Lock()  # held while the model is touched (for snapshots)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.error: BaseException | None = None

    def start(self, t0: float | None = None):
        """Serve in a background thread; ``t0`` (on the pacer's clock, time.monotonic() by
        default) anchors cycle ``model.now``."""
        self.pacer.restart(t0)
        self._thread = threading.Thread(target=self._main, name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _main(self) -> None:
        precise_timers()  # deadlines to the microsecond, not 50 us late (pacing.precise_timers)
        try:
            self._loop()
        except BaseException as exc:  # surfaced by status() / the CLI, never silent
            self.error = exc

    def status(self) -> dict:
        with self.lock:
            return {
                "kind": self.kind,
                "ok": self.error is None,
                "mode": self.pacer.mode.value,
                "now": self.model.now,
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
                "error": repr(self.error) if self.error else None,
            }

    def _step(self, data: bytes | None) -> bytes:
        with self.lock:
            if data:
                self.bytes_in += len(data)
                self.pacer.on_input(data)
            else:
                self.pacer.on_idle()
            out = self.model.read()
        self.bytes_out += len(out)
        return out

    def _wake(self) -> None: ...
    def _close(self) -> None: ...
    def _loop(self) -> None: ...


class PtyTwinServer(_ServerBase):
    """Twin behind a pseudo-terminal. ``port`` is the slave path to open with pyserial."""

    def __init__(self, model: TwinModel, *, link: str | None = None,
                 backlog_max: int = BACKLOG_MAX, **kw) -> None:
        """``backlog_max``: device bytes held for a host that does not read before the line
        overruns (real time; :class:`~hwctl.sim.twin.pacing.UartBacklog`)."""
        super().__init__(model, **kw)
        self._lock_fd: int | None = self._claim_link(link) if link else None
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: a byte pipe like a UART
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self.link = link
        if link:
            if os.path.islink(link):  # (a stale one: the lock says no twin serves there)
                os.unlink(link)
            os.symlink(self.port, link)
        self._wake_r, self._wake_w = os.pipe()
        self.backlog = UartBacklog(backlog_max)
        self.timer = LatencyTimer()

    @staticmethod
    def _claim_link(link: str) -> int:
        """One twin per ``--link``: a second one would replace the link under the first one's
        host, and the first remove it when it stops (the second still running, its link gone).
        An advisory lock on ``.<name>.hwctl-twin.lock`` beside the link, held while the twin
        serves (released when it stops, or its process dies: a link left by a dead twin is
        replaced). The lab claims its --link-dir the same way (lab.LabServer._lock_link_dir)."""
        head, name = os.path.split(os.path.abspath(link))
        return claim_lock(os.path.join(head, f".{name}.hwctl-twin.lock"),
                          f"--link {link}: another twin serves on it (its link would be replaced "
                          f"under its host): stop that twin first, or use another --link")

    @property
    def url(self) -> str:
        return f"serial://{self.link or self.port}"

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def status(self) -> dict:
        st = super().status()
        st["overrun_bytes"] = self.backlog.overrun_bytes
        st["overrun_frames"] = self.backlog.overrun_frames
        return st

    def _loop(self) -> None:
        m = self._master
        backlog, timer = self.backlog, self.timer
        realtime = self.pacer.mode is TimeMode.REALTIME  # virtual time: as fast as possible
        while not self._stop.is_set():
            wl = [m] if backlog else []  # only left over when the pty was full
            with self.lock:
                timeout = self.pacer.timeout()
            if realtime:
                timeout = timer.wait(timeout, time.monotonic())
            elif backlog.full():
                timeout = MAX_WAIT  # the pty's becoming writable wakes us
            r, w, _ = select.select([m, self._wake_r], wl, [], timeout)
            if self._wake_r in r:
                os.read(self._wake_r, 64)
            data = b""
            if m in r:
                try:
                    data = os.read(m, 65536)
                except OSError as exc:  # EIO: no slave open right now
                    if exc.errno != errno.EIO:
                        raise
            if realtime or data or not backlog.full():  # virtual time waits for the host
                backlog.push(self._step(data), overrun=realtime)
            if backlog:
                try:
                    backlog.sent(os.write(m, backlog.buf))
                    timer.wrote(time.monotonic())
                except BlockingIOError:
                    pass

    def _close(self) -> None:
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)
        if self._lock_fd is not None:  # (after the link: the next twin makes its own)
            os.close(self._lock_fd)
            self._lock_fd = None


class ZmqTwinServer(_ServerBase):
    """Twin behind a ZeroMQ ROUTER (same message format as the board bridge)."""

    def __init__(self, model: TwinModel, endpoint: str = "tcp://127.0.0.1:0", *,
                 limits: ServerLimits | None = None, keys: KeyPair | None = None,
                 allow: dict[bytes, str] | None = None, **kw) -> None:
        """``keys`` + ``allow``: CurveZMQ, only allowlisted client keys get in
        (hwctl.transport.security); without them it serves on loopback only."""
        import zmq

        from hwctl.errors import UserError

        if (keys is None) != (allow is None):
            raise UserError("a served twin needs both a key pair and an allowlist, or neither")
        require_curve_off_loopback(endpoint, keys is not None, "twin --zmq")
        super().__init__(model, **kw)
        #: client table, command serialiser and drop counters (hwctl.transport.devserver)
        self.sessions = DeviceSessions(limits)
        self._ctx = zmq.Context()  # its own: the ZAP handler (allowlist) is per context
        self.curve = CurveServer(self._ctx, keys, allow) if keys is not None and allow else None
        self._sock = self._ctx.socket(zmq.ROUTER)
        configure_router(self._sock, self.sessions.limits)
        if self.curve is not None:
            self.curve.secure(self._sock)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError:
            self._close()
            raise
        self.endpoint = self._sock.getsockopt(zmq.LAST_ENDPOINT).decode()

    @property
    def url(self) -> str:
        return "zmq+" + self.endpoint

    def status(self) -> dict:
        return {**super().status(), "curve": self.curve is not None,
                "auth_refused": self.curve.refused if self.curve else 0,
                **self.sessions.counters()}

    def _loop(self) -> None:
        import zmq

        from hwctl.transport.zmqwire import CONTROL

        sock, sessions = self._sock, self.sessions
        next_expiry = 0.0

        def apply(step: Step, data: bytearray) -> None:
            data += step.to_device
            for ident, parts in step.to_clients:
                send(sock, ident, parts, sessions)
            for ident in step.status_for:
                send(sock, ident, [CONTROL, json.dumps(self.status()).encode()], sessions)

        carry = bytearray()  # a queued command whose turn came with the last device output
        while not self._stop.is_set():
            data, carry = carry, bytearray()
            now = time.monotonic()
            if sock.poll(0 if data else int(self.pacer.timeout() * 1000)):
                for _ in range(1000):  # bounded per turn: the model runs in between
                    try:
                        msg = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    apply(sessions.client_message(msg[0], msg[1:], now), data)
            if now >= next_expiry:
                next_expiry = now + 0.5
                apply(sessions.expire(now), data)
            out = self._step(bytes(data))
            if out:
                apply(sessions.device_data(out, time.monotonic()), carry)

    def _close(self) -> None:
        if self.curve is not None:
            self.curve.stop()
        self._ctx.destroy(linger=0)


# ---------------------------------------------------------------------------- CLI
def config_from_args(args: argparse.Namespace) -> TwinConfig:
    kw = dict(
        dark_prob=0.0,
        seed=args.seed,
        header_period=args.header_period,
        header_arrival=args.header_arrival,
    )
    if args.fidelity is not None:
        return TwinConfig.for_fidelity(args.fidelity, dark_rate_hz=args.dark_rate, **{
            k: v for k, v in kw.items() if k != "dark_prob"})
    return TwinConfig(p_photon=args.p_photon, **kw)


def add_physics_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("twin physics")
    g.add_argument("--fidelity", type=argtypes.fidelity, default=None,
                   help="target fidelity F: p = 2(1-F)*eta from hwctl.physics.heralding")
    g.add_argument("--p-photon", type=argtypes.real(0.0, 1.0, what="--p-photon"), default=1e-3,
                   help="per-attempt herald probability when --fidelity is not given (default 1e-3)")
    g.add_argument("--dark-rate", type=argtypes.real(0.0, 1e9, what="--dark-rate"), default=0.0, help="detector dark-count rate in Hz (default 0)")
    g.add_argument("--header-period", type=argtypes.integer(0, 2**32 - 1, what="--header-period"),
                   default=0,
                   help="midpoint header every N device cycles of 10 ns (default 0: no header source)")
    g.add_argument("--header-arrival", type=argtypes.real(0.0, 1.0, what="--header-arrival"),
                   default=1.0,
                   help="probability a header survives the channel (default 1)")
    g.add_argument("--seed", type=argtypes.seed, default=0, help="random seed >= 0 (default 0; virtual time is reproducible)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal (default)")
    where.add_argument("--zmq", metavar="ENDPOINT", type=argtypes.bind_endpoint, help="serve on a ZeroMQ ROUTER, e.g. tcp://127.0.0.1:5555")
    add_curve_arguments(parser)
    parser.add_argument("--link", metavar="PATH", help="with --pty: create a symlink PATH to the pty")
    parser.add_argument("--mode", choices=[m.value for m in TimeMode], default="realtime",
                        help="realtime (default): cycles follow the wall clock; virtual: as fast as possible")
    parser.add_argument("--speed", type=argtypes.real(0.0, 1e6, lo_open=True, what="--speed"),
                        default=1.0, help="realtime clock speed factor, > 0 (default 1)")
    parser.add_argument("--duration", type=argtypes.duration(), default=None,
                        help="stop after this many seconds (default: run until Ctrl-C / SIGTERM)")
    parser.add_argument("--lab", metavar="TOPOLOGY", default=None,
                        help="serve a whole lab on the shared clock: one node device per node of "
                             "TOPOLOGY (2x2, K2, ...) and a heralding station per edge, each on its "
                             "own pty (or, with --zmq, its own ZeroMQ port) (docs/twin.md 'Lab'); "
                             "prints 'NAME URL' per device (stations: 'A-B URL')")
    parser.add_argument("--link-dir", metavar="DIR", default=None,
                        type=argtypes.out_path("--link-dir", directory=True),
                        help="with --lab: symlinks DIR/<node> to the ptys (with --device-link "
                             "unix: the sockets DIR/<node>)")
    parser.add_argument("--device-link", choices=("pty", "unix"), default="pty",
                        help="with --lab: serve each device on a pty (serial://, default) or on a "
                             "Unix stream socket (unix://: the same bytes without the pty's "
                             "kernel worker, lower and steadier latency; docs/twin.md 'Lab')")
    add_physics_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from hwctl.errors import UserError

    console = Console(stderr=True, soft_wrap=True)  # a line stays one line in `2> log`
    if args.link and args.zmq:
        raise UserError("--link is for --pty (a ZeroMQ twin has no device path)")
    if args.key and not args.zmq:
        raise UserError("--key and --allow are for --zmq (a pty has no network peer)")
    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.lab is not None:
        return _run_lab(args, cfg, console)
    model = TwinModel(cfg)
    try:
        if args.zmq:
            keys, allow = curve_from_args(args)
            server: _ServerBase = ZmqTwinServer(model, args.zmq, mode=args.mode, speed=args.speed,
                                                keys=keys, allow=allow)
        else:
            server = PtyTwinServer(model, link=args.link, mode=args.mode, speed=args.speed)
    except UserError:
        raise
    except Exception as exc:  # bad endpoint, address in use, pty unavailable
        raise UserError(f"cannot serve the twin: {exc}") from None
    print(server.url, flush=True)  # machine-readable: the URL to give open_backend / hwctl node
    console.print(f"[green]twin[/] serving on {server.url} ({args.mode} time, p={cfg.p_photon:.3g}); Ctrl-C stops")
    t_end = None if args.duration is None else time.monotonic() + args.duration
    # SIGINT / SIGTERM: clean stop, exit 0
    with argtypes.stop_on_signals() as stop, server:
        while (t_end is None or time.monotonic() < t_end) and not stop.wait(0.2):
            if server.error:
                raise UserError(f"twin stopped: {server.error!r}")
    st = server.status()
    console.print(f"twin stopped at cycle {st['now']}: {st['bytes_in']} bytes in, {st['bytes_out']} out")
    return 0


def _run_lab(args: argparse.Namespace, cfg: TwinConfig, console) -> int:
    """``hwctl twin --lab TOPOLOGY``: node devices + stations on the shared clock, each on its own
    pty (default) or its own ZeroMQ ROUTER (``--zmq``); the stations' host links too."""
    from hwctl import timebase
    from hwctl.errors import UserError
    from hwctl.sim import topologies
    from hwctl.sim.twin.lab import Lab, LabServer

    if args.mode != "realtime":
        raise UserError("--lab runs in real time on the shared clock (no --mode virtual)")
    if args.link and not args.link_dir:
        raise UserError("--lab takes --link-dir DIR (one link per device), not --link")
    g = topologies.by_name(args.lab)  # UserError for an unknown form
    lab = Lab(g, p_photon=cfg.p_photon, dark_prob=cfg.dark_prob, seed=cfg.seed,
              start=timebase.cycle_now())
    keys, allow = curve_from_args(args) if args.zmq else (None, None)
    try:
        server = LabServer(lab, link_dir=str(args.link_dir) if args.link_dir else None, zmq=args.zmq, keys=keys, allow=allow,
                           device_link=args.device_link)
    except UserError:
        raise
    except Exception as exc:  # pty unavailable, address in use
        raise UserError(f"cannot serve the lab: {exc}") from None
    for n in lab.devices:  # machine-readable: NAME URL per device (nodes, then stations u-v)
        print(n, server.urls[n], flush=True)
    how = "ZeroMQ" if args.zmq else {"pty": "ptys", "unix": "Unix sockets"}[args.device_link]
    console.print(f"[green]lab[/] {args.lab}: {len(lab.names)} node devices, {len(lab.stations)} "
                  f"stations on the shared clock, on {how} (p={cfg.p_photon:.3g}); Ctrl-C stops")
    t_end = None if args.duration is None else time.monotonic() + args.duration
    # SIGINT / SIGTERM: clean stop (links removed, counters printed), exit 0
    with argtypes.stop_on_signals() as stop, server:
        while (t_end is None or time.monotonic() < t_end) and not stop.wait(0.2):
            if server.error:
                raise UserError(f"lab stopped: {server.error!r}")
    for (u, v), st in lab.stations.items():
        console.print(f"station {u}-{v}: {st.reg(Reg.CNT_HERALD)} heralds, "
                      f"{st.reg(Reg.CNT_ONE_END)} one-end windows, {st.reg(Reg.CNT_MARKS)} markers")
    if server.counts["accept_failed"]:
        console.print(f"lab: {server.counts['accept_failed']} failed accepts of a host's connection "
                      f"(out of descriptors; each paused that device's socket "
                      f"{LabServer.ACCEPT_PAUSE_S} s)")
    return 0
