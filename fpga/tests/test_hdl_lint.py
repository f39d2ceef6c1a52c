"""`verilator --lint-only -Wall` must be clean for every RTL module (each as its own top)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cocotb_run import RTL_DIR, rtl_sources

MODULES = sorted(p.stem for p in rtl_sources())


@pytest.mark.rtl
@pytest.mark.parametrize("module", MODULES)
def test_verilator_lint(module: str) -> None:
    if shutil.which("verilator") is None:
        pytest.skip("verilator is not installed; run ./dev.sh setup")
    cmd = [
        "verilator", "--lint-only", "-Wall", f"-I{RTL_DIR}", "--top-module", module,
        *map(str, rtl_sources()),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr


@pytest.mark.rtl
@pytest.mark.parametrize("profile", ["esp", "verify"])
def test_verilator_lint_top_profiles(profile: str) -> None:
    """The node top as each reduced build profile makes it (modes left out by generate)."""
    from hwctl.wire.features import get_profile

    if shutil.which("verilator") is None:
        pytest.skip("verilator is not installed; run ./dev.sh setup")
    params = [f"-G{k}={v}" for k, v in get_profile(profile).params.items()]
    cmd = ["verilator", "--lint-only", "-Wall", f"-I{RTL_DIR}", "--top-module", "top", *params,
           *map(str, rtl_sources())]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr
