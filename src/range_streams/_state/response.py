"""RangeResponse: a window ``[start, stop)`` onto a ``Body``, read lazily.

The window's state (cursor, tail mark) is plain data; reading is a flow, so the sync
``RangeResponse`` and the async ``AsyncRangeResponse`` differ only in how they run it.
In single-request mode many windows share one ``Body`` (one GET of the whole file).

range-streams 1.x's attributes (``parent_stream``, ``request``, ``told``,
``is_windowed``, ...) are here with 1.x's meanings; the parts of 1.x that managed its
shared read buffer are gone, and asking for them raises an ``AttributeError`` that says
what replaced them (``REMOVED``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import httpx
from ranges import Range

from .._core.errors import InvalidRangeError, RangeResponseError, StreamClosedError
from .._core.protocol import RemoteState
from .._flows.body import Body
from .._flows.commands import Flow
from .legacy_request import RangeRequest

__all__ = ["REMOVED", "AsyncRangeResponse", "RangeResponse", "RangeResponseBase"]

_BUFFER = "each window reads its own cursor from the body; there is no shared buffer"
#: range-streams 1.x ``RangeResponse`` attributes that are gone, and what replaced them.
REMOVED = {
    "_bytes": f"{_BUFFER} (read with read(), seek(), tell())",
    "read_ready": f"{_BUFFER}: a range is ready to read at once",
    "buf_keep": _BUFFER,
    "set_active_buf_range": _BUFFER,
    "is_active_buf_range": _BUFFER,
    "store_tell": f"{_BUFFER}: tell() and told are always current",
    "prepare_reading_window": _BUFFER,
    "check_is_windowed": "use the is_windowed attribute",
    "source_range_response": "single-request windows share the stream's one body",
    "source_iterator": "bytes come from read(); request.iter_raw() iterates them",
    "source_aiterator": "async reads are AsyncRangeStream's",
    "verify_sync": "RangeResponse is sync and AsyncRangeResponse async, by type",
    "verify_async": "RangeResponse is sync and AsyncRangeResponse async, by type",
}


T = TypeVar("T")


class OwnerStream(Protocol):
    """What a response needs of the stream it belongs to (``StreamCore``'s public face):
    named here so that this module does not import the stream's."""

    @property
    def url(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def domain(self) -> str: ...
    @property
    def client(self) -> httpx.Client | httpx.AsyncClient: ...
    @property
    def remote(self) -> RemoteState: ...
    def _run(self, flow: Flow[T]) -> Any: ...


class RangeResponseBase:
    """State shared by both flavours; the body is not pulled until read."""

    def __init__(
        self,
        stream: OwnerStream,
        body: Body | RangeRequest | None = None,
        *,
        name: str = "",
        window: tuple[int, int] | None = None,
        error: RangeResponseError | None = None,
        range_request: RangeRequest | None = None,
        range_name: str | None = None,
    ) -> None:
        # ``RangeResponse(stream, range_request, range_name)`` is 1.x's spelling: a response
        # over a request sent on its own, read with that request's client.
        if isinstance(body, RangeRequest):
            body, range_request = None, body
        self._request = range_request
        self._runner: Callable[[Flow[Any]], Any] | None = None
        if range_request is not None:
            body = range_request._body
            self._runner = range_request._run
        if body is None:
            raise TypeError(f"{type(self).__name__} needs a body or a range_request")
        self.stream = stream
        self.body = body
        self.range_name = name if range_name is None else range_name
        self.tail_mark = 0  # bytes cut off the end by a later overlapping range
        self.error = error  # deferred when the stream was made with raise_response=False
        self._window = window  # None: the body's own span
        self._cursor = 0
        self._closed = False
        self._seq = 0  # set by the stream when it registers this range

    def __repr__(self) -> str:
        # range-streams 1.x's format: name (if any), range, file name and host.
        name = f' "{self.range_name}"' if self.range_name else ""
        return (
            f"{type(self).__name__} \u2836{name} {self.byte_range} @"
            f" '{self.stream.name}' from {self.stream.domain}"
        )

    def __getattr__(self, name: str) -> Any:
        if name in REMOVED:
            raise AttributeError(
                f"RangeResponse.{name} is not in range-streams 2: {REMOVED[name]}"
                " (see docs/Migration.md)"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _drive(self, flow: Flow[Any]) -> Any:
        return (self._runner or self.stream._run)(flow)

    # ---- range-streams 1.x's attributes -----------------------------------------------

    @property
    def parent_stream(self) -> OwnerStream:
        return self.stream

    @property
    def request(self) -> RangeRequest:
        """The request this range is read from (sent with its first read, if lazy)."""
        if self._request is None:
            self._request = RangeRequest._over(
                self.body, self.byte_range, self.stream.url, self.stream.client,
                self._request_runner(), window_on_range=self.source_range,
            )  # fmt: skip
        return self._request

    def _request_runner(self) -> Callable[[Flow[Any]], Any]:
        return self._drive

    @property
    def is_windowed(self) -> bool:
        """Whether this range is a window onto the stream's one GET (single request)."""
        return self._window is not None

    @property
    def told(self) -> int:
        """The position last read or sought to, relative to the range's start (1.x kept
        it apart from ``tell()``; here the two are always equal)."""
        return self._cursor

    @property
    def source_range(self) -> Range:
        """What a window reads from (the whole file); the empty range if not a window."""
        total = self.stream.remote.total
        return Range(0, total) if self.is_windowed and total is not None else Range(0, 0)

    @property
    def window_offset(self) -> int:
        """Where a window starts in the file (0 for a range that is not a window)."""
        return self.start if self.is_windowed else 0

    def tell_abs(self, live: bool = True) -> int:
        """``tell()`` plus ``window_offset`` (``live`` chose 1.x's stored or current
        position, which are the same here)."""
        return self._cursor + self.window_offset

    @property
    def is_in_window(self) -> bool:
        """Always true: each window has its own cursor, which never leaves it."""
        return True

    @property
    def total_len_to_read(self) -> int:
        """The range's length after its tail mark."""
        return self.stop - self.start

    @property
    def client(self) -> Any:
        return self.request.client

    @property
    def url(self) -> str:
        return self.request.url if self._request is not None else self.stream.url

    @property
    def name(self) -> str:
        return self.stream.name

    @property
    def start(self) -> int:
        if self._window is not None:
            return self._window[0]
        if self.body.start is None:
            raise InvalidRangeError("the range's position is known once its request is sent")
        return self.body.start

    @property
    def stop(self) -> int:
        """Where this window ends, after any tail mark."""
        if self._window is not None:
            return self._window[1] - self.tail_mark
        assert self.body.stop is not None
        return self.body.stop - self.tail_mark

    @property
    def byte_range(self) -> Range:
        """The range as requested (before reads and tail marks)."""
        return Range(self.start, self.stop + self.tail_mark)

    @property
    def window(self) -> tuple[int, int]:
        """The unread part, as absolute ``(start, stop)``; empty once consumed."""
        stop = self.stop
        return min(self.start + self._cursor, stop), stop

    @property
    def response(self) -> Any:
        """The underlying httpx response, if one is open."""
        return self.body.response

    @property
    def is_closed(self) -> bool:
        return self._closed

    def tell(self) -> int:
        """Position relative to the start of the range."""
        return self._cursor

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        """Move within the range; no I/O until the next read decides how to get there."""
        if whence == io.SEEK_SET:
            target = position
        elif whence == io.SEEK_CUR:
            target = self._cursor + position
        elif whence == io.SEEK_END:
            target = self.stop - self.start + position
        else:
            raise ValueError(f"whence must be 0, 1 or 2, not {whence!r}")
        if isinstance(target, bool) or not isinstance(target, int):
            raise InvalidRangeError(f"seek position must be an int, not {position!r}")
        if target < 0:
            raise InvalidRangeError(f"cannot seek to {target}, before the start of the range")
        self._cursor = target
        return target

    def is_consumed(self) -> bool:
        start, stop = self.window
        return start >= stop

    def _loop_safe(self) -> bool:
        return bool(getattr(self.stream, "_loop_safe", False))

    def _read(self, size: int | None = -1) -> Flow[bytes]:
        if self._closed:
            raise StreamClosedError(f"read from closed range response {self.byte_range}")
        if self.error is not None:
            raise self.error
        yield from self.body.open()
        position = self.start + self._cursor
        available = self.stop - position
        wanted = available if size is None or size < 0 else min(size, available)
        if wanted <= 0:
            return b""
        data = yield from self.body.read_at(position, wanted)
        self._cursor += len(data)
        return data

    def _close(self) -> Flow[None]:
        self._closed = True
        if self._window is None:  # a shared body belongs to the stream
            yield from self.body.close()


class RangeResponse(RangeResponseBase):
    """A lazily read range of the remote file (sync)."""

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes from the cursor (all that is left for None or -1)."""
        return self._drive(self._read(size))  # type: ignore[no-any-return]

    def close(self) -> None:
        self._drive(self._close())

    async def aread(self, size: int | None = None) -> bytes:
        """1.x's async read: only on the streams ``AsyncFetcher`` hands to its callback,
        whose bytes are already in memory; elsewhere use ``AsyncRangeStream``."""
        self._check_loop_safe("aread")
        return self.read(size)

    async def aclose(self) -> None:
        self._check_loop_safe("aclose")
        self.close()

    def _check_loop_safe(self, method: str) -> None:
        if not self._loop_safe():
            raise TypeError(
                f"RangeResponse.{method} would block the event loop on network I/O: use"
                " AsyncRangeStream, whose responses are AsyncRangeResponse"
            )


class AsyncRangeResponse(RangeResponseBase):
    """A lazily read range of the remote file (async)."""

    async def read(self, size: int | None = -1) -> bytes:
        return await self.stream._run(self._read(size))  # type: ignore[no-any-return]

    async def aread(self, size: int | None = None) -> bytes:
        """1.x's name for ``read``."""
        return await self.read(size)

    def _request_runner(self) -> Callable[[Flow[Any]], Any]:
        def refuse(flow: Flow[Any]) -> Any:
            flow.close()
            raise TypeError("an async range is read with `await response.read()`")

        return refuse

    async def aclose(self) -> None:
        await self.stream._run(self._close())
