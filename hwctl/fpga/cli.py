"""``hwctl fpga``: formal proofs, board bitstreams, flashing and the bring-up self-test.

    hwctl fpga prove [NAME ...]          SymbiYosys proofs of fpga/formal (all by default)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fpga_cmd", metavar="SUBCOMMAND")
    p = sub.add_parser("prove", help="run the SymbiYosys proofs of fpga/formal")
    p.add_argument("names", nargs="*", help="proofs by harness (e.g. sync_fifo) or harness:task")
    p.add_argument("--out", type=Path, default=None, help="keep the sby work directories here")
    p.set_defaults(_fpga=_run_prove)


def run(args: argparse.Namespace) -> int:
    fn = getattr(args, "_fpga", None)
    if fn is None:
        print("hwctl fpga: choose a subcommand (prove)", file=sys.stderr)
        return 2
    return int(fn(args))


def _run_prove(args: argparse.Namespace) -> int:
    from hwctl.fpga import formal

    proofs = formal.select(args.names)
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="hwctl-prove-")
        base = Path(tmp.name)
    else:
        base = args.out
    failed = 0
    try:
        for proof in proofs:
            res = formal.run_proof(proof, base / proof.sby / proof.task)
            print(f"{res.status:7s} {proof.name:28s} {res.seconds:6.1f} s  {proof.what}", flush=True)
            if not res.passed:
                failed += 1
                print(res.log_tail, file=sys.stderr)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 1 if failed else 0
