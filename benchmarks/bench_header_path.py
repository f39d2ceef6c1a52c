"""HEADER path of the node service on one core (issue 6: ">= 1.3e6 headers/s through core + node
service").

What runs, all in one process and one event loop, with the node service's own code:

- a stand-in device on an in-memory link streams pre-encoded HEADER frames (wire v2) 64 KiB at a
  time, and answers every command with ACK (its CPU time is counted too, so this is
  conservative). Also reported: the same 64 KiB arriving as 4 KiB device reads (what a tty hands
  over; ``Link.recv`` joins reads already waiting), and 16 KiB per look of the event loop. The
  last one only happens while the host keeps up with the source: a host that falls behind finds
  more waiting at its next look and reads it in one go, so it is shown for the fixed per-look
  cost, not as the capacity;
- ``Backend`` decodes them with the bulk decoder (event-seq accounting included) and queues
  ``HeaderBlock``\\ s; ``NodeService._event_pump`` / ``_on_headers`` (slot book, verification core)
  and ``NodeService._free_loop`` (FREE_MASK packing and one command round trip at a time) run as
  in ``hwctl node``;
- the partner's real HAVE reports (made beforehand by a second core on its own arm, unmeasured)
  arrive 1 ms of device time after they were made, over ZeroMQ (a DEALER named like the partner
  into the node's ROUTER) and through the node's own ``_rx_loop``; the core timer is serviced per
  block.

The workload is bench_verification's: ~90 % of a 1.3 MHz source's pulses arrive (gaps), 32-bit
sequence numbers wrap mid-run, NV memory. The run ends when every header is in the core and every
slot the core handed back is freed on the device. Baseline, same run: the previous host path
(``FrameDecoder`` + one ``handle_header`` call per decoded HEADER), without any FREE traffic.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import numpy as np
import zmq
import zmq.asyncio

from hwctl.node import K_VRF, NodeConfig, NodeService, PeerConfig, VerifyConfig
from hwctl.protocols.verification import SendToPartner, VerificationCore
from hwctl.transport.backend import Backend
from hwctl.transport.links import memory_pair
from hwctl.wire import (
    FREE_MASK_BITS,
    Ack,
    ErrorCode,
    Frame,
    FrameDecoder,
    FreeMask,
    Header,
    Nak,
    Time,
    TimeSet,
    TimeValue,
    encode,
)

RATE = 1.3e6
HZ = 100e6
ETA = 0.9
LAT = 100_000  # partner reports arrive 1 ms (device ticks) after they were made
N_SLOTS = 65536  # device pool of the stand-in: the whole u16 slot field
CHUNK = 65536  # bytes per read: what SerialLink reads at most (in_waiting, capped) under load
N = 400_000
GOAL = 1.3e6
REPEAT = 3


def _arms(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    pulses = int(n / ETA * 1.02) + 100
    t = np.round(np.arange(pulses) * (HZ / RATE)).astype(np.int64) + 10**9
    seq0 = 0xFFFFFFFF - pulses // 2
    return [(((k + seq0) & 0xFFFFFFFF), t[k]) for k in
            (np.flatnonzero(rng.random(pulses) < ETA)[:n] for _ in range(2))]


def _partner_reports(seqs, ts, vcfg) -> list[tuple[int, bytes]]:
    c = VerificationCore(vcfg)
    out = []
    slots = np.arange(seqs.size) % N_SLOTS
    for i in range(0, seqs.size, 256):
        j = min(i + 256, seqs.size)
        c.handle_headers(seqs[i:j], ts[i:j], slots[i:j])
        now = int(ts[j - 1])
        tm = c.get_timer()
        if tm is not None and tm <= now:
            c.handle_timer(now)
        out += [(now + LAT, a.data) for a in c.drain() if isinstance(a, SendToPartner)]
    return out


class _Device:
    """Stand-in device: slots round-robin over the whole u16 pool (the run checks none is handed
    out while still held), HEADER frames pre-encoded, every command ACKed, FREE_MASK applied."""

    def __init__(self, link) -> None:
        self.link = link
        self.held = np.zeros(N_SLOTS, bool)
        self.conflicts = 0
        self.freed = 0
        self.freed_now = asyncio.Event()  # the feeder waits on it for slots to come back
        self._acks: dict[tuple[int, int], bytes] = {}  # (opcode, seq) -> encoded ACK

    def allocate(self, slots: np.ndarray) -> None:
        self.conflicts += int(self.held[slots].sum())
        self.held[slots] = True

    async def serve(self) -> None:
        dec = FrameDecoder()
        while True:
            chunk = await self.link.recv()
            if not chunk:
                return
            for f in dec.feed(chunk):
                if isinstance(f, Frame):
                    m = f.msg
                    if isinstance(m, FreeMask):
                        bits = np.unpackbits(np.frombuffer(m.mask.to_bytes(30, "big"), np.uint8))
                        named = m.base + FREE_MASK_BITS - 1 - np.flatnonzero(bits)
                        self.conflicts += int((~self.held[named]).sum())  # freeing a free slot
                        self.held[named] = False
                        self.freed += named.size
                        self.freed_now.set()
                    if isinstance(m, Time):
                        await self.link.send(encode(TimeValue(10**9), f.seq))
                        continue
                    if isinstance(m, TimeSet):  # a v2 device: the node maps its counter
                        await self.link.send(encode(Nak(m.OPCODE, ErrorCode.BAD_OPCODE), f.seq))
                        continue
                    key = (m.OPCODE, f.seq)
                    if key not in self._acks:
                        self._acks[key] = encode(Ack(m.OPCODE), f.seq)
                    await self.link.send(self._acks[key])


def _encode_stream(seqs, ts) -> bytes:
    return b"".join(encode(Header(s, t, k % N_SLOTS), k & 0xFF)
                    for k, (s, t) in enumerate(zip(seqs.tolist(), ts.tolist(), strict=True)))


async def _node_path(seqs, ts, stream: bytes, reports, chunk: int = CHUNK,
                     piece: int | None = None) -> tuple[float, dict]:
    ctx = zmq.asyncio.Context()
    sink = ctx.socket(zmq.ROUTER)
    sink.linger = 0
    port = sink.bind_to_random_port("tcp://127.0.0.1")
    cfg = NodeConfig(name="A", listen="tcp://127.0.0.1:*", backend="bench://", workload=False,
                     peers=[PeerConfig("B", f"tcp://127.0.0.1:{port}")],
                     verification=VerifyConfig(partner="B", memory="nv"))
    host_end, dev_end = memory_pair()
    dev = _Device(dev_end)
    node = NodeService(cfg, ctx=ctx)
    dev_task = asyncio.create_task(dev.serve())
    backend = Backend(host_end, "bench://", timeout=5.0)
    await node.start(backend=backend)

    async def drain_sink() -> None:
        while True:
            await sink.recv_multipart()

    tasks = [asyncio.create_task(c) for c in (node._event_pump(), node._free_loop(), drain_sink(),
                                              node._rx_loop())]
    assert node._router is not None
    partner = ctx.socket(zmq.DEALER)  # the partner's reports, as its node service sends them
    partner.linger = 0
    partner.identity = b"B"
    partner.connect(node._router.getsockopt(zmq.LAST_ENDPOINT).decode())
    core = node.vcore
    assert core is not None
    n = seqs.size
    fl = len(stream) // n  # HEADER frames have a fixed length
    per = chunk // fl
    slots = np.arange(n) % N_SLOTS
    mi = 0
    t0 = time.perf_counter()
    for lo in range(0, n, per):
        hi = min(lo + per, n)
        while dev.held[slots[lo:hi]].any():  # flow control: the device hands out free slots only
            dev.freed_now.clear()
            await dev.freed_now.wait()
        dev.allocate(slots[lo:hi])
        data = stream[lo * fl : hi * fl]
        step = piece or len(data)
        for k in range(0, len(data), step):  # device reads of `piece` bytes each
            await dev_end.send(data[k : k + step])
        await asyncio.sleep(0)
        # the partner's reports that are due (over ZeroMQ to the node's _rx_loop), and the core
        # timer with device time = the newest HEADER (the stream runs faster than real time)
        now = node._max_ts
        while mi < len(reports) and reports[mi][0] <= now:
            await partner.send_multipart([K_VRF, reports[mi][1]])
            mi += 1
        tm = core.get_timer()
        if tm is not None and tm <= now:
            core.handle_timer(now)
        node._vrf_apply()
    while core.metrics.headers < n or backend.pending_events():
        await asyncio.sleep(0)
    while mi < len(reports):
        await partner.send_multipart([K_VRF, reports[mi][1]])
        mi += 1
    while core.metrics.messages_received < len(reports):
        await asyncio.sleep(0)
    core.handle_timer(node._max_ts + LAT)
    node._vrf_apply()
    while node._slots.n_pending or node._free_busy:
        await asyncio.sleep(0)
    wall = time.perf_counter() - t0
    summary = node.verification_summary() or {}
    for t in tasks:
        t.cancel()
    await backend.close()
    dev_task.cancel()
    for s in node._out.values():
        s.close()
    if node._router is not None:
        node._router.close()
    sink.close()
    partner.close()
    ctx.term()
    summary["dev_freed"] = dev.freed
    summary["dev_conflicts"] = dev.conflicts
    summary["counters"] = node.counters
    summary["link"] = backend.stats
    return n / wall, summary


def _baseline(stream: bytes, vcfg) -> float:
    core = VerificationCore(vcfg)
    dec = FrameDecoder()
    got = 0
    t0 = time.perf_counter()
    for i in range(0, len(stream), CHUNK):
        for item in dec.feed(stream[i : i + CHUNK]):
            if type(item) is Frame and type(item.msg) is Header:
                m = item.msg
                core.handle_header(m.seq, m.ts, m.slot)
                got += 1
        core.drain()
    return got / (time.perf_counter() - t0)


def _median(runs: list[tuple[float, dict]]) -> tuple[float, dict]:
    """The run with the median rate (REPEAT is odd), with its summary."""
    return sorted(runs, key=lambda r: r[0])[len(runs) // 2]


def run(n: int = N) -> list[dict]:
    (sa, ta), (sb, tb) = _arms(n)
    vcfg = VerifyConfig(partner="B", memory="nv").core_config()
    reports = _partner_reports(sb, tb, vcfg)
    stream = _encode_stream(sa, ta)
    base = _baseline(stream, vcfg)
    tracemalloc.start()
    asyncio.run(_node_path(sa, ta, stream, reports))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # timed without tracemalloc; the median of REPEAT runs (a shared VM's noise is +-15 %)
    rate, summ = _median([asyncio.run(_node_path(sa, ta, stream, reports)) for _ in range(REPEAT)])
    rate16, _ = _median([asyncio.run(_node_path(sa, ta, stream, reports, 16384))
                         for _ in range(REPEAT)])
    rate4, _ = _median([asyncio.run(_node_path(sa, ta, stream, reports, CHUNK, 4096))
                        for _ in range(REPEAT)])
    assert summ["headers"] == n and summ["double_free"] == 0 and summ["dev_conflicts"] == 0, summ
    assert summ["slots_freed"] == summ["dev_freed"] > 0.5 * n, summ
    assert summ["verified"] > 0.5 * n, summ
    return [
        {"name": "HEADER path through the node service (1 core, incl. FREE_MASK)", "value": rate,
         "unit": "headers/s", "baseline": base, "ratio": rate / base, "goal": ">= 1.3e6/s",
         "met": rate >= GOAL},
        {"name": "  16 KiB per look (per-look cost; a host behind reads more)", "value": rate16,
         "unit": "headers/s", "baseline": base, "ratio": rate16 / base, "goal": "info",
         "met": True},
        {"name": "  64 KiB waiting as 4 KiB device reads (tty-sized)", "value": rate4,
         "unit": "headers/s", "baseline": base, "ratio": rate4 / base, "goal": ">= 1.3e6/s",
         "met": rate4 >= GOAL},
        {"name": "  verified / headers in that run", "value": summ["verified"] / n, "unit": "",
         "baseline": ETA, "ratio": summ["verified"] / n / ETA, "goal": "info", "met": True},
        {"name": "  tracemalloc peak of the node path", "value": peak / 2**20, "unit": "MiB",
         "baseline": peak / 2**20, "ratio": 1.0, "goal": "info", "met": True},
    ]


if __name__ == "__main__":
    for r in run():
        print(f"{r['name']:60s} {r['value']:12.4g} {r['unit']:10s} baseline {r['baseline']:10.4g} "
              f"ratio {r['ratio']:6.2f}x goal {r['goal']} {'MET' if r['met'] else 'MISSED'}")
