"""One member's bytes: its local header, and a reader that decompresses and checks them.

The local header repeats the name and has its own extra field, whose length often
differs from the central directory's (Info-ZIP writes a longer ``UT`` timestamp block
locally, for instance), so where the data starts is only known from the local header
itself. Callers fetch the header together with a guess at the data in one read, and
``data_offset`` finds the real start inside it.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import TYPE_CHECKING

from ..._core.errors import StreamClosedError
from .._decode import ReadableStream
from .._errors import ArchiveFormatError, ChecksumError, UnsupportedMemberError
from .._io import CHUNK_SIZE
from ._info import ZipInfo

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["LOCAL_HEADER_SIZE", "LOCAL_HEADER_SLACK", "ZipMemberReader", "data_offset"]

LOCAL_HEADER_SIZE = 30
#: Extra bytes fetched beyond what the central directory suggests the local header
#: needs, so that a longer local extra field rarely costs a second request.
LOCAL_HEADER_SLACK = 256

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_ENCRYPTED_FLAG = 1


def data_offset(info: ZipInfo, head: bytes) -> int:
    """Where the member's data starts, from ``head`` (bytes fetched at its local header).

    ``head`` must hold at least the fixed header and the name; the name is compared
    with the central directory's so that a corrupt offset never yields another
    member's bytes.
    """
    if len(head) < LOCAL_HEADER_SIZE:
        raise ArchiveFormatError(f"{info.filename!r}: local header is truncated")
    fields = _LOCAL_HEADER.unpack_from(head)
    if fields[0] != _LOCAL_HEADER_SIGNATURE:
        raise ArchiveFormatError(
            f"{info.filename!r}: no local header at offset {info.header_offset}: corrupt archive"
        )
    flag_bits, name_length, extra_length = int(fields[3]), int(fields[10]), int(fields[11])
    name = head[LOCAL_HEADER_SIZE : LOCAL_HEADER_SIZE + name_length]
    if name != info.raw_filename:
        raise ArchiveFormatError(
            f"{info.filename!r}: the local header names {name!r}: corrupt archive"
        )
    if flag_bits & _ENCRYPTED_FLAG:
        raise UnsupportedMemberError(f"{info.filename!r} is encrypted")
    return info.header_offset + LOCAL_HEADER_SIZE + name_length + extra_length


def local_name_end(head: bytes) -> int:
    """How many bytes from the local header's start are needed to check the name."""
    if len(head) < LOCAL_HEADER_SIZE:
        return LOCAL_HEADER_SIZE
    return LOCAL_HEADER_SIZE + int(_LOCAL_HEADER.unpack_from(head)[10])


class ZipMemberReader(io.RawIOBase):
    """A readable, forward-only stream of one member's decompressed bytes.

    The CRC-32 and size are checked as the last byte is read: a mismatch raises
    ``ChecksumError`` (CRC) or ``ArchiveFormatError`` (data ends early), so a caller
    that reads to the end has verified the member.
    """

    def __init__(self, info: ZipInfo, decoded: ReadableStream, closer: io.RawIOBase) -> None:
        super().__init__()
        self.info = info
        self.name = info.filename
        self._decoded = decoded
        self._closer = closer
        self._remaining = info.file_size
        self._crc = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def _next_piece(self, limit: int) -> bytes:
        if self.closed:
            raise StreamClosedError("I/O operation on a closed zip member")
        if self._remaining == 0:
            self._verify()
            return b""
        piece = self._decoded.read(min(limit, self._remaining))
        if not piece:
            raise ArchiveFormatError(
                f"{self.name!r}: data ends {self._remaining} bytes before its declared"
                f" size of {self.info.file_size}: corrupt or truncated archive"
            )
        self._crc = zlib.crc32(piece, self._crc)
        self._remaining -= len(piece)
        if self._remaining == 0:
            self._verify()
        return piece

    def _verify(self) -> None:
        if not self._verified and self._crc != self.info.CRC:
            raise ChecksumError(
                f"{self.name!r}: CRC-32 is {self._crc:08x}, the archive says {self.info.CRC:08x}"
            )
        self._verified = True

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return self._next_piece(size) if size else b""

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        piece = self._next_piece(len(view)) if len(view) else b""
        view[: len(piece)] = piece
        return len(piece)

    def readall(self) -> bytes:
        pieces = []
        while piece := self._next_piece(CHUNK_SIZE):
            pieces.append(piece)
        return b"".join(pieces)

    def close(self) -> None:
        self._closer.close()
        super().close()
