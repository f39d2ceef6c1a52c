"""`hwctl twin` and `hwctl bridge` subcommands: start, serve, stop; one-line errors."""

from __future__ import annotations

import asyncio
import sys

import pytest

from hwctl.cli import main
from hwctl.sim.twin import TwinModel
from hwctl.sim.twin.serve import PtyTwinServer
from hwctl.transport import open_backend
from hwctl.wire import Reg


def test_twin_cli_pty_with_link(tmp_path, capsys) -> None:
    link = tmp_path / "twin0"
    assert main(["twin", "--pty", "--link", str(link), "--duration", "0.3", "--fidelity", "0.8"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"serial://{link}"]
    assert not link.exists()  # symlink removed on exit


def test_twin_cli_bad_endpoint_is_one_line(capsys) -> None:
    with pytest.raises(SystemExit) as exc:  # refused by the argument parser, before serving
        main(["twin", "--zmq", "nonsense://x", "--duration", "0.1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "endpoint 'nonsense://x'" in err[0]


def test_twin_cli_bad_physics_is_one_line(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["twin", "--fidelity", "1.5", "--duration", "0.1"])
    assert exc.value.code == 2
    assert "fidelity" in capsys.readouterr().err


def test_bridge_cli_runs_and_reports(capsys) -> None:
    with PtyTwinServer(TwinModel()) as srv:
        assert main(["bridge", "--port", srv.port, "--listen", "tcp://127.0.0.1:0",
                     "--duration", "0.3", "--health-every", "0.1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("zmq+tcp://127.0.0.1:")
    assert "health" in captured.err


def test_pty_symlink_is_openable_by_url(tmp_path) -> None:
    link = tmp_path / "dev"
    with PtyTwinServer(TwinModel(), link=str(link)) as srv:
        assert srv.url == f"serial://{link}"

        async def go():
            # patient: retries at 0.25 s for up to 60 s, a hang bound (the default 1.25 s of the
            # opening handshake is a budget a starved twin thread can miss)
            async with await open_backend(srv.url, retries=240) as b:
                return await b.read_reg(Reg.SLOTS_FREE)

        assert asyncio.run(asyncio.wait_for(go(), 300)) == 8  # a hang bound


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timer slack is a Linux setting")
def test_served_twin_threads_wake_without_timer_slack() -> None:
    """A served twin's thread sleeps until its model's next deadline: with Linux's default 50 us
    timer slack every such wake-up was up to 50 us late (pacing.precise_timers). The server
    threads set 1 ns for themselves, and only for themselves."""
    import ctypes
    import threading

    from hwctl.sim.topologies import by_name
    from hwctl.sim.twin.lab import Lab, LabServer

    libc = ctypes.CDLL(None)
    seen: dict[str, int] = {}
    for cls, make in ((LabServer, lambda: LabServer(Lab(by_name("K2"), p_photon=0.0))),
                      (PtyTwinServer, lambda: PtyTwinServer(TwinModel()))):
        orig = cls._loop

        def loop(self, orig=orig, name=cls.__name__) -> None:
            seen[name] = libc.prctl(30, 0, 0, 0, 0)  # PR_GET_TIMERSLACK, in the server thread
            self._stop.set()  # seen once: stop serving
            orig(self)

        cls._loop = loop
        try:
            srv = make().start()
            srv._thread.join(timeout=30)  # bounds a hang only
            srv.stop()
        finally:
            cls._loop = orig
    assert seen == {"LabServer": 1, "PtyTwinServer": 1}
    here = threading.current_thread()
    assert here is threading.main_thread() and libc.prctl(30, 0, 0, 0, 0) != 1


def test_pty_link_owned_by_a_live_twin_is_refused(tmp_path, capsys) -> None:
    """A second `--pty --link` on a link a running twin owns is refused in one line (it would
    replace the link, and the first twin remove it on exit); a stale link (no live owner) is
    replaced; the first twin's link survives the refusal."""
    import os

    from hwctl.errors import UserError

    link = tmp_path / "twin0"
    os.symlink("/dev/null", link)  # stale: left by a twin that died
    with PtyTwinServer(TwinModel(), link=str(link)) as first:
        assert os.readlink(link) == first.port
        with pytest.raises(UserError, match="another twin serves on it"):
            PtyTwinServer(TwinModel(), link=str(link))
        assert main(["twin", "--pty", "--link", str(link), "--duration", "0.1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "stop that twin first" in err
        assert os.readlink(link) == first.port
    assert not link.exists()
    with PtyTwinServer(TwinModel(), link=str(link)) as again:  # free again once it stopped
        assert os.readlink(link) == again.port
