"""One data schema for every hwctl output (simulator, node service, demo), versioned.

A run is a Parquet file of **requests** (one row per entanglement request) and, where pairs are
verified, a Parquet file of **pairs**. Both carry the run's metadata inside the file (Parquet
key-value metadata, every value a JSON document), so a file is self-describing:

========================  ====================================================================
key                       value
========================  ====================================================================
``schema``                ``"hwctl.requests"`` or ``"hwctl.pairs"``
``schema_version``        :data:`SCHEMA_VERSION` (an int; bumped on any incompatible change)
``source``                ``"sim"``, ``"node"`` or ``"demo"``
``code_version``          the hwctl version
``git_rev``               the commit of the code that wrote the file (``"unknown"`` outside git)
``parameters``            the run's parameters (simulator config, node config, demo arguments)
``seed``                  the seed (int) or ``null``
``topology`` / ``edges``  the network, where known
``summary``               the figures the command reported (counts are ints)
``instruments``           the instrument snapshot (identity, settings, readings) when a bench ran
========================  ====================================================================

Column names carry their unit as a suffix (``_s`` seconds, ``_cycles`` device clock cycles); the
same quantity has the same name and unit whoever wrote it (docs/data.md lists every column). The
columns shared by all sources are :data:`REQUESTS_COMMON`; a source may add the extra columns
declared for it, and nothing else (:func:`table` refuses an undeclared column).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_VERSION = 1
SOURCES = ("sim", "node", "demo")


@dataclass(frozen=True)
class Column:
    """One column: name (unit suffix included), Arrow type name, unit, meaning."""

    name: str
    type: str
    unit: str
    doc: str


#: columns every requests file has (sim, node and demo alike)
REQUESTS_COMMON: tuple[Column, ...] = (
    Column("rid", "int64", "", "request id (unique per initiator within a run)"),
    Column("initiator", "string", "", "node that submitted the request"),
    Column("remote", "string", "", "the other end of the link"),
    Column("pairs", "int64", "pairs", "number of pairs requested |R|"),
    Column("fidelity", "float64", "", "requested fidelity F"),
    Column("t_request_s", "float64", "s",
           "submission time NL_start (ESP paper eq. (3)), from the run's start"),
    Column("pl_start_s", "float64", "s", "the physical layer starts attempts; NaN if never"),
    Column("t_finish_s", "float64", "s", "completion NL_finish (eq. (3)); NaN while open"),
    Column("latency_s", "float64", "s", "latency L = t_finish_s - t_request_s (eq. (3)); NaN while open"),
    Column("attempts", "int64", "attempts", "entanglement attempts spent on the request"),
)

#: extra request columns of the simulator
REQUESTS_SIM: tuple[Column, ...] = (
    Column("pl_finish_s", "float64", "s", "last pair heralded"),
    Column("scaled_latency_s", "float64", "s", "scaled latency SL = latency_s / pairs (ESP Sec. VI-C)"),
    Column("busy_s", "float64", "s", "time on the physical layer, pl_finish_s - pl_start_s"),
    Column("queue_s", "float64", "s", "time queued before the physical layer, pl_start_s - t_request_s"),
)

#: columns of a pairs file (verified pairs; pair-verification paper Sec. II-C)
PAIRS: tuple[Column, ...] = (
    Column("node", "string", "", "node that stored the qubit"),
    Column("partner", "string", "", "the node holding the other half"),
    Column("seq", "int64", "", "header sequence number of the pair"),
    Column("slot", "int64", "", "memory slot"),
    Column("store_ts_cycles", "int64", "cycles", "device time the qubit was stored"),
    Column("verify_ts_cycles", "int64", "cycles", "device time the pair was verified"),
    Column("fidelity", "float64", "", "fidelity at verification (memory decay model, Table I)"),
)

#: extra request columns of the node service and the demo (docs/node.md)
REQUESTS_NODE: tuple[Column, ...] = (
    Column("t_syn_s", "float64", "s", "last SYN sent (ESP handshake); NaN at the remote end"),
    Column("t_ack_s", "float64", "s", "SYN -> SYNACK -> ACK done at the initiator"),
    Column("t_min_s", "float64", "s", "agreed earliest start t_min of the physical layer"),
    Column("late", "int64", "", "schedules that reached the device too late (LATE)"),
    Column("restarts", "int64", "", "rounds restarted at both ends after a LATE"),
    Column("disagree", "int64", "pairs", "pairs not held at both ends (must be 0)"),
    Column("herald_ts_cycles", "list<uint64>", "cycles", "device cycle of each pair's herald"),
)

_EXTRA: dict[str, dict[str, tuple[Column, ...]]] = {
    "requests": {"sim": REQUESTS_SIM, "node": REQUESTS_NODE, "demo": REQUESTS_NODE},
    "pairs": {"sim": (), "node": (), "demo": ()},
}
_BASE = {"requests": REQUESTS_COMMON, "pairs": PAIRS}


def columns(kind: str, source: str) -> tuple[Column, ...]:
    """The columns a ``kind`` file (``requests`` / ``pairs``) written by ``source`` has, in order."""
    if kind not in _BASE:
        raise ValueError(f"unknown table kind {kind!r}; known: {sorted(_BASE)}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known: {SOURCES}")
    return _BASE[kind] + _EXTRA[kind][source]


def register_columns(kind: str, source: str, extra: Sequence[Column]) -> None:
    """Declare ``source``'s extra columns of ``kind`` (the node service declares its own)."""
    taken = {c.name for c in _BASE[kind]}
    for c in extra:
        if c.name in taken:
            raise ValueError(f"column {c.name!r} is already a shared {kind} column")
    _EXTRA[kind][source] = tuple(extra)


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    if name.startswith("list<") and name.endswith(">"):
        return pa.list_(_arrow_type(name[5:-1]))
    return {"int64": pa.int64(), "uint64": pa.uint64(), "float64": pa.float64(),
            "string": pa.string(), "bool": pa.bool_()}[name]


def table(kind: str, source: str, data: Mapping[str, Sequence[Any]],
          meta: Mapping[str, Any] | None = None) -> pa.Table:
    """An Arrow table of ``data`` in the schema's column order and types, with ``meta`` (see
    :func:`run_metadata`) embedded. Missing columns are filled with nulls; a column the schema does
    not declare for ``source`` is a ``ValueError`` (add it to the schema, and docs/data.md)."""
    import pyarrow as pa

    cols = columns(kind, source)
    known = {c.name for c in cols}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source} {kind}: columns not in the schema: {unknown}")
    n = len(next(iter(data.values()))) if data else 0
    arrays = {}
    for c in cols:
        values = data.get(c.name)
        arrays[c.name] = pa.array(list(values) if values is not None else [None] * n,
                                  type=_arrow_type(c.type))
    t = pa.table(arrays)
    return t.replace_schema_metadata(encode_metadata({**(meta or {}), "schema": f"hwctl.{kind}"}))


def git_rev() -> str:
    """The commit of the code (``git rev-parse --short HEAD`` beside this file), or ``unknown``."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_metadata(source: str, parameters: Mapping[str, Any], *, seed: int | None,
                 summary: Mapping[str, Any] | None = None, topology: str | None = None,
                 edges: Sequence[Sequence[str]] | None = None,
                 instruments: Any = None, **extra: Any) -> dict[str, Any]:
    """The metadata every run file carries (module docstring); ``extra`` adds source-specific
    entries (e.g. the demo's link health)."""
    from hwctl import __version__

    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known: {SOURCES}")
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "code_version": __version__,
        "git_rev": git_rev(),
        "parameters": dict(parameters),
        "seed": seed,
    }
    if topology is not None:
        meta["topology"] = topology
    if edges is not None:
        meta["edges"] = [list(e) for e in edges]
    if summary is not None:
        meta["summary"] = dict(summary)
    if instruments is not None:
        meta["instruments"] = instruments
    return meta | extra


def encode_metadata(meta: Mapping[str, Any]) -> dict[bytes, bytes]:
    """Parquet key-value metadata: every value as JSON."""
    return {k.encode(): json.dumps(v, default=str).encode() for k, v in meta.items()}


def decode_metadata(raw: Mapping[bytes, bytes] | None) -> dict[str, Any]:
    """The metadata of a Parquet schema (values that are not JSON are kept as text)."""
    meta: dict[str, Any] = {}
    for k, v in (raw or {}).items():
        key, text = k.decode(), v.decode(errors="replace")
        if key == "ARROW:schema":
            continue
        try:
            meta[key] = json.loads(text)
        except ValueError:
            meta[key] = text
    return meta


def write(path: str | Path, kind: str, source: str, data: Mapping[str, Sequence[Any]],
          meta: Mapping[str, Any]) -> Path:
    """Write ``data`` as a ``kind`` Parquet file of ``source`` with ``meta`` inside; return the path."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table(kind, source, data, meta), path)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The embedded metadata of a run file."""
    import pyarrow.parquet as pq

    return decode_metadata(pq.read_schema(path).metadata)
