"""What the fsspec filesystem keeps and accepts, apart from the filesystem itself.

* ``Known``: what was learned about each URL (where redirects led, length, validators,
  the server's range dialect, and for the latest few the file's tail), kept for
  ``warm_seconds`` so that the next call or ``open`` of the same URL pays no redirect,
  no length probe and, for a parquet footer, no second request.
* ``file_slices``: one file's ``cat_ranges`` slices as one ``read_spans`` batch.
* ``storage_options``: the spellings fsspec users bring (``headers=``, fsspec http's
  ``client_kwargs=`` for an aiohttp session, ``block_size=``/``cache_type=``), checked:
  an option that would be silently ignored is an error naming what is accepted.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from ._core.errors import (
    ContentRangeError,
    InvalidRangeError,
    MultipartError,
    RangeNotSatisfiableError,
    RangeNotSupportedError,
)
from ._core.origins import split_userinfo
from ._core.protocol import FILE_FACTS, RemoteState
from ._core.spans import Span, coerce_span
from ._core.strategies import BlockCache, ExactReads, Readahead, ReadStrategy
from ._flows.batch import BatchPolicy, read_spans
from ._flows.commands import Flow, Gather
from ._flows.whole import fetch_whole
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
        facts = {name: getattr(remote, name) for name in FILE_FACTS}
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
            entry = self._fresh(_key(url))
            return None if entry is None else dict(entry.facts)

    def forget(self, url: str) -> None:
        with self._lock:
            self._entries.pop(_key(url), None)


def _key(url: str) -> str:
    """A URL as ``RemoteState`` keeps it (its userinfo is a credential, not its name)."""
    return split_userinfo(url)[0]


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
    """The read strategy for one file: ``base``'s (settings: each file plans with its
    own planner), or what fsspec's ``block_size``/``cache_type`` ask for."""
    if cache_type is None and not block_size:
        return base.strategy
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


def is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) or hasattr(value, "__array__") or hasattr(value, "tolist")


def slice_span(start: Any, end: Any) -> Span | None:
    """``file[start:end]`` as a span (None when it is empty whatever the file's length)."""
    first = 0 if start is None else int(start)
    stop = None if end is None else int(end)
    if stop is not None and (first >= 0) == (stop >= 0) and stop <= first:
        return None
    if first < 0 and stop == 0:
        return None  # [-n:0] is empty in a slice (coerce_span reads (-n, 0) as 1.x did)
    return coerce_span((first, stop))


def file_slices(
    remote: RemoteState, spans: list[Span], policy: BatchPolicy, options: FileOptions
) -> Flow[list[bytes]]:
    """``read_spans`` with the slice rule: a span past the end is cut there. Sent as
    given while the length is unknown (no probe first); a span that turns out to pass
    the end is an error the first answer's length settles, and the spans go again, cut."""
    if remote.total is None:
        try:
            return (yield from read_spans(remote, spans, policy, options.retry, options.limits))
        except RangeNotSupportedError:
            return (yield from _from_whole(remote, spans, options))
        except (InvalidRangeError, ContentRangeError, RangeNotSatisfiableError, MultipartError):
            if remote.total is None:
                raise
    total = remote.total
    assert total is not None
    cut: list[Span] = []
    empty: set[int] = set()
    for index, span in enumerate(spans):
        first, stop, _ = slice(span.start, span.stop).indices(total)
        if stop <= first:
            empty.add(index)
        else:
            cut.append(Span(first, stop))
    try:
        read = yield from read_spans(remote, cut, policy, options.retry, options.limits)
    except RangeNotSupportedError:
        return (yield from _from_whole(remote, spans, options))
    datas = iter(read)
    return [b"" if i in empty else next(datas) for i in range(len(spans))]


def _from_whole(remote: RemoteState, spans: list[Span], options: FileOptions) -> Flow[list[bytes]]:
    """The server ignores Range: one plain GET of the file, sliced."""
    whole = io.BytesIO()
    yield from fetch_whole(remote, whole, options.retry)
    data = whole.getvalue()
    return [data[s.start : s.stop] for s in spans]


def caught(flow: Flow[Any]) -> Flow[Any]:
    """``flow``'s value, or the exception it raised as its value (one file's failure
    is that file's answer)."""
    try:
        return (yield from flow)
    except Exception as exc:
        return exc


def gather(flows: tuple[Flow[Any], ...], limit: int) -> Flow[list[Any]]:
    if len(flows) == 1:
        return [(yield from flows[0])]
    return (yield Gather(flows, limit))  # type: ignore[no-any-return]
