"""A node's memory under a flood of forged messages, in a process of its own (issue 16).

One ``hwctl node`` process (virtual twin backend, no workload, its listed peer absent) gets
``NODE_MEMORY_MESSAGES`` (default 400,000) forged, mutated and malformed messages
(:func:`hwctl.fuzzmsg.forged_message`) on its peer port (the stream transport,
:mod:`hwctl.transport.peerstream`; a wrong part count goes as a garbled frame) from two identities: its listed peer's
name and a stranger's. Measured in the node's own process (``/proc/PID/status``): RSS before the
flood (idle, the baseline of the same run), RSS once the node has taken everything in (its CPU
time stopped rising), and the peak (VmHWM). Goal: growth <= 20 MB (the issue measured 55 -> 168
MB for 400k ``pl`` messages before the limits). The node's counters (messages in, dropped by
cause) come from its ``--json`` summary. Short check:
``NODE_MEMORY_MESSAGES=20000 python -m benchmarks node_memory``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_MB = 20.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) / 1024  # kB -> MB
    return out


def _cpu(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _settle(pid: int) -> None:
    """Until the node's CPU time stops rising (it has taken everything in)."""
    last = -1.0
    while True:
        time.sleep(1.0)
        c = _cpu(pid)
        if c - last < 0.02:
            return
        last = c


def run() -> list[dict]:
    from hwctl import timebase
    from hwctl.fuzzmsg import forged_message
    from hwctl.transport import peerstream as ps

    n = int(os.environ.get("NODE_MEMORY_MESSAGES", "400000"))
    tmp = Path(tempfile.mkdtemp(prefix="hwctl-bench-mem-"))
    pa, pb = _port(), _port()
    cfg = tmp / "A.toml"
    cfg.write_text(f'name = "A"\nlisten = "tcp://127.0.0.1:{pa}"\nbackend = "twin://?seed=1"\n'
                   f'[peers.B]\nendpoint = "tcp://127.0.0.1:{pb}"\n[workload]\nenabled = false\n')
    env = os.environ | {"PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    log = open(tmp / "node.log", "w+")  # noqa: SIM115 (a file: a full pipe would block the node)
    p = subprocess.Popen([sys.executable, "-m", "hwctl.cli", "node", "--config", str(cfg),
                          "--json", "--report-every", "3600"], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        while "node A on" not in (tmp / "node.log").read_text():
            if p.poll() is not None:
                raise RuntimeError(f"node ended: {(tmp / 'node.log').read_text()[-2000:]}")
            time.sleep(0.1)
        _settle(p.pid)
        rss0 = _status(p.pid)["VmRSS"]
        socks = []
        for ident in (b"B", b"C"):  # the node's peer transport (hwctl.transport.peerstream)
            s = socket.create_connection(("127.0.0.1", pa))
            s.sendall(ps.hello(ident))
            socks.append(s)
        rng = random.Random(400)
        now = timebase.seconds()
        t0 = time.monotonic()
        for k in range(n):
            if k % 10_000 == 0:
                now = timebase.seconds()
            parts = forged_message(rng, now)
            data = ps.frame(*parts) if len(parts) == 2 else (  # a wrong part count: garbled
                (1 + len(b"".join(parts))).to_bytes(4, "big") + b"\xff" + b"".join(parts))
            socks[k % 4 == 3].sendall(data)  # 3/4 as the peer
        _settle(p.pid)
        st = _status(p.pid)
        send_s = time.monotonic() - t0
        for s in socks:
            s.close()
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=120)
        summary = json.loads(out[out.index("{"):])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()
    growth = st["VmRSS"] - rss0
    dropped = summary["dropped"]
    handled = summary["msgs_in"] - dropped.get("rate_limited", 0) - dropped.get("unknown_peer", 0)
    print(f"# node_memory: {n} messages in {send_s:.1f} s; node counted {summary['msgs_in']} in, "
          f"{sum(dropped.values())} dropped ({dropped.get('rate_limited', 0)} rate-limited, "
          f"{dropped.get('unknown_peer', 0)} unknown peer), {handled} past the limits; "
          f"RSS {rss0:.1f} -> {st['VmRSS']:.1f} MB, peak {st['VmHWM']:.1f} MB", flush=True)
    return [
        dict(name=f"node RSS growth, {n // 1000}k forged messages", value=growth, unit="MB",
             baseline=rss0, ratio=st["VmRSS"] / rss0, goal=f"<= {GOAL_MB:g} MB growth",
             met=growth <= GOAL_MB),
        dict(name="  node peak RSS (VmHWM) over idle", value=st["VmHWM"], unit="MB",
             baseline=rss0, ratio=st["VmHWM"] / rss0, goal="(info)", met=True),
    ]
