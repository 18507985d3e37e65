"""``TarReader``: list and extract the members of an uncompressed tar in a ``ByteSource``.

Listing walks from header to header and skips member data by its size, through a
``ListingWindow``: the first read fetches ``TAR_READ_AHEAD`` bytes from the start (a
small tar whole, and the length of a URL not known yet); from then on, the headers seen
so far choose, per archive, between hopping (a 4 KiB read at each header a big member
puts out of reach: one small request per member) and reading the rest through in one
streaming request (small members, whose headers are closer together than a request is
worth).

Compressed tars are refused with a clear ``ArchiveFormatError`` (they cannot be hopped:
see ``_compressed``); ``TarReader.from_compressed`` reads one through once, on request.
"""

from __future__ import annotations

import posixpath

from ..._core.source import ByteSource
from .._errors import ArchiveFormatError, MemberNotFoundError, UnsupportedMemberError
from .._io import CHUNK_SIZE, ListingWindow, SegmentReader
from ._compressed import DEFAULT_MAX_DECOMPRESSED, decompress_whole, detect_compression
from ._header import BLOCK_SIZE, parse_header
from ._info import SUPPORTED_TYPES, TarInfo
from ._scan import scan_members

__all__ = ["TAR_READ_AHEAD", "TarReader"]

#: Bytes of the listing's first read, from the start of the archive: what a request is
#: worth (``ROUND_TRIP_BYTES``), so a tar this small costs one request, and a big one
#: that is then hopped has over-read no more than one request's worth.
TAR_READ_AHEAD = 256 * 1024
_MAX_LINK_HOPS = 32


class TarReader:
    """Random access to the members of an uncompressed tar archive.

    The archive is listed when the reader is made. Names follow ``tarfile`` (PAX and
    GNU long names applied, trailing slashes dropped from directories); when a name
    occurs twice, ``getmember`` returns the later one, as ``tarfile`` does.
    """

    def __init__(self, source: ByteSource, *, read_ahead: int = TAR_READ_AHEAD) -> None:
        self.source = source
        self._window = ListingWindow(source, read_ahead)
        first_block = self._window.read(0, BLOCK_SIZE)
        compression = detect_compression(first_block)
        if compression is not None and not _is_tar_header(first_block):
            raise ArchiveFormatError(
                f"this is a {compression}-compressed tar, whose members cannot be reached"
                " without decompressing everything before them; use"
                " TarReader.from_compressed(source) to read it through once"
            )
        self._members = scan_members(self._window)
        self._by_name = {member.name: member for member in self._members}

    @classmethod
    def from_compressed(
        cls, source: ByteSource, *, max_size: int = DEFAULT_MAX_DECOMPRESSED
    ) -> TarReader:
        """A reader over the decompressed copy of a .tar.gz/.bz2/.xz/.zst, held in memory.

        The whole source is read once, in bounded requests; more than ``max_size``
        decompressed bytes raise ``CodecError``. An uncompressed tar is read in place.
        """
        head = source.read_at(0, min(CHUNK_SIZE, source.size))
        compression = detect_compression(head)
        if compression is None or _is_tar_header(head[:BLOCK_SIZE]):
            return cls(source)
        return cls(decompress_whole(source, compression, max_size, head=head))

    def infolist(self) -> list[TarInfo]:
        return list(self._members)

    getmembers = infolist

    def namelist(self) -> list[str]:
        return [member.name for member in self._members]

    getnames = namelist

    def getmember(self, name: str) -> TarInfo:
        try:
            return self._by_name[name]
        except KeyError:
            raise MemberNotFoundError(f"there is no member named {name!r}") from None

    def _file_member(self, member: str | TarInfo) -> TarInfo:
        """The member whose data ``member`` reads as: links are followed."""
        info = self.getmember(member) if isinstance(member, str) else member
        for _ in range(_MAX_LINK_HOPS):
            if info.islnk():
                info = self.getmember(info.linkname)
            elif info.issym():
                target = posixpath.join(posixpath.dirname(info.name), info.linkname)
                info = self.getmember(posixpath.normpath(target))
            elif info.isreg() or info.type not in SUPPORTED_TYPES:
                return info  # tarfile, too, reads unknown types as regular files
            else:
                raise UnsupportedMemberError(
                    f"{info.name!r} is not a file (type {info.type!r}): it has no data"
                )
        raise UnsupportedMemberError(f"{info.name!r}: too many levels of links")

    def open(self, member: str | TarInfo) -> SegmentReader:
        """A readable stream of the member's bytes, fetched in bounded requests."""
        info = self._file_member(member)
        segments: list[tuple[int | None, int]] = []
        if info.sparse is None:
            segments.append((info.data_offset, info.size))
        else:
            # The archive stores only the runs of data, back to back; holes read as zeros.
            cursor, stored_at = 0, info.data_offset
            for offset, length in info.sparse:
                segments += [(None, offset - cursor), (stored_at, length)]
                cursor, stored_at = offset + length, stored_at + length
            segments.append((None, info.size - cursor))
        head = self._window.held_from(info.data_offset)
        return SegmentReader(self.source, segments, head=head, head_offset=info.data_offset)

    def read(self, member: str | TarInfo) -> bytes:
        with self.open(member) as reader:
            return reader.readall()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self._members)} members>"


def _is_tar_header(block: bytes) -> bool:
    """A valid header block (a tar whose first name happens to start like a magic)."""
    if len(block) < BLOCK_SIZE:
        return False
    try:
        parse_header(block, 0)
    except ArchiveFormatError:
        return False
    return True
