"""pytest fixtures: a deterministic docroot and real servers serving it.

Import them into a conftest.py with ``from tests.servers.fixtures import *  # noqa: F403``.

Fixtures (all session-scoped; each server starts on first use and runs until the session ends,
then is stopped by PID):

- ``docroot`` -> Path: a world-readable directory holding :data:`DOCROOT_FILES`.
- ``any_server`` -> RunningServer: parametrized over every server x variant in
  :data:`tests.servers.launch.SPECS` (ids like ``nginx``, ``nginx-max_ranges_1``, ``http.server``),
  marked ``server(id)``.
- ``range_server`` -> RunningServer: the subset that answers a single range with 206.
- ``server_factory`` -> ``(name, variant="default") -> RunningServer``: one specific server,
  e.g. ``server_factory("nginx", "max_ranges_1")`` (skips if not installed).
- ``server_pool`` -> ServerPool: what the others use; stops every server at session end.

A server that is not installed is skipped with an install hint; set
``RANGE_STREAMS_REQUIRE_SERVERS=1`` (e.g. in CI after scripts/install-servers.sh) to make a
missing server an error instead.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest

from .launch import SPECS, RunningServer, ServerSpec, ServerStartError, get_spec

__all__ = [
    "DOCROOT_FILES",
    "RANGE_SERVER_PARAMS",
    "SERVER_PARAMS",
    "ServerPool",
    "any_server",
    "docroot",
    "docroot_bytes",
    "make_docroot",
    "range_server",
    "server_factory",
    "server_pool",
]

SAMPLE_SIZE = 1 << 20
SEED = 20240601
# Files get this fixed mtime (2024-01-01T00:00:00Z). A just-written file makes Apache hand out
# weak validators (mtime within a second of the request), which then fail If-Range.
MTIME = 1_704_067_200


@cache
def _sample_bin() -> bytes:
    return random.Random(SEED).randbytes(SAMPLE_SIZE)


@cache
def _text_txt() -> bytes:
    words = [
        "range",
        "request",
        "byte",
        "seek",
        "stream",
        "file",
        "header",
        "server",
        "client",
        "partial",
        "content",
    ]
    rng = random.Random(SEED + 1)
    lines = []
    size = 0
    i = 0
    while size < 200_000:
        line = f"{i:06d} " + " ".join(rng.choice(words) for _ in range(10)) + "\n"
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines).encode("ascii")


# name -> content factory; all deterministic across runs and machines.
_FILES: dict[str, Callable[[], bytes]] = {
    "sample.bin": _sample_bin,  # 1 MiB of seeded random bytes (incompressible)
    "empty.bin": lambda: b"",
    "text.txt": _text_txt,  # ~200 KB of compressible ASCII text
    "small.bin": lambda: bytes(range(100)),  # 100 bytes, 0x00..0x63
}
DOCROOT_FILES: tuple[str, ...] = tuple(_FILES)


def docroot_bytes(name: str) -> bytes:
    """The exact content of a docroot file, for comparing what a server sent."""
    return _FILES[name]()


def make_docroot(path: str | os.PathLike[str]) -> Path:
    """Write the test files into ``path`` (dirs 0o755, files 0o644: servers whose workers run
    as ``nobody`` must read them)."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    for name, content in _FILES.items():
        target = root / name
        target.write_bytes(content())
        target.chmod(0o644)
        os.utime(target, (MTIME, MTIME))
    return root


_DOCROOT: list[Path] = []  # shared by duplicate definitions of the fixture (see _ServerPool)
_DOCROOT_USERS = [0]


@pytest.fixture(scope="session")
def docroot() -> Iterator[Path]:
    if not _DOCROOT:
        # Not under pytest's basetemp: that is 0o700, and nginx/apache workers run as nobody.
        _DOCROOT.append(make_docroot(tempfile.mkdtemp(prefix="range-streams-docroot-")))
    _DOCROOT_USERS[0] += 1
    try:
        yield _DOCROOT[0]
    finally:
        _DOCROOT_USERS[0] -= 1
        if _DOCROOT_USERS[0] == 0:
            shutil.rmtree(_DOCROOT.pop(), ignore_errors=True)


# ---------------------------------------------------------------------------------------------
class ServerPool:
    """Running servers shared by the whole session: a server starts on first use and runs
    until the session's ``server_pool`` fixture is torn down (even when another conftest
    defines the fixtures a second time, they share this process-wide pool). A server whose
    process died is started again on next use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], RunningServer] = {}
        self._users = 0

    def get(self, spec: ServerSpec, root: Path) -> RunningServer:
        _require(spec)
        key = (spec.id, str(root))
        with self._lock:
            server = self._running.get(key)
            if server is not None and server.process.poll() is None:
                return server
            if server is not None:
                server.stop()
            try:
                server = spec.launch(root)
            except ServerStartError as exc:
                pytest.fail(str(exc), pytrace=False)
            self._running[key] = server
            return server

    def running(self) -> list[RunningServer]:
        with self._lock:
            return list(self._running.values())

    def stop_all(self) -> None:
        with self._lock:
            servers = list(self._running.values())
            self._running.clear()
        for server in servers:  # signal all first, so they shut down in parallel
            server.terminate()
        for server in servers:
            server.stop()


_POOL = ServerPool()


def _require(spec: ServerSpec) -> None:
    if spec.is_installed():
        return
    if os.environ.get("RANGE_STREAMS_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{spec.skip_reason} (RANGE_STREAMS_REQUIRE_SERVERS=1)", pytrace=False)
    pytest.skip(spec.skip_reason)


@pytest.fixture(scope="session")
def server_pool(docroot: Path) -> Iterator[ServerPool]:
    _POOL._users += 1
    try:
        yield _POOL
    finally:
        _POOL._users -= 1
        if _POOL._users == 0:
            _POOL.stop_all()


SERVER_PARAMS = [
    pytest.param(spec, id=spec.id, marks=pytest.mark.server(spec.id)) for spec in SPECS
]
RANGE_SERVER_PARAMS = [p for p, spec in zip(SERVER_PARAMS, SPECS, strict=True) if spec.ranges]


@pytest.fixture(scope="session", params=SERVER_PARAMS)
def any_server(
    request: pytest.FixtureRequest, server_pool: ServerPool, docroot: Path
) -> RunningServer:
    return server_pool.get(request.param, docroot)


@pytest.fixture(scope="session", params=RANGE_SERVER_PARAMS)
def range_server(
    request: pytest.FixtureRequest, server_pool: ServerPool, docroot: Path
) -> RunningServer:
    return server_pool.get(request.param, docroot)


@pytest.fixture(scope="session")
def server_factory(server_pool: ServerPool, docroot: Path) -> Callable[..., RunningServer]:
    def factory(name: str, variant: str = "default") -> RunningServer:
        return server_pool.get(get_spec(name, variant), docroot)

    return factory
