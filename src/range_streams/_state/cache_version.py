"""Which version of a file a cache session may serve, and for which credentials:
``VersionCheck``, learned from the session's own first answer.

A session serves nothing from the cache until the server has answered it once, with
the session's own credentials. That first answer pins the file's validators (so every
later request of the session carries ``If-Match``), names the version the cached blocks
must belong to, and says which credentials the session sends. So:

* a file already cached costs one small request (``GET bytes=0-0``, the revalidation)
  before its blocks are served; a file not cached yet pays no extra request, since its
  first real read is that answer (``first``);
* a file that changed since it was cached has a new version: its old blocks are never
  served (and are dropped), and a change during the session is the usual
  ``RemoteFileChangedError``, so cached and new bytes never mix;
* a server that refuses this session's credentials refuses its first request, before
  any cached byte is served; blocks are kept under the credentials that fetched them.

What a session learns of the server (suffix and multi-range support, a redirect) is kept
beside the blocks and lent to the next session before its first request.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._core.cache_keys import (
    FileMeta,
    credential_key,
    file_key,
    forbids_storing,
    url_key,
    version_key,
)
from .._core.cache_stats import StatsCounter
from .._core.errors import (
    ContentRangeError,
    HTTPStatusError,
    RangeNotSatisfiableError,
    RangeNotSupportedError,
)
from .._core.protocol import RemoteState
from .._core.spans import Span
from .._core.urls import parse_url
from .._flows.commands import Flow, Gather, Send, Spawn, Wire
from .._flows.requests import finish, learn_length, open_span

if TYPE_CHECKING:
    from .cache_runtime import CacheRuntime

__all__ = ["REDIRECT_MAX_AGE", "VersionCheck"]

logger = logging.getLogger("range_streams")

T = TypeVar("T")

REDIRECT_MAX_AGE = 300.0  # seconds an anonymous read's redirect is reused by later sessions


class VersionCheck:
    """One session's answer to "which cached blocks may I serve?": ``file`` and
    ``version`` once ``settled`` (``storing`` then says whether blocks are served and
    kept), or ``active = False`` when the file cannot be cached (no version to tell it
    by, ``no-store``, a server that ignores ranges)."""

    def __init__(self, remote: RemoteState, runtime: CacheRuntime, counter: StatsCounter) -> None:
        self.remote = remote
        self.runtime = runtime
        self.counter = counter
        self.url = url_key(remote.url)
        self.settled = False
        self.active = True
        self.file: str | None = None
        self.version: str | None = None
        self._credentials: str | None = None
        self._no_store = False
        self._known: list[FileMeta] | None = None
        self._written: FileMeta | None = None  # the metadata last kept for this file
        self._lent: FileMeta | None = None  # whose redirect the first request went to
        self._origin = ""

    @property
    def storing(self) -> bool:
        """Whether blocks are served from and kept in the shared tiers."""
        return self.active and self.file is not None and self.version is not None

    def candidates(self, fresh: bool = False) -> list[FileMeta]:
        """What the cache keeps about this URL (under any credentials), latest first."""
        if self._known is None or fresh:
            self._known = self.runtime.candidates(self.url)
        return self._known

    def forget_candidates(self) -> None:
        """Look again next time: another reader has been fetching (and keeping)."""
        self._known = None

    def worth_checking(self, index: int) -> bool:
        """Whether a block may be cached for this URL (under some credentials and
        version): then a revalidation comes before fetching it."""
        return any(self.runtime.peek(meta.key, meta.version, index) for meta in self.candidates())

    def _lend(self) -> bool:
        """Before the first request: what the cache knows of the server (so a refused
        suffix or multi-range request is not tried again), and a recent redirect;
        whether a redirect was lent."""
        known = self.candidates()
        if not known:
            return False
        known[0].lend_capabilities(self.remote)
        if self.remote.location is not None:
            return False
        now = time.time()
        for meta in known:
            location = meta.location_for(now, REDIRECT_MAX_AGE)
            if location is not None:
                self.remote.location = location
                self._lent = meta
                return True
        return False

    def first(self, make: Callable[[], Flow[T]]) -> Flow[T]:
        """The session's first request(s), ``make()``, watched; then settled. Where a
        redirect the cache lent fails (a mirror gone, an error status), the request is
        made again from the URL itself: the cache never makes a read fail."""
        lent = self._lend()
        try:
            result = yield from self._observe(make())
        except (HTTPStatusError, RangeNotSupportedError, ContentRangeError) as exc:
            if not lent or isinstance(exc, RangeNotSatisfiableError):
                raise
            logger.info("%s: the redirect kept in the cache failed (%s)", self.remote.url, exc)
            self.remote.location = None
            self._lent = None
            self._credentials = None
            self._no_store = False
            result = yield from self._observe(make())
        self._settle()
        return result

    def _observe(self, flow: Flow[T]) -> Flow[T]:
        """``flow``, with each request it sends (its sub-flows' too) and each answer
        noted: which credentials the first carried, whether any said ``no-store``."""
        reply: Any = None
        error: Exception | None = None
        try:
            while True:
                try:
                    command = flow.throw(error) if error is not None else flow.send(reply)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                error = None
                if isinstance(command, Gather):
                    command = Gather(tuple(self._observe(f) for f in command.flows), command.limit)
                elif isinstance(command, Spawn):
                    command = Spawn(self._observe(command.flow))
                try:
                    reply = yield command
                except Exception as exc:  # handed back to the flow, which decides
                    reply, error = None, exc
                    continue
                if isinstance(command, Send):  # answered: its reply is the wire
                    self._saw(reply)
        finally:
            flow.close()

    def _saw(self, wire: Wire) -> None:
        response = wire.response
        if forbids_storing(response.headers):
            self._no_store = True
        if self._credentials is not None:
            return
        try:
            sent = response.request.headers.multi_items()
        except RuntimeError:  # a response without its request: credentials unknown
            self._no_store = True
            return
        self._credentials = credential_key(
            self.runtime.secret, sent, self.remote.credential_headers
        )

    def _settle(self) -> None:
        """After the session's first answer: the file and version its cached blocks
        are served for, or ``active = False`` when the file cannot be cached."""
        if self.settled:
            return
        self.settled = True
        remote = self.remote
        version = version_key(remote.validators) if remote.total else None
        if version is None or self._credentials is None or self._no_store:
            self.active = False
            logger.debug("%s is not cached (no version to tell it by, or no-store)", remote.url)
            return
        self.file, self.version = file_key(self.url, self._credentials), version
        known = next((meta for meta in self.candidates() if meta.key == self.file), None)
        if known is not None and known.version != version:
            self.counter.add(invalidations=1)
            logger.info("%s changed since it was cached: its cached blocks are dropped", remote.url)
        url = parse_url(remote.url)
        origin = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
        self._origin = origin
        self._written = known
        self.remember()

    def remember(self) -> None:
        """Keep what the session knows of the file now, if it is news (a new version, a
        capability found out since, a redirect)."""
        if not self.storing or self.remote.validators is None:
            return
        assert self._credentials is not None and self.version is not None
        meta = FileMeta.of(self.remote, self.url, self._credentials, self.version, self._origin)
        lent = self._lent
        if lent is not None and meta.location == lent.location:
            # Reusing a redirect is not seeing it again: it stays as old as it was.
            meta = dataclasses.replace(meta, learned_at=lent.learned_at)
        if self._written is None or _differs(self._written, meta):
            self.runtime.put_meta(meta)
            self._written = meta

    def begin(self) -> Flow[None]:
        """Make the session's first request if nothing has been asked yet: one small
        ``GET`` (the size and validators), the revalidation of what is cached."""
        if self.settled:
            return
        remote = self.remote
        if self.candidates():
            self.counter.add(revalidations=1)
        if remote.total is None:
            yield from self.first(lambda: learn_length(remote))
        elif remote.total > 0:  # told by a request made elsewhere: ask once more, watched
            yield from self.first(self._ping)
        else:
            self._settle()

    def _ping(self) -> Flow[None]:
        opened = yield from open_span(self.remote, Span(0, 1))
        if opened.wire is not None:
            yield from finish(opened.wire, opened.wire_stop - opened.start)


def _differs(known: FileMeta, meta: FileMeta) -> bool:
    """Whether what a session learned is worth writing (a new version, capabilities or
    redirect, or a redirect about to go stale)."""
    return (
        known.version != meta.version
        or known.location != meta.location
        or (known.suffix_supported, known.multipart_supported, known.max_ranges)
        != (meta.suffix_supported, meta.multipart_supported, meta.max_ranges)
        or (meta.location is not None and meta.learned_at - known.learned_at > REDIRECT_MAX_AGE / 2)
    )
