"""The in-process software twin as a backend link (``twin://`` URLs).

The twin sits above the transport layer: it implements a transport :class:`~hwctl.transport.Link`
and registers its URL scheme in :mod:`hwctl.transport.schemes` on import, so the transport never
imports the twin. :func:`hwctl.backends.register_defaults` (the CLI, :func:`hwctl.open_backend`)
loads it lazily.
"""

from __future__ import annotations

import asyncio
import contextlib

from hwctl.errors import BadUrl, LinkError
from hwctl.sim.twin.model import CLOCK_HZ, TwinConfig, TwinModel
from hwctl.sim.twin.pacing import Pacer
from hwctl.transport.links import Link
from hwctl.transport.schemes import register_scheme
from hwctl.transport.urls import BackendSpec
from hwctl.wire.features import PROFILES


class TwinLink(Link):
    """An in-process twin driven by an asyncio task (``twin://``)."""

    def __init__(self, model, *, mode: str = "virtual", speed: float = 1.0,
                 idle_grace: float = 2e-4) -> None:
        super().__init__()
        self.model = model
        self.pacer = Pacer(model, mode, speed=speed, idle_grace=idle_grace)
        self._inbox = bytearray()
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise LinkError("link closed")
        self.bytes_out += len(data)
        self._inbox += data
        self._wake.set()

    async def _run(self) -> None:
        pacer, model = self.pacer, self.model
        while not self._closed:
            if not self._inbox:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pacer.timeout())
            self._wake.clear()
            data = bytes(self._inbox)
            self._inbox.clear()
            if data:
                pacer.on_input(data)
            else:
                pacer.on_idle()
            out = model.read()
            if out:
                self._deliver(out)
            await asyncio.sleep(0)

    async def close(self) -> None:
        await super().close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def open_twin_link(spec: BackendSpec, overrides: dict) -> TwinLink:
    """The link for a ``twin://`` URL (parameters parsed by :func:`hwctl.transport.parse_backend_url`;
    ``overrides["model"]`` supplies a ready model instead)."""

    t = spec.twin
    kw = dict(seed=t["seed"], header_period=t["header_period"], header_arrival=t["header_arrival"],
              features=PROFILES[t.get("profile", "full")].features)
    model = overrides.pop("model", None)
    if model is None:
        try:
            if t["fidelity"] is not None:
                cfg = TwinConfig.for_fidelity(t["fidelity"], dark_rate_hz=t["dark"], **kw)
            else:
                cfg = TwinConfig(p_photon=t["p"], dark_prob=min(1.0, t["dark"] * 2 / CLOCK_HZ),
                                 **kw)
        except ValueError as exc:
            raise BadUrl(f"{exc} (in {spec.url!r})") from None
        model = TwinModel(cfg)
    return TwinLink(model, mode=t["mode"], speed=t["speed"])


register_scheme("twin", open_twin_link)
