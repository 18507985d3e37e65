"""PNG images over a ``ByteSource``: header and palette in one read, pixels unfiltered."""

from ._chunks import ChunkInfo
from ._reader import IHDR, PNG_READ_AHEAD, PngReader

__all__ = ["IHDR", "PNG_READ_AHEAD", "ChunkInfo", "PngReader"]


def __getattr__(name: str) -> object:
    # range-streams 1.x's import path ``range_streams.codecs.png.PngStream``; imported
    # late, as the stream classes import this package.
    if name == "PngStream":
        from .. import _png_stream  # noqa: PLC0415

        return _png_stream.PngStream
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
