"""Helpers shared by the frame and top-level testbenches: random wire messages, byte packing."""

from __future__ import annotations

import random
import struct

from hwctl.wire import MESSAGES
from hwctl.wire._spec import Message


def random_message(rng: random.Random, kinds: tuple[str, ...], pmax: int = 32) -> Message:
    """A message of a random opcode among ``kinds`` with random field values, payload <= ``pmax``
    bytes (the frame layer's parallel payload; HDR_BLOCK's 67 bytes stream past it, see
    docs/header-path.md)."""
    classes = [c for c in MESSAGES.values() if c.KIND in kinds and c.STRUCT.size <= pmax]
    cls = rng.choice(classes)
    values = []
    for _, width in cls.FIELDS:
        values.append(rng.choice([0, 2**width - 1, rng.randrange(2**width), rng.randrange(256)]))
    return cls(*values)


def pack_payload(data: bytes, pmax: int) -> int:
    """Payload bytes as the RTL's flat vector: byte 0 in the most significant position."""
    assert len(data) <= pmax
    return int.from_bytes(data.ljust(pmax, b"\x00"), "big")


def unpack_payload(value: int, pmax: int, length: int) -> bytes:
    return value.to_bytes(pmax, "big")[:length]


def msg_bytes(msg: Message) -> bytes:
    return msg.pack()


__all__ = ["random_message", "pack_payload", "unpack_payload", "msg_bytes", "struct"]
