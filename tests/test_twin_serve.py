"""`hwctl twin` and `hwctl bridge` subcommands: start, serve, stop; one-line errors."""

from __future__ import annotations

import asyncio

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
            async with await open_backend(srv.url) as b:
                return await b.read_reg(Reg.SLOTS_FREE)

        assert asyncio.run(asyncio.wait_for(go(), 10)) == 8
