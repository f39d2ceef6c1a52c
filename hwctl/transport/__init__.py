"""Backends by URL: one asyncio API whatever sits behind it.

    backend = await open_backend("twin://?mode=virtual&seed=1&p=1e-3")
    backend = await open_backend("serial:///dev/ttyUSB0?baud=3000000")
    backend = await open_backend("socket://192.168.1.20:7777")      # any pyserial URL
    backend = await open_backend("zmq+tcp://127.0.0.1:5555")         # board bridge or twin server

URL parameters understood everywhere: ``timeout`` (seconds per try, default 0.25) and ``retries``
(default 4). ``serial``: ``baud`` (default spec.uart_baud). ``twin``: ``mode`` (virtual|realtime,
default virtual), ``speed``, ``seed``, ``p`` (per-attempt herald probability) or ``fidelity``,
``dark`` (dark-count rate, Hz), ``headers`` (header period in cycles), ``arrival``.

A bad URL raises :class:`~hwctl.errors.BadUrl`, a missing device
:class:`~hwctl.errors.DeviceNotFound`, a device with another wire version
:class:`~hwctl.errors.VersionMismatch`: each is one line for the user.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from hwctl.errors import BadUrl
from hwctl.transport.backend import Backend, LinkStats, cycles_to_seconds, seconds_to_cycles
from hwctl.transport.links import Link, MemoryLink, SerialLink, TwinLink, ZmqLink, memory_pair
from hwctl.wire import UART_BAUD

__all__ = [
    "Backend",
    "Link",
    "LinkStats",
    "MemoryLink",
    "SerialLink",
    "TwinLink",
    "ZmqLink",
    "cycles_to_seconds",
    "memory_pair",
    "open_backend",
    "seconds_to_cycles",
]

#: pyserial URL handlers passed through as they are
PYSERIAL_SCHEMES = ("loop", "socket", "spy", "rfc2217", "hwgrep", "alt")
SCHEMES = ("twin", "serial", "zmq+tcp", "zmq+ipc", *PYSERIAL_SCHEMES)


def _num(params: dict[str, str], key: str, conv, default, url: str):
    if key not in params:
        return default
    try:
        return conv(params.pop(key))
    except ValueError:
        raise BadUrl(f"bad value for {key!r} in {url!r}") from None


async def open_backend(url: str, *, handshake: bool = True, **overrides) -> Backend:
    """Open the device named by ``url``, check it is an hwctl device of our wire version."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise BadUrl(
            f"unsupported backend URL {url!r}: expected one of "
            + ", ".join(f"{s}://" for s in SCHEMES[:4]) + " or a pyserial URL (loop://, socket://...)"
        )
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    timeout = float(overrides.pop("timeout", _num(params, "timeout", float, 0.25, url)))
    retries = int(overrides.pop("retries", _num(params, "retries", int, 4, url)))
    link: Link
    if scheme == "twin":
        link = _twin_link(params, url, overrides)
    elif scheme == "serial" or scheme in PYSERIAL_SCHEMES:
        baud = _num(params, "baud", int, UART_BAUD, url)
        if scheme == "serial":
            if not parts.path or parts.netloc:
                raise BadUrl(f"serial URL needs a device path, e.g. serial:///dev/ttyUSB0 (got {url!r})")
            if params:
                raise BadUrl(f"unknown parameter(s) {sorted(params)} in {url!r}")
            port = parts.path
        else:
            query = urlencode(params)
            port = f"{scheme}://{parts.netloc}{parts.path}" + (f"?{query}" if query else "")
        link = SerialLink(port, baud=baud)
    else:
        if not parts.netloc and scheme == "zmq+tcp":
            raise BadUrl(f"zmq URL needs host:port, e.g. zmq+tcp://127.0.0.1:5555 (got {url!r})")
        if params:
            raise BadUrl(f"unknown parameter(s) {sorted(params)} in {url!r}")
        endpoint = scheme.removeprefix("zmq+") + "://" + parts.netloc + parts.path
        link = ZmqLink(endpoint)
    backend = Backend(link, url, timeout=timeout, retries=retries)
    if handshake:
        try:
            await backend.handshake()
        except BaseException:
            await backend.close()
            raise
    return backend


def _twin_link(params: dict[str, str], url: str, overrides: dict) -> TwinLink:
    from sim.twin.model import TwinConfig, TwinModel

    mode = params.pop("mode", "virtual")
    if mode not in ("virtual", "realtime"):
        raise BadUrl(f"twin mode must be virtual or realtime (got {mode!r} in {url!r})")
    speed = _num(params, "speed", float, 1.0, url)
    kw = dict(
        seed=_num(params, "seed", int, 0, url),
        header_period=_num(params, "headers", int, 0, url),
        header_arrival=_num(params, "arrival", float, 1.0, url),
    )
    fidelity = _num(params, "fidelity", float, None, url)
    dark = _num(params, "dark", float, 0.0, url)
    p = _num(params, "p", float, 1e-3, url)
    if params:
        raise BadUrl(f"unknown twin parameter(s) {sorted(params)} in {url!r}")
    model = overrides.pop("model", None)
    if model is None:
        try:
            if fidelity is not None:
                cfg = TwinConfig.for_fidelity(fidelity, dark_rate_hz=dark, **kw)
            else:
                from sim.twin.model import CLOCK_HZ

                cfg = TwinConfig(p_photon=p, dark_prob=dark * 2 / CLOCK_HZ, **kw)
        except ValueError as exc:
            raise BadUrl(f"{exc} (in {url!r})") from None
        model = TwinModel(cfg)
    return TwinLink(model, mode=mode, speed=speed)
