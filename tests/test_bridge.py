"""Board bridge (hwctl.firmware.bridge) against the twin on a pseudo-terminal: the host speaks
zmq+tcp:// to the bridge, the bridge speaks UART frames to the pty, health is reported."""

from __future__ import annotations

import asyncio

import pytest

from hwctl.errors import BadUrl, UserError
from hwctl.firmware.bridge import Bridge, parse_port
from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.sim.twin.serve import PtyTwinServer
from hwctl.transport import open_backend
from hwctl.wire import Herald, Late, Reg

#: bounds a hang only (a loaded machine is slower, not stuck): never a speed requirement
HANG_S = 300.0
#: a command's patience where an answer is expected: retries at the usual 0.25 s up to 60 s
PATIENT_RETRIES = 240


def arun(coro, timeout: float = HANG_S):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_bridge_forwards_frames_and_reports_health() -> None:
    twin = TwinModel(TwinConfig(p_photon=0.02, seed=9))
    with PtyTwinServer(twin, mode="realtime") as srv, Bridge(f"serial://{srv.port}?baud=3000000") as br:
        async def go():
            # a 60 s response timeout, a hang bound: on a loaded machine a 0.25 s (or 2 s)
            # retry would be legal but would break the exact frame accounting checked below
            async with await open_backend(br.url, timeout=60.0) as b:
                await b.write_reg(Reg.SCRATCH, 0xABCD)
                assert await b.read_reg(Reg.SCRATCH) == 0xABCD
                ev = Late(0, 0)
                while isinstance(ev, Late):  # LATE: a stalled host reached the device after
                    now = await b.time()  # the start (legal, speed only): sent again
                    await b.schedule(now + 20_000_000, 100_000, 50, 2)  # 200 ms ahead
                    ev = await b.next_event(timeout=HANG_S)
                assert isinstance(ev, Herald)
                st = await b.link.status()
                assert b.stats.retries == 0 and b.stats.rx_frame_errors == 0
                return st, b.stats.commands

        st, n_cmd = arun(go())
        assert st["kind"] == "bridge" and st["ok"] and st["clients"] == 1
        assert st["frames_to_device"] == n_cmd + 1  # + the bridge's own first (prime) read
        assert st["primed"]
        assert st["frames_from_device"] >= n_cmd + 1  # responses + the HERALD
        assert st["bad_frames_from_host"] == 0 == st["bad_frames_from_device"]
        assert twin.reg(Reg.CNT_HERALD) == 1


def test_bridge_counts_garbage_from_host() -> None:
    with PtyTwinServer(TwinModel(), mode="realtime") as srv, Bridge(srv.port) as br:
        async def go():
            async with await open_backend(br.url, retries=PATIENT_RETRIES) as b:
                await b.link.send(b"\x05garbage\x00")
                await b.read_reg(Reg.ID)
                st = await b.link.status()
                assert st["bad_frames_from_host"] == 1
                assert st["drops"] == {"bad_frame_from_client": 1}
                # stopped at the bridge (it re-encodes every command): the device never saw it
                assert await b.read_reg(Reg.ERR_CRC) == 0

        arun(go())


def test_bridge_user_errors() -> None:
    with pytest.raises(UserError, match="cannot open serial port"):
        Bridge("serial:///dev/does-not-exist-hwctl")
    with pytest.raises(BadUrl):
        parse_port("serial:///dev/x?baud=fast")
    assert parse_port("serial:///dev/ttyUSB0?baud=115200") == ("/dev/ttyUSB0", 115200)
    assert parse_port("loop://") == ("loop://", 3_000_000)
