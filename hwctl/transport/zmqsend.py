"""Non-blocking ZeroMQ sends whose drops are always seen (issue 16: "drops are counted and
visible").

``sock.send_multipart(parts, zmq.NOBLOCK)`` reports a full queue (the peer is down and its
high-water mark is reached) differently by socket flavour:

- a plain :class:`zmq.Socket` raises :class:`zmq.Again` at once;
- a :mod:`zmq.asyncio` socket never raises: it returns a Future, already failed with
  ``zmq.Again`` when nothing else is queued on the socket, or still pending when earlier sends
  wait (then it fails or succeeds later). A caller that neither awaits nor inspects it loses the
  drop (and asyncio logs "Future exception was never retrieved").

:func:`send_nowait` hides the difference: it never blocks, never raises a ZeroMQ error, and tells
the caller the outcome of every send exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import zmq


def send_nowait(sock: Any, parts: Sequence[bytes], on_late: Callable[[bool], None]) -> bool | None:
    """Send ``parts`` without blocking. Returns True (handed to ZeroMQ), False (dropped: queue
    full, socket closed, any ZeroMQ error) or None: an asyncio socket queued it behind earlier
    sends, and ``on_late(ok)`` is called once it is sent or dropped. Works with plain sockets,
    :mod:`zmq.asyncio` sockets and stand-ins whose ``send_multipart`` returns None or raises
    (hwctl.record's tap and replay)."""
    try:
        r = sock.send_multipart(parts, zmq.NOBLOCK)
    except zmq.ZMQError:  # zmq.Again (queue full) included
        return False
    if not isinstance(r, asyncio.Future):
        return True  # a plain socket (None, or a MessageTracker)
    if r.done():
        return _outcome(r)
    r.add_done_callback(lambda f: on_late(_outcome(f)))
    return None


def _outcome(f: asyncio.Future) -> bool:
    if f.cancelled():
        return False
    exc = f.exception()  # retrieved: asyncio does not log it as never retrieved
    if exc is None:
        return True
    if isinstance(exc, zmq.ZMQError):
        return False
    raise exc  # not a send failure: a bug, not a drop
