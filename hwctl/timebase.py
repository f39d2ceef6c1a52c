"""One device clock for every device of a network (docs/physical-layer.md section 1).

Every device (nodes and stations) counts the same 64-bit timebase at ``CLOCK_HZ``. Twins derive it
from one reference that separately started processes on one host agree on, the system clock:

    cycle = (time.time_ns() - epoch_ns) * CLOCK_HZ // 10**9,   epoch_ns = 2026-01-01T00:00Z

so a node service started seconds after the lab twin, in another process, converts ESP's ``t_min``
(node seconds on the same reference, :func:`seconds`) to the device cycle the devices will reach
at that instant. Across hosts the hosts' clocks must be disciplined (PTP; on hardware the devices
themselves use White Rabbit or a PPS on ``sync_i`` with TIME_SET mode 1). Tests use virtual time
(the lab's ``advance_to``) and never read this clock.
"""

from __future__ import annotations

import os
import time

from hwctl.errors import UserError
from hwctl.wire import CLOCK_HZ

#: 2026-01-01T00:00:00Z in ns since the Unix epoch: cycle 0 of the shared reference
DEFAULT_EPOCH_NS = 1_767_225_600 * 10**9


def _epoch_from_env() -> int:
    v = os.environ.get("HWCTL_EPOCH_NS")
    if not v:
        return DEFAULT_EPOCH_NS
    try:
        return int(v)
    except ValueError:
        raise UserError(f"HWCTL_EPOCH_NS={v!r} is not an integer (ns since the Unix epoch)") \
            from None


#: the network's epoch, read once (on first use): ``HWCTL_EPOCH_NS`` if set, else
#: :data:`DEFAULT_EPOCH_NS`. :func:`seconds` and :func:`cycle_now` are on the node's hot path
#: (every message, every timer), so the environment is not read on every call; a test (or a
#: process that changes the variable after import) calls :func:`set_epoch_ns`
_EPOCH_NS: int | None = None


def epoch_ns() -> int:
    """The network's epoch: ``HWCTL_EPOCH_NS`` if set (the same for every process of a network),
    else :data:`DEFAULT_EPOCH_NS`; read from the environment once, then cached."""
    global _EPOCH_NS
    if _EPOCH_NS is None:
        _EPOCH_NS = _epoch_from_env()
    return _EPOCH_NS


def set_epoch_ns(value: int | None = None) -> int:
    """Change the cached epoch: ``value`` (ns since the Unix epoch), or with None read
    ``HWCTL_EPOCH_NS`` again (e.g. after ``monkeypatch.setenv``). Returns the epoch now in use.
    Child processes read the variable themselves when they import this module."""
    global _EPOCH_NS
    _EPOCH_NS = _epoch_from_env() if value is None else int(value)
    return _EPOCH_NS


def seconds(epoch: int | None = None) -> float:
    """Seconds since the epoch on the shared reference (the node services' time base)."""
    e = _EPOCH_NS if epoch is None else epoch
    return (time.time_ns() - (epoch_ns() if e is None else e)) / 1e9


def cycle_now(hz: int = CLOCK_HZ, epoch: int | None = None) -> int:
    """Device cycle now on the shared reference."""
    e = _EPOCH_NS if epoch is None else epoch
    return (time.time_ns() - (epoch_ns() if e is None else e)) * hz // 10**9


def cycle_of(t: float, hz: int = CLOCK_HZ) -> int:
    """Device cycle at shared-reference time ``t`` (seconds since the epoch)."""
    return round(t * hz)
