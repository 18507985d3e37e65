"""Run fsspec's own http filesystem tests against range-streams' ``rs+http`` filesystem.

    python scripts/fsspec_http_tests.py PATH/TO/filesystem_spec [pytest arguments]

fsspec's wheels ship no tests, so this takes them from a checkout of
github.com/fsspec/filesystem_spec: ``fsspec/implementations/tests/test_http.py``, the
local server fixture of ``fsspec/tests/conftest.py`` and its ``data/listing.html``. They
are copied into a temporary directory with ``rs+http`` put in place of ``http`` wherever a
test picks the filesystem (``fsspec.filesystem("http"``, ``fsspec.open(url``,
``fsspec.get_mapper(url``), then pytest runs them. docs/fsspec.md lists the tests that
do not pass, each with the reason (options only fsspec's http filesystem has, writes,
aiohttp session internals, and where range-streams deliberately answers otherwise).

Nothing from the checkout is kept: the copies live in the temporary directory only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TEST = Path("fsspec/implementations/tests/test_http.py")
CONFTEST = Path("fsspec/tests/conftest.py")
LISTING = Path("fsspec/tests/data/listing.html")

# (pattern, replacement): where the tests choose a filesystem by protocol or URL.
REWRITES = [
    (r'fsspec\.filesystem\(\s*"http"', 'fsspec.filesystem("rs+http"'),
    (r"fsspec\.filesystem\(\s*protocol", 'fsspec.filesystem("rs+" + protocol'),
    (r"fsspec\.open\(\s*out", 'fsspec.open("rs+" + out'),
    (r"fsspec\.get_mapper\(\s*server\.address", 'fsspec.get_mapper("rs+" + server.address'),
    (r'target_protocol="http"', 'target_protocol="rs+http"'),
    (r"from fsspec\.tests\.conftest import", "from upstream_conftest import"),
]


def prepare(checkout: Path, work: Path) -> Path:
    for path in (TEST, CONFTEST, LISTING):
        if not (checkout / path).is_file():
            raise SystemExit(f"{checkout} has no {path}: give a filesystem_spec checkout")
    text = (checkout / TEST).read_text()
    for pattern, replacement in REWRITES:
        text, count = re.subn(pattern, replacement, text)
        if count == 0 and "import" not in pattern:
            print(f"note: {pattern!r} matched nothing", file=sys.stderr)
    (work / "data").mkdir()
    shutil.copy(checkout / LISTING, work / "data" / "listing.html")
    shutil.copy(checkout / CONFTEST, work / "upstream_conftest.py")
    (work / "conftest.py").write_text(
        "from upstream_conftest import reset_files, server  # noqa: F401\n"
    )
    target = work / "test_rs_http.py"
    target.write_text(text)
    return target


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    checkout = Path(argv[0]).resolve()
    with tempfile.TemporaryDirectory(prefix="fsspec-http-tests-") as tmp:
        work = Path(tmp)
        target = prepare(checkout, work)
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(target),
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(work),
            "-o",
            "addopts=",
            "-o",
            "asyncio_mode=auto",
            *argv[1:],
        ]
        return subprocess.call(command, cwd=work)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
