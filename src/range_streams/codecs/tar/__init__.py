"""Tar archives over a ``ByteSource``: listing by hopping headers, members by range."""

from ._compressed import DEFAULT_MAX_DECOMPRESSED
from ._info import TarInfo
from ._reader import TAR_READ_AHEAD, TarReader

__all__ = ["DEFAULT_MAX_DECOMPRESSED", "TAR_READ_AHEAD", "TarInfo", "TarReader"]
