"""hwctl: hardware-in-the-loop controller for quantum-network labs.

The public API, importable from ``hwctl`` directly (each name is loaded on first use, so
``import hwctl`` stays cheap and the CLI starts fast):

Devices (an FPGA node over serial or ZeroMQ, or the software twin)::

    import asyncio, hwctl
    backend = asyncio.run(hwctl.open_backend("twin://?mode=virtual&seed=1"))

Sans-IO protocol cores (time passed in, actions returned; :mod:`hwctl.protocols`):

- :class:`EspNode` — Eventual Synchronization Protocol, one per node (ESP paper §V);
- :class:`DqpScheduler` and :class:`DqpNode` — the centralized distributed-queue baseline (§IV);
- :class:`VerificationCore` with :class:`VerificationConfig` — pair verification
  (pair-verification paper §II-C);
- :class:`Request` — an entanglement request (edge, number of pairs, fidelity).

Network simulator (the ESP paper's evaluation, §VI)::

    res = hwctl.simulate(hwctl.topology("3x3"), hwctl.SimConfig(protocol="esp", duration=10))
    res.summary["mean_latency_ms"]

Errors meant for the user derive from :class:`UserError` (one line, exit status 2 in the CLI).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"


class _CheckoutFinder:
    """``hwctl.sim`` and ``hwctl.firmware`` in a source checkout: the repository's top-level
    folders sim/ and firmware/ (a wheel has them inside hwctl/, mapped by setup.py). Found before
    any other finder, so a checkout on PYTHONPATH imports its own folders even when the
    environment holds an editable install of another checkout (whose finder maps the same names
    to that checkout's folders)."""

    def __init__(self, folders: dict[str, str]) -> None:
        self.folders = folders

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        folder = self.folders.get(name)
        if folder is None:
            return None
        from importlib.util import spec_from_file_location

        return spec_from_file_location(name, os.path.join(folder, "__init__.py"),
                                       submodule_search_locations=[folder])


def _map_checkout_folders() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    if not os.path.isfile(os.path.join(root, "pyproject.toml")):
        return  # installed (a wheel): hwctl/sim and hwctl/firmware are real subpackages
    folders = {f"{__name__}.{d}": os.path.join(root, d) for d in ("sim", "firmware")
               if os.path.isfile(os.path.join(root, d, "__init__.py"))
               and not os.path.exists(os.path.join(here, d))}
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_CheckoutFinder"]
    if folders:
        sys.meta_path.insert(0, _CheckoutFinder(folders))


_map_checkout_folders()

#: public name -> (module, attribute)
_API: dict[str, tuple[str, str]] = {
    "open_backend": ("hwctl.backends", "open_backend"),
    "parse_backend_url": ("hwctl.transport", "parse_backend_url"),
    "Backend": ("hwctl.transport", "Backend"),
    "Request": ("hwctl.protocols.base", "Request"),
    "EspNode": ("hwctl.protocols.esp", "EspNode"),
    "DqpNode": ("hwctl.protocols.dqp", "DqpNode"),
    "DqpScheduler": ("hwctl.protocols.dqp", "DqpScheduler"),
    "VerificationCore": ("hwctl.protocols.verification", "VerificationCore"),
    "VerificationConfig": ("hwctl.protocols.verification", "VerificationConfig"),
    "simulate": ("hwctl.sim.network", "simulate"),
    "SimConfig": ("hwctl.sim.network", "SimConfig"),
    "SimResult": ("hwctl.sim.network", "SimResult"),
    "topology": ("hwctl.sim.topologies", "by_name"),
    "HwctlError": ("hwctl.errors", "HwctlError"),
    "UserError": ("hwctl.errors", "UserError"),
}

__all__ = [
    "Backend",
    "DqpNode",
    "DqpScheduler",
    "EspNode",
    "HwctlError",
    "Request",
    "SimConfig",
    "SimResult",
    "UserError",
    "VerificationConfig",
    "VerificationCore",
    "__version__",
    "open_backend",
    "parse_backend_url",
    "simulate",
    "topology",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from hwctl.backends import open_backend
    from hwctl.errors import HwctlError, UserError
    from hwctl.protocols.base import Request
    from hwctl.protocols.dqp import DqpNode, DqpScheduler
    from hwctl.protocols.esp import EspNode
    from hwctl.protocols.verification import VerificationConfig, VerificationCore
    from hwctl.sim.network import SimConfig, SimResult, simulate
    from hwctl.sim.topologies import by_name as topology
    from hwctl.transport import Backend, parse_backend_url


def __getattr__(name: str) -> Any:
    """Load a public name on first use (PEP 562)."""
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'hwctl' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
