"""The package's layers import only downward, and README.md's Layout names every module.

``src/range_streams`` is layered (docs/Design.md, "Layers"): pure rules at the bottom, then
the flows (generators that yield I/O commands) and the network (our HTTP/1.1 transport),
then the drivers that run flows on a network, then the objects that hold state, and the
public modules on top. A module may import its own package and the packages this table
allows; nothing below imports the public modules. An import that breaks the rule is a
design change: make it in this table, in the open, or move the code.
"""

from __future__ import annotations

import ast
import re
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


# -- README's Layout names every module ----------------------------------------------------

ROOT = PACKAGE.parents[1]
_TICKED = re.compile(r"`([^`\n]+)`")
_GROUP = re.compile(r"`(\w+)/`\s*\(([^()]*)\)")


def _tree() -> set[str]:
    """Every module and package under ``src/range_streams``, as paths relative to it
    without ``.py`` (``_core/spans``, ``codecs/zip``, ``stream``); a package's
    ``__init__.py`` is the package."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).with_suffix("")
        if relative.name == "__init__":
            relative = relative.parent
        if relative.parts:
            found.add(relative.as_posix())
    return found


def _bullets(section: str) -> list[str]:
    """The items of the section's bullet lists, each joined onto one line."""
    items: list[str] = []
    for line in section.splitlines():
        if line.startswith("- "):
            items.append(line[2:])
        elif line.startswith(" ") and items and line.strip():
            items[-1] += " " + line.strip()
        elif items and not line.startswith(" "):
            items.append("")  # a paragraph after the list: not part of any item
    return [item for item in items if item]


def layout_names(readme: str) -> set[str]:
    """What README's "## Layout" section names, as ``_tree()`` spells it.

    Each bullet is one package: its first ticked name when that ends in ``/`` (names in
    the bullet are then inside it), else the package's top (``stream.py``). A ticked
    ``sub/`` followed by a parenthesis names that subpackage and, inside the parenthesis,
    its modules. Every ticked name in a bullet is a module or package: the section names
    nothing else in backticks.
    """
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for bullet in _bullets(section):
        ticked = _TICKED.findall(bullet)
        base = ticked[0].rstrip("/") if ticked and ticked[0].endswith("/") else ""
        for sub, inside in _GROUP.findall(bullet):
            names.add(_join(base, sub))
            names.update(_join(base, sub, token) for token in _TICKED.findall(inside))
        rest = _TICKED.findall(_GROUP.sub("", bullet))
        names.update(_join(base, token) for token in (rest[1:] if base else rest))
        if base:
            names.add(base)
    return names


def _join(*parts: str) -> str:
    """``("codecs", "zip/")`` -> ``codecs/zip``; ``("", "stream.py")`` -> ``stream``."""
    last = parts[-1].rstrip("/").removesuffix(".py")
    return "/".join(part for part in (*parts[:-1], last) if part)


def test_readme_layout_names_every_module() -> None:
    named = layout_names((ROOT / "README.md").read_text(encoding="utf-8"))
    tree = _tree()
    assert named == tree, (
        f"README.md's Layout does not name {sorted(tree - named)};"
        f" it names {sorted(named - tree)}, which do not exist"
    )


def test_the_layout_reader_sees_missing_and_extra_modules() -> None:
    readme = (
        "# x\n\n## Layout\n\nIntro naming `src/range_streams/`.\n\n"
        "- `_core/`: pure: `spans`, `gone` (a module that\n"
        "  is no more).\n"
        "- `codecs/`: `zip/` (`_reader`, `_info`), `_io`; and `tar/`.\n"
        "- public: `stream.py`, `_cli/`.\n\n"
        "See `elsewhere`.\n\n## Next\n\n- `_flows/`: `body`\n"
    )
    assert layout_names(readme) == {
        "_core",
        "_core/spans",
        "_core/gone",
        "codecs",
        "codecs/zip",
        "codecs/zip/_reader",
        "codecs/zip/_info",
        "codecs/_io",
        "codecs/tar",
        "stream",
        "_cli",
    }
