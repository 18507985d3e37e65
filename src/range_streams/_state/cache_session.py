"""``CacheSession``: one file object's reads through a ``SharedCache``, as flows.

Nothing is served before the session's own first answer says which version, read with
which credentials, its cached blocks must belong to (``cache_version.VersionCheck``).
A read that misses fetches whole aligned blocks, as long a run as the read strategy
plans (at most ``MAX_RUN``), and keeps them; ``read_ranges`` fetches the missing blocks
of many spans in as few requests as the server allows. Readers of the same file in other
threads, tasks or processes claim the blocks they fetch (``cache_locks``): one waits for
the other's blocks rather than fetching them again. ``CachedBody`` is a ``RangeStream``
range read through a session.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, TypeVar

from .._core.cache_blocks import Piece, aligned_run, blocks_wanted, runs, split
from .._core.cache_stats import StatsCounter
from .._core.errors import (
    InvalidRangeError,
    RangeNotSatisfiableError,
    StreamClosedError,
)
from .._core.protocol import RemoteState
from .._core.span_cache import SpanCache
from .._core.spans import Span, resolve_span
from .._flows.batch import BatchPolicy, read_ranges
from .._flows.body import Body, BodyLimits, RetryPolicy
from .._flows.commands import Flow, Sleep
from .._flows.requests import learn_length
from .cache_locks import TAIL
from .cache_runtime import runtime_for
from .cache_version import VersionCheck
from .shared_cache import SharedCache

__all__ = ["MAX_RUN", "CacheSession", "CachedBody", "Planner"]

logger = logging.getLogger("range_streams")

T = TypeVar("T")

MAX_RUN = 16 << 20  # the most one request fetches for the cache (it is held whole)
PATIENCE = 30.0  # seconds a reader waits for another's fetch before fetching itself
FIRST_WAIT, LONGEST_WAIT = 0.002, 0.05


class Planner(Protocol):
    """What plans a read's window: the file's read strategy (its ``plan``)."""

    def plan(
        self, position: int, size: int, file_size: int | None, sequential: bool
    ) -> tuple[int, int]: ...


class CacheSession:
    """A file's reads through a shared cache (see the module docstring).

    ``local`` is the file's own span cache, which keeps what the session served so the
    file's next small reads cost no lookup; ``planner`` plans the windows of misses.
    ``active`` turns False once the first answer shows the file cannot be cached (no
    version to tell it by, ``no-store``, a server that ignores ranges).
    """

    def __init__(
        self,
        remote: RemoteState,
        settings: SharedCache,
        *,
        local: SpanCache | None = None,
        planner: Planner | None = None,
        retry: RetryPolicy | None = None,
        limits: BodyLimits | None = None,
        batch: BatchPolicy | None = None,
    ) -> None:
        self.remote = remote
        self.runtime = runtime_for(settings)
        self.block = self.runtime.block_size
        self.small_file_bytes = settings.small_file_bytes
        self.local = local if local is not None else SpanCache(32 << 20)
        self.planner = planner
        self.retry = retry or RetryPolicy()
        self.limits = limits or BodyLimits()
        self.batch = batch or BatchPolicy()
        self.counter = StatsCounter(self.runtime.stats)
        self.check = VersionCheck(remote, self.runtime, self.counter)
        self.url = self.check.url
        self._handed: Body | None = None  # see handover

    @property
    def active(self) -> bool:
        """False once the first answer showed the file cannot be cached: the file object
        then reads it its usual way."""
        return self.check.active

    def begin(self) -> Flow[None]:
        """The revalidation, if the session has sent nothing yet (``VersionCheck``)."""
        return self.check.begin()

    # -- the first answer ----------------------------------------------------------------
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
        if not self.check.settled:
            if not self.check.worth_checking(index):
                return None
            yield from self.begin()
        if not self.check.storing:
            return None
        file, version = self.check.file, self.check.version
        assert file is not None and version is not None
        piece, tier, corrupt = self.runtime.get(file, version, index)
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
    ) -> Flow[bytes | None]:
        """Bytes from ``position`` on (at most ``size``; ``b""`` at the end of the file):
        a cached block's, else fetched with the blocks around them (see ``_plan``) and
        kept. ``advised``: a span the reader will read through (``FileCore.advise``).
        None when the server turned out to ignore ranges: take its open response from
        ``handover`` (the file is not cacheable; the session is no longer ``active``)."""
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
                    Span(start, self._unkept(start, stop)), clip=total is None, hand_over=True
                )
            except RangeNotSatisfiableError:
                # Read at or past the end before the size was known: the 416 says so.
                if self.remote.total is None or position < self.remote.total:
                    raise
                return b""
            finally:
                self.runtime.claims.release(self.url, claimed)
            if pieces is None:
                return None
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
        elif self.planner is not None:
            planned = self.planner.plan(position, size, total, sequential)
        else:
            planned = (position, position + size)
        return aligned_run(position, planned, size, self.block, total, MAX_RUN)

    def _unkept(self, start: int, stop: int) -> int:
        """``stop``, or where the first block after ``start``'s that is kept whole begins."""
        total = self.remote.total
        if not self.check.storing or total is None:
            return stop
        file, version = self.check.file, self.check.version
        assert file is not None and version is not None
        first, last = start // self.block + 1, -(-stop // self.block)
        if first >= last:
            return stop
        kept = self.runtime.complete(file, version, first, last, total)
        return min(kept) * self.block if kept else stop

    def _wait(self, index: int) -> Flow[bool]:
        """Wait for another reader's claim on a block to go (it is fetching it): True
        once it has, False if it outlasted ``PATIENCE`` (then fetch without claims)."""
        self.counter.add(waits=1)
        self.check.forget_candidates()  # what the other reader fetched is news
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

    def _fetch(self, span: Span, clip: bool, hand_over: bool = False) -> Flow[list[Piece] | None]:
        """Fetch ``span`` (the session's first request is watched) and keep its bytes:
        its pieces, one per block. None when ``hand_over`` and the server ignored the
        range (200, the whole file): its response is left unread for ``handover``."""

        def make() -> Flow[tuple[int, bytes] | None]:
            return self._fetch_span(span, clip, hand_over)

        got = yield from (make() if self.check.settled else self.check.first(make))
        if got is None:
            return None
        start, data = got
        pieces = self._keep(start, data)
        self.counter.add(misses=len(pieces), bytes_fetched=len(data))
        return pieces

    def _fetch_span(
        self, span: Span, clip: bool, hand_over: bool
    ) -> Flow[tuple[int, bytes] | None]:
        body = Body(self.remote, span, retry=self.retry, limits=self.limits, clip=clip)
        yield from body.send_now()
        if not body.bounded:  # a 200 running on with the rest of the file: ranges ignored
            self.check.active = False
            if hand_over:
                self._handed = body
                return None
        data = yield from body.read_all()
        if not body.bounded:
            yield from body.close()
        assert body.start is not None
        return body.start, data

    def handover(self) -> Body:
        """The open response of a read that found the server ignoring ranges (``read``
        returned None): the caller reads it its own way (it runs on, the whole file)."""
        body, self._handed = self._handed, None
        assert body is not None
        return body

    def _keep(self, start: int, data: bytes) -> list[Piece]:
        pieces = split(start, data, self.block)
        for piece in pieces:
            self.local.put(piece.start, piece.data)
        total = self.remote.total
        if self.check.storing and total is not None:
            file, version = self.check.file, self.check.version
            assert file is not None and version is not None
            self.runtime.put(file, version, pieces, total, self.counter)
        return pieces

    def probe_tail(self, length: int) -> Flow[None]:
        """Learn the size for an end-relative read: a revalidation when the file is
        cached, else one suffix read of ``length`` bytes, kept (as ``FileCore`` does)."""
        if self.remote.total is not None:
            return
        if not self.check.candidates():
            claimed = self.runtime.claims.claim(self.url, TAIL)
            if not claimed:  # another reader is probing it: its answer will be here
                yield from self._wait(TAIL)
            try:
                if not self.check.candidates(fresh=True):
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
        allows (``_flows.batch.read_ranges``)."""
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
            for piece in (yield from self._fetch(Span(*spans.pop(0)), clip=True)) or ():
                have[piece.index] = piece
        total = self.remote.total
        if total is not None:
            spans = [(start, min(stop, total)) for start, stop in spans if start < total]
        if not spans:
            return

        def batch() -> Flow[list[bytes]]:
            return read_ranges(self.remote, spans, self.batch, self.retry, self.limits)

        datas = yield from (batch() if self.check.settled else self.check.first(batch))
        for (start, _), data in zip(spans, datas, strict=True):
            pieces = self._keep(start, data)
            self.counter.add(misses=len(pieces), bytes_fetched=len(data))
            have.update((piece.index, piece) for piece in pieces)
        self.check.remember()  # what a batch found out: multi-range support, a cap on ranges

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
            if first is None or self.check.candidates():
                yield from self.begin()
            else:
                fetched = (yield from self._fetch(first, clip=False)) or []
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
            if piece is None:  # the server ignores ranges: read its answer as it comes
                handed = self.session.handover()
                piece = yield from handed.read_at(position + got, size - got)
                yield from handed.close()
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def covers(self, position: int) -> bool:
        return (
            self.start is not None and self.stop is not None and self.start <= position < self.stop
        )
