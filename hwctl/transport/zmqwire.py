"""How wire frames travel over ZeroMQ (host DEALER <-> board bridge or twin ROUTER).

- Data: a one-part message holding raw wire bytes (one or more whole COBS frames, each ending
  in 0x00). The server owns the device's command seqs: it serialises the clients' commands,
  answers each client with its own seq, and sends events to every live client.
- Keep-alive: ``[CONTROL, b"ping"]`` (no answer); clients send one every second so a server
  (which forgets silent clients, :mod:`hwctl.transport.devserver`) keeps sending them events.
- Control: a two-part message ``[CONTROL, b"status"]``; the server answers
  ``[CONTROL, <JSON object>]`` with at least ``{"kind": "bridge"|"twin", "ok": bool}`` and
  its link counters (frames/bytes each way, serial errors, uptime).

The host never needs to know whether a bridge or a twin sits behind the socket.
"""

from __future__ import annotations

CONTROL = b"HWCTL"
STATUS = b"status"
#: keep-alive from a client (no answer): a server forgets clients silent for its client TTL
PING = b"ping"


def is_control(parts: list[bytes]) -> bool:
    return len(parts) == 2 and parts[0] == CONTROL
