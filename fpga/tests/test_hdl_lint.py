"""`verilator --lint-only -Wall` must be clean for every RTL module (each as its own top).

A lint run has two hang bounds, neither a budget: its CPU time (``HWCTL_LINT_CPU_S``, default
120 s; the kernel's RLIMIT_CPU stops a runaway whatever the load, and a run starved by other jobs
uses little CPU, so the bound scales with the machine's load by itself) and its wall time
(``HWCTL_LINT_HANG_S``, default 1000 s: only a run that waits and computes nothing; below
pytest-timeout's 1200 s, so its message comes first). Linting ``top`` takes about 1 s of CPU
(0.85 s measured, 6.9 s of wall time at load 14); its fixed 120 s wall-clock timeout ran out at
load 20+ under ``nice``. Either bound fails the test with one line that says which and how to
raise it."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys

import pytest
from cocotb_run import RTL_DIR, rtl_sources, sim_sources

MODULES = sorted(p.stem for p in rtl_sources())


def _bound(var: str, default: float) -> float:
    raw = os.environ.get(var, "")
    try:
        v = float(raw) if raw else default
    except ValueError:
        v = -1.0
    if not 0 < v < float("inf"):
        pytest.fail(f"{var}={raw!r}: give a positive number of seconds (a hang bound)",
                    pytrace=False)
    return v


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux /proc)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_bounded(cmd: list[str], what: str, cpu_s: float | None = None,
                hang_s: float | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` (a lint of ``what``) under the two hang bounds of the module docstring;
    either one fails the test with a line naming it and its variable."""
    cpu_s = _bound("HWCTL_LINT_CPU_S", 120.0) if cpu_s is None else cpu_s
    hang_s = _bound("HWCTL_LINT_HANG_S", 1000.0) if hang_s is None else hang_s
    soft = max(1, round(cpu_s))

    def limit_cpu() -> None:  # in the child: SIGXCPU at the soft limit, SIGKILL 5 s later
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))

    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=limit_cpu)
    try:
        out, err = p.communicate(timeout=hang_s)
    except subprocess.TimeoutExpired:
        used = _cpu_s(p.pid)
        p.kill()
        p.communicate()
        pytest.fail(f"{what}: no result after {hang_s:g} s of wall time ("
                    + ("CPU time unknown" if used is None else f"{used:.1f} s of CPU")
                    + "; a loaded machine gives it little CPU): raise the hang bound with "
                    "HWCTL_LINT_HANG_S=SECONDS", pytrace=False)
    if p.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        pytest.fail(f"{what}: stopped after {soft} s of CPU without a result (a lint of top "
                    "takes about 1 s): a runaway, or raise the bound with "
                    "HWCTL_LINT_CPU_S=SECONDS", pytrace=False)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


@pytest.mark.rtl
@pytest.mark.parametrize("module", MODULES)
def test_verilator_lint(module: str) -> None:
    if shutil.which("verilator") is None:
        pytest.skip("verilator is not installed; run ./dev.sh setup")
    cmd = [
        "verilator", "--lint-only", "-Wall", f"-I{RTL_DIR}", "--top-module", module,
        *map(str, sim_sources()),
    ]
    res = run_bounded(cmd, f"verilator --lint-only of {module}")
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr


VENDOR = sorted((fam, p.stem) for fam in ("ecp5",) for p in (RTL_DIR / fam).glob("*.v"))


@pytest.mark.rtl
@pytest.mark.parametrize(("family", "module"), VENDOR)
def test_verilator_lint_vendor(family: str, module: str) -> None:
    """A family's vendor files (fpga/rtl/<family>/) with the primitives' models, in place of
    the shared files of their names."""
    if shutil.which("verilator") is None:
        pytest.skip("verilator is not installed; run ./dev.sh setup")
    cmd = ["verilator", "--lint-only", "-Wall", f"-I{RTL_DIR}", "--top-module", module,
           *map(str, sim_sources(family))]
    res = run_bounded(cmd, f"verilator --lint-only of {family}/{module}")
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
           *map(str, sim_sources())]
    res = run_bounded(cmd, f"verilator --lint-only of top (profile {profile})")
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr


def test_a_runaway_lint_is_stopped_by_its_cpu_bound() -> None:
    """A child that computes for ever is stopped by RLIMIT_CPU (after 1 s of its own CPU time,
    however long the machine's load makes that) with the CPU line."""
    spin = [sys.executable, "-c", "while True: pass"]
    with pytest.raises(pytest.fail.Exception, match=r"1 s of CPU .*HWCTL_LINT_CPU_S"):
        run_bounded(spin, "spin", cpu_s=1.0, hang_s=1000.0)


def test_a_lint_that_waits_is_stopped_by_its_wall_bound() -> None:
    """A child that waits and computes nothing meets the wall-clock bound, with the hang line
    (the CPU it had: none to speak of)."""
    wait = [sys.executable, "-c", "import time; time.sleep(600)"]
    with pytest.raises(pytest.fail.Exception, match=r"0.2 s of wall time .*HWCTL_LINT_HANG_S"):
        run_bounded(wait, "wait", cpu_s=100.0, hang_s=0.2)


@pytest.mark.parametrize("raw", ["0", "-5", "abc", "inf", "nan"])
def test_a_bad_bound_is_one_line(monkeypatch, raw: str) -> None:
    monkeypatch.setenv("HWCTL_LINT_CPU_S", raw)
    with pytest.raises(pytest.fail.Exception, match="HWCTL_LINT_CPU_S=.*positive number"):
        run_bounded(["true"], "true")
