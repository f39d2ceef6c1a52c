"""The write-behind thread shared by the results writer and the request journal
(hwctl.durable.Flusher). Every wait here ends on an event; the timeouts only bound a hang."""

from __future__ import annotations

import threading
import time

import pyarrow as pa

from hwctl import results
from hwctl.durable import Flusher
from hwctl.results import ResultsWriter, read_partial

HANG_S = 60.0  # only if something hangs


class _Job:
    """A job that counts its runs and can be held inside a run."""

    def __init__(self, fail_first: bool = False) -> None:
        self.runs = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_first = fail_first
        self.threads: set[str] = set()

    def __call__(self) -> None:
        self.runs += 1
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        assert self.release.wait(HANG_S)
        if self.fail_first and self.runs == 1:
            raise OSError("disk full")


def test_a_due_run_happens_on_its_own_thread_and_close_waits_for_it() -> None:
    job = _Job()
    f = Flusher(job, "flusher-test")
    f.due(time.monotonic())
    assert job.entered.wait(HANG_S)
    f.close()
    assert job.runs == 1 and job.threads == {"flusher-test"}


def test_calls_while_pending_coalesce_and_a_call_while_running_gives_one_more_run() -> None:
    job = _Job()
    job.release.clear()
    f = Flusher(job, "flusher-test")
    f.due(time.monotonic())
    assert job.entered.wait(HANG_S)  # held inside run 1
    for _ in range(5):  # while it runs: one more run, whatever the count
        f.due(time.monotonic())
    assert f.pending
    job.release.set()
    f.close()  # the run due by now happens before the thread ends
    assert job.runs == 2 and not f.pending


def test_the_earlier_time_wins_and_a_later_run_is_dropped_at_close() -> None:
    job = _Job()
    f = Flusher(job, "flusher-test")
    f.due(time.monotonic() + 3600.0)
    f.close()  # not due: dropped (the file's close writes what is left)
    assert job.runs == 0
    job2 = _Job()
    f2 = Flusher(job2, "flusher-test")
    f2.due(time.monotonic() + 3600.0)
    f2.due(time.monotonic())  # an earlier time replaces the later one
    assert job2.entered.wait(HANG_S)
    f2.close()
    assert job2.runs == 1
    f2.due(time.monotonic())  # after close: ignored, no thread
    assert job2.runs == 1 and not f2.pending


def test_a_failed_run_is_logged_and_the_thread_goes_on(caplog) -> None:
    job = _Job(fail_first=True)
    f = Flusher(job, "flusher-test")
    f.due(time.monotonic())
    assert job.entered.wait(HANG_S)
    job.entered.clear()
    t_end = time.monotonic() + HANG_S
    while f.runs < 1:  # run 1 failed and was counted
        assert time.monotonic() < t_end, "hang"
        time.sleep(0.001)
    f.due(time.monotonic())
    assert job.entered.wait(HANG_S)  # the thread is still there
    f.close()
    assert job.runs == 2
    assert any("writing behind failed: disk full" in r.getMessage() for r in caplog.records)


def test_results_rows_are_written_behind_the_appending_thread(tmp_path, monkeypatch) -> None:
    """One row appended and nothing more: the writer's flusher thread writes and fsyncs it (the
    appending thread, a node's event loop, never waits for the disk)."""
    calls: list[str] = []
    real = results.os.fsync

    def spy(fd: int) -> None:
        calls.append(threading.current_thread().name)
        real(fd)

    w = ResultsWriter(tmp_path, "r", pa.schema([("i", pa.int64())]), flush_s=0.01)
    monkeypatch.setattr(results.os, "fsync", spy)
    w.append({"i": 7})
    t_end = time.monotonic() + HANG_S
    while w.rows_written < 1:
        assert time.monotonic() < t_end, "hang: the flusher never wrote the row"
        time.sleep(0.001)
    assert calls == ["results-r"]
    assert read_partial(w.partial_path).column("i").to_pylist() == [7]
    monkeypatch.setattr(results.os, "fsync", real)
    w.close()
