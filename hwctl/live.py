"""Live view of running node services in the browser: ``hwctl demo`` and ``hwctl node --web``.

A small HTTP server on the asyncio loop of the node services (stdlib only, loopback by default)
serves one self-contained page (inline CSS, JavaScript and SVG: no external assets, works offline)
and a stream of server-sent events, one JSON snapshot per ``interval`` seconds:

- ``GET /``        the page: the network drawn as a graph (nodes coloured by ESP state, links by
  pairs delivered), a table per node (ESP state, requests done/submitted, heralds, mean and p99
  latency with a sparkline of the last requests, physical-layer disagreements, verified pairs and
  fidelity at verification, link health);
- ``GET /events``  ``text/event-stream``: ``data: {snapshot}`` every ``interval``;
- ``GET /state``   the current snapshot as JSON (scripts, tests, ``curl``).

The snapshot is built by :func:`snapshot` from :class:`hwctl.node.NodeService` objects (read on
the loop that runs them, so no locking).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from hwctl.output import jsonable

log = logging.getLogger(__name__)

DEFAULT_ADDR = "127.0.0.1:8765"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def web_addr(text: str) -> str:
    """argparse type of ``--web``: the address as given, checked by :func:`parse_addr`, and its
    host one this machine can listen on (a mistyped address is refused before the demo's lab or
    the node starts, not a traceback once they run)."""
    try:
        host, _ = parse_addr(text)
        check_host(host)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def check_host(host: str) -> None:
    """ValueError unless a TCP socket can be bound on ``host`` (a free port, closed at once)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        with socket.socket(family, kind, proto) as s:
            s.bind(addr)
    except OSError as exc:
        raise ValueError(f"cannot listen on {host!r} ({exc.strerror or exc}): give an "
                         f"address of this machine, e.g. 127.0.0.1:8765") from None


def parse_addr(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` -> (host, port); host defaults to loopback. Port 0
    picks a free port."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        p = int(port)
    except ValueError:
        raise ValueError(f"--web {text!r}: expected HOST:PORT or PORT") from None
    if not 0 <= p <= 65535:
        raise ValueError(f"--web {text!r}: port must be in 0..65535")
    return host, p


def layout(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, list[float]]:
    """Node positions in [0.08, 0.92]^2: Kamada-Kawai, started from a planar embedding when the
    network is planar (so grids and rings are drawn without crossing links), else from a seeded
    spring layout."""
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    if len(g) == 1:
        return {next(iter(g)): [0.5, 0.5]}
    if len(g) == 2:
        a, b = sorted(g)
        return {a: [0.2, 0.5], b: [0.8, 0.5]}
    if nx.is_connected(g):
        candidates = [nx.kamada_kawai_layout(g)]
        if nx.check_planarity(g)[0]:
            planar = nx.planar_layout(g)
            candidates = [nx.kamada_kawai_layout(g, pos=planar), *candidates, planar]
        pos = min(candidates, key=lambda p: crossings(p, list(g.edges)))
    else:
        pos = nx.spring_layout(g, seed=1)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]

    def scale(v: float, lo: float, hi: float) -> float:
        return 0.5 if hi - lo < 1e-9 else 0.08 + 0.84 * (v - lo) / (hi - lo)

    return {n: [scale(float(pos[n][0]), min(xs), max(xs)), scale(float(pos[n][1]), min(ys), max(ys))]
            for n in g}


def crossings(pos: dict[str, Any], edges: Sequence[tuple[str, str]]) -> int:
    """How many pairs of links without a common end cross when drawn at ``pos``."""
    def side(a: Any, b: Any, c: Any) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    n = 0
    for k, (a, b) in enumerate(edges):
        for c, d in edges[k + 1:]:
            if len({a, b, c, d}) == 4:
                p, q, r, s = pos[a], pos[b], pos[c], pos[d]
                n += side(p, q, r) * side(p, q, s) < 0 and side(r, s, p) * side(r, s, q) < 0
    return n


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def node_view(nd: Any) -> dict[str, Any]:
    """What the page shows of one :class:`hwctl.node.NodeService`."""
    c = nd.counters
    done = [r for r in nd.records.values() if r.latency is not None]
    done.sort(key=lambda r: r.t_finish)
    lat = [r.latency for r in done]
    st = nd.backend.stats if getattr(nd, "backend", None) is not None else None
    link = None
    if st is not None:
        lost = st.events_lost + st.rx_frame_errors
        link = {"frames": st.commands + st.events, "retries": st.retries, "timeouts": st.timeouts,
                "lost": lost, "ok": lost == 0 and st.timeouts == 0}
    ver = None
    vcore = getattr(nd, "vcore", None)
    if vcore is not None:
        m = vcore.metrics
        ver = {"partner": nd.partner, "verified": m.verified,
               "mean_fidelity": m.mean_fidelity if m.verified else None,
               "discards": sum(int(v) for v in m.discards.values())}
    return {
        "name": nd.cfg.name,
        "state": nd.core.state.value,
        "requests": c.requests, "completed": c.completed, "heralds": c.heralds,
        "attempts": c.attempts, "late": c.late, "disagree": c.disagree,
        "device_errors": c.device_errors,
        "mean_latency_ms": 1e3 * statistics.fmean(lat) if lat else None,
        "p99_latency_ms": 1e3 * _pct(lat, 0.99) if lat else None,  # type: ignore[operator]
        "recent_latency_ms": [1e3 * x for x in lat[-60:]],
        "peers": [p.name for p in nd.cfg.peers],
        "link": link,
        "verification": ver,
    }


def snapshot(nodes: Sequence[Any], *, title: str, t0: float, duration: float | None,
             edges: Sequence[tuple[str, str]] | None = None,
             pos: dict[str, list[float]] | None = None) -> dict[str, Any]:
    """The JSON document of one update: every node's view, the graph, pairs per link."""
    views = [node_view(nd) for nd in nodes]
    names = {v["name"] for v in views}
    if edges is None:
        edges = sorted({tuple(sorted((v["name"], p))) for v in views for p in v["peers"]})
    all_names = sorted(names | {n for e in edges for n in e})
    per_edge: dict[tuple[str, str], dict[str, int]] = {tuple(sorted(e)): {"requests": 0, "pairs": 0}
                                                      for e in edges}
    for nd in nodes:
        for r in nd.records.values():
            if r.latency is None or r.initiator != nd.cfg.name:
                continue
            e = per_edge.get(tuple(sorted((r.initiator, r.remote))))
            if e is not None:
                e["requests"] += 1
                e["pairs"] += r.pairs
    return jsonable({
        "title": title,
        "elapsed_s": time.monotonic() - t0,
        "duration_s": duration,
        "nodes": views,
        "remote_nodes": sorted(set(all_names) - names),
        "edges": [{"a": a, "b": b, **per_edge[(a, b)]} for a, b in sorted(per_edge)],
        "layout": pos if pos is not None else layout(all_names, list(per_edge)),
    })


class LiveServer:
    """The page, ``/events`` and ``/state`` for ``get_snapshot()`` on this asyncio loop."""

    def __init__(self, get_snapshot: Callable[[], dict[str, Any]], addr: str = DEFAULT_ADDR,
                 interval: float = 0.5) -> None:
        self.get_snapshot = get_snapshot
        self.host, self.port = parse_addr(addr)
        self.interval = interval
        self._server: asyncio.base_events.Server | None = None
        self._streams: set[asyncio.Task[Any]] = set()
        self.url = ""
        #: the port asked for, when it was taken and a free one serves instead
        self.taken: int | None = None

    async def start(self) -> str:
        """Listen; a port in use falls back to a free one. Returns the page's URL."""
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            if self.port == 0:
                raise
            log.info("live view: port %d unavailable (%s), using a free port", self.port, exc)
            self.taken = self.port
            try:
                self._server = await asyncio.start_server(self._handle, self.host, 0)
            except OSError as exc2:  # the host itself (checked at the command line; gone since)
                from hwctl.errors import UserError

                raise UserError(f"--web: cannot listen on {self.host!r} ({exc2.strerror or exc2})"
                                ) from None
        self.port = self._server.sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}/"
        if self.host not in LOOPBACK:
            log.warning("live view listens on %s: reachable from the network, without "
                        "authentication", self.host)
        return self.url

    def announce(self) -> str:
        """The line that tells the user where the page is (and why not at the port asked for)."""
        return f"live view: {self.url}" + (f" (port {self.taken} is taken)" if self.taken else "")

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._streams):
            t.cancel()
        for t in list(self._streams):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def __aenter__(self) -> LiveServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._streams.add(task)
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            while await asyncio.wait_for(reader.readline(), 10) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else ""
            if len(parts) < 2 or parts[0] != "GET":
                await self._reply(writer, 405, "text/plain", b"GET only\n")
            elif path == "/":
                await self._reply(writer, 200, "text/html; charset=utf-8", PAGE.encode())
            elif path == "/state":
                await self._reply(writer, 200, "application/json",
                                  json.dumps(self.get_snapshot(), allow_nan=False).encode())
            elif path == "/events":
                await self._events(writer)
            else:
                await self._reply(writer, 404, "text/plain", b"not found\n")
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._streams.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, status: int, ctype: str,
                     body: bytes) -> None:
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}[status]
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                     f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                     "Connection: close\r\n\r\n".encode() + body)
        await writer.drain()

    async def _events(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\nretry: 1000\n\n")
        while True:
            data = json.dumps(self.get_snapshot(), allow_nan=False)
            writer.write(f"data: {data}\n\n".encode())
            await writer.drain()
            await asyncio.sleep(self.interval)


PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hwctl live</title>
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
 header{display:flex;gap:1em;align-items:baseline;padding:.6em 1em;background:#1d2330;color:#fff}
 header h1{font-size:1.1em;margin:0} #status{margin-left:auto;font-size:.9em}
 .ok{color:#1a7f37} .bad{color:#c62828} #status.ok{color:#7ee2a0} #status.bad{color:#ff9a9a}
 main{display:flex;flex-wrap:wrap;gap:1em;padding:1em}
 section{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:.6em}
 #graph{flex:0 0 600px} #tablebox{flex:1 1 100%;overflow-x:auto}
 table{border-collapse:collapse;width:100%} th,td{padding:.25em .5em;text-align:right;border-bottom:1px solid #eceff3;white-space:nowrap}
 th{font-weight:600;color:#50596b} td:first-child,th:first-child{text-align:left}
 .state{display:inline-block;padding:0 .4em;border-radius:3px;color:#fff;font-size:.85em}
 svg text{font:12px system-ui,sans-serif} .legend{font-size:.85em;color:#50596b}
 #bar{height:4px;background:#3b82f6;width:0}
</style></head>
<body>
<header><h1 id="title">hwctl live</h1><span id="clock"></span><span id="status" class="bad">connecting…</span></header>
<div id="bar"></div>
<main>
 <section id="graph"><svg id="net" viewBox="0 0 600 420" width="600" height="420" role="img" aria-label="network"></svg>
  <div class="legend">node colour: ESP state (grey IDLE, purple SYN, blue WAKE/READY, green BUSY: generating) · link width: pairs delivered · red ring: link trouble</div></section>
 <section id="tablebox"><table><thead><tr>
  <th>node</th><th>ESP state</th><th>requests</th><th>heralds</th><th>mean L</th><th>p99 L</th>
  <th>latency (last 60)</th><th>PL dis</th><th>verified</th><th>F ver</th><th>link</th></tr></thead>
  <tbody id="rows"></tbody></table>
  <p class="legend">requests: completed/submitted by this node · PL dis: pairs not held at both ends (must be 0) ·
  link: frames, retries, lost, timeouts to the device</p></section>
</main>
<script>
"use strict";
const COLORS = {IDLE:"#8a94a6", SYN_SENT:"#8b5cf6", SYN_RECEIVED:"#a855f7", WAKE_SENT:"#3b82f6", READY:"#0ea5e9", BUSY:"#16a34a"};
const color = s => COLORS[s] || "#0ea5e9";
const fmt = (x, d=1) => x === null || x === undefined ? "–" : Number(x).toFixed(d);
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
function spark(xs) {
  if (!xs.length) return "";
  const w = 120, h = 22, max = Math.max(...xs) || 1;
  const pts = xs.map((x, i) => `${(i * w / Math.max(1, xs.length - 1)).toFixed(1)},${(h - 2 - x / max * (h - 4)).toFixed(1)}`);
  return `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><polyline fill="none" stroke="#3b82f6" stroke-width="1.5" points="${pts.join(" ")}"/></svg>`;
}
function draw(s) {
  const W = 600, H = 420, P = s.layout, byName = {};
  for (const n of s.nodes) byName[n.name] = n;
  const maxPairs = Math.max(1, ...s.edges.map(e => e.pairs));
  let g = "";
  for (const e of s.edges) {
    const a = P[e.a], b = P[e.b]; if (!a || !b) continue;
    const x1 = a[0]*W, y1 = a[1]*H, x2 = b[0]*W, y2 = b[1]*H;
    g += `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="#94a3b8" stroke-width="${2 + 8 * e.pairs / maxPairs}" stroke-linecap="round"/>`;
    const len = Math.hypot(x2 - x1, y2 - y1) || 1, nx = -(y2 - y1) / len, ny = (x2 - x1) / len;
    const lx = (x1 + x2) / 2 + 12 * (ny > 0 ? -nx : nx), ly = (y1 + y2) / 2 + 12 * (ny > 0 ? -ny : ny);
    g += `<text x="${lx.toFixed(1)}" y="${(ly + 4).toFixed(1)}" text-anchor="middle" fill="#50596b">${e.pairs} pairs</text>`;
  }
  for (const [name, p] of Object.entries(P)) {
    const n = byName[name], x = p[0]*W, y = p[1]*H;
    const fill = n ? color(n.state) : "#cbd5e1";
    const ring = n && n.link && !n.link.ok ? `stroke="#c62828" stroke-width="4"` : `stroke="#fff" stroke-width="2"`;
    g += `<circle cx="${x}" cy="${y}" r="22" fill="${fill}" ${ring}><title>${esc(name)}</title></circle>`;
    g += `<text x="${x}" y="${y + 4}" text-anchor="middle" fill="#fff" font-weight="700">${esc(name)}</text>`;
    if (n) g += `<text x="${x}" y="${y + 38}" text-anchor="middle" fill="#1d2330">${esc(n.state)} ${n.completed}/${n.requests}</text>`;
  }
  document.getElementById("net").innerHTML = g;
  document.getElementById("rows").innerHTML = s.nodes.map(n => {
    const v = n.verification, l = n.link;
    const link = l ? `<span class="${l.ok ? "ok" : "bad"}">●</span> ${l.frames} fr, ${l.retries} retry, ${l.lost} lost, ${l.timeouts} t/o` : "–";
    return `<tr><td><b>${esc(n.name)}</b></td>` +
      `<td><span class="state" style="background:${color(n.state)}">${esc(n.state)}</span></td>` +
      `<td>${n.completed}/${n.requests}</td><td>${n.heralds}</td>` +
      `<td>${fmt(n.mean_latency_ms)} ms</td><td>${fmt(n.p99_latency_ms)} ms</td>` +
      `<td>${spark(n.recent_latency_ms)}</td>` +
      `<td class="${n.disagree ? "bad" : ""}">${n.disagree}</td>` +
      `<td>${v ? v.verified + " w/" + esc(v.partner) : "–"}</td><td>${v ? fmt(v.mean_fidelity, 4) : "–"}</td>` +
      `<td>${link}</td></tr>`;
  }).join("");
  document.getElementById("title").textContent = s.title;
  const d = s.duration_s;
  document.getElementById("clock").textContent = d ? `${fmt(Math.min(s.elapsed_s, d))} / ${fmt(d, 0)} s` : `${fmt(s.elapsed_s)} s`;
  document.getElementById("bar").style.width = d ? `${Math.min(100, 100 * s.elapsed_s / d)}%` : "0";
}
function connect() {
  const st = document.getElementById("status");
  // the current state at once, then every update as a server-sent event
  fetch("/state").then(r => r.json()).then(s => { draw(s); st.textContent = "live"; st.className = "ok"; })
    .catch(() => {});
  const es = new EventSource("/events");
  es.onopen = () => { st.textContent = "live"; st.className = "ok"; };
  // ?updates=N: stop listening after N updates (a static capture, e.g. a headless screenshot)
  const stopAfter = Number(new URLSearchParams(location.search).get("updates") || 0);
  es.onmessage = ev => {
    draw(JSON.parse(ev.data)); st.textContent = "live"; st.className = "ok";
    const n = Number(document.body.dataset.updates || 0) + 1;
    document.body.dataset.updates = String(n);
    if (stopAfter && n >= stopAfter) { es.close(); st.textContent = `live (${n} updates, paused)`; }
  };
  es.onerror = () => { st.textContent = "disconnected (run ended?)"; st.className = "bad"; };
}
connect();
</script></body></html>
"""
