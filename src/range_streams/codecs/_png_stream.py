"""``PngStream(url)``: range-streams 1.x's PNG stream over the 2.x ``PngReader``.

The header (``data.IHDR``), the chunk table (``chunks``), and the pixels as 1.x gave
them (``get_idat_data()``: a list of ints, one per byte of the unfiltered rows) and its
alpha check (``any_semitransparent_idat``). ``reader.get_idat_data()`` has the same
pixels as ``bytes``.
"""

from __future__ import annotations

from typing import Any

import httpx

from .._core.registry import PruningLevel
from .._state.stream_core import EMPTY_RANGE, ByteRange
from ._errors import ArchiveFormatError
from ._legacy import PngData
from ._streams import _CodecStream
from .png import ChunkInfo, PngReader

__all__ = ["PngStream"]


class PngStream(_CodecStream):
    """A remote PNG: header and early chunks from one read, pixels on request.

    As in 1.x, ``single_request`` defaults to True (the stream's own ``add`` windows
    read one GET), and ``scan_ihdr=False`` leaves the header unread (``data.IHDR``'s
    fields None) until something needs it. ``enumerate_chunks`` is accepted: the chunk
    table is read when first asked for, whichever it is.
    """

    def __init__(
        self,
        url: str,
        client: httpx.Client | None = None,
        byte_range: ByteRange = EMPTY_RANGE,
        pruning_level: int | PruningLevel = PruningLevel.replant,
        single_request: bool = True,
        force_async: bool = False,
        chunk_size: int | None = None,
        raise_response: bool = True,
        scan_ihdr: bool = True,
        enumerate_chunks: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            url, client, byte_range, pruning_level, single_request, force_async, chunk_size,
            raise_response, **options,
        )  # fmt: skip
        self.data = PngData()
        self._reader: PngReader | None = None
        if scan_ihdr:
            self.scan_ihdr()

    @property
    def reader(self) -> PngReader:
        """The PNG reader (reading the header the first time)."""
        if self._reader is None:
            self._reader = PngReader(self.file)
            self.data.IHDR.fill(self._reader.ihdr)
        return self._reader

    def scan_ihdr(self) -> None:
        """Read the header into ``data.IHDR``."""
        _ = self.reader

    def populate_chunks(self) -> None:
        self._chunks = self.enumerate_chunks()

    @property
    def chunks(self) -> dict[str, list[ChunkInfo]]:
        """Chunks by type, in file order (each with 1.x's ``start``, ``end``,
        ``length``, ``type`` and ``data_range``)."""
        if not hasattr(self, "_chunks"):
            self.populate_chunks()
        return self._chunks

    def enumerate_chunks(self) -> dict[str, list[ChunkInfo]]:
        return self.reader.chunks

    async def enumerate_chunks_async(self) -> dict[str, list[ChunkInfo]]:
        """1.x's async ``enumerate_chunks``: only on the streams ``AsyncFetcher`` hands
        its callback (their bytes are in memory)."""
        self._check_loop_safe("enumerate_chunks_async")
        return self.enumerate_chunks()

    def get_chunk_data(self, chunk_info: ChunkInfo) -> bytes:
        """One chunk's data, its CRC checked."""
        return self.reader.get_chunk_data(chunk_info)

    def has_chunk(self, chunk_type: str) -> bool:
        return self.reader.has_chunk(chunk_type)

    @property
    def alpha_as_direct(self) -> bool:
        return self.reader.alpha_as_direct

    @property
    def channel_count_as_direct(self) -> int:
        return self.reader.channel_count_as_direct

    @property
    def bit_depth_as_direct(self) -> int:
        return self.reader.bit_depth_as_direct

    def get_idat_data(self) -> list[int]:
        """The unfiltered image rows as a list of ints, one per byte (1.x's form)."""
        return list(self.reader.get_idat_data())

    def any_semitransparent_idat(self, nonzero: bool = True) -> bool:
        """Whether any pixel's alpha, as the image is expanded to direct colour, is below
        opaque: strictly between transparent and opaque (``nonzero=True``) or at all
        (``nonzero=False``). An image without alpha or ``tRNS`` has none."""
        alphas, opaque = pixel_alphas(self.reader)
        if nonzero:
            return any(0 < a < opaque for a in alphas)
        return any(a < opaque for a in alphas)


def pixel_alphas(reader: PngReader) -> tuple[Any, int]:
    """Every pixel's alpha (an iterable) and the value meaning opaque.

    An alpha channel (colour types 4 and 6) gives its samples; a palette with ``tRNS``
    gives each index's entry (255 past its end); a grey or RGB image with ``tRNS``
    gives 0 for pixels of the key colour and opaque for the rest.
    """
    header = reader.ihdr
    data = reader.get_idat_data()
    depth = header.bit_depth
    opaque = (1 << depth) - 1 if depth == 16 else 255
    if header.colour_type in (4, 6):
        sample = depth // 8
        pixel = header.channel_count * sample
        alpha_at = pixel - sample
        if sample == 1:
            return data[alpha_at::pixel], opaque
        highs, lows = data[alpha_at::pixel], data[alpha_at + 1 :: pixel]
        return (h << 8 | low for h, low in zip(highs, lows, strict=True)), opaque
    transparency = reader.transparency
    if transparency is None:
        return (), opaque
    if header.colour_type == 3:
        table = bytes(transparency) + b"\xff" * (256 - len(transparency))
        return (table[i] for i in _samples(data, header.width, reader.row_stride, depth)), 255
    needed = 2 if header.colour_type == 0 else 6
    if len(transparency) != needed:
        raise ArchiveFormatError(f"tRNS holds {len(transparency)} bytes, not {needed}")
    if header.colour_type == 0:
        level = int.from_bytes(transparency, "big")
        if depth == 16:
            values: Any = (int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
        else:
            values = _samples(data, header.width, reader.row_stride, depth)
        return (0 if v == level else opaque for v in values), opaque
    size = depth // 8  # an RGB key: three 16-bit values, compared at the image's depth
    key = b"".join(
        int.from_bytes(transparency[i : i + 2], "big").to_bytes(size, "big") for i in (0, 2, 4)
    )
    step = 3 * size
    return (0 if data[i : i + step] == key else opaque for i in range(0, len(data), step)), opaque


def _samples(data: bytes, width: int, stride: int, depth: int) -> Any:
    """Each pixel's single sample (palette index or grey level) from packed rows."""
    if depth == 8:
        return iter(data)
    per_byte, mask = 8 // depth, (1 << depth) - 1
    return (
        (data[row + x // per_byte] >> (8 - depth * (x % per_byte + 1))) & mask
        for row in range(0, len(data), stride)
        for x in range(width)
    )
