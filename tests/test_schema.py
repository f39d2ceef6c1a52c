"""One data schema (hwctl.schema, docs/data.md): declared columns and types, embedded metadata,
strict JSON with proper types."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hwctl import cli, schema

DOCS = Path(__file__).resolve().parents[1] / "docs" / "data.md"


ALL = (schema.REQUESTS_COMMON, schema.REQUESTS_SIM, schema.REQUESTS_NODE, schema.PAIRS,
       schema.SWEEP_PARAMS, schema.RUNS)


def test_docs_list_every_column() -> None:
    text = DOCS.read_text()
    for cols in ALL:
        for c in cols:
            assert f"`{c.name}`" in text, f"docs/data.md does not list {c.name}"


def test_unit_suffixes_are_consistent() -> None:
    for cols in ALL:
        for c in cols:
            if c.unit == "s":
                assert c.name.endswith("_s"), c.name
            if c.unit == "ms":
                assert c.name.endswith("_ms"), c.name
            if c.unit == "cycles":
                assert c.name.endswith("_cycles") and c.type in ("int64", "list<uint64>"), c.name


def test_undeclared_column_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the schema"):
        schema.table("requests", "sim", {"rid": [1], "t_submit": [0.0]})
    with pytest.raises(ValueError):
        schema.columns("requests", "lab")


def test_table_casts_to_declared_types_and_fills_missing(tmp_path: Path) -> None:
    meta = schema.run_metadata("node", {"name": "A"}, seed=None, instruments={"voa": {"db": 3}})
    path = schema.write(tmp_path / "r.parquet", "requests", "node",
                        {"rid": [1, 2], "pairs": [3, 1], "latency_s": [0.5, math.nan]}, meta)
    t = pq.read_table(path)
    assert t.column_names == [c.name for c in schema.columns("requests", "node")]
    assert t.schema.field("pairs").type == pa.int64()
    assert t.column("initiator").null_count == 2
    back = schema.read_metadata(path)
    assert back["schema"] == "hwctl.requests" and back["schema_version"] == schema.SCHEMA_VERSION
    assert back["source"] == "node" and back["seed"] is None
    assert back["instruments"] == {"voa": {"db": 3}} and back["parameters"] == {"name": "A"}


def test_sim_file_has_exactly_the_schema(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run.parquet"
    assert cli.main(["sim", "--topology", "K3", "--duration", "1", "--seed", "4",
                     "--out", str(run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    t = pq.read_table(run)
    assert t.column_names == [c.name for c in schema.columns("requests", "sim")]
    for c in schema.columns("requests", "sim"):
        assert str(t.schema.field(c.name).type) == {"float64": "double"}.get(c.type, c.type)
    meta = schema.read_metadata(run)
    assert meta["seed"] == 4 and meta["parameters"]["seed"] == 4 and meta["source"] == "sim"
    assert meta["topology"] == "K3" and len(meta["edges"]) == 3 and meta["git_rev"]
    # --json: proper types, the same figures as the file's summary
    for key in ("requests", "open_requests", "pairs", "messages", "seed", "nodes", "edges"):
        assert type(out[key]) is int, key
    assert out["fidelity"] == 0.75 and out["duration_s"] == 1.0
    assert out["requests"] == meta["summary"]["requests"]
    assert out["requests"] == sum(1 for x in t.column("latency_s").to_pylist() if not math.isnan(x))


def test_json_is_strict_without_nan(capsys) -> None:
    # 1 ms: shorter than the first back-off, so no request completes and the means are NaN
    assert cli.main(["sim", "--topology", "K2", "--duration", "0.001", "--json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text
    out = json.loads(text)
    assert out["requests"] == 0 and out["mean_latency_ms"] is None


def _node_rows() -> list[dict]:
    from dataclasses import asdict

    from hwctl.node import RequestRecord

    done = RequestRecord(rid=1, initiator="A", remote="B", pairs=2, fidelity=0.75, t_submit=0.5,
                         t_syn=0.51, t_ack=0.52, t_min=0.53, t_pl_start=0.535, t_finish=0.6,
                         attempts=900, herald_ts=[10, 20])
    open_ = RequestRecord(rid=2, initiator="B", remote="A", pairs=1, fidelity=0.75, t_submit=0.7)
    return [asdict(r) | {"latency": r.latency} for r in (done, open_)]


def test_every_node_result_field_is_in_the_schema() -> None:
    from hwctl.node import PAIR_COLUMNS, REQUEST_COLUMNS

    assert set(_node_rows()[0]) == set(REQUEST_COLUMNS)
    declared = {c.name for c in schema.columns("requests", "node")}
    assert set(REQUEST_COLUMNS.values()) == declared
    assert set(PAIR_COLUMNS.values()) == {c.name for c in schema.PAIRS}


def test_the_writers_row_is_the_records_fields_in_the_schema() -> None:
    """The results writer's row (built on the node's event loop from a shallow copy of the
    record, not dataclasses.asdict) is the record's fields in the shared schema, its pair list
    a copy; the float columns come from a cache that a new registration empties."""
    from hwctl.node import RequestRecord
    from hwctl.node.results import ResultRows, schema_row

    for row in _node_rows():
        r = RequestRecord(**{k: v for k, v in row.items() if k != "latency"})
        got, want = ResultRows._row(r), schema_row(row)
        assert got.keys() == want.keys() and all(
            got[k] == want[k] or (math.isnan(got[k]) and math.isnan(want[k])) for k in got)
        assert got["herald_ts_cycles"] == r.herald_ts and got["herald_ts_cycles"] is not r.herald_ts
    assert "latency_s" in schema.float_columns("requests", "node")
    extra = schema.REQUESTS_NODE
    try:
        schema.register_columns("requests", "node", [*extra, schema.Column(
            "probe_s", "float64", "s", "a test column")])
        assert "probe_s" in schema.float_columns("requests", "node")
    finally:
        schema.register_columns("requests", "node", extra)
    assert "probe_s" not in schema.float_columns("requests", "node")


def test_sim_and_node_files_agree_on_shared_quantities(tmp_path: Path) -> None:
    """Zero schema differences for the quantities both write: same names, types and units."""
    from hwctl.node import write_results
    from hwctl.sim import topologies
    from hwctl.sim.network import SimConfig, simulate

    sim_path = simulate(topologies.by_name("K2"), SimConfig(duration=1, seed=3), "K2") \
        .to_parquet(tmp_path / "sim.parquet")
    node_path = write_results(_node_rows(), {"parameters": {"name": "A"}, "seed": 3,
                                             "summary": {"completed": 1}}, tmp_path / "node", "A")
    sim_t, node_t = pq.read_table(sim_path), pq.read_table(node_path)
    shared = set(sim_t.column_names) & set(node_t.column_names)
    assert shared == {c.name for c in schema.REQUESTS_COMMON}
    for name in shared:
        assert sim_t.schema.field(name).type == node_t.schema.field(name).type, name
    rows = node_t.to_pylist()
    assert rows[0]["t_request_s"] == 0.5 and rows[0]["pl_start_s"] == 0.535
    assert rows[0]["latency_s"] == pytest.approx(0.1) and rows[0]["herald_ts_cycles"] == [10, 20]
    assert math.isnan(rows[1]["latency_s"]) and math.isnan(rows[1]["t_finish_s"])  # as in sim
    sim_m, node_m = schema.read_metadata(sim_path), schema.read_metadata(node_path)
    for key in ("schema", "schema_version", "code_version", "git_rev", "parameters", "seed",
                "summary"):
        assert key in sim_m and key in node_m, key
    assert (sim_m["source"], node_m["source"]) == ("sim", "node") and node_m["seed"] == 3


def _plain(a: pa.Array) -> list:
    return [("nan" if isinstance(x, float) and math.isnan(x) else x) for x in a.to_pylist()]


@pytest.mark.parametrize("name,values", [
    ("int64", [1, -2, None, 2**63 - 1, -(2**63)]),
    ("int64", []),
    ("uint64", [0, 2**64 - 1, None]),
    ("float64", [0.5, float("nan"), None, 3, -(2**53), float("inf")]),
    ("bool", [True, None, False, True, False, False, True, True, False]),
    ("string", ["A", "", None, "Grüße ✓", "B" * 300]),
    ("list<int64>", [[1, 2], [], None, [2**62, -1]]),
    ("list<uint64>", [[2**64 - 1], None, []]),
])
def test_arrays_built_from_buffers_equal_pa_array(name: str, values: list) -> None:
    """schema.table builds columns from buffers (no pandas import): the same arrays as pa.array."""
    typ = schema._arrow_type(name)
    got = schema._from_buffers(values, name, typ)
    want = pa.array(values, type=typ)
    assert got is not None
    got.validate(full=True)
    assert got.type == want.type and got.null_count == want.null_count
    assert _plain(got) == _plain(want)


@pytest.mark.parametrize("name,values", [
    ("int64", [1.5]), ("int64", ["1"]), ("int64", [True]), ("int64", [2**64]),
    ("uint64", [-1]), ("float64", [2**60]), ("float64", ["x"]), ("bool", [1]),
    ("string", [b"x"]), ("list<int64>", [[1, None]]), ("list<int64>", [[1.5]]),
])
def test_values_pa_array_must_convert_are_left_to_it(name: str, values: list) -> None:
    """Values of another type or out of range: None, so pa.array converts (or refuses) them."""
    assert schema._from_buffers(values, name, schema._arrow_type(name)) is None


def test_writing_results_does_not_import_pandas(tmp_path: Path) -> None:
    """pa.array imports pandas on first use (~0.3 s of start-up); the schema's writer avoids it."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from hwctl.node import write_results; "
            f"write_results([], {{'parameters': {{}}}}, Path({str(tmp_path)!r}), 'A', pairs=[]); "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
