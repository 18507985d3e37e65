"""PNG images over a ``ByteSource``: header and palette in one read, pixels unfiltered."""

from ._chunks import ChunkInfo
from ._reader import IHDR, PNG_READ_AHEAD, PngReader

__all__ = ["IHDR", "PNG_READ_AHEAD", "ChunkInfo", "PngReader"]
