"""The live view (hwctl/live.py): two node services on an in-process lab twin, the page and its
event stream served from their loop, rendered by a real headless Chromium (the system package that
dev.sh installs) with a screenshot."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from hwctl import timebase
from hwctl.live import PAGE, LiveServer, crossings, layout, parse_addr, snapshot
from hwctl.node import NodeConfig, NodeService
from hwctl.sim import topologies
from hwctl.sim.twin.lab import Lab, LabServer

SHOTS = Path(os.environ.get("HWCTL_SCREENSHOTS", "")) if os.environ.get("HWCTL_SCREENSHOTS") \
    else None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _configs(urls: dict[str, str]) -> list[NodeConfig]:
    ports = {"A": _free_port(), "B": _free_port()}
    out = []
    for me, peer, seed in (("A", "B", 1), ("B", "A", 2)):
        out.append(NodeConfig.from_dict({
            "name": me, "listen": f"tcp://127.0.0.1:{ports[me]}", "backend": urls[me],
            "peers": {peer: {"endpoint": f"tcp://127.0.0.1:{ports[peer]}"}},
            "workload": {"fidelity": 0.75, "pairs": [1, 3], "mean_backoff": 0.02, "seed": seed}}))
    return out


async def _get(port: int, path: str, limit: int = 1 << 20) -> tuple[str, bytes]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await w.drain()
    head = (await r.readuntil(b"\r\n\r\n")).decode()
    if "text/event-stream" in head:
        body = await r.readuntil(b"\n\n")  # "retry: ..." line
        body = await r.readuntil(b"\n\n")  # the first snapshot
    else:
        body = await r.read(limit)
    w.close()
    return head, body


async def _with_nodes(fn, until: int = 2):
    """Run two nodes on a lab twin until each completed ``until`` requests, then ``fn(nodes,
    server)`` while they keep running."""
    lab = Lab(topologies.by_name("K2"), p_photon=0.02, seed=3, start=timebase.cycle_now())
    with LabServer(lab) as srv:
        nodes = [NodeService(c, rid_base=k * 1_000_000) for k, c in enumerate(_configs(srv.urls))]
        for n in nodes:
            await n.start()
        tasks = [asyncio.create_task(n.run()) for n in nodes]
        t0 = time.monotonic()
        try:
            while min(n.counters.completed for n in nodes) < until:
                for t in tasks:
                    if t.done():
                        t.result()
                await asyncio.sleep(0.02)
            server = LiveServer(lambda: snapshot(nodes, title="test lab", t0=t0, duration=None,
                                                 edges=[("A", "B")]), "127.0.0.1:0", interval=0.2)
            async with server:
                return await fn(nodes, server)
        finally:
            for n in nodes:
                n.stop()
            await asyncio.gather(*tasks, return_exceptions=True)
            for n in nodes:
                await n.close()


def test_state_events_and_page_are_served() -> None:
    async def check(nodes, server):
        head, body = await _get(server.port, "/state")
        assert head.startswith("HTTP/1.1 200") and "application/json" in head
        s = json.loads(body)
        by = {n["name"]: n for n in s["nodes"]}
        assert set(by) == {"A", "B"} and s["title"] == "test lab"
        for nd in nodes:
            v = by[nd.cfg.name]
            assert v["completed"] >= 2 and v["requests"] >= v["completed"]
            assert v["state"] in {"IDLE", "SYN_SENT", "SYN_RECEIVED", "WAKE_SENT", "READY", "BUSY"}
            assert v["mean_latency_ms"] > 0 and len(v["recent_latency_ms"]) == v["completed"]
            assert v["link"]["frames"] > 0 and isinstance(v["link"]["ok"], bool)
            assert v["heralds"] >= v["completed"]
        (edge,) = s["edges"]
        assert (edge["a"], edge["b"]) == ("A", "B") and edge["pairs"] >= edge["requests"] >= 4
        assert set(s["layout"]) == {"A", "B"}
        head, body = await _get(server.port, "/events")
        assert "text/event-stream" in head and body.startswith(b"data: ")
        assert json.loads(body[6:])["nodes"]
        head, body = await _get(server.port, "/")
        assert "text/html" in head and b"EventSource" in body
        head, _ = await _get(server.port, "/nope")
        assert head.startswith("HTTP/1.1 404")
        # hwctl node --web: one node's own view, its peer drawn as a remote node
        from hwctl.node import _start_web

        web = await _start_web(nodes[0], "127.0.0.1:0")
        try:
            s = json.loads((await _get(web.port, "/state"))[1])
            assert [n["name"] for n in s["nodes"]] == ["A"] and s["remote_nodes"] == ["B"]
            assert s["title"] == "hwctl node A" and s["edges"][0]["pairs"] > 0
        finally:
            await web.close()

    asyncio.run(asyncio.wait_for(_with_nodes(check), 120))


def test_page_has_no_external_assets() -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", PAGE)
    assert "@import" not in PAGE and "url(" not in PAGE


def test_addresses_and_layout() -> None:
    assert parse_addr("8765") == ("127.0.0.1", 8765)
    assert parse_addr(":0") == ("127.0.0.1", 0)
    assert parse_addr("0.0.0.0:80") == ("0.0.0.0", 80)
    for bad in ("x", "127.0.0.1:70000", "host:"):
        with pytest.raises(ValueError):
            parse_addr(bad)
    for name in ("2x2", "3x3", "2x4", "C6", "W5", "K4"):  # planar: drawn without crossing links
        g = topologies.by_name(name)
        pos = layout(list(g.nodes), list(g.edges))
        assert set(pos) == set(g.nodes)
        assert all(0.0 <= c <= 1.0 for p in pos.values() for c in p)
        assert len({tuple(round(c, 3) for c in p) for p in pos.values()}) == len(pos)
        assert crossings(pos, list(g.edges)) == 0, name
    square = {"A": [0, 0], "B": [1, 0], "C": [0, 1], "D": [1, 1]}
    assert crossings(square, [("A", "D"), ("B", "C")]) == 1  # the diagonals cross


def test_cli_options(capsys) -> None:
    from hwctl import cli

    args = cli.build_parser(["node"]).parse_args(["node", "--config", "x.toml", "--web"])
    assert args.web == "127.0.0.1:8765"
    args = cli.build_parser(["node"]).parse_args(["node", "--config", "x.toml"])
    assert args.web is None  # a node serves its view only when asked
    args = cli.build_parser(["demo"]).parse_args(["demo"])
    assert args.web == "127.0.0.1:8765" and not args.no_web  # the demo serves it by default
    with pytest.raises(SystemExit):
        cli.main(["demo", "--web", "host:99999"])
    assert "--web" in capsys.readouterr().err


def test_busy_port_falls_back_to_a_free_one() -> None:
    async def main():
        a = LiveServer(dict, "127.0.0.1:0")
        await a.start()
        b = LiveServer(dict, f"127.0.0.1:{a.port}")
        await b.start()
        try:
            assert b.port != a.port and b.url.endswith(f":{b.port}/")
            # said where the URL is printed: a user who asked for that port (or bookmarked the
            # default 8765) learns why the page is elsewhere (it was an INFO log only)
            assert b.announce() == f"live view: {b.url} (port {a.port} is taken)"
            assert a.announce() == f"live view: {a.url}"
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: ./dev.sh setup installs it")
    pytest.skip("chromium not installed (./dev.sh setup installs it)")


def test_live_view_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    shot = (SHOTS or tmp_path) / "live-view.png"
    shot.parent.mkdir(parents=True, exist_ok=True)

    async def render(nodes, server):
        common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,720",
                  "--hide-scrollbars", "--virtual-time-budget=3000"]

        async def run(*extra: str) -> str:
            p = await asyncio.create_subprocess_exec(
                *common, *extra, server.url + "?updates=2", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(p.communicate(), 90)
            assert p.returncode == 0, err.decode(errors="replace")[-2000:]
            return out.decode(errors="replace")

        # ?updates=2: the page closes its event stream after two server-sent updates, so the
        # network goes idle and headless Chromium captures (virtual time) after exactly those
        dom = await run("--dump-dom")
        await run(f"--screenshot={shot}")
        return dom

    dom = asyncio.run(asyncio.wait_for(_with_nodes(render), 240))
    # the page drew the snapshots it received over server-sent events
    assert 'data-updates="2"' in dom, dom[:2000]
    assert 'id="status" class="ok">live (2 updates' in dom
    assert len(re.findall(r'<circle cx="[\d.]+"', dom)) == 2  # drawn (the script has ${x})
    assert re.search(r">\d+ pairs</text>", dom)
    rows = re.findall(r"<tr><td><b>([AB])</b>", dom)
    assert rows == ["A", "B"]
    assert re.search(r"<td>\d+/\d+</td>", dom)
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
