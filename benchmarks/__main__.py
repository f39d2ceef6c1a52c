"""Run the benchmarks and print one line per result; see benchmarks/RESULTS.md for figures."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time

#: benchmark modules, in run order (each benchmarks/bench_<name>.py)

MODULES = ["sim", "sweep", "verification", "link", "header_path", "hdr_block", "hdr_lab", "hdr_decode", "hdr_queue",
           "instruments", "node", "node_memory", "lab_step", "replay", "modelcheck", "crash"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("names", nargs="*", help=f"subset of {MODULES}")
    ap.add_argument("--json", action="store_true", help="print results as JSON")
    args = ap.parse_args(argv)
    names = args.names or MODULES
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {MODULES}", file=sys.stderr)
        return 2
    print(f"# {platform.node()} {platform.machine()} {platform.python_version()} "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    results = []
    failed = 0
    for name in names:
        mod = importlib.import_module(f"benchmarks.bench_{name}")
        for r in mod.run():
            results.append(r)
            failed += not r.get("met", True)
            print(f"{r['name']:55s} {r['value']:12.4g} {r['unit']:14s} "
                  f"baseline {r['baseline']:10.4g}  ratio {r['ratio']:8.2f}x  "
                  f"goal {r['goal']:>18s}  {'MET' if r['met'] else 'MISSED'}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    print(f"{len(results) - failed} goals met, {failed} missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
