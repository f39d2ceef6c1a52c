"""Backend URL schemes provided from above the transport layer.

The transport layer knows serial ports, pyserial URLs and ZeroMQ itself. Schemes whose device lives
in a higher layer (``twin://``: the software twin, :mod:`hwctl.sim.twin.link`) are registered here by
whoever provides or loads them, so the transport never imports the twin (layers point one way:
``tests/test_layers.py``). The application layer registers the defaults
(:func:`hwctl.backends.register_defaults`, called by the CLI and by :func:`hwctl.open_backend`).

An opener takes the parsed URL (:class:`~hwctl.transport.urls.BackendSpec`) and the caller's
keyword overrides and returns a :class:`~hwctl.transport.links.Link`. It may be registered as a
``"module:function"`` string, imported on first use (start-up stays cheap).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from hwctl.errors import BadUrl
from hwctl.transport.links import Link
from hwctl.transport.urls import BackendSpec

Opener = Callable[[BackendSpec, dict[str, Any]], Link]

_OPENERS: dict[str, Opener | str] = {}


def register_scheme(scheme: str, opener: Opener | str) -> None:
    """Open ``scheme://`` URLs with ``opener`` (a callable or ``"module:function"``)."""
    _OPENERS[scheme] = opener


def registered(scheme: str) -> bool:
    """Whether a provider registered ``scheme``."""
    return scheme in _OPENERS


def open_link(spec: BackendSpec, overrides: dict[str, Any]) -> Link:
    """The link for ``spec`` from its registered opener; an unregistered scheme is a ``BadUrl``
    that says what to load."""
    opener = _OPENERS.get(spec.scheme)
    if opener is None:
        raise BadUrl(f"{spec.scheme}:// backends are not loaded in this program ({spec.url!r}): "
                     "use hwctl.open_backend, or call hwctl.backends.register_defaults() first")
    if isinstance(opener, str):
        module, _, attr = opener.partition(":")
        opener = getattr(importlib.import_module(module), attr)
        _OPENERS[spec.scheme] = opener
    return opener(spec, overrides)
