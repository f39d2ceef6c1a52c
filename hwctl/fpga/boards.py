"""Board support: bitstreams for real boards (``hwctl fpga build``) and flashing them
(``hwctl fpga flash``).

Each board has a top in ``fpga/boards/<name>/board_top.v`` (PLL from the board oscillator, the
shared ``top``, LEDs) and its pin constraints (PCF / LPF). The flow is ``hwctl synth``'s (YoWASP
yosys + nextpnr, sources staged below the working directory) plus the packer
(``yowasp-icepack`` / ``yowasp-ecppack``). Programming uses openFPGALoader (Debian package
``openfpgaloader``, installed by ``./dev.sh setup``).

Device clock and timestamps: the wire spec's ``meta.clock_hz`` is 100 MHz. A board whose PLL
cannot make exactly that (the iCE40-HX8K breakout: 12 MHz crystal -> 100.5 MHz) counts
timestamps in its own cycles; :attr:`Board.clock_hz` says how long one is, and ``hwctl fpga
selftest`` measures the rate against the host clock. Convert with ``t_s = ts / board.clock_hz``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from hwctl.errors import UserError
from hwctl.synth import (
    ICE40_HEAP,
    ICE40_SYNTH,
    RTL_DIR,
    SynthError,
    find_tool,
    hdl_dir,
    rtl_sources,
    run_yosys,
)
from hwctl.wire.features import get_profile

#: board tops and pin constraints: fpga/boards, or hwctl/boards in a wheel (:func:`hdl_dir`)
BOARDS_DIR = hdl_dir("boards")


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    family: str                  # ice40 / ecp5
    osc_hz: int                  # board oscillator
    clock_hz: int                # device clock from the PLL (timestamp rate)
    pnr_args: tuple[str, ...]
    constraints: str             # file in fpga/boards/<name>/
    loader_board: str            # openFPGALoader -b
    cells: tuple[str, ...]
    pll: str                     # how the PLL was computed
    #: default build profile (hwctl.wire.features.PROFILES; ``--profile`` overrides): the
    #: board top's V2 / PAIRS / BLOCKS / HEADERS parameters
    profile: str = "full"
    #: nextpnr placer (HeAP did not finish its first iteration at 80-85 % of the HX8K)
    placer: str = "heap"
    #: options appended to the family's synthesis command (hwctl.synth.ICE40_SYNTH)
    synth_opts: tuple[str, ...] = ()

    @property
    def dir(self) -> Path:
        return BOARDS_DIR / self.name


BOARDS: dict[str, Board] = {
    "hx8k_breakout": Board(
        "hx8k_breakout", "Lattice iCE40-HX8K breakout (ICE40HX8K-B-EVN)", "ice40", 12_000_000,
        100_500_000, ("--hx8k", "--package", "ct256", *ICE40_HEAP), "pins.pcf", "ice40_generic",
        ("ICESTORM_LC", "ICESTORM_RAM", "SB_IO", "SB_GB", "ICESTORM_PLL"),
        "icepll -i 12 -o 100: DIVR 0, DIVF 66, DIVQ 3 -> 100.5 MHz (100.0 not reachable)",
        # every mode needs ~9200 LC of 7680: one role per bitstream. HeAP: the esp build (75-79 %)
        # places in ~2 min; SA annealed it for 19 min and then failed to legalise a carry chain
        # (fpga/README.md, "iCE40 fit, fifth session")
        profile="esp", placer="heap", synth_opts=ICE40_SYNTH,
    ),
    "ulx3s": Board(
        "ulx3s", "Radiona ULX3S (ECP5 LFE5U-85F, CABGA381)", "ecp5", 25_000_000, 100_000_000,
        ("--85k", "--package", "CABGA381"), "pins.lpf", "ulx3s",
        ("TRELLIS_COMB", "TRELLIS_FF", "TRELLIS_RAMW", "DP16KD", "TRELLIS_IO", "EHXPLLL"),
        "ecppll -i 25 -o 100: CLKI_DIV 1, CLKFB_DIV 4, CLKOP_DIV 6 -> 100.0 MHz",
    ),
}

#: ULX3S devices (``--device``): nextpnr size flag
ECP5_DEVICES = ("12k", "25k", "45k", "85k")


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise UserError(f"unknown board {name!r} (choose from {', '.join(sorted(BOARDS))})") from None


@dataclass
class BuildResult:
    board: str
    bitstream: Path
    fmax_mhz: float | None
    clock_mhz: float
    resources: dict[str, tuple[int, int]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    profile: str = ""
    seed: int | None = None  # the placement seed of the bitstream
    tries: list[dict] = field(default_factory=list)  # every seed tried: seed, fmax_mhz, error

    @property
    def met(self) -> bool:
        return self.fmax_mhz is not None and self.fmax_mhz >= self.clock_mhz


def _stage(board: Board, workdir: Path) -> list[str]:
    """Copy the RTL, the board's top and its constraints to ``workdir/src``; the Verilog files
    to read, relative to ``workdir``. A file missing from the installed package is one line."""
    src = workdir / "src"
    src.mkdir(parents=True, exist_ok=True)
    # the family's vendor RTL (fpga/rtl/<family>/) in place of the shared files of its names
    rtl = rtl_sources(family=board.family)
    files = [*rtl, *sorted(BOARDS_DIR.glob("*.v")), *sorted(board.dir.glob("*.v"))]
    needed = [*files, *sorted(RTL_DIR.glob("*.vh")), board.dir / board.constraints,
              board.dir / "board_top.v"]
    missing = [str(f) for f in needed if not f.is_file()]
    if missing or not rtl:
        raise UserError(f"board {board.name}: HDL sources missing ({', '.join(missing) or RTL_DIR})"
                        ": reinstall hwctl, or run from a checkout")
    for f in needed:
        shutil.copy2(f, src / f.name)
    return [f"src/{f.name}" for f in files]


def yosys_board_script(board: Board, files: list[str], profile: str | None = None) -> str:
    """Read the staged sources and set the board top's profile parameters (chparam before the
    hierarchy is elaborated)."""
    prof = get_profile(profile or board.profile)
    sets = "".join(f"; chparam -set {k} {v} board_top" for k, v in prof.params.items())
    return f"read_verilog -sv -Isrc {' '.join(files)}{sets}"


def build(board: Board, workdir: Path, seed: int = 1, device: str | None = None,
          status=None, dry_run: bool = False, profile: str | None = None,
          seeds: int = 1) -> BuildResult:
    """Synthesize ``board_top`` for ``board`` with a build profile (``profile``, default the
    board's), place and route it at the board's device clock, pack the bitstream; report
    resources and Fmax. ``seeds``: placement seeds ``seed``, ``seed + 1``, ... tried in turn until
    one places and meets the clock (a board at ~80 % of its logic cells places at some seeds and
    not at others: "iCE40 verify and ECP5, tenth session" in fpga/README.md); the bitstream is the
    first seed that met, else the fastest that placed; every try is in ``tries``. ``dry_run``:
    stage the sources and constraints in ``workdir/src`` and fill in the commands, run no
    tool."""
    workdir.mkdir(parents=True, exist_ok=True)
    files = _stage(board, workdir)
    pnr_args = list(board.pnr_args)
    if device is not None:
        if board.family != "ecp5" or device not in ECP5_DEVICES:
            raise UserError(f"--device is for ulx3s only: one of {', '.join(ECP5_DEVICES)}")
        pnr_args[0] = f"--{device}"
    synth_cmd = "synth_ice40" if board.family == "ice40" else "synth_ecp5"
    # (synth_* reads the vendor cell library, PLL included, before its own hierarchy -check)
    script = (yosys_board_script(board, files, profile) + "; "
              + " ".join([synth_cmd, "-top", "board_top", *board.synth_opts, "-json", "board.json"]))
    res = BuildResult(board.name, workdir / ("board.bin" if board.family == "ice40" else "board.bit"),
                      None, board.clock_hz / 1e6, profile=profile or board.profile)
    freq = f"{board.clock_hz / 1e6:.2f}"
    pnr_tool = f"nextpnr-{board.family}"
    if board.family == "ice40":
        out = ["--pcf", f"src/{board.constraints}", "--asc", "board.asc"]
        pack = ["icepack", "board.asc", res.bitstream.name]
    else:
        out = ["--lpf", f"src/{board.constraints}", "--textcfg", "board.config"]
        pack = ["ecppack", "--compress", "board.config", res.bitstream.name]

    def tagged(name: str, tag: str) -> str:  # board.asc -> board_s2.asc
        return f"{Path(name).stem}{tag}{Path(name).suffix}"

    def pnr_cmd(s: int, tag: str = "") -> list[str]:
        return [pnr_tool, *pnr_args, "--json", "board.json", *out[:3], tagged(out[3], tag),
                "--freq", freq, "--seed", str(s), "--placer", board.placer,
                "--report", tagged("report.json", tag), "-l", tagged("nextpnr.log", tag), "-q"]

    res.commands += [f'yosys -p "{script}"', " ".join(pnr_cmd(seed)), " ".join(pack)]
    if dry_run:
        return res
    if status:
        status.update(f"yosys {synth_cmd} (about 1 min)...")
    latches = run_yosys(script, workdir / "yosys.log", workdir)
    if latches:
        raise SynthError(f"inferred latches: {', '.join(latches)}")
    best: tuple[float, str] | None = None  # (Fmax, tag) of the fastest placed seed
    last_error = ""
    for s in range(seed, seed + max(1, seeds)):
        tag = f"_s{s}"
        if status:
            status.update(f"{pnr_tool} place and route at {freq} MHz, seed {s} "
                          f"({s - seed + 1} of at most {max(1, seeds)}; 1-5 min each)...")
        pnr = pnr_cmd(s, tag)
        run = subprocess.run([find_tool(pnr_tool), *pnr[1:]], cwd=workdir, capture_output=True,
                             text=True)
        log = workdir / tagged("nextpnr.log", tag)
        if run.returncode != 0 or not (workdir / tagged("report.json", tag)).exists():
            last_error = (log.read_text(errors="replace") if log.exists() else run.stderr)[-3000:]
            errs = [ln for ln in last_error.splitlines() if "ERROR" in ln]
            res.tries.append({"seed": s, "fmax_mhz": None,
                              "error": (errs[-1] if errs else "failed").strip()[:300]})
            continue
        rep = json.loads((workdir / tagged("report.json", tag)).read_text())
        fmax = [v["achieved"] for v in rep.get("fmax", {}).values()]
        f = min(fmax) if fmax else 0.0
        res.tries.append({"seed": s, "fmax_mhz": f if fmax else None, "error": None})
        if best is None or f > best[0]:
            best = (f, tag)
        if f >= res.clock_mhz:
            break
    if best is None:
        raise SynthError(f"{pnr_tool} failed at every seed tried "
                         f"({', '.join(str(t['seed']) for t in res.tries)}; pin map, fit or "
                         f"placement; more seeds: --seeds N):\n{last_error}")
    tag = best[1]
    res.seed = int(tag[2:])
    for name in (out[3], "report.json", "nextpnr.log"):  # the chosen seed's, under the usual names
        shutil.copy2(workdir / tagged(name, tag), workdir / name)
    res.commands[1] = " ".join(pnr_cmd(res.seed))
    rep = json.loads((workdir / "report.json").read_text())
    fmax = [v["achieved"] for v in rep.get("fmax", {}).values()]
    res.fmax_mhz = min(fmax) if fmax else None
    util = rep.get("utilization", {})
    res.resources = {c: (int(util[c]["used"]), int(util[c]["available"]))
                     for c in board.cells if c in util}
    if status:
        status.update("packing the bitstream...")
    run = subprocess.run([find_tool(pack[0]), *pack[1:]], cwd=workdir, capture_output=True,
                         text=True)
    if run.returncode != 0 or not res.bitstream.exists():
        raise SynthError(f"{pack[0]} failed:\n{(run.stderr or run.stdout)[-2000:]}")
    return res


_PORT = re.compile(r"(input|output)\s+wire\s*(\[(\d+):0\])?\s*(\w+)")


def board_ports(board: Board) -> list[tuple[str, str, int]]:
    """The board top's ports as (direction, name, width), from its module header."""
    text = (board.dir / "board_top.v").read_text()
    head = text[text.index("module board_top"):]
    head = head[head.index(") (") if ") (" in head else 0:head.index(");")]
    return [(m.group(1), m.group(4), int(m.group(3)) + 1 if m.group(3) else 1)
            for m in _PORT.finditer(head)]


def pin_stub(board: Board) -> str:
    """A stand-in ``board_top`` with the board's ports and no logic but an XOR of the inputs
    into every output: synthesizes in seconds, so nextpnr can check the pin map alone."""
    ports = board_ports(board)
    decl = ",\n".join(f"    {d} wire {f'[{w - 1}:0] ' if w > 1 else ''}{n}" for d, n, w in ports)
    ins = ", ".join(n for d, n, _ in ports if d == "input")
    outs = "".join(f"    assign {n} = {{{w}{{^{{{ins}}}}}}};\n" for d, n, w in ports
                   if d == "output")
    return f"module board_top (\n{decl}\n);\n{outs}endmodule\n"


def check_pins(board: Board, workdir: Path, constraints: Path | None = None) -> list[str]:
    """Check the board's pin map with the vendor flow but without the design (seconds): a stub
    with the board top's ports (:func:`pin_stub`) is synthesized and packed by nextpnr with the
    PCF / LPF, which refuses a site the package does not have, a port the file does not
    constrain (iCE40) or a constraint of no port. Returns the commands run; raises SynthError
    with nextpnr's complaint."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "stub.v").write_text(pin_stub(board))
    cons = workdir / ("pins" + Path(board.constraints).suffix)
    shutil.copy2(constraints or board.dir / board.constraints, cons)
    synth_cmd = "synth_ice40" if board.family == "ice40" else "synth_ecp5"
    script = f"read_verilog stub.v; {synth_cmd} -top board_top -json stub.json"
    run_yosys(script, workdir / "stub_yosys.log", workdir)
    flag = "--pcf" if board.family == "ice40" else "--lpf"
    pnr = [f"nextpnr-{board.family}", *board.pnr_args, "--json", "stub.json", flag, cons.name,
           "--no-route", "-l", "stub_nextpnr.log", "-q"]
    run = subprocess.run([find_tool(pnr[0]), *pnr[1:]], cwd=workdir, capture_output=True,
                         text=True)
    log = (workdir / "stub_nextpnr.log").read_text(errors="replace") \
        if (workdir / "stub_nextpnr.log").exists() else ""
    errors = [ln for ln in (log + run.stderr).splitlines() if "ERROR" in ln or "Error" in ln]
    # nextpnr-ecp5 warns (not fails) for a LOCATE of an unknown port: treat as an error
    errors += [ln for ln in log.splitlines() if "does not exist" in ln or "not found" in ln]
    if run.returncode != 0 or errors:
        raise SynthError(f"board {board.name}: pin map refused by nextpnr-{board.family}: "
                         + ("; ".join(dict.fromkeys(errors)) or run.stderr[-500:] or "failed"))
    return [f'yosys -p "{script}"', " ".join(pnr)]


def flash(board: Board, bitstream: Path, to_flash: bool = False,
          loader: str | None = None) -> str:
    """Program ``bitstream`` with openFPGALoader (SRAM, or the configuration flash with
    ``to_flash``). Returns the tool's output; raises UserError with one line when the tool is
    missing or no board answers."""
    if not bitstream.exists():
        raise UserError(f"no bitstream at {bitstream}: run `hwctl fpga build --board {board.name}"
                        f" --out {bitstream.parent}` first")
    tool = loader or shutil.which("openFPGALoader")
    if tool is None:
        raise UserError("openFPGALoader not found: `./dev.sh setup` installs it (Debian package "
                        "openfpgaloader)")
    cmd = [tool, "-b", board.loader_board, *(["-f"] if to_flash else []), str(bitstream)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    text = (run.stdout + run.stderr).strip()
    if run.returncode != 0:
        last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "no output")
        raise UserError(f"no {board.title} answered on USB (openFPGALoader -b "
                        f"{board.loader_board}: {last})")
    return text
