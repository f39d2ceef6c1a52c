"""Run one cocotb test module against one RTL toplevel (cocotb 2.x ``cocotb_tools.runner``).

Each pytest item is one simulator run with its own build directory under pytest's ``tmp_path``
(safe under pytest-xdist). Icarus Verilog is the default simulator (``SIM`` overrides); when it is
missing the test is skipped with the reason, never failed.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

RTL_DIR = Path(__file__).resolve().parents[1] / "rtl"
TESTS_DIR = Path(__file__).resolve().parent
TB_DIR = TESTS_DIR / "hdl"


def rtl_sources(family: str | None = None) -> list[Path]:
    """Every RTL file (one module per file); the toplevel picks what it needs. ``family``
    (``ecp5``): its vendor files (``fpga/rtl/<family>/``) in place of the shared files of the
    same name, as that family's synthesis reads them (hwctl.synth.rtl_sources)."""
    files = {p.name: p for p in RTL_DIR.glob("*.v")}
    if family is not None:
        files.update({p.name: p for p in (RTL_DIR / family).glob("*.v")})
    return sorted(files.values(), key=lambda p: p.name)


# simulation models of the vendor primitives a family's vendor files instantiate (yosys's cell
# libraries declare them as black boxes); never read by synthesis
SIM_MODELS = {"ecp5": [TB_DIR / "DP16KD.v"]}


def sim_sources(family: str | None = None) -> list[Path]:
    """What a simulator or a lint reads: the shared (behavioural) RTL, or with ``family`` the
    RTL as that family's synthesis reads it plus the models of its primitives."""
    if family is None:
        return rtl_sources()
    return [*rtl_sources(family), *SIM_MODELS[family]]


def run_cocotb(
    tmp_path: Path,
    toplevel: str,
    test_module: str,
    parameters: Mapping[str, object] | None = None,
    extra_env: Mapping[str, str] | None = None,
    testcase: str | None = None,
    extra_sources: list[Path] | None = None,
    family: str | None = None,
) -> None:
    """``extra_sources``: testbench-only Verilog (fpga/tests/hdl) besides the RTL. ``family``
    (``ecp5``): simulate the RTL as that family's synthesis reads it (its vendor files, through
    the primitives' models: :func:`sim_sources`)."""
    sim = os.getenv("SIM", "icarus")
    if sim == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog (iverilog) is not installed; run ./dev.sh setup")
    from cocotb_tools.runner import get_runner

    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    runner = get_runner(sim)
    build_dir = tmp_path / f"sim_{toplevel}"
    runner.build(
        sources=[*sim_sources(family), *(extra_sources or [])],
        includes=[RTL_DIR],
        hdl_toplevel=toplevel,
        build_dir=build_dir,
        parameters=dict(parameters or {}),
        always=True,
        timescale=("1ns", "1ps"),
    )
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS_DIR), *sys.path])}
    env.update(extra_env or {})
    runner.test(
        hdl_toplevel=toplevel,
        test_module=test_module,
        build_dir=build_dir,
        extra_env=env,
        testcase=testcase,
    )
