"""One data schema for every hwctl output (simulator, node service, demo), versioned.

A run is a Parquet file of **requests** (one row per entanglement request) and, where pairs are
verified, a Parquet file of **pairs**; a sweep (``hwctl sweep``) adds one **runs** row per
simulation run, and its requests rows carry the run's parameters. Both carry the run's metadata inside the file (Parquet
key-value metadata, every value a JSON document), so a file is self-describing:

========================  ====================================================================
key                       value
========================  ====================================================================
``schema``                ``"hwctl.requests"``, ``"hwctl.pairs"`` or ``"hwctl.runs"``
``schema_version``        :data:`SCHEMA_VERSION` (an int; bumped on any incompatible change)
``source``                ``"sim"``, ``"node"``, ``"demo"`` or ``"sweep"``
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
SOURCES = ("sim", "node", "demo", "sweep")


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
    Column("attempts", "int64", "attempts",
           "entanglement attempts both ends made on the request, up to its last pair"),
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
    Column("attempts_fired", "int64", "attempts",
           "attempts the initiator's device fired (before the remote joined and after the last "
           "pair too)"),
    Column("late", "int64", "", "schedules that reached the device too late (LATE)"),
    Column("restarts", "int64", "", "rounds restarted at both ends after a LATE"),
    Column("disagree", "int64", "pairs", "pairs not held at both ends (must be 0)"),
    Column("herald_ts_cycles", "list<uint64>", "cycles", "device cycle of each pair's herald"),
)

#: the parameters of a sweep run: a column each in every row a sweep writes (runs and requests),
#: so one ``pyarrow.dataset`` query can select by them (docs/esp-scale.md)
SWEEP_PARAMS: tuple[Column, ...] = (
    Column("topology", "string", "", "topology name (Table V names, NxM, ER:n:k[:seed], WAX:...)"),
    Column("nodes", "int64", "nodes", "|V|"),
    Column("edges", "int64", "links", "|E|: the links requests are made on (|E_Q|)"),
    Column("matching_number", "int64", "links", "matching number nu(G) (ESP paper Fig. 10)"),
    Column("protocol", "string", "", "dqp, esp or greedy (centralized greedy, zero control delay)"),
    Column("duration_s", "float64", "s", "simulated seconds of the run"),
    Column("replicate", "int64", "", "replicate index r; seed = base seed + r"),
    Column("seed", "int64", "", "the run's seed"),
    Column("code_version", "string", "", "hwctl version + git commit of the code that ran"),
)

#: extra request columns of a sweep (besides the shared ones: the simulator's pl_finish_s and the
#: run's parameters)
REQUESTS_SWEEP: tuple[Column, ...] = (REQUESTS_SIM[0], *SWEEP_PARAMS)

#: one row per sweep run: its parameters and the ESP paper's §VI-A metrics of the run (the names
#: of the simulator's ``summary``, :meth:`hwctl.sim.network.SimResult.compute_summary`)
RUNS: tuple[Column, ...] = (
    *SWEEP_PARAMS[:5],
    Column("fidelity", "float64", "", "requested fidelity F"),
    *SWEEP_PARAMS[5:],
    Column("requests", "int64", "requests", "requests completed"),
    Column("open_requests", "int64", "requests", "requests still open at the end"),
    Column("expired_requests", "int64", "requests", "requests dropped unfinished (expired)"),
    Column("mean_latency_ms", "float64", "ms", "mean latency L (eq. 3) of completed requests"),
    Column("jitter_ms", "float64", "ms", "jitter J (eq. 4): standard deviation of L"),
    Column("mean_scaled_latency_ms", "float64", "ms", "mean scaled latency SL = L / |R| (eq. 5)"),
    Column("mean_busy_ms", "float64", "ms", "mean time on the physical layer"),
    Column("mean_queue_ms", "float64", "ms", "mean time queued before the physical layer"),
    Column("throughput_per_edge_s", "float64", "1/s", "scaled throughput T (eq. 6): pairs "
           "delivered per link per simulated second"),
    Column("pairs", "int64", "pairs", "pairs delivered"),
    Column("messages", "int64", "messages", "control messages sent"),
    Column("messages_per_request", "float64", "messages", "messages / requests made"),
    Column("p99_latency_ms", "float64", "ms", "99th percentile of L"),
    Column("events", "int64", "events", "simulator events processed"),
)

_EXTRA: dict[str, dict[str, tuple[Column, ...]]] = {
    "requests": {"sim": REQUESTS_SIM, "node": REQUESTS_NODE, "demo": REQUESTS_NODE,
                 "sweep": REQUESTS_SWEEP},
    "pairs": {"sim": (), "node": (), "demo": ()},
    "runs": {"sweep": ()},
}
_BASE = {"requests": REQUESTS_COMMON, "pairs": PAIRS, "runs": RUNS}


def columns(kind: str, source: str) -> tuple[Column, ...]:
    """The columns a ``kind`` file (``requests`` / ``pairs`` / ``runs``) written by ``source``
    has, in order."""
    if kind not in _BASE:
        raise ValueError(f"unknown table kind {kind!r}; known: {sorted(_BASE)}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known: {SOURCES}")
    if source not in _EXTRA[kind]:
        raise ValueError(f"{source} writes no {kind} files")
    return _BASE[kind] + _EXTRA[kind][source]


#: (kind, source) -> names of its float64 columns (:func:`float_columns`; emptied when columns
#: are registered)
_FLOATS: dict[tuple[str, str], frozenset[str]] = {}


def float_columns(kind: str, source: str) -> frozenset[str]:
    """Names of the float64 columns of :func:`columns` (``kind``, ``source``), cached: a node
    asks once per results row, on its event loop."""
    key = (kind, source)
    got = _FLOATS.get(key)
    if got is None:
        got = _FLOATS[key] = frozenset(c.name for c in columns(kind, source)
                                       if c.type == "float64")
    return got


def register_columns(kind: str, source: str, extra: Sequence[Column]) -> None:
    """Declare ``source``'s extra columns of ``kind`` (the node service declares its own)."""
    taken = {c.name for c in _BASE[kind]}
    for c in extra:
        if c.name in taken:
            raise ValueError(f"column {c.name!r} is already a shared {kind} column")
    _EXTRA[kind][source] = tuple(extra)
    _FLOATS.clear()


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    if name.startswith("list<") and name.endswith(">"):
        return pa.list_(_arrow_type(name[5:-1]))
    return {"int64": pa.int64(), "uint64": pa.uint64(), "float64": pa.float64(),
            "string": pa.string(), "bool": pa.bool_()}[name]


#: numeric column types -> numpy dtypes (the ones :func:`_from_buffers` builds directly)
_NUMPY = {"int64": "int64", "uint64": "uint64", "float64": "float64"}


def _from_buffers(values: Any, name: str, typ: pa.DataType) -> pa.Array | None:
    """``pa.array(values, type=typ)`` for this schema's column types, built from buffers: the same
    array, but without ``pa.array``'s check for pandas objects, which imports pandas (~0.3 s of a
    command's start-up, e.g. ``hwctl replay --out``). None when the values need ``pa.array``'s
    general conversion (other types, a value of another Python type, a range error): the caller
    uses it then, so every error comes from pyarrow as before."""
    import numpy as np
    import pyarrow as pa

    if hasattr(values, "dtype"):
        if name in _NUMPY and values.dtype == np.dtype(_NUMPY[name]) and values.ndim == 1:
            data = np.ascontiguousarray(values)
            return pa.Array.from_buffers(typ, len(data), [None, pa.py_buffer(data)])
        return None
    vals = list(values)
    n = len(vals)
    nulls = [v is None for v in vals]
    k = sum(nulls)
    valid = None if not k else pa.py_buffer(
        np.packbits(~np.array(nulls, dtype=bool), bitorder="little"))
    try:
        if name in ("int64", "uint64"):
            lo, hi = (-(2**63), 2**63) if name == "int64" else (0, 2**64)
            if not all(type(v) is int and lo <= v < hi for v in vals if v is not None):
                return None
            data = np.array([0 if v is None else v for v in vals], dtype=_NUMPY[name])
            return pa.Array.from_buffers(typ, n, [valid, pa.py_buffer(data)], null_count=k)
        if name == "float64":
            if not all(type(v) is float or (type(v) is int and abs(v) <= 2**53)
                       for v in vals if v is not None):
                return None
            data = np.array([0.0 if v is None else v for v in vals], dtype=np.float64)
            return pa.Array.from_buffers(typ, n, [valid, pa.py_buffer(data)], null_count=k)
        if name == "bool":
            if not all(type(v) is bool for v in vals if v is not None):
                return None
            bits = np.packbits(np.array([v is True for v in vals], dtype=bool), bitorder="little")
            return pa.Array.from_buffers(typ, n, [valid, pa.py_buffer(bits)], null_count=k)
        if name == "string":
            if not all(type(v) is str for v in vals if v is not None):
                return None
            enc = [b"" if v is None else v.encode() for v in vals]
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum([len(x) for x in enc], out=offsets[1:])
            if offsets[-1] >= 2**31:
                return None
            return pa.Array.from_buffers(typ, n, [valid, pa.py_buffer(offsets.astype(np.int32)),
                                                  pa.py_buffer(b"".join(enc))], null_count=k)
        if name.startswith("list<") and name[5:-1] in _NUMPY:
            if not all(type(v) in (list, tuple) for v in vals if v is not None):
                return None
            flat = [x for v in vals if v is not None for x in v]
            if any(x is None for x in flat):
                return None
            child = _from_buffers(flat, name[5:-1], typ.value_type)
            if child is None:
                return None
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum([0 if v is None else len(v) for v in vals], out=offsets[1:])
            if offsets[-1] >= 2**31:
                return None
            return pa.Array.from_buffers(typ, n, [valid, pa.py_buffer(offsets.astype(np.int32))],
                                         null_count=k, children=[child])
    except (OverflowError, ValueError, TypeError):
        return None
    return None


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
        typ = _arrow_type(c.type)
        if values is None:
            arrays[c.name] = pa.nulls(n, typ)
        elif isinstance(values, pa.Array):
            arrays[c.name] = values.cast(typ)
        else:  # a list, or a numpy array (converted without a Python list)
            arr = _from_buffers(values, c.type, typ)
            arrays[c.name] = arr if arr is not None else pa.array(
                values if hasattr(values, "dtype") else list(values), type=typ)
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
                 instruments: Any = None, rev: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    """The metadata every run file carries (module docstring); ``extra`` adds source-specific
    entries (e.g. the demo's link health). ``rev``: the commit, when the caller knows it (a sweep
    worker: no ``git`` call per run); default :func:`git_rev`."""
    from hwctl import __version__

    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known: {SOURCES}")
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "code_version": __version__,
        "git_rev": git_rev() if rev is None else rev,
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
