"""The package's layers import only downward.

``src/range_streams`` is layered (docs/Design.md, "Layers"): pure rules at the bottom, then
the flows (generators that yield I/O commands) and the network (our HTTP/1.1 transport),
then the drivers that run flows on a network, then the objects that hold state, and the
public modules on top. A module may import its own package and the packages this table
allows; nothing below imports the public modules. An import that breaks the rule is a
design change: make it in this table, in the open, or move the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "range_streams"

# package -> the packages of ours it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "_core": set(),
    "_net": {"_core"},
    "_flows": {"_core"},
    "_runtime": {"_core", "_net", "_flows"},
    "_state": {"_core", "_net", "_flows", "_runtime"},
}


def _layer_modules() -> list[Path]:
    return sorted(p for layer in ALLOWED for p in (PACKAGE / layer).rglob("*.py"))


def _imported(path: Path) -> set[str]:
    return _imported_by(path.read_text(), path.relative_to(PACKAGE).parent.parts)


def _imported_by(source: str, package: tuple[str, ...]) -> set[str]:
    """The first component under ``range_streams`` of every module ``source`` imports,
    ``source`` being a module of ``package`` (e.g. ``("_core",)``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(
                    package[: len(package) - (node.level - 1)] if node.level > 1 else package
                )
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:  # ``from .. import name``: each name is a module
                    parts = [alias.name for alias in node.names]
                    found.update(parts)
                    continue
                found.add(parts[0])
            elif node.module and node.module.split(".")[0] == "range_streams":
                rest = node.module.split(".")[1:]
                found.update(rest[:1] or [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "range_streams":
                    found.add(parts[1] if len(parts) > 1 else "range_streams")
    return found


@pytest.mark.parametrize("path", _layer_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_layer_imports_only_downward(path: Path) -> None:
    layer = path.relative_to(PACKAGE).parts[0]
    allowed = ALLOWED[layer] | {layer}
    upward = sorted(_imported(path) - allowed)
    assert not upward, f"{path.relative_to(PACKAGE)} ({layer}) imports {upward}"


def test_every_private_package_is_in_the_table() -> None:
    packages = {
        p.name
        for p in PACKAGE.iterdir()
        if p.is_dir() and p.name.startswith("_") and (p / "__init__.py").exists()
    }
    assert packages - {"_cli"} == set(ALLOWED)


def test_the_checker_sees_an_upward_import() -> None:
    # The rule is only as good as the parser: an upward import in each spelling is seen.
    source = (
        "from ..file import RangeFile\n"
        "from .._flows import body\n"
        "from .. import stream\n"
        "from . import spans\n"
        "import range_streams._state.response\n"
        "from range_streams import fsspec\n"
    )
    assert _imported_by(source, ("_core",)) == {
        "file",
        "_flows",
        "stream",
        "_core",
        "_state",
        "fsspec",
    }


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_imports(source: str, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The modules of ours that module ``name`` (of ``source``) imports when it is loaded
    or type-checked: its top-level imports and those under a top-level ``if``
    (``TYPE_CHECKING``), not the ones a function makes when it runs (deliberately late,
    e.g. 1.x's import paths)."""
    package = name.split(".") if is_package else name.split(".")[:-1]
    tree = ast.parse(source)
    nodes = [n for top in tree.body for n in (ast.walk(top) if isinstance(top, ast.If) else [top])]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - (node.level - 1)] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return (found & modules) - {name}


def _cycles(graph: dict[str, set[str]], allowed: set[frozenset[str]]) -> list[list[str]]:
    """One path per module that leads back to it (from the cycle's least module), the
    ``allowed`` ones left out."""
    cycles: list[list[str]] = []
    for start in sorted(graph):
        stack = [[start]]
        seen: set[str] = set()
        while stack:
            trail = stack.pop()
            for nxt in sorted(graph[trail[-1]]):
                if nxt == start and frozenset(trail) not in allowed:
                    cycles.append(trail)
                elif nxt > start and nxt not in seen:
                    seen.add(nxt)
                    stack.append([*trail, nxt])
    return cycles


# Modules that import each other, and why that is so. 1.x's classmethod
# ``RangeStream.make_async_fetcher`` returns an ``AsyncFetcher``, which builds RangeStreams:
# the stream names the fetcher for its type only and imports it when the method runs.
MUTUAL = {frozenset({"range_streams.stream", "range_streams.async_utils"})}


def test_no_two_modules_import_each_other() -> None:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {
        name: _module_imports(path.read_text(), name, path.name == "__init__.py", set(paths))
        for name, path in paths.items()
    }
    assert "range_streams._flows.body" in graph["range_streams._state.response"]
    assert not _cycles(graph, MUTUAL)


@pytest.mark.parametrize(
    ("graph", "cycles"),
    [
        ({"a": {"b"}, "b": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, []),
        ({"x": {"y"}, "y": {"x"}}, []),  # allowed below
    ],
)
def test_the_cycle_check(graph: dict[str, set[str]], cycles: list[list[str]]) -> None:
    assert _cycles(graph, {frozenset({"x", "y"})}) == cycles


def test_a_type_only_import_counts_and_a_late_one_does_not() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .stream_core import StreamCore\n"
        "def f():\n    from .file_core import FileCore\n"
    )
    modules = {"range_streams._state.stream_core", "range_streams._state.file_core"}
    found = _module_imports(source, "range_streams._state.response", False, modules)
    assert found == {"range_streams._state.stream_core"}
