"""Move every reference to the top-level packages ``sim`` and ``firmware`` to their names inside
the hwctl namespace, ``hwctl.sim`` and ``hwctl.firmware`` (issue 19: the wheel installs them there;
the folders stay at the top of the repository, setup.py maps them). A mechanical rewrite, safe to
run again (after merging a branch that still imports ``sim``: ``tests/test_namespace.py`` fails
and names this script)::

    python tools/rewrite_imports.py          # rewrite in place, list what changed, sort imports
    python tools/rewrite_imports.py --check  # only list (exit 1 if anything would change)

What it rewrites, in Python files and in the docs (Markdown, shell, TOML, YAML):

- ``from sim... import`` / ``from firmware... import`` -> ``from hwctl.sim... import``;
- ``import sim.x.y`` -> ``import hwctl.sim.x.y``, and the file's uses of ``sim.x.y`` with it;
- any other dotted name ``sim.x...`` / ``firmware.x...`` (a string such as ``"sim.network"``, a
  ``python -m sim.modelcheck``, a ``:mod:`sim.twin.lab``` reference) when it names a module or
  package of this repository (``sim.yaml`` or ``a.sim.x`` are left alone);
- ``python -m sim`` / ``-m firmware`` (the packages themselves).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD = ("sim", "firmware")
SKIP_DIRS = {".venv", ".git", "build", "sim_build", "__pycache__", ".ruff_cache", ".pytest_cache",
             "node_modules"}
TEXT_EXT = {".py", ".md", ".sh", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".rst"}
ME = Path(__file__).resolve()
#: a file holding this line is left as it is
SKIP_MARK = "rewrite_imports: " + "leave as is"


def is_module(dotted: str) -> bool:
    """``sim.twin.lab`` -> sim/twin/lab.py or sim/twin/lab/__init__.py exists."""
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def module_prefix(dotted: str) -> str | None:
    """The longest leading part of ``dotted`` (two names at least) that is a module here."""
    parts = dotted.split(".")
    for k in range(len(parts), 1, -1):
        if is_module(".".join(parts[:k])):
            return ".".join(parts[:k])
    return None


FROM = re.compile(r"^(\s*)from (sim|firmware)((?:\.\w+)*) import ", re.M)
IMPORT = re.compile(r"^(\s*)import (sim|firmware)((?:\.\w+)*)(\s*(?:#.*)?)$", re.M)
DOTTED = re.compile(r"(?<![\w./\-`])(~?)(sim|firmware)((?:\.[A-Za-z_]\w*)+)")
TICKED = re.compile(r"(`~?)(sim|firmware)((?:\.[A-Za-z_]\w*)+)")
RUN_M = re.compile(r"(-m\s+)(sim|firmware)(?=[\s.\"'`)]|$)", re.M)


def rewrite(text: str, python: bool) -> str:
    if python:
        text = FROM.sub(lambda m: f"{m[1]}from hwctl.{m[2]}{m[3]} import ", text)
        bound = []

        def imp(m: re.Match) -> str:
            if m[3]:
                bound.append(m[2] + m[3])
            return f"{m[1]}import hwctl.{m[2]}{m[3]}{m[4]}"

        text = IMPORT.sub(imp, text)
        for name in sorted(set(bound), key=len, reverse=True):  # their uses in this file
            text = re.sub(rf"(?<![\w.]){re.escape(name)}\b", f"hwctl.{name}", text)

    def dotted(m: re.Match) -> str:
        prefix = module_prefix(m[2] + m[3])
        return f"{m[1]}hwctl.{m[2]}{m[3]}" if prefix else m[0]

    text = TICKED.sub(lambda m: (f"{m[1]}hwctl.{m[2]}{m[3]}" if module_prefix(m[2] + m[3])
                                 else m[0]), text)
    text = DOTTED.sub(dotted, text)
    return RUN_M.sub(lambda m: f"{m[1]}hwctl.{m[2]}", text)


def files() -> list[Path]:
    out = []
    for p in ROOT.rglob("*"):
        rel = p.relative_to(ROOT)
        if any(part in SKIP_DIRS for part in rel.parts) or p.resolve() == ME:
            continue
        if p.is_file() and (p.suffix in TEXT_EXT or p.name == "dev.sh"):
            out.append(p)
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="list only; exit 1 if anything changes")
    args = ap.parse_args(argv)
    changed = 0
    for p in files():
        try:
            old = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if SKIP_MARK in old:  # a file that names the old imports on purpose (its test)
            continue
        new = rewrite(old, p.suffix == ".py")
        if new != old:
            changed += 1
            n = sum(a != b for a, b in zip(old.splitlines(), new.splitlines(), strict=False))
            print(f"{p.relative_to(ROOT)}: {n} line(s)")
            if not args.check:
                p.write_text(new, encoding="utf-8")
    print(f"{changed} file(s) {'would change' if args.check else 'changed'}", file=sys.stderr)
    if changed and not args.check:  # the moved imports sorted again (ruff's isort rules)
        import subprocess

        subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "I", "--fix", "-q",
                        str(ROOT)], check=False)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
