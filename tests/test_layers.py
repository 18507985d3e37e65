"""The package's layers import only downward, and the docs name the tree as it is: README.md's
Layout names every module, and no page names a module or path that does not exist.

``src/range_streams`` is layered (docs/Design.md, "Layers"): pure rules at the bottom, then
the flows (generators that yield I/O commands) and the network (our HTTP/1.1 transport),
then the drivers that run flows on a network, then the objects that hold state, and the
public modules on top. A module may import its own package and the packages this table
allows; nothing below imports the public modules. An import that breaks the rule is a
design change: make it in this table, in the open, or move the code.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
import types
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


# -- the docs name modules and paths that exist ---------------------------------------------

DOC_PAGES = sorted(
    [ROOT / "README.md", ROOT / "tests" / "README.md", *(ROOT / "docs").rglob("*.md")]
)
# Pages whose bare ``_name`` tokens are not all modules of ours: fsspec's methods, 1.x's
# private attributes. On every other page such a token is a module or package.
PRIVATE_NAMES = {ROOT / "docs" / "fsspec.md", ROOT / "docs" / "Migration.md"}
# A page about range-streams 1.x, naming 1.x's modules and names (some gone on purpose):
# only its paths are checked.
NAMES_1X = {ROOT / "docs" / "Migration.md"}
_FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_REPO_PATH = re.compile(r"(?<![\w/.-])(?:src|tests|docs|benchmarks|scripts)/[\w./-]*[\w/]")
_PATH_LIKE = re.compile(r"[\w./]+")
_DOTTED = re.compile(r"\w+(?:\.\w+)+")
_PRIVATE_NAME = re.compile(r"_[a-z]\w*")
_PRIVATE_CLASS = re.compile(r"_[A-Z]\w*(?:\.\w+)*")


@functools.cache
def _defined_names() -> frozenset[str]:
    """Every class, function and assigned name defined anywhere in the package."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return frozenset(names)


def _resolve(dotted: str) -> str | None:
    """Why ``range_streams.<dotted>`` (modules, then attributes) does not exist, or None."""
    target: object = importlib.import_module("range_streams")
    path = PACKAGE
    for part in dotted.split("."):
        path = path / part
        module = path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()
        if isinstance(target, types.ModuleType) and module:
            target = importlib.import_module(f"{target.__name__}.{part}")
        elif hasattr(target, part):
            target = getattr(target, part)
        else:
            return f"{getattr(target, '__name__', target)} has no {part!r}"
    return None


def reference_problem(
    token: str, bare_names_are_modules: bool, here: Path | None = None
) -> str | None:
    """Why a ticked ``token`` names a module of ours (or a name in one) that does not
    exist; None when it exists, or when it does not point into our package at all. A
    path that exists relative to ``here`` (the page's directory) is fine too."""
    token = token.removeprefix("src/range_streams/")
    if not _PATH_LIKE.fullmatch(token) or (here is not None and (here / token).exists()):
        return None
    first = re.split(r"[./]", token, maxsplit=1)[0]
    if "/" in token:  # a path: _core/spans, codecs/_io.py, _cli/
        if not first or not (PACKAGE / first / "__init__.py").is_file():
            return None  # not ours (fsspec/implementations/..., /data/a.csv)
        path = PACKAGE / token.rstrip("/")
        return None if path.exists() or path.with_suffix(".py").is_file() else "no such path"
    if token.endswith(".py"):  # _many.py, __main__.py: at the package's top
        missing = first.startswith("_") and not (PACKAGE / token).is_file()
        return "no such module" if missing else None
    if _PRIVATE_CLASS.fullmatch(token):  # _Prebuilt.fits
        return None if first in _defined_names() else f"nothing named {first}"
    if _DOTTED.fullmatch(token) and (first.startswith("_") or first == "range_streams"):
        return _resolve(token.removeprefix("range_streams."))  # _core.coalesce.plan_fetches
    if bare_names_are_modules and _PRIVATE_NAME.fullmatch(token):  # _serve, _flows
        modules = {p.stem for p in PACKAGE.rglob("*.py")} | {p.name for p in PACKAGE.rglob("*")}
        stream = importlib.import_module("range_streams").RangeStream
        if token not in modules and not hasattr(stream, token):
            return "neither a module nor a RangeStream attribute"
    return None


def doc_references(page: Path) -> list[tuple[str, str | None]]:
    """Each module or repository path ``page`` mentions, with why it does not exist."""
    text = page.read_text(encoding="utf-8")
    found = [
        (path, None if (ROOT / path).exists() else "no such file")
        for path in _REPO_PATH.findall(text)
    ]
    for token in _TICKED.findall(_FENCED.sub("", text)):
        if page in NAMES_1X and "/" not in token and not token.endswith(".py"):
            continue
        found.append((token, reference_problem(token, page not in PRIVATE_NAMES, page.parent)))
    return found


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_docs_name_modules_and_paths_that_exist(page: Path) -> None:
    wrong = [(token, why) for token, why in doc_references(page) if why is not None]
    assert not wrong, f"{page.relative_to(ROOT)} names {wrong}"


_DOUBLE_TICKED = re.compile(r"``([^`\n]+)``")


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_docstrings_name_modules_and_paths_that_exist(path: Path) -> None:
    # Docstrings and comments name names in double backticks; bare ``_name``s there are
    # mostly attributes, so only paths, dotted names and _Private classes are checked.
    text = path.read_text(encoding="utf-8")
    wrong = [(p, "no such file") for p in _REPO_PATH.findall(text) if not (ROOT / p).exists()]
    for token in _DOUBLE_TICKED.findall(text):
        problem = reference_problem(token, False)
        if problem is not None:
            wrong.append((token, problem))
    assert not wrong, f"{path.relative_to(PACKAGE)} names {wrong}"


def test_the_reference_checker_tells_stale_names_from_live_ones(tmp_path: Path) -> None:
    live = [
        "_core/spans",
        "codecs/_io.py",
        "src/range_streams/_cli/",
        "_many.py",
        "__main__.py",
        "_core.coalesce.plan_fetches",
        "range_streams.open",
        "range_streams.codecs.ZipReader",
        "_serve",
        "_flows",
        "_ranges",
        "_Elapsed",
    ]
    stale = [
        "_core/gone",
        "_wire_sync.py",
        "_http11.Exchange",
        "_core.coalesce.plan_nothing",
        "range_streams.log_utils",
        "_heads",
        "_Prebuilt.fits",
    ]
    not_ours = [
        "fsspec/implementations/tests/test_http.py",
        "/data/a.csv",
        "bytes=0-0",
        "caching.py",
        "a b",
    ]
    assert [t for t in live + not_ours if reference_problem(t, True) is not None] == []
    assert [t for t in stale if reference_problem(t, True) is None] == []
    assert reference_problem("_cat_file", False) is None  # where bare names are not modules

    page = tmp_path / "page.md"
    page.write_text(
        "See tests/test_layers.py and docs/gone.md, `_core/spans` and `_batch.read_ranges`."
        "\n\n```python\nx = `_not_checked_in_code`\n```\n",
        encoding="utf-8",
    )
    assert doc_references(page) == [
        ("tests/test_layers.py", None),
        ("docs/gone.md", "no such file"),
        ("_core/spans", None),
        ("_batch.read_ranges", "range_streams has no '_batch'"),
    ]
    checked = sum(len(doc_references(p)) for p in DOC_PAGES)
    assert checked > 300, "the pages' references are no longer found"
