"""Container formats read over a ``ByteSource``: zip, tar, PNG and conda packages.

Each reader takes any ``ByteSource`` (``BytesSource`` for bytes in memory, or the file
object ``range_streams.open(url)`` gives) and fetches only the parts it needs.
"""

from ._errors import (
    ArchiveFormatError,
    ChecksumError,
    CodecError,
    MemberNotFoundError,
    UnsupportedMemberError,
)
from .conda import CondaReader
from .png import PngReader
from .tar import TarInfo, TarReader
from .zip import ZipInfo, ZipReader

__all__ = [
    "ArchiveFormatError",
    "ChecksumError",
    "CodecError",
    "CondaReader",
    "MemberNotFoundError",
    "PngReader",
    "TarInfo",
    "TarReader",
    "UnsupportedMemberError",
    "ZipInfo",
    "ZipReader",
]
