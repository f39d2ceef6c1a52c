"""Robust mode of the node service (issue 15): the glue between :class:`hwctl.node.NodeService`
and the robust ESP core (:mod:`hwctl.protocols.reliable`, docs/reliability.md).

The ESP paper (§V) assumes a control network that delivers every message once and in order.
With ``[robust] enabled = true`` in the node config, the service's ESP core runs in robust mode:
message ids, acknowledgements and retransmission over the ZeroMQ links, duplicate suppression and
reordering tolerance, leases on the Lock, expiry of stale requests with a reason, and restart
recovery (the service starts a new *incarnation*, its boot time in ns, and announces it with HELLO
to every peer; the peers release what its previous life held).

Default: off. With no faults robust mode changes no schedule (the simulator's test
``test_no_fault_robust_run_matches_paper_mode``) but it adds one LINK_ACK per message, and every
node of a network must use the same setting: a robust core takes a paper-mode peer's messages
(no message id) for stale ones, and a paper-mode core refuses LINK_ACK/HELLO. Such a mismatch is
counted (``esp_mode_mismatch``), never fatal. Table V comes from the simulator and does not
depend on this setting.

Config::

    [robust]
    enabled = true
    rto = 0.001          # s, first retransmission timeout (doubles up to rto_max)
    rto_max = 0.016
    lease = 0.25         # s, SYN_RECEIVED / WAKE_SENT without progress
    busy_lease = 2.0     # s after t_min, READY/BUSY: the generation must end by then
    request_ttl = 30.0   # s after submission: a request not started by then expires

Hooks for heartbeats and restart recovery of the node service (:class:`RobustGlue`):
``incarnation`` (this life), :meth:`RobustGlue.peer_incarnations` (the lives of the peers as
last seen by the link layer), :meth:`RobustGlue.hello` (announce this life again, e.g. after a
heartbeat found a peer silent), :meth:`RobustGlue.recover` (resume a journal's open requests)
and ``on_peer_restart`` (called with a peer's name when the link layer sees its new life).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hwctl import argtypes
from hwctl.protocols.base import AbortAttempts, Action, Expired, RemoteError, Request
from hwctl.protocols.esp import EspMessage, EspNode, MsgType
from hwctl.protocols.reliable import RobustConfig

log = logging.getLogger(__name__)


def _bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{what} must be true or false, got {v!r}")
    return v


def _secs(lo: float, hi: float) -> Callable[[Any, str], float]:
    def check(v: Any, what: str) -> float:
        if isinstance(v, (str, bool)):
            raise ValueError(f"{what} must be a number of seconds, got {v!r}")
        return argtypes.check_real(v, what, lo, hi, lo_open=True)
    return check


#: the ``[robust]`` table of a node config (checked by :mod:`hwctl.node.validate`)
SCHEMA: dict[str, Callable[[Any, str], Any]] = {
    "enabled": _bool,
    "rto": _secs(0.0, 10.0),
    "rto_max": _secs(0.0, 60.0),
    "lease": _secs(0.0, 3600.0),
    "busy_lease": _secs(0.0, 3600.0),
    "request_ttl": _secs(0.0, 86400.0),
}


def from_table(table: dict | None) -> RobustConfig | None:
    """The robust config of a (checked) ``[robust]`` table; None when robust mode is off.
    Raises ``ValueError`` (one line) when the timeouts do not fit together."""
    if not table or not table.get("enabled", False):
        return None
    d = RobustConfig()
    try:
        return RobustConfig(**{k: float(table.get(k, getattr(d, k))) for k in
                               ("rto", "rto_max", "lease", "busy_lease", "request_ttl")})
    except ValueError as exc:
        raise ValueError(f"robust: {exc}") from None


def make_core(name: str, delays: dict[str, float], robust: RobustConfig | None,
              incarnation: int | None = None) -> EspNode:
    """The node's ESP core: paper mode when ``robust`` is None, else robust mode with this life's
    ``incarnation`` (default: the boot time in ns, so it grows across restarts)."""
    if robust is None:
        return EspNode(name, delays)
    inc = time.time_ns() if incarnation is None else incarnation
    return EspNode(name, delays, robust=robust, incarnation=inc)


@dataclass
class RobustStats:
    expired: dict[str, int] = field(default_factory=dict)  #: by reason
    aborted: int = 0  #: generations stopped by a lease or a peer's restart
    remote_errors: int = 0  #: messages the core refused (RemoteError), by any mode
    peer_restarts: int = 0


class RobustGlue:
    """The service side of robust mode: handles the core's robust-mode actions and exposes the
    hooks listed in the module docstring. ``abort(rid, reason)`` stops a running generation;
    ``finished(rid)`` ends a request for the workload (completed or expired)."""

    def __init__(self, core: EspNode, *, abort: Callable[[int, str], None],
                 finished: Callable[[int], None]) -> None:
        self.core = core
        self._abort = abort
        self._finished = finished
        self.stats = RobustStats()
        self._last_refused_log = -1e9  # time.monotonic() of the last refused-message log line
        self.expired: dict[int, str] = {}  #: own requests that expired -> reason
        self.on_peer_restart: Callable[[str], None] | None = None
        self._known = self.peer_incarnations()

    @property
    def enabled(self) -> bool:
        return self.core.arq is not None

    @property
    def incarnation(self) -> int:
        return self.core.arq.inc if self.core.arq is not None else 0

    def peer_incarnations(self) -> dict[str, int]:
        if self.core.arq is None:
            return {}
        return {p: ln.peer_inc for p, ln in self.core.arq.links.items()}

    def hello(self, now: float) -> list[Action]:
        """Announce this life to every peer (at start; again whenever a heartbeat wants to)."""
        return self.recover([], now)

    def recover(self, requests: Iterable[Request], now: float) -> list[Action]:
        """Start (or restart) the core: HELLO to every peer and resume ``requests`` (a journal's
        open requests; too old ones expire with reason ``restarted``)."""
        if self.core.arq is None:
            return []
        return self.core.recover(list(requests), now)

    def mode_mismatch(self, msg: EspMessage) -> bool:
        """A message from a peer in the other mode (see the module docstring)."""
        if self.core.arq is not None:
            return msg.kind is not MsgType.LINK_ACK and msg.seq == 0
        return msg.kind in (MsgType.LINK_ACK, MsgType.HELLO) or msg.seq != 0

    def handle(self, act: Action) -> bool:
        """Carry out a robust-mode action; False when ``act`` is not one."""
        if isinstance(act, Expired):
            self.expired[act.request.rid] = act.reason
            self.stats.expired[act.reason] = self.stats.expired.get(act.reason, 0) + 1
            self._finished(act.request.rid)
        elif isinstance(act, AbortAttempts):
            self.stats.aborted += 1
            self._abort(act.request.rid, act.reason)
        elif isinstance(act, RemoteError):
            self.stats.remote_errors += 1
            # counted always, logged at most once a second: a message the core refused (e.g. a
            # "duplicate SYN") is what a stalled handshake shows in the node's log
            now = time.monotonic()
            if now - self._last_refused_log >= 1.0:
                self._last_refused_log = now
                log.warning("%s: ESP message from %s refused (%s): %s", self.core.name, act.src,
                            act.reason, act.msg)
        else:
            return False
        return True

    def after_receive(self) -> None:
        """Call after each received message: reports peers seen with a new incarnation."""
        if self.core.arq is None:
            return
        now = self.peer_incarnations()
        for p, inc in now.items():
            if inc > self._known.get(p, 0):
                self.stats.peer_restarts += self._known.get(p, 0) > 0
                if self.on_peer_restart is not None:
                    self.on_peer_restart(p)
        self._known = now
