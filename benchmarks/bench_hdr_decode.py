"""Host decoding of HDR_BLOCK events (hwctl/hdrblock.py): blocks per second on one core.

Workload: the HDR_BLOCK stream one node sees from the paper's source (1.3 MHz, 77 cycles per
pulse, p = 0.1: a 10 km arm, section IV), made by the twin's reference encoder with the default
BLOCK_FLUSH; every 40th block lost (a blk gap: the unknown-range bookkeeping runs) and a pin
change every 20 blocks (the mirror). Decoded in batches of 3 blocks (what the node's BlockPath
gathered in its 1 ms batch wait at this rate, ~2,750 blocks/s, until the seventh session; its
4 ms wait now gathers ~11) and of 64 (BATCH_BLOCKS: a host that fell behind catches up).

Baseline, same run: ``BlockDecoder.decode_reference``, the per-block Python loop this replaced
(same results; tests/test_hdrblock_host.py checks them against each other).
Goal: the vectorised decoder at least as fast at batch 3 and faster at batch 64.
"""

from __future__ import annotations

import time

import numpy as np

from hwctl.hdrblock import BlockDecoder
from hwctl.sim.twin.hdrblock import BlockEncoder
from hwctl.wire import HdrBlock

P = 77
ARRIVALS = 200_000


def _stream(n: int) -> list[HdrBlock]:
    pulses = np.flatnonzero(np.random.default_rng(1).random(int(n / 0.1 * 1.05)) < 0.1)[:n]
    enc = BlockEncoder()
    out: list[HdrBlock] = []
    for s in pulses.tolist():
        out += enc.tick(s * P)
        out += enc.arrival(s, s * P)
    out += enc.set_enabled(False)
    return out


def _decode(blocks: list[HdrBlock], batch: int, vector: bool) -> tuple[float, int]:
    dec = BlockDecoder(period=P)
    fn = dec.decode if vector else dec.decode_reference
    kept = [b for i, b in enumerate(blocks) if i % 40 != 39]
    n = 0
    t0 = time.perf_counter()
    for i in range(0, len(kept), batch):
        if i % 20 < batch:
            dec.pin([i % dec.n_slots])
        n += len(fn(kept[i:i + batch]))
    return time.perf_counter() - t0, n


def run(n: int = ARRIVALS) -> list[dict]:
    blocks = _stream(n)
    out = []
    for batch in (3, 64):
        _decode(blocks[:2000], batch, True)  # warm-up
        vec = min(_decode(blocks, batch, True)[0] for _ in range(2))
        ref, arrivals = min(_decode(blocks, batch, False) for _ in range(2))
        k = len(blocks)
        print(f"# hdr_decode batch {batch}: {k} blocks, {arrivals} arrivals; vectorised "
              f"{k / vec:,.0f} blocks/s ({arrivals / vec:,.0f} arrivals/s), per-block loop "
              f"{k / ref:,.0f} blocks/s", flush=True)
        out.append(dict(name=f"hdr_decode: blocks/s, batches of {batch}", value=k / vec,
                        unit="blocks/s", baseline=k / ref, ratio=ref / vec,
                        goal=">= 1x" if batch == 3 else "> 1x",
                        met=ref / vec >= (0.95 if batch == 3 else 1.05)))
    return out
