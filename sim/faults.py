"""Fault model for the network simulator (issue 15): what can go wrong in a lab's control network.

:class:`FaultModel` decides the fate of every control message (``arrivals``: no arrival = lost,
two = duplicated, extra delay = reordered or a delay spike) and schedules node crashes and
restarts and network partitions that heal. It owns its random generator, seeded separately from
the simulator's, so a run with every probability at 0 is exactly the fault-free run.

- loss: each message is dropped with probability ``loss``;
- duplication: with probability ``duplicate`` a second copy travels with its own delay;
- reordering: with probability ``reorder`` a copy gets an extra delay uniform in
  ``[0, reorder_window]`` (later messages of the same link overtake it);
- delay spikes: with probability ``spike`` a copy gets an extra exponential delay of mean
  ``spike_delay``;
- crash/restart: crashes arrive as a Poisson process of ``crash_rate`` per second (network-wide),
  each at a uniformly chosen node that is up; the node is down for an exponential time of mean
  ``downtime`` (it loses all state and receives nothing), then restarts with a new incarnation;
- partitions: a Poisson process of ``partition_rate`` per second splits the nodes into two random
  non-empty sides; messages across the cut are lost until the partition heals after an
  exponential time of mean ``partition_duration``.

Every fault stops at ``until`` (crashed nodes still restart, partitions still heal), so a test can
check that the network recovers. The node service's tests can use ``arrivals`` and ``partitioned``
directly (they need nothing from the simulator).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from hwctl.protocols.base import NodeId


@dataclass(frozen=True)
class FaultConfig:
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_window: float = 200e-6
    spike: float = 0.0
    spike_delay: float = 5e-3
    crash_rate: float = 0.0
    downtime: float = 5e-3
    partition_rate: float = 0.0
    partition_duration: float = 10e-3
    until: float = math.inf

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder", "spike"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v}")
        for name in ("reorder_window", "spike_delay", "crash_rate", "downtime", "partition_rate",
                     "partition_duration"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    def describe(self) -> str:
        return (f"loss={self.loss:.3f} dup={self.duplicate:.3f} reorder={self.reorder:.3f}"
                f"/{self.reorder_window * 1e6:.0f}us spike={self.spike:.3f}/"
                f"{self.spike_delay * 1e3:.1f}ms crash={self.crash_rate:.1f}/s"
                f"(down {self.downtime * 1e3:.1f}ms) partition={self.partition_rate:.1f}/s"
                f"({self.partition_duration * 1e3:.1f}ms) until={self.until}")


@dataclass
class FaultModel:
    cfg: FaultConfig
    seed: int = 0
    rng: random.Random = field(init=False)
    #: partitions: (one side, start time, heal time)
    cuts: list[tuple[frozenset[NodeId], float, float]] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    delayed: int = 0
    crashes: int = 0
    partitions: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(f"faults-{self.seed}")

    # -- messages --------------------------------------------------------------------------------

    def partitioned(self, a: NodeId, b: NodeId, now: float) -> bool:
        return any(start <= now < heal and ((a in side) != (b in side))
                   for side, start, heal in self.cuts)

    def arrivals(self, src: NodeId, dst: NodeId, now: float, delay: float) -> list[float]:
        """Arrival times of one message sent at ``now`` over a link of one-way ``delay``."""
        c = self.cfg
        if now >= c.until:
            return [now + delay]
        if self.partitioned(src, dst, now) or self.rng.random() < c.loss:
            self.lost += 1
            return []
        copies = 2 if self.rng.random() < c.duplicate else 1
        self.duplicated += copies - 1
        out = []
        for _ in range(copies):
            t = now + delay
            if self.rng.random() < c.reorder:
                t += self.rng.uniform(0.0, c.reorder_window)
                self.delayed += 1
            if self.rng.random() < c.spike:
                t += self.rng.expovariate(1.0 / c.spike_delay)
                self.delayed += 1
            out.append(t)
        return out

    # -- crashes and partitions ------------------------------------------------------------------

    def install(self, sim: Any) -> None:
        """Schedule crashes/restarts and partitions on ``sim`` (a :class:`hwctl.sim.network.NetworkSim`)
        up to ``min(until, sim duration)``."""
        c = self.cfg
        end = min(c.until, sim.cfg.duration)
        nodes = list(getattr(sim, "crashable", sorted(sim.g.nodes)))
        if c.crash_rate > 0:
            t = self.rng.expovariate(c.crash_rate)
            while t < end:
                sim._at(t, self._crash, sim, nodes)
                t += self.rng.expovariate(c.crash_rate)
        if c.partition_rate > 0 and len(nodes) > 1:  # the scheduler S can be cut off too
            t = self.rng.expovariate(c.partition_rate)
            while t < end:
                k = self.rng.randint(1, len(nodes) - 1)
                side = frozenset(self.rng.sample(nodes, k))
                heal = t + self.rng.expovariate(1.0 / c.partition_duration)
                self.cuts.append((side, t, heal))
                self.partitions += 1
                t += self.rng.expovariate(c.partition_rate)

    def _crash(self, sim: Any, nodes: list[NodeId]) -> None:
        up = [n for n in nodes if n not in sim.down]
        if not up:
            return
        n = self.rng.choice(up)
        self.crashes += 1
        sim.crash(n)
        sim._at(sim.now + self.rng.expovariate(1.0 / self.cfg.downtime), sim.restart, n)


class SendShim:
    """Faults on a node service's ZeroMQ path (tests of :mod:`hwctl.node` in robust mode).

    Wraps a ``send(peer, kind, payload)`` function: each message of one of ``kinds`` (all when
    None) is lost, duplicated, reordered or delayed as :meth:`FaultModel.arrivals` decides, and
    its copies are sent later with ``call_later(delay, fn, *args)`` (an asyncio loop's); other
    messages pass unchanged. ``now()`` is the loop's clock (faults stop at ``cfg.until``)."""

    def __init__(self, model: FaultModel, src: NodeId, send: Any, call_later: Any, now: Any,
                 kinds: frozenset[bytes] | None = None) -> None:
        self.model = model
        self.src = src
        self._send = send
        self._call_later = call_later
        self._now = now
        self.kinds = kinds
        self.passed = 0

    def __call__(self, peer: NodeId, kind: bytes, payload: bytes) -> None:
        if self.kinds is not None and kind not in self.kinds:
            self._send(peer, kind, payload)
            return
        now = self._now()
        for t in self.model.arrivals(self.src, peer, now, 0.0):
            self.passed += 1
            if t <= now:
                self._send(peer, kind, payload)
            else:
                self._call_later(t - now, self._send, peer, kind, payload)
