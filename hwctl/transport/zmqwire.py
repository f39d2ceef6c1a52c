"""How wire frames travel over ZeroMQ (host DEALER <-> board bridge or twin ROUTER).

- Data: a one-part message holding raw wire bytes (one or more whole COBS frames, each ending
  in 0x00). The server sends device bytes to every client that has sent it something.
- Control: a two-part message ``[CONTROL, b"status"]``; the server answers
  ``[CONTROL, <JSON object>]`` with at least ``{"kind": "bridge"|"twin", "ok": bool}`` and
  its link counters (frames/bytes each way, serial errors, uptime).

The host never needs to know whether a bridge or a twin sits behind the socket.
"""

from __future__ import annotations

CONTROL = b"HWCTL"
STATUS = b"status"


def is_control(parts: list[bytes]) -> bool:
    return len(parts) == 2 and parts[0] == CONTROL
