"""The package as a user gets it: the public API of ``import hwctl``, and a wheel built from this
checkout, installed into a fresh virtual environment, running ``hwctl sim``, ``hwctl synth --help``
(with the RTL shipped inside the wheel), the demo's imports, and ``hwctl fpga boards`` / ``build
--dry-run`` / ``prove --dry-run`` (boards and formal harnesses shipped inside the wheel)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import hwctl

REPO = Path(__file__).resolve().parents[1]


def test_public_api_names_resolve_with_docstrings() -> None:
    names = [n for n in hwctl.__all__ if n != "__version__"]
    assert set(names) == set(hwctl._API)
    assert {"open_backend", "simulate", "EspNode", "DqpScheduler", "VerificationCore"} <= set(names)
    for name in names:
        obj = getattr(hwctl, name)
        assert (obj.__doc__ or "").strip(), f"hwctl.{name} has no docstring"
    assert set(names) <= set(dir(hwctl))
    with pytest.raises(AttributeError):
        _ = hwctl.no_such_name


def test_public_api_methods_have_docstrings() -> None:
    """Every public method and property of the classes ``import hwctl`` exports says what it
    does (issue 19: "about half the public functions have no docstring")."""
    import inspect

    missing = []
    for name in hwctl.__all__:
        obj = getattr(hwctl, name, None)
        if not inspect.isclass(obj):
            continue
        for attr, v in vars(obj).items():
            if attr.startswith("_"):
                continue
            f = v.fget if isinstance(v, property) else getattr(v, "__func__", v)
            if (callable(f) or isinstance(v, property)) and not (f.__doc__ or "").strip():
                missing.append(f"{name}.{attr}")
    assert not missing, f"public API without a docstring: {missing}"


def test_rtl_dir_has_the_sources() -> None:
    from hwctl import synth

    names = {p.name for p in synth.rtl_sources(synth.RTL_DIR)}
    assert "top.v" in names and (synth.RTL_DIR / "wire_spec.vh").is_file()


def _copy_sources(dst: Path) -> None:
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, dst / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "sim_build")
    for d in ("hwctl", "sim", "firmware", "fpga/rtl", "fpga/boards", "fpga/formal"):
        shutil.copytree(REPO / d, dst / d, ignore=ignore)


def zf_top_level(wheel: Path) -> set[str]:
    """The wheel's top-level importable names (its top_level.txt, else its folders)."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        tl = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        if tl:
            return {x for x in zf.read(tl[0]).decode().split() if x}
    return {n.split("/")[0] for n in names if "/" in n and ".dist-info" not in n.split("/")[0]}


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{cmd}: rc {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    src = tmp_path / "src"
    src.mkdir()
    _copy_sources(src)
    dist = tmp_path / "dist"
    # no build isolation: builds offline with the setuptools of the test environment
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(dist), str(src)], tmp_path, env)
    (wheel,) = dist.glob("hwctl-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "hwctl/rtl/top.v" in names and "hwctl/rtl/wire_spec.vh" in names
    assert {"hwctl/boards/board_leds.v", "hwctl/boards/ulx3s/pins.lpf",
            "hwctl/boards/hx8k_breakout/pins.pcf", "hwctl/boards/ulx3s/board_top.v",
            "hwctl/formal/sync_fifo.sby", "hwctl/formal/sync_fifo_props.v"} <= names
    assert "hwctl/py.typed" in names and "hwctl/wire/spec.toml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("fpga/", "tests/")) for n in names)
    # sim/ and firmware/ inside the hwctl namespace, no generic top-level packages (issue 19)
    assert not any(n.startswith(("sim/", "firmware/")) for n in names)
    assert {"hwctl/sim/__init__.py", "hwctl/sim/twin/lab.py", "hwctl/firmware/bridge.py"} <= names
    top = zf_top_level(wheel)
    assert top <= {"hwctl"}, top
    assert "License-Expression: MIT" in meta and "Classifier: Typing :: Typed" in meta

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    py = venv / "bin" / "python"
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        tmp_path, env).stdout.strip())
    # dependencies from the test environment (appended after the venv's own site-packages, and a
    # plain path: the test environment's own .pth files, e.g. an editable hwctl, are not run)
    (purelib / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
          str(wheel)], tmp_path, env)
    work = tmp_path / "work"
    work.mkdir()
    hw = str(venv / "bin" / "hwctl")

    where = json.loads(_run([str(py), "-c", (
        "import importlib.util, json, hwctl, hwctl.synth, hwctl.demo, hwctl.node, hwctl.sim.twin,"
        " hwctl.transport;"
        "print(json.dumps({'hwctl': hwctl.__file__, 'rtl': str(hwctl.synth.RTL_DIR),"
        " 'n_rtl': len(hwctl.synth.rtl_sources()), 'open_backend': callable(hwctl.open_backend),"
        " 'sim': hwctl.sim.twin.__file__, 'no_top_level_sim': all(importlib.util.find_spec(n) is"
        " None for n in ('sim', 'firmware'))}))"
    )], work, env).stdout)
    assert where["hwctl"].startswith(str(purelib)), where
    assert where["rtl"].startswith(str(purelib)) and where["n_rtl"] >= 10, where
    assert where["open_backend"]
    assert where["sim"].startswith(str(purelib / "hwctl" / "sim")), where
    assert where["no_top_level_sim"], where

    out = json.loads(_run([hw, "sim", "--topology", "K2", "--duration", "1", "--json"], work,
                          env).stdout)
    assert out["topology"] == "K2"
    assert "--target" in _run([hw, "synth", "--help"], work, env).stdout
    assert "--duration" in _run([hw, "demo", "--help"], work, env).stdout

    # boards and formal harnesses from the wheel: listed, staged with every file each flow reads
    listed = _run([hw, "fpga", "boards"], work, env).stdout
    assert "hx8k_breakout" in listed and str(purelib / "hwctl" / "boards" / "ulx3s") in listed
    for board in ("hx8k_breakout", "ulx3s"):
        plan = json.loads(_run([hw, "fpga", "build", "--board", board, "--dry-run", "--json",
                                "--out", str(work / board)], work, env).stdout)
        assert {"top.v", "board_top.v", "board_leds.v", "wire_spec.vh"} <= set(plan["staged"])
        assert {"pins.pcf", "pins.lpf"} & set(plan["staged"])
        assert any(c.startswith("nextpnr-") for c in plan["commands"]), plan
    proofs = _run([hw, "fpga", "prove", "--dry-run"], work, env).stdout.splitlines()
    assert len(proofs) >= 10 and all(ln.startswith("staged") for ln in proofs), proofs
