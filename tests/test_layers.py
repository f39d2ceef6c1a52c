"""Layers point one way (issue 19, PREAMBLE standards): protocol cores, wire and physics at the
bottom; transports above them; the software twin above the transports (it implements a transport
link and registers its ``twin://`` scheme); services, CLI and apps on top. No module imports one of
a higher layer, whether at the top of the file or inside a function (imports under
``if TYPE_CHECKING:`` are for type checkers only and are skipped).

Found from the source with the ``ast`` module, so the test sees lazy imports too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hwctl", "sim", "firmware")
#: folders installed inside the hwctl namespace
MAPPED = ("sim", "firmware")

CORE, TRANSPORT, TWIN, APP = 0, 1, 2, 3
NAMES = {CORE: "core/wire/physics", TRANSPORT: "transport", TWIN: "twin", APP: "app"}

#: module prefix -> layer; the longest matching prefix wins; modules of hwctl, sim and firmware
#: that match nothing are apps (the top: constrains nothing below it)
LAYER_OF: dict[str, int] = {
    "hwctl.errors": CORE,
    "hwctl.argtypes": CORE,
    "hwctl.protocols": CORE,
    "hwctl.wire": CORE,
    "hwctl.physics": CORE,
    "hwctl.slots": CORE,
    "hwctl.hdrblock": CORE,
    "hwctl.schema": CORE,
    "hwctl.timebase": CORE,
    "hwctl.sim.topologies": CORE,
    "hwctl.sim.uartbfm": CORE,
    "hwctl.transport": TRANSPORT,
    "hwctl.instruments": TRANSPORT,
    "hwctl.instruments.cli": APP,
    "hwctl.sim.twin": TWIN,
    "hwctl.sim.twin.serve": APP,
    "hwctl.sim.network": APP,
    "hwctl.sim.verification": APP,
    "hwctl.sim.bound": APP,
    "hwctl.firmware": APP,
}


#: modules whose layer is their own (not a prefix for the modules below them)
EXACT: dict[str, int] = {
    # the package root imports nothing eagerly: its public API is loaded on first use (PEP 562)
    "hwctl": CORE,
    "hwctl.sim": CORE,  # empty
}


def layer(module: str) -> int:
    if module in EXACT:
        return EXACT[module]
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        prefix = ".".join(parts[:k])
        if prefix in LAYER_OF:
            return LAYER_OF[prefix]
    return APP


def module_name(path: Path) -> str:
    """The module's name: the top-level folders sim/ and firmware/ are ``hwctl.sim`` and
    ``hwctl.firmware`` (setup.py; tests/test_namespace.py)."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] in MAPPED:
        parts.insert(0, "hwctl")
    return ".".join(parts)


def _is_module(name: str) -> bool:
    parts = name.split(".")
    if parts[:1] == ["hwctl"] and parts[1:2] and parts[1] in MAPPED:
        parts = parts[1:]
    base = REPO.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else \
                test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skip.update(id(n) for n in ast.walk(child))
    return skip


def imports(path: Path) -> set[str]:
    """The project modules ``path`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    me = module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = me.split(".")
                if path.name != "__init__.py":
                    pkg = pkg[:-1]
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join([*pkg, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.add(sub if _is_module(sub) else base)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def violations(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{src} ({NAMES[layer(src)]}) imports {dst} ({NAMES[layer(dst)]})"
                  for src, dsts in edges.items() for dst in dsts if layer(dst) > layer(src))


def import_graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    return {module_name(p): imports(p) for p in files}


def test_layers_point_one_way() -> None:
    graph = import_graph()
    assert len(graph) > 40
    bad = violations(graph)
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_transport_does_not_know_the_twin() -> None:
    graph = import_graph()
    for mod, deps in graph.items():
        if mod.startswith("hwctl.transport"):
            assert not any(d.startswith("hwctl.sim") for d in deps), (mod, deps)


@pytest.mark.parametrize("src,dst", [
    ("hwctl.transport.links", "hwctl.sim.twin.pacing"),   # what the transport used to do
    ("hwctl.protocols.esp", "hwctl.transport"),
    ("hwctl.sim.twin.model", "hwctl.node"),
    ("hwctl.wire.codec", "hwctl.output"),
])
def test_checker_flags_upward_imports(src: str, dst: str) -> None:
    assert violations({src: {dst}})


def test_checker_sees_lazy_and_from_imports(tmp_path: Path) -> None:
    # the real file list must resolve `from pkg import module` to the module
    deps = imports(REPO / "sim" / "twin" / "lab.py")
    assert "hwctl.timebase" in deps
    deps = imports(REPO / "hwctl" / "simcli.py")  # imports hwctl.sim.network inside run()
    assert "hwctl.sim.network" in deps
