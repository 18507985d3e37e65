"""Container formats read over a ``ByteSource``: zip, tar, PNG and conda packages.

Each reader takes any ``ByteSource`` and fetches only the parts it needs::

    ZipReader(BytesSource(data)).namelist()         # bytes in memory
    ZipReader(range_streams.open(url)).namelist()   # a remote file, by range requests

Readers only call ``size``, ``read_at``, ``read_ranges`` and ``read_tail``, so the
number of calls each makes is the number of requests it costs on a URL; every
module documents its budget. Errors are the ``CodecError`` subtree (``_errors``).
"""

from ._errors import (
    ArchiveFormatError,
    ChecksumError,
    CodecError,
    MemberNotFoundError,
    UnsupportedMemberError,
)
from ._png_stream import PngStream
from ._streams import CondaStream, TarStream, ZipStream
from .conda import CondaReader
from .png import PngReader
from .tar import TarInfo, TarReader
from .zip import ZipInfo, ZipReader

__all__ = [
    "ArchiveFormatError",
    "ChecksumError",
    "CodecError",
    "CondaReader",
    "CondaStream",
    "MemberNotFoundError",
    "PngReader",
    "PngStream",
    "TarInfo",
    "TarReader",
    "TarStream",
    "UnsupportedMemberError",
    "ZipInfo",
    "ZipReader",
    "ZipStream",
]
