"""range-streams 1.x's format records on the codec streams (``stream.data``), and its
``decompress`` of a conda package's ``.tar.zst`` members.

``ZipStream.data``, ``TarStream.data`` and ``PngStream.data`` held a format's fixed
facts (signatures, struct layouts, field offsets) and what was read of the file
(``start_pos``, ``entry_count``, ``size``; the PNG header's fields). The records here
hold the same names; the streams fill them from the 2.x readers.
"""

from __future__ import annotations

import io
import struct
from typing import IO, TYPE_CHECKING, Any

from .._core.source import BytesSource
from ._errors import UnsupportedMemberError
from .tar._compressed import decompress_whole

if TYPE_CHECKING:
    import tarfile

__all__ = [
    "COMPRESSIONS",
    "IHDRChunk",
    "PngData",
    "TarData",
    "ZipData",
    "decompress",
]

#: File extensions and the compression each means (1.x's table).
COMPRESSIONS = {
    ".gz": "gz",
    ".tgz": "gz",
    ".xz": "xz",
    ".txz": "xz",
    ".bz2": "bz2",
    ".tbz": "bz2",
    ".tbz2": "bz2",
    ".tb2": "bz2",
    ".zst": "zst",
    ".tzst": "zst",
}
_DECODERS = {"gz": "gzip", "xz": "xz", "bz2": "bzip2", "zst": "zstd"}
#: The most decompressed bytes ``decompress`` holds in memory.
MAX_DECOMPRESSED = 1024 * 1024 * 1024


class _Record:
    """Fields by name; ``repr`` lists the public ones, as 1.x's records did."""

    struct = ""

    def __init__(self) -> None:
        self.start_pos: int | None = None

    def get_size(self) -> int:
        return struct.calcsize(self.struct)

    def __repr__(self) -> str:
        fields = {
            k: getattr(self, k)
            for k in dir(self)
            if not k.startswith("_") and not callable(getattr(self, k))
        }
        return f"{type(self).__name__} :: {fields}"


class CentralDirectoryRec(_Record):
    start_sig = b"PK\x01\x02"
    struct = "<4s4B4HL2L5H2L"

    def __init__(self) -> None:
        super().__init__()
        self.entry_count: int | None = None
        self.size: int | None = None


class LocalFileHeader(_Record):
    start_sig = b"PK\x03\x04"
    struct = "<4s2B4HL2L2H"


class Zip64EndOfCentralDirectoryRec(_Record):
    start_sig = b"PK\x06\x06"
    struct = "<4sQ2H2L4Q"


class EndOfCentralDirectoryRec(_Record):
    start_sig = b"PK\x05\x06"
    struct = "<4s4H2LH"


class ZipData:
    """``ZipStream.data``: where the central directory and its end record are."""

    def __init__(self) -> None:
        self.CTRL_DIR_REC = CentralDirectoryRec()
        self.LOC_F_H = LocalFileHeader()
        self.Z64_E_O_CTRL_DIR_REC = Zip64EndOfCentralDirectoryRec()
        self.E_O_CTRL_DIR_REC = EndOfCentralDirectoryRec()


class HeaderData(_Record):
    """Field offsets and sizes in a tar header block (ustar)."""

    _H_FILENAME_START = 0
    _H_FILE_MODE_START = 100
    _H_OWNER_UID_START = 108
    _H_GROUP_UID_START = 116
    _H_FILE_SIZE_START = 124
    _H_MTIME_START = 136
    _H_CHECKSUM_START = 148
    _H_LINK_INDICATOR_START = 156
    _H_LINKED_NAME_START = 157
    _H_FILENAME_SIZE = 100
    _H_FILE_MODE_SIZE = 8
    _H_OWNER_UID_SIZE = 8
    _H_GROUP_UID_SIZE = 8
    _H_FILE_SIZE_SIZE = 12
    _H_MTIME_SIZE = 12
    _H_CHECKSUM_SIZE = 8
    _H_LINK_INDICATOR_SIZE = 1
    _H_LINKED_NAME_SIZE = 100
    _H_PAD_SIZE = 512
    _H_END_PAD_SIZE = 2 * _H_PAD_SIZE


class TarData:
    """``TarStream.data``."""

    def __init__(self) -> None:
        self.HEADER = HeaderData()


class IHDRInfo:
    """Positions of the fields in IHDR's struct."""

    _IHDR_WIDTH = 0
    _IHDR_HEIGHT = 1
    _IHDR_BIT_DEPTH = 2
    _IHDR_COLOUR_TYPE = 3
    _IHDR_COMPRESSION = 4
    _IHDR_FILTER_METHOD = 5
    _IHDR_INTERLACING = 6


class IHDRChunk(_Record):
    """``PngStream.data.IHDR``: the header's fields, None until the header is read."""

    start_pos = 16
    end_pos = 29
    struct = ">IIBBBBB"
    parts = IHDRInfo

    def __init__(self) -> None:
        self.width: int | None = None
        self.height: int | None = None
        self.bit_depth: int | None = None
        self.colour_type: int | None = None
        self.compression: int | None = None
        self.filter_method: int | None = None
        self.interlacing: int | None = None

    def fill(self, header: Any) -> None:
        """Take the fields of a parsed header (``png.IHDR``)."""
        for name in (
            "width",
            "height",
            "bit_depth",
            "colour_type",
            "compression",
            "filter_method",
            "interlacing",
        ):
            setattr(self, name, getattr(header, name))
        self.count_channels()

    @property
    def channel_count(self) -> int | None:
        """Samples per pixel as stored (a palette index counts as one); None unread."""
        if self.colour_type is None:
            return None
        if not hasattr(self, "_channels"):
            self.count_channels()
        return self._channels

    def count_channels(self) -> None:
        if self.colour_type is None:
            raise ValueError("Process the IHDR chunk before counting channels")
        self._has_colourmap = bool(self.colour_type & 1)
        self._is_grayscale = not (self.colour_type & 2)
        self._has_alpha_channel = bool(self.colour_type & 4)
        colours = 1 if (self._is_grayscale or self._has_colourmap) else 3
        self._channels = colours + int(self._has_alpha_channel)


class PngData:
    """``PngStream.data``."""

    def __init__(self) -> None:
        self.IHDR = IHDRChunk()


def decompress(b: bytes, method: str, archive: str | None = None) -> tarfile.TarFile | IO[bytes]:
    """``b`` decompressed by ``method`` (``gz``, ``xz``, ``bz2``, ``zst``): a ``TarFile``
    if ``archive`` is ``"tar"``, else a binary file object. Held in memory, up to
    ``MAX_DECOMPRESSED`` bytes."""
    if archive not in (None, "zip", "tar"):
        raise TypeError(f"{archive=} is not one of [None, 'zip', 'tar']")
    if method not in _DECODERS:
        raise TypeError(f"Decompression not implemented for {method}: use one of {COMPRESSIONS}")
    if archive == "zip":
        raise UnsupportedMemberError("a compressed zip inside a zip is not supported")
    source = decompress_whole(BytesSource(b), _DECODERS[method], MAX_DECOMPRESSED)
    data = io.BytesIO(source.read_at(0, source.size))
    if archive == "tar":
        import tarfile  # noqa: PLC0415 (only this needs it, and it is slow to import)

        return tarfile.open(fileobj=data, mode="r:")
    return data
