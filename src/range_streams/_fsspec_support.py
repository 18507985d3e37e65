"""What the fsspec filesystem keeps and accepts, apart from the filesystem itself.

* ``Known``: what was learned about each URL (where redirects led, length, validators,
  the server's range dialect, and for the latest few the file's tail), kept for
  ``warm_seconds`` so that the next call or ``open`` of the same URL pays no redirect,
  no length probe and, for a parquet footer, no second request.
* ``storage_options``: the spellings fsspec users bring (``headers=``, fsspec http's
  ``client_kwargs=`` for an aiohttp session, ``block_size=``/``cache_type=``), checked:
  an option that would be silently ignored is an error naming what is accepted.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ._core.protocol import RemoteState
from ._core.strategies import BlockCache, ExactReads, Readahead, ReadStrategy
from ._state.file_core import FILE_SETTINGS, FileOptions
from ._state.settings import CLIENT_SETTINGS

__all__ = [
    "FILE_SETTINGS",
    "FSSPEC_SETTINGS",
    "Known",
    "client_kwargs_settings",
    "strategy_for",
]

# What fsspec's own base classes take (instance and listings caches).
FSSPEC_SETTINGS = frozenset(
    {"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths"}
)
KNOWN_URLS = 256  # URLs whose facts are kept
KNOWN_TAILS = 8  # ... and of those, the latest few keep the file's tail bytes too

# The RemoteState fields that describe the file and its server, not one request.
_FACTS = (
    "location",
    "total",
    "validators",
    "suffix_supported",
    "multipart_supported",
    "max_ranges",
    "ranges_ignored",
)


@dataclass
class _Entry:
    at: float
    facts: dict[str, Any]
    tail: tuple[int, bytes] | None


class Known:
    """Facts about URLs, each kept for ``seconds``; safe to share between threads."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def _fresh(self, url: str) -> _Entry | None:
        entry = self._entries.get(url)
        if entry is None:
            return None
        if time.monotonic() - entry.at > self.seconds:
            del self._entries[url]
            return None
        return entry

    def seed(self, remote: RemoteState) -> tuple[int, bytes] | None:
        """Give ``remote`` what is known of its URL; the kept tail, if any."""
        with self._lock:
            entry = self._fresh(remote.url)
            if entry is None:
                return None
            for name, value in entry.facts.items():
                setattr(remote, name, value)
            return entry.tail

    def learn(self, remote: RemoteState, tail: tuple[int, bytes] | None = None) -> None:
        """Remember what ``remote`` has learned (and the file's tail, when given)."""
        facts = {name: getattr(remote, name) for name in _FACTS}
        with self._lock:
            previous = self._entries.pop(remote.url, None)
            if tail is None and previous is not None and previous.facts == facts:
                tail = previous.tail  # the same version: its tail still holds
            self._entries[remote.url] = _Entry(time.monotonic(), facts, tail)
            while len(self._entries) > KNOWN_URLS:
                self._entries.popitem(last=False)
            for entry in list(self._entries.values())[:-KNOWN_TAILS]:
                entry.tail = None

    def facts(self, url: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._fresh(url)
            return None if entry is None else dict(entry.facts)

    def forget(self, url: str) -> None:
        with self._lock:
            self._entries.pop(url, None)


def client_kwargs_settings(client_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """fsspec http's ``client_kwargs`` (an aiohttp session's arguments) as
    ``ClientOptions`` settings; anything without an equivalent is a TypeError."""
    settings: dict[str, Any] = {}
    for name, value in client_kwargs.items():
        if name == "auth" and value is not None and not isinstance(value, httpx.Auth):
            # aiohttp.BasicAuth is a (login, password, encoding) named tuple.
            login, password = getattr(value, "login", None), getattr(value, "password", None)
            if login is None and isinstance(value, tuple) and len(value) == 2:
                login, password = value
            if login is None or password is None:
                raise TypeError(f"client_kwargs auth {value!r}: give a (user, password) pair")
            settings["auth"] = (login, password)
        elif name == "timeout" and value is not None and not isinstance(value, (int, float)):
            # aiohttp.ClientTimeout(total=..., connect=...), or a number.
            total = getattr(value, "total", value)
            settings["timeout"] = None if total is None else float(total)
        elif name in CLIENT_SETTINGS:
            settings[name] = dict(value) if name == "headers" else value
        else:
            raise TypeError(
                f"client_kwargs {name!r} has no range-streams equivalent; client_kwargs"
                " takes headers, auth, timeout, trust_env and ClientOptions' names"
                f" ({', '.join(sorted(CLIENT_SETTINGS))})"
            )
    return settings


# fsspec's cache types, as read strategies; the others are refused by name.
_CACHE_TYPES = {
    "none": "exact",
    "readahead": "readahead",
    "bytes": "readahead",
    "blockcache": "blocks",
    "background": "blocks",
    "parts": "readahead",  # its known parts are put in the file's cache (see fsspec.py)
}


def strategy_for(base: FileOptions, block_size: int | None, cache_type: str | None) -> ReadStrategy:
    """The read strategy for one file: ``base``'s (a fresh copy: strategies keep
    per-file state), or what fsspec's ``block_size``/``cache_type`` ask for."""
    if cache_type is None and not block_size:
        return copy.deepcopy(base.strategy)
    if cache_type is not None and cache_type not in _CACHE_TYPES:
        raise ValueError(
            f"cache_type {cache_type!r} has no range-streams read strategy; use one of"
            f" {', '.join(sorted(_CACHE_TYPES))}, or strategy=range_streams.Readahead(...)"
            " / BlockCache(...) / ExactReads()"
        )
    kind = _CACHE_TYPES.get(cache_type or "readahead", "readahead")
    if kind == "exact":
        return ExactReads()
    if block_size is not None and block_size < 0:
        raise ValueError(f"block_size must be positive, not {block_size}")
    if kind == "blocks":
        return BlockCache(block_size) if block_size else BlockCache()
    return Readahead(block_size) if block_size else Readahead()
