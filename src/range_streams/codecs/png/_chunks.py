"""The PNG chunk table, built by hopping from chunk header to chunk header.

A chunk is a 4-byte big-endian length, a 4-letter type, the data, and a CRC-32 of type
and data. Hopping reads each 8-byte header and skips the rest, through a
``ListingWindow``: the small chunks before the image data (IHDR, PLTE, tRNS, text, ...)
all arrive with the first request, and the table of a big image hops from chunk to
chunk in small requests (big IDAT chunks) or reads the image through once (small
ones), whichever costs less. The CRC is read and checked with the data, whenever a
chunk's data is read (reading it while hopping would cost a request per big chunk)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from ranges import Range

from .._errors import ArchiveFormatError, ChecksumError
from .._io import ListingWindow

__all__ = ["IDAT_READ_AHEAD", "PNG_SIGNATURE", "ChunkInfo", "ChunkTable"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_CHUNK_LENGTH = 2**31 - 1  # the PNG spec's limit
# Chunk types the PNG spec requires to come before the first IDAT chunk.
_BEFORE_IDAT = frozenset(
    {"IHDR", "PLTE", "tRNS", "cHRM", "gAMA", "iCCP", "sBIT", "sRGB", "bKGD", "hIST", "pHYs", "sPLT"}
)
#: Bytes fetched per read-ahead miss while reading image data: IDAT chunks are many and
#: back to back, so bigger blocks than the 64 KiB used for metadata.
IDAT_READ_AHEAD = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """Where one chunk is: ``offset`` is the start of its length field."""

    type: str
    offset: int
    length: int

    @property
    def data_offset(self) -> int:
        return self.offset + 8

    @property
    def end(self) -> int:
        """Where the next chunk starts."""
        return self.offset + 12 + self.length

    @property
    def start(self) -> int:
        """range-streams 1.x's name for ``offset``."""
        return self.offset

    @property
    def data_range(self) -> Range:
        """range-streams 1.x's ``[start, end)`` of the chunk's data (no CRC)."""
        return Range(self.data_offset, self.end - 4)


class ChunkTable:
    """Chunks in file order, discovered lazily: only as far as a caller needs."""

    def __init__(self, window: ListingWindow) -> None:
        self._window = window
        if window.read(0, 8) != PNG_SIGNATURE:
            raise ArchiveFormatError("not a PNG file: the 8-byte signature is missing")
        self.chunks: list[ChunkInfo] = []
        self._next_offset = 8
        self.complete = False

    def scan_until(self, chunk_type: str | None = None) -> None:
        """Hop until a chunk of ``chunk_type`` is found (``None``: to IEND or the end)."""
        if any(chunk.type == chunk_type for chunk in self.chunks):
            return
        while not self.complete:
            chunk = self._read_next()
            if chunk is None:
                return
            if chunk.type == chunk_type:
                return

    def _read_next(self, *, block_size: int | None = None) -> ChunkInfo | None:
        offset = self._next_offset
        header = self._window.read(offset, offset + 8, block_size=block_size)
        if not header:
            self.complete = True  # tolerated: the file ends after a whole chunk, sans IEND
            return None
        if len(header) < 8:
            raise ArchiveFormatError(f"truncated PNG chunk header at offset {offset}")
        length, raw_type = struct.unpack(">L4s", header)
        if length > _MAX_CHUNK_LENGTH or not raw_type.isalpha() or not raw_type.isascii():
            raise ArchiveFormatError(f"corrupt PNG chunk header at offset {offset}")
        chunk = ChunkInfo(raw_type.decode(), offset, length)
        if chunk.end > self._window.source.size:
            raise ArchiveFormatError(f"the {chunk.type} chunk at {offset} is truncated")
        if not self.chunks and chunk.type != "IHDR":
            raise ArchiveFormatError(f"the first PNG chunk is {chunk.type}, not IHDR")
        self.chunks.append(chunk)
        self._next_offset = chunk.end
        self.complete = chunk.type == "IEND"
        return chunk

    def first(self, chunk_type: str) -> ChunkInfo | None:
        """The first chunk of a type; for types the spec places before the image data,
        looking no further than the first IDAT (not hopping through the whole file)."""
        self.scan_until("IDAT" if chunk_type in _BEFORE_IDAT else chunk_type)
        for chunk in self.chunks:
            if chunk.type == chunk_type:
                return chunk
            if chunk.type == "IDAT" and chunk_type in _BEFORE_IDAT:
                return None
        return None

    def read_data(self, chunk: ChunkInfo, *, block_size: int | None = None) -> bytes:
        """The chunk's data, its CRC checked."""
        data_and_crc = self._window.read(chunk.data_offset, chunk.end, block_size=block_size)
        if len(data_and_crc) != chunk.length + 4:
            raise ArchiveFormatError(f"the {chunk.type} chunk at {chunk.offset} is truncated")
        data, (crc,) = data_and_crc[:-4], struct.unpack(">L", data_and_crc[-4:])
        if zlib.crc32(data, zlib.crc32(chunk.type.encode())) != crc:
            raise ChecksumError(f"CRC mismatch in the {chunk.type} chunk at {chunk.offset}")
        return data

    def iter_idat_data(self) -> Iterator[bytes]:
        """The data of each image data chunk (consecutive, as the spec requires), CRC
        checked, hopping and reading in ``IDAT_READ_AHEAD`` blocks as it goes."""
        self.scan_until("IDAT")
        index = next((i for i, chunk in enumerate(self.chunks) if chunk.type == "IDAT"), None)
        if index is None:
            raise ArchiveFormatError("the PNG has no IDAT (image data) chunk")
        while True:
            if index == len(self.chunks) and (
                self.complete or self._read_next(block_size=IDAT_READ_AHEAD) is None
            ):
                return
            chunk = self.chunks[index]
            if chunk.type != "IDAT":
                return
            # Read each chunk's data before hopping on, so the hop finds the next header
            # inside the block this read fetched.
            yield self.read_data(chunk, block_size=IDAT_READ_AHEAD)
            index += 1
