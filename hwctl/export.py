"""``hwctl export RUN.parquet --hdf5 [OUT.h5]``: a run and its metadata in one HDF5 file.

A run is stored as Parquet (``hwctl sim --out``, ``hwctl node``/``hwctl demo`` results) with its
its metadata inside the Parquet file (docs/data.md: parameters, seed, code version, summary, the
bench's instrument snapshot; a ``<stem>.meta.json`` beside it is read too, for runs written before
the shared schema); verified pairs, when present, are in
``<stem>.pairs.parquet``. The export writes, as ARTIQ does for its results:

- ``/<table>/<column>``: one dataset per column (``requests``; ``pairs`` if present); integer
  columns keep their type (cycle timestamps stay int64/uint64, never floats), float columns with
  missing values hold NaN, a column of lists (e.g. ``herald_ts_cycles``) is a variable-length dataset,
  strings are UTF-8;
- ``/meta``: the metadata as a tree of groups whose attributes are the scalar values (lists become
  arrays, or a JSON string when mixed), so ``f["meta/instruments/instruments/voa/settings"].attrs``
  holds a VOA's settings;
- the root attribute ``meta_json``: the whole metadata as JSON, exactly as read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hwctl import argtypes
from hwctl.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN.parquet", help="a run's Parquet file")
    p.add_argument("--hdf5", metavar="OUT.h5", nargs="?", const="", default=None,
                   help="write HDF5 (default path: RUN.h5 beside the Parquet file)")
    p.add_argument("--force", action="store_true", help=argtypes.FORCE_HELP)


def read_run(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tables ({name: pyarrow.Table}) and metadata of a run stored at ``path``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise UserError(f"run file {str(path)!r} not found")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path}: not a Parquet file ({exc})") from None
    from hwctl.schema import decode_metadata

    meta: dict[str, Any] = decode_metadata(table.schema.metadata)
    stem = path.name.removesuffix(".parquet")
    side = path.with_name(f"{stem}.meta.json")
    if side.is_file():
        try:
            meta |= json.loads(side.read_text())
        except ValueError as exc:
            raise UserError(f"{side}: not valid JSON ({exc})") from None
    tables = {"requests": table.replace_schema_metadata(None)}
    pairs = path.with_name(f"{stem}.pairs.parquet")
    if pairs.is_file():
        tables["pairs"] = pq.read_table(pairs)
    return tables, meta


def _column(group: Any, name: str, col: Any) -> None:
    import h5py
    import numpy as np
    import pyarrow as pa

    t = col.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = t.value_type.to_pandas_dtype() if hasattr(t.value_type, "to_pandas_dtype") else float
        ds = group.create_dataset(name, (len(col),), dtype=h5py.vlen_dtype(np.dtype(inner)))
        for i, v in enumerate(col.to_pylist()):
            ds[i] = np.asarray(v or [], dtype=inner)
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        group.create_dataset(name, data=[("" if v is None else v) for v in col.to_pylist()],
                             dtype=h5py.string_dtype())
    elif pa.types.is_integer(t) and col.null_count == 0 or pa.types.is_boolean(t) \
            and col.null_count == 0:
        group.create_dataset(name, data=col.to_numpy())
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        group.create_dataset(name, data=np.asarray(
            [np.nan if v is None else float(v) for v in col.to_pylist()], dtype=np.float64))
    else:  # anything else (structs, dates...) as text, never silently dropped
        group.create_dataset(name, data=[json.dumps(v, default=str) for v in col.to_pylist()],
                             dtype=h5py.string_dtype())


def _attr_value(v: Any) -> Any:
    import numpy as np

    if v is None:
        return "null"
    if isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list) and v and all(isinstance(x, bool | int | float) for x in v):
        return np.asarray(v)
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return v
    return json.dumps(v, default=str)


def _meta(group: Any, meta: dict[str, Any]) -> None:
    for k, v in meta.items():
        key = str(k).replace("/", "_") or "_"
        if isinstance(v, dict):
            _meta(group.create_group(key), v)
        else:
            try:
                group.attrs[key] = _attr_value(v)
            except (TypeError, OverflowError):  # e.g. an int beyond int64
                group.attrs[key] = json.dumps(v, default=str)


def to_hdf5(run: Path, out: Path) -> Path:
    """Write ``run`` (+ its metadata and pairs) to ``out``; return ``out``."""
    import h5py

    tables, meta = read_run(run)
    tmp = out.with_name(out.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["source"] = str(run)
        f.attrs["meta_json"] = json.dumps(meta, default=str)
        for name, table in tables.items():
            g = f.create_group(name)
            g.attrs["rows"] = table.num_rows
            for col_name in table.column_names:
                _column(g, col_name, table.column(col_name).combine_chunks())
        _meta(f.create_group("meta"), meta)
    tmp.replace(out)  # atomic: a half-written file never has the final name
    return out


def run(args: argparse.Namespace) -> int:
    if args.hdf5 is None:
        raise UserError("choose an output format: --hdf5 [OUT.h5]")
    src = Path(args.run)
    if src.is_dir():  # e.g. the demo's output directory: name the run files in it
        runs = sorted(str(p) for p in src.glob("*.parquet"))
        raise UserError(f"{str(src)!r} is a directory; export takes one run file"
                        + (f": {', '.join(runs[:4])}{' ...' if len(runs) > 4 else ''}"
                           if runs else " (it holds no .parquet)"))
    out = Path(args.hdf5) if args.hdf5 else src.with_suffix(".h5")
    try:  # before the run is read
        argtypes.check_out_path(out, "--hdf5")
    except ValueError as exc:
        raise UserError(str(exc)) from None
    argtypes.refuse_existing([out], "--hdf5", force=args.force)
    path = to_hdf5(src, out)
    print(f"wrote {path}")
    return 0
