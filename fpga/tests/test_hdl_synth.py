"""Synthesis checks: yosys elaborates `top` with no inferred latch (quick, default run);
full place-and-route via `hwctl synth` (slow)."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import pytest

from hwctl import synth
from hwctl.wire.features import get_profile


def _need_yosys() -> None:
    try:
        synth.find_tool("yosys")
    except Exception as exc:  # UserError with the install hint
        pytest.skip(str(exc))


@pytest.mark.synth
def test_top_has_no_latches(tmp_path: Path) -> None:
    _need_yosys()
    assert synth.check_latches(tmp_path) == []


@pytest.mark.synth
def test_top_has_no_latches_with_target_params(tmp_path: Path) -> None:
    """The per-target top parameters (ECP5: FIFOs in LUT RAM) elaborate cleanly too."""
    _need_yosys()
    params = dict(synth.TARGETS["ecp5"].params)
    assert params
    assert synth.check_latches(tmp_path, params=params) == []


@pytest.mark.synth
def test_station_top_has_no_latches(tmp_path: Path) -> None:
    _need_yosys()
    assert synth.check_latches(tmp_path / "st", top="station_top") == []


@pytest.mark.synth
@pytest.mark.parametrize("profile", ["esp", "verify"])
def test_node_profiles_have_no_latches(tmp_path: Path, profile: str) -> None:
    """The node top as the iCE40 profiles make it (fpga/README.md, "Build profiles")."""
    _need_yosys()
    params = synth.top_params("ice40", profile=profile)
    assert params == {"LATE_JOIN": 0, **get_profile(profile).params}
    assert synth.check_latches(tmp_path / profile, params=params) == []


def test_target_profiles() -> None:
    """iCE40 builds the esp profile by default, ECP5 every mode; --profile is for the node."""
    assert synth.top_params("ice40") == {"LATE_JOIN": 0, **get_profile("esp").params}
    assert synth.top_params("ecp5") == {"FIFO_LUTRAM": 1, **get_profile("full").params}
    assert synth.top_params("ice40", profile="verify", params={"HEADERS": 0})["HEADERS"] == 0
    assert synth.top_params("ice40", top="station_top") == {}
    with pytest.raises(synth.UserError, match="node top"):
        synth.top_params("ice40", top="station_top", profile="esp")


@pytest.mark.synth
def test_latch_check_catches_a_latch(tmp_path: Path) -> None:
    """The check itself must be able to fail: a deliberately latchy `top`."""
    _need_yosys()
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    (rtl / "top.v").write_text(
        "module top(input wire en, input wire d, output reg q);\n"
        "  always @* if (en) q = d;\nendmodule\n"
    )
    assert synth.check_latches(tmp_path, rtl_dir=rtl) != []


def test_family_synth_options_in_the_script(tmp_path: Path) -> None:
    """`hwctl synth --target ice40` synthesizes with ICE40_SYNTH (the HX8K boards' options),
    ECP5 with none; the elaborate-only script (latch check) has no synthesis command."""
    assert synth.TARGETS["ice40"].synth_opts == synth.ICE40_SYNTH
    assert synth.TARGETS["ecp5"].synth_opts == ()
    script = synth.yosys_script("synth_ice40", Path("n.json"), {}, cwd=tmp_path / "a",
                                synth_opts=synth.TARGETS["ice40"].synth_opts)
    assert script.endswith("synth_ice40 -top top " + " ".join(synth.ICE40_SYNTH) + " -json n.json")
    script = synth.yosys_script("synth_ecp5", Path("n.json"), {}, cwd=tmp_path / "b")
    assert script.endswith("synth_ecp5 -top top -json n.json")
    assert "synth_" not in synth.yosys_script("", None, {}, cwd=tmp_path / "c",
                                             synth_opts=("-x",)).split("; ")[-1]


def test_param_parsing() -> None:
    assert synth._parse_params(["CLKS_PER_BIT=4", "TS_INIT=0x10"]) == {
        "CLKS_PER_BIT": 4, "TS_INIT": 16}
    with pytest.raises(synth.UserError):
        synth._parse_params(["nonsense"])


def test_unknown_placer_is_a_user_error(tmp_path: Path) -> None:
    # refused before yosys runs; the CLI offers only the known ones
    with pytest.raises(synth.UserError, match="placer"):
        synth.synthesize("ecp5", tmp_path, placer="fastest")
    with pytest.raises(synth.UserError, match="top"):
        synth.synthesize("ecp5", tmp_path, top="nonsense")
    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    assert parser.parse_args(["--target", "ecp5"]).placer is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--placer", "fastest"])


def test_best_seed_and_seeds_met() -> None:
    # "met" is the best placement (the one a build keeps); seeds_met says how many reached it
    res = synth.SynthResult("ecp5", "dev", 205.0, 200.0, seed=2,
                            per_seed={1: 185.4, 2: 205.0, 3: 200.0, 4: None})
    assert res.met and res.seeds_met == 2
    res = synth.SynthResult("ecp5", "dev", 199.9, 200.0, per_seed={1: 199.9})
    assert not res.met and res.seeds_met == 0


@pytest.mark.synth
@pytest.mark.slow
@pytest.mark.parametrize("target", ["ice40", "ecp5"])
def test_place_and_route(tmp_path: Path, target: str) -> None:
    _need_yosys()
    tool = synth.TARGETS[target].pnr_tool
    if not (shutil.which(f"yowasp-{tool}") or shutil.which(tool)
            or (Path(sys.executable).parent / f"yowasp-{tool}").exists()):
        pytest.skip(f"{tool} not installed")
    res = synth.synthesize(target, tmp_path)
    assert res.fmax_mhz is not None and res.fmax_mhz > 0
    assert res.resources and not res.latches


def test_vendor_rtl_replaces_the_shared_file(tmp_path: Path) -> None:
    """The ECP5 synthesis reads fpga/rtl/ecp5/*.v in place of the shared files of their names
    (never both); iCE40 and the latch check read the shared, technology-independent RTL, and
    no shared file instantiates a vendor primitive."""
    shared = synth.rtl_sources()
    ecp5 = synth.rtl_sources(family="ecp5")
    assert [p.name for p in shared] == [p.name for p in ecp5]
    swapped = {p.name for p in ecp5 if p.parent.name == "ecp5"}
    assert "ram_sdp_oreg.v" in swapped
    assert synth.rtl_sources(family="ice40") == shared
    inst = re.compile(r"^\s*(DP16KD|SB_RAM40_4K|SB_PLL40_\w+|EHXPLLL)\b", re.M)
    assert not [p.name for p in shared if inst.search(p.read_text())]
    assert inst.search((synth.RTL_DIR / "ecp5" / "ram_sdp_oreg.v").read_text())
    script = synth.yosys_script("synth_ecp5", None, {}, cwd=tmp_path)
    staged = (tmp_path / "rtl_src" / "ram_sdp_oreg.v").read_text()
    assert "DP16KD #(" in staged and "cells_sim.v" in script
    synth.yosys_script("synth_ice40", None, {}, cwd=tmp_path / "i")
    assert not inst.search((tmp_path / "i" / "rtl_src" / "ram_sdp_oreg.v").read_text())
