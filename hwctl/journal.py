"""Request journal of a node service: its own requests, written as they happen, so that a node
killed and started again resumes them or expires them with a reason (issue 16;
docs/reliability.md "Request journal").

File ``<out>/<name>.journal.jsonl``: one JSON object per line.

- ``{"op": "life", "t", "pid", "rid_next"}``: a life of the node starts (``rid_next``: request
  ids below it were used by earlier lives); ``"cont"`` instead of ``"life"``: the same life,
  after a compaction;
- ``{"op": "sub", "rid", "remote", "pairs", "fidelity", "t"}``: a request submitted (``t``: its
  original submission time, kept across resumption);
- ``{"op": "done", "rid", "t"}``: completed (its row is in the results file);
- ``{"op": "exp", "rid", "t", "reason"}``: ended without its pairs, and why;
- ``{"op": "res", "rid", "as", "t"}``: an earlier life's open request continues as ``as``.

Crash safety. Each record is written and flushed to the kernel at once (a ``kill -9`` loses
nothing already written); ``fsync`` follows at most :data:`FSYNC_S` after a record and at most
once per :data:`FSYNC_S`, on the journal's own thread (:class:`hwctl.durable.Flusher`: the records
are written from the node's event loop, which an ``fsync`` of 3-5 ms would stall), and at close
(a machine crash loses at most the records of the last :data:`FSYNC_S`); a torn last line (the
process died inside a write) is ignored when read.
At each start the journal is compacted: the open requests are rewritten to a temporary file,
``fsync``ed and renamed over the old one (atomic), so the file stays small; a running node
compacts again once :data:`COMPACT_RECORDS` records have been written.

Policy at start (:func:`resume`): open requests of earlier lives no older than
:data:`RESUME_TTL_S` are submitted again under new ids (their submission time kept, so latency
counts the downtime); older ones are expired with reason ``node restarted after N s``. Request
ids continue after the largest one ever used, so a restarted node never reuses an id its peers
still remember.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hwctl.durable import Flusher, fsync_dir

if TYPE_CHECKING:
    from hwctl.node import NodeService
    from hwctl.protocols.base import Request

log = logging.getLogger(__name__)

#: an fsync at most this long after a record, and at most one per this long (s)
FSYNC_S = 1.0
#: open requests of an earlier life older than this are expired at start, not resumed (s)
RESUME_TTL_S = 30.0
#: records written before the running journal is compacted again
COMPACT_RECORDS = 20_000


@dataclass
class OpenRequest:
    rid: int
    remote: str
    pairs: int
    fidelity: float
    t: float


@dataclass
class JournalState:
    """What the journal says about earlier lives."""

    open: dict[int, OpenRequest] = field(default_factory=dict)
    max_rid: int = -1
    lives: int = 0
    records: int = 0
    torn: int = 0  # unreadable lines (a torn last write), ignored


def read_state(path: Path) -> JournalState:
    """Replay a journal file (missing file: empty state)."""
    st = JournalState()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return st
    for line in data.splitlines():
        try:
            r = json.loads(line)
            op = r["op"]
            if op in ("life", "cont"):
                st.lives += op == "life"
                st.max_rid = max(st.max_rid, int(r["rid_next"]) - 1)
            elif op == "sub":
                rid = int(r["rid"])
                st.open[rid] = OpenRequest(rid, str(r["remote"]), int(r["pairs"]),
                                           float(r["fidelity"]), float(r["t"]))
                st.max_rid = max(st.max_rid, rid)
            elif op in ("done", "exp", "res"):
                st.open.pop(int(r["rid"]), None)
            else:
                raise ValueError(op)
        except (ValueError, KeyError, TypeError):
            st.torn += 1
            continue
        st.records += 1
    return st


class RequestJournal:
    """Append-only journal of one node's requests (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.state = read_state(self.path)
        self._f = None
        self._last_sync = 0.0
        self._dirty = False
        self._written = 0
        self._open: dict[int, OpenRequest] = {}
        # the fsyncs behind the records: on the flusher's thread, on a dup of the file's fd
        # taken under _f_lock (a compaction replaces self._f on the caller's thread)
        self._f_lock = threading.Lock()
        self._flusher = Flusher(self._sync_behind, f"journal-{self.path.stem}")
        self.resumed = 0
        self.expired: dict[str, int] = {}

    # ------------------------------------------------------------------ writing
    def begin(self, rid_next: int, open_now: dict[int, OpenRequest], op: str = "life") -> None:
        """Compact: a header (``life``: a new life; ``cont``: the same life, compacted) and
        ``open_now``, atomically in place of the old file."""
        self._open = dict(open_now)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps({"op": op, "t": time.time(), "pid": os.getpid(),
                                "rid_next": rid_next}) + "\n")
            for r in self._open.values():
                f.write(json.dumps({"op": "sub", "rid": r.rid, "remote": r.remote,
                                    "pairs": r.pairs, "fidelity": r.fidelity, "t": r.t}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        with self._f_lock:
            if self._f is not None:
                self._f.close()
            self._f = open(self.path, "a")  # noqa: SIM115 (held open for the node's life)
        self._written = 0
        self._rid_next = rid_next

    def _write(self, rec: dict) -> None:
        f = self._f
        if f is None:
            return
        f.write(json.dumps(rec) + "\n")
        f.flush()  # in the kernel: survives kill -9
        self._dirty = True
        self._written += 1
        self._flusher.due(self._last_sync + FSYNC_S)
        if self._written >= COMPACT_RECORDS:
            self.begin(self._rid_next, self._open, "cont")

    def sync(self) -> None:
        if self._f is not None and self._dirty:
            os.fsync(self._f.fileno())
            self._dirty = False
        self._last_sync = time.monotonic()

    def _sync_behind(self) -> None:
        """:meth:`sync` on the flusher's thread, on a duplicate of the file's descriptor (a
        compaction may close ours meanwhile; the records written before the dup are in the
        kernel, so its fsync makes them durable)."""
        with self._f_lock:
            if self._f is None or not self._dirty:
                return
            fd = os.dup(self._f.fileno())
            self._dirty = False
        self._last_sync = time.monotonic()
        try:
            os.fsync(fd)
        except OSError as exc:  # the next record's fsync (or the one at close) tries again
            self._dirty = True
            log.warning("journal %s: fsync failed: %s", self.path, exc)
        finally:
            os.close(fd)

    def submitted(self, req: Request) -> None:
        self._open[req.rid] = OpenRequest(req.rid, req.remote, req.pairs, req.fidelity, req.t)
        self._rid_next = max(self._rid_next, req.rid + 1)
        self._write({"op": "sub", "rid": req.rid, "remote": req.remote, "pairs": req.pairs,
                     "fidelity": req.fidelity, "t": req.t})

    def completed(self, rid: int, t: float) -> None:
        if self._open.pop(rid, None) is not None:
            self._write({"op": "done", "rid": rid, "t": t})

    def expire(self, rid: int, cause: str, detail: str, t: float) -> None:
        """``rid`` ends without its pairs: counted by ``cause``, the record says
        ``cause: detail``."""
        self._open.pop(rid, None)
        self.expired[cause] = self.expired.get(cause, 0) + 1
        self._write({"op": "exp", "rid": rid, "t": t, "reason": f"{cause}: {detail}"})

    def close(self) -> None:
        """Flush and sync; open requests stay open in the file (a next life decides)."""
        self._flusher.close()  # after the fsync that is due by now, if any
        if self._f is not None:
            self.sync()
            self._f.close()
            self._f = None

    def snapshot(self) -> dict:
        return {"path": str(self.path), "open": len(self._open), "resumed": self.resumed,
                "expired": dict(self.expired), "earlier_lives": self.state.lives,
                "torn_lines": self.state.torn}


def resume(node: NodeService, journal: RequestJournal) -> None:
    """Start a node's life from its journal: request ids continue after every id used before;
    open requests of earlier lives are submitted again (new id, original time) or expired with
    a reason. Call before the node submits anything."""
    from hwctl.node import RequestRecord
    from hwctl.protocols.base import Request

    st = journal.state
    now = node.now()
    node._rid_next = max(node._rid_next, st.max_rid - node._rid_base + 1, 0)
    journal.begin(node._rid_base + node._rid_next + 1, {})
    peers = {p.name for p in node.cfg.peers}
    for old in sorted(st.open.values(), key=lambda r: (r.t, r.rid)):
        age = now - old.t
        if old.remote not in peers:
            cause, detail = "peer gone", f"{old.remote} is no longer a peer of this node"
        elif age > RESUME_TTL_S:
            cause, detail = "too old at restart", f"{age:.1f} s old (> {RESUME_TTL_S:g} s)"
        else:
            node._rid_next += 1
            req = Request(node._rid_base + node._rid_next, node.cfg.name, old.remote,
                          old.fidelity, old.pairs, old.t)
            node.records[req.rid] = RequestRecord(req.rid, req.initiator, req.remote, req.pairs,
                                                  req.fidelity, req.t)
            node.counters.requests += 1
            node._finished[req.rid] = asyncio.Event()
            journal._write({"op": "sub", "rid": old.rid, "remote": old.remote,
                            "pairs": old.pairs, "fidelity": old.fidelity, "t": old.t})
            journal._write({"op": "res", "rid": old.rid, "as": req.rid, "t": now})
            journal.submitted(req)
            journal.resumed += 1
            log.warning("%s: request %d of an earlier life resumed as %d (%.1f s old)",
                        node.cfg.name, old.rid, req.rid, age)
            node._apply(node.core.submit(req, now))
            continue
        journal._open[old.rid] = old
        journal.expire(old.rid, cause, detail, now)
        log.warning("%s: request %d of an earlier life expired (%s: %s)", node.cfg.name,
                    old.rid, cause, detail)
    journal.sync()
