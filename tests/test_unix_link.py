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


def test_an_accept_that_fails_pauses_the_device_listener_instead_of_spinning() -> None:
    """accept() failing with EMFILE (out of descriptors) leaves the host's connection in the
    backlog, so the device's listening socket stays readable: retried in every loop iteration,
    the lab's server thread spins. It counts the failure, stops listening on that socket for
    ``ACCEPT_PAUSE_S`` (on the server's clock, frozen here: virtual time) and then takes the
    waiting host as usual; the lab keeps serving in between."""
    import socket
    import threading

    class _Failing:  # device A's listening socket, with accept() failing until ``ok``
        def __init__(self, real: socket.socket) -> None:
            self.real, self.ok, self.calls = real, False, 0

        def fileno(self) -> int:
            return self.real.fileno()

        def accept(self):
            self.calls += 1
            if not self.ok:
                raise OSError(24, "Too many open files")
            return self.real.accept()

        def close(self) -> None:
            self.real.close()

    srv = LabServer(k2_lab(), device_link="unix")
    now = [0.0]
    srv.clock = lambda: now[0]  # the pause's clock: advanced by hand below
    fd = next(f for f, (n, _) in srv._listen.items() if n == "A")
    fake = _Failing(srv._listen[fd][1])
    srv._listen[fd] = ("A", fake)  # type: ignore[assignment]
    turns = [0]
    turned = threading.Condition()
    wait = srv._wait

    def counting_wait(timeout: float):  # one call per loop iteration
        r = wait(timeout)
        with turned:
            turns[0] += 1
            turned.notify_all()
        return r

    srv._wait = counting_wait  # type: ignore[method-assign]

    def turn() -> None:  # wake the loop and wait until it has run at least one more iteration
        with turned:
            n = turns[0]
        srv._wake()
        with turned:
            assert turned.wait_for(lambda: turns[0] > n, timeout=30)

    host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.start()
    try:
        host.connect(srv.urls["A"].removeprefix("unix://"))
        for _ in range(1000):
            if fake.calls:
                break
            turn()
        assert fake.calls >= 1
        for _ in range(200):  # loop iterations, not time: a spinning listener accepts in each
            turn()
        calls = fake.calls
        assert calls <= 2  # paused after the failure (spinning: one per iteration, > 200)
        assert srv.counts["accept_failed"] == calls
        fake.ok = True
        now[0] += srv.ACCEPT_PAUSE_S  # the pause is over: the waiting host is taken
        for _ in range(1000):
            if "A" in srv._conns:
                break
            turn()
        assert "A" in srv._conns
        assert srv.error is None
    finally:
        host.close()
        srv.stop()
