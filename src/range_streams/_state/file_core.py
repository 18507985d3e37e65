"""The seekable file's logic, as flows shared by ``RangeFile`` and ``AsyncRangeFile``.

A read is served, cheapest first, from: the span cache (the tail probe, strategy
blocks); the one streaming ``Body`` when it covers the position (history behind it, or
a short skip ahead on the wire); else a new request planned by the read strategy.

A server that ignores ``Range`` (a 200 with the whole file where a range was asked for)
is read from once, whole (``WholeFile``: size-checked, in memory up to ``cache_bytes``
and in a temporary file past that), unless ``require_ranges`` asks for the
``RangeNotSupportedError`` instead.

Size is learned lazily. An end-relative seek, the way ``zipfile`` starts, learns it with
a suffix read sized to hold the end-of-central-directory record, the ZIP64 locator and
a typical central directory (``tail_probe``), so listing a zip costs one request when
the directory fits and two when it does not.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._core.errors import (
    InvalidRangeError,
    RangeNotSatisfiableError,
    RangeNotSupportedError,
    StreamClosedError,
)
from .._core.protocol import RemoteState
from .._core.span_cache import SpanCache
from .._core.spans import Span, coerce_span, resolve_span
from .._core.strategies import Adaptive, ReadPlanner, ReadStrategy
from .._core.urls import check_url
from .._flows.batch import BatchPolicy, read_ranges
from .._flows.body import Body, BodyLimits, RetryPolicy
from .._flows.commands import Discard, Flow, Join, Spawn, Spawned
from .._flows.requests import learn_length, open_span
from .shared_cache import CacheChoice, SharedCache, resolve_cache
from .whole_file import WholeFile

if TYPE_CHECKING:
    from .cache_session import CacheSession

__all__ = ["FILE_SETTINGS", "FileCore", "FileOptions"]

logger = logging.getLogger("range_streams")

TAIL_PROBE = 64 * 1024 + 22 + 20  # directory + EOCD + ZIP64 locator
KEEP_RECENT = 256 * 1024  # the bytes of a released response kept for a look back


class _Pieces:
    """A read's bytes, kept as the pieces that served it."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def put(self, piece: bytes) -> int:
        self.pieces.append(piece)
        return len(piece)

    def take(self, body: Body, position: int, size: int) -> Flow[int]:
        return self.put((yield from body.read_at(position, size)))

    def join(self) -> bytes:
        return self.pieces[0] if len(self.pieces) == 1 else b"".join(self.pieces)

    def reset(self) -> None:
        self.pieces.clear()


class _Into:
    """A read's bytes, written into a caller's buffer as they are served."""

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.filled = 0

    def put(self, piece: bytes) -> int:
        self.view[self.filled : self.filled + len(piece)] = piece
        self.filled += len(piece)
        return len(piece)

    def take(self, body: Body, position: int, size: int) -> Flow[int]:
        count = yield from body.read_into(position, self.view[self.filled : self.filled + size])
        self.filled += count
        return count

    def reset(self) -> None:
        self.filled = 0


class FileOptions:
    """Knobs of a remote file; every one has a default that suits most uses."""

    def __init__(
        self,
        *,
        strategy: ReadStrategy | None = None,
        cache_bytes: int = 32 << 20,
        tail_probe: int = TAIL_PROBE,
        retry: RetryPolicy | None = None,
        limits: BodyLimits | None = None,
        batch: BatchPolicy | None = None,
        require_ranges: bool = False,
        cache: CacheChoice = None,
    ) -> None:
        self.strategy: ReadStrategy = strategy if strategy is not None else Adaptive()
        self.cache_bytes = cache_bytes  # this file's own span cache (tail probe, blocks)
        self.tail_probe = tail_probe
        self.retry = retry or RetryPolicy()
        self.limits = limits or BodyLimits()
        self.batch = batch or BatchPolicy()
        # True: a server that ignores Range raises RangeNotSupportedError instead of
        # having the file read whole (which ``cache_bytes`` bounds in memory).
        self.require_ranges = require_ranges
        # The cache shared with other files and processes: a SharedCache, a directory,
        # True (the default directory), False (none), or None (RANGE_STREAMS_CACHE).
        self.cache: SharedCache | None = resolve_cache(cache)


FILE_SETTINGS = frozenset(
    {
        "strategy",
        "cache_bytes",
        "tail_probe",
        "retry",
        "limits",
        "batch",
        "require_ranges",
        "cache",
    }
)  # FileOptions' keywords


class FileCore:
    def __init__(self, url: str, options: FileOptions) -> None:
        self.options = options
        self.remote = RemoteState(check_url(url))
        self.url = self.remote.url  # without any userinfo, which went into remote
        strategy = options.strategy
        self.planner: ReadPlanner = strategy.planner()  # this file's own planning state
        cap = strategy.max_bytes
        self.cache = SpanCache(options.cache_bytes if cap is None else cap)
        self.position = 0
        self.closed = False
        self._body: Body | None = None
        self._last_end: int | None = None
        self._advised: tuple[int, int] | None = None
        self._ahead: tuple[Span, Spawned] | None = None  # the next window, requested early
        self._whole: WholeFile | None = None  # the file, when the server ignores Range
        # The shared cache's seam: probe_tail, size, _serve and read_ranges hand over to
        # it while it is active (a cacheable file); it keeps what it serves in self.cache.
        self.shared: CacheSession | None = None
        if options.cache is not None:
            from .cache_session import CacheSession  # noqa: PLC0415 - only with a cache

            self.shared = CacheSession(
                self.remote,
                options.cache,
                local=self.cache,
                planner=self.planner,
                retry=options.retry,
                limits=options.limits,
                batch=options.batch,
            )

    def _check(self) -> None:
        if self.closed:
            raise StreamClosedError(f"I/O on the closed file {self.url}")

    def size(self) -> Flow[int]:
        self._check()
        try:
            if self.shared is not None:
                return (yield from self.shared.size())
            return (yield from learn_length(self.remote))
        except RangeNotSupportedError as refused:
            yield from self._take_whole(refused)  # a 200 that did not say the file's length
        assert self.remote.total is not None
        return self.remote.total

    def probe_tail(self, length: int | None = None) -> Flow[int]:
        """Learn the size with one suffix read whose bytes are kept for end-relative reads."""
        self._check()
        if self.remote.total is None and self.shared is not None:
            yield from self.shared.probe_tail(length or self.options.tail_probe)
        if self.remote.total is None:
            body = self._new_body(Span(-(length or self.options.tail_probe), None))
            try:
                data = yield from body.read_all()
            except RangeNotSupportedError as refused:
                yield from self._take_whole(refused)
            else:
                assert body.start is not None
                self.cache.put(body.start, data)
        assert self.remote.total is not None
        return self.remote.total

    def seek(self, offset: int, whence: int) -> Flow[int]:
        self._check()
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise InvalidRangeError(f"seek offset must be an int, not {offset!r}")
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self.position + offset
        elif whence == io.SEEK_END:
            target = (yield from self.probe_tail()) + offset
        else:
            raise ValueError(f"whence must be 0, 1 or 2, not {whence!r}")
        if target < 0:
            raise InvalidRangeError(f"cannot seek to {target}, before the start of the file")
        self.position = target
        return target

    def read(self, size: int | None = -1) -> Flow[bytes]:
        """Up to ``size`` bytes from the current position (all the rest for -1/None)."""
        self._check()
        position = self.position
        total = self.remote.total
        unknown = total is None and self._whole is None
        if (size is None or size < 0) and unknown and self.shared is None:
            # (with a shared cache the length comes first: the read goes block by block)
            data = yield from self._read_rest(position)
            self.position = position + len(data)
            return data
        if size is None or size < 0:
            total = yield from self.size()
            size = total - position
        if total is not None:
            size = min(size, total - position)
        if size <= 0:
            return b""
        data = yield from self._read_at(position, size)
        self.position = position + len(data)
        return data

    def _read_rest(self, position: int) -> Flow[bytes]:
        """All the rest while the length is unknown: one open-ended request
        (``bytes=N-``), whose answer tells the length, rather than a probe first."""
        if self._body is not None:
            yield from self._body.release(self._drain_limit())
            self._body = None
        try:
            return (yield from self._new_body(Span(position, None)).read_all())
        except RangeNotSatisfiableError:
            if self.remote.total is not None and position >= self.remote.total:
                return b""  # at or past the end
            raise
        except RangeNotSupportedError as refused:
            yield from self._take_whole(refused)
        assert self._whole is not None
        return self._whole.read(position, self._whole.size)

    def read_at(self, start: int, stop: int) -> Flow[bytes]:
        """Exactly ``[start, stop)``, without moving the position."""
        self._check()
        span = coerce_span((start, stop))
        if span.is_absolute and self.remote.total is None:
            # No need to learn the length first (a request of its own): a span past the
            # end comes back short, and that is the error below.
            assert span.stop is not None
            start, stop = span.start, span.stop
        else:
            start, stop = resolve_span(span, (yield from self.size()))
        data = yield from self._read_at(start, stop - start)
        if len(data) != stop - start:
            raise InvalidRangeError(f"[{start}, {stop}) reaches past the end of {self.url}")
        return data

    def read_tail(self, length: int) -> Flow[bytes]:
        self._check()
        if length <= 0:
            return b""
        total = yield from self.probe_tail(max(length, self.options.tail_probe))
        start = max(total - length, 0)
        return (yield from self._read_at(start, total - start))

    def read_ranges(self, spans: Sequence[tuple[int, int]]) -> Flow[list[bytes]]:
        """The bytes of each span, in order; negative offsets count from the end."""
        self._check()
        resolved: list[tuple[int, int]] = []
        for span in spans:
            coerced = coerce_span(span)
            if not coerced.is_absolute:
                yield from self.size()
            if self.remote.total is not None:
                resolved.append(resolve_span(coerced, self.remote.total))
            else:
                assert coerced.stop is not None
                resolved.append((coerced.start, coerced.stop))
        if self._whole is None:
            try:
                if self.shared is not None and self.shared.active:
                    return (yield from self.shared.read_ranges(resolved))
                return (
                    yield from read_ranges(
                        self.remote,
                        resolved,
                        self.options.batch,
                        self.options.retry,
                        self.options.limits,
                    )
                )
            except RangeNotSupportedError as refused:
                yield from self._take_whole(refused)
        return [self._whole_read_at(start, stop) for start, stop in resolved]

    def _read_at(self, position: int, size: int) -> Flow[bytes]:
        pieces = _Pieces()
        yield from self._serve(position, size, pieces)
        # One join at the end (none for a single piece): sequential reads copy once.
        return pieces.join()

    def readinto(self, view: memoryview, planned: int = 0) -> Flow[int]:
        """Up to ``len(view)`` bytes from the current position into ``view``; with our
        own transport a sequential read goes from the socket straight into it.
        ``planned``: the caller will read this many bytes from here in all, in pieces (a
        buffered reader fills the caller's memory a buffer's multiple at a time, then
        refills its buffer for the rest), so a request made now covers all of them."""
        self._check()
        position = self.position
        total = self.remote.total
        size = len(view) if total is None else max(min(len(view), total - position), 0)
        if size == 0:
            return 0
        got = yield from self._serve(position, size, _Into(view), planned)
        self.position = position + got
        return got

    def _serve(
        self, position: int, size: int, sink: _Pieces | _Into, planned: int = 0
    ) -> Flow[int]:
        """``[position, position + size)`` into ``sink``, cheapest source first; the
        count served (fewer only at the end of the file)."""
        if self._whole is None:
            try:
                return (yield from self._serve_ranged(position, size, sink, planned))
            except RangeNotSupportedError as refused:
                yield from self._take_whole(refused)
                sink.reset()
        assert self._whole is not None
        got = sink.put(self._whole.read(position, size))
        self._last_end = position + got
        return got

    def _take_whole(self, refused: RangeNotSupportedError) -> Flow[None]:
        """The server ignores Range: read the file whole, once; every read is served from
        it from now on. Unless ``require_ranges``, which keeps the error."""
        if self.options.require_ranges or self._whole is not None:
            raise refused
        logger.info("%s ignores range requests: reading it whole", self.url)
        if self._ahead is not None:
            yield Discard(self._ahead[1], wait=True)
            self._ahead = None
        if self._body is not None:
            yield from self._body.close()
            self._body = None
        whole = WholeFile(self.options.cache_bytes)
        try:
            yield from whole.load(self.remote, self.options.retry)
        except Exception:
            whole.close()
            raise
        self._whole = whole
        self.cache.clear()

    def _whole_read_at(self, start: int, stop: int) -> bytes:
        assert self._whole is not None
        data = self._whole.read(start, stop - start)
        if len(data) != stop - start:
            raise InvalidRangeError(f"[{start}, {stop}) reaches past the end of {self.url}")
        return data

    def _serve_ranged(
        self, position: int, size: int, sink: _Pieces | _Into, planned: int = 0
    ) -> Flow[int]:
        got = 0
        sequential = self._continues(position)
        while got < size:
            at = position + got
            want = size - got
            cached = self.cache.read(at, want)
            if cached:
                got += sink.put(cached)
                continue
            if self.shared is not None and self.shared.active:
                served = yield from self.shared.read(at, want, sequential, self._advised)
                if served is None:  # ranges ignored: not cacheable; its response is ours
                    self._body = self.shared.handover()
                elif not served:
                    break  # end of file
                else:
                    got += sink.put(served)
                    continue
            body = self._body
            if body is None or not body.covers(at):
                body = yield from self._fetch(at, max(want, planned - got), sequential)
            if body is None:
                continue  # the strategy put the span in the cache
            assert body.stop is not None
            if sequential and self._wants_ahead(body):
                yield from body.send_now()  # this window's request first, then the next
                yield from self._request_ahead(body, size)
            try:
                count = yield from sink.take(body, at, min(want, body.stop - at))
            except RangeNotSatisfiableError:
                # Read at or past the end before the size was known: the 416 tells it.
                if at < (yield from self.size()):
                    raise
                count = 0
            if not count:
                break  # end of file
            got += count
        self._last_end = position + got
        return got

    def _continues(self, position: int) -> bool:
        """Whether a read at ``position`` carries on from the last one: at its end, or a
        short hop forward (tar headers between small members, zip members in order).
        Such reads grow the read-ahead window, so hopping through a file costs about as
        few requests as streaming it, while a long jump starts over with one block."""
        last = self._last_end
        return last is not None and last <= position <= last + self.options.limits.skip

    def advise(self, start: int, stop: int) -> None:
        """Say that ``[start, stop)`` will be read through, in order (a zip member, a small
        tar): it is then fetched as one bounded streaming request, neither in blocks nor
        past ``stop``. Like ``posix_fadvise(SEQUENTIAL)``, a hint: reads stay correct."""
        self._advised = (start, stop) if start < stop else None

    def _wants_ahead(self, body: Body) -> bool:
        """Whether ``body`` is a big sequential window with more of the file after it and
        nothing requested ahead of it yet."""
        ahead_from = self.options.strategy.ahead_from
        total = self.remote.total
        return not (
            self._ahead is not None
            or not ahead_from
            or body is not self._body
            or total is None
            or body.start is None
            or body.stop is None
            or body.stop >= total
            or body.stop - body.start < ahead_from
            or not body.bounded
            or self._advised is not None
        )

    def _request_ahead(self, body: Body, read_size: int) -> Flow[None]:
        """Request the window after ``body`` on another connection while ``body`` is read,
        so its first bytes are there when this one ends (no round trip in between)."""
        if not self._wants_ahead(body):  # the body's request may have told the total
            return
        if body.request_wait < self.options.strategy.ahead_min_wait:
            return  # a quick link: a second connection costs more than the wait it saves
        total = self.remote.total
        assert body.stop is not None and total is not None
        start, stop = self.planner.plan(body.stop, read_size, total, True)
        span = Span(start, stop)
        self._ahead = (span, (yield Spawn(open_span(self.remote, span))))

    def _take_ahead(self, position: int) -> Flow[Body | None]:
        """The window requested ahead if the read is where it starts (else it is let go)."""
        if self._ahead is None:
            return None
        span, spawned = self._ahead
        self._ahead = None
        assert span.stop is not None
        if not span.start <= position <= min(span.start + self.options.limits.skip, span.stop - 1):
            yield Discard(spawned)
            return None
        if self._body is not None:
            yield from self._body.release(self._drain_limit())
            self._body = None
        try:
            opened = yield Join(spawned)
        except Exception as exc:  # a fresh request below meets the fault again, or not
            logger.debug("%s: the request made ahead failed (%r); asking again", self.url, exc)
            return None
        self._body = Body(
            self.remote, span, opened=opened, retry=self.options.retry, limits=self.options.limits
        )
        return self._body

    def _fetch(self, position: int, size: int, sequential: bool) -> Flow[Body | None]:
        keep = self.options.strategy.keep
        total = self.remote.total
        if total is not None and position >= total:
            return self._empty_body(position)
        ahead = yield from self._take_ahead(position)
        if ahead is not None:
            return ahead
        advised = self._advised
        if advised is not None and advised[0] <= position < advised[1]:
            start, stop = position, advised[1] if total is None else min(advised[1], total)
            keep = False  # an advised span is streamed, never cached whole
        else:
            start, stop = self.planner.plan(position, size, total, sequential)
        cached_next = self.cache.next_start(position)
        if cached_next is not None and cached_next < stop:
            stop = max(cached_next, position + 1)
        if keep and stop - start > self.cache.max_bytes:
            # More than the cache may hold: streamed (a cache that refused the span would
            # have the read ask for it again, forever).
            keep = False
        if self._body is not None and not keep and self._body.extend(position, stop):
            return self._body
        if self._body is not None:
            self._keep_recent(self._body)
            yield from self._body.release(self._drain_limit())
            self._body = None
        body = self._new_body(Span(start, stop), clip=total is None)
        if keep:
            data = yield from body.read_all()
            assert body.start is not None
            self.cache.put(body.start, data)
            if not data:
                return self._empty_body(position)
            return None
        self._body = body
        return body

    def _keep_recent(self, body: Body) -> None:
        """Put the last bytes a body let go of in the span cache: a reader that looks
        back at them (``tarfile`` trying each compression's magic from the start, one
        after the other) finds them there instead of asking again."""
        start, data = body.held(KEEP_RECENT)
        following = self.cache.next_start(start)
        if following is not None:  # never displace what the cache holds (the tail probe)
            data = data[: max(following - start, 0)]
        if data and not self.cache.read(start, 1):
            self.cache.put(start, data)

    def _empty_body(self, position: int) -> Body:
        return Body(self.remote, Span(position, position))

    def _drain_limit(self) -> int:
        return self.options.strategy.drain_limit

    def _new_body(self, span: Span, *, clip: bool = False) -> Body:
        return Body(
            self.remote, span, retry=self.options.retry, limits=self.options.limits, clip=clip
        )

    def close(self) -> Flow[None]:
        if self.closed:
            return
        self.closed = True
        self.cache.clear()
        if self._whole is not None:
            self._whole.close()
        if self._ahead is not None:
            yield Discard(self._ahead[1], wait=True)
            self._ahead = None
        if self._body is not None:
            yield from self._body.close()
            self._body = None
