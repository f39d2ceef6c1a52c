"""Every command is documented, and the docs name only flags that exist.

A new user meets hwctl through ``--help`` and the README/docs: every command and subcommand has a
description, every option a help line, every command is named in README.md or docs/ (or
fpga/README.md), and every ``--flag`` the docs write after ``hwctl CMD [SUB]`` is an option of
that command (a renamed flag in the code must not leave the docs behind)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from hwctl.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "fpga" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


def _options(p: argparse.ArgumentParser) -> set[str]:
    return {o for a in p._actions for o in a.option_strings}


def _walk(p: argparse.ArgumentParser, path: list[str]):
    yield path, p
    for name, child in _subcommands(p).items():
        yield from _walk(child, [*path, name])


def _docs_text() -> str:
    return "\n".join(f.read_text() for f in DOCS)


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, p in _walk(build_parser(), ["hwctl"]):
        if len(path) > 1 and not p.description:
            missing.append(" ".join(path) + ": no description")
        for a in p._actions:
            if a.help is None and not isinstance(a, argparse._SubParsersAction):
                missing.append(f"{' '.join(path)} {a.option_strings or a.dest}: no help")
    assert not missing, missing


def test_help_has_no_docstring_markup() -> None:
    """`hwctl study verification --help` began with ``hwctl study verification``: (its module
    docstring's reStructuredText): --help is read as plain text."""
    marked = []
    for path, p in _walk(build_parser(), ["hwctl"]):
        for text in [p.description or "", p.epilog or "", *(a.help or "" for a in p._actions)]:
            if re.search(r"``|:(class|func|mod|meth):`", text):
                marked.append(f"{' '.join(path)}: {text[:60]!r}")
    assert not marked, marked


def test_every_option_with_a_default_says_it_in_its_help() -> None:
    """A user reads --help to learn what happens without the option: `hwctl twin --help` gave no
    default for --mode, --speed, --dark-rate, --header-period, --header-arrival or --seed, `hwctl
    sim --help` none for --fidelity or --seed. Every option that takes a value and has a default
    says it ("default" in its help line)."""
    missing = []
    for path, p in _walk(build_parser(), ["hwctl"]):
        for a in p._actions:
            if (not a.option_strings or a.nargs == 0 or a.help in (None, argparse.SUPPRESS)
                    or a.default in (None, argparse.SUPPRESS) or a.default == []):
                continue
            if "default" not in a.help.lower():
                missing.append(f"{' '.join(path)} {a.option_strings[-1]} (default {a.default!r})")
    assert not missing, missing


#: options whose default is chosen when the command runs (default=None in argparse, so the test
#: above skips them) but that still act without the option: their help says what happens.
COMPUTED_DEFAULTS = [("fpga", "prove", "--out"), ("fpga", "build", "--out"),
                     ("fpga", "build", "--device"), ("fpga", "build", "--profile"),
                     ("fpga", "flash", "--bitstream"), ("fpga", "selftest", "--clock-hz")]


def test_options_with_a_computed_default_say_it() -> None:
    """`hwctl fpga prove --help` said "--out: keep the sby work directories here": without it, a
    temporary directory removed afterwards, not said. Each option of COMPUTED_DEFAULTS says its
    default (and is still an option with default None, so the list cannot go stale)."""
    parsers = {tuple(path[1:]): p for path, p in _walk(build_parser(), ["hwctl"])}
    missing = []
    for *cmd, opt in COMPUTED_DEFAULTS:
        act = next(a for a in parsers[tuple(cmd)]._actions if opt in a.option_strings)
        assert act.default is None, (cmd, opt)
        if "default" not in (act.help or "").lower():
            missing.append(f"hwctl {' '.join(cmd)} {opt}")
    assert not missing, missing


def test_every_duration_says_what_happens_without_it() -> None:
    """`hwctl twin --help` / `bridge --help` said "--duration: stop after this many seconds" and
    `node --help` "override the config's duration": without it, do they run for ever? Every
    --duration says its default."""
    missing = [" ".join(path) for path, p in _walk(build_parser(), ["hwctl"])
               for a in p._actions if "--duration" in a.option_strings
               and "default" not in (a.help or "").lower()]
    assert not missing, missing


def test_every_command_is_named_in_the_docs() -> None:
    text = _docs_text()
    missing = [" ".join(path) for path, _ in _walk(build_parser(), ["hwctl"])
               if len(path) > 1 and " ".join(path) not in text]
    assert not missing, f"not in README.md / docs/: {missing}"


def _bad_flags(text: str, where: str) -> list[str]:
    """The ``--flags`` written after ``hwctl CMD [SUB]`` in ``text`` that CMD [SUB] does not take."""
    root = build_parser()
    cmds = _subcommands(root)
    bad = []
    for m in re.finditer(r"hwctl ((?:-\S+ )*)([a-z]+)((?: [^`\n|]*)?)", text):
        if m.group(2) not in COMMANDS:
            continue
        p, rest = cmds[m.group(2)], m.group(3).split()
        nested = _subcommands(p)
        if rest and rest[0] in nested:
            p, rest = nested[rest[0]], rest[1:]
        known = _options(p) | _options(root)
        for tok in rest:
            for flag in tok.split("=")[0].rstrip(",.;:)`'\"").split("/"):  # --pty/--zmq: both
                if flag.startswith("--") and len(flag) > 2 and flag not in known:
                    bad.append(f"{where}: {m.group(0)[:80]!r}: {flag}")
    return bad


def test_docs_name_only_existing_flags() -> None:
    bad = [b for f in DOCS for b in _bad_flags(f.read_text(), str(f.relative_to(ROOT)))]
    assert not bad, bad


def test_the_docs_check_catches_a_wrong_flag() -> None:
    """The check above can fail: a misspelt flag, a flag of another subcommand."""
    assert _bad_flags("run `hwctl sim --topolgy 3x3`", "x")
    assert _bad_flags("`hwctl fpga flash --board ulx3s --pins-only`", "x")  # build's, not flash's
    assert not _bad_flags("`hwctl -v sim --topology 3x3 --seed 1` | `hwctl fpga build --dry-run`",
                          "x")


def test_readme_says_what_dev_sh_test_runs() -> None:
    """`./dev.sh test` leaves the `slow` tests out (-m 'not slow'): the README's set-up block
    must say so, not promise the whole suite."""
    dev = (ROOT / "dev.sh").read_text()
    assert "-m 'not slow'" in dev.split("\n    test)", 1)[1].split(";;", 1)[0]
    block = (ROOT / "README.md").read_text().split("```sh", 1)[1].split("```", 1)[0]
    test_line = block[block.index("./dev.sh test"):]
    assert "whole test suite" not in test_line and "slow" in test_line


def test_dev_sh_installs_python_venv_on_a_fresh_debian() -> None:
    """README: `./dev.sh demo` on a fresh Debian 12. Debian's python3 has no venv/ensurepip until
    python3-venv is installed (and a minimal image has no python3), so dev.sh must ask apt-get
    for them before `python3 -m venv`."""
    dev = (ROOT / "dev.sh").read_text()
    checks = dev[:dev.index("setup() {")]
    assert "need_apt+=(python3)" in checks and "need_apt+=(python3-venv)" in checks
    assert "import ensurepip" in checks
