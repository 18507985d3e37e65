"""Zip archives over a ``ByteSource``: the central directory in one or two reads."""

from ._directory import ZIP_TAIL_PROBE
from ._info import ZipInfo
from ._member import ZipMemberReader
from ._reader import ZipReader

__all__ = ["ZIP_TAIL_PROBE", "ZipInfo", "ZipMemberReader", "ZipReader"]
