"""A node waits for its device at start (docs/reliability.md, "A node waits for its device").

A lab starts its node services, twins and bridges in any order, seconds apart (issue 13): a
node started before its served twin or board bridge, or while that process is still starting or
starved, found no device within the URL's handshake (5 tries x 0.25 s by default) and its start
ended with :class:`~hwctl.errors.DeviceNotFound`. :func:`open_device` opens the backend again,
with a growing pause, until the device answers or ``wait_s`` of node time has passed: one line
when it starts waiting, one when the device is there, and at the bound one clear error (a
``DeviceNotFound``, a ``UserError``: one line, exit 2, no traceback). Only "no device (yet)" is
waited for; a wrong device (``VersionMismatch``) or a bad URL ends the start at once.

No clock or sleep of its own: the caller passes the node's (:meth:`NodeService.now`,
:meth:`NodeService._sleep`, :meth:`NodeService._open_backend`), so tests run it in virtual time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from hwctl.errors import DeviceNotFound
from hwctl.recovery import START_HANG_S

if TYPE_CHECKING:
    from hwctl.transport import Backend

log = logging.getLogger("hwctl.node")

#: how long a node waits for its device at start unless configured (``device_wait_s``), s; the
#: same bound as its start-up commands' (:data:`hwctl.recovery.START_HANG_S`)
DEVICE_WAIT_S = START_HANG_S
#: pause between two opens: the first, doubled after each, at most the last (s)
RETRY_MIN_S = 0.25
RETRY_MAX_S = 2.0


async def open_device(url: str, *, name: str, wait_s: float,
                      opener: Callable[[str], Awaitable[Backend]],
                      sleep: Callable[[float], Awaitable[None]],
                      now: Callable[[], float]) -> Backend:
    """Open ``url`` with ``opener``; while it raises :class:`DeviceNotFound`, pause and open
    again until ``wait_s`` (node time, from ``now``) has passed since the first try, then raise
    one ``DeviceNotFound`` saying how long it waited. ``wait_s`` 0: one try."""
    t0 = now()
    pause = RETRY_MIN_S
    tries = 0
    while True:
        tries += 1
        try:
            backend = await opener(url)
        except DeviceNotFound as exc:
            waited = now() - t0
            if waited >= wait_s:
                if tries == 1:
                    raise
                why = "" if str(exc).startswith("no hwctl device answered") else f"; {exc}"
                raise DeviceNotFound(
                    f"node {name}: no device answered at {url} in {waited:.1f} s of waiting "
                    f"({tries} tries{why}): start its twin/bridge, or wait longer "
                    "(device_wait_s, --device-wait)") from None
            if tries == 1:
                log.warning("%s: waiting for its device at %s (none answered yet; up to %g s)",
                            name, url, wait_s)
            await sleep(min(pause, wait_s - waited))  # the last try at the bound
            pause = min(2 * pause, RETRY_MAX_S)
            continue
        if tries > 1:
            log.warning("%s: device at %s answered after %.1f s", name, url, now() - t0)
        return backend
