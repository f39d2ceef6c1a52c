"""Board bridge: ZeroMQ <-> UART, run next to the FPGA (Linux SoC or a host with the USB UART).

``hwctl bridge --port serial:///dev/ttyUSB0 --listen tcp://0.0.0.0:5555`` exposes the board's UART
on a ZeroMQ ROUTER speaking :mod:`hwctl.transport.zmqwire`; hosts then open
``zmq+tcp://board:5555`` exactly as they would open the serial port. The bridge owns the device's
command sequence numbers (:mod:`hwctl.transport.devserver`): it serialises the clients' commands,
re-encodes each with a seq of its own and each response with the client's seq, so two clients can
never be confused by the device's one-deep retry memory; events pass through unchanged to every
live client. Clients are forgotten after a silence (they send keep-alives), the client table,
the command queue, message sizes and per-client byte rates are bounded, and every drop is
counted by cause. Two frame decoders watch the line to report health:

- frames and bytes each way, frames that fail CRC/COBS in each direction,
- serial port state, the last serial error and how often the port was reopened,
- connected clients and uptime.

Health is answered on the same socket (``[CONTROL, b"status"]`` -> JSON), printed periodically by
the CLI, and ``ok`` turns false while the port is down. If the port disappears (USB unplugged) the
bridge keeps serving status and reopens the port every ``reopen_s`` seconds.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from urllib.parse import parse_qsl, urlsplit

import zmq

from hwctl import argtypes
from hwctl.errors import BadUrl, UserError
from hwctl.transport.devserver import DeviceSessions, ServerLimits, Step, configure_router, send
from hwctl.transport.security import (
    CurveServer,
    KeyPair,
    add_curve_arguments,
    curve_from_args,
    require_curve_off_loopback,
)
from hwctl.transport.zmqwire import CONTROL
from hwctl.wire import UART_BAUD, FrameDecoder


def parse_port(port: str) -> tuple[str, int]:
    """``serial:///dev/x?baud=N``, a plain device path or a pyserial URL -> (pyserial url, baud)."""
    parts = urlsplit(port)
    params = dict(parse_qsl(parts.query))
    try:
        baud = argtypes.check_int(params.pop("baud", UART_BAUD), "baud", 300, 50_000_000)
    except ValueError as exc:
        raise BadUrl(f"{exc} (in {port!r})") from None
    if parts.scheme == "serial":
        if not parts.path or params:
            raise BadUrl(f"bad serial URL {port!r}: expected serial:///dev/ttyX[?baud=N]")
        return parts.path, baud
    if parts.scheme and "://" in port:
        base = port.split("?", 1)[0]
        rest = "&".join(f"{k}={v}" for k, v in params.items())
        return base + (f"?{rest}" if rest else ""), baud
    if not port:
        raise BadUrl("no serial port given")
    return port, baud


class Bridge:
    """ZeroMQ ROUTER <-> serial port. ``start()`` runs it in background threads."""

    def __init__(self, port: str, listen: str = "tcp://127.0.0.1:0", *, reopen_s: float = 1.0,
                 limits: ServerLimits | None = None, keys: KeyPair | None = None,
                 allow: dict[bytes, str] | None = None) -> None:
        """``keys`` + ``allow``: CurveZMQ, only the allowlisted client keys get in
        (hwctl.transport.security); without them the bridge listens on loopback only."""
        if (keys is None) != (allow is None):
            raise UserError("the bridge needs both a key pair and an allowlist, or neither")
        require_curve_off_loopback(listen, keys is not None, "bridge --listen")
        self.port_url, self.baud = parse_port(port)
        self.reopen_s = reopen_s
        self.sessions = DeviceSessions(limits)
        # its own context: the ZAP handler (allowlist) is per context
        self.ctx = zmq.Context()
        self.curve = CurveServer(self.ctx, keys, allow) if keys is not None and allow else None
        self.sock = self.ctx.socket(zmq.ROUTER)
        configure_router(self.sock, self.sessions.limits)
        if self.curve is not None:
            self.curve.secure(self.sock)
        try:
            self.sock.bind(listen)
        except zmq.ZMQError as exc:
            self._close_zmq()
            raise UserError(f"cannot listen on {listen!r}: {exc}") from None
        self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self._wake_addr = f"inproc://bridge-wake-{id(self)}"
        self._wake_rx = self.ctx.socket(zmq.PAIR)
        self._wake_rx.bind(self._wake_addr)
        self.ser = None
        self._ser_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._dec_up = FrameDecoder()  # host -> device
        self._dec_down = FrameDecoder()  # device -> host
        self.t0 = time.monotonic()
        self.bytes_to_device = 0
        self.bytes_from_device = 0
        self.reopens = 0
        self.serial_error: str | None = None
        self.dropped_to_device = 0  # bytes from hosts while the port was down
        self._open_serial(first=True)

    @property
    def url(self) -> str:
        return "zmq+" + self.endpoint

    # ---------------------------------------------------------------- serial side
    def _open_serial(self, first: bool = False) -> bool:
        import serial

        try:
            # exclusive, as the node's SerialLink: one program per port (hwctl.transport.links)
            ser = serial.serial_for_url(self.port_url, baudrate=self.baud, timeout=0.02,
                                        write_timeout=1, exclusive=True)
        except (serial.SerialException, ValueError, OSError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if first:
                self._close_zmq()
                from hwctl.transport.links import serial_open_error

                raise UserError(serial_open_error(self.port_url, exc)) from None
            self.serial_error = msg
            return False
        with self._ser_lock:
            self.ser = ser
        if not first:
            self.reopens += 1
        self.serial_error = None
        return True

    def _serial_reader(self) -> None:
        wake = self.ctx.socket(zmq.PAIR)
        wake.connect(self._wake_addr)
        try:
            while not self._stop.is_set():
                ser = self.ser
                if ser is None:
                    time.sleep(self.reopen_s)
                    if not self._stop.is_set():
                        self._open_serial()
                    continue
                try:
                    data = ser.read(max(1, min(ser.in_waiting, 65536)))
                except Exception as exc:  # port vanished
                    self.serial_error = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                    with self._ser_lock:
                        self.ser = None
                    try:
                        ser.close()
                    except Exception:
                        pass
                    continue
                if data:
                    wake.send(data)
        finally:
            wake.close(0)

    # ---------------------------------------------------------------- zmq side
    def _zmq_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        sessions = self.sessions
        next_expiry = 0.0
        while not self._stop.is_set():
            ready = dict(poller.poll(50))
            now = time.monotonic()
            if self._wake_rx in ready:
                for _ in range(1000):  # bounded per turn: clients are served in between
                    try:
                        data = self._wake_rx.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self.bytes_from_device += len(data)
                    for _ in self._dec_down.feed(data):
                        pass
                    self._apply(sessions.device_data(data, now))
            if self.sock in ready:
                for _ in range(1000):
                    try:
                        msg = self.sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._apply(sessions.client_message(msg[0], msg[1:], now))
            if now >= next_expiry:
                next_expiry = now + 0.5
                self._apply(sessions.expire(now))

    def _apply(self, step: Step) -> None:
        if step.to_device:
            self._to_device(bytes(step.to_device))
        for ident, parts in step.to_clients:
            send(self.sock, ident, parts, self.sessions)
        for ident in step.status_for:
            send(self.sock, ident, [CONTROL, json.dumps(self.status()).encode()], self.sessions)

    def _to_device(self, data: bytes) -> None:
        for _ in self._dec_up.feed(data):
            pass
        with self._ser_lock:
            ser = self.ser
            if ser is None:
                self.dropped_to_device += len(data)  # counted and reported, host will retry
                return
            try:
                ser.write(data)
                self.bytes_to_device += len(data)
            except Exception as exc:
                self.serial_error = str(exc).strip().splitlines()[0] or repr(exc)
                self.dropped_to_device += len(data)

    # ---------------------------------------------------------------- status
    def status(self) -> dict:
        return {
            "kind": "bridge",
            "ok": self.ser is not None,
            "port": self.port_url,
            "baud": self.baud,
            "uptime_s": round(time.monotonic() - self.t0, 3),
            "clients": len(self.sessions.clients),
            "bytes_to_device": self.bytes_to_device,
            "bytes_from_device": self.bytes_from_device,
            "frames_to_device": self._dec_up.stats.frames,
            "frames_from_device": self._dec_down.stats.frames,
            "bad_frames_from_host": self.sessions.drops["bad_frame_from_client"],
            "bad_frames_from_device": self._dec_down.stats.error_total,
            "dropped_to_device": self.dropped_to_device,
            "reopens": self.reopens,
            "serial_error": self.serial_error,
            "curve": self.curve is not None,
            "auth_refused": self.curve.refused if self.curve else 0,
            **self.sessions.counters(),
        }

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> Bridge:
        # the board may have run under an earlier bridge: take over its retry memory first
        # (hwctl.transport.devserver.DeviceSessions.prime)
        self._apply(self.sessions.prime(time.monotonic()))
        for target in (self._serial_reader, self._zmq_loop):
            t = threading.Thread(target=target, name=f"bridge-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=3)
        with self._ser_lock:
            if self.ser is not None:
                self.ser.close()
                self.ser = None
        self._close_zmq()

    def _close_zmq(self) -> None:
        if self.curve is not None:
            self.curve.stop()
        self.ctx.destroy(linger=0)  # the bridge's own context: every socket of it

    def __enter__(self) -> Bridge:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True,
                        help="serial port: serial:///dev/ttyUSB0?baud=3000000, a device path or a pyserial URL")
    parser.add_argument("--listen", default="tcp://127.0.0.1:5555", type=argtypes.bind_endpoint,
                        help="ZeroMQ endpoint to bind (default tcp://127.0.0.1:5555; tcp://0.0.0.0:5555 for the LAN)")
    add_curve_arguments(parser)
    parser.add_argument("--health-every", type=argtypes.real(0.0, 86400.0, what="--health-every"),
                        default=10.0,
                        help="print a health line every N seconds (default 10; 0: never)")
    parser.add_argument("--duration", type=argtypes.duration(), default=None,
                        help="stop after this many seconds (default: run until Ctrl-C / SIGTERM)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(stderr=True, soft_wrap=True)  # a line stays one line in `2> log`
    keys, allow = curve_from_args(args)
    bridge = Bridge(args.port, args.listen, keys=keys, allow=allow)
    print(bridge.url, flush=True)
    console.print(f"[green]bridge[/] {bridge.port_url} @ {bridge.baud} baud <-> {bridge.endpoint}; Ctrl-C stops")
    t_end = None if args.duration is None else time.monotonic() + args.duration
    next_health = time.monotonic() + (args.health_every or float("inf"))
    # SIGINT / SIGTERM: clean stop, exit 0
    with argtypes.stop_on_signals() as stop, bridge:
        while (t_end is None or time.monotonic() < t_end) and not stop.wait(0.1):
            if time.monotonic() >= next_health:
                next_health += args.health_every
                s = bridge.status()
                colour = "green" if s["ok"] else "red"
                console.print(
                    f"[{colour}]health[/] ok={s['ok']} clients={s['clients']} "
                    f"frames up/down={s['frames_to_device']}/{s['frames_from_device']} "
                    f"bad up/down={s['bad_frames_from_host']}/{s['bad_frames_from_device']} "
                    f"reopens={s['reopens']} err={s['serial_error']}"
                )
    return 0
