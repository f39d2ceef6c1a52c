"""CurveZMQ on the served twin, the bridge and any hwctl ROUTER (hwctl.transport.security):
an unlisted key, a plain client or a client expecting another server key gets nothing through;
a peer's identity is its key, not the name it claims; plain servers stay on loopback."""

from __future__ import annotations

import asyncio

import pytest
import zmq

from firmware.bridge import Bridge
from hwctl.cli import main
from hwctl.errors import DeviceNotFound, UserError
from hwctl.transport import open_backend
from hwctl.transport.security import (
    CurveServer,
    generate,
    load_allowlist,
    load_keypair,
    secure_client,
    user_id,
)
from hwctl.wire import Reg
from sim.twin import TwinConfig, TwinModel
from sim.twin.serve import PtyTwinServer, ZmqTwinServer


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    for name in ("A", "B", "twin", "bridge"):
        generate(d, name)
    allow = d / "allow"
    allow.mkdir()
    (allow / "A.key").write_text((d / "A.key").read_text())
    return d


def _url(srv_url: str, keys, client: str, server: str) -> str:
    return f"{srv_url}?key={keys / (client + '.key_secret')}&serverkey={keys / (server + '.key')}"


async def _use(url: str) -> None:
    async with await open_backend(url + "&timeout=2") as b:
        await b.write_reg(Reg.SCRATCH, 77)
        assert await b.read_reg(Reg.SCRATCH) == 77


async def _refused(url: str) -> None:
    with pytest.raises(DeviceNotFound):
        await open_backend(url)


def test_served_twin_admits_listed_keys_only(keys) -> None:
    with ZmqTwinServer(TwinModel(TwinConfig()), keys=load_keypair(keys / "twin.key_secret"),
                       allow=load_allowlist(keys / "allow"), mode="realtime") as srv:
        asyncio.run(_use(_url(srv.url, keys, "A", "twin")))
        seen = srv.sessions.clients_seen
        quick = "&timeout=0.2&retries=1"
        asyncio.run(_refused(_url(srv.url, keys, "B", "twin") + quick))  # unlisted key
        asyncio.run(_refused(srv.url + "?timeout=0.2&retries=1"))  # plain client
        asyncio.run(_refused(_url(srv.url, keys, "A", "bridge") + quick))  # wrong server key
        st = srv.status()
        assert st["curve"] and st["auth_refused"] >= 1
        assert srv.sessions.clients_seen == seen  # 0 messages delivered from any of them


def test_bridge_admits_listed_keys_only(keys) -> None:
    with PtyTwinServer(TwinModel(), mode="realtime") as twin, \
            Bridge(twin.port, keys=load_keypair(keys / "bridge.key_secret"),
                   allow=load_allowlist(keys / "allow")) as br:
        asyncio.run(_use(_url(br.url, keys, "A", "bridge")))
        seen = br.sessions.clients_seen
        asyncio.run(_refused(_url(br.url, keys, "B", "bridge") + "&timeout=0.2&retries=1"))
        assert br.status()["auth_refused"] >= 1 and br.sessions.clients_seen == seen


def test_identity_is_the_key_not_the_claimed_name(keys) -> None:
    """B, a listed peer, sends a message claiming to be A: the server sees B's key."""
    ctx = zmq.Context()
    try:
        allow = load_allowlist({"A": keys / "A.key", "B": keys / "B.key"})
        curve = CurveServer(ctx, load_keypair(keys / "twin.key_secret"), allow)
        srv = ctx.socket(zmq.ROUTER)
        curve.secure(srv)
        port = srv.bind_to_random_port("tcp://127.0.0.1")
        seen = []
        for name in ("A", "B"):
            c = ctx.socket(zmq.DEALER)
            secure_client(c, load_keypair(keys / f"{name}.key_secret"),
                          load_allowlist({"twin": keys / "twin.key"}).popitem()[0])
            c.connect(f"tcp://127.0.0.1:{port}")
            c.send(b"I am A")
            assert srv.poll(20_000)
            frames = srv.recv_multipart(copy=False)
            seen.append((curve.peer_name(user_id(frames[-1])), frames[-1].bytes))
            c.close(0)
        assert seen == [("A", b"I am A"), ("B", b"I am A")]
        srv.close(0)
        curve.stop()
    finally:
        ctx.destroy(0)


def test_plain_servers_stay_on_loopback(capsys) -> None:
    with pytest.raises(UserError, match="loopback"):
        ZmqTwinServer(TwinModel(), "tcp://0.0.0.0:0")
    assert main(["twin", "--zmq", "tcp://0.0.0.0:0", "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loopback" in err[0]


def test_key_errors_are_one_line(keys, capsys) -> None:
    assert main(["twin", "--zmq", "tcp://127.0.0.1:0", "--key", str(keys / "A.key"),
                 "--allow", str(keys / "allow"), "--duration", "1"]) == 2  # public, not secret
    assert main(["twin", "--zmq", "tcp://127.0.0.1:0", "--key", str(keys / "A.key_secret"),
                 "--duration", "1"]) == 2  # no allowlist
    assert main(["keys", "new", "A", "--dir", str(keys)]) == 2  # never overwritten
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("hwctl") for line in err)
