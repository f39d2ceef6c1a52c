"""Record and replay (hwctl.record): a short twin run of two nodes is recorded (``hwctl demo
--record``) and each node's recording is replayed offline (``hwctl replay``); the replay must give
exactly the recorded results: every request row, every verified pair, every counter."""

from __future__ import annotations

import asyncio
import json
import math
import socket

import pyarrow.parquet as pq
import pytest

from hwctl import record, schema, timebase
from hwctl.cli import main
from hwctl.node import NodeConfig, NodeService
from hwctl.sim import topologies
from hwctl.sim.twin.lab import Lab, LabServer

HANG_S = 60.0  # bounds a hang only
HANG_DEMO_S = 600.0  # the recorded demo's --max-extend: bounds a hang only
ROBUST = {"enabled": True, "rto": 0.005, "rto_max": 0.05, "lease": 1.0, "busy_lease": 3.0,
          "request_ttl": 30.0}


def _lab() -> Lab:
    return Lab(topologies.by_name("K2"), p_photon=0.004, seed=3, start=timebase.cycle_now())


def _rows(path, **match) -> list[dict]:
    rows = pq.read_table(path).to_pylist()
    out = []
    for r in rows:
        if all(r[k] == v for k, v in match.items()):
            out.append({k: (None if isinstance(v, float) and math.isnan(v) else v)
                        for k, v in r.items()})
    return out


def _without_silent(d: dict) -> dict:
    for p in d.get("peers", {}).values():
        p.pop("silent_s", None)
    return d


#: (transport, header rate, hold): HEADER mode in one process and in node processes; block mode
#: (HDR_BLOCK events above 5000/s, docs/header-path.md) with an application hold, so pins
#: (PIN_MASK / UNPIN_MASK answered on the event stream) and the batch-decode timer are replayed too
DEMOS = {"inproc": ("inproc", "1000", "0"), "pty": ("pty", "1000", "0"),
         "blocks": ("inproc", "20000", "0.002")}


@pytest.fixture(scope="module", params=list(DEMOS))
def recorded(request, tmp_path_factory):
    """A 2 s K2 demo with pair verification, both nodes recorded. A loaded machine completes
    and verifies little in 2 s of wall time (at load 17-28 a node had none of its own requests
    finished, or no verified pair): the demo goes on until each node has completed two of its
    own requests and verified a pair (a wait on the nodes' counters; HANG_DEMO_S only bounds a
    hang)."""
    transport, rate, hold = DEMOS[request.param]
    d = tmp_path_factory.mktemp(f"rec-{request.param}")
    rc = main(["demo", "--duration", "2", "--min-completed", "2", "--min-verified", "1",
               "--max-extend", str(HANG_DEMO_S), "--topology", "K2", "--transport", transport,
               "--fidelity", "0.5", "--header-rate", rate, "--hold", hold, "--out",
               str(d / "demo"), "--no-web", "--no-plot", "--json", "--record", str(d / "rec")])
    assert rc == 0
    return d


def test_replay_reproduces_the_recorded_results_exactly(recorded, capsys) -> None:
    capsys.readouterr()
    demo = recorded / "demo"
    meta = schema.read_metadata(demo / "requests.parquet")
    for n in ("A", "B"):
        out = recorded / f"replay-{n}"
        rc = main(["replay", str(recorded / "rec" / f"{n}.rec"), "--out", str(out), "--json"])
        assert rc == 0, capsys.readouterr().err
        d = json.loads(capsys.readouterr().out)
        assert d["diverged"] is None and d["complete"] and d["consumed"] == d["entries"], \
            {k: d[k] for k in ("diverged", "truncated", "consumed", "entries")}
        assert d["sends_checked"] > 0 and d["commands_checked"] > 0
        # the same requests (every column: times, attempts, heralds) and verified pairs as the run
        want = _rows(demo / "requests.parquet", initiator=n)
        got = _rows(out / f"{n}.parquet")
        assert want and got == want
        want_pairs = _rows(demo / "requests.pairs.parquet", node=n)
        assert want_pairs and _rows(out / f"{n}.pairs.parquet") == want_pairs
        # and the same counters as the node reported at the end of the run
        # (but "silent_s": seconds since a peer was heard, read when the snapshot was taken)
        recorded_counters = _without_silent({k: v for k, v in meta["nodes"][n].items()
                                             if k != "link"})
        assert _without_silent(json.loads(json.dumps(d["counters"]))) == recorded_counters
        assert d["same_counters_as_recorded"] is True
        assert d["completed"] == meta["nodes"][n]["completed"] > 0


def test_truncated_recording_replays_up_to_where_it_ends(recorded, tmp_path, capsys) -> None:
    whole = asyncio.run(record.replay(recorded / "rec" / "A.rec"))
    full_rows = {r["rid"]: r for r in whole.node.result_rows()}
    first = min(r["t_finish"] for r in full_rows.values() if r["t_finish"] is not None)
    lines = (recorded / "rec" / "A.rec").read_bytes().split(b"\n")
    # cut in the middle of a line (a crash) some entries after the first request completed
    k = next(i for i, ln in enumerate(lines)
             if ln.startswith(b'{"n":') and json.loads(ln)["t"] > first) + 20
    assert k < len(lines) - 2, "the run ended right after its first completion"
    cut = tmp_path / "cut.rec"
    cut.write_bytes(b"\n".join(lines[:k]) + b"\n" + lines[k][: len(lines[k]) // 2])
    capsys.readouterr()
    rc = main(["replay", str(cut), "--json"])
    captured = capsys.readouterr()
    assert rc == 0
    d = json.loads(captured.out)
    assert not d["complete"] and d["diverged"] is None
    assert "ends at line" in captured.err and "replayed up to there" in captured.err
    assert 0 < d["consumed"] <= d["entries"] < len(lines)
    # what the cut recording gives is what the full run had at that point: every request it
    # completed has the full run's ESP times (a row is final only later, when the other end's
    # pair list has been compared: disagree and the generation's counts may still change, and
    # t_pl_start, the later of the two ends' grid joins, once the other end's join has arrived)
    res = asyncio.run(record.replay(cut))
    done = {r["rid"]: r for r in res.node.result_rows() if r["t_finish"] is not None}
    fixed = ("rid", "initiator", "remote", "pairs", "fidelity", "t_submit", "t_syn", "t_ack",
             "t_min", "t_finish")
    assert done and all({k: full_rows[rid][k] for k in fixed} == {k: r[k] for k in fixed}
                        for rid, r in done.items())


def test_replay_reports_a_recording_the_node_does_not_follow(recorded, tmp_path, capsys) -> None:
    lines = (recorded / "rec" / "B.rec").read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith('{"o":'))
    e = json.loads(lines[i])
    e["p"][-1] = "AAAA"  # the node sent something else than this
    lines[i] = json.dumps(e)
    bad = tmp_path / "bad.rec"
    bad.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["replay", str(bad)]) == 1
    assert f"diverged at line {i + 1}:" in capsys.readouterr().err


def test_not_a_recording_is_one_line(tmp_path, capsys) -> None:
    p = tmp_path / "x.rec"
    p.write_text("hello\n")
    assert main(["replay", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an hwctl recording" in err
    assert main(["replay", str(tmp_path / "missing.rec")]) == 2


# ---------------------------------------------------------------------------- robust, reconnect
def _port() -> int:
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def _configs(url_a: str, url_b: str, **extra) -> tuple[NodeConfig, NodeConfig]:
    pa, pb = _port(), _port()
    wl = {"fidelity": 0.75, "pairs": [2, 4], "mean_backoff": 0.02}
    a = NodeConfig.from_dict({"name": "A", "listen": f"tcp://127.0.0.1:{pa}", "backend": url_a,
                              "peers": {"B": {"endpoint": f"tcp://127.0.0.1:{pb}"}},
                              "workload": wl | {"seed": 1}, **extra})
    b = NodeConfig.from_dict({"name": "B", "listen": f"tcp://127.0.0.1:{pb}", "backend": url_b,
                              "peers": {"A": {"endpoint": f"tcp://127.0.0.1:{pa}"}},
                              "workload": wl | {"seed": 2}, **extra})
    return a, b


async def _until(cond, runs, what: str) -> None:
    t_end = asyncio.get_running_loop().time() + HANG_S
    while not cond():
        assert asyncio.get_running_loop().time() < t_end, f"hang: {what}"
        for r in runs:
            if r.done():
                r.result()
        await asyncio.sleep(0.01)


async def _recorded_pair(tmp_path, srv, cfgs, scenario) -> tuple[list, list]:
    """Two recorded nodes on ``srv`` through ``scenario(nodes, runs)``; their recordings and
    what they ended with (result rows, verified pairs)."""
    nodes = [NodeService(c, rid_base=i * 1_000_000) for i, c in enumerate(cfgs)]
    recs = [record.Recorder(tmp_path / f"{n.cfg.name}.rec", n) for n in nodes]
    for r in recs:
        await r.start()
    runs = [asyncio.create_task(n.run()) for n in nodes]
    try:
        srv = await scenario(nodes, runs, srv) or srv
    finally:
        for n in nodes:
            n.stop()
        await asyncio.gather(*runs, return_exceptions=True)
        srv.stop()
    for r in runs:
        r.result()
    for r in recs:
        r.close()
    return [r.path for r in recs], [(n.result_rows(), n.pair_rows()) for n in nodes]


def _replays_exactly(paths, ended) -> None:
    for path, (rows, pairs) in zip(paths, ended, strict=True):
        res = asyncio.run(record.replay(path))
        d = record.summary(res)
        assert d["diverged"] is None and d["complete"] and d["consumed"] == d["entries"], d
        assert not res.notes, res.notes
        assert d["same_counters_as_recorded"] is True, d.get("counter_differences")
        assert res.node.result_rows() == rows and res.node.pair_rows() == pairs
        assert d["completed"] > 0


def test_robust_mode_session_replays_exactly(tmp_path) -> None:
    """Robust mode (message ids, acks, leases; hwctl.node.robust): the core's incarnation (its
    boot time) is recorded and the replay's core gets it, so every message id matches."""

    async def scenario(nodes, runs, srv):
        await _until(lambda: sum(n.counters.completed for n in nodes) >= 6, runs, "requests")

    async def main():
        lab = Lab(topologies.by_name("K2"), p_photon=0.004, seed=3, start=timebase.cycle_now())
        srv = LabServer(lab).start()
        return await _recorded_pair(tmp_path, srv, _configs(srv.urls["A"], srv.urls["B"],
                                                            robust=ROBUST), scenario)

    paths, ended = asyncio.run(main())
    assert all(json.loads(p.read_text().split("\n", 1)[0])["state"]["esp_incarnation"] > 0
               for p in paths)
    _replays_exactly(paths, ended)


def test_device_reconnect_session_replays_exactly(tmp_path) -> None:
    """The lab goes away under two recorded nodes and comes back restarted (as in
    tests/test_recovery.py): the failed and the successful reconnects, the new link's events and
    answers are recorded, and the replay reconnects where the recording does."""

    async def scenario(nodes, runs, srv):
        na, nb = nodes
        await _until(lambda: na.counters.completed and nb.counters.completed, runs, "requests")
        srv.stop()
        await _until(lambda: not na.recovery.up.is_set() and not nb.recovery.up.is_set(),
                     runs, "both nodes see the device gone")
        srv = LabServer(_lab(), link_dir=str(tmp_path / "lab")).start()
        await _until(lambda: na.recovery.epoch == 1 and nb.recovery.epoch == 1, runs,
                     "both devices back")
        before = na.counters.completed + nb.counters.completed
        await _until(lambda: na.counters.completed + nb.counters.completed >= before + 2, runs,
                     "requests after the restart")
        return srv

    async def main():
        srv = LabServer(_lab(), link_dir=str(tmp_path / "lab")).start()
        return await _recorded_pair(tmp_path, srv, _configs(srv.urls["A"], srv.urls["B"]),
                                    scenario)

    paths, ended = asyncio.run(main())
    text = paths[0].read_text()
    assert '"open":' in text  # a reconnect was recorded
    _replays_exactly(paths, ended)


def test_a_command_retry_during_a_generation_replays_exactly(tmp_path, monkeypatch) -> None:
    """A device command answered only after a retry (a loaded machine: the answer later than the
    link's timeout, the same bytes sent again) makes the supervisor read STATUS after the
    generation (hwctl.recovery, a stray repeated schedule). Whether a retry happened is a link
    counter, not a recorded input: the replay, whose device never retries, skipped that read and
    stopped with "diverged ... the recording has a step of task supervise.2 next" (seen in
    tests/test_node_processes.py at load 12-15). Here A's link counts one retry in its first
    SCHEDULE_PAIRS, deterministically; the replay must read STATUS where the recording does."""
    from hwctl import transport

    real_open = transport.open_backend
    retried: list[int] = []
    url_a: list[str] = []  # A's device (the lab's)

    async def open_backend(url: str, **kw):
        b = await real_open(url, **kw)
        if url in url_a:
            real_sched = b.schedule_pairs

            async def schedule_pairs(*args):
                r = await real_sched(*args)
                if not retried:  # this command needed a retry (as the transport counts one)
                    retried.append(b.stats.retries)
                    b.stats.retries += 1
                return r

            b.schedule_pairs = schedule_pairs
        return b

    monkeypatch.setattr(transport, "open_backend", open_backend)

    async def scenario(nodes, runs, srv):
        await _until(lambda: retried and sum(n.counters.completed for n in nodes) >= 4, runs,
                     "requests after the retry")

    async def main():
        srv = LabServer(_lab()).start()
        url_a.append(srv.urls["A"])
        return await _recorded_pair(tmp_path, srv, _configs(srv.urls["A"], srv.urls["B"]),
                                    scenario)

    paths, ended = asyncio.run(main())
    assert retried
    text = paths[0].read_text()
    assert '"c":"read_reg","a":[3]' in text  # A read STATUS after the generation (a retry)
    _replays_exactly(paths, ended)


def test_recording_fsyncs_behind_the_event_loop(tmp_path, monkeypatch) -> None:
    """The recorder writes an entry per task step from the node's event loop: the entries'
    fsync runs on the recording's own thread (hwctl.durable.Flusher), at most ``fsync_s`` after
    an entry though none follows (a node gone quiet) and at most once per ``fsync_s``; close()
    syncs the rest (the ``end`` entry) on the caller's thread. The waits end on the fsyncs;
    their deadline only bounds a hang."""
    import os
    import threading
    import time

    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        real(fd)
        synced.append(threading.current_thread().name)

    async def until(n: int) -> None:
        t_end = time.monotonic() + HANG_S
        while len(synced) < n:
            assert time.monotonic() < t_end, f"hang: {len(synced)} fsyncs, not {n}"
            await asyncio.sleep(0.001)

    async def main() -> None:
        a, _ = _configs("twin://", "twin://")
        node = NodeService(a)
        monkeypatch.setattr(record.os, "fsync", spy)
        loop_thread = threading.current_thread().name
        rec = record.Recorder(tmp_path / "A.rec", node, fsync_s=0.05)
        await until(1)  # the header: the first entry is synced at once, behind the loop
        rec._write({"s": "A/x"})  # within the interval: synced fsync_s after the header's,
        await until(2)  # though no entry follows
        assert synced == ["record-A"] * 2
        rec.close({"completed": 0})
        assert synced == ["record-A"] * 2 + [loop_thread]  # close: on the caller's thread
        lines = (tmp_path / "A.rec").read_text().splitlines()
        assert json.loads(lines[-1]) == {"end": {"completed": 0}} and len(lines) == 3

    asyncio.run(main())


def test_a_recording_without_fsync_never_syncs_behind(tmp_path, monkeypatch) -> None:
    """``fsync_s < 0``: the entries stay in the kernel (a process crash still loses nothing);
    only close() syncs."""
    import os

    calls: list[int] = []
    real = os.fsync

    def spy(fd: int) -> None:
        calls.append(fd)
        real(fd)

    async def main() -> None:
        node = NodeService(_configs("twin://", "twin://")[0])
        monkeypatch.setattr(record.os, "fsync", spy)
        rec = record.Recorder(tmp_path / "A.rec", node, fsync_s=-1)
        for _ in range(100):
            rec._write({"s": "A/x"})
        assert rec._flusher.runs == 0 and not rec._flusher.pending and not calls
        rec.close({"completed": 0})
        assert len(calls) == 1

    asyncio.run(main())


def test_a_lost_header_and_the_slot_check_replay_exactly(tmp_path) -> None:
    """Legacy HEADER pool: the node's slot check (node/verify.py ``_slot_check``) decides on its
    link's lost-frame counter, which depends on the link, not on the node's inputs: recorded
    (``link_losses``, format 4) and answered from the recording, as the retry counter is. A's
    link counts one lost frame once A has taken 20 HEADERs; the check that follows (a SLOTS_FREE
    read, a sweep if a slot is missing) must replay where it was recorded."""
    from hwctl.sim.twin.header import HeaderSource
    from tests.test_node_verify import vconfigs

    bumped: list[int] = []

    async def scenario(nodes, runs, srv):
        na, _ = nodes
        await _until(lambda: na.counters.headers >= 20, runs, "headers at A")
        na.backend.stats.events_lost += 1  # as the link counts a lost frame
        st = na.backend.stats  # (not link_losses: the recorder would record the test's reading)
        bumped.append(st.events_lost + st.rx_frame_errors)
        await _until(lambda: na._loss_seen is not None and na._loss_seen[1] >= bumped[0]
                     and min(n.counters.completed for n in nodes) >= 2, runs,
                     "A's slot check after the loss, and requests")

    async def main():
        start = timebase.cycle_now()
        src = HeaderSource(period=100_000, seed=11, phase=start, seq0=0, arrival=(0.6, 0.6))
        lab = Lab(topologies.by_name("K2"), p_photon=0.02, seed=3, start=start,
                  node_kw={"A": src.arm(0), "B": src.arm(1)})
        srv = LabServer(lab).start()
        return await _recorded_pair(tmp_path, srv, vconfigs(srv.urls["A"], srv.urls["B"]),
                                    scenario)

    paths, ended = asyncio.run(main())
    text = paths[0].read_text()
    assert f'"v":{bumped[0]}' in text and '"ll":' in text  # the reading after the loss
    assert '"c":"read_reg","a":[12]' in text  # the check's SLOTS_FREE read
    _replays_exactly(paths, ended)


def test_a_block_mode_recording_from_before_the_start_pin_read_replays(tmp_path, capsys) -> None:
    """Recording format 3 (before block mode's start read CNT_PINNED, hwctl.hdrpath.enable_blocks):
    a real recording, node A of ``hwctl demo --duration 1 --min-completed 1 --min-verified 1
    --topology K2 --transport inproc --fidelity 0.5 --header-rate 20000 --hold 0.002 --record``
    made at commit 21d535e (tests/data/record-v3-blocks-A.rec.gz). It has no answer for that read;
    the replay skips the read, as the recorded node did, says so in its notes, and follows the
    recording to its end with the recorded counters (it stopped with "diverged" at the read)."""
    import gzip
    from pathlib import Path

    from hwctl.wire import Reg

    data = gzip.decompress((Path(__file__).parent / "data" / "record-v3-blocks-A.rec.gz")
                           .read_bytes())
    path = tmp_path / "A.rec"
    path.write_bytes(data)
    entries = [json.loads(ln) for ln in data.splitlines()]
    assert entries[0]["version"] == 3
    assert not [e for e in entries if e.get("c") == "read_reg" and e["a"] == [int(Reg.CNT_PINNED)]]
    assert any(e.get("c") == "pin_mask" for e in entries)  # block mode with pins
    capsys.readouterr()
    rc = main(["replay", str(path), "--json"])
    out = capsys.readouterr()
    d = json.loads(out.out)
    assert rc == 0, out.err[-2000:]
    assert d["diverged"] is None and d["complete"] and d["consumed"] == d["entries"]
    assert d["same_counters_as_recorded"] is True
    assert d["sends_checked"] > 0 and d["verified_pairs"] > 0
    assert len(d["notes"]) == 1 and "CNT_PINNED" in d["notes"][0]
    assert "note:" in out.err


def test_a_counter_added_since_the_recording_is_no_difference_at_zero() -> None:
    assert record._diff({"a": 1}, {"a": 1, "new": 0}) == []
    assert record._diff({"a": 1}, {"a": 1, "new": 2}) == ["new: recorded None, replayed 2"]
    assert record._diff({"a": 1, "b": None}, {"a": 1, "b": 0}) == ["b: recorded None, replayed 0"]


@pytest.mark.parametrize("fmt", [5, 4])
def test_the_gos_header_en_after_a_device_restart_replays(tmp_path, monkeypatch, fmt) -> None:
    """Labs whose header decoders start off (the demo's go, NodeService.enable_headers, between
    start and run); the lab comes back restarted (HEADER_EN off again). Format 5: the re-sync
    turns HEADER_EN on again (``headers_reenabled``), and the replay, which takes the go from
    the commands between start and run, issues the same commands. Format 4: a node that did not
    (the re-enable switched off while recording, the header says 4) replays exactly too, and
    the same file labelled format 5 diverges at the re-sync (the version gate is what keeps it)."""
    from hwctl.node.verify import VerificationDriver
    from hwctl.recovery import patient
    from hwctl.wire import ControlBit, Reg

    off = {n: {"control_reset": 1 << ControlBit.HERALD_EN} for n in ("A", "B")}

    def lab() -> Lab:
        return Lab(topologies.by_name("K2"), p_photon=0.004, seed=3, start=timebase.cycle_now(),
                   node_kw=off)

    if fmt == 4:
        async def old(self, b):  # the node before format 5: no HEADER_EN after a restart
            return False

        monkeypatch.setattr(VerificationDriver, "reenable_headers", old)

    async def main():
        srv = LabServer(lab(), link_dir=str(tmp_path / "lab")).start()
        na, nb = nodes = [NodeService(c, rid_base=i * 1_000_000)
                          for i, c in enumerate(_configs(srv.urls["A"], srv.urls["B"]))]
        recs = [record.Recorder(tmp_path / f"{n.cfg.name}.rec", n) for n in nodes]
        for r in recs:
            await r.start()
        for n in nodes:  # the go
            async with patient(n.backend):
                await n.enable_headers()
        runs = [asyncio.create_task(n.run()) for n in nodes]
        try:
            await _until(lambda: na.counters.completed and nb.counters.completed, runs, "requests")
            srv.stop()
            await _until(lambda: not na.recovery.up.is_set() and not nb.recovery.up.is_set(),
                         runs, "both nodes see the device gone")
            srv = LabServer(lab(), link_dir=str(tmp_path / "lab")).start()
            await _until(lambda: na.recovery.epoch == 1 and nb.recovery.epoch == 1, runs,
                         "both devices back")
            on = [bool(srv.lab.nodes[n].reg(Reg.CONTROL) >> ControlBit.HEADER_EN & 1)
                  for n in ("A", "B")]
            before = na.counters.completed + nb.counters.completed
            await _until(lambda: na.counters.completed + nb.counters.completed >= before + 2,
                         runs, "requests after the restart")
        finally:
            for n in nodes:
                n.stop()
            await asyncio.gather(*runs, return_exceptions=True)
            srv.stop()
        for r in runs:
            r.result()
        for r in recs:
            r.close()
        return ([r.path for r in recs], [(n.result_rows(), n.pair_rows()) for n in nodes], on,
                [n.recovery.counters.headers_reenabled for n in nodes])

    paths, ended, on, reenabled = asyncio.run(main())
    monkeypatch.undo()
    if fmt == 5:
        assert on == [True, True] and reenabled == [1, 1]
    else:
        assert on == [False, False] and reenabled == [0, 0]
        for p in paths:  # what a format-4 hwctl wrote
            lines = p.read_text().split("\n", 1)
            head = json.loads(lines[0])
            assert head["version"] == 5
            head["version"] = 4
            p.write_text(json.dumps(head) + "\n" + lines[1])
    _replays_exactly(paths, ended)
    if fmt == 4:  # the gate: as format 5 the replay turns HEADER_EN on, the recording did not
        lines = paths[0].read_text().split("\n", 1)
        head = json.loads(lines[0])
        head["version"] = 5
        paths[0].write_text(json.dumps(head) + "\n" + lines[1])
        res = asyncio.run(record.replay(paths[0]))
        assert res.diverged is not None
