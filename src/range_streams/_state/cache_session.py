"""``CacheSession``: one file object's use of a ``SharedCache``, as flows.

A session serves nothing from the cache until the server has answered it once, with
the session's own credentials: that first answer pins the file's validators (so every
later request of the session carries ``If-Match``), names the version the cached
blocks must belong to, and says which credentials the session sends. So:

* a file already cached costs one small request (``GET bytes=0-0``, the revalidation)
  before its blocks are served; a file not cached yet pays no extra request, since its
  first real read is that answer;
* a file that changed since it was cached has a new version: its old blocks are never
  served (and are dropped), and a change during the session is the usual
  ``RemoteFileChangedError``, so cached and new bytes never mix;
* a server that refuses this session's credentials refuses its first request, before
  any cached byte is served; blocks are kept under the credentials that fetched them.

Misses are fetched as whole aligned blocks, as long a run as the read strategy plans
(at most ``MAX_RUN``), and kept. Readers of the same file in other threads, tasks or
processes claim the blocks they fetch (``cache_locks``): one waits for the other's
blocks rather than fetching them again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .._core.cache_blocks import Piece, StatsCounter, aligned_run, blocks_wanted, runs, split
from .._core.cache_keys import (
    FileMeta,
    credential_key,
    file_key,
    forbids_storing,
    url_key,
    version_key,
)
from .._core.errors import (
    ContentRangeError,
    HTTPStatusError,
    InvalidRangeError,
    RangeNotSatisfiableError,
    RangeNotSupportedError,
    StreamClosedError,
)
from .._core.protocol import RemoteState
from .._core.span_cache import SpanCache
from .._core.spans import Span, resolve_span
from .._core.strategies import ReadStrategy
from .._core.urls import parse_url
from .._flows.batch import BatchPolicy, read_ranges
from .._flows.body import Body, BodyLimits, RetryPolicy
from .._flows.commands import Flow, Gather, Send, Sleep, Spawn, Wire
from .._flows.requests import finish, learn_length, open_span
from .cache_locks import TAIL
from .shared_cache import SharedCache, runtime_for

__all__ = ["MAX_RUN", "CacheSession", "CachedBody"]

logger = logging.getLogger("range_streams")

T = TypeVar("T")

MAX_RUN = 16 << 20  # the most one request fetches for the cache (it is held whole)
REDIRECT_MAX_AGE = 300.0  # seconds an anonymous read's redirect is reused by later sessions
PATIENCE = 30.0  # seconds a reader waits for another's fetch before fetching itself
FIRST_WAIT, LONGEST_WAIT = 0.002, 0.05


class CacheSession:
    """A file's reads through a shared cache (see the module docstring).

    ``local`` is the file's own span cache, which keeps what the session served so the
    file's next small reads cost no lookup; ``strategy`` plans the windows of misses.
    ``active`` turns False once the first answer shows the file cannot be cached (no
    version to tell it by, ``no-store``, a server that ignores ranges): the file object
    then reads it its usual way.
    """

    def __init__(
        self,
        remote: RemoteState,
        settings: SharedCache,
        *,
        local: SpanCache | None = None,
        strategy: ReadStrategy | None = None,
        retry: RetryPolicy | None = None,
        limits: BodyLimits | None = None,
        batch: BatchPolicy | None = None,
    ) -> None:
        self.remote = remote
        self.runtime = runtime_for(settings)
        self.block = self.runtime.block_size
        self.small_file_bytes = settings.small_file_bytes
        self.local = local if local is not None else SpanCache(32 << 20)
        self.strategy = strategy
        self.retry = retry or RetryPolicy()
        self.limits = limits or BodyLimits()
        self.batch = batch or BatchPolicy()
        self.url = url_key(remote.url)
        self.counter = StatsCounter(self.runtime.stats)
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

    # -- the first answer ----------------------------------------------------------------
    def _candidates(self, fresh: bool = False) -> list[FileMeta]:
        if self._known is None or fresh:
            self._known = self.runtime.candidates(self.url)
        return self._known

    def _worth_checking(self, index: int) -> bool:
        """Whether a block may be cached for this URL (under some credentials and
        version): then a revalidation comes before fetching it."""
        return any(self.runtime.peek(meta.key, meta.version, index) for meta in self._candidates())

    def _lend(self) -> bool:
        """Before the first request: what the cache knows of the server (so a refused
        suffix or multi-range request is not tried again), and a recent redirect;
        whether a redirect was lent."""
        known = self._candidates()
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

    def _first(self, make: Callable[[], Flow[T]]) -> Flow[T]:
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
                if isinstance(command, Send) and isinstance(reply, Wire):
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
        known = next((meta for meta in self._candidates() if meta.key == self.file), None)
        if known is not None and known.version != version:
            self.counter.add(invalidations=1)
            logger.info("%s changed since it was cached: its cached blocks are dropped", remote.url)
        url = parse_url(remote.url)
        origin = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
        self._origin = origin
        self._written = known
        self._remember()

    def _remember(self) -> None:
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
        if self._candidates():
            self.counter.add(revalidations=1)
        if remote.total is None:
            yield from self._first(lambda: learn_length(remote))
        elif remote.total > 0:  # told by a request made elsewhere: ask once more, watched
            yield from self._first(self._ping)
        else:
            self._settle()

    def _ping(self) -> Flow[None]:
        opened = yield from open_span(self.remote, Span(0, 1))
        if opened.wire is not None:
            yield from finish(opened.wire, opened.wire_stop - opened.start)

    def size(self) -> Flow[int]:
        """The file's length (the session's first request, if it is the first thing)."""
        yield from self.begin()
        return (yield from learn_length(self.remote))

    # -- reading -------------------------------------------------------------------------
    def _lookup(self, position: int, stop: int | None = None) -> Flow[Piece | None]:
        """The cached piece of the block holding ``position`` if it covers
        ``[position, stop)`` (one byte by default); a revalidation first if this is the
        session's first use of the cache and the block may be there."""
        index = position // self.block
        if not self.settled:
            if not self._worth_checking(index):
                return None
            yield from self.begin()
        if not self.storing:
            return None
        assert self.file is not None and self.version is not None
        piece, tier, corrupt = self.runtime.get(self.file, self.version, index)
        if corrupt:
            self.counter.add(corrupt=1)
        if piece is None or not piece.covers(position, stop if stop is not None else position + 1):
            return None
        if tier == "memory":
            self.counter.add(hits=1, memory_hits=1, bytes_saved=len(piece.data))
        else:
            self.counter.add(hits=1, disk_hits=1, bytes_saved=len(piece.data))
        return piece

    def read(
        self,
        position: int,
        size: int,
        sequential: bool = False,
        advised: tuple[int, int] | None = None,
    ) -> Flow[bytes]:
        """Bytes from ``position`` on (at most ``size``; ``b""`` at the end of the file):
        a cached block's, else fetched with the blocks around them (see ``_plan``) and
        kept. ``advised``: a span the reader will read through (``FileCore.advise``)."""
        kept = self.local.read(position, size)
        if kept:
            return kept
        index = position // self.block
        claiming = True
        while True:
            piece = yield from self._lookup(position)
            if piece is not None:
                return self._served(piece, position, size)
            total = self.remote.total
            if total is not None and position >= total:
                return b""
            start, stop = self._plan(position, size, sequential, advised)
            claimed: list[int] = []
            if claiming:
                claimed = self.runtime.claims.claim_run(
                    self.url, range(index, -(-stop // self.block))
                )
                if not claimed:
                    claiming = yield from self._wait(index)
                    continue
                stop = min(stop, (claimed[-1] + 1) * self.block)
            try:
                if claimed:  # someone may have kept these between the look and the claim
                    piece = yield from self._lookup(position)
                    if piece is not None:
                        return self._served(piece, position, size)
                pieces = yield from self._fetch(
                    Span(start, self._unkept(start, stop)), clip=total is None
                )
            except RangeNotSatisfiableError:
                # Read at or past the end before the size was known: the 416 says so.
                if self.remote.total is None or position < self.remote.total:
                    raise
                return b""
            finally:
                self.runtime.claims.release(self.url, claimed)
            for piece in pieces:
                if piece.start <= position < piece.stop:
                    return self._served(piece, position, size)
            return b""  # the file ended before ``position``

    def _served(self, piece: Piece, position: int, size: int) -> bytes:
        self.local.put(piece.start, piece.data)
        offset = position - piece.start
        return piece.data[offset : offset + size]

    def _plan(
        self, position: int, size: int, sequential: bool, advised: tuple[int, int] | None
    ) -> tuple[int, int]:
        """The whole blocks to fetch for a read that missed: the read strategy's window
        (or the advised span) from the block holding ``position``, at most ``MAX_RUN``;
        the rest of a small file."""
        total = self.remote.total
        if total is not None and total <= self.small_file_bytes:
            return position - position % self.block, total
        if advised is not None and advised[0] <= position < advised[1]:
            planned = (position, advised[1])
        elif self.strategy is not None:
            planned = self.strategy.plan(position, size, total, sequential)
        else:
            planned = (position, position + size)
        return aligned_run(position, planned, size, self.block, total, MAX_RUN)

    def _unkept(self, start: int, stop: int) -> int:
        """``stop``, or where the first block after ``start``'s that is kept whole begins."""
        total = self.remote.total
        if not self.storing or total is None:
            return stop
        assert self.file is not None and self.version is not None
        first, last = start // self.block + 1, -(-stop // self.block)
        if first >= last:
            return stop
        kept = self.runtime.complete(self.file, self.version, first, last, total)
        return min(kept) * self.block if kept else stop

    def _wait(self, index: int) -> Flow[bool]:
        """Wait for another reader's claim on a block to go (it is fetching it): True
        once it has, False if it outlasted ``PATIENCE`` (then fetch without claims)."""
        self.counter.add(waits=1)
        self._known = None  # what the other reader fetched is news
        delay, waited = FIRST_WAIT, 0.0
        while waited < PATIENCE:
            yield Sleep(delay)
            waited += delay
            if self.runtime.claims.free(self.url, index):
                return True
            delay = min(delay * 2, LONGEST_WAIT)
        logger.info(
            "%s: waited %.0f s for another reader's fetch; fetching", self.remote.url, waited
        )
        return False

    def _fetch(self, span: Span, clip: bool) -> Flow[list[Piece]]:
        """Fetch ``span`` (the session's first request is watched) and keep its bytes:
        its pieces, one per block."""
        start, data = yield from (
            self._fetch_span(span, clip)
            if self.settled
            else self._first(lambda: self._fetch_span(span, clip))
        )
        pieces = self._keep(start, data)
        self.counter.add(misses=len(pieces), bytes_fetched=len(data))
        return pieces

    def _fetch_span(self, span: Span, clip: bool) -> Flow[tuple[int, bytes]]:
        body = Body(self.remote, span, retry=self.retry, limits=self.limits, clip=clip)
        data = yield from body.read_all()
        if not body.bounded:  # a 200 running on with the rest of the file: ranges ignored
            yield from body.close()
            self.active = False
        assert body.start is not None
        return body.start, data

    def _keep(self, start: int, data: bytes) -> list[Piece]:
        pieces = split(start, data, self.block)
        for piece in pieces:
            self.local.put(piece.start, piece.data)
        total = self.remote.total
        if self.storing and total is not None:
            assert self.file is not None and self.version is not None
            self.runtime.put(self.file, self.version, pieces, total, self.counter)
        return pieces

    def probe_tail(self, length: int) -> Flow[None]:
        """Learn the size for an end-relative read: a revalidation when the file is
        cached, else one suffix read of ``length`` bytes, kept (as ``FileCore`` does)."""
        if self.remote.total is not None:
            return
        if not self._candidates():
            claimed = self.runtime.claims.claim(self.url, TAIL)
            if not claimed:  # another reader is probing it: its answer will be here
                yield from self._wait(TAIL)
            try:
                if not self._candidates(fresh=True):
                    yield from self._fetch(Span(-length, None), clip=False)
                    return
            finally:
                if claimed:
                    self.runtime.claims.release(self.url, [TAIL])
        yield from self.begin()

    def read_ranges(
        self, spans: Sequence[tuple[int, int]], fetched: Sequence[Piece] = ()
    ) -> Flow[list[bytes]]:
        """The bytes of each absolute span: cached blocks (or the ``fetched`` pieces of
        this read), the others fetched as whole blocks in as few requests as the server
        allows (``_batch.read_ranges``)."""
        wanted = blocks_wanted(spans, self.block)
        have = {
            piece.index: piece
            for piece in fetched
            if piece.index in wanted and piece.covers(*wanted[piece.index])
        }
        yield from self._hits(wanted, have)
        missing = sorted(index for index in wanted if index not in have)
        claiming = True
        while missing:
            if claiming:
                claimed = [i for i in missing if self.runtime.claims.claim(self.url, i)]
            else:
                claimed = list(missing)
            busy = [index for index in missing if index not in claimed]
            try:
                yield from self._hits({i: wanted[i] for i in claimed}, have)
                yield from self._fetch_blocks([i for i in claimed if i not in have], have)
            finally:
                if claiming:
                    self.runtime.claims.release(self.url, claimed)
            if busy:
                claiming = yield from self._wait(busy[0])
                yield from self._hits({i: wanted[i] for i in busy}, have)
            missing = [index for index in busy if index not in have]
        return [self._assemble(have, start, stop) for start, stop in spans]

    def _hits(self, wanted: dict[int, tuple[int, int]], have: dict[int, Piece]) -> Flow[None]:
        for index, (low, high) in wanted.items():
            if index not in have:
                piece = yield from self._lookup(low, high)
                if piece is not None:
                    have[index] = piece

    def _fetch_blocks(self, indexes: list[int], have: dict[int, Piece]) -> Flow[None]:
        if not indexes:
            return
        block = self.block
        spans = [(first * block, stop * block) for first, stop in runs(indexes)]
        if self.remote.total is None:  # the first run, cut at the end of the file, tells it
            for piece in (yield from self._fetch(Span(*spans.pop(0)), clip=True)):
                have[piece.index] = piece
        total = self.remote.total
        if total is not None:
            spans = [(start, min(stop, total)) for start, stop in spans if start < total]
        if not spans:
            return

        def batch() -> Flow[list[bytes]]:
            return read_ranges(self.remote, spans, self.batch, self.retry, self.limits)

        datas = yield from (batch() if self.settled else self._first(batch))
        for (start, _), data in zip(spans, datas, strict=True):
            pieces = self._keep(start, data)
            self.counter.add(misses=len(pieces), bytes_fetched=len(data))
            have.update((piece.index, piece) for piece in pieces)
        self._remember()  # what a batch found out: multi-range support, a cap on ranges

    def _assemble(self, have: dict[int, Piece], start: int, stop: int) -> bytes:
        parts = []
        for index in range(start // self.block, -(-stop // self.block)):
            low = max(start, index * self.block)
            high = min(stop, (index + 1) * self.block)
            piece = have.get(index)
            if piece is None or not piece.covers(low, high):
                raise InvalidRangeError(
                    f"[{start}, {stop}) reaches past the end of {self.remote.url}"
                )
            parts.append(piece.data[low - piece.start : high - piece.start])
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_spans(self, spans: Sequence[Span]) -> Flow[list[bytes]]:
        """``read_ranges`` for spans that may count from the end (``fetch_many``'s
        items): a suffix is the first request when the file is not cached (it learns
        the length, as without a cache), a revalidation when it is."""
        remote = self.remote
        fetched: list[Piece] = []
        if remote.total is None and any(s.stop is None or not s.is_absolute for s in spans):
            first = next((s for s in spans if not s.is_absolute and not s.needs_length), None)
            if first is None or self._candidates():
                yield from self.begin()
            else:
                fetched = yield from self._fetch(first, clip=False)
        total = remote.total
        resolved = []
        for span in spans:
            if total is not None:
                resolved.append(resolve_span(span, total))
            else:
                assert span.stop is not None
                resolved.append((span.start, span.stop))
        if self.active:
            return (yield from self.read_ranges(resolved, fetched))
        # Not cacheable: what the first request brought is in ``local``; the rest plainly.
        found: dict[int, bytes] = {}
        for i, (start, stop) in enumerate(resolved):
            data = self.local.read(start, stop - start) if stop > start else b""
            if len(data) == stop - start:
                found[i] = data
        rest = [i for i in range(len(resolved)) if i not in found]
        if rest:
            datas = yield from read_ranges(
                remote, [resolved[i] for i in rest], self.batch, self.retry, self.limits
            )
            found.update(zip(rest, datas, strict=True))
        return [found[i] for i in range(len(resolved))]

    def body(self, span: Span) -> CachedBody:
        return CachedBody(self, span)


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


class CachedBody(Body):
    """A ``Body`` read through a ``CacheSession``: a ``RangeStream``'s range when the
    stream has a shared cache. It sends no request of its own: ``add`` registers it,
    the first read gets its bytes from the cache or fetches the blocks around them."""

    def __init__(self, session: CacheSession, span: Span) -> None:
        super().__init__(session.remote, span, retry=session.retry, limits=session.limits)
        self.session = session
        self._sent = True  # nothing for ``add`` to send ahead

    def open(self) -> Flow[None]:
        if self.closed:
            raise StreamClosedError("read from a closed range response")
        if self.start is None:
            if self.span.is_suffix:  # uncached, the suffix read itself tells the length
                yield from self.session.probe_tail(-self.span.start)
            total = yield from self.session.size()
            self.start, self.stop = resolve_span(self.span, total)

    def read_at(self, position: int, size: int) -> Flow[bytes]:
        yield from self.open()
        assert self.start is not None and self.stop is not None
        if position < self.start:
            raise ValueError(f"offset {position} is before this body's start {self.start}")
        size = min(size, self.stop - position)
        pieces = []
        got = 0
        while got < size:
            piece = yield from self.session.read(
                position + got, size - got, advised=(self.start, self.stop)
            )
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def covers(self, position: int) -> bool:
        return (
            self.start is not None and self.stop is not None and self.start <= position < self.stop
        )
