"""``hwctl fpga``: formal proofs, board bitstreams, flashing and the bring-up self-test.

    hwctl fpga prove [NAME ...]          SymbiYosys proofs of fpga/formal (all by default)
    hwctl fpga boards                    the supported boards, their clocks and pins
    hwctl fpga build --board NAME        bitstream + report (resources, Fmax vs the board clock)
    hwctl fpga flash --board NAME        program it with openFPGALoader
    hwctl fpga selftest URL              bring-up check over the host link, a line per block
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from hwctl import argtypes
from hwctl.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fpga_cmd", metavar="SUBCOMMAND")
    p = sub.add_parser("prove", help="run the SymbiYosys proofs of fpga/formal (shipped in the "
                                     "wheel as hwctl/formal)")
    p.add_argument("names", nargs="*", help="proofs by harness (e.g. sync_fifo), harness:task, or "
                                         "harness:group for a proof split into parts (e.g. "
                                         "pair_sched:join, its 21 t_start tasks)")
    p.add_argument("--out", type=argtypes.out_dir, default=None,
                   help="keep the sby work directories here (default: a temporary directory, "
                        "removed when the proofs end)")
    p.add_argument("--dry-run", action="store_true",
                   help="stage the RTL and harnesses (in --out, else a temporary directory) and "
                        "print each proof's sby command; run no solver")
    p.set_defaults(_fpga=_run_prove)

    from hwctl.fpga.boards import BOARDS, ECP5_DEVICES

    p = sub.add_parser("boards", help="list the supported boards")
    p.set_defaults(_fpga=_run_boards)
    p = sub.add_parser("build", help="bitstream for a board (yosys, nextpnr, icepack/ecppack)")
    p.add_argument("--board", required=True, choices=sorted(BOARDS),
                   help="board to build for (`hwctl fpga boards` lists them)")
    p.add_argument("--out", type=argtypes.out_dir, default=None,
                   help="directory for the bitstream (board.bin / board.bit), the tool "
                        "logs and report_board.json (default build/fpga/BOARD)")
    p.add_argument("--seed", type=argtypes.integer(0, 2**31 - 1, what="--seed"), default=1,
                   help="nextpnr placement seed (default 1)")
    p.add_argument("--seeds", type=argtypes.integer(1, 100, what="--seeds"), default=3,
                   help="placement seeds to try, from --seed up, until one places and meets "
                        "the device clock (default 3; a seed that meets ends the build)")
    p.add_argument("--device", choices=ECP5_DEVICES, default=None,
                   help="ULX3S FPGA size (default 85k)")
    from hwctl.wire.features import PROFILES

    p.add_argument("--profile", choices=list(PROFILES), default=None,
                   help="build profile (fpga/README.md, 'Build profiles'; default: esp on "
                        "hx8k_breakout, full on ulx3s)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--pins-only", action="store_true",
                   help="check only the pin map: a stub with the board top's ports through "
                        "yosys and nextpnr with the PCF / LPF (seconds; what CI runs)")
    p.add_argument("--dry-run", action="store_true",
                   help="stage the sources and constraints in OUT/src and print the yosys, "
                        "nextpnr and pack commands; run no tool, write no report")
    p.set_defaults(_fpga=_run_build)
    p = sub.add_parser("flash", help="program a board's bitstream with openFPGALoader")
    p.add_argument("--board", required=True, choices=sorted(BOARDS),
                   help="board to program (`hwctl fpga boards` lists them)")
    p.add_argument("--bitstream", type=Path, default=None,
                   help="bitstream file (default: build/fpga/BOARD/board.bin|bit)")
    p.add_argument("--write-flash", action="store_true",
                   help="write the configuration flash (survives power-off) instead of SRAM")
    p.set_defaults(_fpga=_run_flash)
    p = sub.add_parser("selftest", help="bring-up check over the host link (PASS/FAIL per block)")
    p.add_argument("url", help="device URL, e.g. serial:///dev/ttyUSB1 or twin://?mode=realtime")
    p.add_argument("--board", choices=sorted(BOARDS), default=None,
                   help="take the expected clock from this board (e.g. 100.5 MHz on hx8k_breakout)")
    p.add_argument("--clock-hz", type=argtypes.integer(1, 10**10, what="--clock-hz"), default=None,
                   help="expected device clock, Hz (default: the board's, else 100 MHz)")
    p.add_argument("--rate-s", type=argtypes.real(0.0, 600.0, lo_open=True, what="--rate-s"),
                   default=1.0, help="host seconds for the rate check (default 1)")
    p.add_argument("--timeout", type=argtypes.real(0.0, 3600.0, lo_open=True, what="--timeout"),
                   default=5.0, help="seconds to wait for an event (default 5)")
    p.add_argument("--cosim", action="store_true",
                   help="the URL is the RTL co-simulation (sim/twin/cosim.py): schedules in "
                        "simulator-sized cycles, wait for events without a wall-clock bound, "
                        "no host-clock rate check")
    p.set_defaults(_fpga=_run_selftest)


def run(args: argparse.Namespace) -> int:
    fn = getattr(args, "_fpga", None)
    if fn is None:
        print("hwctl fpga: error: choose a subcommand: prove, boards, build, flash, selftest "
              "(see hwctl fpga --help)", file=sys.stderr)
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
            if args.dry_run:
                sby = formal.stage(base / proof.sby / proof.task) / f"{proof.sby}.sby"
                missing = [f.name for f in [sby, *formal.sby_files(sby)] if not f.is_file()]
                if missing:
                    failed += 1
                    print(f"MISSING {proof.name:28s} {', '.join(missing)}", flush=True)
                else:
                    print(f"staged  {proof.name:28s} sby -f {sby.name} {proof.task}", flush=True)
                continue
            res = formal.run_proof(proof, base / proof.sby / proof.task)
            print(f"{res.status:7s} {proof.name:28s} {res.seconds:6.1f} s ({res.cpu:6.1f} s CPU)  "
                  f"{proof.what}", flush=True)
            if not res.passed:
                failed += 1
                print(res.log_tail, file=sys.stderr)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 1 if failed else 0


def _default_dir(board: str) -> Path:
    return Path("build") / "fpga" / board


def _run_boards(args: argparse.Namespace) -> int:
    from hwctl.fpga.boards import BOARDS

    for b in BOARDS.values():
        print(f"{b.name:14s} {b.title}: {b.osc_hz / 1e6:g} MHz oscillator -> device clock "
              f"{b.clock_hz / 1e6:g} MHz ({b.pll}); pins {b.dir / b.constraints}")
    return 0


def _run_build(args: argparse.Namespace) -> int:
    import json

    from hwctl.fpga import boards
    from hwctl.synth import SynthError

    board = boards.get_board(args.board)
    out = args.out or _default_dir(board.name)
    try:  # the default directory too: refused before yosys runs, not after
        argtypes.check_out_path(out, "--out", directory=True)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.pins_only:
        try:
            boards.check_pins(board, out / "pins")
        except SynthError as exc:
            print(f"hwctl fpga build: {exc}", file=sys.stderr)
            return 1
        print(f"{board.title}: pin map {board.dir / board.constraints} accepted by "
              f"nextpnr-{board.family}")
        return 0
    try:
        if args.json or args.dry_run:
            res = boards.build(board, out, seed=args.seed, device=args.device,
                               dry_run=args.dry_run, profile=args.profile, seeds=args.seeds)
        else:
            from rich.console import Console

            with Console(stderr=True).status("starting...") as status:
                res = boards.build(board, out, seed=args.seed, device=args.device, status=status,
                                   profile=args.profile, seeds=args.seeds)
    except SynthError as exc:
        print(f"hwctl fpga build: {exc}", file=sys.stderr)
        return 1
    if args.dry_run:
        staged = sorted(p.name for p in (out / "src").iterdir())
        if args.json:
            print(json.dumps({"board": res.board, "profile": res.profile, "staged": staged,
                              "commands": res.commands}, indent=2))
        else:
            print(f"{board.title} (profile {res.profile}): {len(staged)} files staged in "
                  f"{out / 'src'}")
            for cmd in res.commands:
                print(f"  {cmd}")
        return 0
    report = {"board": res.board, "profile": res.profile, "bitstream": str(res.bitstream),
              "fmax_mhz": res.fmax_mhz,
              "clock_mhz": res.clock_mhz, "met": res.met, "seed": res.seed, "tries": res.tries,
              "resources": {k: {"used": u, "available": a} for k, (u, a) in res.resources.items()},
              "commands": res.commands}
    (out / "report_board.json").write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for t in res.tries:
            what = (f"{t['fmax_mhz']:.1f} MHz" if t["fmax_mhz"] is not None
                    else f"not placed ({t['error']})")
            print(f"seed {t['seed']}: {what}")
        for cell, (used, avail) in res.resources.items():
            print(f"{cell:14s} {used:6d} / {avail:6d} ({100 * used / avail:.0f} %)")
        fmax = f"{res.fmax_mhz:.1f} MHz" if res.fmax_mhz is not None else "unknown"
        print(f"Fmax {fmax} vs device clock {res.clock_mhz:g} MHz (seed {res.seed}): "
              f"{'met' if res.met else 'NOT met'}; bitstream {res.bitstream}")
    return 0 if res.met else 1


def _run_flash(args: argparse.Namespace) -> int:
    from hwctl.fpga import boards

    board = boards.get_board(args.board)
    # the user's own file missing: say so, not "run hwctl fpga build ... --out <its directory>"
    if args.bitstream is not None and not args.bitstream.is_file():
        raise UserError(f"no bitstream at {args.bitstream} (--bitstream): no such file")
    bit = args.bitstream or _default_dir(board.name) / (
        "board.bin" if board.family == "ice40" else "board.bit")
    boards.flash(board, bit, to_flash=args.write_flash)
    print(f"programmed {board.title} with {bit}")
    return 0


def _run_selftest(args: argparse.Namespace) -> int:
    import asyncio

    from hwctl.fpga import boards
    from hwctl.fpga.selftest import CLOCK_HZ, run_selftest

    clock = args.clock_hz or (boards.get_board(args.board).clock_hz if args.board else CLOCK_HZ)

    def show(line) -> None:
        print(f"{line.status:4s} {line.block:10s} {line.detail}", flush=True)

    kw = {}
    if args.cosim:
        from hwctl.fpga.selftest import Timing

        kw = {"timing": Timing.sim(), "timeout": None, "realtime": False, "rate_s": 0.01}
    lines = asyncio.run(run_selftest(args.url, **{"clock_hz": clock, "rate_s": args.rate_s,
                                                  "timeout": args.timeout, "on_line": show,
                                                  **kw}))
    return 1 if any(ln.status == "FAIL" for ln in lines) else 0
