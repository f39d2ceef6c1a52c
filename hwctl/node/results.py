"""Results of a node: rows in the shared schema (:mod:`hwctl.schema`, docs/data.md), the Parquet
writer of a run and the code version recorded with it."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

from hwctl.node.records import RequestRecord

#: node result row key -> schema column (hwctl.schema, docs/data.md); rows keep their in-memory names
REQUEST_COLUMNS = {"rid": "rid", "initiator": "initiator", "remote": "remote", "pairs": "pairs",
                   "fidelity": "fidelity", "t_submit": "t_request_s", "t_syn": "t_syn_s",
                   "t_ack": "t_ack_s", "t_min": "t_min_s", "t_pl_start": "pl_start_s",
                   "t_finish": "t_finish_s", "latency": "latency_s", "attempts": "attempts",
                   "fired": "attempts_fired", "late": "late", "restarts": "restarts", "disagree": "disagree",
                   "herald_ts": "herald_ts_cycles"}


PAIR_COLUMNS = {"node": "node", "partner": "partner", "seq": "seq", "slot": "slot",
                "store_ts": "store_ts_cycles", "verify_ts": "verify_ts_cycles",
                "fidelity": "fidelity"}


def _schema_cols(records: list[dict], names: dict[str, str], kind: str,
                 source: str) -> dict[str, list]:
    """In-memory rows -> schema columns (unknown times NaN, as the simulator writes them)."""
    from hwctl import schema

    floats = schema.float_columns(kind, source)
    return {col: [float("nan") if (r.get(key) is None and col in floats) else r.get(key)
                  for r in records] for key, col in names.items()}


def schema_row(row: dict, source: str = "node") -> dict:
    """One in-memory request row (:meth:`NodeService.result_rows`) as a row of the shared schema."""
    return {k: v[0] for k, v in _schema_cols([row], REQUEST_COLUMNS, "requests", source).items()}


#: the requests table of a node (``<name>.parquet``), as written by hwctl.results.ResultsWriter:
#: the shared schema (hwctl.schema, docs/data.md)
def requests_schema(source: str = "node"):
    from hwctl import schema

    return schema.table("requests", source, {}).schema.remove_metadata()


def write_results(rows: list[dict], meta: dict, out: Path, name: str = "requests",
                  pairs: list[dict] | None = None, source: str = "node", *,
                  requests: bool = True) -> Path:
    """Requests as ``<name>.parquet`` and, with ``pairs`` (verified pairs,
    :meth:`NodeService.pair_rows`), ``<name>.pairs.parquet``, both in the shared schema
    (:mod:`hwctl.schema`: unit-suffixed columns, unknown times NaN, herald cycles as int64 lists)
    with the run's metadata inside the file. ``meta`` may give ``parameters`` and ``seed``; its
    other keys are stored as they are. ``requests=False``: only the pairs (``hwctl node --out``
    writes the requests incrementally, :mod:`hwctl.results`)."""
    from hwctl import schema

    rest = dict(meta)
    full = schema.run_metadata(source, rest.pop("parameters", {}), seed=rest.pop("seed", None),
                               **rest)
    path = out / f"{name}.parquet"
    if requests:
        schema.write(path, "requests", source,
                     _schema_cols(rows, REQUEST_COLUMNS, "requests", source), full)
    if pairs is not None:
        schema.write(out / f"{name}.pairs.parquet", "pairs", source,
                     _schema_cols(pairs, PAIR_COLUMNS, "pairs", source), full)
    return path


def code_version() -> str:
    import subprocess

    from hwctl import __version__

    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=2, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"{__version__}+{rev}" if rev else __version__



class ResultRows:
    """Result rows of a :class:`NodeService`: the crash-safe writer's rows, the snapshot, the in-memory rows."""

    def _row_ready(self, rid: int, *, completed: bool = False, checked: bool = False) -> None:
        """A request's row goes to the results writer once it is completed *and* its pair lists
        were compared (``disagree`` final): at most ~1 s of rows is lost on a crash."""
        if self.results is None or rid not in self.records:
            return
        st = self._row_state.setdefault(rid, [False, False])
        st[0] |= completed
        st[1] |= checked
        if st[0] and st[1]:
            del self._row_state[rid]
            self._rows_written.add(rid)
            # after the current handler: _check_pairs updates the record's disagree first
            asyncio.get_running_loop().call_soon(self._write_row, rid)

    def _write_row(self, rid: int) -> None:
        if self.results is not None:
            self.results.append(self._row(self.records[rid]))

    @staticmethod
    def _row(r: RequestRecord) -> dict:
        """The results writer's row: the shared schema's columns (hwctl.schema). Built on the
        event loop once per completed request: a shallow copy of the record's fields (its one
        list copied), not ``dataclasses.asdict``'s recursive deep copy (48 of this row's 74 us
        on the loaded 2-vCPU VM; docs/reliability.md "Crash-safe results")."""
        d = dict(vars(r))
        d["latency"] = r.latency
        d["herald_ts"] = list(r.herald_ts)
        return schema_row(d)

    def unwritten_rows(self) -> list[dict]:
        """Rows the results writer has not had yet (open requests, unchecked pair lists)."""
        return [self._row(r) for rid, r in self.records.items() if rid not in self._rows_written]

    def snapshot(self) -> dict:
        d = asdict(self.counters)
        d["state"] = self.core.state.value
        d["clock_sync"] = self.clock_sync
        d["timing"] = self.timing.summary()
        d["recovery"] = self.recovery.snapshot()
        d["peers"] = self.liveness.snapshot()
        if self.journal is not None:
            d["journal"] = self.journal.snapshot()
        if self.backend is not None:
            # with the link-stamped latency segments (hwctl.nodetiming; replay leaves "link" out)
            d["link"] = {**self.backend.health(), "timing": self.timing.summary(link=True)}
        v = self.verification_summary()
        if v is not None:
            d["verification"] = v
        return d

    def result_rows(self) -> list[dict]:
        rows = []
        for r in self.records.values():
            d = asdict(r)
            d["latency"] = r.latency
            d["herald_ts"] = list(r.herald_ts)
            rows.append(d)
        return rows

