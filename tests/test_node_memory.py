"""The node's memory under a flood of forged messages, isolated (issue 16): the message handler
alone (no sockets, no fuzzer queues in the measurement), tracemalloc. Growth is asserted on
counts and structure sizes, and on bytes traced between a warm-up and the end, never on time.
The process-level figure (400k messages to a separate ``hwctl node``, its own RSS) is the
benchmark ``python -m benchmarks node_memory``."""

from __future__ import annotations

import asyncio
import random
import tracemalloc

from hwctl.fuzzmsg import forged_message
from hwctl.node import MAX_PENDING_RIDS, NodeConfig, NodeService
from hwctl.node import service as node_mod

WARM = 3_000
MORE = 8_000
#: bytes the handler may keep after the warm-up for MORE further messages (bounded tables are
#: full by then; what is left is allocator noise)
MAX_GROWTH = 2 * 2**20


class _Frame:
    __slots__ = ("bytes",)

    def __init__(self, b: bytes) -> None:
        self.bytes = b


def test_forged_flood_keeps_the_node_bounded(monkeypatch) -> None:
    # every message reaches the checks and handlers (the rate limit would drop most unread)
    monkeypatch.setattr(node_mod, "RX_RATE", 1e12)
    monkeypatch.setattr(node_mod, "RX_BURST", 1e12)

    async def main() -> tuple[NodeService, int, dict]:
        cfg = NodeConfig.from_dict({
            "name": "A", "listen": "tcp://127.0.0.1:7101", "backend": "twin://",
            "peers": {"B": {"endpoint": "tcp://127.0.0.1:7102"}}, "workload": {"enabled": False}})
        n = NodeService(cfg, rid_base=0)
        sent = [0]

        def send(peer: str, kind: bytes, payload: bytes) -> None:  # no sockets: counted only
            sent[0] += 1

        n._send = send
        rng = random.Random(16)
        idents = [b"B", b"B", b"B", b"C", b"A"]

        def flood(k: int) -> None:
            now = n.now()
            for _ in range(k):
                frames = [rng.choice(idents), *forged_message(rng, now)]
                n.counters.msgs_in += 1
                try:
                    cause = n._rx_one([_Frame(f) for f in frames])
                except Exception as exc:  # as _rx_loop does: counted, never fatal
                    cause = f"error_{type(exc).__name__}"
                if cause:
                    n._drop(cause)

        flood(WARM)
        tracemalloc.start()
        try:
            flood(WARM)  # the bounded tables fill up while traced too
            before = tracemalloc.take_snapshot()
            flood(MORE)
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
        return n, growth, {"sent": sent[0]}

    n, growth, info = asyncio.run(main())
    c = n.counters
    assert c.msgs_in == 2 * WARM + MORE
    assert not any(k.startswith("error_") for k in c.dropped), c.dropped  # every input checked
    assert sum(c.dropped.values()) > (2 * WARM + MORE) // 2
    # structures: each bounded, whatever arrives
    assert len(n._pl_early) <= MAX_PENDING_RIDS
    assert all(len(v) <= 8 for v in n._pl_early.values())
    assert len(n._pairs_peer) <= MAX_PENDING_RIDS
    assert len(n._rx_tokens) <= 1  # configured peers only
    assert len(c.dropped) <= 64  # causes are a fixed set
    assert n._events.qsize() <= 1 and n._pl_queue.qsize() <= 1  # no generation runs here
    assert len(n.core.q_main) <= 2 and len(n.records) == 0
    assert growth <= MAX_GROWTH, f"{growth / 2**20:.2f} MB kept for {MORE} more messages"
    print(f"{MORE} forged messages after warm-up: {growth / 1024:.1f} KiB kept, "
          f"{sum(c.dropped.values())} dropped by cause, {info['sent']} replies")
