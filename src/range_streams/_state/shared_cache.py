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

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .._core.cache_stats import CacheStats, StatsCounter

__all__ = [
    "CACHE_ENV",
    "CACHE_SIZE_ENV",
    "CacheChoice",
    "SharedCache",
    "default_directory",
    "parse_size",
    "resolve_cache",
]

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

    def runtime(self) -> Runtime:
        """What this cache holds in this process (made on first use: ``cache_runtime``,
        imported only then, so a program without a cache never loads sqlite3)."""
        from .cache_runtime import runtime_for  # noqa: PLC0415 - on first use only

        return runtime_for(self)

    def stats(self) -> CacheStats:
        """What this cache did in this process so far (every file that used it)."""
        return self.runtime().stats.snapshot()

    def reset_stats(self) -> None:
        """Start this process's counters for this cache from zero."""
        self.runtime().stats.reset()

    def info(self) -> dict[str, Any]:
        """What the cache holds: its directory's files, blocks and bytes (or why the
        directory cannot be used), the memory tier's, and this process's counters."""
        return self.runtime().report()

    def clear(self) -> None:
        """Forget every block and file kept, in memory and in the directory. A directory
        whose database cannot be opened (made by another version, damaged) has its
        database files removed."""
        self.runtime().clear()


class Runtime(Protocol):
    """What ``SharedCache`` asks of the state it holds in a process (``cache_runtime``'s
    ``CacheRuntime``, which imports this module)."""

    stats: StatsCounter

    def report(self) -> dict[str, Any]: ...
    def clear(self) -> None: ...


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
