"""Separately started processes (the way a lab runs them): ``hwctl twin --lab K2`` and two
``hwctl node`` processes started one after the other, half a second apart. They agree on device
time through the shared reference (hwctl.timebase), complete requests, and every pair is held at
both ends (0 disagreements). Waits on the processes' own output lines, never on elapsed time;
the timeouts are only a safety net."""

from __future__ import annotations

import math
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hwctl import schema

ROOT = Path(__file__).resolve().parents[1]
SAFETY_S = 600.0  # only if something hangs (a loaded machine is slower, not stuck); the test ends on events
REPORT = re.compile(r"^(\w+): (\d+)/(\d+) requests")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A subprocess whose stdout and stderr lines arrive on one queue."""

    def __init__(self, args: list[str], extra_env: dict[str, str] | None = None) -> None:
        env = os.environ | {"PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        env |= extra_env or {}
        self.p = subprocess.Popen([sys.executable, "-m", "hwctl.cli", *args], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        # HWCTL_TEST_LOGDIR=DIR: every output line also goes to DIR/<args>-<pid>.log as it
        # arrives (stress runs keep the whole logs of a hung test, not the last 20 lines)
        logdir = os.environ.get("HWCTL_TEST_LOGDIR")
        self._logf = None
        if logdir:
            name = "-".join(a for a in args[:2] if "/" not in a)
            self._logf = open(Path(logdir) / f"{name}-{self.p.pid}.log", "a", buffering=1)  # noqa: SIM115
        for stream in (self.p.stdout, self.p.stderr):
            threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
            if self._logf is not None:
                self._logf.write(f"{time.time():.3f} {line}")

    def wait_line(self, pred, deadline: float) -> str:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"safety timeout; output so far: {self.log[-20:]}"
            assert self.p.poll() is None or not self.lines.empty(), \
                f"process ended (rc {self.p.returncode}): {self.log[-20:]}"
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            self.log.append(line)
            if pred(line):
                return line

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def node_toml(name: str, peer: str, url: str, ports: dict[str, int], out: Path, seed: int) -> str:
    return (f'name = "{name}"\nlisten = "tcp://127.0.0.1:{ports[name]}"\nbackend = "{url}"\n'
            f'out = "{out}"\n'
            f'[peers.{peer}]\nendpoint = "tcp://127.0.0.1:{ports[peer]}"\n'
            f'[workload]\nfidelity = 0.75\npairs = [1, 4]\nmean_backoff = 0.02\nseed = {seed}\n'
            f'[physical]\nlead_s = 0.004\n')


@pytest.mark.parametrize("served", ["pty", "zmq"])
def test_separately_started_nodes_complete_requests_and_agree(tmp_path, served: str) -> None:
    """``served``: the lab's devices on ptys, or each on its own ZeroMQ port (``--zmq``)."""
    deadline = time.monotonic() + SAFETY_S
    where = (["--zmq", "tcp://127.0.0.1:0"] if served == "zmq"
             else ["--link-dir", str(tmp_path / "lab")])
    lab = Proc(["twin", "--lab", "K2", "--p-photon", "0.005", "--seed", "3", *where])
    nodes: dict[str, Proc] = {}
    try:
        urls = {}
        scheme = "zmq\\+tcp" if served == "zmq" else "serial"
        for _ in range(3):  # A, B, then the station A-B
            name, url = lab.wait_line(lambda s: re.match(rf"^[AB-]+ {scheme}://", s) is not None,
                                      deadline).split()
            urls[name] = url
        assert set(urls) == {"A", "B", "A-B"}
        ports = {n: free_port() for n in "AB"}
        for n, peer, seed in (("B", "A", 2), ("A", "B", 1)):
            cfg = tmp_path / f"{n}.toml"
            cfg.write_text(node_toml(n, peer, urls[n], ports, tmp_path / "out", seed))
            # A's session is recorded (the CLI path of hwctl.record) and replayed below
            rec = ["--record", str(tmp_path / "A.rec")] if n == "A" else []
            nodes[n] = Proc(["node", "--config", str(cfg), "--report-every", "0.2", *rec])
            nodes[n].wait_line(lambda s, n=n: s.startswith(f"node {n} on"), deadline)
            time.sleep(0.5)  # the start skew between the two processes (not a budget)
        done = dict.fromkeys("AB", 0)
        while min(done.values()) < 4:
            for n, p in nodes.items():
                m = REPORT.match(p.wait_line(lambda s: REPORT.match(s) is not None, deadline))
                assert m is not None
                done[n] = int(m[2])
        for n in "AB":
            assert nodes[n].stop() == 0, nodes[n].log[-10:]
    finally:
        for p in nodes.values():
            p.stop()
        lab.stop()
    rows = []
    for n in "AB":
        meta = schema.read_metadata(tmp_path / "out" / f"{n}.parquet")
        c = meta["summary"]
        assert c["clock_sync"] == "shared"  # device time from the shared reference, no handshake
        assert c["disagree"] == 0 and c["pair_checks"] >= 3 and c["device_errors"] == 0
        assert c["completed"] >= 4 and "late_after_first" in c  # (its value: benchmarks)
        rows += pq.read_table(tmp_path / "out" / f"{n}.parquet").to_pylist()
    finished = [r for r in rows if not math.isnan(r["latency_s"])]
    assert all(len(r["herald_ts_cycles"]) == r["pairs"] and r["disagree"] == 0 for r in finished)
    # (LATE counts depend on the machine's load: measured in benchmarks/bench_node.py, not here)

    # the recorded node, replayed offline: the same request rows and counters as the run wrote
    from hwctl.cli import main

    assert main(["replay", str(tmp_path / "A.rec"), "--out", str(tmp_path / "replay")]) == 0

    def by_rid(path: Path) -> list[dict]:
        return sorted(({k: None if isinstance(v, float) and math.isnan(v) else v
                        for k, v in r.items()} for r in pq.read_table(path).to_pylist()),
                      key=lambda r: r["rid"])

    assert by_rid(tmp_path / "replay" / "A.parquet") == by_rid(tmp_path / "out" / "A.parquet")
    summary = schema.read_metadata(tmp_path / "replay" / "A.parquet")["summary"]
    recorded = schema.read_metadata(tmp_path / "out" / "A.parquet")["summary"]
    recorded.pop("link")
    for d in (summary, recorded):  # seconds since a peer was heard, when the snapshot was taken
        for p in d.get("peers", {}).values():
            p.pop("silent_s")
    assert summary == recorded
