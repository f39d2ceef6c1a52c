"""A node's start-up commands (clock, block mode, CONTROL.LATE_JOIN, the life's marks) run before
the device supervisor (hwctl.recovery): inside :func:`hwctl.recovery.patient` each waits for the
device's answer up to a hang bound instead of the link's few tries (at load 17-28 an in-process
lab answered later than 5 x 0.25 s and the node ended with LinkTimeout at start). Deterministic:
the link drops the first frames, so the device answers only a resend; no test here depends on
the machine's speed (the only time involved is the hang bound of a device that never answers)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hwctl.errors import LinkTimeout
from hwctl.node import NodeConfig, NodeService
from hwctl.recovery import patient
from hwctl.transport import open_backend
from hwctl.wire import Reg

URL = "twin://?timeout=2&retries=4"  # the handshake that opens it: patient enough for any load


async def _open(timeout: float):
    """The twin, opened; then one try of ``timeout`` per command, as a URL with ``retries=0``
    would give (the handshake itself runs before, with the URL's tries)."""
    b = await open_backend(URL)
    b.retries, b.timeout = 0, timeout
    return b


def _port() -> int:
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def _drop_first(backend, n: int) -> list[int]:
    """The next ``n`` frames sent to the device are lost (the device never sees them)."""
    real_send = backend.link.send
    sent: list[int] = []

    async def send(data: bytes) -> None:
        sent.append(len(data))
        if len(sent) > n:
            await real_send(data)

    backend.link.send = send
    return sent


def test_start_up_commands_wait_for_a_late_device() -> None:
    """The first start-up command is answered only at its fourth send: with the URL's single
    try it would end the start; inside ``patient`` the node starts, the link counts (at least) the
    three resends, and the link's retry count is back after the start."""

    async def main() -> None:
        cfg = NodeConfig.from_dict({"name": "A", "listen": f"tcp://127.0.0.1:{_port()}",
                                    "backend": URL, "peers": {
                                        "B": {"endpoint": f"tcp://127.0.0.1:{_port()}"}}})
        b = await _open(0.2)
        sent = _drop_first(b, 3)
        node = NodeService(cfg)
        try:
            await node.start(b)
            # three resends for the lost frames (more only if an answer came later than 0.2 s)
            assert b.stats.retries >= 3 and b.stats.timeouts == 0 and len(sent) > 4
            assert b.retries == 0  # the link's own, for the supervised life that follows
            assert node.recovery.token != 0  # install() ran: the life is marked
        finally:
            await node.close()

    asyncio.run(main())


def test_without_patience_the_same_late_device_fails_the_command() -> None:
    """The control: the same lost frames outside ``patient`` end the command (one try)."""

    async def main() -> None:
        b = await _open(0.2)
        _drop_first(b, 3)
        try:
            with pytest.raises(LinkTimeout):
                await b.read_reg(Reg.CONTROL)
        finally:
            await b.close()

    asyncio.run(main())


def test_a_device_that_never_answers_still_ends_the_start() -> None:
    """``patient`` bounds a hang: a device that answers nothing gives LinkTimeout after
    ``hang_s`` / ``timeout`` tries (counted, not timed), and the retry count is restored."""

    async def main() -> None:
        b = await _open(0.05)
        sent = _drop_first(b, 10**9)
        try:
            with pytest.raises(LinkTimeout):
                async with patient(b, hang_s=0.2):
                    await b.read_reg(Reg.CONTROL)
            assert len(sent) == 4 and b.retries == 0  # ceil(0.2 / 0.05) tries
        finally:
            await b.close()

    asyncio.run(main())


def test_a_backend_without_retries_is_left_alone() -> None:
    """The replay's backend answers from the recording: no retry count, nothing to change."""

    class NoLink:
        pass

    async def main() -> None:
        b = NoLink()
        async with patient(b):
            pass
        assert not hasattr(b, "retries")

    asyncio.run(main())


def _waiting_node(monkeypatch, wait_s: float, appears_at: float | None, fail=None):
    """Node A whose device answers only from virtual node time ``appears_at`` (None: never):
    every open before raises DeviceNotFound after a handshake of 1.25 virtual seconds (or
    ``fail``, an exception, at once). Its clock and sleeps are virtual; returns (node, opens,
    sleeps, clock)."""
    import hwctl.node.service
    import hwctl.transport
    from hwctl.errors import DeviceNotFound

    vt = [1000.0]
    opens: list[float] = []
    sleeps: list[float] = []

    async def opener(url: str, **kw):
        opens.append(vt[0])
        if fail is not None:
            raise fail
        if appears_at is None or vt[0] < appears_at:
            vt[0] += 1.25  # the URL's handshake, unanswered
            raise DeviceNotFound(f"no hwctl device answered at {url} (checked 5 times in 1.25 s)")
        return await open_backend(URL)

    # the node opens its device through hwctl.transport.open_backend (both names: the service
    # module's own import of it, which the start used before it waited, fails the same way)
    monkeypatch.setattr(hwctl.transport, "open_backend", opener)
    monkeypatch.setattr(hwctl.node.service, "open_backend", opener, raising=False)
    cfg = NodeConfig.from_dict({"name": "A", "listen": f"tcp://127.0.0.1:{_port()}",
                                "backend": "zmq+tcp://127.0.0.1:9", "device_wait_s": wait_s,
                                "peers": {"B": {"endpoint": f"tcp://127.0.0.1:{_port()}"}}})
    node = NodeService(cfg)

    async def sleep(d: float) -> None:
        sleeps.append(d)
        vt[0] += d

    node.now = lambda: vt[0]  # type: ignore[method-assign]
    node._sleep = sleep  # type: ignore[method-assign]
    return node, opens, sleeps, vt


def test_a_node_started_before_its_device_waits_for_it(monkeypatch, caplog) -> None:
    """Issue 13: nodes and devices start in any order, seconds apart. The device (a served twin
    or bridge) answers only 5 s (virtual node time) after the node started: the node's start
    opens it again, with growing pauses, logs one line while waiting and one when it answered,
    and starts (the clock sync and the rest of the start run on the device found)."""
    async def main() -> None:
        node, opens, sleeps, vt = _waiting_node(monkeypatch, 60.0, appears_at=1005.0)
        try:
            await node.start()
            assert node.backend is not None and node.recovery.token != 0  # started on it
            assert len(opens) >= 3 and opens[-1] >= 1005.0 and vt[0] - 1000.0 < 60.0
            assert sleeps == sorted(sleeps) and max(sleeps) <= 2.0  # growing, bounded pauses
        finally:
            await node.close()

    with caplog.at_level("WARNING", logger="hwctl.node"):
        asyncio.run(main())
    waiting = [r for r in caplog.records if "waiting for its device" in r.getMessage()]
    assert len(waiting) == 1 and "\n" not in waiting[0].getMessage()
    assert any("answered after" in r.getMessage() for r in caplog.records)


def test_a_node_waits_for_its_device_only_up_to_its_bound(monkeypatch) -> None:
    """A device that never answers ends the start at ``device_wait_s`` (virtual node time) with
    one clear DeviceNotFound (a UserError: one line, exit 2); a wrong device (VersionMismatch)
    is not waited for; ``device_wait_s = 0`` is one try."""
    from hwctl.errors import DeviceNotFound, VersionMismatch

    async def main() -> None:
        node, opens, _, vt = _waiting_node(monkeypatch, 10.0, appears_at=None)
        with pytest.raises(DeviceNotFound, match=r"node A: no device answered at .* in 1\d\.\d s "
                                                 r"of waiting .*device_wait_s"):
            await node.start()
        # tries until the bound, the last one started before it and ended within its handshake
        assert opens[-1] < 1010.0 <= vt[0] <= 1010.0 + 1.25 and len(opens) >= 4
        node, opens, _, _ = _waiting_node(monkeypatch, 10.0, None, fail=VersionMismatch("v1"))
        with pytest.raises(VersionMismatch):
            await node.start()
        assert len(opens) == 1
        node, opens, _, _ = _waiting_node(monkeypatch, 0.0, appears_at=None)
        with pytest.raises(DeviceNotFound, match="checked 5 times"):
            await node.start()
        assert len(opens) == 1

    asyncio.run(main())


def test_nodes_started_before_their_lab_wait_for_it_and_run(tmp_path) -> None:
    """Issue 13, as a lab does it: two ``hwctl node`` processes are started first, their
    devices' paths not there yet; each says once that it waits for its device; then ``hwctl
    twin --lab K2`` starts and creates them: both nodes start and complete requests. Waits on
    output lines only (SAFETY_S bounds a hang)."""
    import re
    import time

    from tests.test_node_processes import REPORT, SAFETY_S, Proc, free_port, node_toml

    deadline = time.monotonic() + SAFETY_S
    ports = {n: free_port() for n in "AB"}
    nodes: dict[str, Proc] = {}
    lab = None
    try:
        for n, peer, seed in (("A", "B", 1), ("B", "A", 2)):
            cfg = tmp_path / f"{n}.toml"
            url = f"serial://{tmp_path / 'lab' / n}"
            cfg.write_text(node_toml(n, peer, url, ports, tmp_path / "out", seed))
            nodes[n] = Proc(["node", "--config", str(cfg), "--report-every", "0.2",
                             "--device-wait", "600"])
            nodes[n].wait_line(lambda s: "waiting for its device" in s, deadline)
        lab = Proc(["twin", "--lab", "K2", "--p-photon", "0.005", "--seed", "3",
                    "--link-dir", str(tmp_path / "lab")])
        for n in "AB":
            nodes[n].wait_line(lambda s, n=n: s.startswith(f"node {n} on"), deadline)
        for n in "AB":
            while True:
                m = REPORT.match(nodes[n].wait_line(lambda s: REPORT.match(s) is not None,
                                                    deadline))
                if m is not None and int(m[2]) >= 1:
                    break
        for n in "AB":
            assert nodes[n].stop() == 0, nodes[n].log[-10:]
            assert not any(re.search("Traceback", s) for s in nodes[n].log)
    finally:
        for p in nodes.values():
            p.stop()
        if lab is not None:
            lab.stop()


def test_ctrl_c_while_waiting_for_the_device_is_one_line(tmp_path) -> None:
    """Ctrl-C (SIGINT) while ``hwctl node`` waits for its device at start: exit 130, one line
    ``hwctl node: interrupted``, no traceback, and no empty partial results file left in the
    config's ``out`` (nothing ran). Waits on output lines and the process's end only
    (SAFETY_S bounds a hang)."""
    import queue
    import signal
    import time

    from tests.test_node_processes import SAFETY_S, Proc, free_port, node_toml

    deadline = time.monotonic() + SAFETY_S
    ports = {n: free_port() for n in "AB"}
    cfg = tmp_path / "A.toml"
    cfg.write_text(node_toml("A", "B", f"serial://{tmp_path / 'none' / 'A'}", ports,
                             tmp_path / "out", 1))
    p = Proc(["node", "--config", str(cfg), "--device-wait", "600"])
    try:
        p.wait_line(lambda s: "waiting for its device" in s, deadline)
        p.p.send_signal(signal.SIGINT)
        assert p.p.wait(timeout=max(1.0, deadline - time.monotonic())) == 130
        after: list[str] = []
        while True:  # the rest of its output (the pump threads end with its pipes)
            try:
                after.append(p.lines.get(timeout=1.0))
            except queue.Empty:
                break
        assert not any("Traceback" in s for s in p.log + after), p.log + after
        assert after[-1] == "hwctl node: interrupted", after
        assert len(after) == 1, after
        assert not list((tmp_path / "out").glob("*.partial.arrows"))
    finally:
        p.stop()
