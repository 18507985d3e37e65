"""The shared cache on the command line: ``--cache DIR`` / ``--no-cache`` for the commands
that read files (``ls``, ``cat``, ``extract``), its counters under ``--trace``, and
``range-streams cache info|clear``."""

from __future__ import annotations

import argparse
import json
import os

from .._core.cache_stats import CacheStats
from .._state.shared_cache import CACHE_ENV, SharedCache, default_directory, resolve_cache
from ._common import Console, TraceLog, UsageError

__all__ = ["CACHED_COMMANDS", "cache_command", "cache_for", "report_cache"]

CACHED_COMMANDS = frozenset({"ls", "cat", "extract"})


def cache_for(args: argparse.Namespace) -> SharedCache | None:
    """The cache a command line asks for: ``--no-cache`` none, ``--cache DIR`` that
    directory, else what ``RANGE_STREAMS_CACHE`` says (none when it is unset)."""
    if getattr(args, "no_cache", False):
        return None
    directory = getattr(args, "cache_dir", None)
    try:
        return resolve_cache(directory)
    except ValueError as exc:  # RANGE_STREAMS_CACHE_SIZE that is not a size
        raise UsageError(str(exc)) from exc


def report_cache(cache: SharedCache | None, trace: TraceLog, before: CacheStats | None) -> None:
    """Under ``--trace``, one line with what the cache did for the command (counted
    since ``before``: ``demo`` runs several commands in one process)."""
    if cache is not None and before is not None and trace.stream is not None:
        summary = cache.stats().since(before).summary()
        print(f"{trace.prefix}cache: {summary}", file=trace.stream, flush=True)


def _target(args: argparse.Namespace) -> SharedCache:
    """The cache ``cache info|clear`` act on: ``--cache DIR``, else the environment's,
    else the default directory."""
    cache = None if getattr(args, "no_cache", False) else cache_for(args)
    if cache is None or cache.directory is None:
        if os.environ.get(CACHE_ENV, "").strip().lower() == "memory":
            raise UsageError(f"{CACHE_ENV}=memory names no directory: give one with --cache DIR")
        return SharedCache(default_directory())
    return cache


def cache_command(args: argparse.Namespace, console: Console, trace: TraceLog) -> int:
    cache = _target(args)
    info = cache.info()
    disk = info.get("disk", {})
    if "error" in disk and args.action == "clear":
        cache.clear()  # a damaged database, or one of another version: removed
        disk = cache.info().get("disk", {})
        if "error" not in disk:
            console.print(f"cleared {info['directory']}")
            return 0
    if "error" in disk:
        raise UsageError(f"the cache in {info['directory']} cannot be used: {disk['error']}")
    if args.action == "clear":
        cache.clear()
        console.print(
            f"cleared {info['directory']}: {disk['files']:,} files, {disk['bytes']:,} bytes"
        )
        return 0
    if args.json:
        console.print(json.dumps({"schema_version": 1, **info}, indent=2))
        return 0
    rows = [
        ("Directory", info["directory"]),
        ("Files", f"{disk['files']:,} ({len(disk['origins'])} origins)"),
        ("Blocks", f"{disk['blocks']:,} of {disk['block_size']:,} bytes"),
        ("Cached", f"{disk['bytes']:,} bytes (bound {disk['max_bytes']:,})"),
        ("On disk", f"{disk['file_bytes']:,} bytes"),
    ]
    for label, value in rows:
        console.print(f"{label + ':':<11}{value}")
    for origin in disk["origins"]:
        console.print(f"  {origin['origin']}: {origin['files']:,} files, {origin['bytes']:,} bytes")
    return 0
