"""Benchmarks of the control path: ESP handshake over ZeroMQ, twin attempt loop, pty serial link.

1. ESP SYN -> SYNACK -> ACK between two node services over ZeroMQ on loopback, timed at the
   initiator (SYN sent -> ACK sent = one round trip plus both cores); baseline: a bare ZeroMQ
   DEALER/ROUTER ping-pong measured in the same run. Goal p99 <= 1 ms.
2. Twin attempt loop in virtual time: attempts decided per wall second; baseline: a plain
   per-attempt Python loop (one random draw per attempt) measured in the same run. Goal: >= 10x
   real time, real time being one attempt per 500 ns cycle (2e6 attempts/s).
3. Event streaming over a pseudo-terminal at 3 Mbaud: the twin floods events (header source far
   faster than the line), the host backend decodes them; value = decoded bytes per second as a
   fraction of the line rate (baud/10 bytes/s for 8N1). Baseline: raw bytes through the same kind
   of pty with no framing, measured in the same run. Goal >= 90 % of line rate.
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
    from hwctl.transport import Backend, LabLink
    from sim import topologies
    from sim.twin.lab import Lab, LabServer

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
    from hwctl.wire import Schedule, encode
    from sim.twin import TwinConfig, TwinModel

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


async def _event_stream_rate(seconds: float) -> tuple[float, dict]:
    from hwctl.transport import open_backend
    from sim.twin import TwinConfig, TwinModel
    from sim.twin.serve import PtyTwinServer

    model = TwinModel(TwinConfig(header_period=3000, n_slots=255, seed=1))
    with PtyTwinServer(model, mode="realtime") as srv:
        b = await open_backend(f"serial://{srv.port}?baud=3000000")
        n0 = b.link.bytes_in
        ev0 = b.stats.events
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            await b.next_event(timeout=1)
        dt = time.perf_counter() - t0
        rate = (b.link.bytes_in - n0) / dt
        info = {"events": b.stats.events - ev0, "lost": b.stats.events_lost,
                "bad": b.stats.rx_frame_errors}
        await b.close()
    return rate, info


def bench_pty(seconds: float = 3.0) -> list[dict]:
    line = 3_000_000 / 10  # bytes/s, 8N1
    raw = _raw_pty_rate(1.0)
    rate, info = asyncio.run(_event_stream_rate(seconds))
    return [
        dict(name=f"pty serial 3 Mbaud: event stream / line rate ({info['events']} ev)",
             value=rate / line, unit="of line rate", baseline=raw / line, ratio=rate / raw,
             goal=">= 0.90", met=rate / line >= 0.9),
    ]


def run() -> list[dict]:
    return bench_handshake() + bench_twin() + bench_pty()


if __name__ == "__main__":
    for r in run():
        print(r)
