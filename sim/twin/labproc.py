"""A :class:`~hwctl.sim.twin.lab.LabServer` in its own process (``hwctl demo``'s lab, issue 13).

In one CPython process the lab's server thread and the node services' event loop share one
interpreter lock: every SCHEDULE_PAIRS round trip then waits for whatever the node services are
doing (measured in the in-process 2x2 demo on the 2-core machine: p50 3 ms, p90 11 ms), and the
devices answer late. In a process of its own the lab serves its pseudo-terminals the way a lab of
real devices would, on the shared clock (:mod:`hwctl.timebase`): the node services cannot tell the
difference, and separately started ``hwctl node`` processes and the demo see the same devices.

The child is forked with the lab already built (seeded physics, header sources, stations), so it
needs no pickling; a pipe carries the URLs back, and the station counters at the end.

    with LabProcess(lab) as lp:            # lp.urls: node -> serial:///dev/pts/N
        ...                                # node services open lp.urls[n]
        counters = lp.station_counters()   # {"A-B": {"CNT_HERALD": ..., ...}, ...}
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

from hwctl.sim.twin.lab import Lab, LabServer
from hwctl.wire import CLOCK_HZ

#: the child checks its server's health this often while waiting for the parent (s)
POLL_S = 0.2


def _counters(lab: Lab) -> dict[str, dict[str, int]]:
    return {f"{u}-{v}": {r.name: st.reg(r) for r in st.regs} for (u, v), st in lab.stations.items()}


def _serve(lab: Lab, conn: Connection, link_dir: str | None, hz: int,
           device_link: str = "pty") -> None:
    """Child: serve the lab on ptys (or Unix sockets) until the parent says stop (or goes
    away)."""
    try:
        server = LabServer(lab, link_dir=link_dir, hz=hz, device_link=device_link).start()
    except Exception as exc:  # pty unavailable, bad link dir: reported to the parent
        conn.send(("error", repr(exc)))
        return
    conn.send(("urls", dict(server.urls)))
    try:
        while server.error is None:
            if not conn.poll(POLL_S):
                continue
            cmd = conn.recv()
            if cmd == "counters":
                with server.lock:
                    conn.send(("counters", _counters(lab)))
            elif cmd == "stop":
                break
    except (EOFError, OSError):  # the parent went away: stop serving
        pass
    finally:
        server.stop()
        err = None if server.error is None else repr(server.error)
        try:
            conn.send(("stopped", _counters(lab), err, server.lag_max_s, dict(server.counts)))
        except (BrokenPipeError, OSError):
            pass


class LabProcess:
    """Serve ``lab`` on pseudo-terminals from a forked child process (``urls`` after start)."""

    def __init__(self, lab: Lab, *, link_dir: str | None = None, hz: int = CLOCK_HZ,
                 device_link: str = "pty") -> None:
        """``device_link``: "pty" or "unix" (:class:`~hwctl.sim.twin.lab.LabServer`)."""
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(lab, child, link_dir, hz, device_link),
                                 name="hwctl-lab", daemon=True)
        self._child_conn = child
        self.urls: dict[str, str] = {}
        #: the child's server error, if it stopped on one (set by :meth:`stop`)
        self.error: RuntimeError | None = None
        self.final_counters: dict[str, dict[str, int]] | None = None
        #: the most the lab was behind real time, s (LabServer.lag_max_s; set by :meth:`stop`)
        self.lag_max_s = 0.0
        #: the server's own counters (LabServer.counts; set by :meth:`stop`)
        self.counts: dict[str, int] = {}

    def start(self) -> LabProcess:
        self._proc.start()
        self._child_conn.close()
        kind, *rest = self._conn.recv()
        if kind != "urls":
            self._proc.join()
            raise RuntimeError(f"lab process did not start: {rest[0]}")
        self.urls = rest[0]
        return self

    def alive(self) -> bool:
        return self._proc.is_alive()

    def station_counters(self) -> dict[str, dict[str, int]]:
        """The stations' counter registers now (after :meth:`stop`: at the stop)."""
        if self.final_counters is not None:
            return self.final_counters
        self._conn.send("counters")
        msg = self._recv()
        if msg[0] == "counters":
            return msg[1]
        return self.final_counters or {}

    def _recv(self) -> tuple:
        msg = self._conn.recv()
        if msg[0] == "stopped":  # the child's server failed (or it was told to stop)
            self.final_counters = msg[1]
            self.lag_max_s = msg[3]
            self.counts = msg[4]
            if msg[2]:
                self.error = RuntimeError(f"lab stopped: {msg[2]}")
        return msg

    def stop(self) -> None:
        if self.final_counters is None and self._proc.is_alive():
            try:
                self._conn.send("stop")
                while self._recv()[0] != "stopped":
                    pass
            except (EOFError, OSError):
                pass
        self._proc.join(timeout=10)
        if self._proc.is_alive():  # pragma: no cover - a hung child
            self._proc.kill()
            self._proc.join()
        self._conn.close()

    def __enter__(self) -> LabProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
