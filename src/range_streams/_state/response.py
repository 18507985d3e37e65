"""RangeResponse: a window ``[start, stop)`` onto a ``Body``, read lazily.

The window's state (cursor, tail mark) is plain data; reading is a flow, so the sync
``RangeResponse`` and the async ``AsyncRangeResponse`` differ only in how they run it.
In single-request mode many windows share one ``Body`` (one GET of the whole file).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from ranges import Range

from .._core.errors import InvalidRangeError, RangeResponseError, StreamClosedError
from .._flows.body import Body
from .._flows.commands import Flow

if TYPE_CHECKING:
    from .stream_core import StreamCore

__all__ = ["AsyncRangeResponse", "RangeResponse", "RangeResponseBase"]


class RangeResponseBase:
    """State shared by both flavours; the body is not pulled until read."""

    def __init__(
        self,
        stream: StreamCore[Any],
        body: Body,
        *,
        name: str = "",
        window: tuple[int, int] | None = None,
        error: RangeResponseError | None = None,
    ) -> None:
        self.stream = stream
        self.body = body
        self.range_name = name
        self.tail_mark = 0  # bytes cut off the end by a later overlapping range
        self.error = error  # deferred when the stream was made with raise_response=False
        self._window = window  # None: the body's own span
        self._cursor = 0
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"at {self._cursor}"
        return f"<{type(self).__name__} {self.byte_range} {state} {self.range_name!r}>"

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
        wire = self.body._wire
        return None if wire is None else wire.response

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
        return self.stream._run(self._read(size))  # type: ignore[no-any-return]

    def close(self) -> None:
        self.stream._run(self._close())


class AsyncRangeResponse(RangeResponseBase):
    """A lazily read range of the remote file (async)."""

    async def read(self, size: int | None = -1) -> bytes:
        return await self.stream._run(self._read(size))  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self.stream._run(self._close())
