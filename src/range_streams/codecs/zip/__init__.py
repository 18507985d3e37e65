"""Zip archives over a ``ByteSource``: the central directory in one or two reads."""

from ._directory import ZIP_TAIL_PROBE
from ._info import LocatedZipInfo, ZipInfo
from ._member import ZipMemberReader
from ._reader import ZipReader

__all__ = ["ZIP_TAIL_PROBE", "LocatedZipInfo", "ZipInfo", "ZipMemberReader", "ZipReader"]


def __getattr__(name: str) -> object:
    # range-streams 1.x's import path ``range_streams.codecs.zip.ZipStream``; imported
    # late, as the stream classes import this package.
    if name == "ZipStream":
        from .. import _streams  # noqa: PLC0415

        return _streams.ZipStream
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
