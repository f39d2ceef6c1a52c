"""Crash-safe results (hwctl.results): kill -9 loses at most flush_s of rows and the file opens;
SIGTERM/SIGINT give the complete file; a second run never overwrites the first."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hwctl.results import ResultsWriter, metadata, read_partial

SCHEMA = pa.schema([("i", pa.int64()), ("t", pa.float64()), ("ts", pa.list_(pa.uint64()))])

CHILD = textwrap.dedent("""
    import signal, sys, time
    import pyarrow as pa
    from hwctl.results import ResultsWriter
    schema = pa.schema([("i", pa.int64()), ("t", pa.float64()), ("ts", pa.list_(pa.uint64()))])
    w = ResultsWriter(sys.argv[1], "requests", schema, {"source": "test"}, flush_s=0.2)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    print("partial", w.partial_path, flush=True)
    i = 0
    while not stop:
        t = time.monotonic()
        w.append({"i": i, "t": t, "ts": [i, i + 1]})
        since = w.pending_since
        # after the append: rows durably written, and how old the oldest row not on disk is
        print(i, w.last_check - (w.last_check if since is None else since), w.rows_written,
              flush=True)
        i += 1
        time.sleep(0.002)
    path = w.close()
    print("closed", i, path, flush=True)
""")


def _child(out) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE,
                            text=True)


def _read_until(p: subprocess.Popen, rows: int) -> tuple[str, list[tuple[int, float, int]]]:
    partial = p.stdout.readline().split()[1]
    seen = []
    for line in p.stdout:
        i, t, w = line.split()
        seen.append((int(i), float(t), int(w)))
        if int(i) + 1 >= rows:
            break
    return partial, seen


def test_kill_9_loses_at_most_flush_s_and_the_file_opens(tmp_path) -> None:
    p = _child(tmp_path)
    partial, seen = _read_until(p, 400)
    p.kill()
    p.wait()
    table = read_partial(partial)
    got = table.column("i").to_pylist()
    assert got == list(range(len(got)))  # a prefix, in order, nothing corrupted
    assert len(got) >= seen[-1][2]  # every row reported durable is there
    # what can be lost is what was pending, and the oldest pending row was never older than
    # flush_s (0.2 s here, 1 s by default) by the writer's clock
    assert all(age < 0.2 for _, age, _ in seen)
    assert metadata(table)["source"] == "test" and metadata(table)["run_id"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_gives_the_complete_file(tmp_path, sig) -> None:
    p = _child(tmp_path)
    _read_until(p, 50)
    p.send_signal(sig)
    rest = p.stdout.read().splitlines()
    assert p.wait() == 0
    _, n, path = rest[-1].split()
    t = pq.read_table(path)
    assert t.column("i").to_pylist() == list(range(int(n)))
    assert not list(tmp_path.glob("*.partial.arrows"))


def test_a_second_run_never_overwrites(tmp_path) -> None:
    paths = []
    for k in range(3):
        w = ResultsWriter(tmp_path, "requests", SCHEMA, {"k": k}, autoflush=False)
        w.append({"i": k, "t": 0.0, "ts": []})
        paths.append(w.close())
    assert paths[0].name == "requests.parquet" and len(set(paths)) == 3
    for k, path in enumerate(paths):
        t = pq.read_table(path)
        assert t.column("i").to_pylist() == [k]
        assert metadata(t.schema)["k"] == k


def test_final_rows_and_abandon(tmp_path) -> None:
    w = ResultsWriter(tmp_path, "r", SCHEMA, autoflush=False)
    w.extend([{"i": 0, "t": 0.0, "ts": [1]}])
    w.flush()
    w.append({"i": 1, "t": 0.0, "ts": [2]})
    w.abandon()  # what a crashed service leaves: everything it had, still readable
    assert read_partial(w.partial_path).column("i").to_pylist() == [0, 1]
    w2 = ResultsWriter(tmp_path, "r", SCHEMA, autoflush=False)
    path = w2.close(final_rows=[{"i": 7, "t": 1.0, "ts": None}])
    assert pq.read_table(path).column("i").to_pylist() == [7]


def test_a_run_killed_before_its_first_row_opens(tmp_path) -> None:
    w = ResultsWriter(tmp_path, "r", SCHEMA, autoflush=False)  # then "killed": never closed
    t = read_partial(w.partial_path)
    assert t.num_rows == 0 and t.schema.names == SCHEMA.names


def test_appends_go_on_while_a_batch_is_written(tmp_path, monkeypatch) -> None:
    """A node appends from its event loop: an append never waits for a batch being written and
    fsynced (the flusher thread's job), and the rows in flight still count as not on disk. The
    waits only bound a hang."""
    import threading

    from hwctl import results

    w = ResultsWriter(tmp_path, "r", SCHEMA, flush_s=3600.0)  # the flusher never due by itself
    w.append({"i": 0, "t": 0.0, "ts": [0]})
    entered, release = threading.Event(), threading.Event()
    real = results.os.fsync

    def held_fsync(fd: int) -> None:
        entered.set()
        release.wait(60)
        real(fd)

    monkeypatch.setattr(results.os, "fsync", held_fsync)
    flusher = threading.Thread(target=w.flush)
    flusher.start()
    assert entered.wait(60)  # the batch of row 0 is in its fsync
    appended = threading.Event()
    threading.Thread(target=lambda: (w.append({"i": 1, "t": 1.0, "ts": [1]}), appended.set()),
                     daemon=True).start()
    try:
        assert appended.wait(60), "an append waited for the batch being written"
        assert w.rows_written == 0 and w.pending_since is not None  # row 0 is not on disk yet
    finally:
        release.set()
        flusher.join(60)
    assert w.rows_written == 1
    monkeypatch.setattr(results.os, "fsync", real)
    path = w.close()
    assert pq.read_table(path).column("i").to_pylist() == [0, 1]  # in order


def test_the_caller_flushes_only_when_the_flusher_is_late(tmp_path) -> None:
    """Without a flusher thread (a stalled one looks the same) an append flushes the rows once
    the oldest is flush_s old; before that it leaves them pending."""
    w = ResultsWriter(tmp_path, "r", SCHEMA, flush_s=3600.0, autoflush=False)
    w.append({"i": 0, "t": 0.0, "ts": []})
    assert w.rows_written == 0 and w.pending_since is not None
    w.flush_s = 0.0  # the oldest row is now overdue
    w.append({"i": 1, "t": 0.0, "ts": []})
    assert w.rows_written == 2 and w.pending_since is None
    w.close()
