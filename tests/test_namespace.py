"""sim/ and firmware/ are the packages ``hwctl.sim`` and ``hwctl.firmware`` (issue 19: a wheel
installs no generic top-level ``sim`` or ``firmware``; the folders stay at the top of the
repository, mapped by setup.py and, in a checkout, by ``hwctl/__init__.py``). No code imports the
old top-level names: fix one with ``python tools/rewrite_imports.py``."""

# rewrite_imports: leave as is (this test writes the old imports on purpose)
from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import hwctl

REPO = Path(__file__).resolve().parents[1]
OLD = ("sim", "firmware")
SKIP = {".venv", ".git", "build", "sim_build", "__pycache__"}


def top_level_imports(path: Path, root: Path = REPO) -> list[str]:
    """``import sim...`` / ``from firmware... import`` statements (absolute) in ``path``."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        bad += [f"{path.relative_to(root)}:{node.lineno}: {n}" for n in names
                if n.split(".")[0] in OLD]
    return bad


def python_files() -> list[Path]:
    return [p for p in REPO.rglob("*.py")
            if not SKIP & set(p.relative_to(REPO).parts)]


def test_no_code_imports_top_level_sim_or_firmware() -> None:
    files = python_files()
    assert len(files) > 100
    bad = [b for p in files for b in top_level_imports(p)]
    assert not bad, ("imports of the old top-level packages (run python tools/rewrite_imports.py):"
                     "\n" + "\n".join(bad))


def test_the_check_finds_an_old_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import os\nfrom sim.twin import lab\ndef g():\n    import firmware.bridge\n"
                 "from hwctl.sim import topologies\nfrom . import sim\n")
    found = [b.split(": ")[1] for b in top_level_imports(f, tmp_path)]
    assert found == ["sim.twin", "firmware.bridge"]


def test_hwctl_sim_is_this_checkouts_folder() -> None:
    """In this process and in a fresh one with only PYTHONPATH pointing here (an environment's
    editable install of another checkout must not win), from another working directory."""
    root = Path(hwctl.__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():  # an installed hwctl: tests/test_package.py
        return
    for name, folder in (("hwctl.sim", "sim"), ("hwctl.firmware", "firmware")):
        spec = importlib.util.find_spec(name)
        assert spec is not None and Path(spec.origin).resolve() == root / folder / "__init__.py"
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", "import hwctl.sim.twin.lab as m, hwctl.firmware as f;"
                          " print(m.__file__); print(f.__file__)"], cwd="/", env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert [Path(p).resolve() for p in out] == [root / "sim" / "twin" / "lab.py",
                                                root / "firmware" / "__init__.py"]
