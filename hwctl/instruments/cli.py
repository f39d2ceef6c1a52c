"""``hwctl instruments``: the drivers hwctl has, and the health of a node's bench.

- ``hwctl instruments list`` — every driver (instrument, role, settings with units and ranges);
  with ``--config node.toml`` also the bench's instruments, and with ``--resources`` the VISA
  resources its VISA library sees.
- ``hwctl instruments check --config node.toml`` — opens each instrument of the bench, checks its
  ``*IDN?``, reads its error queue and its readings, and prints one line per instrument (exit 0 if
  all are healthy, 1 otherwise). ``--apply`` applies the bench file's settings first (what a node
  does at start); ``--snapshot FILE`` writes the bench snapshot (identity, settings, readings) as
  JSON.

- ``hwctl instruments physics --config A.toml [--peer B.toml] [--fidelity F]`` — the per-attempt
  physics the twin takes from the benches (hwctl.physics.bench.link_physics): this node's VOA on
  arm A, the peer's on arm B, this bench's detector bias for the station's detectors.

A mistake in the bench file is reported as ``file: bench.<name>.<key>: why`` (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hwctl import argtypes
from hwctl.errors import HwctlError, UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="list drivers (and a bench's instruments and VISA resources)")
    ls.add_argument("--config", metavar="NODE_TOML", help="a node config with a [bench]")
    ls.add_argument("--resources", action="store_true",
                    help="also list the VISA resources the bench's VISA library sees")
    ck = sub.add_parser("check", help="identify every instrument of a bench and report its health")
    ck.add_argument("--config", metavar="NODE_TOML", required=True, help="a node config with a [bench]")
    ck.add_argument("--apply", action="store_true", help="apply the bench file's settings first")
    ck.add_argument("--snapshot", metavar="FILE", type=argtypes.out_path("--snapshot"),
                    help="write the bench snapshot as JSON")
    ck.add_argument("--force", action="store_true", help=argtypes.FORCE_HELP)
    ck.add_argument("--json", action="store_true", help="print the health report as JSON")
    ph = sub.add_parser("physics", help="the twin physics a link takes from two nodes' benches")
    ph.add_argument("--config", metavar="NODE_TOML", required=True,
                    help="this node's config (its VOA: arm A; its detector bias: the station's)")
    ph.add_argument("--peer", metavar="NODE_TOML", help="the other end's config (its VOA: arm B; default: arm B 0 dB)")
    ph.add_argument("--fidelity", type=float, default=0.75,
                    help="requested fidelity F in [0.5, 1) (alpha = 1-F; default 0.75)")
    ph.add_argument("--from-instruments", action="store_true",
                    help="read attenuation and bias back from the instruments (default: the file)")


def _bench_config(path: str):
    from hwctl.instruments.bench import BenchConfig

    cfg = BenchConfig.from_node_config(path)
    if cfg is None:
        raise UserError(f"{path}: no [bench] (or bench = \"file\") in this node config")
    return cfg


def _list(args: argparse.Namespace) -> int:
    from hwctl.instruments import DRIVERS, driver_class, visa_library

    cfg = _bench_config(args.config) if args.config else None  # a bad file: nothing printed
    if args.resources and cfg is None:
        raise UserError("--resources needs --config NODE_TOML (the bench names its VISA library)")
    print("drivers:")
    for key in DRIVERS:
        cls = driver_class(key)
        print(f"  {key:<18} {cls.KIND:<16} {cls.MODEL}")
        for s in cls.SETTINGS:
            print(f"      {s.name:<20} {s.range_text():<28} {s.doc}")
    if cfg is not None:
        print(f"bench of {args.config} (visa_library {cfg.visa_library or 'system VISA'!r}):")
        for ic in cfg.instruments:
            settings = ", ".join(f"{k}={v}" for k, v in ic.settings.items())
            print(f"  {ic.name:<10} {ic.driver:<18} {ic.resource}  {settings}")
        if args.resources:
            import pyvisa

            try:
                rm = pyvisa.ResourceManager(visa_library(cfg.visa_library))
                found = rm.list_resources("?*")  # "?*::INSTR" (the default) hides SOCKETs
            except (OSError, ValueError, pyvisa.errors.Error) as exc:
                raise UserError(f"VISA library {cfg.visa_library!r} cannot be opened: {exc}") from None
            print(f"VISA resources ({len(found)}):")
            for r in found:
                print(f"  {r}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from hwctl.instruments import visa_library
    from hwctl.instruments.base import library_problem
    from hwctl.instruments.bench import Bench

    cfg = _bench_config(args.config)
    if args.snapshot:
        argtypes.refuse_existing([Path(args.snapshot)], "--snapshot", force=args.force)
    t0 = time.perf_counter()
    applied = True
    with Bench(cfg) as bench:
        if args.apply and library_problem(visa_library(cfg.visa_library)) is None:
            try:  # (no VISA library: the check below says so, once)
                bench.apply()
            except HwctlError as exc:
                hint = getattr(exc, "hint", None)
                print(f"hwctl instruments: apply failed: {' '.join(str(exc).split())}"
                      + (f"; hint: {hint}" if hint else "") + " (the check of every "
                      "instrument follows)", file=sys.stderr)
                applied = False
        health = bench.check()
        bench_problem = bench.library_problem
        snapshot = None
        if args.snapshot and all(h.ok for h in health):
            snapshot = bench.snapshot()
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"seconds": elapsed, "bench_problem": bench_problem,
                          "instruments": [h.__dict__ for h in health]},
                         indent=2))
    else:
        if bench_problem is not None:  # once, not once per instrument
            print(f"FAIL bench: {bench_problem}; hint: {health[0].hint}")
        for h in health:
            readings = ", ".join(f"{k}={v:g}" for k, v in h.readings.items())
            if h.ok:
                print(f"ok   {h.name:<10} {h.driver:<18} {h.seconds * 1e3:6.1f} ms  {h.identity}"
                      + (f"  [{readings}]" if readings else ""))
            elif bench_problem is not None:
                print(f"skip {h.name:<10} {h.driver:<18} {h.resource}: not tried (no VISA "
                      f"library)")
            else:  # what was tried, what failed, what to do: one line
                print(f"FAIL {h.name:<10} {h.driver:<18} {h.seconds * 1e3:6.1f} ms  {h.step} at "
                      f"{h.resource}: {h.problem}; hint: {h.hint}")
        n_ok = sum(h.ok for h in health)
        print(f"{n_ok}/{len(health)} instruments healthy, checked in {elapsed:.2f} s")
    if args.snapshot:
        if snapshot is None:
            print("hwctl instruments: no snapshot written (an instrument is not healthy)",
                  file=sys.stderr)
        else:
            Path(args.snapshot).write_text(json.dumps(snapshot, indent=2))
    return 0 if applied and all(h.ok for h in health) else 1


def _physics(args: argparse.Namespace) -> int:
    from hwctl.instruments.bench import Bench
    from hwctl.physics.bench import link_physics

    if not 0.5 <= args.fidelity < 1.0:
        raise UserError(f"--fidelity must be in [0.5, 1), got {args.fidelity}")
    inputs = []
    paths = [args.config] + ([args.peer] if args.peer else [])
    configs = [_bench_config(p) for p in paths]  # every file checked before a bench is opened
    for path, cfg in zip(paths, configs, strict=True):
        with Bench(cfg) as bench:
            try:
                inputs.append(bench.physics_inputs(from_instruments=args.from_instruments))
            except HwctlError as exc:
                raise UserError(f"{path}: {exc}") from None
    att_b = inputs[1].attenuation_db if len(inputs) > 1 else 0.0
    lp = link_physics(args.fidelity, (inputs[0].attenuation_db, att_b), inputs[0].bias_current_ua)
    print(f"arm A: {inputs[0].attenuation_db:g} dB, arm B: {att_b:g} dB, detector bias: "
          f"{inputs[0].bias_current_ua if inputs[0].bias_current_ua is not None else 'nominal'} uA")
    print(f"eta_A = {lp.eta_a:.4g}, eta_B = {lp.eta_b:.4g}, detector efficiency "
          f"{lp.detector_efficiency:.3f}, dark rate {lp.dark_rate_hz:.3g} Hz")
    print(f"per attempt: p_photon = {lp.p_photon:.4g}, dark_prob = {lp.dark_prob:.3g}, "
          f"herald probability = {lp.herald_probability:.4g}")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "check": _check, "physics": _physics}[args.action](args)
