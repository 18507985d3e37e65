"""What a ``SharedCache`` holds in one process: ``CacheRuntime`` (the memory tier, the
disk tier, the claims on blocks being fetched, the counters), made on first use by
``runtime_for``, one per set of settings and per process. Loaded only when a cache is
used: a program that reads without one never imports sqlite3."""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import threading
from typing import Any

from .._core.cache_blocks import BlockLRU, Piece
from .._core.cache_keys import FileMeta
from .._core.cache_stats import CacheStats, StatsCounter
from .cache_disk import DATABASE, DiskTier, DiskUnusable
from .cache_locks import BlockClaims
from .shared_cache import SharedCache

__all__ = ["CacheRuntime", "runtime_for"]

logger = logging.getLogger("range_streams")


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

    def report(self) -> dict[str, Any]:
        """``SharedCache.info()``'s answer."""
        settings = self.settings
        report: dict[str, Any] = {
            "directory": None if settings.path is None else str(settings.path),
            "memory": {
                "blocks": len(self.memory),
                "bytes": self.memory.nbytes,
                "max_bytes": settings.memory_bytes,
            },
            "stats": _as_dict(self.stats.snapshot()),
        }
        disk = self.disk
        if disk is not None:
            try:
                report["disk"] = disk.usage()
            except sqlite3.Error as exc:
                report["disk"] = {"error": str(exc)}
        elif settings.path is not None:
            report["disk"] = {"error": self.disk_problem or "not in use"}
        return report

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


def _as_dict(stats: CacheStats) -> dict[str, int]:
    return {name: getattr(stats, name) for name in stats.__dataclass_fields__}


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
