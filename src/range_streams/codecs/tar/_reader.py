"""``TarReader``: list and extract the members of an uncompressed tar in a ``ByteSource``.

Listing hops from header to header and skips member data by its size, reading through
a ``TAR_READ_AHEAD`` window: each miss fetches 64 KiB starting at the header wanted.
Headers of small members therefore share requests, so listing never costs many more
requests than streaming the archive in 64 KiB pieces would, while a big member is
skipped for the price of one request however big it is. A tar smaller than the window
is listed, and its members read, with a single request.

Compressed tars are refused with a clear ``ArchiveFormatError`` (they cannot be hopped:
see ``_compressed``); ``TarReader.from_compressed`` reads one through once, on request.
"""

from __future__ import annotations

import contextlib
import posixpath

from ..._core.source import ByteSource
from .._errors import ArchiveFormatError, MemberNotFoundError, UnsupportedMemberError
from .._io import CHUNK_SIZE, ReadAheadWindow, SegmentReader, advise, free_size
from ._compressed import DEFAULT_MAX_DECOMPRESSED, decompress_whole, detect_compression
from ._header import BLOCK_SIZE, parse_header
from ._info import SUPPORTED_TYPES, TarInfo
from ._scan import scan_members

__all__ = ["TAR_READ_AHEAD", "TarReader"]

#: Bytes fetched per read-ahead miss while hopping between headers.
TAR_READ_AHEAD = 64 * 1024
_MAX_LINK_HOPS = 32


#: Archives up to this size are listed with one streaming read instead of header hops:
#: at 20 ms RTT and ~1 GB/s, reading 8 MiB costs less than one more round trip.
STREAM_LISTING_LIMIT = 8 << 20


class TarReader:
    """Random access to the members of an uncompressed tar archive.

    The archive is listed when the reader is made. Names follow ``tarfile`` (PAX and
    GNU long names applied, trailing slashes dropped from directories); when a name
    occurs twice, ``getmember`` returns the later one, as ``tarfile`` does.
    """

    def __init__(self, source: ByteSource, *, read_ahead: int = TAR_READ_AHEAD) -> None:
        self.source = source
        size = free_size(source)
        if size is None or size <= STREAM_LISTING_LIMIT:
            # Hopping a small archive costs a round trip per read-ahead window; one
            # streaming read of all of it costs one, and about as many bytes. A size
            # still unknown is not asked for (a request of its own): the first response
            # tells it, and holds all of a small archive.
            advise(source, 0, STREAM_LISTING_LIMIT if size is None else size)
        if size is None:
            with contextlib.suppress(ValueError):  # shorter than a block: found out below
                source.read_at(0, BLOCK_SIZE)  # the advised response; it tells the size
            if source.size > STREAM_LISTING_LIMIT:
                advise(source, 0, 0)  # too big to read through: hop between headers
        self._window = ReadAheadWindow(source, read_ahead)
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
