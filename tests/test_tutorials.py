"""The documentation's code runs: every ``python`` block of README.md and docs/, and
every ``sh`` block of the getting-started page, the fsspec page and each tutorial, against
a real local server, with ``https://example.com/NAME`` pointed at a file this module puts
in the docroot. A block that cannot run says so, and why, in an HTML comment on the line
before it (``<!-- illustrative: REASON -->``). And the site builds with
``mkdocs build --strict`` (skipped when the ``docs`` extra is missing).
"""

from __future__ import annotations

import io
import os
import random
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from range_streams._cli._demo import make_sample_zip
from tests.servers.fixtures import MTIME
from tests.servers.launch import RunningServer

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(
    [DOCS / "getting-started.md", DOCS / "fsspec.md", *(DOCS / "tutorials").glob("*.md")]
)
# Pages whose python blocks run (their sh blocks install or test the project itself).
PYTHON_PAGES = [ROOT / "README.md", DOCS / "index.md", DOCS / "Design.md", DOCS / "Cache.md"]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
ILLUSTRATIVE = re.compile(r"<!-- illustrative: (.+?) -->\n$")
EXAMPLE = "https://example.com/"


def code_blocks(page: Path) -> list[tuple[str, str]]:
    """The page's fenced blocks that run: (language, code), illustrative ones left out."""
    text = page.read_text(encoding="utf-8")
    return [
        (match[1], match[2])
        for match in FENCE.finditer(text)
        if not ILLUSTRATIVE.search(text[: match.start()])
    ]


@pytest.fixture(scope="module")
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory("uvicorn-starlette")


def _parquet(path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = random.Random(21)
    rows = 50_000
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "value": pa.array([rng.random() for _ in range(rows)]),
        }
    )
    pq.write_table(table, path, row_group_size=10_000, compression="none")


def _png(path: Path) -> None:
    from PIL import Image, PngImagePlugin  # noqa: PLC0415

    image = Image.new("P", (320, 200))
    image.putpalette([value for index in range(256) for value in (index, 255 - index, 128)])
    image.putdata([(x * y) % 256 for y in range(200) for x in range(320)])
    text = PngImagePlugin.PngInfo()
    text.add_text("Title", "range-streams tutorial")
    image.save(path, pnginfo=text)


def _zarr(path: Path) -> None:
    """A small zarr store of one variable, ``temp`` (the fsspec page reads it)."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("zarr")
    import numpy as np  # noqa: PLC0415

    if path.exists():
        return
    grid = np.arange(400, dtype="f4").reshape(20, 20)
    xr.Dataset({"temp": (("y", "x"), grid)}).to_zarr(
        path, encoding={"temp": {"chunks": (10, 10)}}, consolidated=True
    )
    for item in [path, *path.rglob("*")]:
        item.chmod(0o755 if item.is_dir() else 0o644)


@pytest.fixture(scope="module")
def tutorial_files(docroot: Path) -> Path:
    """``https://example.com/NAME`` in the docs is ``tutorial-NAME`` in the docroot."""
    make_sample_zip(docroot / "tutorial-archive.zip")
    (docroot / "tutorial-big.bin").write_bytes(random.Random(22).randbytes(4 << 20))
    _parquet(docroot / "tutorial-data.parquet")
    _png(docroot / "tutorial-image.png")
    _zarr(docroot / "tutorial-store.zarr")
    lines = [f"{i},{random.Random(i).random():.6f},item-{i % 97}\n" for i in range(20_000)]
    (docroot / "tutorial-data.csv").write_text("id,value,label\n" + "".join(lines))
    for name in ("archive.zip", "big.bin", "data.parquet", "image.png", "data.csv"):
        path = docroot / f"tutorial-{name}"
        path.chmod(0o644)
        os.utime(path, (MTIME, MTIME))
    return docroot


@pytest.fixture
def shell_path(tmp_path: Path) -> str:
    """A PATH where ``range-streams`` runs this checkout's CLI with this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "range-streams"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m range_streams "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def run_shell(code: str, path: str) -> str:
    """Each command line of an ``sh`` block, in order; ``timeout`` lines are the ones the
    docs interrupt on purpose, every other line must succeed."""
    output = io.StringIO()
    for line in code.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        done = subprocess.run(
            ["bash", "-c", line],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PATH": path},
            check=False,
        )
        output.write(done.stdout)
        if line.startswith("timeout "):
            assert done.returncode in (0, 124), (line, done.stderr)
        else:
            assert done.returncode == 0, (line, done.stderr)
    return output.getvalue()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_page_code_runs(
    page: Path,
    server: RunningServer,
    tutorial_files: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shell_path: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = [(lang, code) for lang, code in code_blocks(page) if lang in ("python", "sh")]
    assert blocks, f"{page.name} has no code to run"
    namespace: dict[str, object] = {"__name__": "__tutorial__"}
    shell_output = ""
    for index, (lang, text) in enumerate(blocks):
        assert EXAMPLE in text or lang == "python", f"{page.name} block {index}: no example URL"
        code = text.replace(EXAMPLE, server.base_url + "tutorial-")
        assert "example.com" not in code
        if lang == "python":
            exec(compile(code, f"{page.name}[{index}]", "exec"), namespace)
        else:
            shell_output += run_shell(code, shell_path)
    if page.name == "download-resume.md":
        # The interrupted run left its record (ls found it), and the resumed one finished.
        assert "resumed.bin.part.json" in shell_output and "identical" in shell_output
        assert not Path("resumed.bin.part").exists()


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda page: page.name)
def test_python_blocks_run(
    page: Path,
    server: RunningServer,
    tutorial_files: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = [code for lang, code in code_blocks(page) if lang == "python"]
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for index, text in enumerate(blocks):
        code = text.replace(EXAMPLE, server.base_url + "tutorial-")
        assert "example.com" not in code and "example.org" not in code
        exec(compile(code, f"{page.name}[{index}]", "exec"), namespace)


def test_every_python_block_runs_or_says_why() -> None:
    """Every page with python code is run above, or each of its blocks is illustrative."""
    run = set(PAGES) | set(PYTHON_PAGES)
    for page in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        if page in run:
            continue
        left = [code for lang, code in code_blocks(page) if lang == "python"]
        assert not left, f"{page.relative_to(ROOT)} has python blocks no test runs"
    for page in (ROOT / "README.md", DOCS / "index.md"):
        assert code_blocks(page), f"{page.name}: every block illustrative?"


def test_every_tutorial_is_in_the_site_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (DOCS / "tutorials").glob("*.md"):
        assert f"tutorials/{page.name}" in nav


def test_docs_build_strictly(tmp_path: Path) -> None:
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "tutorials" / "parquet-footer" / "index.html").exists()
