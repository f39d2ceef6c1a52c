"""Durable files written from an event loop: the disk waits go to a thread of their own.

A node writes its results (:mod:`hwctl.results`) and its request journal (:mod:`hwctl.journal`)
from its asyncio event loop, where one ``fsync`` (3-5 ms, more on a busy disk) would stall every
request in flight. Each of them hands its write-and-``fsync`` to a :class:`Flusher`: one daemon
thread that runs the file's job at the time the file asks for (the results: half their flush
interval after the first row not on disk; the journal: at most its interval after a record, at
most one ``fsync`` per interval), so a crash loses at most one interval of data and the loop never
waits for the disk. :func:`fsync_dir` makes an atomic rename or a new file durable.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class Flusher:
    """Runs ``job`` on a thread of its own, once per :meth:`due` call at the time it names.

    Due times coalesce: a call while a run is pending keeps the earlier of the two times (one
    run does the work of both); a call while the job runs asks for one more run after it. The
    thread starts at the first :meth:`due`. An exception from the job is logged (``name`` says
    whose) and the thread goes on: the file keeps what it could not write for a later run or
    for its own close. :meth:`close` lets a run that is due by then happen, drops a later one
    (the file does its final write itself, on the caller's thread) and waits for the thread.
    """

    def __init__(self, job: Callable[[], None], name: str) -> None:
        self._job = job
        self.name = name
        self._cv = threading.Condition()
        self._at: float | None = None  # time.monotonic() of the pending run (None: none)
        self._stop = False
        self._thread: threading.Thread | None = None
        self.runs = 0  # jobs run (done or failed)

    @property
    def pending(self) -> bool:
        return self._at is not None

    def due(self, at: float) -> None:
        """Run the job at ``time.monotonic() >= at`` (now, if that is past)."""
        with self._cv:
            if self._stop or (self._at is not None and self._at <= at):
                return
            self._at = at
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)
                self._thread.start()
            self._cv.notify()

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            with self._cv:
                while True:
                    now = time.monotonic()
                    if self._at is not None and self._at <= now:
                        self._at = None
                        break
                    if self._stop:
                        return
                    self._cv.wait(None if self._at is None else self._at - now)
            try:
                self._job()
            except Exception as exc:  # the file's data stays for a later run or its close
                log.warning("%s: writing behind failed: %s", self.name, exc)
            self.runs += 1


def fsync_dir(d: Path) -> None:
    """Make a rename or a new file in directory ``d`` durable (fsync of the directory); a
    filesystem that cannot open or fsync a directory is skipped, as the file data is already
    synced. Shared by the results writer and the request journal (hwctl.journal)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
