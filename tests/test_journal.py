"""Request journal (hwctl.journal): crash-safe records, torn last line, compaction, and the
restart policy (resume recent open requests under new ids, expire old ones with a reason, ids
continue after every id used before)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hwctl import journal as J
from hwctl.journal import RequestJournal, read_state, resume
from hwctl.node import NodeConfig, NodeService
from hwctl.protocols.base import Request


def _node() -> NodeService:
    cfg = NodeConfig.from_dict({"name": "A", "listen": "tcp://127.0.0.1:7001", "backend": "twin://",
                                "peers": {"B": {"endpoint": "tcp://127.0.0.1:7002"}}})
    n = NodeService(cfg, rid_base=1000)
    n.sent = []
    n._send = lambda peer, kind, payload: n.sent.append((peer, kind, payload))  # no sockets
    return n


def _req(rid: int, t: float, remote: str = "B") -> Request:
    return Request(rid, "A", remote, 0.75, 2, t)


def test_records_replay_and_a_torn_last_line_is_ignored(tmp_path) -> None:
    p = tmp_path / "A.journal.jsonl"
    j = RequestJournal(p)
    j.begin(1, {})
    for rid in (1, 2, 3):
        j.submitted(_req(rid, 10.0 + rid))
    j.completed(1, 20.0)
    j.expire(2, "ttl", "not started in 30 s", 21.0)
    j.close()
    with open(p, "a") as f:
        f.write('{"op": "sub", "rid": 9, "remo')  # the process died inside a write
    st = read_state(p)
    assert set(st.open) == {3} and st.max_rid == 3 and st.torn == 1 and st.lives == 1


def test_kill_9_right_after_a_record_keeps_it(tmp_path) -> None:
    """Each record is flushed to the kernel before submitted() returns: a child that reports
    a record written and is then SIGKILLed has it in the file."""
    p = tmp_path / "A.journal.jsonl"
    code = (
        "import sys, os\n"
        "from hwctl.journal import RequestJournal\n"
        "from hwctl.protocols.base import Request\n"
        f"j = RequestJournal({str(p)!r}); j.begin(1, {{}})\n"
        "for rid in range(1, 200):\n"
        "    j.submitted(Request(rid, 'A', 'B', 0.75, 2, 1.0))\n"
        "    print(rid, flush=True)\n"
        "    if rid == 150: os.kill(os.getpid(), 9)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=os.environ | {"PYTHONPATH": os.getcwd()})
    assert r.returncode == -9
    last = int(r.stdout.split()[-1])
    st = read_state(p)
    assert last == 150 and set(range(1, last + 1)) <= set(st.open) and st.torn == 0


def test_restart_resumes_recent_requests_and_expires_old_ones(tmp_path) -> None:
    p = tmp_path / "A.journal.jsonl"
    n1 = _node()
    n1.journal = j = RequestJournal(p)
    resume(n1, j)
    old = n1.submit("B", 2)
    recent = n1.submit("B", 3)
    done = n1.submit("B", 1)
    j.completed(done.rid, n1.now())
    # the first life dies; its oldest open request is older than RESUME_TTL_S
    lines = p.read_text().splitlines()
    lines = [json.dumps(r | {"t": r["t"] - 2 * J.RESUME_TTL_S})
             if r.get("rid") == old.rid and r["op"] == "sub" else json.dumps(r)
             for r in map(json.loads, lines)]
    p.write_text("\n".join(lines) + "\n")
    n2 = _node()
    n2.journal = j2 = RequestJournal(p)
    resume(n2, j2)
    snap = j2.snapshot()
    assert snap["resumed"] == 1 and snap["expired"] == {"too old at restart": 1}
    assert snap["earlier_lives"] == 1
    (new,) = n2.records.values()
    assert new.rid > max(old.rid, recent.rid, done.rid)  # ids never reused
    assert new.pairs == 3 and new.t_submit == pytest.approx(recent.t)  # original time kept
    assert n2.sent and n2.sent[-1][1] == b"esp"  # the resumed request's SYN went out
    fresh = n2.submit("B", 1)
    assert fresh.rid > new.rid
    j2.close()
    recs = [json.loads(x) for x in p.read_text().splitlines()]
    exp = [r for r in recs if r["op"] == "exp"]
    res = [r for r in recs if r["op"] == "res"]
    assert [r["rid"] for r in exp] == [old.rid] and exp[0]["reason"].startswith("too old")
    assert res == [{"op": "res", "rid": recent.rid, "as": new.rid, "t": res[0]["t"]}]
    # the third life finds only what is still open: the resumed request and the fresh one
    assert set(read_state(p).open) == {new.rid, fresh.rid}


def test_compaction_keeps_the_file_small(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(J, "COMPACT_RECORDS", 100)
    p = tmp_path / "A.journal.jsonl"
    j = RequestJournal(p)
    j.begin(1, {})
    for rid in range(1, 1001):
        j.submitted(_req(rid, 1.0))
        if rid > 1:
            j.completed(rid - 1, 2.0)
    j.close()
    assert len(p.read_text().splitlines()) <= J.COMPACT_RECORDS + 2  # header, open, records
    st = read_state(p)
    assert set(st.open) == {1000} and st.max_rid == 1000 and st.lives == 0  # compactions


def test_fsync_runs_off_the_writing_thread(tmp_path, monkeypatch) -> None:
    """Records are written from the node's event loop: their periodic fsync runs on the
    journal's own thread (on a descriptor of its own, closed after), and close() syncs what is
    left on the caller's thread."""
    import threading

    calls: list[tuple[str, int]] = []
    real = os.fsync

    def spy(fd: int) -> None:
        calls.append((threading.current_thread().name, fd))
        real(fd)

    monkeypatch.setattr(J, "FSYNC_S", 0.0)  # every record asks for one
    p = tmp_path / "A.journal.jsonl"
    j = RequestJournal(p)
    j.begin(1, {})
    monkeypatch.setattr(J.os, "fsync", spy)
    fds_before = len(os.listdir("/proc/self/fd"))
    main = threading.current_thread().name
    for rid in range(1, 51):
        j.submitted(_req(rid, 1.0))
    j.close()
    behind = [fd for name, fd in calls if name != main]
    assert behind, calls  # the syncer did the records' fsyncs
    assert all(name == main for name, _ in calls[len(behind):])  # only close's is the caller's
    assert len(os.listdir("/proc/self/fd")) <= fds_before - 1  # its dups closed, and the file
    assert set(read_state(p).open) == set(range(1, 51))


def test_a_record_is_fsynced_within_the_interval_without_a_later_record(tmp_path,
                                                                         monkeypatch) -> None:
    """A record written less than FSYNC_S after the previous fsync is fsynced FSYNC_S after
    that one by the journal's thread, though no record follows (a node gone quiet: before, it
    waited for the next record or close). At most one fsync per interval: two records, two
    fsyncs. The wait ends on the fsync; its deadline only bounds a hang."""
    import threading
    import time

    monkeypatch.setattr(J, "FSYNC_S", 0.05)
    p = tmp_path / "A.journal.jsonl"
    j = RequestJournal(p)
    j.begin(1, {})
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        real(fd)
        synced.append(threading.current_thread().name)

    monkeypatch.setattr(J.os, "fsync", spy)
    t_end = time.monotonic() + 60.0

    def until(n: int) -> None:
        while len(synced) < n:
            assert time.monotonic() < t_end, f"hang: {len(synced)} fsyncs, not {n}"
            time.sleep(0.001)

    j.submitted(_req(1, 1.0))  # the first record: its fsync at once (none before)
    until(1)
    j.submitted(_req(2, 1.0))  # within the interval: its fsync FSYNC_S after the first
    until(2)
    assert synced == ["journal-A.journal"] * 2
    j.close()
    assert synced == ["journal-A.journal"] * 2  # nothing left for close to sync


def test_submit_sends_the_syn_before_the_journal_record(tmp_path) -> None:
    """The journal's write is not on the SYN's path (it cost ~25 us of every request's queue
    time in `hwctl node --out`), and the record is in the file before submit() returns."""
    p = tmp_path / "A.journal.jsonl"
    n = _node()
    n.journal = j = RequestJournal(p)
    resume(n, j)
    sent_at_record: list[int] = []
    write = j.submitted

    def submitted(req: Request) -> None:
        sent_at_record.append(len(n.sent))
        write(req)

    j.submitted = submitted  # type: ignore[method-assign]
    req = n.submit("B", 2)
    assert [kind for _, kind, _ in n.sent] == [b"esp"]  # the SYN
    assert sent_at_record == [1]  # written after the SYN went out
    assert set(read_state(p).open) == {req.rid}  # and in the file when submit() returns
    j.close()
