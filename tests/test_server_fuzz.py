"""Served twin and board bridge under hostile input (issue 16): random and mutated messages from
many client identities never end the server, its memory stays bounded, and a well-behaved host
can still use the device afterwards. Two hosts with colliding seqs are not confused."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys

import psutil
import pytest
import zmq

from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.sim.twin.serve import PtyTwinServer, ZmqTwinServer
from hwctl.transport import open_backend
from hwctl.transport.zmqwire import CONTROL, PING, STATUS
from hwctl.wire import Reg, RegRead, RegWrite, Schedule, Time, encode

GOOD = [encode(m, s) for s, m in enumerate(
    (RegRead(int(Reg.ID)), Time(), RegWrite(int(Reg.SCRATCH), 3), Schedule(1000, 5, 50, 2)))]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif op == 2 and b:
            del b[rng.randrange(len(b))]
        else:
            b += rng.randbytes(rng.randrange(16))
    return bytes(b)


def _message(rng: random.Random) -> list[bytes]:
    k = rng.random()
    if k < 0.3:
        return [rng.randbytes(rng.randrange(200))]
    if k < 0.7:
        return [_mutate(rng, rng.choice(GOOD))]
    if k < 0.8:
        return [rng.choice(GOOD)]
    if k < 0.85:
        return [CONTROL, rng.choice([PING, STATUS, b"reboot", b""])]
    if k < 0.9:
        return [rng.randbytes(70_000)]  # over the size limit: ZeroMQ drops the connection
    return [rng.randbytes(rng.randrange(20)) for _ in range(rng.randrange(1, 5))]


def fuzz_server(endpoint: str, n: int, seed: int, identities: int = 12) -> int:
    """Send ``n`` fuzzed messages from ``identities`` DEALERs; return how many were sent."""
    rng = random.Random(seed)
    ctx = zmq.Context.instance()
    socks = []
    sent = 0
    try:
        for k in range(n):
            if len(socks) < identities and k % max(1, n // identities) == 0:
                s = ctx.socket(zmq.DEALER)
                s.linger = 0
                s.sndhwm = 100_000
                s.connect(endpoint)
                socks.append(s)
            try:
                rng.choice(socks).send_multipart(_message(rng), zmq.NOBLOCK)
                sent += 1
            except zmq.Again:
                pass
        # one status round trip per socket that still has a connection: the server got here
        probe = ctx.socket(zmq.DEALER)
        probe.linger = 0
        probe.connect(endpoint)
        for _ in range(120):  # asked again each second, as a host's keep-alive would be
            # (a table full of live fuzzing clients refuses newcomers until they fall silent)
            probe.send_multipart([CONTROL, STATUS])
            if probe.poll(1000):
                break
        else:
            raise AssertionError("server stopped answering")
        probe.recv_multipart()
        probe.close(0)
    finally:
        for s in socks:
            s.close(0)
    return sent


async def _still_works(url: str) -> None:
    async with await open_backend(url, timeout=2.0) as b:
        await b.write_reg(Reg.SCRATCH, 0x5A5A)
        assert await b.read_reg(Reg.SCRATCH) == 0x5A5A


class Served:
    """``hwctl twin`` / ``hwctl bridge`` in a subprocess: its memory is measured on its own."""

    def __init__(self, *argv: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "hwctl.cli", *argv],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = self.proc.stdout.readline().strip()  # the first line is the URL
        assert self.url.startswith("zmq+tcp://"), f"no URL from hwctl {argv[0]}"
        self.endpoint = self.url.removeprefix("zmq+")

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def _fuzz(served: Served, n: int) -> float:
    fuzz_server(served.endpoint, n // 10, seed=0)  # warm up allocators and imports
    rss0 = served.rss_mb()
    fuzz_server(served.endpoint, n, seed=1)
    growth = served.rss_mb() - rss0
    assert served.proc.poll() is None, "the server ended"
    asyncio.run(_still_works(served.url))
    assert served.stop() == 0  # SIGINT: a clean stop
    return growth


def _fuzz_twin(n: int) -> float:
    served = Served("twin", "--zmq", "tcp://127.0.0.1:0", "--mode", "realtime")
    try:
        return _fuzz(served, n)
    finally:
        served.stop()


def _fuzz_bridge(n: int) -> float:
    with PtyTwinServer(TwinModel(TwinConfig(seed=2)), mode="realtime") as twin:
        served = Served("bridge", "--port", twin.port, "--listen", "tcp://127.0.0.1:0",
                        "--health-every", "0")
        try:
            return _fuzz(served, n)
        finally:
            served.stop()


def test_served_twin_survives_fuzz() -> None:
    growth = _fuzz_twin(2000)
    assert growth < 20, f"memory grew by {growth:.1f} MB"


def test_bridge_survives_fuzz() -> None:
    growth = _fuzz_bridge(2000)
    assert growth < 20, f"memory grew by {growth:.1f} MB"


@pytest.mark.slow
@pytest.mark.parametrize("which", ["twin", "bridge"])
def test_server_fuzz_soak(which: str) -> None:
    """docs/reliability.md: 10,000 fuzzed messages per socket type, memory growth <= 20 MB."""
    growth = (_fuzz_twin if which == "twin" else _fuzz_bridge)(10_000)
    print(f"{which}: 10000 fuzzed messages, server memory growth {growth:.1f} MB")
    assert growth < 20


def test_counters_after_fuzz() -> None:
    """In-process: the drops are counted by cause and the table stays bounded."""
    with ZmqTwinServer(TwinModel(TwinConfig(p_photon=0.01, seed=1)), mode="realtime") as srv:
        fuzz_server(srv.endpoint, 1000, seed=5)
        st = srv.status()
        assert srv.error is None and st["ok"] and st["clients"] <= 32
        assert st["drops"]["bad_frame_from_client"] > 0 and st["drops"]["malformed"] > 0


def test_two_hosts_with_colliding_seqs_are_not_confused() -> None:
    """The issue's case: a second client's command made the host's SCHEDULE acked, never run."""
    with ZmqTwinServer(TwinModel(TwinConfig(p_photon=1.0, seed=3)), mode="realtime") as srv:
        async def go() -> None:
            async with await open_backend(srv.url, timeout=2.0) as a, \
                    await open_backend(srv.url, timeout=2.0) as b:
                now = await a.time()
                b._seq = a._seq  # b's next command gets the seq a's next command will get
                await b.write_reg(Reg.SCRATCH, 2)
                # the same seq as the device's last command: without the server's seq mapping the
                # device would take it for a retry, answer ACK and never run it
                await a.schedule(now + 200_000, 10, 50, 2)
                ev = await a.next_event(timeout=60)
                # the device ran it: HERALD, or LATE when a loaded machine made it late; a
                # command taken for a retry gives an ACK and no event at all
                assert type(ev).__name__ in ("Herald", "Late")
                assert await a.read_reg(Reg.SCRATCH) == 2

        asyncio.run(asyncio.wait_for(go(), 60))
