"""Validators shared by every ``hwctl`` entry point: CLI options, backend URL parameters and
config-file keys (hwctl.node.validate) all go through these, so one value means the same thing
everywhere and every mistake is one clear line (exit 2), never a traceback.

Each ``check_*`` function takes the value and a ``what`` label and returns the parsed value or
raises :class:`ValueError` with a one-line message; the argparse wrappers (``seed``, ``real(...)``,
``integer(...)``, ``endpoint``...) turn those into :class:`argparse.ArgumentTypeError`. Limits are
finite on purpose: a value that would make the work unbounded (``--duration inf``, a
3000x3000 grid, a period of 10^11 cycles) is refused up front, not discovered hours later.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

#: the longest any service (node, bridge, twin) may be told to run: one year, in seconds
MAX_SERVICE_S = 366 * 86400.0
#: the longest simulated run (`hwctl sim`): one simulated day
MAX_SIM_S = 86400.0
#: largest seed numpy's generators take
MAX_SEED = 2**63 - 1


# ---------------------------------------------------------------------------- plain checks
def check_real(value: Any, what: str, lo: float | None = None, hi: float | None = None, *,
               lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number in [lo, hi] (``lo_open``/``hi_open`` exclude the bound)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{what} must be a number, got {value!r}") from None
    elif not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{what} must be {_range(lo, hi, lo_open, hi_open)}, got {value!r}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ValueError(f"{what} must be {_range(lo, hi, lo_open, hi_open)}, got {value!r}")
    return v


def check_int(value: Any, what: str, lo: int | None = None, hi: int | None = None) -> int:
    """An integer in [lo, hi]; strings may be decimal or 0x/0o/0b prefixed."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip(), 0)
        except ValueError:
            raise ValueError(f"{what} must be an integer, got {value!r}") from None
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{what} must be an integer, got {value!r}")
        value = int(value)
    elif not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{what} must be an integer in {_irange(lo, hi)}, got {value!r}")
    return value


def check_seed(value: Any, what: str = "seed") -> int:
    """A random seed: an integer 0 <= seed < 2**63 (numpy's generators refuse negative seeds)."""
    return check_int(value, what, 0, MAX_SEED)


def check_fidelity(value: Any, what: str = "fidelity") -> float:
    """A requested pair fidelity F in [0.5, 1) (ESP paper Table IV; F >= 1 needs no noise)."""
    return check_real(value, what, 0.5, 1.0, hi_open=True)


def check_probability(value: Any, what: str) -> float:
    return check_real(value, what, 0.0, 1.0)


#: a duration written with a unit (``5m``), and the unit's seconds
_UNIT_RE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*(s|sec|m|min|h|hr|ms)\s*", re.ASCII | re.I)
_UNIT_S = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0, "ms": 1e-3}


def check_duration(value: Any, what: str = "duration", hi: float = MAX_SERVICE_S) -> float:
    """A run length in seconds: finite, > 0 and at most ``hi``. Written with a unit (``5m``):
    the error says it is in seconds and names the number meant."""
    if isinstance(value, str) and (m := _UNIT_RE.fullmatch(value)):
        secs = float(m[1]) * _UNIT_S[m[2].lower()]
        raise ValueError(f"{what} is in seconds, got {value!r}: for {value.strip()} write "
                         f"{secs:g}")
    return check_real(value, what, 0.0, hi, lo_open=True)


def check_port(value: Any, what: str = "port", *, allow_zero: bool = True) -> int:
    """A TCP port: 1..65535 (0 = any free port, where binding allows it)."""
    return check_int(value, what, 0 if allow_zero else 1, 65535)


_HOST_RE = re.compile(r"^(\*|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$")


def check_endpoint(value: Any, what: str = "endpoint", *, bind: bool = False) -> str:
    """A ZeroMQ endpoint ``tcp://host:port`` (port 1..65535, or 0 / ``*`` when binding) or
    ``ipc://path``. ZeroMQ itself would take ``:99999`` modulo 2**16 and bind another port."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a ZeroMQ endpoint like tcp://127.0.0.1:5555, got {value!r}")
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise ValueError(f"{what} {value!r}: expected tcp://host:port or ipc://path")
    if scheme == "ipc":
        if not rest or "\x00" in rest:
            raise ValueError(f"{what} {value!r}: ipc:// needs a path")
        return value
    if scheme != "tcp":
        raise ValueError(f"{what} {value!r}: only tcp:// and ipc:// endpoints are supported")
    host, colon, port = rest.rpartition(":")
    if not colon or not host:
        raise ValueError(f"{what} {value!r}: expected tcp://host:port")
    if not _HOST_RE.match(host) or (host == "*" and not bind):
        raise ValueError(f"{what} {value!r}: bad host {host!r}")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{what} {value!r}: bad IPv6 address {host!r}") from None
    if port == "*" and bind:
        return value
    if not port.isdigit():
        raise ValueError(f"{what} {value!r}: port must be a number in 1..65535")
    n = int(port)
    if not (0 if bind else 1) <= n <= 65535:
        raise ValueError(f"{what} {value!r}: port {n} is not in {'0' if bind else '1'}..65535")
    return value


def is_loopback_endpoint(endpoint: str) -> bool:
    """True for ``ipc://`` and tcp endpoints on 127.0.0.0/8, ::1 or ``localhost``."""
    scheme, _, rest = endpoint.partition("://")
    if scheme == "ipc":
        return True
    host = rest.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_out_path(value: Any, what: str = "output", *, directory: bool = False) -> Path:
    """An output file (or directory) that can be written: the nearest existing ancestor must be a
    directory where a probe file can be created (and is removed again; nothing else is created),
    so an unwritable ``--out`` is found before the run, not after it."""
    if isinstance(value, Path):
        p = value
    elif isinstance(value, str) and value and "\x00" not in value:
        p = Path(value)
    else:
        raise ValueError(f"{what} must be a path, got {value!r}")
    if not directory and p.is_dir():
        raise ValueError(f"{what} {str(p)!r} is a directory, expected a file name")
    if directory and p.exists() and not p.is_dir():
        raise ValueError(f"{what} {str(p)!r} exists and is not a directory")
    d = (p if directory else p.parent).absolute()
    while not d.exists() and d != d.parent:
        d = d.parent
    if not d.is_dir():
        raise ValueError(f"{what} {str(p)!r} is not writable: {str(d)!r} is not a directory")
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=d, prefix=".hwctl-probe-"):
            pass
    except OSError as exc:
        raise ValueError(f"{what} {str(p)!r} is not writable: "
                         f"{exc.strerror or exc.__class__.__name__}") from None
    return p


def check_name(value: Any, what: str = "name") -> str:
    """A node name: 1-64 characters of letters, digits, ``_``, ``-`` and ``.``."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
        raise ValueError(f"{what} must be 1-64 letters, digits, '_', '-' or '.', got {value!r}")
    return value


def _range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _irange(lo: int | None, hi: int | None) -> str:
    return f"{'-inf' if lo is None else lo}..{'inf' if hi is None else hi}"


# ---------------------------------------------------------------------------- argparse types
def _argtype(fn: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    def conv(text: str) -> Any:
        try:
            return fn(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    conv.__name__ = name  # argparse names the type in its messages
    return conv


def seed(text: str) -> int:
    """A random seed: an integer 0 <= seed < 2**63 (numpy's generators refuse negative seeds)."""
    try:
        return check_seed(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid seed {text!r}: expected an integer with 0 <= seed < 2**63") from None


def real(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
         hi_open: bool = False, what: str = "value") -> Callable[[str], float]:
    return _argtype(lambda t: check_real(t, what, lo, hi, lo_open=lo_open, hi_open=hi_open), "real")


def integer(lo: int | None = None, hi: int | None = None, *, what: str = "value"
            ) -> Callable[[str], int]:
    return _argtype(lambda t: check_int(t, what, lo, hi), "integer")


def duration(hi: float = MAX_SERVICE_S, what: str = "duration") -> Callable[[str], float]:
    """Seconds: finite, > 0, at most ``hi``."""
    return _argtype(lambda t: check_duration(t, what, hi), "duration")


fidelity = _argtype(check_fidelity, "fidelity")
check_name_arg = _argtype(lambda t: check_name(t, "name"), "name")
probability = _argtype(lambda t: check_probability(t, "probability"), "probability")
endpoint = _argtype(lambda t: check_endpoint(t, "endpoint", bind=False), "endpoint")
bind_endpoint = _argtype(lambda t: check_endpoint(t, "endpoint", bind=True), "endpoint")
out_file = _argtype(lambda t: check_out_path(t, "--out"), "out_file")
out_dir = _argtype(lambda t: check_out_path(t, "--out", directory=True), "out_dir")


def out_path(what: str, *, directory: bool = False) -> Callable[[str], Path]:
    """An output file (or directory) option other than ``--out`` (``--record``, ``--snapshot``):
    checked writable when the arguments are parsed, before any work."""
    return _argtype(lambda t: check_out_path(t, what, directory=directory), "out_path")


#: ``--force``'s help (every command that refuses to replace earlier results)
FORCE_HELP = "replace the results an earlier run left there (default: refuse, exit 2)"


def refuse_existing(paths: Iterable[Path], what: str, *, force: bool) -> None:
    """Results are never replaced silently: when any of ``paths`` (what this run would write)
    exists, one :class:`UserError` line names them and the way out (``--force``, or another
    ``what``); checked before the run. (``hwctl node --out`` never replaces either: a later
    run's file gets the run id in its name, hwctl.results.)"""
    if force:
        return
    found = [p for p in paths if p.exists()]
    if found:
        from hwctl.errors import UserError

        more = f" and {len(found) - 2} more" if len(found) > 2 else ""
        names = ", ".join(repr(str(p)) for p in found[:2]) + more
        raise UserError(f"{what}: {names} already exist{'s' if len(found) == 1 else ''} (an "
                        f"earlier run's results): pass --force to replace them, or choose "
                        f"another {what}")


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (main thread only; the previous
    handlers come back after it): a service loop waiting on it stops cleanly, exit status 0,
    instead of dying mid-write."""
    import signal

    ev = threading.Event()
    old = {sig: signal.signal(sig, lambda *_: ev.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield ev
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
