"""Strict check of a node config (``hwctl node --config node.toml``) before anything runs.

Every section and key is known (a typo such as ``fidelty`` is an error naming the closest key,
not a silent default), every value has a type and a finite range (shared validators of
:mod:`hwctl.argtypes`), the backend URL is parsed (:func:`hwctl.transport.urls.parse_backend_url`)
and a node cannot be its own peer. Raises :class:`~hwctl.errors.UserError` with one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from hwctl import argtypes
from hwctl.errors import UserError
from hwctl.node import robust as noderobust

#: longest attempt period accepted: 10 ms at 100 MHz (ESP Table IV uses 500 ns; a period of
#: 10^11 cycles made every schedule wait for hours)
MAX_PERIOD_CYCLES = 1_000_000


def _any(v: Any, what: str) -> Any:
    return v


def _str(v: Any, what: str) -> str:
    if not isinstance(v, str) or not v or len(v) > 4096:
        raise ValueError(f"{what} must be a non-empty string, got {v!r}")
    return v


def _bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{what} must be true or false, got {v!r}")
    return v


def _backend(v: Any, what: str) -> str:
    from hwctl.transport.urls import parse_backend_url

    if _str(v, what).startswith("lab://"):  # the demo's in-process lab (backend adopted)
        return v
    parse_backend_url(v)  # BadUrl is a UserError: one line
    return v


def _pairs(v: Any, what: str) -> list[int]:
    if not isinstance(v, list) or len(v) != 2:
        raise ValueError(f"{what} must be [min, max], got {v!r}")
    lo, hi = (_int(1, 1000)(x, what) for x in v)
    if lo > hi:
        raise ValueError(f"{what} must be [min, max] with min <= max, got {v!r}")
    return [lo, hi]


def _one_of(*choices: str) -> Callable[[Any, str], Any]:
    def check(v: Any, what: str) -> Any:
        if v not in choices:
            raise ValueError(f"{what} must be one of {', '.join(map(repr, choices))}, got {v!r}")
        return v
    return check


def _num(fn: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """A number in TOML is a number: ``"10"`` is a mistake, not ten."""
    def check(v: Any, what: str) -> Any:
        if isinstance(v, str):
            raise ValueError(f"{what} must be a number, not the string {v!r}")
        return fn(v, what)
    return check


def _real(lo: float, hi: float, lo_open: bool = False) -> Callable[[Any, str], float]:
    return _num(lambda v, what: argtypes.check_real(v, what, lo, hi, lo_open=lo_open))


def _int(lo: int, hi: int) -> Callable[[Any, str], int]:
    return _num(lambda v, what: argtypes.check_int(v, what, lo, hi))


TOP: dict[str, Callable[[Any, str], Any]] = {
    "name": argtypes.check_name,
    "listen": lambda v, what: argtypes.check_endpoint(v, what, bind=True),
    "backend": _backend,
    "duration": _num(argtypes.check_duration),
    "device_wait_s": _real(0.0, 3600.0),
    "peer_transport": _one_of("stream", "zmq"),
    "out": lambda v, what: argtypes.check_out_path(v, what, directory=True),
    # the bench (a [bench] table or a bench file) is checked key by key by
    # hwctl.instruments.bench.BenchConfig, with file, key and reason in one line
    "bench": _any,
    "bench_index": _any,
}
PEER = {
    "endpoint": argtypes.check_endpoint,
    "length_m": _real(0.0, 1e7, lo_open=True),
    "port": _int(0, 255),
}
WORKLOAD = {
    "fidelity": _num(argtypes.check_fidelity),
    "pairs": _pairs,
    "mean_backoff": _real(0.0, 3600.0, lo_open=True),
    "seed": _num(argtypes.check_seed),
    "enabled": _bool,
    "rule": _one_of("node", "edge"),
}
PHYSICAL = {
    "period_cycles": _int(2, MAX_PERIOD_CYCLES),
    "lead_s": _real(0.0, 10.0, lo_open=True),
    "early_schedule": _bool,
    # removed keys: NodeConfig.from_dict explains what replaced them
    "window_cycles": _any,
    "margin_s": _any,
}
VERIFICATION = {
    "partner": argtypes.check_name,
    "memory": _str,
    "f_th": _real(0.5, 1.0),
    "skew_s": _real(-1.0, 1.0),
    "report_interval_s": _real(0.0, 1.0, lo_open=True),
    "window_bits": _int(1, 32),
    "header_blocks": _bool,
    "hold_s": _real(0.0, 10.0),
    "source_hz": _real(0.0, 1e9, lo_open=True),
    "pool_slots": _int(0, 65535),
}
SECURITY = {
    "key": _str,
    "allow": _any,
}
SECTIONS = {"workload": WORKLOAD, "physical": PHYSICAL, "verification": VERIFICATION,
            "security": SECURITY, "robust": noderobust.SCHEMA}
REQUIRED = ("name", "listen", "backend")


def _unknown(key: str, known: list[str], where: str) -> UserError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"
    return UserError(f"unknown key {key!r} in {where}{hint}")


def _check_table(table: Any, spec: dict, where: str, source: str) -> None:
    if not isinstance(table, dict):
        raise UserError(f"{source}: {where} must be a table, got {table!r}")
    for key, value in table.items():
        if key not in spec:
            raise UserError(f"{source}: " + str(_unknown(key, list(spec), where)))
        if value is None:  # not expressible in TOML: a Python caller's "use the default"
            continue
        try:
            spec[key](value, f"{where}.{key}" if where != "config" else key)
        except ValueError as exc:
            raise UserError(f"{source}: {exc}") from None


def check_node_dict(d: Any, source: str = "config") -> None:
    """Check a parsed node config (module docstring); raises UserError (one line)."""
    if not isinstance(d, dict):
        raise UserError(f"{source}: a node config is a TOML table")
    known = [*TOP, "peers", *SECTIONS]
    for key in d:
        if key not in known:
            raise UserError(f"{source}: " + str(_unknown(key, known, "the top level")))
    for key in REQUIRED:
        if key not in d:
            raise UserError(f"{source}: missing key {key!r}")
    _check_table({k: v for k, v in d.items() if k in TOP}, TOP, "config", source)
    peers = d.get("peers", {})
    if not isinstance(peers, dict) or not peers:
        raise UserError(f"{source}: node {d['name']!r} has no [peers]")
    if len(peers) > 64:
        raise UserError(f"{source}: at most 64 peers (a node entangles with its neighbours)")
    for name, p in peers.items():
        try:
            argtypes.check_name(name, "peer name")
        except ValueError as exc:
            raise UserError(f"{source}: {exc}") from None
        if name == d["name"]:
            raise UserError(f"{source}: node {name!r} lists itself in [peers]")
        _check_table(p, PEER, f"peers.{name}", source)
        if "endpoint" not in p:
            raise UserError(f"{source}: missing key 'endpoint' in [peers.{name}]")
        if p["endpoint"] == d["listen"]:
            raise UserError(f"{source}: peer {name!r} has this node's own endpoint")
    for section, spec in SECTIONS.items():
        if section in d:
            _check_table(d[section], spec, section, source)
