"""``hwctl sweep``: the ESP paper's whole evaluation grid (§VI-C) with replicates, resumable, on a
local process pool or a Dask distributed cluster.

Grid (defaults): the 14 topologies of Table V / Fig. 5 x F = 0.50, 0.55, ..., 0.90 x {DQP, ESP, the
centralized greedy scheduler} x N replicates, 120 s simulated per run. Replicate r of every cell
uses seed ``base_seed + r``, so DQP, ESP and the greedy scheduler of one replicate see the same
random streams (common random numbers) and replicate 0 with base seed 1 is ``hwctl sim --seed 1``.

Dataset (one directory, a Parquet dataset readable with ``pyarrow.dataset.dataset(DIR/"runs")``):

- ``runs/<key>.parquet``: one row per run, the run's parameters (topology, |V|, |E|, matching
  number, protocol, fidelity, duration, replicate, seed), code version and the §VI-A metrics.
- ``requests/<key>.parquet``: one row per request of the run (eqs. 3, 5, 7, 8 inputs), with the
  same parameter, seed and code-version columns (omitted with ``--no-requests``).

Both are in the shared schema (:mod:`hwctl.schema`, ``source = "sweep"``, docs/data.md): the
requests have the simulator's column names and types, and every file carries the run metadata
(parameters, seed, code version, and for runs the summary). A dataset written before the schema is
refused on resume with one line (:func:`check_dataset`).
- ``timings.jsonl``: wall time and event count of each run as it was executed (not results: wall
  time is the only part of a run that is not a function of its parameters).
- ``sweep.json``: the grid and command line of the last invocation; ``complete`` is false until
  all its runs are there (``hwctl report`` says when it is not), then its totals.

Every result file is a pure function of (parameters, seed, code): workers return the Parquet bytes
and the driver writes them, so the local pool and a Dask cluster give byte-identical files
(``tests/test_sweep.py``). A run whose ``runs/<key>.parquet`` exists is skipped, so an interrupted
sweep resumes where it stopped and adding replicates runs only the new ones. Files are written to a
temporary name and renamed, so a killed sweep never leaves a half-written run behind.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from hwctl import __version__, argtypes
from hwctl.errors import UserError
from hwctl.output import progress as progress_bar

#: F = 0.50 ... 0.90 in 0.05 steps (§VI-C)
FIDELITIES = [round(0.5 + 0.05 * k, 2) for k in range(9)]
PROTOCOLS = ("dqp", "esp", "greedy")
#: relative cost per edge of one simulated second, for longest-first ordering (measured roughly)
_PROTOCOL_COST = {"esp": 1.0, "dqp": 0.3, "greedy": 0.35}


@dataclass(frozen=True)
class RunSpec:
    """One simulation run of the grid."""

    topology: str
    protocol: str
    fidelity: float
    duration: float
    replicate: int
    seed: int
    code_version: str
    requests: bool = True

    @property
    def key(self) -> str:
        """File-name-safe identity of the run (every parameter that changes its result)."""
        topo = self.topology.replace(",", "_").replace(":", "-")
        return (f"{topo}__{self.protocol}__F{self.fidelity:g}__t{self.duration:g}"
                f"__s{self.seed}")

    def cost(self) -> float:
        return _edges(self.topology) * self.duration * _PROTOCOL_COST.get(self.protocol, 1.0) * (
            1.6 - self.fidelity)


@dataclass(frozen=True)
class RunOutput:
    key: str
    run: bytes
    requests: bytes | None
    wall_s: float
    events: int
    cpu_s: float = 0.0  # CPU time of the worker for this run (wall time includes waiting)


# ------------------------------------------------------------------------------------------------
# one run (executes on a worker: a pool process or a Dask worker)

@lru_cache(maxsize=64)
def _graph(topology: str):
    from hwctl.sim import topologies

    return topologies.by_name(topology)


@lru_cache(maxsize=64)
def _matching_number(topology: str) -> int:
    from hwctl.sim import topologies

    return topologies.matching_number(_graph(topology))


@lru_cache(maxsize=256)
def _edges(topology: str) -> int:
    return _graph(topology).number_of_edges()


#: the simulator's summary figures stored per run (columns of :data:`hwctl.schema.RUNS`)
RUN_METRICS = ["requests", "open_requests", "expired_requests", "mean_latency_ms", "jitter_ms",
               "mean_scaled_latency_ms", "mean_busy_ms", "mean_queue_ms",
               "throughput_per_edge_s", "pairs", "messages"]


def _parquet_bytes(table) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _param_columns(spec: RunSpec, n: int, graph_info: dict[str, int]) -> dict[str, list]:
    """The run's parameters as ``n`` rows (:data:`hwctl.schema.SWEEP_PARAMS`)."""
    return {
        "topology": [spec.topology] * n,
        "nodes": [graph_info["nodes"]] * n,
        "edges": [graph_info["edges"]] * n,
        "matching_number": [graph_info["matching_number"]] * n,
        "protocol": [spec.protocol] * n,
        "duration_s": [spec.duration] * n,
        "replicate": [spec.replicate] * n,
        "seed": [spec.seed] * n,
        "code_version": [spec.code_version] * n,
    }


def _metadata(spec: RunSpec, summary: dict | None = None) -> dict[str, Any]:
    """The shared run metadata (:func:`hwctl.schema.run_metadata`), a pure function of the spec:
    the commit comes from ``spec.code_version``, not from a ``git`` call on the worker."""
    from hwctl import schema

    params = {k: v for k, v in asdict(spec).items() if k != "requests"}
    return schema.run_metadata("sweep", params, seed=spec.seed, summary=summary,
                               topology=spec.topology,
                               rev=spec.code_version.partition("+")[2] or "unknown")


def run_one(spec: RunSpec) -> RunOutput:
    """Simulate one run and return its Parquet rows (a pure function of ``spec``) and timing:
    a ``runs`` row and the ``requests`` rows in the shared schema (:mod:`hwctl.schema`, source
    ``sweep``, docs/data.md)."""
    import math

    import numpy as np

    from hwctl import schema
    from hwctl.sim.network import SimConfig, simulate

    cpu0 = time.process_time()
    g = _graph(spec.topology)
    res = simulate(g, SimConfig(protocol=spec.protocol, fidelity=spec.fidelity,
                                duration=spec.duration, seed=spec.seed), spec.topology)
    info = {"nodes": g.number_of_nodes(), "edges": g.number_of_edges(),
            "matching_number": _matching_number(spec.topology)}
    summ = res.summary
    done = [r.t_finish - r.t_request for r in res.records if r.done]
    run_cols: dict[str, list] = {**_param_columns(spec, 1, info), "fidelity": [spec.fidelity]}
    for name in RUN_METRICS:
        run_cols[name] = [summ[name]]
    n_req = len(res.records)
    run_cols["messages_per_request"] = [res.messages / n_req if n_req else math.nan]
    run_cols["p99_latency_ms"] = [float(np.percentile(done, 99)) * 1e3 if done else math.nan]
    run_cols["events"] = [res.events]
    run_bytes = _parquet_bytes(schema.table("runs", "sweep", run_cols, _metadata(spec, summ)))
    req_bytes = None
    if spec.requests:
        cols = res.columns()
        req_cols = {k: cols[k] for k in ("rid", "initiator", "remote", "pairs", "fidelity",
                                         "t_request_s", "pl_start_s", "pl_finish_s",
                                         "t_finish_s", "latency_s", "attempts")}
        req_cols.update(_param_columns(spec, n_req, info))
        req_bytes = _parquet_bytes(schema.table("requests", "sweep", req_cols, _metadata(spec)))
    return RunOutput(spec.key, run_bytes, req_bytes, res.wall_seconds, res.events,
                     time.process_time() - cpu0)


def check_dataset(out_dir: Path) -> None:
    """A sweep resumes only into a dataset of the same format: runs written before the shared
    schema (or with another schema version) are one clear error, not a mixed dataset."""
    from hwctl import schema

    runs = [p for p in sorted((Path(out_dir) / "runs").glob("*.parquet")) if _whole(p)]
    if not runs:  # (damaged files are run again: pending)
        return
    try:
        meta = schema.read_metadata(runs[0])
    except Exception as exc:  # not Parquet at all
        raise UserError(f"{out_dir}: {runs[0].name} is not a readable sweep file ({exc})") from None
    if meta.get("schema") != "hwctl.runs" or meta.get("schema_version") != schema.SCHEMA_VERSION:
        found = (f"schema version {meta['schema_version']}" if "schema_version" in meta
                 else "the format before the shared schema")
        raise UserError(f"{out_dir} holds a sweep dataset in {found}; this hwctl writes schema "
                        f"version {schema.SCHEMA_VERSION} (docs/data.md) and does not mix them: "
                        f"sweep into a new --out directory, or delete {out_dir}/runs and "
                        f"{out_dir}/requests to recompute")


# ------------------------------------------------------------------------------------------------
# planning and execution (driver side)

def code_version() -> str:
    """hwctl version plus the git commit of the code that runs (``-dirty`` if modified)."""
    rev = "nogit"
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=10"],
                             capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        rev = out.stdout.strip() or rev
    except (OSError, subprocess.SubprocessError):
        pass
    return f"{__version__}+{rev}"


def plan(topologies: Sequence[str], fidelities: Sequence[float], protocols: Sequence[str],
         replicates: int = 1, base_seed: int = 1, duration: float = 120.0,
         requests: bool = True, version: str | None = None) -> list[RunSpec]:
    """Every run of the grid, in (topology, fidelity, protocol, replicate) order."""
    from hwctl.sim.network import PROTOCOL_ALIASES, SimConfig
    from hwctl.sim.network import PROTOCOLS as SIM_PROTOCOLS
    from hwctl.sim.topologies import canonical

    version = code_version() if version is None else version
    topologies = list(dict.fromkeys(canonical(t) for t in topologies))  # 2X2 is 2x2's run
    protos = [PROTOCOL_ALIASES.get(p, p) for p in protocols]
    for p in protos:
        if p not in SIM_PROTOCOLS:
            raise UserError(f"unknown protocol {p!r}: use {', '.join(SIM_PROTOCOLS)}")
    if replicates < 1:
        raise UserError("--replicates must be >= 1")
    for f in fidelities:
        try:
            SimConfig(fidelity=f, duration=duration).validate()
        except ValueError as exc:
            raise UserError(str(exc)) from None
    for t in topologies:
        _graph(t)  # raises UserError for a bad name
    return [RunSpec(t, p, float(f), float(duration), r, base_seed + r, version, requests)
            for t in topologies for f in fidelities for p in dict.fromkeys(protos)
            for r in range(replicates)]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C mid-write: no half-written temporary left behind
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class SweepStats:
    planned: int
    skipped: int
    ran: int
    wall_s: float
    events: int
    run_wall_s: float
    executor: str
    cpu_s: float = 0.0


def _whole(path: Path) -> bool:
    """``path`` exists and ends with Parquet's footer magic: not cut short (a disk that filled,
    a copy interrupted; this sweep writes atomically, so only a damage from outside)."""
    try:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            return f.read(4) == b"PAR1"
    except OSError:  # missing, or shorter than 4 bytes
        return False


def pending(specs: Iterable[RunSpec], out_dir: Path) -> list[RunSpec]:
    """The runs whose result file does not exist yet, or is damaged (cut short): those are run
    again, and their file replaced."""
    runs = Path(out_dir) / "runs"
    return [s for s in specs if not _whole(runs / f"{s.key}.parquet")]


def damaged(specs: Iterable[RunSpec], out_dir: Path) -> list[Path]:
    """Run files of ``specs`` that exist but are cut short."""
    runs = Path(out_dir) / "runs"
    paths = [runs / f"{s.key}.parquet" for s in specs]
    return [p for p in paths if p.exists() and not _whole(p)]


def execute(specs: Sequence[RunSpec], out_dir: Path, *, jobs: int = 1,
            scheduler: str | None = None, progress: bool = False) -> SweepStats:
    """Run every spec whose result is missing, write its files as it finishes."""
    out_dir = Path(out_dir)
    check_dataset(out_dir)
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    (out_dir / "requests").mkdir(parents=True, exist_ok=True)
    bad = damaged(specs, out_dir)
    if bad:  # (hwctl report refuses them: say why they run again)
        print(f"hwctl sweep: {len(bad)} run file(s) are damaged (cut short), run again: "
              f"{', '.join(p.name for p in bad[:3])}{' ...' if len(bad) > 3 else ''}",
              file=sys.stderr)
    todo = sorted(pending(specs, out_dir), key=lambda s: -s.cost())
    # what runs them (as below: no pool for one run, and a pool of at most one per run)
    executor = f"dask {scheduler}" if scheduler else (
        f"pool x{min(jobs, len(todo))}" if jobs > 1 and len(todo) > 1 else "serial")
    stats = SweepStats(len(specs), len(specs) - len(todo), 0, 0.0, 0, 0.0, executor)
    t0 = time.perf_counter()
    with progress_bar(progress, eta=True) as bar, open(out_dir / "timings.jsonl", "a") as tlog:
        task = bar.add_task(f"sweep ({stats.skipped} of {len(specs)} runs already done)",
                            total=len(todo))

        def done(out: RunOutput) -> None:
            if out.requests is not None:
                _write_atomic(out_dir / "requests" / f"{out.key}.parquet", out.requests)
            _write_atomic(out_dir / "runs" / f"{out.key}.parquet", out.run)
            tlog.write(json.dumps({"key": out.key, "wall_s": round(out.wall_s, 4),
                                   "cpu_s": round(out.cpu_s, 4), "events": out.events,
                                   "executor": executor}) + "\n")
            tlog.flush()
            stats.ran += 1
            stats.events += out.events
            stats.run_wall_s += out.wall_s
            stats.cpu_s += out.cpu_s
            bar.advance(task)

        if scheduler:
            _run_dask(todo, scheduler, done)
        elif jobs > 1 and len(todo) > 1:
            _run_pool(todo, jobs, done)
        else:
            for spec in todo:
                done(run_one(spec))
    stats.wall_s = time.perf_counter() - t0
    return stats


def _run_pool(todo: Sequence[RunSpec], jobs: int, done: Callable[[RunOutput], None]) -> None:
    """``todo`` on ``jobs`` worker processes, longest first, ``done`` per result as it comes.
    On Ctrl-C (or a failed run) the workers are stopped at once (:mod:`hwctl.pool`): runs in
    progress are dropped (their files were never written), finished runs are kept."""
    from hwctl.pool import stoppable_pool

    with stoppable_pool(jobs, len(todo), prog="hwctl sweep") as imap:
        for out in imap(run_one, todo):
            done(out)


def _run_dask(todo: Sequence[RunSpec], address: str, done: Callable[[RunOutput], None]) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise UserError("--scheduler needs dask.distributed: pip install 'hwctl[dask]'") from None
    print(f"hwctl sweep: connecting to the Dask scheduler at {address} (up to 20 s)",
          file=sys.stderr, flush=True)  # (a wrong address was 20 s of a bar at 0, silent)
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
    try:
        futs = [client.submit(run_one, s, key=f"hwctl-sweep-{s.key}", priority=int(s.cost()),
                              pure=False)
                for s in todo]
        for fut in as_completed(futs):
            done(fut.result())
            fut.release()
    except KeyboardInterrupt:
        print(f"hwctl sweep: interrupted: cancelling {len(futs)} run(s) on the Dask cluster; "
              f"finished runs are kept", file=sys.stderr, flush=True)
        client.cancel(futs)
        raise
    finally:
        client.close()


# ------------------------------------------------------------------------------------------------
# CLI

#: address schemes of a Dask scheduler (``--scheduler``)
DASK_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=argtypes.out_dir, default=Path("sweep"),
                   help="dataset directory: runs/*.parquet (a row per run), "
                        "requests/*.parquet, timings.jsonl, sweep.json (docs/data.md; default "
                        "./sweep); re-running skips finished runs")
    p.add_argument("--replicates", type=argtypes.integer(1, 100_000, what="--replicates"),
                   default=1, help="seeded replicates per cell (default 1: one run per cell, no confidence intervals)")
    p.add_argument("--seed", type=argtypes.seed, default=1,
                   help="base seed: replicate r uses seed + r (default 1)")
    p.add_argument("--duration", type=argtypes.duration(argtypes.MAX_SIM_S), default=120.0,
                   help="simulated seconds per run (default 120)")
    p.add_argument("--topologies", nargs="+", metavar="T",
                   help="topologies (default: the paper's 14); also NxM grids, ER:n:k[:seed], "
                        "WAX:n:k[:seed]")
    p.add_argument("--fidelities", nargs="+", type=argtypes.fidelity, metavar="F",
                   help="fidelities (default 0.50 0.55 ... 0.90)")
    p.add_argument("--protocols", nargs="+", metavar="P", default=list(PROTOCOLS),
                   help="dqp esp greedy (default all three; 'oracle' is a deprecated alias of "
                        "greedy)")
    p.add_argument("--jobs", type=argtypes.integer(1, 256, what="--jobs"),
                   default=os.cpu_count() or 1,
                   help="local worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on this Dask distributed scheduler instead of the local pool (workers "
                        "need the same hwctl installed)")
    p.add_argument("--no-requests", action="store_true",
                   help="store only per-run rows, not per-request rows (Fig. 7 needs them)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true",
                   help="print the run counts and timings as one JSON document on stdout")


def run(args: argparse.Namespace) -> int:
    from concurrent.futures.process import BrokenProcessPool

    from hwctl.sim.topologies import PAPER_TOPOLOGIES

    if args.scheduler and args.scheduler.partition("://")[0] not in DASK_SCHEMES:
        raise UserError(f"--scheduler {args.scheduler!r}: expected tcp://host:port (a Dask "
                        f"scheduler; also {', '.join(f'{x}://' for x in DASK_SCHEMES[1:])})")
    if "oracle" in args.protocols:
        print("hwctl sweep: 'oracle' is deprecated, it is the centralized greedy scheduler: "
              "use 'greedy'", file=sys.stderr)
    specs = plan(args.topologies or PAPER_TOPOLOGIES, args.fidelities or FIDELITIES,
                 args.protocols, args.replicates, args.seed, args.duration,
                 requests=not args.no_requests)
    before = len(specs) - len(pending(specs, args.out))
    argv = getattr(args, "_argv", None)
    again = ("hwctl " + shlex.join(argv)) if argv else "the same command"
    manifest = {
        "topologies": list(dict.fromkeys(s.topology for s in specs)),
        "fidelities": list(dict.fromkeys(s.fidelity for s in specs)),
        "protocols": list(dict.fromkeys(s.protocol for s in specs)),
        "replicates": args.replicates, "base_seed": args.seed, "duration_s": args.duration,
        "code_version": specs[0].code_version if specs else code_version(),
        "planned": len(specs),
        # false until every run of this invocation is there: `hwctl report` says so
        "complete": False, "command": again,
    }
    check_dataset(args.out)  # (a dataset this hwctl refuses keeps its sweep.json)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.json").write_text(json.dumps(manifest, indent=2) + "\n")
    try:
        stats = execute(specs, args.out, jobs=args.jobs, scheduler=args.scheduler,
                        progress=not args.quiet)
    except (KeyboardInterrupt, BrokenProcessPool) as exc:  # finished runs are whole files:
        kept = len(specs) - len(pending(specs, args.out))  # say so, and how to go on
        why = ("stopped" if isinstance(exc, KeyboardInterrupt) else
               "a worker process died (killed, or out of memory?)")
        print(f"hwctl sweep: {why}; {kept} of {len(specs)} runs are in {args.out} "
              f"({kept - before} new; whole runs only). Resume with: {again}",
              file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    manifest |= {"complete": True, "last_invocation": asdict(stats)}
    (args.out / "sweep.json").write_text(json.dumps(manifest, indent=2) + "\n")
    rate = stats.events / stats.run_wall_s if stats.run_wall_s else 0.0
    if args.json:
        from hwctl.output import print_json

        print_json({**asdict(stats), "events_per_s_per_worker": rate, "out": str(args.out)})
        return 0
    print(f"{stats.ran} runs done, {stats.skipped} already there, of {stats.planned}; "
          f"{stats.wall_s:.1f} s wall on {stats.executor} ({stats.cpu_s:.1f} s CPU in the "
          f"runs); {stats.events:,} events, {rate:,.0f} events/s per worker")
    print(f"dataset: {args.out}/runs (one row per run), {args.out}/requests; "
          f"next: hwctl report {args.out}")
    return 0
