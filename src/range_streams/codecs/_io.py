"""Reading helpers shared by the codecs: a read-ahead window and a bounded-memory reader.

Both only ever call ``ByteSource.read_at``, so they cost the same on bytes in memory and
on a URL; what they decide is how many requests a codec makes and how big they are.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._core.errors import StreamClosedError
from .._core.source import ByteSource
from ._errors import ArchiveFormatError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "CHUNK_SIZE",
    "ListingWindow",
    "ReadAheadWindow",
    "SegmentReader",
    "stream_is_cheaper",
]

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


#: What one more request is worth in bytes, when a listing chooses between hopping from
#: header to header and reading the rest of the archive through: the forward gap a file
#: object reads through rather than asking again (``BodyLimits.skip``).
ROUND_TRIP_BYTES = 256 * 1024
#: Bytes read at each header a listing hops to: a tar header with its PAX or GNU
#: long-name blocks, a PNG chunk header, with room to spare.
HOP_READ = 4 * 1024


def stream_is_cheaper(
    position: int, size: int, reads: int, hop_read: int, round_trip_bytes: int
) -> bool:
    """Whether reading ``[position, size)`` through costs fewer bytes than hopping it.

    ``reads`` header reads took the listing from 0 to ``position``, so headers are about
    ``position / reads`` apart and the rest holds ``(size - position) / that`` more.
    Hopping costs each of them ``hop_read`` bytes plus a request (``round_trip_bytes``);
    streaming costs the bytes plus one request.
    """
    remaining = size - position
    if remaining <= 0 or reads <= 0 or position <= 0:
        return False
    hops = remaining * reads / position
    return remaining + round_trip_bytes <= hops * (hop_read + round_trip_bytes)


class ListingWindow(ReadAheadWindow):
    """A ``ReadAheadWindow`` for walking an archive's headers that decides, per archive,
    between hopping and streaming.

    The first read fetches ``block_size`` bytes from the start; a file whose length no
    response has told yet learns it from that read (no request of its own). At each
    header the window does not hold, what the headers so far say about the rest
    (``stream_is_cheaper``) picks: hop, reading ``hop_read`` bytes at the header (big
    members, big chunks: one small request per header), or read the rest of the file
    through as one streaming request (``advise``) that the following headers come from
    (small members: about as many bytes as the file, in one or two requests). Reads
    given an explicit ``block_size`` (image data, member data) are not listing reads.
    """

    def __init__(
        self,
        source: ByteSource,
        block_size: int,
        *,
        hop_read: int = HOP_READ,
        round_trip_bytes: int = ROUND_TRIP_BYTES,
    ) -> None:
        super().__init__(source, block_size)
        self.hop_read = hop_read
        self.round_trip_bytes = round_trip_bytes
        self.streaming = False
        self._reads = 0

    def read(self, start: int, stop: int, *, block_size: int | None = None) -> bytes:
        if block_size is not None:
            return super().read(start, stop, block_size=block_size)
        if self._reads == 0 and not self._data:
            self._first_read()
        self._reads += 1
        if self._start <= start and stop <= self._start + len(self._data):
            return super().read(start, stop)
        if self.streaming or stream_is_cheaper(
            start, self.source.size, self._reads - 1, self.hop_read, self.round_trip_bytes
        ):
            if not self.streaming:
                self.streaming = True
                advise(self.source, start, self.source.size)
            return super().read(start, stop)
        return super().read(start, stop, block_size=self.hop_read)

    def _first_read(self) -> None:
        """The window from the start; for a URL whose length is still unknown the one
        response tells it (``advise``: one bounded request, clipped at the file's end)."""
        if free_size(self.source) is None:
            advise(self.source, 0, self.block_size)
            with contextlib.suppress(ValueError):  # an empty file: found out below
                self.source.read_at(0, 1)
            advise(self.source, 0, 0)
        stop = min(self.block_size, self.source.size)
        self._start, self._data = 0, self.source.read_at(0, stop) if stop > 0 else b""


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
