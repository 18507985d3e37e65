"""``SharedCache``: remote files' blocks kept for every file object of this process (in
memory) and for other processes (in a directory), so a file read twice is paid once.

``SharedCache`` itself holds plain settings: it compares, hashes and pickles as its
values (an fsspec filesystem ships it to Dask workers that way). What it caches lives in
a ``CacheRuntime``, made on first use in each process, one per set of settings: files
opened with equal settings share one memory tier and one set of counters.

Choosing a cache (``resolve_cache``): ``cache=None`` (the default everywhere) follows
the ``RANGE_STREAMS_CACHE`` environment variable: a directory, or ``memory`` for the
memory tier alone; unset, empty or ``off`` means no cache. ``RANGE_STREAMS_CACHE_SIZE``
(``500M``, ``2G``, bytes) bounds that directory. ``cache=False`` is no cache whatever the
environment says, ``cache=True`` the default directory, a path that directory.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sqlite3
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._core.cache_blocks import BlockLRU, CacheStats, Piece, StatsCounter
from .._core.cache_keys import FileMeta
from .cache_disk import DATABASE, DiskTier, DiskUnusable
from .cache_locks import BlockClaims

__all__ = [
    "CACHE_ENV",
    "CacheChoice",
    "CACHE_SIZE_ENV",
    "CacheRuntime",
    "SharedCache",
    "default_directory",
    "parse_size",
    "resolve_cache",
]

logger = logging.getLogger("range_streams")

CACHE_ENV = "RANGE_STREAMS_CACHE"
CACHE_SIZE_ENV = "RANGE_STREAMS_CACHE_SIZE"
_OFF = frozenset({"", "0", "off", "no", "false", "none"})
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def default_directory() -> str:
    """The user's cache directory for range-streams: ``$XDG_CACHE_HOME/range-streams``
    (``~/.cache/range-streams``), ``~/Library/Caches/range-streams`` on macOS,
    ``%LOCALAPPDATA%\\range-streams\\Cache`` on Windows."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return str(Path(base) / "range-streams" / "Cache")
    if sys.platform == "darwin":
        return str(Path.home() / "Library" / "Caches" / "range-streams")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "range-streams")


def parse_size(text: str) -> int:
    """``"500M"``, ``"2G"``, ``"1.5GiB"``, ``"4096"`` as bytes (powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (write 500M, 2G or a number of bytes)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"SharedCache: {name} must be an int, not {value!r}")
    if value <= 0:
        raise ValueError(f"SharedCache: {name} must be positive, not {value}")


@dataclass(frozen=True)
class SharedCache:
    """A cache of remote files' blocks, shared by the files of this process (in memory)
    and, through ``directory``, by every process that uses it: pass it as ``cache=`` to
    ``range_streams.open``, ``RangeStream``, ``fetch_many`` or the fsspec filesystem.

    * ``directory``: where blocks are kept on disk (the user's cache directory by
      default; see ``default_directory``); None keeps them in memory only.
    * ``max_bytes``: the bound on the blocks kept in ``directory`` (1 GiB).
    * ``memory_bytes``: the bound on the blocks kept in this process's memory (64 MiB).
    * ``block_size``: the unit of caching (128 KiB, the default read strategy's block).
      Reads fetch whole aligned blocks, so overlapping reads by different programs
      share them. A directory keeps the block size it was made with.
    * ``small_file_bytes``: a file no larger than this (1 MiB) is fetched whole on its
      first read that misses.

    Only a file whose version can be told (a strong ETag or Last-Modified, and its
    size) is cached; every file object checks once, with its first request, that the
    cached version is still the server's. See docs/Cache.md.
    """

    directory: str | os.PathLike[str] | None = field(default_factory=default_directory)
    max_bytes: int = 1 << 30
    memory_bytes: int = 64 << 20
    block_size: int = 128 * 1024
    small_file_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        if self.directory is not None:
            if not isinstance(self.directory, str | os.PathLike):
                raise TypeError(
                    f"SharedCache: directory must be a path or None, not {self.directory!r}"
                )
            object.__setattr__(self, "directory", os.fspath(self.directory))
        for name in ("max_bytes", "memory_bytes", "block_size"):
            _positive(name, getattr(self, name))
        if isinstance(self.small_file_bytes, bool) or not isinstance(self.small_file_bytes, int):
            raise TypeError(
                f"SharedCache: small_file_bytes must be an int, not {self.small_file_bytes!r}"
            )

    @property
    def path(self) -> Path | None:
        """``directory`` with ``~`` expanded, as this process sees it."""
        return None if self.directory is None else Path(self.directory).expanduser()

    def stats(self) -> CacheStats:
        """What this cache did in this process so far (every file that used it)."""
        return runtime_for(self).stats.snapshot()

    def reset_stats(self) -> None:
        """Start this process's counters for this cache from zero."""
        runtime_for(self).stats.reset()

    def info(self) -> dict[str, Any]:
        """What the cache holds: its directory's files, blocks and bytes (or why the
        directory cannot be used), the memory tier's, and this process's counters."""
        runtime = runtime_for(self)
        report: dict[str, Any] = {
            "directory": None if self.path is None else str(self.path),
            "memory": {
                "blocks": len(runtime.memory),
                "bytes": runtime.memory.nbytes,
                "max_bytes": self.memory_bytes,
            },
            "stats": _as_dict(runtime.stats.snapshot()),
        }
        if runtime.disk is not None:
            try:
                report["disk"] = runtime.disk.usage()
            except sqlite3.Error as exc:
                report["disk"] = {"error": str(exc)}
        elif self.path is not None:
            report["disk"] = {"error": runtime.disk_problem or "not in use"}
        return report

    def clear(self) -> None:
        """Forget every block and file kept, in memory and in the directory. A directory
        whose database cannot be opened (made by another version, damaged) has its
        database files removed."""
        runtime_for(self).clear()


def _as_dict(stats: CacheStats) -> dict[str, int]:
    return {name: getattr(stats, name) for name in stats.__dataclass_fields__}


CacheChoice = SharedCache | str | os.PathLike[str] | bool | None  # what ``cache=`` takes


def resolve_cache(value: CacheChoice) -> SharedCache | None:
    """The cache a ``cache=`` argument names (see the module docstring)."""
    if value is None:
        return _from_environment()
    if value is False:
        return None
    if value is True:
        return SharedCache()
    if isinstance(value, SharedCache):
        return value
    if isinstance(value, str | os.PathLike):
        return SharedCache(os.fspath(value))
    raise TypeError(
        "cache must be a SharedCache, a directory, True (the default directory), False"
        f" or None (the {CACHE_ENV} environment variable), not {value!r}"
    )


def _from_environment() -> SharedCache | None:
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in _OFF:
        return None
    directory = None if value.lower() == "memory" else value
    size = os.environ.get(CACHE_SIZE_ENV, "").strip()
    if not size:
        return SharedCache(directory)
    return SharedCache(directory, max_bytes=parse_size(size))


class CacheRuntime:
    """What a ``SharedCache`` holds in one process: the memory tier, the disk tier (if
    its directory can be used), the claims on blocks being fetched, the counters."""

    def __init__(self, settings: SharedCache) -> None:
        self.settings = settings
        self.stats = StatsCounter()
        self.memory = BlockLRU(settings.memory_bytes)
        self.disk: DiskTier | None = None
        self.disk_problem: str | None = None
        self._meta: dict[str, FileMeta] = {}  # this process's view of files' metadata
        self._lock = threading.Lock()
        self.block_size = settings.block_size
        self.secret = secrets.token_bytes(32)  # memory only: credentials keyed per process
        path = settings.path
        if path is not None:
            try:
                self.disk = DiskTier(path, settings.max_bytes, settings.block_size)
            except DiskUnusable as exc:
                self.disk_problem = str(exc)
                logger.warning("range-streams: the cache directory is not used: %s", exc)
            else:
                self.block_size = self.disk.block_size
                self.secret = self.disk.secret
        self.claims = BlockClaims(path if self.disk is not None else None)

    # -- the disk tier, kept from failing a read -------------------------------------------
    def _disk_failed(self, exc: sqlite3.Error) -> None:
        """A disk operation failed: a busy database is skipped this once; anything else
        (a damaged database, a full or read-only disk) stops using the disk tier."""
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            logger.info("the cache database was busy; going on without it this once")
            return
        logger.warning(
            "range-streams: the cache directory %s failed (%s); going on without it"
            " (`range-streams cache clear` starts it afresh)",
            self.settings.path,
            exc,
        )
        self.disk_problem = str(exc)
        self.disk = None

    # -- metadata ------------------------------------------------------------------------
    def candidates(self, url: str) -> list[FileMeta]:
        """What is kept about a URL, under any credentials, latest first."""
        disk = self.disk
        if disk is not None:
            try:
                return disk.candidates(url)
            except sqlite3.Error as exc:
                self._disk_failed(exc)
        with self._lock:
            found = [meta for meta in self._meta.values() if meta.url == url]
        return sorted(found, key=lambda meta: -meta.learned_at)

    def meta(self, key: str) -> FileMeta | None:
        disk = self.disk
        if disk is not None:
            try:
                return disk.meta(key)
            except sqlite3.Error as exc:
                self._disk_failed(exc)
        with self._lock:
            return self._meta.get(key)

    def put_meta(self, meta: FileMeta) -> None:
        """Keep ``meta``; blocks of the file's other versions go."""
        self.memory.forget(meta.key, keep_version=meta.version)
        with self._lock:
            self._meta[meta.key] = meta
            if len(self._meta) > 4096:
                del self._meta[next(iter(self._meta))]
        disk = self.disk
        if disk is not None:
            try:
                disk.put_meta(meta)
            except sqlite3.Error as exc:
                self._disk_failed(exc)

    # -- blocks --------------------------------------------------------------------------
    def get(self, file: str, version: str, index: int) -> tuple[Piece | None, str, bool]:
        """The piece kept for a block, from memory, else from disk (then kept in memory
        too); which tier had it; whether a corrupt one was found (and dropped)."""
        key = (file, version, index)
        piece = self.memory.get(key)
        if piece is not None:
            return piece, "memory", False
        disk = self.disk
        if disk is None:
            return None, "", False
        try:
            piece, corrupt = disk.get(file, version, index)
        except sqlite3.Error as exc:
            self._disk_failed(exc)
            return None, "", False
        if piece is not None:
            evicted = self.memory.put(key, piece)
            if evicted:
                self.stats.add(evicted_bytes=evicted)
        return piece, "disk", corrupt

    def peek(self, file: str, version: str, index: int) -> bool:
        """Whether something is kept for a block (not counted, not checked)."""
        if self.memory.get((file, version, index)) is not None:
            return True
        disk = self.disk
        if disk is None:
            return False
        try:
            return disk.has(file, version, index)
        except sqlite3.Error as exc:
            self._disk_failed(exc)
            return False

    def complete(self, file: str, version: str, first: int, stop: int, total: int) -> set[int]:
        """Which of blocks ``[first, stop)`` are kept whole, in either tier."""
        found = set()
        for index in range(first, stop):
            piece = self.memory.get((file, version, index))
            if piece is not None and piece.complete(self.block_size, total):
                found.add(index)
        disk = self.disk
        if disk is not None and len(found) < stop - first:
            try:
                found |= disk.complete(file, version, first, stop, total)
            except sqlite3.Error as exc:
                self._disk_failed(exc)
        return found

    def put(
        self, file: str, version: str, pieces: list[Piece], total: int, counter: StatsCounter
    ) -> None:
        """Keep ``pieces`` of a ``total``-byte file in both tiers."""
        marked = [(piece, piece.complete(self.block_size, total)) for piece in pieces]
        evicted = 0
        for piece, complete in marked:
            key = (file, version, piece.index)
            known = self.memory.get(key) if not complete else None
            if complete or known is None:
                evicted += self.memory.put(key, piece)
        disk = self.disk
        if disk is not None:
            try:
                evicted += disk.put(file, version, marked).evicted_bytes
            except sqlite3.Error as exc:
                self._disk_failed(exc)
        if evicted:
            counter.add(evicted_bytes=evicted)

    def clear(self) -> None:
        self.memory.clear()
        with self._lock:
            self._meta.clear()
        disk = self.disk
        if disk is not None:
            try:
                disk.clear()
                return
            except sqlite3.Error as exc:
                self._disk_failed(exc)
        path = self.settings.path
        if path is None or not path.is_dir():
            return
        for leftover in path.iterdir():
            if leftover.name.startswith(DATABASE):
                leftover.unlink(missing_ok=True)
        try:
            self.disk = DiskTier(path, self.settings.max_bytes, self.settings.block_size)
        except DiskUnusable as exc:
            self.disk_problem = str(exc)
        else:
            self.disk_problem = None
            self.block_size = self.disk.block_size
            self.secret = self.disk.secret


_RUNTIMES: dict[tuple[int, SharedCache], CacheRuntime] = {}
_RUNTIMES_LOCK = threading.Lock()


def runtime_for(settings: SharedCache) -> CacheRuntime:
    """This process's runtime for ``settings`` (made on first use; a forked child makes
    its own, never sharing its parent's database connection)."""
    key = (os.getpid(), settings)
    runtime = _RUNTIMES.get(key)
    if runtime is None:
        with _RUNTIMES_LOCK:
            runtime = _RUNTIMES.get(key)
            if runtime is None:
                runtime = CacheRuntime(settings)
                _RUNTIMES[key] = runtime
    return runtime
