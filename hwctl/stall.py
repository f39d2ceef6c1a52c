"""Hang bounds that scale with progress (tests and long waits; docs/reliability.md "Test suite
under load").

A wall-clock deadline on a whole wait ("finishes within 60 s") fails on a slow or loaded
machine although nothing is wrong. :class:`StallBound` trips only when a progress measure (any
hashable snapshot of counters: requests completed, messages received, simulator cycles) has not
changed for ``stall_s`` seconds: a machine ten times slower makes progress ten times slower, and
never trips it, while a real hang still does. Sans-IO: the caller passes the time in.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field


@dataclass
class StallBound:
    """``ok(now)`` is False once ``progress()`` stayed the same for ``stall_s`` seconds."""

    progress: Callable[[], Hashable]
    stall_s: float = 60.0
    _last: Hashable = field(default=None, init=False)
    _since: float | None = field(default=None, init=False)
    #: the longest stretch without progress seen so far (s), for messages
    longest_s: float = field(default=0.0, init=False)

    def ok(self, now: float) -> bool:
        p = self.progress()
        if self._since is None or p != self._last:
            self._last, self._since = p, now
            return True
        quiet = now - self._since
        self.longest_s = max(self.longest_s, quiet)
        return quiet < self.stall_s

    def describe(self) -> str:
        return f"no progress for {self.longest_s:.0f} s (last: {self._last!r})"
