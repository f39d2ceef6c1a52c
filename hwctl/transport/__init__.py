"""Backends by URL: one asyncio API whatever sits behind it.

    backend = await open_backend("twin://?mode=virtual&seed=1&p=1e-3")
    backend = await open_backend("serial:///dev/ttyUSB0?baud=3000000")
    backend = await open_backend("socket://192.168.1.20:7777")      # any pyserial URL
    backend = await open_backend("zmq+tcp://127.0.0.1:5555")         # board bridge or twin server
    backend = await open_backend("unix:///tmp/lab/A")                # a lab twin's device socket

URL parameters understood everywhere: ``timeout`` (seconds per try, default 0.25) and ``retries``
(default 4). ``serial``: ``baud`` (default spec.uart_baud). ``zmq+tcp``: ``key`` (our
``NAME.key_secret``) and ``serverkey`` (the bridge's or twin's public key) for CurveZMQ. ``twin``: ``mode`` (virtual|realtime,
default virtual), ``speed``, ``seed``, ``p`` (per-attempt herald probability) or ``fidelity``,
``dark`` (dark-count rate, Hz), ``headers`` (header period in cycles), ``arrival``.

A bad URL raises :class:`~hwctl.errors.BadUrl`, a missing device
:class:`~hwctl.errors.DeviceNotFound`, a device with another wire version
:class:`~hwctl.errors.VersionMismatch`: each is one line for the user.
"""

from __future__ import annotations

from hwctl.transport.backend import Backend, LinkStats, cycles_to_seconds, seconds_to_cycles
from hwctl.transport.links import (
    LabLink,
    Link,
    MemoryLink,
    SerialLink,
    UnixLink,
    ZmqLink,
    memory_pair,
)
from hwctl.transport.schemes import open_link, register_scheme, registered
from hwctl.transport.urls import PYSERIAL_SCHEMES, SCHEMES, BackendSpec, parse_backend_url

__all__ = [
    "SCHEMES",
    "Backend",
    "BackendSpec",
    "LabLink",
    "Link",
    "LinkStats",
    "MemoryLink",
    "SerialLink",
    "UnixLink",
    "ZmqLink",
    "cycles_to_seconds",
    "memory_pair",
    "open_backend",
    "parse_backend_url",
    "register_scheme",
    "seconds_to_cycles",
]


async def open_backend(url: str, *, handshake: bool = True, **overrides) -> Backend:
    """Open the device named by ``url``, check it is an hwctl device of our wire version."""
    spec = parse_backend_url(url)
    timeout = float(overrides.pop("timeout", spec.timeout))
    retries = int(overrides.pop("retries", spec.retries))
    link: Link
    if spec.scheme == "twin" or registered(spec.scheme):
        link = open_link(spec, overrides)
    elif spec.scheme == "serial" or spec.scheme in PYSERIAL_SCHEMES:
        link = SerialLink(spec.target, baud=spec.baud)
    elif spec.scheme == "unix":
        link = UnixLink(spec.target)
    else:
        link = ZmqLink(spec.target, curve=spec.curve)
    backend = Backend(link, url, timeout=timeout, retries=retries)
    if handshake:
        try:
            await backend.handshake()
        except BaseException:
            await backend.close()
            raise
    return backend
