"""The lab twin's devices on Unix stream sockets (``LabServer(device_link="unix")``,
``hwctl twin --lab --device-link unix``, ``hwctl demo --transport unix``) and the node's
``unix://`` backend (:class:`hwctl.transport.links.UnixLink`)."""

from __future__ import annotations

import asyncio
import os

import pytest

from hwctl.errors import BadUrl, DeviceNotFound, LinkError, UserError
from hwctl.sim.twin.lab import LabServer
from hwctl.transport import UnixLink, open_backend, parse_backend_url
from hwctl.wire import Reg
from tests.test_node import _check, k2_lab, pair_configs, run_pair


def test_unix_urls() -> None:
    assert parse_backend_url("unix:///tmp/lab/A").target == "/tmp/lab/A"
    assert parse_backend_url("unix:///tmp/lab/A?timeout=1").timeout == 1.0
    for bad in ("unix://", "unix://host/tmp/A", "unix:///tmp/A?baud=9600"):
        with pytest.raises(BadUrl):
            parse_backend_url(bad)


def test_two_nodes_on_the_lab_over_unix_sockets() -> None:
    with LabServer(k2_lab(), device_link="unix") as srv:
        assert all(u.startswith("unix:///") for u in srv.urls.values())
        a, b = pair_configs(srv.urls["A"], srv.urls["B"])
        na, nb = asyncio.run(run_pair(a, b, until_completed=6))
        paths = [u.removeprefix("unix://") for u in srv.urls.values()]
    assert srv.error is None
    _check(na, nb)
    assert na.counters.completed > 0 and nb.counters.completed > 0
    assert all(isinstance(n.backend.link, UnixLink) for n in (na, nb))
    assert not any(os.path.exists(p) for p in paths)  # removed with the lab's own directory
    assert not os.path.exists(os.path.dirname(paths[0]))


def test_a_newer_host_replaces_the_older_and_a_stopped_lab_ends_the_link(tmp_path) -> None:
    """One host per device, as a UART: a second connection to a device hangs up the first
    (a restarted node takes its device over), whose link then ends with LinkError; a device
    nobody serves is DeviceNotFound; the lab's link directory holds its sockets."""

    async def main() -> None:
        with pytest.raises(DeviceNotFound):
            await open_backend(f"unix://{tmp_path}/nobody/A", retries=0)
        srv = LabServer(k2_lab(), device_link="unix", link_dir=str(tmp_path / "lab")).start()
        try:
            assert srv.urls["A"] == f"unix://{tmp_path / 'lab' / 'A'}"
            with pytest.raises(UserError):  # one lab per link directory
                LabServer(k2_lab(), device_link="unix", link_dir=str(tmp_path / "lab"))
            first = await open_backend(srv.urls["A"])
            assert await first.read_reg(Reg.ID)
            second = await open_backend(srv.urls["A"])  # (handshake: the device answers it)
            with pytest.raises(LinkError):
                for _ in range(100):  # the hang-up reaches the first link's reader
                    await first.next_event(timeout=5.0)
            assert await second.read_reg(Reg.ID)
            await first.close()
        finally:
            await asyncio.to_thread(srv.stop)
        with pytest.raises(LinkError):
            for _ in range(100):
                await second.next_event(timeout=5.0)
        await second.close()
        assert not os.path.exists(tmp_path / "lab" / "A")

    asyncio.run(main())
