"""Process-level faults (issue 16), separately started processes the way a lab runs them:
``kill -9`` of the served lab twin, of the board bridge and of a peer node, each restarted under
running nodes. The survivors carry on completing requests, nothing is silently lost (a killed
node's open requests are resumed or expired with a reason from its journal), and every results
file stays valid. Waits on the processes' own output lines; the deadline only bounds a hang."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq

from hwctl import schema
from hwctl.journal import read_state
from hwctl.results import read_partial
from tests.test_node_processes import REPORT, free_port, node_toml
from tests.test_node_processes import Proc as NodeProc

HANG_S = 600.0  # only if something hangs (a loaded machine is slower, not stuck); every wait ends on an output line
#: a command's wait for each answer of node A behind the restarted bridge: 101 of them (retries=100,
#: the URL's maximum) outlast HANG_S (test_bridge_killed_and_restarted_under_a_node)
BRIDGE_TIMEOUT_S = HANG_S / 100
RETRIES = re.compile(r"events, (\d+) retries")  # in a node's status line (its link counters, in words)


class Proc(NodeProc):
    """A node-test subprocess (tests/test_node_processes.py) with wide status lines, waits on
    completed requests and kill -9."""

    def __init__(self, args: list[str]) -> None:
        super().__init__(args, extra_env={"COLUMNS": "200"})

    def completed(self, deadline: float, at_least: int) -> int:
        """Wait for a status line reporting at least ``at_least`` completed requests."""
        while True:
            m = REPORT.match(self.wait_line(lambda s: REPORT.match(s) is not None, deadline))
            assert m is not None
            if int(m[2]) >= at_least:
                return int(m[2])

    def kill9(self) -> None:
        self.p.kill()  # SIGKILL: also ends a process frozen by frozen()
        self.p.wait()

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the process and wait until every thread of it has stopped (the parent's
        ``waitpid(WUNTRACED)`` returns only then): inside, the files it writes (journal, partial
        results) cannot change, so what the test reads there is the process's state at a
        kill -9 inside. SIGCONT on the way out (no-op after a kill)."""
        os.kill(self.p.pid, signal.SIGSTOP)
        _, status = os.waitpid(self.p.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), f"process ended while being stopped: {self.log[-20:]}"
        try:
            yield
        finally:
            if self.p.poll() is None:
                os.kill(self.p.pid, signal.SIGCONT)


def _lab(d: Path, deadline: float) -> tuple[Proc, dict[str, str]]:
    lab = Proc(["twin", "--lab", "K2", "--p-photon", "0.005", "--seed", "3", "--link-dir", str(d)])
    urls = {}
    for _ in range(2):
        name, url = lab.wait_line(lambda s: re.match(r"^[AB] serial://", s) is not None,
                                  deadline).split()
        urls[name] = url
    return lab, urls


def _node(tmp: Path, name: str, deadline: float) -> Proc:
    p = Proc(["node", "--config", str(tmp / f"{name}.toml"), "--report-every", "0.2"])
    p.wait_line(lambda s: s.startswith(f"node {name} on"), deadline)
    return p


def _write_configs(tmp: Path, urls: dict[str, str]) -> None:
    ports = {n: free_port() for n in "AB"}
    for n, peer, seed in (("A", "B", 1), ("B", "A", 2)):
        (tmp / f"{n}.toml").write_text(node_toml(n, peer, urls[n], ports, tmp / "out", seed))


def _summary(path: Path) -> dict:
    meta = schema.read_metadata(path)
    rows = pq.read_table(path).to_pylist()  # the file opens
    assert len(rows) == meta["summary"]["requests"]
    done = [r for r in rows if not math.isnan(r["latency_s"])]
    assert len(done) == meta["summary"]["completed"]
    assert all(len(r["herald_ts_cycles"]) == r["pairs"] and r["disagree"] == 0 for r in done)
    return meta["summary"]


def test_lab_twin_and_peer_killed_and_restarted(tmp_path) -> None:
    """kill -9 of the lab twin under two running nodes, a new lab on the same device paths:
    both nodes recover and go on. Then kill -9 of node A mid-run and a new A with the same config:
    B declares the old A gone (heartbeat incarnation), the new A resumes or expires every request
    its journal held open, both go on; every results file opens."""
    deadline = time.monotonic() + HANG_S
    lab, urls = _lab(tmp_path / "lab", deadline)
    _write_configs(tmp_path, urls)
    nodes = {n: _node(tmp_path, n, deadline) for n in "BA"}
    lab2 = a2 = None
    try:
        for n in "AB":
            nodes[n].completed(deadline, 2)
        lab.kill9()  # the served twin dies under both nodes
        lab2, _ = _lab(tmp_path / "lab", deadline)
        for n in "AB":
            nodes[n].wait_line(lambda s: "device back after" in s, deadline)
        for n in "AB":  # both go on after the restart
            nodes[n].completed(deadline, nodes[n].completed(deadline, 0) + 2)
        # kill -9 of A while its journal holds a request still open and its partial results
        # file already holds rows. Deterministic: A is frozen (SIGSTOP) while both files are
        # read and killed frozen, so nothing completes between the read and the kill; when the
        # state does not fit, A goes on (SIGCONT) until its next status line (the same life:
        # a retry here costs A no restart)
        journal = tmp_path / "out" / "A.journal.jsonl"
        while True:
            with nodes["A"].frozen():
                seen = set(read_state(journal).open)
                partial = list((tmp_path / "out").glob("A.*.partial.arrows"))
                rows_at_kill = read_partial(partial[0]).num_rows if len(partial) == 1 else 0
                if seen and rows_at_kill >= 2:
                    nodes["A"].kill9()
                    break
            nodes["A"].completed(deadline, 0)
        open_at_kill = seen  # the journal as A left it: nothing ran between the read and the kill
        done_b = nodes["B"].completed(deadline, 0)
        a2 = _node(tmp_path, "A", deadline)
        a2.completed(deadline, 2)
        nodes["B"].completed(deadline, done_b + 2)
        assert a2.stop() == 0, a2.log[-10:]
        assert nodes["B"].stop() == 0, nodes["B"].log[-10:]
    finally:
        for p in [*nodes.values(), *([a2] if a2 else [])]:
            p.stop()
        lab.stop()
        if lab2 is not None:
            lab2.stop()
    out = tmp_path / "out"
    # nothing silently lost: each request open at the kill was resumed under a new id or
    # expired with a reason, in the journal
    ends = {}
    for line in journal.read_text().splitlines():
        r = json.loads(line)
        if r["op"] in ("res", "exp"):
            ends[r["rid"]] = r
    assert open_at_kill <= set(ends), (open_at_kill, ends)
    assert all(r["op"] == "res" or r["reason"] for r in ends.values())
    # the first A's partial file still opens with the rows it held at the kill -9 (the second A
    # leaves it alone and removes its own), the second A's Parquet is complete
    partial = list(out.glob("A.*.partial.arrows"))
    assert len(partial) == 1 and read_partial(partial[0]).num_rows == rows_at_kill, partial
    sa = _summary(out / "A.parquet")
    sb = _summary(out / "B.parquet")
    assert sa["journal"]["resumed"] + sum(sa["journal"]["expired"].values()) == len(open_at_kill)
    # both nodes saw the lab restart; B saw A's second life
    rb = sb["recovery"]
    assert rb["device_lost"] >= 1 and rb["device_restarts"] >= 1, rb
    assert sb["peers"]["A"]["restarts"] + sb["peers"]["A"]["deaths"] >= 1, sb["peers"]
    assert sa["completed"] >= 2 and sb["disagree"] == 0 and sa["disagree"] == 0


def test_bridge_killed_and_restarted_under_a_node(tmp_path) -> None:
    """Node A reaches its device through ``hwctl bridge`` (ZeroMQ <-> serial). kill -9 of the
    bridge while A runs; A's commands go unanswered (its status lines count the retries), then
    a new bridge comes up on the same port within A's command retries: A goes on completing requests with no recovery and never sees a
    stale device state: no response from the old bridge's life reaches it (the new bridge
    takes over the device's retry memory first, devserver ``prime``), no schedule is left
    holding the device (a SCHEDULE repeated across the restart is aborted, ``stray_schedules``),
    every completed request has its pairs, held at both ends. (The other path, the bridge back
    only after A declared the device lost, is tests/test_recovery.py::
    test_block_mode_across_a_broken_path: the same device life, ``path_restarts``.)

    That the new bridge is up "within A's retries" depends on how long a bridge process takes
    to start, which a loaded machine stretches (the default 25 s of ``retries=100`` at 0.25 s
    ran out at load ~10: A declared the device lost). So A's patience is set for the test: 101
    tries of ``BRIDGE_TIMEOUT_S`` each outlast the test's own hang bound, and the only way the
    bridge can come too late is a hang, which fails the test's wait on its start line first."""
    deadline = time.monotonic() + HANG_S
    lab, urls = _lab(tmp_path / "lab", deadline)
    port = free_port()
    bridge_args = ["bridge", "--port", urls["A"], "--listen", f"tcp://127.0.0.1:{port}"]
    bridge = Proc(bridge_args)
    bridge.wait_line(lambda s: f"127.0.0.1:{port}" in s, deadline)
    assert (100 + 1) * BRIDGE_TIMEOUT_S >= HANG_S  # A outwaits any wait of this test
    _write_configs(tmp_path, {"A": f"zmq+tcp://127.0.0.1:{port}?retries=100"
                              f"&timeout={BRIDGE_TIMEOUT_S}", "B": urls["B"]})
    nodes = {n: _node(tmp_path, n, deadline) for n in "BA"}
    bridge2 = None
    try:
        nodes["A"].completed(deadline, 2)
        line = nodes["A"].wait_line(lambda s: REPORT.match(s) is not None, deadline)
        retries0 = int(RETRIES.search(line)[1])
        bridge.kill9()
        # A's commands go unanswered: a status line with more retries (the outage is real)
        nodes["A"].wait_line(lambda s: REPORT.match(s) is not None
                             and int(RETRIES.search(s)[1]) > retries0, deadline)
        bridge2 = Proc(bridge_args)
        bridge2.wait_line(lambda s: f"127.0.0.1:{port}" in s, deadline)
        nodes["A"].completed(deadline, nodes["A"].completed(deadline, 0) + 2)
        for n in "AB":
            assert nodes[n].stop() == 0, nodes[n].log[-10:]
    finally:
        for p in nodes.values():
            p.stop()
        for p in (bridge, bridge2, lab):
            if p is not None:
                p.stop()
    sa = _summary(tmp_path / "out" / "A.parquet")  # every completed request has its pairs
    _summary(tmp_path / "out" / "B.parquet")
    r = sa["recovery"]
    # the new bridge answered within the retries: no recovery, the device never restarted
    assert r["device_lost"] == r["device_restarts"] == r["path_restarts"] == 0, r
    assert sa["link"]["retries"] > retries0 and sa["link"]["timeouts"] == 0, sa["link"]
    assert sa["link"]["stale_responses"] == 0, sa["link"]  # nothing of the old bridge's life
    assert sa["disagree"] == 0 and sa["device_errors"] == 0, sa


def test_served_twin_killed_and_restarted_under_a_node(tmp_path) -> None:
    """A node on ``hwctl twin --zmq`` (the served twin). kill -9 of the twin gives no link error
    (ZeroMQ reconnects quietly): A's watchdog sees its probe unanswered, A reconnects with
    back-off until a new twin serves the same port, finds a restarted device (SCRATCH token
    gone), re-applies its clock and keeps serving; SIGTERM then gives a complete results file."""
    deadline = time.monotonic() + HANG_S
    port = free_port()
    twin_args = ["twin", "--zmq", f"tcp://127.0.0.1:{port}", "--seed", "1"]
    twin = Proc(twin_args)
    twin.wait_line(lambda s: f"127.0.0.1:{port}" in s, deadline)
    ports = {"A": free_port(), "B": free_port()}  # B never starts: A's requests wait for it
    (tmp_path / "A.toml").write_text(node_toml("A", "B", f"zmq+tcp://127.0.0.1:{port}", ports,
                                                tmp_path / "out", 1))
    a = _node(tmp_path, "A", deadline)
    twin2 = None
    try:
        twin.kill9()
        a.wait_line(lambda s: "device" in s and "lost" in s, deadline)
        twin2 = Proc(twin_args)
        twin2.wait_line(lambda s: f"127.0.0.1:{port}" in s, deadline)
        a.wait_line(lambda s: "device back after" in s, deadline)
        a.wait_line(lambda s: REPORT.match(s) is not None, deadline)  # still reporting
        assert a.stop() == 0, a.log[-10:]
    finally:
        a.stop()
        for p in (twin, twin2):
            if p is not None:
                p.stop()
    r = _summary(tmp_path / "out" / "A.parquet")["recovery"]
    assert r["device_lost"] == 1 and r["device_restarts"] == 1 and r["reconnect_attempts"] >= 1, r
    assert r["device_up"] and r["epoch"] == 1
