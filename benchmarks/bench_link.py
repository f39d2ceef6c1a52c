"""Benchmarks of the control path: ESP handshake over ZeroMQ, twin attempt loop, pty serial link.

1. ESP SYN -> SYNACK -> ACK between two node services over ZeroMQ on loopback, timed at the
   initiator (SYN sent -> ACK sent = one round trip plus both cores); baseline: a bare ZeroMQ
   DEALER/ROUTER ping-pong measured in the same run. Goal p99 <= 1 ms.
2. Twin attempt loop in virtual time: attempts decided per wall second; baseline: a plain
   per-attempt Python loop (one random draw per attempt) measured in the same run. Goal: >= 10x
   real time, real time being one attempt per 500 ns cycle (2e6 attempts/s).
3. Event streaming over a pseudo-terminal at 3 Mbaud: the twin (in its own process, as
   `hwctl twin --pty` runs beside `hwctl node`) streams just below the line rate: 0.95 in
   20-byte HEADERs (legacy mode), 0.93 and, for 30 s, 0.68 in 73-byte HDR_BLOCK events of its
   block encoder (1.3 MHz source, arrival 0.143 and the header-path load 0.1); the host (serial link, bulk decoder, Backend.next_events) takes them and frees the
   slots in FREE_MASK batches; value = bytes received per second as a fraction of the line rate
   (baud/10 bytes/s for 8N1), with every loss counted: the twin's line overruns (a host that
   does not read in time) and event-FIFO overflows (EVT_LOST), host-side queue drops, bad frames.
   Goal >= 0.90 (or 0.98 of what is offered, below 0.92) with 0 lost. Baseline in the same run:
   the per-event consumer (next_event per event, one Header each), and the raw capacity of the
   pty. The twin never sends faster than its modelled UART (3 Mbaud 8N1), so a source offering
   more than the line loses events in the device FIFO, by design; the runs here offer less, so
   any loss is the pipeline's.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
import tty

REALTIME_ATTEMPTS = 1 / 500e-9


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# ------------------------------------------------------------------------------ 1. handshake
async def _zmq_pingpong(n: int) -> list[float]:
    import zmq
    import zmq.asyncio

    ctx = zmq.asyncio.Context.instance()
    port = _free_port()
    r = ctx.socket(zmq.ROUTER)
    r.bind(f"tcp://127.0.0.1:{port}")
    d = ctx.socket(zmq.DEALER)
    d.connect(f"tcp://127.0.0.1:{port}")

    async def echo() -> None:
        while True:
            ident, msg = await r.recv_multipart()
            await r.send_multipart([ident, msg])

    task = asyncio.create_task(echo())
    rtts = []
    for i in range(n + 50):
        t = time.perf_counter()
        await d.send(b"x" * 40)
        await d.recv()
        if i >= 50:
            rtts.append(time.perf_counter() - t)
    task.cancel()
    r.close(0)
    d.close(0)
    return rtts


async def _esp_handshakes(n: int) -> list[float]:
    from hwctl import timebase
    from hwctl.node import NodeConfig, NodeService
    from hwctl.sim import topologies
    from hwctl.sim.twin.lab import Lab, LabServer
    from hwctl.transport import Backend, LabLink

    pa, pb = _free_port(), _free_port()
    common = {"workload": {"enabled": False}}
    # a lab with p = 1: every request's pair is heralded by the first common attempt
    srv = LabServer(Lab(topologies.by_name("K2"), p_photon=1.0, start=timebase.cycle_now()),
                    pty=False).start()
    a = NodeService(NodeConfig.from_dict({"name": "A", "listen": f"tcp://127.0.0.1:{pa}",
                                          "backend": "lab://A",
                                          "peers": {"B": {"endpoint": f"tcp://127.0.0.1:{pb}"}}, **common}))
    b = NodeService(NodeConfig.from_dict({"name": "B", "listen": f"tcp://127.0.0.1:{pb}",
                                          "backend": "lab://B",
                                          "peers": {"A": {"endpoint": f"tcp://127.0.0.1:{pa}"}}, **common}))
    for node, name in ((a, "A"), (b, "B")):
        backend = Backend(LabLink(srv, name), f"lab://{name}")
        await backend.handshake()
        await node.start(backend)
    runs = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    out = []
    for i in range(n + 20):
        req = a.submit("B", 1)
        rec = a.records[req.rid]
        while rec.t_finish is None:
            await asyncio.sleep(0.0005)
        if i >= 20:
            out.append(rec.t_ack - rec.t_syn)
    a.stop()
    b.stop()
    await asyncio.gather(*runs)
    srv.stop()
    return out


def bench_handshake(n: int = 400) -> list[dict]:
    base = asyncio.run(_zmq_pingpong(n))
    hs = asyncio.run(_esp_handshakes(n))
    p50, p99, b99 = _pct(hs, 0.5), _pct(hs, 0.99), _pct(base, 0.99)
    return [
        dict(name="ESP SYN->SYNACK->ACK over ZeroMQ loopback, p50", value=p50 * 1e6, unit="us",
             baseline=_pct(base, 0.5) * 1e6, ratio=p50 / _pct(base, 0.5), goal="(info)", met=True),
        dict(name="ESP SYN->SYNACK->ACK over ZeroMQ loopback, p99", value=p99 * 1e6, unit="us",
             baseline=b99 * 1e6, ratio=p99 / b99, goal="p99 <= 1000 us", met=p99 <= 1e-3),
    ]


# ------------------------------------------------------------------------------ 2. twin loop
def _twin_attempts_per_s(p: float, seconds: float) -> float:
    from hwctl.sim.twin import TwinConfig, TwinModel
    from hwctl.wire import Schedule, encode

    t = TwinModel(TwinConfig(p_photon=p, seed=1, uart_cycles_per_byte=0))
    attempts = 0
    seq = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        seq = (seq + 1) & 0xFF
        t.feed(encode(Schedule(t.now + 100, 0xFFFF_FFFF, 50, 2), seq))
        while t.running:
            t.advance_to(t.next_deadline())
        attempts = t.reg(0x0A)
        t.read()
    return attempts / (time.perf_counter() - t0)


def _naive_attempts_per_s(p: float, seconds: float) -> float:
    rng = random.Random(1)
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100_000):
            n += 1
            if rng.random() < p:
                pass
    return n / (time.perf_counter() - t0)


def bench_twin(seconds: float = 2.0) -> list[dict]:
    p = 9.3e-5  # F = 0.75 with the K2-calibrated eta
    v = _twin_attempts_per_s(p, seconds)
    base = _naive_attempts_per_s(p, seconds / 2)
    return [
        dict(name="twin attempt loop, virtual time (attempts/s)", value=v, unit="attempts/s",
             baseline=base, ratio=v / base, goal=">= 10x real time", met=v >= 10 * REALTIME_ATTEMPTS),
        dict(name="twin attempt loop vs real time (500 ns cycles)", value=v / REALTIME_ATTEMPTS,
             unit="x real time", baseline=base / REALTIME_ATTEMPTS, ratio=v / base,
             goal=">= 10x", met=v >= 10 * REALTIME_ATTEMPTS),
    ]


# ------------------------------------------------------------------------------ 3. pty link
#: 8N1 line rate of the device link in bytes/s (10 bit times per byte)
LINE = 3_000_000 / 10


def _raw_pty_rate(seconds: float, chunk: int = 4096) -> float:
    """Bytes/s through a raw pty (master writes as fast as it can, pyserial reads the slave)."""
    import threading

    import serial

    master, slave = os.openpty()
    tty.setraw(slave)
    ser = serial.Serial(os.ttyname(slave), 3_000_000, timeout=0.05)
    stop = threading.Event()
    got = [0]

    def reader() -> None:
        while not stop.is_set():
            got[0] += len(ser.read(max(1, ser.in_waiting)))

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    buf = b"\x55" * chunk
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        os.write(master, buf)
    stop.set()
    th.join()
    dt = time.perf_counter() - t0
    ser.close()
    os.close(master)
    os.close(slave)
    return got[0] / dt


def _twin_process(conn, cfg) -> None:
    """Child process: the twin on a pty (as ``hwctl twin --pty`` runs beside ``hwctl node``), so
    twin and host do not share one interpreter lock. Sends the port, waits for "stop", sends the
    device's and the line's loss counters."""
    from hwctl.sim.twin.flood import source_off
    from hwctl.sim.twin.model import TwinModel
    from hwctl.sim.twin.serve import PtyTwinServer
    from hwctl.wire import Reg

    model = TwinModel(source_off(cfg)[0])  # the source starts when the host writes CONTROL
    with PtyTwinServer(model, mode="realtime") as srv:
        conn.send(srv.port)
        conn.recv()
        with srv.lock:
            evt_lost = model.reg(Reg.EVT_LOST)  # the device's own count (whole run)
        st = srv.status()
    conn.send({"evt_lost": evt_lost, "overrun_frames": st["overrun_frames"],
               "twin_error": st["error"]})


async def _event_stream(seconds: float, cfg, *, batched: bool = True) -> dict:
    """The twin of ``cfg`` (own process) on a pty at 3 Mbaud (its stream's share of the line:
    :func:`hwctl.sim.twin.flood.line_fraction`); the host (serial link, bulk decoder, Backend) takes the events and frees HEADER slots in
    FREE_MASK batches like the node service. ``batched``: ``next_events`` + HeaderBlocks (what a
    consumer at line rate uses); otherwise the old path, ``next_event`` per event with one Header
    each. Timed from the first event to ``seconds`` later."""
    import multiprocessing as mp

    import numpy as np

    from hwctl.sim.twin.flood import line_fraction, source_off
    from hwctl.transport import open_backend
    from hwctl.wire import Error, HdrBlock, Header, Reg, free_masks
    from hwctl.wire.bulk import HeaderBlock

    out: dict = {"offered": line_fraction(cfg)}
    ctx = mp.get_context("spawn")
    conn, child = ctx.Pipe()
    proc = ctx.Process(target=_twin_process, args=(child, cfg), daemon=True)
    proc.start()
    try:
        if not conn.poll(60):
            raise RuntimeError("the twin process did not start within 60 s")
        port = conn.recv()
        b = await open_backend(f"serial://{port}?baud=3000000")
        b.header_blocks = batched
        await b.write_reg(Reg.CONTROL, source_off(cfg)[1])
        to_free: asyncio.Queue = asyncio.Queue()

        async def free_loop() -> None:  # one FREE_MASK round trip at a time, as the node does
            while True:
                slots = [await to_free.get()]
                while not to_free.empty():
                    slots.append(to_free.get_nowait())
                for base, mask in free_masks(np.concatenate(slots)):
                    await b.free_mask(base, mask)

        freer = asyncio.create_task(free_loop())
        n_ev = n_err = n_arr = 0
        pend: list[int] = []
        t0 = None
        while True:
            # timeouts only bound a hang (a niced run on a loaded machine can wait seconds)
            evs = await b.next_events(timeout=30) if batched else [await b.next_event(timeout=30)]
            if t0 is None:  # the stream is up: count from here
                t0, n0, lost0 = time.perf_counter(), b.link.bytes_in, b.stats.events_lost
                evs = []
            for ev in evs:
                if type(ev) is HeaderBlock:
                    n_ev += len(ev)
                    to_free.put_nowait(ev.slot)
                elif type(ev) is Header:
                    n_ev += 1
                    pend.append(ev.slot)
                elif type(ev) is HdrBlock:
                    n_ev += 1
                    n_arr += ev.n
                else:
                    n_ev += 1
                    n_err += type(ev) is Error
            if len(pend) >= 240:
                to_free.put_nowait(np.asarray(pend))
                pend = []
            if time.perf_counter() - t0 >= seconds:
                break
        dt = time.perf_counter() - t0
        out["fraction"] = (b.link.bytes_in - n0) / dt / LINE
        out["events"] = n_ev
        out["arrivals"] = n_arr  # headers carried by HDR_BLOCK events
        out["gaps"] = b.stats.events_lost - lost0  # event-seq gaps: device FIFO or line overrun
        out["host_dropped"] = b.stats.events_dropped
        out["bad_frames"] = b.stats.rx_frame_errors
        out["errors"] = n_err  # ERROR events (EVENT_OVERFLOW, NO_SLOT, ...)
        freer.cancel()
        await b.close()
        conn.send("stop")
        if not conn.poll(60):
            raise RuntimeError("the twin process did not stop within 60 s")
        out.update(conn.recv())
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    # the twin's own counts are exact; the host's 8-bit seq gaps undercount a run of >= 256
    # lost events, so they only count when larger (they cannot be, unless the pty lost bytes)
    out["lost"] = (max(out["gaps"], out["overrun_frames"] + out["evt_lost"])
                   + out["host_dropped"] + out["bad_frames"])
    return out


def _pty_runs() -> list[tuple[str, float, object]]:
    """(name, seconds, twin config) of the timed runs."""
    from hwctl.sim.twin.flood import block_config, flood_config

    return [
        ("HEADER events (legacy mode), batched consumer", 10.0, flood_config(0.95, seed=1)),
        ("HDR_BLOCK events, 1.3 MHz source, arrival 0.143", 10.0, block_config(0.143, seed=1)),
        ("HDR_BLOCK events, 1.3 MHz source, arrival 0.1 (header-path load), 30 s", 30.0,
         block_config(0.1, seed=1)),
    ]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def bench_pty(runs=None, old_seconds: float = 5.0) -> list[dict]:
    from hwctl.sim.twin.flood import flood_config

    raw = _raw_pty_rate(1.0)
    # the per-event path (one next_event per event, one Header object each) in the same run
    old = asyncio.run(_event_stream(old_seconds, flood_config(0.95, seed=1), batched=False))
    out = [dict(name=f"pty 3 Mbaud: HEADER events, per-event consumer (next_event), offered "
                     f"{old['offered']:.2f}: {old['lost']} lost ({_load()})",
                value=old["fraction"], unit="of line rate", baseline=raw / LINE,
                ratio=old["fraction"] * LINE / raw, goal="(info)", met=True,
                detail=old)]
    for name, seconds, cfg in runs or _pty_runs():
        r = asyncio.run(_event_stream(seconds, cfg))
        offered = r["offered"]
        goal_frac = min(0.9, offered * 0.98)
        out.append(dict(
            name=f"pty 3 Mbaud: {name}, offered {offered:.2f}: {r['events']} ev, {r['lost']} lost "
                 f"(line overrun {r['overrun_frames']}, device FIFO {r['evt_lost']}, host queue "
                 f"{r['host_dropped']}, bad frames {r['bad_frames']}; seq gaps seen "
                 f"{r['gaps']}) ({_load()})",
            value=r["fraction"], unit="of line rate", baseline=old["fraction"],
            ratio=r["fraction"] / old["fraction"] if old["fraction"] else float("inf"),
            goal=f">= {goal_frac:.2f}, 0 lost",
            met=r["fraction"] >= goal_frac and r["lost"] == 0 and not r["twin_error"],
            detail=r))
    return out


def run() -> list[dict]:
    return bench_handshake() + bench_twin() + bench_pty()


if __name__ == "__main__":
    for r in run():
        print(r)
