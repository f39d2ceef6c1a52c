"""Forged, mutated and malformed peer messages for the node service's robustness tests and
benchmarks (issue 16, docs/reliability.md): what a stranger or a confused peer could send on a
node's ZeroMQ port. ``forged_message(rng, now)`` gives one message's frames ``[kind, payload]``
(sometimes a wrong part count); well-formed ESP messages from the listed peer are mixed in, so
the handlers behind the checks run too, not only the checks."""

from __future__ import annotations

import json
import random

from hwctl.protocols.base import Request
from hwctl.protocols.esp import EspMessage, MsgType


def _esp(rng: random.Random, now: float, me: str, peer: str) -> bytes:
    kind = rng.choice(list(MsgType))
    src = rng.choice([peer, peer, peer, "C", me, ""])
    dst = rng.choice([me, me, me, peer, "Z"])
    t = rng.choice([now + rng.uniform(-1, 1), now + 0.01, float("nan"), float("inf"), 1e300,
                    -5.0, 0.0])
    req = None
    if rng.random() < 0.6:
        init, rem = rng.choice([(peer, me), (peer, me), (me, peer), ("C", me)])
        req = Request(rng.randrange(2**31), init, rem, rng.choice([0.75, 0.5, 0.99]),
                      rng.choice([1, 3, 200, 255]), now)
    raw = EspMessage(kind, src, dst, req.rid if req and rng.random() < 0.7
                     else rng.randrange(2**31), req, t, rng.random() < 0.3).to_bytes()
    if rng.random() < 0.3:  # mutated: bad layouts, refused field values
        b = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        raw = bytes(b)
    return raw


def _pl(rng: random.Random, now: float) -> bytes:
    rid = rng.choice([rng.randrange(2**20), rng.randrange(2**20), -1, 2**70, "x", None, 1.5])
    d = rng.choice([
        {"rid": rid, "late": rng.choice([0, 1, -1, 10**9, "a", None])},
        {"rid": rid, "restart": rng.choice([1, 2, 0, 10**9]),
         "start": rng.choice([now, float("nan"), 1e300, "soon", None, now + 0.01])},
        {"rid": rid, "restart": 1},  # missing start
        {"rid": rid},  # missing round
        {"rid": rid, "pairs": [[rng.randrange(2**40), 1, 2] for _ in range(rng.randrange(5))]},
        {"rid": rid, "pairs": [[1, 2]] * rng.randrange(3) + [["x", 1, 2]]},
        {"rid": rid, "pairs": [[0, 0, 0]] * rng.choice([10, 5000])},
        {"rid": rid, "failed": rng.choice(["device lost", "x" * 500, 3])},
        {"rid": rid, "late": 0, "tm": rng.choice([now, float("nan"), "t"])},
        {"rid": rid, "done": True},
        {"late": 1},
        [1, 2, 3],
        "pl",
    ])
    raw = json.dumps(d, allow_nan=True).encode()
    return raw if rng.random() < 0.9 else raw[: rng.randrange(len(raw) + 1)]


def forged_message(rng: random.Random, now: float, me: str = "A", peer: str = "B") -> list[bytes]:
    """One hostile message to node ``me`` (whose listed peer is ``peer``), as ZeroMQ frames
    after the routing id."""
    k = rng.random()
    if k < 0.4:
        return [b"esp", _esp(rng, now, me, peer)]
    if k < 0.75:
        return [b"pl", _pl(rng, now)]
    if k < 0.8:
        return [b"hb", rng.choice([b'{"inc": 5}', b'{"inc": -1}', b"[]", rng.randbytes(8)])]
    if k < 0.85:
        return [b"vrf", rng.randbytes(rng.randrange(40))]
    if k < 0.95:
        return [rng.choice([b"esp", b"pl", b"zzz"]), rng.randbytes(rng.randrange(100))]
    return [rng.randbytes(3) for _ in range(rng.choice([1, 3]))]
