"""One span of the file arriving over the wire: read forward, resumed, never wrong.

``Body`` owns at most one open response for file bytes ``[start, stop)``. Reads at any
position inside the span are served from, in order of cost: the bounded history of
bytes already pulled (backward seeks), the wire itself (skipping a small forward gap
rather than paying a round trip), or a fresh request from that position (a gap too
large to skip, or bytes older than the history). A body that breaks off mid-way is
resumed with ``If-Range`` up to ``RetryPolicy.attempts`` times in all (progress does
not refill the budget, so a server that always breaks off cannot keep us busy), with
backoff; every byte is counted against the span, so a short or long body is an error,
not data.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .._core.errors import IncompleteBodyError, RetriesExhaustedError, StreamClosedError
from .._core.protocol import RemoteState
from .._core.spans import Span
from .commands import Flow, Receive, ReceiveInto, Sleep, Wire
from .requests import DRAIN_LIMIT, Opened, finish, open_span

__all__ = ["Body", "RetryPolicy"]

logger = logging.getLogger("range_streams")

TRANSIENT = (httpx.TransportError, IncompleteBodyError)
INTO_HISTORY = 64 * 1024  # bytes kept for backward seeks after a read straight into a buffer


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a broken body is resumed, and how long to wait between tries."""

    attempts: int = 3
    backoff: float = 0.1
    max_backoff: float = 2.0

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff * 2**attempt, self.max_backoff))


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Memory and skipping bounds; see ``Body``."""

    history: int = 1 << 20  # bytes kept behind the wire position for backward seeks
    skip: int = 256 * 1024  # largest forward gap read and discarded instead of re-requested


class History:
    """Bytes already pulled off the wire, as the chunks that arrived (appending copies
    nothing): all those the reader has not reached yet, and the last ``limit`` bytes
    behind the furthest point it has read to (``consume``), for backward seeks. What is
    served does not depend on how the kernel or the transport split the body; memory
    stays under ``limit`` + the unread part of the last chunk."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._base = 0  # file offset of the first held chunk's first byte
        self._consumed = 0  # the furthest offset the reader has read to
        self.start = 0  # file offset of the first byte served
        self.end = 0

    def clear(self, position: int) -> None:
        self._chunks.clear()
        self._base = self._consumed = self.start = self.end = position

    def append(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self.end += len(chunk)

    def consume(self, position: int) -> None:
        """The reader has read up to ``position``: older bytes beyond ``limit`` go."""
        self._consumed = max(self._consumed, min(position, self.end))
        self.start = max(self.start, self._consumed - max(self.limit, 0))
        while self._chunks and self._base + len(self._chunks[0]) <= self.start:
            self._base += len(self._chunks.popleft())

    def held(self, limit: int) -> tuple[int, bytes]:
        """The last ``limit`` bytes held, at most, and the file offset of the first."""
        start = max(self.start, self.end - limit)
        return start, b"".join(self.read(start, self.end - start))

    def read(self, position: int, size: int) -> list[bytes | memoryview]:
        """Held bytes from ``position`` on, at most ``size``, as pieces (none if not held)."""
        if not self.start <= position < self.end:
            return []
        pieces: list[bytes | memoryview] = []
        offset = self._base
        for chunk in self._chunks:
            chunk_end = offset + len(chunk)
            if chunk_end > position and size > 0:
                begin = max(position - offset, 0)
                piece = (
                    chunk
                    if begin == 0 and len(chunk) <= size
                    else memoryview(chunk)[begin : begin + size]
                )
                pieces.append(piece)
                size -= len(piece)
            offset = chunk_end
        return pieces


class Body:
    """File bytes ``[start, stop)`` over one (re)openable response."""

    def __init__(
        self,
        remote: RemoteState,
        span: Span,
        *,
        opened: Opened | None = None,
        retry: RetryPolicy | None = None,
        limits: BodyLimits | None = None,
        clip: bool = False,
    ) -> None:
        self.remote = remote
        self.clip = clip
        self.span = span
        self.retry = retry or RetryPolicy()
        self.limits = limits or BodyLimits()
        self.start: int | None = None
        self.stop: int | None = None
        self.closed = False
        self._wire: Wire | None = None
        self._wire_pos = 0  # file offset of the next byte the wire will give
        self._wire_stop = 0  # file offset where the wire's body ends
        self._history = History(self.limits.history)  # the bytes just before _wire_pos
        self._attempts = 0
        self._sent = False
        self.request_wait = 0.0  # how long its last request waited for the headers
        if opened is not None:
            self._take(opened)
        elif span.is_absolute:
            assert span.stop is not None
            self.start, self.stop = span.start, span.stop
            self._wire_pos = self._wire_stop = span.start
            self._history.clear(span.start)

    @property
    def bounded(self) -> bool:
        """Whether the body on the wire ends at ``stop`` (not a whole-file 200 that runs on)."""
        return self.stop is not None and self._wire_stop <= self.stop

    @property
    def is_open(self) -> bool:
        return self._wire is not None and not self._wire.closed

    @property
    def response(self) -> httpx.Response | None:
        """The response whose body is on the wire now; None before the request goes out
        and after the wire is let go."""
        return None if self._wire is None else self._wire.response

    def _take(self, opened: Opened) -> None:
        if self.start is None or self.clip:
            self.start = opened.start if self.start is None else self.start
            self.stop = opened.stop
        self._wire = opened.wire
        if opened.wire is not None:
            self.request_wait = opened.wire.waited
        self._wire_pos = opened.start
        self._wire_stop = opened.wire_stop
        self._history.clear(opened.start)
        self._sent = True

    def open(self) -> Flow[None]:
        """Send the request now if the span's ends are not known yet (suffix, negative)."""
        if self.closed:
            raise StreamClosedError("read from a closed range response")
        if self.start is None:
            self._take((yield from open_span(self.remote, self.span, clip=self.clip)))

    def send_now(self) -> Flow[None]:
        """Send this body's request if it has not gone out yet (it otherwise goes with
        the first read), so that a request made after it is second in line."""
        yield from self.open()
        if self._sent or self._wire is not None or self.start is None:
            return
        assert self.stop is not None
        if self.start < self.stop:  # an empty range asks for nothing
            yield from self._reopen(self.start)

    def _reopen(self, position: int) -> Flow[None]:
        """A fresh request for ``[position, stop)``: a resume (If-Range) once one was sent."""
        yield from self._end_wire()
        assert self.stop is not None
        span = Span(position, self.stop)
        self._take((yield from open_span(self.remote, span, resume=self._sent, clip=self.clip)))

    def _end_wire(self, drain: int = DRAIN_LIMIT) -> Flow[None]:
        """Let the open wire go, the one way this body ends a connection: what is left of
        its body is read first when that is at most ``drain`` bytes (the connection then
        goes back to the pool; a new one costs a handshake), else it is closed at once
        (``drain=-1``: a broken wire, closed whatever is left)."""
        wire, self._wire = self._wire, None
        if wire is not None and not wire.closed:
            yield from finish(wire, self._wire_stop - self._wire_pos, drain)

    def read_at(self, position: int, size: int) -> Flow[bytes]:
        """Up to ``size`` bytes from file offset ``position`` (fewer only at ``stop``)."""
        yield from self.open()
        assert self.start is not None and self.stop is not None
        if position < self.start:
            raise ValueError(f"offset {position} is before this body's start {self.start}")
        if self.clip and not self._sent and position < self.stop:
            yield from self._reopen(position)  # learn where the file really ends first
        size = min(size, self.stop - position)
        if size <= 0:
            return b""
        if (
            position < self._history.start
            or position > self._wire_pos + self.limits.skip
            or (self._wire is None and position >= self._wire_pos)
        ):
            yield from self._reopen(position)
        # Pieces are joined once at the end: a read that one chunk satisfies costs no copy.
        pieces = self._history.read(position, size)
        got = sum(len(piece) for piece in pieces)
        while self._wire_pos < position:  # a forward gap short enough to skip on the wire
            chunk = yield from self._pull(position - self._wire_pos + size)
            excess = self._wire_pos - position
            if excess > 0:
                piece: bytes | memoryview = memoryview(chunk)[len(chunk) - excess :][:size]
                pieces.append(piece)
                got += len(piece)
        while got < size:
            chunk = yield from self._pull(size - got)
            whole: bytes | memoryview = chunk
            piece = whole if len(chunk) <= size - got else memoryview(chunk)[: size - got]
            pieces.append(piece)
            got += len(piece)
        self._history.consume(position + got)
        if len(pieces) == 1 and isinstance(pieces[0], bytes):
            return pieces[0]
        return b"".join(pieces)

    def read_into(self, position: int, view: memoryview) -> Flow[int]:
        """Up to ``len(view)`` bytes from ``position`` into ``view``: their count (fewer
        only at ``stop``). Where the transport can (our own, a counted body, the read at
        the wire's position) the bytes go from the socket straight into ``view``; then
        only the last ``INTO_HISTORY`` bytes are kept for backward seeks (a copy of all
        of them would cost what the direct read saves)."""
        if not self._sent and self.start is not None and position == self.start:
            yield from self.send_now()  # a fresh span: its first bytes can go direct too
        wire = self._wire
        if (
            wire is None
            or wire.closed
            or position != self._wire_pos
            or self.stop is None
            or position >= self.stop
        ):
            data = yield from self.read_at(position, len(view))
            view[: len(data)] = data
            return len(data)
        size = min(len(view), self.stop - position)
        got = 0
        while got < size:
            got += yield from self._pull_into(view[got:size])
        kept = min(got, INTO_HISTORY, max(self.limits.history, 0))
        if kept == got and self._history.end == position:
            # A small read right after the held bytes (h5py reading metadata piece by
            # piece): kept beside them, so a look back at an earlier piece costs nothing.
            self._history.append(bytes(view[:got]))
        else:
            self._history.clear(self._wire_pos - kept)
            if kept:
                self._history.append(bytes(view[got - kept : got]))
        self._history.consume(self._wire_pos)
        return got

    def _pull_into(self, view: memoryview) -> Flow[int]:
        """``_pull`` straight into ``view``: a count, never 0, after resuming faults."""
        count: int = yield from self._receive(lambda wire: ReceiveInto(wire, view))
        self._wire_pos += count
        if self._wire_pos == self._wire_stop:
            yield from self._end_wire()
        return count

    def _receive(self, command: Callable[[Wire], Receive | ReceiveInto]) -> Flow[Any]:
        """One ``command`` on the open wire (reopened from ``_wire_pos`` first if needed):
        its result, never empty; transient faults are resumed, within the retry budget."""
        while True:
            try:
                if self._wire is None or self._wire.closed:
                    # A resume: a request that fails here (the server went away, the
                    # connection broke again) costs an attempt, like a broken body.
                    yield from self._reopen(self._wire_pos)
                assert self._wire is not None
                result = yield command(self._wire)
                if not result:
                    raise IncompleteBodyError(
                        f"{self.remote.url}: body ended at byte {self._wire_pos} of"
                        f" [{self.start}, {self._wire_stop})",
                        expected=self._wire_stop - (self.start or 0),
                        received=self._wire_pos - (self.start or 0),
                        url=self.remote.url,
                    )
                return result
            except TRANSIENT as exc:
                yield from self._recover(exc)

    def _pull(self, want: int) -> Flow[bytes]:
        """The next bytes off the wire (never empty, at most ``want``), resuming after
        transient faults."""
        assert self.stop is not None
        chunk: bytes = yield from self._receive(lambda wire: Receive(wire, want))
        remaining = self._wire_stop - self._wire_pos
        if len(chunk) > remaining:  # a wire that broke its contract: never data
            yield from self._end_wire(drain=-1)
            raise IncompleteBodyError(
                f"{self.remote.url}: body ran past its declared end {self._wire_stop}",
                expected=self._wire_stop - (self.start or 0),
                received=self._wire_pos + len(chunk) - (self.start or 0),
                url=self.remote.url,
            )
        self._wire_pos += len(chunk)
        self._history.append(chunk)
        if self._wire_pos == self._wire_stop:
            yield from self._end_wire()
        # A wire that runs on past ``stop`` (a whole-file 200) stays open: the next
        # sequential read may ``extend`` onto it; release() or close() ends it otherwise.
        return chunk

    def extend(self, position: int, stop: int) -> bool:
        """Serve ``[position, stop)`` from this body's open wire if it runs that far
        (a server that ignores ranges keeps streaming the whole file): no new request."""
        wire_open = self._wire is not None and not self._wire.closed
        if (
            not wire_open
            or not self._history.start <= position <= self._wire_pos + self.limits.skip
        ):
            return False
        if self.stop is None or stop <= self.stop or self._wire_stop <= self.stop:
            return False
        self.stop = min(stop, self._wire_stop)
        return True

    def _recover(self, exc: Exception) -> Flow[None]:
        yield from self._end_wire(drain=-1)
        if self._attempts >= self.retry.attempts:
            raise RetriesExhaustedError(
                f"{self.remote.url}: gave up after {self._attempts + 1} attempts at byte"
                f" {self._wire_pos}: {exc}",
                attempts=self._attempts + 1,
                position=self._wire_pos,
                url=self.remote.url,
            ) from exc
        delay = self.retry.delay(self._attempts)
        self._attempts += 1
        logger.warning(
            "%s: %s at byte %d; resuming (attempt %d) in %.2fs",
            self.remote.url,
            type(exc).__name__,
            self._wire_pos,
            self._attempts,
            delay,
        )
        yield Sleep(delay)

    def read_all(self) -> Flow[bytes]:
        """The whole span (use only for spans known to be small enough to hold)."""
        yield from self.open()
        assert self.start is not None and self.stop is not None
        return (yield from self.read_at(self.start, self.stop - self.start))

    def covers(self, position: int) -> bool:
        """Whether a read at ``position`` costs no new request."""
        if self.start is None or self.stop is None or not self.start <= position < self.stop:
            return False
        if position < self._wire_pos:
            return position >= self._history.start
        return self.is_open and position <= self._wire_pos + self.limits.skip

    def held(self, limit: int) -> tuple[int, bytes]:
        """Up to the last ``limit`` bytes this body has pulled and still holds (the
        reader's recent past), with the file offset of the first: what is worth keeping
        when it is let go."""
        return self._history.held(limit)

    def release(self, drain_limit: int) -> Flow[None]:
        """Close, reading the rest first when it is at most ``drain_limit`` bytes, so the
        connection goes back to the pool instead of being dropped (a new one costs a
        handshake: one more round trip)."""
        self.closed = True
        self._history.clear(self._wire_pos)
        yield from self._end_wire(drain_limit)

    def close(self) -> Flow[None]:
        """Close; a body whose wire still has bytes to come is not read to its end."""
        self.closed = True
        self._history.clear(self._wire_pos)
        yield from self._end_wire(drain=0)
