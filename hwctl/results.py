"""Crash-safe results: rows written as they come, at most ~1 s lost on SIGKILL, never overwritten.

:class:`ResultsWriter` appends rows to an Arrow IPC *stream* file ``<name>.<run_id>.partial.arrows``
and flushes (``fsync``) the rows gathered so far as one record batch at most ``flush_s`` seconds
after the first of them arrived: a background thread (:class:`hwctl.durable.Flusher`) writes them
half of ``flush_s`` after the first, and the appending caller only when that thread is late (a
node appends from its event loop, where a batch's write and ``fsync``, 3-5 ms, would stall every
request). A stream file
is readable up to its last complete batch whatever happened after it, so a ``kill -9`` loses at
most the rows of the last ``flush_s`` and the partial file still opens: :func:`read_partial`
returns every complete batch (``hwctl`` prints where it is).

:meth:`ResultsWriter.close` writes the final Parquet file (with the metadata in the file) to a
temporary name, ``fsync``\\s it and links it into place atomically, *never replacing* an existing
file: the first run in a directory gets ``<name>.parquet``, a later one
``<name>.<run_id>.parquet`` (the run id is ``YYYYmmddTHHMMSSZ-<pid>-<4 hex>``, also in the
metadata). Then the partial file is removed. A run ended by SIGINT/SIGTERM closes normally.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from hwctl.durable import Flusher, fsync_dir

#: the most a crash can lose (seconds of rows), by default
FLUSH_S = 1.0


def new_run_id() -> str:
    """``YYYYmmddTHHMMSSZ-<pid>-<4 hex>``: sortable by start time, unique per process."""
    return (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}-"
            + secrets.token_hex(2))


class ResultsWriter:
    """Rows -> partial Arrow stream (flushed each ``flush_s``) -> Parquet on close (module doc)."""

    def __init__(self, out_dir: str | Path, name: str, schema: pa.Schema,
                 metadata: Mapping[str, Any] | None = None, *, run_id: str | None = None,
                 flush_s: float = FLUSH_S, autoflush: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.name = name
        self.run_id = run_id or new_run_id()
        self.flush_s = flush_s
        meta = {**(metadata or {}), "run_id": self.run_id}
        self.schema = schema.with_metadata(
            {k.encode(): json.dumps(v, default=str).encode() for k, v in meta.items()})
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.partial_path = self.out_dir / f"{name}.{self.run_id}.partial.arrows"
        self._file = open(self.partial_path, "wb")  # noqa: SIM115 - closed in close()
        self._stream = pa.ipc.new_stream(self._file, self.schema)
        # Arrow writes the schema with the first batch: an empty one puts it on disk now, so
        # even a run killed before its first row leaves a file that opens
        self._stream.write_batch(pa.RecordBatch.from_pylist([], schema=self.schema))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._pending: list[dict] = []
        self._first_pending: float | None = None
        #: oldest row of the batch flush() is writing (outside ``_lock``), None when none is
        self._inflight_since: float | None = None
        self._lock = threading.Lock()  # the rows and counters: held for microseconds
        self._io = threading.Lock()  # the stream file: one flush at a time, batches in order
        self._closed = False
        self.rows_written = 0
        self.flushes = 0
        self.last_check = time.monotonic()
        self.path: Path | None = None
        self._flusher = Flusher(self._flush_behind, f"results-{name}") if autoflush else None

    # ---------------------------------------------------------------- rows
    def append(self, row: Mapping[str, Any]) -> None:
        self.extend([row])

    def extend(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with self._lock:
            if self._closed:
                raise ValueError("results writer is closed")
            now = time.monotonic()
            if rows and self._first_pending is None:
                self._first_pending = now
                if self._flusher is not None:  # the flusher writes them half of flush_s later
                    self._flusher.due(now + self.flush_s / 2)
            self._pending.extend(dict(r) for r in rows)
            self.last_check = now
            oldest = self._oldest()
        # the flusher thread writes rows at half of flush_s; when it is late (or there is none)
        # the caller does, so no row is older than flush_s and not on disk after an append
        if oldest is not None and now - oldest >= self.flush_s:
            self.flush()

    def _oldest(self) -> float | None:
        # the batch in flight holds older rows than the pending ones (batches are taken in order)
        return self._inflight_since if self._inflight_since is not None else self._first_pending

    @property
    def pending_since(self) -> float | None:
        """time.monotonic() of the oldest row not yet on disk (None: all flushed); after every
        append ``last_check - pending_since < flush_s``: what a crash can lose."""
        with self._lock:
            return self._oldest()

    def flush(self) -> None:
        """Write the pending rows as one batch and ``fsync`` it. The rows' lock is held only to
        take them: appends go on while the batch is written."""
        with self._io:
            with self._lock:
                if not self._pending or self._closed:
                    return
                rows, self._pending = self._pending, []
                self._inflight_since, self._first_pending = self._first_pending, None
            try:
                self._stream.write_batch(pa.RecordBatch.from_pylist(rows, schema=self.schema))
                self._file.flush()
                os.fsync(self._file.fileno())
            except BaseException:  # still pending (as before the flush); the error goes up
                with self._lock:
                    self._pending[:0] = rows
                    self._first_pending, self._inflight_since = self._inflight_since, None
                raise
            with self._lock:
                self.rows_written += len(rows)
                self.flushes += 1
                self._inflight_since = None

    def _flush_behind(self) -> None:
        """:meth:`flush` on the flusher's thread; after a failed write (the rows stay pending)
        it tries again half of ``flush_s`` later."""
        try:
            self.flush()
        except Exception:
            if self._flusher is not None:
                self._flusher.due(time.monotonic() + self.flush_s / 2)
            raise

    # ---------------------------------------------------------------- end
    def close(self, final_rows: Sequence[Mapping[str, Any]] = (),
              metadata: Mapping[str, Any] | None = None) -> Path:
        """Flush ``final_rows`` (e.g. requests still open) and everything pending, then write the
        Parquet file atomically without replacing any file; returns its path. ``metadata`` adds
        entries known only at the end (e.g. the run's summary) to the file's metadata."""
        import pyarrow.parquet as pq

        if final_rows:
            self.extend(final_rows)
        self._end_stream()
        table = read_partial(self.partial_path)
        if metadata:
            table = table.replace_schema_metadata(
                {**(table.schema.metadata or {}),
                 **{k.encode(): json.dumps(v, default=str).encode() for k, v in metadata.items()}})
        tmp = self.out_dir / f".{self.name}.{self.run_id}.parquet.tmp"
        pq.write_table(table, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        self.path = _link_new(tmp, [self.out_dir / f"{self.name}.parquet",
                                    self.out_dir / f"{self.name}.{self.run_id}.parquet"])
        self.partial_path.unlink()
        fsync_dir(self.out_dir)
        return self.path

    def abandon(self) -> None:
        """Stop without writing Parquet (the partial file stays for :func:`read_partial`)."""
        self._end_stream()

    def _end_stream(self) -> None:
        """Stop the flusher, write what is pending and close the partial stream file."""
        if self._flusher is not None:
            self._flusher.close()
        self.flush()
        with self._io, self._lock:
            self._closed = True
            self._stream.close()
            self._file.close()


def _link_new(src: Path, candidates: list[Path]) -> Path:
    """Give ``src`` the first name of ``candidates`` that does not exist (atomic, no overwrite)."""
    for dst in candidates:
        try:
            os.link(src, dst)
        except FileExistsError:
            continue
        src.unlink()
        return dst
    raise FileExistsError(f"every results name is taken: {[str(c) for c in candidates]}")


def read_partial(path: str | Path) -> pa.Table:
    """Every complete record batch of a (possibly truncated) results stream, with its schema and
    metadata: what a crashed run had flushed."""
    with open(path, "rb") as f:
        reader = pa.ipc.open_stream(f)
        batches = []
        while True:
            try:
                batches.append(reader.read_next_batch())
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError, EOFError):
                break  # the batch being written when the process died
        return pa.Table.from_batches(batches, schema=reader.schema)


def metadata(table_or_schema: pa.Table | pa.Schema) -> dict[str, Any]:
    schema = table_or_schema.schema if isinstance(table_or_schema, pa.Table) else table_or_schema
    return {k.decode(): json.loads(v) for k, v in (schema.metadata or {}).items()}
