"""Reading helpers shared by the codecs: a read-ahead window and a bounded-memory reader.

Both only ever call ``ByteSource.read_at``, so they cost the same on bytes in memory and
on a URL; what they decide is how many requests a codec makes and how big they are.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._core.errors import StreamClosedError
from .._core.source import ByteSource
from ._errors import ArchiveFormatError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["CHUNK_SIZE", "ReadAheadWindow", "SegmentReader"]

#: How much compressed or stored member data is fetched per request when streaming, so
#: that a multi-gigabyte member never sits in memory at once.
CHUNK_SIZE = 1024 * 1024


def read_exactly(source: ByteSource, start: int, stop: int, what: str) -> bytes:
    """``source[start:stop]``, or ``ArchiveFormatError`` if the file ends first."""
    if start < 0 or stop > source.size:
        raise ArchiveFormatError(
            f"{what} [{start}, {stop}) runs past the end of the file ({source.size} bytes):"
            " the archive is truncated or corrupt"
        )
    data = source.read_at(start, stop)
    if len(data) != stop - start:
        raise ArchiveFormatError(f"{what}: asked for {stop - start} bytes, got {len(data)}")
    return data


class ReadAheadWindow:
    """Serves small reads out of one cached block, fetching a new block on a miss.

    Formats read by hopping from header to header (tar, PNG) would otherwise pay one
    request per header. A miss fetches ``block_size`` bytes from the position asked for,
    so headers that sit close together (small members, small chunks) share a request,
    and a hop over a big member costs one request however big the member is.
    """

    def __init__(self, source: ByteSource, block_size: int) -> None:
        self.source = source
        self.block_size = block_size
        self._start = 0
        self._data = b""

    def read(self, start: int, stop: int, *, block_size: int | None = None) -> bytes:
        """The bytes ``[start, stop)``, cut short only by the end of the file."""
        stop = min(stop, self.source.size)
        if start >= stop:
            return b""
        if not (self._start <= start and stop <= self._start + len(self._data)):
            ahead = max(stop, start + (block_size or self.block_size))
            self._start = start
            self._data = self.source.read_at(start, min(ahead, self.source.size))
        return self._data[start - self._start : stop - self._start]

    def held_from(self, start: int) -> bytes:
        """Whatever the window already holds from ``start`` on (no request)."""
        if self._start <= start <= self._start + len(self._data):
            return self._data[start - self._start :]
        return b""


def free_size(source: ByteSource) -> int | None:
    """The source's size when knowing it costs no request; None for a URL whose length
    no response has told yet (``RangeFile.known_size``). Other sources know it for free."""
    if hasattr(source, "known_size"):
        known = source.known_size
        return known if isinstance(known, int) else None
    return source.size


def advise(source: ByteSource, start: int, stop: int) -> None:
    """Tell a source that can take the hint (``RangeFile.advise``) that ``[start, stop)``
    will be read through in order, so it fetches it in one bounded request."""
    hint = getattr(source, "advise", None)
    if callable(hint):
        hint(start, stop)


class SegmentReader(io.RawIOBase):
    """A readable stream of the concatenation of source spans and runs of zero bytes.

    ``segments`` are ``(offset, length)`` pairs; an offset of ``None`` is a hole that
    reads as zeros (tar's sparse files). Source bytes are fetched ``chunk_size`` at a
    time. ``head`` is bytes the caller already fetched, starting at source offset
    ``head_offset``; reads inside it cost no request.
    """

    def __init__(
        self,
        source: ByteSource,
        segments: Sequence[tuple[int | None, int]],
        *,
        head: bytes = b"",
        head_offset: int = 0,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        super().__init__()
        self._source = source
        self._segments = [(offset, length) for offset, length in segments if length > 0]
        self._chunk_size = chunk_size
        self._buffer = head
        self._buffer_offset = head_offset
        self._segment_index = 0
        self._within = 0  # how far into the current segment we have read
        self._advised = -1  # the segment the source was last told about
        for offset, length in self._segments:
            if offset is not None and offset + length > source.size:
                raise ArchiveFormatError(
                    f"member data [{offset}, {offset + length}) runs past the end of the"
                    f" file ({source.size} bytes): the archive is truncated"
                )

    def readable(self) -> bool:
        return True

    def _next_piece(self, limit: int) -> bytes | memoryview:
        """Up to ``limit`` bytes from the current position (empty only at the end)."""
        if self.closed:
            raise StreamClosedError("I/O operation on a closed member reader")
        if limit <= 0:
            return b""
        while self._segment_index < len(self._segments):
            offset, length = self._segments[self._segment_index]
            remaining = length - self._within
            if remaining == 0:
                self._segment_index += 1
                self._within = 0
                continue
            want = min(limit, remaining)
            if offset is None:
                self._within += want
                return bytes(want)
            position = offset + self._within
            buffered_end = self._buffer_offset + len(self._buffer)
            if not self._buffer_offset <= position < buffered_end:
                if self._within == 0 or self._advised != self._segment_index:
                    advise(self._source, position, offset + length)
                    self._advised = self._segment_index
                stop = min(position + max(want, self._chunk_size), offset + length)
                self._buffer = read_exactly(self._source, position, stop, "member data")
                self._buffer_offset = position
                buffered_end = stop
            take = min(want, buffered_end - position)
            self._within += take
            start = position - self._buffer_offset
            return memoryview(self._buffer)[start : start + take]
        return b""

    def read(self, size: int = -1, /) -> bytes:
        return self.readall() if size < 0 else bytes(self._next_piece(size))

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        piece = self._next_piece(len(view))
        view[: len(piece)] = piece
        return len(piece)

    def readall(self) -> bytes:
        pieces = []
        while piece := self._next_piece(self._chunk_size):
            pieces.append(bytes(piece))
        return b"".join(pieces)

    def close(self) -> None:
        self._buffer = b""
        super().close()
