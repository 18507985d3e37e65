"""Tar archives over a ``ByteSource``: listing by hopping headers, members by range."""

from ._compressed import DEFAULT_MAX_DECOMPRESSED
from ._info import TarInfo
from ._reader import TAR_READ_AHEAD, TarReader

__all__ = ["DEFAULT_MAX_DECOMPRESSED", "TAR_READ_AHEAD", "TarInfo", "TarReader"]


def __getattr__(name: str) -> object:
    # range-streams 1.x's import path ``range_streams.codecs.tar.TarStream``; imported
    # late, as the stream classes import this package.
    if name == "TarStream":
        from .. import _streams  # noqa: PLC0415

        return _streams.TarStream
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
