"""Backends for applications: every URL scheme hwctl knows, loaded on demand.

The transport layer (:mod:`hwctl.transport`) opens serial ports, pyserial URLs and ZeroMQ devices
itself; schemes provided by higher layers register into :mod:`hwctl.transport.schemes`. This
module (application layer) registers the ones hwctl ships, as ``"module:function"`` strings so
nothing is imported until a URL of that scheme is opened:

- ``twin://``: the in-process software twin (:mod:`hwctl.sim.twin.link`).

The CLI calls :func:`register_defaults` once at start-up; library users call
:func:`open_backend` (also exported as :func:`hwctl.open_backend`), which does it for them.
"""

from __future__ import annotations

from typing import Any

from hwctl.transport import Backend, register_scheme
from hwctl.transport import open_backend as _open_backend

#: scheme -> opener shipped with hwctl, imported on first use
DEFAULT_SCHEMES: dict[str, str] = {
    "twin": "hwctl.sim.twin.link:open_twin_link",
}


def register_defaults() -> None:
    """Register every scheme of :data:`DEFAULT_SCHEMES` (idempotent, imports nothing)."""
    from hwctl.transport.schemes import registered

    for scheme, opener in DEFAULT_SCHEMES.items():
        if not registered(scheme):
            register_scheme(scheme, opener)


async def open_backend(url: str, *, handshake: bool = True, **overrides: Any) -> Backend:
    """Open the device named by ``url`` (``twin://``, ``serial://``, any pyserial URL,
    ``zmq+tcp://``) and check it is an hwctl device of our wire version; see
    :func:`hwctl.transport.open_backend` for the URL parameters."""
    register_defaults()
    return await _open_backend(url, handshake=handshake, **overrides)
