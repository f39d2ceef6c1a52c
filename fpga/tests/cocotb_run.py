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


def rtl_sources() -> list[Path]:
    """Every RTL file (one module per file); the toplevel picks what it needs."""
    return sorted(RTL_DIR.glob("*.v"))


# simulation models of the vendor primitives the RTL instantiates for one family (yosys's cell
# libraries declare them as black boxes); never read by synthesis
SIM_MODELS = [TB_DIR / "DP16KD.v"]


def sim_sources() -> list[Path]:
    """The RTL and the primitives' simulation models: what a simulator or a lint reads."""
    return [*rtl_sources(), *SIM_MODELS]


def run_cocotb(
    tmp_path: Path,
    toplevel: str,
    test_module: str,
    parameters: Mapping[str, object] | None = None,
    extra_env: Mapping[str, str] | None = None,
    testcase: str | None = None,
    extra_sources: list[Path] | None = None,
) -> None:
    """``extra_sources``: testbench-only Verilog (fpga/tests/hdl) besides the RTL."""
    sim = os.getenv("SIM", "icarus")
    if sim == "icarus" and shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog (iverilog) is not installed; run ./dev.sh setup")
    from cocotb_tools.runner import get_runner

    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    runner = get_runner(sim)
    build_dir = tmp_path / f"sim_{toplevel}"
    runner.build(
        sources=[*sim_sources(), *(extra_sources or [])],
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
