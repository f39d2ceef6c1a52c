"""A lab on one clock: the node devices and heralding stations of a topology (sans-IO core and
its real-time server, ``hwctl twin --lab 2x2``).

:class:`Lab` holds one :class:`~hwctl.sim.twin.model.TwinModel` per node (its node device: ports in the
order of the sorted neighbour names) and one :class:`~hwctl.sim.twin.station.StationModel` per edge,
at the edge's midpoint (``delay`` = fibre delay of half the edge). Everything runs on one device
clock: ``lab.now``. A node's fire program on a port goes to the station of that edge (the
station learns it when the schedule starts, before its first marker arrives); the station's
heralds reach both ends' ``hl_i`` after the line and fibre time and are fed to the node devices
at that cycle (docs/physical-layer.md sections 2-3, docs/twin.md "Lab").

    lab = Lab(topologies.by_name("K2"), p_photon=1e-3, seed=1)
    lab.feed("A", encode(SchedulePairs(...), seq=1)); lab.feed("B", ...)
    lab.advance_to(lab.now + 10_000_000)
    frames_a = lab.read("A")

:class:`LabServer` serves every node device of a lab on its own pseudo-terminal (or to in-process
links) in real time on the shared reference (:mod:`hwctl.timebase`), so node services started
separately, in any order, see one network of devices on one clock.
"""

from __future__ import annotations

import errno
import heapq
import math
import os
import select
import shutil
import socket
import tempfile
import threading
import time
import tty
from collections.abc import Callable

from hwctl import timebase
from hwctl.sim.twin.model import TwinConfig, TwinModel
from hwctl.sim.twin.pacing import BACKLOG_MAX, MAX_STEP_S, CatchUp, UartBacklog, precise_timers
from hwctl.sim.twin.station import StationConfig, StationModel
from hwctl.sim.twin.stationdev import StationHost
from hwctl.wire import CLOCK_HZ


def claim_lock(lock_path: str, refusal: str) -> int:
    """Hold an advisory lock on ``lock_path`` (created if missing) for as long as this process
    keeps the returned descriptor open; it is released when the descriptor is closed or the
    process dies, so a claim left by a dead process never blocks. Another live holder: a
    :class:`~hwctl.errors.UserError` saying ``refusal``. The lab's ``--link-dir``
    (:meth:`LabServer._lock_link_dir`) and the single twin's ``--link`` (sim/twin/serve.py)."""
    import fcntl

    from hwctl.errors import UserError

    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UserError(refusal) from None
    return fd

class Lab:
    """Node devices and stations of topology ``g`` on one clock (sans-IO)."""

    def __init__(self, g, *, p_photon: float, dark_prob: float = 0.0, seed: int = 0,
                 start: int = 0, node_kw: dict[str, dict] | None = None,
                 station_kw: dict | None = None) -> None:
        self.g = g
        self.names = sorted(g.nodes)
        self.ports = {n: {m: i for i, m in enumerate(sorted(g.neighbors(n)))} for n in self.names}
        self.nodes: dict[str, TwinModel] = {}
        for i, n in enumerate(self.names):
            kw = dict(p_photon=0.0, dark_prob=0.0, seed=seed * 1000 + i,
                      n_ports=max(1, len(self.ports[n]))) | (node_kw or {}).get(n, {})
            m = TwinModel(TwinConfig(**kw))
            m.export_programs = True
            m.advance_to(start)
            self.nodes[n] = m
        self.stations: dict[tuple[str, str], StationModel] = {}
        for k, (u, v) in enumerate(sorted(tuple(sorted(e)) for e in g.edges)):
            length = g.edges[u, v].get("length_m", 2000.0)
            cfg = StationConfig.for_link(length, p_photon=p_photon, dark_prob=dark_prob,
                                         seed=seed * 7919 + k, **(station_kw or {}))
            self.stations[u, v] = StationModel(cfg, now=start)
        self.now = start
        self._flight: list[tuple[int, int, str, int, int, int]] = []  # (arrive, n, node, port, t, bell)
        self._n = 0
        self._hosts: dict[tuple[str, str], StationHost] = {}  # stations' host links, on first use
        #: nodes a herald landed on whose UART still sends what it made (PAIR, DONE): their
        #: frame ends are "urgent" deadlines (:meth:`next_urgent`)
        self._landed: set[str] = set()

    @property
    def station_names(self) -> list[str]:
        """Device names of the stations, ``"u-v"`` per edge (u < v), for :meth:`feed`/:meth:`read`."""
        return [f"{u}-{v}" for u, v in self.stations]

    @property
    def devices(self) -> list[str]:
        """Every device of the lab: node devices, then stations."""
        return [*self.names, *self.station_names]

    def station_host(self, name: str) -> StationHost:
        """The host link of station ``"u-v"`` (hwctl.sim.twin.stationdev: registers, HERALD events)."""
        u, _, v = name.partition("-")
        key = (min(u, v), max(u, v))
        st = self.stations[key]  # KeyError: no such station
        h = self._hosts.get(key)
        if h is None or h.model is not st:  # (a station replaced after construction)
            h = self._hosts[key] = StationHost(st)
        return h

    # ------------------------------------------------------------------ topology helpers
    def port(self, node: str, peer: str) -> int:
        """Herald port of ``node`` towards ``peer``."""
        return self.ports[node][peer]

    def station(self, u: str, v: str) -> StationModel:
        return self.stations[min(u, v), max(u, v)]

    # ------------------------------------------------------------------ I/O
    def feed(self, node: str, data: bytes) -> None:
        """Host bytes for device ``node`` (a node, or a station ``"u-v"``), executed at ``now``."""
        if node not in self.nodes:
            self.station_host(node).feed(data)
            return
        self.nodes[node].feed(data)
        self._forward(node)

    def read(self, node: str) -> bytes:
        if node not in self.nodes:
            return self.station_host(node).read()
        return self.nodes[node].read()

    # ------------------------------------------------------------------ time
    def next_deadline(self) -> int | None:
        """When a real-time server should step the lab again (node output, stations, heralds in
        flight; see :meth:`TwinModel.next_wake`)."""
        return self._earliest("next_wake")

    def _earliest(self, query: str) -> int | None:
        """The earliest of every node's ``query()`` (a :class:`TwinModel` deadline method),
        every station's next deadline and the next herald landing; None for none. (Plain
        loops, no lists or min(): the real-time server asks several times per iteration.)"""
        best = self._flight[0][0] if self._flight else None
        for m in self.nodes.values():
            d = getattr(m, query)()
            if d is not None and (best is None or d < best):
                best = d
        return self._stations_min(best)

    def _stations_min(self, best: int | None) -> int | None:
        """min(``best``, every station's next deadline), None for none."""
        for s in self.stations.values():
            d = s.next_deadline()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def next_event(self) -> int | None:
        """The next cycle at which any model of the lab does anything on its own (every
        internal event, not only the wake-ups of :meth:`next_deadline`: in block mode a node
        makes output between those): the lab is idle before it
        (:meth:`hwctl.sim.twin.pacing.CatchUp.target`'s ``idle_until``)."""
        return self._earliest("next_deadline")

    def next_urgent(self) -> int | None:
        """The next deadline a host's request waits for (a real-time server meets these
        precisely, :attr:`LabServer.SPIN_S`): a station's verdict, a herald landing, a node
        interaction (a schedule's end, a herald consumed), and, after a herald landed on a
        node, the end of each frame its UART sends until its event queue is empty (the PAIR
        and DONE the host waits for; a HEADER stream's arrivals and frames are not urgent).
        None while a node of the lab has a HEADER stream: such a lab wakes every few hundred
        us anyway, and polling its urgent deadlines measured no gain, only CPU the hosts need
        (benchmarks/RESULTS.md, eleventh session)."""
        if any(m._hdr_next is not None for m in self.nodes.values()):
            return None
        best = self._earliest("next_interaction")
        for n in list(self._landed):
            m = self.nodes[n]
            if m._tx_cur is None and not m._ev_q:
                self._landed.discard(n)
            elif m._tx_cur is not None and (best is None or m._tx_done < best):
                best = m._tx_done
        return best

    def _next_step(self) -> int | None:
        """Next cycle at which the models must be stepped together: node interactions (schedule
        ends), station events, heralds landing. Between them each node runs on its own (its
        header arrivals and UART touch nothing else), so a 1.3 MHz source costs no lab steps."""
        return self._earliest("next_interaction")

    def advance_to(self, cycle: int) -> None:
        if cycle < self.now:
            raise ValueError(f"time runs forward only: now={self.now}, asked {cycle}")
        while True:
            d = self._next_step()
            if d is None or d > cycle:
                break
            self._step_to(max(d, self.now), full=False)
        self._step_to(cycle)

    def advance(self, cycles: int) -> None:
        self.advance_to(self.now + cycles)

    def _step_to(self, d: int, *, full: bool = True) -> None:
        """Step the lab to cycle ``d``. ``full=False`` (a step inside :meth:`advance_to`, at a
        node interaction, a station's verdict or a herald landing): only the models something
        happens to at ``d`` are advanced (a node with an interaction or a herald landing by
        then, a station with a verdict by then); the others only make their own output
        bytes meanwhile and are advanced by the final, full step. The outputs are the same
        cycle for cycle; a step that advanced all eight models of a 2x2 lab cost most of the
        lab's heaviest iteration (a verdict and its herald landing: the pair's DONE waits for
        it on its way to the host; benchmarks/RESULTS.md, ninth session)."""
        self.now = d
        landing = () if full else {f[2] for f in self._flight if f[0] <= d}
        for n, m in self.nodes.items():
            if not full and n not in landing:
                i = m.next_interaction()
                if i is None or i > d:
                    continue
            m.advance_to(d)
            self._forward(n)
        while self._flight and self._flight[0][0] <= d:
            _, _, n, port, t, bell = heapq.heappop(self._flight)
            self.nodes[n].inject_herald(port, t, bell)
            self._landed.add(n)
            self._forward(n)
        for (u, v), s in self.stations.items():
            if not full:
                sd = s.next_deadline()
                if sd is None or sd > d:
                    continue
            s.advance_to(d)
            host = self._hosts.get((u, v))
            if host is not None and host.model is s:
                host.collect()
            for h in s.read():
                dst = u if h.line == 0 else v
                peer = v if h.line == 0 else u
                self._n += 1
                heapq.heappush(self._flight, (h.arrive, self._n, dst, self.port(dst, peer), h.t, h.bell))

    def _forward(self, node: str) -> None:
        """The node's fire-program changes to the stations of those ports."""
        m = self.nodes[node]
        if not m.programs:
            return
        peers = sorted(self.ports[node])
        for p in m.programs:
            if p.port >= len(peers):
                continue  # a port with no link: its trigger reaches no station
            peer = peers[p.port]
            st = self.station(node, peer)
            end = 0 if node < peer else 1
            if p.kind == "start":
                st.mark(end, p.t_start, p.period, p.count)
            else:
                st.stop(end, p.cycle)
        m.programs.clear()


#: how :class:`LabServer` serves its devices to hosts on this machine (``device_link``)
DEVICE_LINKS = ("pty", "unix")


class LabServer:
    """Serve a :class:`Lab` in real time on the shared reference: every device of the lab (node
    devices and stations, :attr:`Lab.devices`) on its own pseudo-terminal (``urls``), or each on
    its own ZeroMQ ROUTER (``zmq``: ``zmq+tcp://`` URLs, the board bridge's message format,
    :mod:`hwctl.transport.devserver`), and/or to in-process endpoints (:meth:`attach`). A
    background thread owns the lab; ``lock`` guards it for snapshots.

    ``zmq``: a bind endpoint; port 0 gives every device a free port, port P gives the devices
    ports P, P+1, ... in :attr:`Lab.devices` order. ``keys`` + ``allow``: CurveZMQ with a client
    allowlist (:mod:`hwctl.transport.security`); without them only loopback is served."""

    MAX_WAIT = 0.05
    #: the last part of a wait for an urgent model deadline (:meth:`Lab.next_urgent`: a
    #: station's verdict, a herald's landing, the PAIR/DONE frames' UART end) is polled
    #: (``select`` with timeout 0), not slept: a timed sleep on the 2-vCPU VM woke 55-90 us late
    #: at p50 (even at real-time priority), and every pair's PAIR and DONE came that much late
    #: to the hosts; polled, ~1-2 us (benchmarks/RESULTS.md, eleventh session). CPU: at most
    #: this per urgent deadline (polling every deadline, a HEADER stream's ~2,000 a second
    #: included, cost the demo 8 % more CPU; a lab with a HEADER stream polls none). Only for a
    #: lab served on ptys (its own
    #: thread in a process of its own: ``hwctl twin --lab``, the demo's lab process); an
    #: in-process lab (``attach``) would hold the node services' interpreter lock while it
    #: polls. ``HWCTL_LAB_SPIN_US`` overrides it (0: off), e.g. for a benchmark's A/B pair
    SPIN_S = 150e-6
    #: most model time (s) one loop iteration advances the lab: a lab that fell behind real
    #: time catches up in slices of this, like every real-time twin server
    #: (:class:`hwctl.sim.twin.pacing.CatchUp`, the one implementation)
    MAX_STEP_S = MAX_STEP_S
    #: device_link "unix": an accept() that fails for want of descriptors (EMFILE, ENFILE,
    #: ENOBUFS) leaves the host's connection queued, so the listening socket stays readable: that
    #: socket is left out of the wait this long (s) instead of being retried in every iteration
    #: (a busy loop), as the node's peer listener does (``hwctl.transport.peerstream``)
    ACCEPT_PAUSE_S = 0.1

    def __init__(self, lab: Lab, *, pty: bool = True, link_dir: str | None = None,
                 hz: int = CLOCK_HZ, zmq: str | None = None, keys=None, allow=None,
                 limits=None, backlog_max: int = BACKLOG_MAX, device_link: str = "pty") -> None:
        """``backlog_max``: device bytes held per pty for a host that does not read before the
        line overruns (:class:`~hwctl.sim.twin.pacing.UartBacklog`; a test whose host may lag on a
        loaded machine raises it so that lag never drops events). ``device_link`` (with
        ``pty``): "pty" (a pseudo-terminal per device, ``serial://``) or "unix" (a Unix stream
        socket per device, ``unix://``, :class:`hwctl.transport.links.UnixLink`: the same bytes
        without the pty's kernel worker; one host per device, a newer connection replaces the
        older; what a device sends while no host is connected is lost, as a UART's with no
        cable)."""
        if device_link not in DEVICE_LINKS:
            raise ValueError(f"device_link must be one of {DEVICE_LINKS}, got {device_link!r}")
        self.lab = lab
        self.hz = hz
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._fds: dict[int, str] = {}
        self._masters: dict[str, int] = {}
        self._slaves: list[int] = []
        devices = lab.devices
        #: device bytes the pty has not taken yet; past 64 KiB (nobody reading) further output is
        #: dropped whole frames at a time, as a UART receiver overruns (pacing.UartBacklog)
        self._pending: dict[str, UartBacklog] = {n: UartBacklog(backlog_max) for n in devices}
        #: devices whose output is served: the node devices, and a station once a host has sent
        #: it bytes (its host link's HERALD events start then; a station nobody talks to, as in
        #: ``hwctl demo``, costs no event encoding and no writes to a pty nobody reads)
        self._served: list[str] = list(lab.names)
        self._inbox: dict[str, bytearray] = {n: bytearray() for n in devices}
        #: slices when behind real time; host bytes held until the lab reaches their cycle
        self._catchup: CatchUp[str] = CatchUp(round(self.MAX_STEP_S * hz))
        self._sinks: dict[str, Callable[[bytes], None]] = {}
        self.urls: dict[str, str] = {}
        self._links: list[str] = []
        self._lock_fd: int | None = None  # the link directory's lock (_lock_link_dir)
        self._zmq = _ZmqDevices(devices, zmq, keys, allow, limits) if zmq else None
        spin = os.environ.get("HWCTL_LAB_SPIN_US")
        self.spin_s = self.SPIN_S if not spin else float(spin) * 1e-6  # (pty only: _wait)
        self._urgent = False  # the wait _timeout gave ends at an urgent deadline (_wait)
        #: device_link "unix": listening socket fd -> (device, socket); device -> its host's
        #: connection (its fd is the device's entry in ``_masters`` while connected)
        self._unix = pty and self._zmq is None and device_link == "unix"
        self._listen: dict[int, tuple[str, socket.socket]] = {}
        self._conns: dict[str, socket.socket] = {}
        #: listening fd -> ``clock()`` at which it is listened to again (paused by _accept)
        self._listen_paused: dict[int, float] = {}
        #: the pause's clock (s; a test sets a virtual one)
        self.clock: Callable[[], float] = time.monotonic
        #: what the server dropped or refused: ``accept_failed`` (a host's connection that
        #: accept() could not take, out of descriptors; it stays queued and is taken later)
        self.counts: dict[str, int] = {"accept_failed": 0}
        self._sock_dir: str | None = None  # a temporary directory of ours (no link_dir)
        if self._zmq is not None:
            self.urls = dict(self._zmq.urls)
        elif self._unix:
            if link_dir:
                self._lock_link_dir(link_dir)
                where = link_dir
            else:
                where = self._sock_dir = tempfile.mkdtemp(prefix="hwctl-lab-")
            for n in devices:
                path = os.path.abspath(os.path.join(where, n))
                if os.path.islink(path) or os.path.exists(path):  # a stale link or socket (the
                    os.unlink(path)  # lock says no lab serves there)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.bind(path)
                sock.listen(4)
                sock.setblocking(False)
                self._listen[sock.fileno()] = (n, sock)
                self._links.append(path)
                self.urls[n] = f"unix://{path}"
        elif pty:
            if link_dir:
                self._lock_link_dir(link_dir)
            for n in devices:
                master, slave = os.openpty()
                tty.setraw(slave)
                os.set_blocking(master, False)
                self._masters[n] = master
                self._fds[master] = n
                self._slaves.append(slave)
                path = os.ttyname(slave)
                if link_dir:
                    os.makedirs(link_dir, exist_ok=True)
                    link = os.path.join(link_dir, n)
                    if os.path.islink(link):  # (a stale one: the lock says no lab serves there)
                        os.unlink(link)
                    os.symlink(path, link)
                    self._links.append(link)
                    path = link
                self.urls[n] = f"serial://{path}"

    def _lock_link_dir(self, link_dir: str) -> None:
        """One lab per link directory: a second one would replace the device links under the
        first one's nodes, and remove them when it stops (the first lab still running, its
        links gone). An advisory lock held while the lab serves (released when it stops, or its
        process dies)."""
        os.makedirs(link_dir, exist_ok=True)
        self._lock_fd = claim_lock(
            os.path.join(link_dir, ".hwctl-lab.lock"),
            f"--link-dir {link_dir}: another lab serves its devices there (its links would be "
            f"replaced under its nodes): stop that lab first, or use another --link-dir")

    def status(self, device: str) -> dict:
        """A ZeroMQ-served device's client/drop counters (hwctl.transport.devserver)."""
        return self._zmq.sessions[device].counters() if self._zmq is not None else {}

    # ------------------------------------------------------------------ in-process endpoints
    def attach(self, node: str, sink: Callable[[bytes], None]) -> None:
        """Device -> host bytes of ``node`` go to ``sink`` (called from the server thread)."""
        self._sinks[node] = sink
        self._serve(node)

    def send(self, node: str, data: bytes) -> None:
        """Host -> device bytes for ``node`` (any thread)."""
        with self.lock:
            self._inbox[node] += data
        self._wake()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> LabServer:
        with self.lock:
            self.lab.advance_to(max(self.lab.now, timebase.cycle_now(self.hz)))
        self._thread = threading.Thread(target=self._main, name="lab", daemon=True)
        self._thread.start()
        return self

    @property
    def lag_max_s(self) -> float:
        """The most the lab was behind real time after a step, s (pacing.CatchUp.lag_max): its
        devices answered commands and stamped events that much late."""
        return self._catchup.lag_max / self.hz

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for sock in [*self._conns.values(), *(ls for _, ls in self._listen.values())]:
            sock.close()  # (unix: the masters are these sockets' fds)
        fds = [] if self._unix else list(self._masters.values())
        for fd in [*fds, *self._slaves, self._wake_r, self._wake_w]:
            try:
                os.close(fd)
            except OSError:
                pass
        for link in self._links:
            if os.path.islink(link) or (self._unix and os.path.exists(link)):
                os.unlink(link)
        if self._sock_dir is not None:
            shutil.rmtree(self._sock_dir, ignore_errors=True)
        if self._lock_fd is not None:  # (after the links: the next lab makes its own)
            os.close(self._lock_fd)
            self._lock_fd = None
        if self._zmq is not None:
            self._zmq.close()

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _main(self) -> None:
        precise_timers()  # deadlines to the microsecond, not 50 us late (pacing.precise_timers)
        try:
            self._loop()
        except BaseException as exc:  # surfaced by the CLI / callers, never silent
            self.error = exc

    def _serve(self, device: str) -> None:
        if device not in self._served:
            self._served.append(device)

    def _timeout(self) -> float:
        d = self.lab.next_deadline()
        if d is None:
            self._urgent = False
            return self.MAX_WAIT
        polls = (self.spin_s > 0 and (self._masters or self._listen) and not self._sinks
                 and self._zmq is None)
        u = self.lab.next_urgent() if polls else None  # (see _wait)
        self._urgent = u is not None and u <= d  # the wait ends at a deadline a host waits for
        return min(self.MAX_WAIT, max(0.0, (d - timebase.cycle_now(self.hz)) / self.hz))

    def _wait(self, timeout: float) -> tuple[list[int], list[int]]:
        """Readable and writable file descriptors (ptys, the wake pipe); with ZeroMQ, the
        devices' messages are received here too (into ``self._zmq``)."""
        wl = [self._masters[n] for n, p in self._pending.items() if len(p) and n in self._masters]
        if self._zmq is None:
            listen, resume = self._listening()
            urgent = self._urgent
            if resume is not None and resume < timeout:  # a paused listener's pause ends first
                timeout, urgent = resume, False
            rl = [*self._masters.values(), self._wake_r, *listen]
            if not urgent or not 0 < timeout < self.MAX_WAIT:  # (_urgent: polls, _timeout)
                r, w, _ = select.select(rl, wl, [], timeout)
                return r, w
            end = time.perf_counter() + timeout  # a model deadline: poll its last SPIN_S
            r, w, _ = select.select(rl, wl, [], max(0.0, timeout - self.spin_s))
            while not r and not w and time.perf_counter() < end:
                r, w, _ = select.select(rl, wl, [], 0)
            return r, w
        r = self._zmq.poll(self._wake_r, timeout)
        return r, []

    def _listening(self) -> tuple[list[int], float | None]:
        """The listening sockets to wait on (those not paused by :meth:`_accept`), and the
        seconds until the next paused one is listened to again (None: none paused)."""
        if not self._listen_paused:
            return list(self._listen), None
        now = self.clock()
        for fd, at in list(self._listen_paused.items()):
            if at <= now:
                del self._listen_paused[fd]
        rest = [at - now for at in self._listen_paused.values()]
        return ([fd for fd in self._listen if fd not in self._listen_paused],
                min(rest) if rest else None)

    def _loop(self) -> None:
        lab = self.lab
        zdev = self._zmq
        carry: list[tuple[str, bytes]] = []  # ZeroMQ commands released by the last device output
        catchup = self._catchup  # host bytes not due yet; behind: no waiting (pacing.CatchUp)
        while not self._stop.is_set():
            with self.lock:
                timeout = 0.0 if carry or catchup.behind else self._timeout()
            r, w = self._wait(timeout)
            now = timebase.cycle_now(self.hz)
            if self._wake_r in r:
                os.read(self._wake_r, 4096)
            chunks: list[tuple[str, bytes]] = carry
            carry = []
            for fd in r:
                if fd == self._wake_r:
                    continue
                if fd in self._listen:
                    self._accept(fd)
                    continue
                n = self._fds.get(fd)
                if n is None:  # (unix: a connection replaced in this iteration)
                    continue
                try:
                    data = os.read(fd, 65536)
                except OSError as exc:  # EIO: no slave open right now
                    if self._unix:  # reset by the host: it went away
                        self._hang_up(n)
                        continue
                    if exc.errno != errno.EIO:
                        raise
                    continue
                if data:
                    catchup.hold(now, n, data)
                elif self._unix:  # the host closed its end
                    self._hang_up(n)
            if zdev is not None:
                for n, d in zdev.take():
                    catchup.hold(now, n, d)
            with self.lock:
                start = lab.now
                self._advance(now)
                for n, box in self._inbox.items():
                    if box:
                        catchup.hold(now, n, bytes(box))
                        box.clear()
                chunks += catchup.due(lab.now)
                for n, data in chunks:
                    lab.feed(n, data)
                    self._serve(n)
                self._passed(start + catchup.max_step)
                outs = {n: lab.read(n) for n in self._served}
            for n, out in outs.items():
                if not out:
                    continue
                sink = self._sinks.get(n)
                if sink is not None:
                    sink(out)
                elif zdev is not None:
                    carry += zdev.device_data(n, out)
                elif n in self._masters:
                    self._pending[n].push(out)
                    self._flush(n)
            for fd in w:  # ptys that had a full buffer and took bytes again
                n = self._fds.get(fd)
                if n is not None:
                    self._flush(n)

    #: most extra advances :meth:`_passed` makes in one loop iteration
    PASSED_MAX = 4

    def _passed(self, limit: int | None = None) -> None:
        """Deadlines that came while this iteration ran, run before its output is read. The
        iteration of a station's verdict and its herald landing (the pair's PAIR and DONE
        encoded) is the lab's heaviest, ~0.1-0.2 ms of Python, and in that time the UART
        finishes those frames (0.13 ms at 3 Mbaud): they left one loop iteration later before
        (a select, the reads, a second advance: 25-60 us on every pair's DONE on its way to the
        host; benchmarks/RESULTS.md, ninth session). The model still never runs ahead of the
        wall clock: each advance goes to the cycle read just before it. Not while behind (the
        catch-up takes its slices one per iteration, reading the hosts in between), and never
        past ``limit`` (the loop: one slice after the cycle the iteration started at): a host gets at
        most a slice's output from one iteration, as while catching up (an iteration the
        machine stalled for ms took another slice here and handed a host more). Call with
        ``lock`` held."""
        lab, catchup = self.lab, self._catchup
        for _ in range(self.PASSED_MAX):
            if catchup.behind:
                return
            d = lab.next_deadline()
            now = timebase.cycle_now(self.hz)
            if limit is not None:
                now = min(now, limit)
            if d is None or d > now or now <= lab.now:
                return
            self._advance(now)
            for n, data in catchup.due(lab.now):
                lab.feed(n, data)
                self._serve(n)

    def _advance(self, now: int) -> bool:
        """Advance the lab towards real time ``now`` by at most one slice (:attr:`MAX_STEP_S`,
        :class:`~hwctl.sim.twin.pacing.CatchUp`); True while it is still behind. Call with
        ``lock`` held."""
        lab, catchup = self.lab, self._catchup
        d = lab.next_deadline()
        # woken after more than a slice of idle model time (a long wait for the next deadline):
        # the slice starts at the lab's next event (CatchUp.target)
        idle = lab.next_event() if d is not None and now - lab.now > catchup.max_step else None
        lab.advance_to(catchup.target(lab.now, now, d, idle))
        return catchup.behind

    def _flush(self, device: str) -> None:
        """Hand the device's pending bytes to its pty, as much as it takes now."""
        backlog = self._pending[device]
        if len(backlog):
            try:
                backlog.sent(os.write(self._masters[device], backlog.buf))
            except BlockingIOError:  # full (nobody reading): select tells when it takes more
                pass
            except OSError:  # unix: the host went away (a pty master raises nothing else)
                if not self._unix:
                    raise
                self._hang_up(device)

    def _accept(self, fd: int) -> None:
        """device_link "unix": a host connects to a device; it replaces the one before (a node
        restarted), which is hung up."""
        n, ls = self._listen[fd]
        try:
            conn, _ = ls.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):  # nothing queued,
            return  # or that connection is gone already
        except OSError:  # EMFILE, ENFILE, ENOBUFS: the connection stays queued and the socket
            # readable: pause listening on it (else a busy loop) and take it later
            self.counts["accept_failed"] += 1
            self._listen_paused[fd] = self.clock() + self.ACCEPT_PAUSE_S
            return
        conn.setblocking(False)
        self._hang_up(n)
        self._conns[n] = conn
        self._masters[n] = conn.fileno()
        self._fds[conn.fileno()] = n

    def _hang_up(self, device: str) -> None:
        """device_link "unix": close ``device``'s host connection (if any) and drop what was
        waiting for it: the next host starts clean."""
        conn = self._conns.pop(device, None)
        if conn is None:
            return
        self._fds.pop(self._masters.pop(device), None)
        self._pending[device].buf.clear()
        conn.close()


class _ZmqDevices:
    """One ZeroMQ ROUTER per lab device, each with its own client table and command serialiser
    (:class:`hwctl.transport.devserver.DeviceSessions`, as ``hwctl twin --zmq`` serves one twin)."""

    def __init__(self, devices: list[str], endpoint: str, keys, allow, limits) -> None:
        import zmq

        from hwctl.errors import UserError
        from hwctl.transport.devserver import DeviceSessions, configure_router
        from hwctl.transport.security import CurveServer, require_curve_off_loopback

        if (keys is None) != (allow is None):
            raise UserError("a served lab needs both a key pair and an allowlist, or neither")
        require_curve_off_loopback(endpoint, keys is not None, "twin --lab --zmq")
        self._zmqmod = zmq
        self.ctx = zmq.Context()  # its own: the ZAP handler (allowlist) is per context
        self.curve = CurveServer(self.ctx, keys, allow) if keys is not None and allow else None
        base, _, port = endpoint.rpartition(":")
        self.socks: dict[str, object] = {}
        self.sessions: dict[str, DeviceSessions] = {}
        self.urls: dict[str, str] = {}
        self._inbox: list[tuple[str, bytes]] = []
        self._next_expiry = 0.0
        try:
            for i, n in enumerate(devices):
                sock = self.ctx.socket(zmq.ROUTER)
                self.sessions[n] = DeviceSessions(limits)
                configure_router(sock, self.sessions[n].limits)
                if self.curve is not None:
                    self.curve.secure(sock)
                self.socks[n] = sock
                ep = endpoint if port in ("0", "*") else f"{base}:{int(port) + i}"
                sock.bind(ep)
                self.urls[n] = "zmq+" + sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        except (zmq.ZMQError, ValueError) as exc:
            self.close()
            raise UserError(f"cannot serve the lab on {endpoint}: {exc}") from None
        self._poller = zmq.Poller()
        for sock in self.socks.values():
            self._poller.register(sock, zmq.POLLIN)
        self._wake_fd: int | None = None

    def poll(self, wake_fd: int, timeout: float) -> list[int]:
        """Wait up to ``timeout`` s for a client message or the wake pipe; client messages are
        handled (commands queued for :meth:`take`). Returns [wake_fd] if it is readable."""
        import time as _time

        zmq = self._zmqmod
        if self._wake_fd != wake_fd:
            self._poller.register(wake_fd, zmq.POLLIN)
            self._wake_fd = wake_fd
        # (ZeroMQ polls in whole ms: round up, a deadline is met at most 1 ms late, no spinning)
        ready = dict(self._poller.poll(math.ceil(timeout * 1000)))
        now = _time.monotonic()
        for n, sock in self.socks.items():
            if sock not in ready:
                continue
            for _ in range(1000):  # bounded per turn: the lab runs in between
                try:
                    msg = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._apply(n, self.sessions[n].client_message(msg[0], msg[1:], now))
        if now >= self._next_expiry:
            self._next_expiry = now + 0.5
            for n, ses in self.sessions.items():
                self._apply(n, ses.expire(now))
        return [wake_fd] if wake_fd in ready else []

    def take(self) -> list[tuple[str, bytes]]:
        out, self._inbox = self._inbox, []
        return out

    def device_data(self, n: str, data: bytes) -> list[tuple[str, bytes]]:
        """Device ``n``'s output to its clients; returns the commands it released."""
        import time as _time

        self._apply(n, self.sessions[n].device_data(data, _time.monotonic()))
        return self.take()

    def _apply(self, n: str, step) -> None:
        import json

        from hwctl.transport.devserver import send
        from hwctl.transport.zmqwire import CONTROL

        if step.to_device:
            self._inbox.append((n, bytes(step.to_device)))
        sock, ses = self.socks[n], self.sessions[n]
        for ident, parts in step.to_clients:
            send(sock, ident, parts, ses)
        for ident in step.status_for:
            send(sock, ident, [CONTROL, json.dumps({"device": n, **ses.counters()}).encode()], ses)

    def close(self) -> None:
        if self.curve is not None:
            self.curve.stop()
        self.ctx.destroy(linger=0)
