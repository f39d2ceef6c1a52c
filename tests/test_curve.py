"""CurveZMQ on the served twin, the bridge and any hwctl ROUTER (hwctl.transport.security):
an unlisted key, a plain client or a client expecting another server key gets nothing through;
a peer's identity is its key, not the name it claims; plain servers stay on loopback."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import zmq
import zmq.asyncio

from hwctl.cli import main
from hwctl.errors import DeviceNotFound, UserError
from hwctl.firmware.bridge import Bridge
from hwctl.sim.twin import TwinConfig, TwinModel
from hwctl.sim.twin.serve import PtyTwinServer, ZmqTwinServer
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


def test_nodes_with_keys_complete_requests_and_refuse_strangers(keys) -> None:
    """Node to node: CurveZMQ both ways; a stranger's key gets nothing to the core; a listed peer
    claiming another node's name in its ESP messages is dropped (esp_forged_src)."""
    from hwctl import timebase
    from hwctl.node import NodeConfig, NodeService
    from hwctl.protocols.esp import EspMessage, MsgType
    from hwctl.sim import topologies
    from hwctl.sim.twin.lab import Lab, LabServer
    from tests.test_node import free_port

    lab = Lab(topologies.by_name("K2"), p_photon=0.02, seed=3, start=timebase.cycle_now())
    pa, pb = free_port(), free_port()

    def cfg(me: str, other: str, port: int, other_port: int, url: str) -> NodeConfig:
        return NodeConfig.from_dict({
            "name": me, "listen": f"tcp://127.0.0.1:{port}", "backend": url,
            "peers": {other: {"endpoint": f"tcp://127.0.0.1:{other_port}"}},
            "workload": {"pairs": [1, 2], "mean_backoff": 0.02},
            "security": {"key": str(keys / f"{me}.key_secret"),
                         "allow": {other: str(keys / f"{other}.key")}}})

    async def go(srv) -> tuple[NodeService, NodeService, int]:
        na = NodeService(cfg("A", "B", pa, pb, srv.urls["A"]), rid_base=0)
        nb = NodeService(cfg("B", "A", pb, pa, srv.urls["B"]), rid_base=1_000_000)
        await na.start()
        await nb.start()
        runs = [asyncio.create_task(na.run()), asyncio.create_task(nb.run())]
        # a stranger (the twin's key, not in A's allowlist) and B's own key speaking for "C"
        ctx = zmq.asyncio.Context.instance()
        stranger = ctx.socket(zmq.DEALER)
        secure_client(stranger, load_keypair(keys / "twin.key_secret"),
                      load_allowlist({"A": keys / "A.key"}).popitem()[0])
        stranger.setsockopt(zmq.IDENTITY, b"B")
        stranger.linger = 0
        stranger.connect(f"tcp://127.0.0.1:{pa}")
        now = timebase.seconds()
        with contextlib.suppress(zmq.Again):  # never admitted: nothing to send to
            await stranger.send_multipart(
                [b"esp", EspMessage(MsgType.ACK, "B", "A", 1, None, now).to_bytes()], zmq.NOBLOCK)
        liar = ctx.socket(zmq.DEALER)
        secure_client(liar, load_keypair(keys / "B.key_secret"),
                      load_allowlist({"A": keys / "A.key"}).popitem()[0])
        liar.setsockopt(zmq.IDENTITY, b"C")
        liar.linger = 0
        liar.connect(f"tcp://127.0.0.1:{pa}")
        await liar.send_multipart([b"esp", EspMessage(MsgType.SYN, "C", "A", 1, None,
                                                      now).to_bytes()])
        while na.counters.completed + nb.counters.completed < 4:
            for r in runs:
                if r.done():
                    r.result()
            await asyncio.sleep(0.02)
        # until both got their answer: the liar's message dropped, the stranger's handshake
        # refused (waits on those events only: no time budget; pytest's timeout bounds a hang)
        while not (na.counters.dropped.get("esp_forged_src") and na._curve.refused):
            await asyncio.sleep(0.01)
        refused = na._curve.refused
        stranger.close(0)
        liar.close(0)
        na.stop()
        nb.stop()
        await asyncio.gather(*runs)
        await na.close()
        await nb.close()
        return na, nb, refused

    with LabServer(lab) as srv:
        na, nb, refused = asyncio.run(go(srv))
    assert refused >= 1  # the stranger's handshake: refused by the ZAP allowlist
    assert na.counters.completed + nb.counters.completed >= 4
    # the liar (B's key, routing id "C") is B: its "C" message is B speaking for another node
    assert na.counters.dropped == {"esp_forged_src": 1}  # nothing else dropped or delivered
