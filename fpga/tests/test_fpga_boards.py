"""Board support (hwctl fpga boards / build / flash): pin maps against the board tops, the
board tops elaborate with the shared top, one-line errors from flash; full bitstream builds are
``-m slow`` (place and route, minutes each)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hwctl.errors import UserError
from hwctl.fpga import boards
from hwctl.fpga.cli import _run_flash  # noqa: F401  (import check: the CLI module loads)


def _ports(board: boards.Board) -> set[str]:
    """Every bit of board_top's ports, e.g. det_i[0], led_o[7], clk12_i."""
    text = (board.dir / "board_top.v").read_text()
    head = text[text.index("module board_top"):text.index(");")]
    out: set[str] = set()
    for m in re.finditer(r"(input|output)\s+wire\s*(\[(\d+):0\])?\s*(\w+)", head):
        if m.group(3):
            out |= {f"{m.group(4)}[{i}]" for i in range(int(m.group(3)) + 1)}
        else:
            out.add(m.group(4))
    return out


def _pins(board: boards.Board) -> dict[str, str]:
    text = (board.dir / board.constraints).read_text()
    if board.constraints.endswith(".pcf"):
        pairs = re.findall(r"^set_io\s+(\S+)\s+(\S+)", text, re.M)
    else:
        pairs = re.findall(r'^LOCATE\s+COMP\s+"([^"]+)"\s+SITE\s+"([^"]+)"', text, re.M)
    return dict(pairs)


@pytest.mark.parametrize("name", sorted(boards.BOARDS))
def test_pin_map_covers_every_port_once(name: str) -> None:
    board = boards.BOARDS[name]
    ports, pins = _ports(board), _pins(board)
    assert ports, "no ports parsed"
    assert set(pins) == ports, f"unconstrained {ports - set(pins)}, unknown {set(pins) - ports}"
    assert len(set(pins.values())) == len(pins), "two signals on one site"


def test_board_clocks_are_stated() -> None:
    hx, ulx = boards.BOARDS["hx8k_breakout"], boards.BOARDS["ulx3s"]
    # icepll: 12 MHz * (DIVF + 1) / 2^DIVQ with DIVF = 66, DIVQ = 3
    assert hx.clock_hz == 12_000_000 * 67 // 8
    # ecppll: 25 MHz * CLKFB_DIV / CLKI_DIV with 4 / 1
    assert ulx.clock_hz == 25_000_000 * 4 == 100_000_000


def test_unknown_board_is_user_error() -> None:
    with pytest.raises(UserError):
        boards.get_board("icestick")


def test_flash_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board = boards.BOARDS["ulx3s"]
    with pytest.raises(UserError, match="no bitstream"):
        boards.flash(board, tmp_path / "missing.bit")
    bit = tmp_path / "board.bit"
    bit.write_bytes(b"\0")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(UserError, match="openFPGALoader not found"):
        boards.flash(board, bit)


def test_flash_without_board_says_so(tmp_path: Path) -> None:
    """A loader that fails (as openFPGALoader does with no board on USB) gives one line."""
    fake = tmp_path / "openFPGALoader"
    fake.write_text("#!/bin/sh\necho 'JTAG init failed with: unable to open ftdi device' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    bit = tmp_path / "board.bit"
    bit.write_bytes(b"\0")
    with pytest.raises(UserError, match="answered on USB.*unable to open ftdi device") as exc:
        boards.flash(boards.BOARDS["ulx3s"], bit, loader=str(fake))
    assert "\n" not in str(exc.value)


def test_cli_flash_exit_2(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "hwctl.cli", "fpga", "flash", "--board", "ulx3s",
                          "--bitstream", str(tmp_path / "none.bit")], capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "no bitstream" in res.stderr
    # the user named the file: it is missing, no advice to build into another directory
    assert "(--bitstream): no such file" in res.stderr and "fpga build" not in res.stderr


def _yosys() -> str | None:
    try:
        from hwctl.synth import find_tool

        return find_tool("yosys")
    except UserError:
        return None


#: (board, profile) pairs the default suite elaborates: each board's default, and the HX8K's
#: second lab role
BOARD_PROFILES = [(n, b.profile) for n, b in sorted(boards.BOARDS.items())] + [
    ("hx8k_breakout", "verify")]


@pytest.mark.synth
@pytest.mark.skipif(_yosys() is None, reason="yosys not installed")
@pytest.mark.parametrize(("name", "profile"), BOARD_PROFILES)
def test_board_top_elaborates(name: str, profile: str, tmp_path: Path) -> None:
    """board_top + top (the profile's parameters) + the vendor PLL's cell model: hierarchy
    check, no latch (seconds)."""
    board = boards.BOARDS[name]
    files = boards._stage(board, tmp_path)
    # (ECP5: cells_bb.v for the PLL, cells_sim.v for the DP16KD of rtl/ecp5/ram_sdp_oreg.v)
    lib = ("+/ice40/cells_sim.v" if board.family == "ice40"
           else "+/ecp5/cells_sim.v +/ecp5/cells_bb.v")
    script = (f"read_verilog -lib {lib}; {boards.yosys_board_script(board, files, profile)}; "
              "hierarchy -check -top board_top; proc; check -assert")
    res = subprocess.run([_yosys(), "-q", "-p", script], cwd=tmp_path, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr[-2000:] + res.stdout[-2000:]


def test_board_profiles_match_the_top_parameters() -> None:
    """The board top's parameter defaults are its board's default profile (so a plain yosys run
    of board_top builds what `hwctl fpga build` builds)."""
    from hwctl.wire.features import get_profile

    for board in boards.BOARDS.values():
        text = (board.dir / "board_top.v").read_text()
        head = text[text.index("module board_top"):text.index(") (")]
        found = {k: int(v) for k, v in re.findall(r"parameter\s+(\w+)\s*=\s*(\d+)", head)}
        assert found == get_profile(board.profile).params, board.name


def test_build_dry_run_sets_the_profile(tmp_path: Path) -> None:
    res = boards.build(boards.BOARDS["hx8k_breakout"], tmp_path, dry_run=True, profile="verify")
    assert res.profile == "verify"
    assert "chparam -set PAIRS 0 board_top" in res.commands[0]
    assert "chparam -set BLOCKS 1 board_top" in res.commands[0]


def test_build_dry_run_has_the_family_flow_options(tmp_path: Path) -> None:
    """The HX8K board's flow options (hwctl.synth.ICE40_SYNTH / ICE40_HEAP) are in the commands
    the build runs: synth_ice40's before -json, nextpnr's HeAP bound; the ECP5 board has none of
    them."""
    from hwctl.synth import ICE40_HEAP, ICE40_SYNTH

    res = boards.build(boards.BOARDS["hx8k_breakout"], tmp_path / "h", dry_run=True)
    assert ICE40_SYNTH and " ".join(ICE40_SYNTH) in res.commands[0]
    assert "synth_ice40 -top board_top " + " ".join(ICE40_SYNTH) + " -json board.json" \
        in res.commands[0]
    assert " ".join(ICE40_HEAP) in res.commands[1]
    res = boards.build(boards.BOARDS["ulx3s"], tmp_path / "u", dry_run=True)
    assert "synth_ecp5 -top board_top -json board.json" in res.commands[0]
    assert " ".join(ICE40_HEAP) not in res.commands[1]


_FAKE_PNR = """\
import json, sys
a = sys.argv[1:]
seed, rep, log, asc = (a[a.index(k) + 1] for k in ("--seed", "--report", "-l", "--asc"))
if seed == "1":  # the tenth session's verify build at seed 1: HeAP gives up on a cell
    open(log, "w").write("Info: ...\\nERROR: Unable to find legal placement for cell 'x'\\n")
    sys.exit(1)
fmax = {"2": 99.0, "3": 104.0, "4": 120.0}[seed]
json.dump({"fmax": {"clk": {"achieved": fmax}}, "utilization": {"ICESTORM_LC": {"used": 6162,
          "available": 7680}}}, open(rep, "w"))
open(log, "w").write("log of seed " + seed)
open(asc, "w").write("asc of seed " + seed)
"""
_FAKE_PACK = """\
import shutil, sys
shutil.copy(sys.argv[1], sys.argv[2])
"""


@pytest.mark.parametrize("seeds, seed, fmax, met", [(3, 3, 104.0, True), (2, 2, 99.0, False)])
def test_build_tries_seeds_until_one_meets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           seeds: int, seed: int, fmax: float, met: bool) -> None:
    """``--seeds``: a seed that does not place is reported and the next one tried; the first
    seed that meets the device clock ends the build (seed 4 is never run), else the fastest
    placed seed gives the bitstream. nextpnr and icepack are stand-ins here (the real tools take
    minutes: the slow board builds below)."""
    tools = {}
    for name, text in (("nextpnr-ice40", _FAKE_PNR), ("icepack", _FAKE_PACK)):
        f = tmp_path / f"fake-{name}"
        f.write_text(f"#!{sys.executable}\n{text}")
        f.chmod(0o755)
        tools[name] = str(f)
    monkeypatch.setattr(boards, "run_yosys", lambda *a, **k: [])
    monkeypatch.setattr(boards, "find_tool", lambda name: tools[name])
    res = boards.build(boards.BOARDS["hx8k_breakout"], tmp_path / "b", seeds=seeds)
    assert [t["seed"] for t in res.tries] == list(range(1, seeds + 1))
    assert res.tries[0]["fmax_mhz"] is None and "legal placement" in res.tries[0]["error"]
    assert (res.seed, res.fmax_mhz, res.met) == (seed, fmax, met)
    assert res.bitstream.read_text() == f"asc of seed {seed}"  # the chosen seed's placement
    assert (tmp_path / "b" / "nextpnr.log").read_text() == f"log of seed {seed}"
    assert f"--seed {seed} " in res.commands[1] and "-l nextpnr.log" in res.commands[1]


def test_build_with_no_placed_seed_is_one_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "fake-nextpnr"
    f.write_text(f"#!{sys.executable}\n{_FAKE_PNR}")
    f.chmod(0o755)
    monkeypatch.setattr(boards, "run_yosys", lambda *a, **k: [])
    monkeypatch.setattr(boards, "find_tool", lambda name: str(f))
    with pytest.raises(boards.SynthError, match="failed at every seed tried \\(1;"):
        boards.build(boards.BOARDS["hx8k_breakout"], tmp_path / "b", seeds=1)


def _nextpnr(board: boards.Board) -> str | None:
    try:
        from hwctl.synth import find_tool

        return find_tool(f"nextpnr-{board.family}")
    except UserError:
        return None


@pytest.mark.synth
@pytest.mark.skipif(_yosys() is None, reason="yosys not installed")
@pytest.mark.parametrize("name", sorted(boards.BOARDS))
def test_pin_map_is_accepted_by_nextpnr(name: str, tmp_path: Path) -> None:
    """The board's PCF / LPF on the real package, with a stub of the board top's ports
    (`hwctl fpga build --pins-only`; tens of seconds instead of a full build)."""
    board = boards.BOARDS[name]
    if _nextpnr(board) is None:
        pytest.skip(f"nextpnr-{board.family} not installed")
    cmds = boards.check_pins(board, tmp_path)
    assert any("nextpnr" in c for c in cmds)


#: a broken line per board: a site the package does not have, a port left unconstrained
BROKEN = {
    "hx8k_breakout": ("set_io det_i[0]  C16", "set_io det_i[0]  C99", "does not have a pin"),
    "ulx3s": ('LOCATE COMP "hdr_i"    SITE "A9";', "", "unconstrained"),
}


@pytest.mark.synth
@pytest.mark.skipif(_yosys() is None, reason="yosys not installed")
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_pin_check_catches_a_broken_pin_map(name: str, tmp_path: Path) -> None:
    board = boards.BOARDS[name]
    if _nextpnr(board) is None:
        pytest.skip(f"nextpnr-{board.family} not installed")
    old, new, why = BROKEN[name]
    text = (board.dir / board.constraints).read_text()
    assert old in text
    bad = tmp_path / f"bad{Path(board.constraints).suffix}"
    bad.write_text(text.replace(old, new))
    with pytest.raises(boards.SynthError, match=why):
        boards.check_pins(board, tmp_path / "run", bad)


def test_stub_has_the_board_ports() -> None:
    for board in boards.BOARDS.values():
        stub = boards.pin_stub(board)
        for port in _ports(board):
            assert port.split("[")[0] in stub


@pytest.mark.slow
@pytest.mark.synth
@pytest.mark.skipif(_yosys() is None, reason="yosys not installed")
@pytest.mark.parametrize("name", sorted(boards.BOARDS))
def test_bitstream_builds_and_meets_board_clock(name: str, tmp_path: Path) -> None:
    res = boards.build(boards.BOARDS[name], tmp_path)
    assert res.bitstream.exists() and res.bitstream.stat().st_size > 10_000
    assert res.met, f"Fmax {res.fmax_mhz} MHz < {res.clock_mhz} MHz"


@pytest.mark.parametrize("name", sorted(boards.BOARDS))
def test_build_stages_only_its_family_s_rtl(name: str, tmp_path: Path) -> None:
    """Shared RTL has no vendor primitive: an ECP5 board reads fpga/rtl/ecp5/ram_sdp_oreg.v
    (DP16KD) in place of the behavioural fpga/rtl/ram_sdp_oreg.v, an iCE40 board the
    behavioural one; never both (one staged file per name)."""
    board = boards.BOARDS[name]
    files = boards._stage(board, tmp_path)
    assert len(files) == len(set(files)) and "src/ram_sdp_oreg.v" in files
    text = (tmp_path / "src" / "ram_sdp_oreg.v").read_text()
    assert ("DP16KD #(" in text) == (board.family == "ecp5"), board.family
