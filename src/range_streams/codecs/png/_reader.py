"""``PngReader``: a PNG's header, palette and pixels from any ``ByteSource``.

Making a reader costs one request (``PNG_READ_AHEAD`` bytes from the start): it checks
the signature and reads IHDR. Everything the spec puts before the image data (PLTE,
tRNS) comes from that same read; the full chunk table hops to IEND only when asked
for, in small requests when the chunks are big (a ``ListingWindow``). Pixels are read
chunk by chunk in ``IDAT_READ_AHEAD`` blocks, decompressed with output bounded by the
size IHDR implies, and unfiltered."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..._core.source import ByteSource
from .._errors import ArchiveFormatError
from .._io import ListingWindow
from ._chunks import ChunkInfo, ChunkTable
from ._pixels import deinterlace, image_data_size, row_stride, unfilter

__all__ = ["PNG_READ_AHEAD", "IHDR", "PngReader"]

#: Bytes fetched by the first request: the signature and the chunks before the image data.
PNG_READ_AHEAD = 64 * 1024

# Colour type -> (channels, allowed bit depths).
_COLOUR_TYPES = {
    0: (1, (1, 2, 4, 8, 16)),  # greyscale
    2: (3, (8, 16)),  # RGB
    3: (1, (1, 2, 4, 8)),  # palette index
    4: (2, (8, 16)),  # greyscale + alpha
    6: (4, (8, 16)),  # RGB + alpha
}


@dataclass(frozen=True, slots=True)
class IHDR:
    """The image header's fields, validated against the PNG spec."""

    width: int
    height: int
    bit_depth: int
    colour_type: int
    compression: int
    filter_method: int
    interlacing: int

    @property
    def channel_count(self) -> int:
        """Samples per pixel as stored (a palette index counts as one)."""
        return _COLOUR_TYPES[self.colour_type][0]

    @property
    def bits_per_pixel(self) -> int:
        return self.channel_count * self.bit_depth

    @classmethod
    def parse(cls, data: bytes) -> IHDR:
        if len(data) != 13:
            raise ArchiveFormatError(f"IHDR holds {len(data)} bytes, not 13")
        header = cls(*struct.unpack(">2L5B", data))
        if not (0 < header.width < 2**31 and 0 < header.height < 2**31):
            raise ArchiveFormatError(f"invalid PNG size {header.width}x{header.height}")
        if header.colour_type not in _COLOUR_TYPES:
            raise ArchiveFormatError(f"invalid PNG colour type {header.colour_type}")
        if header.bit_depth not in _COLOUR_TYPES[header.colour_type][1]:
            raise ArchiveFormatError(
                f"bit depth {header.bit_depth} is invalid for colour type {header.colour_type}"
            )
        if header.compression != 0 or header.filter_method != 0 or header.interlacing > 1:
            raise ArchiveFormatError("unknown PNG compression, filter or interlace method")
        return header


class PngReader:
    """The header, palette, transparency and pixels of a PNG image."""

    def __init__(self, source: ByteSource) -> None:
        self.source = source
        self._table = ChunkTable(ListingWindow(source, PNG_READ_AHEAD))
        self._table.scan_until("IHDR")  # the first chunk, which must be IHDR
        if not self._table.chunks:
            raise ArchiveFormatError("the PNG has no IHDR chunk")
        # Read before hopping on: the window still holds the start of the file.
        self.ihdr = IHDR.parse(self._table.read_data(self._table.chunks[0]))
        self._table.scan_until("IDAT")

    @property
    def width(self) -> int:
        return self.ihdr.width

    @property
    def height(self) -> int:
        return self.ihdr.height

    @property
    def chunk_table(self) -> list[ChunkInfo]:
        """Every chunk in file order (hops to IEND the first time)."""
        self._table.scan_until(None)
        return list(self._table.chunks)

    @property
    def chunks(self) -> dict[str, list[ChunkInfo]]:
        """Chunks grouped by type, as range-streams 1.x had them."""
        grouped: dict[str, list[ChunkInfo]] = {}
        for chunk in self.chunk_table:
            grouped.setdefault(chunk.type, []).append(chunk)
        return grouped

    def has_chunk(self, chunk_type: str) -> bool:
        return self._table.first(chunk_type) is not None

    def get_chunk_data(self, chunk: ChunkInfo) -> bytes:
        """One chunk's data, its CRC checked."""
        return self._table.read_data(chunk)

    @property
    def palette(self) -> list[tuple[int, int, int]] | None:
        """PLTE's RGB entries, if the image has one."""
        chunk = self._table.first("PLTE")
        if chunk is None:
            return None
        data = self._table.read_data(chunk)
        if len(data) % 3:
            raise ArchiveFormatError(f"PLTE holds {len(data)} bytes, not a multiple of 3")
        return [(data[i], data[i + 1], data[i + 2]) for i in range(0, len(data), 3)]

    @property
    def transparency(self) -> bytes | None:
        """tRNS's raw data (palette alphas, or the transparent grey/RGB value), if any."""
        chunk = self._table.first("tRNS")
        return None if chunk is None else self._table.read_data(chunk)

    @property
    def alpha_as_direct(self) -> bool:
        """Whether the image has alpha once expanded to direct colour, as PyPNG's
        ``asDirect`` expands it: an alpha channel, or a tRNS chunk (which gives palette
        entries an alpha, or marks one grey/RGB value transparent)."""
        return self.ihdr.colour_type in (4, 6) or self.has_chunk("tRNS")

    @property
    def channel_count_as_direct(self) -> int:
        """Channels once expanded to direct colour: a palette index becomes RGB(A)."""
        colour_channels = 3 if self.ihdr.colour_type in (2, 3, 6) else 1
        return colour_channels + int(self.alpha_as_direct)

    @property
    def bit_depth_as_direct(self) -> int:
        """Palette entries are 8-bit whatever the index depth."""
        return 8 if self.ihdr.colour_type == 3 else self.ihdr.bit_depth

    @property
    def row_stride(self) -> int:
        """Bytes per row of ``get_idat_data()``."""
        return row_stride(self.ihdr.width, self.ihdr.bits_per_pixel)

    def get_idat_data(self) -> bytes:
        """The reconstructed pixel bytes: ``height`` rows of ``row_stride`` bytes.

        Samples are packed as PNG stores them (palette indices, not colours; sub-byte
        depths packed most significant bits first; 16-bit samples big-endian), with
        filtering undone and Adam7 interlacing resolved into plain row order.
        """
        header = self.ihdr
        interlaced = header.interlacing == 1
        expected = image_data_size(header.width, header.height, header.bits_per_pixel, interlaced)
        decompressor = zlib.decompressobj()
        pieces, produced = [], 0
        try:
            for data in self._table.iter_idat_data():
                # Never more than the image can hold, whatever the stream claims.
                pending = decompressor.unconsumed_tail + data
                piece = decompressor.decompress(pending, expected - produced + 1)
                produced += len(piece)
                pieces.append(piece)
                if produced > expected:
                    break
        except zlib.error as error:
            raise ArchiveFormatError(f"corrupt PNG image data: {error}") from error
        raw = b"".join(pieces)
        if len(raw) != expected:
            raise ArchiveFormatError(
                f"the image data decompresses to {len(raw)} bytes; a {header.width}x"
                f"{header.height} image needs {expected}"
            )
        if interlaced:
            return bytes(deinterlace(raw, header.width, header.height, header.bits_per_pixel))
        return bytes(unfilter(raw, header.width, header.height, header.bits_per_pixel))

    def __repr__(self) -> str:
        size = f"{self.ihdr.width}x{self.ihdr.height}"
        return f"<{type(self).__name__} {size} colour type {self.ihdr.colour_type}>"
