"""Finding and parsing a zip's central directory in as few reads as possible.

The directory sits at the end of the file, followed by the ZIP64 records (if any) and
the end-of-central-directory record (EOCD) with its comment. One suffix read of
``ZIP_TAIL_PROBE`` bytes holds the EOCD even with the longest possible comment, the
ZIP64 locator and record, and the whole directory of a few thousand members; for bigger
directories exactly the missing front part is read with one more ``read_at``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..._core.source import ByteSource
from .._errors import ArchiveFormatError
from ._info import ZipInfo

__all__ = ["ZIP_TAIL_PROBE", "ZipDirectory", "read_directory"]

#: Bytes fetched from the end of the file by the first (suffix) read: 64 KiB for the
#: largest EOCD comment plus 64 KiB of directory (about 1,000 typical entries).
ZIP_TAIL_PROBE = 128 * 1024

_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_MAX_COMMENT = 0xFFFF
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
_ENTRY = struct.Struct("<4s4B4HL2L5H2L")
_ENTRY_SIGNATURE = b"PK\x01\x02"
_ZIP64_EXTRA_ID = 0x0001
_UNICODE_PATH_EXTRA_ID = 0x7075
_UNICODE_PATH_TAG = struct.pack("<H", _UNICODE_PATH_EXTRA_ID)  # its header id, as stored
_UTF8_FLAG = 1 << 11


@dataclass(frozen=True, slots=True)
class ZipDirectory:
    """What the end of the archive says: its members and its comment."""

    members: list[ZipInfo]
    comment: bytes
    directory_offset: int  # absolute offset of the central directory in the source
    directory_size: int
    eocd_offset: int  # absolute offset of the end-of-central-directory record
    tail: bytes  # the end of the file as read, kept: small archives are all in it
    tail_offset: int


class _Tail:
    """The bytes of the file from ``start`` to its end, grown backwards on demand."""

    def __init__(self, source: ByteSource) -> None:
        self.source = source
        self.data = source.read_tail(ZIP_TAIL_PROBE)
        self.size = source.size
        self.start = self.size - len(self.data)

    def slice(self, start: int, stop: int, what: str) -> bytes:
        if start < 0 or stop > self.size or start > stop:
            raise ArchiveFormatError(f"{what} [{start}, {stop}) lies outside the file")
        if start < self.start:
            # The one extra read: exactly the part in front of what we hold.
            self.data = self.source.read_at(start, self.start) + self.data
            self.start = start
        return self.data[start - self.start : stop - self.start]


def _find_eocd(tail: _Tail) -> tuple[int, tuple[int, ...]]:
    """The absolute offset and fields of the EOCD record, scanning back from the end.

    The record whose comment ends exactly at the end of the file wins, so a signature
    inside a comment is not mistaken for it; failing that, the last record whose comment
    fits (the file has bytes appended after the archive).
    """
    data = tail.data
    search_from = max(len(data) - _EOCD.size - _MAX_COMMENT, 0)
    end = len(data)
    fallback = None
    while (position := data.rfind(_EOCD_SIGNATURE, search_from, end)) >= 0:
        end = position + len(_EOCD_SIGNATURE) - 1
        if position + _EOCD.size > len(data):
            continue
        fields = _EOCD.unpack_from(data, position)
        comment_end = position + _EOCD.size + fields[7]
        if comment_end == len(data):
            return tail.start + position, fields
        if comment_end < len(data) and fallback is None:
            fallback = tail.start + position, fields
    if fallback is None:
        raise ArchiveFormatError("no end-of-central-directory record: not a zip file, or truncated")
    return fallback


def _read_zip64_eocd(tail: _Tail, locator_offset: int) -> tuple[int, tuple[int, ...]]:
    """The absolute offset and fields of the ZIP64 EOCD record the locator points at."""
    locator = _ZIP64_LOCATOR.unpack(
        tail.slice(locator_offset, locator_offset + _ZIP64_LOCATOR.size, "ZIP64 locator")
    )
    _, record_disk, record_offset, disk_count = locator
    if record_disk != 0 or disk_count > 1:
        raise ArchiveFormatError("multi-disk (spanned) zip archives are not supported")
    # The record normally sits right before the locator; its stored offset is relative
    # to the archive start, which differs when something (an SFX stub) is prepended.
    candidates = [locator_offset - _ZIP64_EOCD.size, record_offset]
    for offset in candidates:
        if offset >= 0 and offset + _ZIP64_EOCD.size <= locator_offset:
            raw = tail.slice(offset, offset + _ZIP64_EOCD.size, "ZIP64 EOCD record")
            if raw.startswith(_ZIP64_EOCD_SIGNATURE):
                return offset, _ZIP64_EOCD.unpack(raw)
    raise ArchiveFormatError("the ZIP64 locator does not point at a ZIP64 EOCD record")


def read_directory(source: ByteSource) -> ZipDirectory:
    """Locate, fetch and parse the central directory (one read, two for big ones)."""
    tail = _Tail(source)
    eocd_offset, eocd = _find_eocd(tail)
    _, disk, directory_disk, disk_entries, entry_count, directory_size, directory_at = eocd[:7]
    comment_start = eocd_offset + _EOCD.size
    comment = tail.slice(comment_start, comment_start + eocd[7], "archive comment")
    directory_end = eocd_offset
    locator_offset = eocd_offset - _ZIP64_LOCATOR.size
    if locator_offset >= 0:
        locator_magic = tail.slice(locator_offset, locator_offset + 4, "ZIP64 locator")
        if locator_magic == _ZIP64_LOCATOR_SIGNATURE:
            directory_end, record = _read_zip64_eocd(tail, locator_offset)
            _, _, _, _, disk, directory_disk, disk_entries, entry_count = record[:8]
            directory_size, directory_at = record[8], record[9]
    if disk != 0 or directory_disk != 0 or disk_entries != entry_count:
        raise ArchiveFormatError("multi-disk (spanned) zip archives are not supported")
    # Offsets are relative to the archive's start; bytes prepended to the archive (a
    # self-extractor stub) shift everything by the same amount, found here.
    base = directory_end - directory_size - directory_at
    if base < 0:
        raise ArchiveFormatError(
            "the central directory's size and offset overrun its end: corrupt archive"
        )
    start = directory_at + base
    raw = tail.slice(start, start + directory_size, "central directory")
    members = _parse_entries(raw, base, limit=start)
    if len(members) % 0x10000 != entry_count % 0x10000:
        # Compared modulo 2**16: some writers let the 16-bit count wrap without ZIP64.
        raise ArchiveFormatError(
            f"the central directory holds {len(members)} entries, the EOCD says"
            f" {entry_count}: corrupt archive"
        )
    return ZipDirectory(
        members=members,
        comment=comment,
        directory_offset=start,
        directory_size=directory_size,
        eocd_offset=eocd_offset,
        tail=tail.data,
        tail_offset=tail.start,
    )


def _parse_entries(raw: bytes, base: int, limit: int) -> list[ZipInfo]:
    members = []
    position = 0
    while position < len(raw):
        if position + _ENTRY.size > len(raw):
            raise ArchiveFormatError("the central directory ends inside an entry")
        fields = _ENTRY.unpack_from(raw, position)
        if fields[0] != _ENTRY_SIGNATURE:
            raise ArchiveFormatError(
                f"bad central directory entry signature at directory byte {position}"
            )
        name_length, extra_length, comment_length = fields[12:15]
        name_start = position + _ENTRY.size
        extra_start = name_start + name_length
        comment_start = extra_start + extra_length
        end = comment_start + comment_length
        if end > len(raw):
            raise ArchiveFormatError("a central directory entry runs past the directory")
        name = raw[name_start:extra_start]
        extra = raw[extra_start:comment_start]
        info = _make_info(fields, name, extra, raw[comment_start:end], base)
        if info.header_offset + 30 > limit:
            raise ArchiveFormatError(
                f"{info.filename!r}: local header offset {info.header_offset} is not"
                " before the central directory: corrupt archive"
            )
        members.append(info)
        position = end
    return members


def _extra_fields(extra: bytes) -> dict[int, bytes]:
    """Extra field blocks by header id; a malformed tail is ignored, as Info-ZIP does."""
    blocks: dict[int, bytes] = {}
    position = 0
    while position + 4 <= len(extra):
        block_id, length = struct.unpack_from("<2H", extra, position)
        if position + 4 + length > len(extra):
            break
        blocks.setdefault(block_id, extra[position + 4 : position + 4 + length])
        position += 4 + length
    return blocks


def _make_info(
    fields: tuple[int, ...], raw_name: bytes, extra: bytes, comment: bytes, base: int
) -> ZipInfo:
    create_version, create_system, extract_version = fields[1:4]
    flag_bits, method, time, date, crc, compress_size, file_size = fields[5:12]
    disk, internal_attr, external_attr, header_offset = fields[15:19]
    zip64 = 0xFFFFFFFF in (compress_size, file_size, header_offset) or disk == 0xFFFF
    # The extra blocks matter only for ZIP64 sizes or a Unicode Path ("up"); most
    # entries carry neither, so they are split only when one of those may be there.
    blocks = _extra_fields(extra) if zip64 or _UNICODE_PATH_TAG in extra else {}
    if zip64:
        file_size, compress_size, header_offset = _apply_zip64(
            blocks.get(_ZIP64_EXTRA_ID), raw_name, file_size, compress_size, header_offset
        )
    # Positional, in ZipInfo's field order: keywords cost per entry, and there may be
    # hundreds of thousands.
    return ZipInfo(
        _decode_name(raw_name, flag_bits, blocks.get(_UNICODE_PATH_EXTRA_ID)),
        raw_name,
        _dos_date_time(date, time),
        method,
        comment,
        extra,
        create_system,
        create_version,
        extract_version,
        flag_bits,
        internal_attr,
        external_attr,
        header_offset + base,
        crc,
        compress_size,
        file_size,
    )


def _dos_date_time(date: int, time: int) -> tuple[int, int, int, int, int, int]:
    """MS-DOS packed date and time (two-second resolution), as ``zipfile`` unpacks it."""
    day = ((date >> 9) + 1980, (date >> 5) & 0xF, date & 0x1F)
    return (*day, time >> 11, (time >> 5) & 0x3F, (time & 0x1F) * 2)


def _apply_zip64(
    block: bytes | None, raw_name: bytes, file_size: int, compress_size: int, offset: int
) -> tuple[int, int, int]:
    """Replace the saturated 32-bit fields, in the order the ZIP64 extra stores them."""
    values = [file_size, compress_size, offset]
    position = 0
    for index, value in enumerate(values):
        if value != 0xFFFFFFFF:
            continue
        if block is None or position + 8 > len(block):
            raise ArchiveFormatError(
                f"{raw_name!r}: a size or offset needs a ZIP64 extra field that is"
                " missing or too short: corrupt archive"
            )
        values[index] = struct.unpack_from("<Q", block, position)[0]
        position += 8
    return values[0], values[1], values[2]


def _decode_name(raw_name: bytes, flag_bits: int, unicode_path: bytes | None) -> str:
    if flag_bits & _UTF8_FLAG:
        try:
            return raw_name.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ArchiveFormatError(f"{raw_name!r} is flagged UTF-8 but is not") from error
    # Info-ZIP's Unicode Path field: a UTF-8 name, valid while its CRC of the
    # legacy name still matches (a tool that renamed the member would not update it).
    if (
        unicode_path is not None
        and len(unicode_path) >= 5
        and unicode_path[0] == 1
        and struct.unpack_from("<L", unicode_path, 1)[0] == zlib.crc32(raw_name)
    ):
        try:
            return unicode_path[5:].decode("utf-8")
        except UnicodeDecodeError:
            pass
    if raw_name.isascii():  # cp437 agrees with ASCII there, and ASCII decodes in C
        return raw_name.decode("ascii")
    return raw_name.decode("cp437")
