"""Backend URLs parsed and checked without opening anything.

:func:`parse_backend_url` turns a URL into a :class:`BackendSpec` or raises
:class:`~hwctl.errors.BadUrl` (one line). :func:`hwctl.transport.open_backend` opens what it
describes; config loaders call it first so a bad ``backend =`` line is reported when the config is
read, before any socket or port is touched. Every parameter has a finite range (shared validators
in :mod:`hwctl.argtypes`): ``speed=0``, ``seed=-1``, ``timeout=nan`` or a port ``:99999`` are
refused instead of being passed on (ZeroMQ would bind port 99999 mod 65536).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from hwctl import argtypes
from hwctl.errors import BadUrl

#: pyserial URL handlers passed through as they are
PYSERIAL_SCHEMES = ("loop", "socket", "spy", "rfc2217", "hwgrep", "alt")
SCHEMES = ("twin", "serial", "zmq+tcp", "zmq+ipc", "unix", *PYSERIAL_SCHEMES)
#: longest URL accepted (a config line, not a document)
MAX_URL = 2048


@dataclass
class BackendSpec:
    """What :func:`parse_backend_url` found: the scheme, link arguments and link parameters."""

    url: str
    scheme: str
    timeout: float = 0.25
    retries: int = 4
    #: serial / pyserial: the port for ``serial_for_url``; zmq: the ZeroMQ endpoint
    target: str = ""
    baud: int = 0
    #: twin: mode, speed and the TwinConfig keyword arguments (``fidelity``/``dark``/``p``)
    twin: dict[str, Any] = field(default_factory=dict)
    #: zmq with CurveZMQ: (our KeyPair, the server's public key)
    curve: tuple[Any, bytes] | None = None


def _take(params: dict[str, str], key: str, check, default, url: str):
    if key not in params:
        return default
    try:
        return check(params.pop(key))
    except ValueError as exc:
        raise BadUrl(f"{exc} (in {_short(url)})") from None


def _check_profile(value: str) -> str:
    from hwctl.wire.features import PROFILES

    if value not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {value!r}")
    return value


def _short(url: str) -> str:
    return repr(url if len(url) <= 120 else url[:117] + "...")


def parse_backend_url(url: str) -> BackendSpec:
    """Parse and check a backend URL (module docstring); raises BadUrl."""
    if not isinstance(url, str) or not url:
        raise BadUrl(f"backend URL must be a non-empty string, got {url!r}")
    if len(url) > MAX_URL or any(c in url for c in "\x00\r\n"):
        raise BadUrl(f"backend URL {_short(url)} is too long or has control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for :99999 or :x
    except ValueError as exc:
        raise BadUrl(f"bad backend URL {_short(url)}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        # the nearly right ones: a device path (as `hwctl twin --lab` links it, as `ls /dev`
        # shows it) or a board bridge's ZeroMQ endpoint (as its --listen takes it)
        meant = (f"serial://{url}" if not scheme and url.startswith("/")
                 else f"zmq+{url}" if scheme in ("tcp", "ipc") else None)
        raise BadUrl(
            f"unsupported backend URL {_short(url)}: "
            + (f"did you mean {meant}? " if meant else "")
            + "expected one of " + ", ".join(f"{s}://" for s in SCHEMES[:5])
            + " or a pyserial URL (loop://, socket://...)"
        )
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(pairs)
    if len(params) != len(pairs):
        raise BadUrl(f"repeated parameter in {_short(url)}")
    spec = BackendSpec(url=url, scheme=scheme)
    spec.timeout = _take(params, "timeout",
                         lambda v: argtypes.check_real(v, "timeout", 0.0, 60.0, lo_open=True),
                         0.25, url)
    spec.retries = _take(params, "retries", lambda v: argtypes.check_int(v, "retries", 0, 100), 4,
                         url)
    if scheme == "twin":
        if parts.netloc or parts.path not in ("", "/"):
            raise BadUrl(f"twin URL takes parameters only, e.g. twin://?seed=1 (got {_short(url)})")
        mode = params.pop("mode", "virtual")
        if mode not in ("virtual", "realtime"):
            raise BadUrl(f"twin mode must be virtual or realtime (got {mode!r} in {_short(url)})")
        t = spec.twin
        t["mode"] = mode
        t["speed"] = _take(params, "speed", lambda v: argtypes.check_real(
            v, "speed", 0.0, 1e6, lo_open=True), 1.0, url)
        t["seed"] = _take(params, "seed", argtypes.check_seed, 0, url)
        t["header_period"] = _take(params, "headers", lambda v: argtypes.check_int(
            v, "headers (header period in cycles)", 0, 2**32 - 1), 0, url)
        t["header_arrival"] = _take(params, "arrival", lambda v: argtypes.check_probability(
            v, "arrival"), 1.0, url)
        t["fidelity"] = _take(params, "fidelity", argtypes.check_fidelity, None, url)
        t["dark"] = _take(params, "dark", lambda v: argtypes.check_real(
            v, "dark (dark-count rate, Hz)", 0.0, 1e9), 0.0, url)
        t["p"] = _take(params, "p", lambda v: argtypes.check_probability(v, "p"), 1e-3, url)
        t["profile"] = _take(params, "profile", _check_profile, "full", url)
        if params:
            raise BadUrl(f"unknown twin parameter(s) {sorted(params)} in {_short(url)}")
        return spec
    if scheme == "unix":  # a device on a Unix stream socket (the lab twin's; links.UnixLink)
        if not parts.path or parts.netloc:
            raise BadUrl(f"unix URL needs a socket path, e.g. unix:///tmp/lab/A (got {_short(url)})")
        if params:
            raise BadUrl(f"unknown parameter(s) {sorted(params)} in {_short(url)}")
        spec.target = parts.path
        return spec
    if scheme == "serial" or scheme in PYSERIAL_SCHEMES:
        spec.baud = _take(params, "baud", lambda v: argtypes.check_int(v, "baud", 300, 50_000_000),
                          _uart_baud(), url)
        if scheme == "serial":
            if not parts.path or parts.netloc:
                raise BadUrl(f"serial URL needs a device path, e.g. serial:///dev/ttyUSB0 "
                             f"(got {_short(url)})")
            if params:
                raise BadUrl(f"unknown parameter(s) {sorted(params)} in {_short(url)}")
            spec.target = parts.path
        else:
            query = urlencode(params)
            spec.target = f"{scheme}://{parts.netloc}{parts.path}" + (f"?{query}" if query else "")
        return spec
    # zmq+tcp / zmq+ipc; CurveZMQ with key= (our NAME.key_secret) and serverkey= (the server's
    # public key: a NAME.key file or its 40 z85 characters)
    key, server_key = params.pop("key", None), params.pop("serverkey", None)
    if params:
        raise BadUrl(f"unknown parameter(s) {sorted(params)} in {_short(url)}")
    if (key is None) != (server_key is None):
        raise BadUrl(f"key= and serverkey= go together (CurveZMQ needs both) in {_short(url)}")
    if key is not None:
        from hwctl.errors import UserError
        from hwctl.transport.security import load_keypair, load_public

        try:
            spec.curve = (load_keypair(key), load_public(server_key))
        except UserError as exc:
            raise BadUrl(f"{exc} (in {_short(url)})") from None
    if scheme == "zmq+tcp":
        if not parts.hostname or port is None or parts.path not in ("", "/"):
            raise BadUrl(f"zmq URL needs host:port, e.g. zmq+tcp://127.0.0.1:5555 "
                         f"(got {_short(url)})")
        spec.target = "tcp://" + parts.netloc
    else:
        spec.target = "ipc://" + parts.netloc + parts.path
    try:
        argtypes.check_endpoint(spec.target, "endpoint")
    except ValueError as exc:
        raise BadUrl(f"{exc} (in {_short(url)})") from None
    return spec


def _uart_baud() -> int:
    from hwctl.wire import UART_BAUD

    return UART_BAUD
