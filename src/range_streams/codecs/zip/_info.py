"""``ZipInfo``: one central directory entry, named as ``zipfile.ZipInfo`` names things."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ranges import Range

__all__ = ["LocatedZipInfo", "ZipInfo"]

_ENCRYPTED_FLAG = 1 << 0
_DATA_DESCRIPTOR_FLAG = 1 << 3


@dataclass(frozen=True, slots=True)
class ZipInfo:
    """A member as the central directory describes it.

    Field names follow ``zipfile.ZipInfo`` so code written against the standard library
    reads the same. ``header_offset`` is absolute in the source (corrected for any bytes
    prepended to the archive); ``extra`` is the central directory's extra field, which
    may differ from the local header's.

    range-streams 1.x's ``ZippedFileInfo`` names are aliases here (``compressed_size``,
    ``uncompressed_size``, ``filename_length``, ``comment_length``, ``file_range``...).
    """

    filename: str
    raw_filename: bytes
    date_time: tuple[int, int, int, int, int, int]
    compress_type: int
    comment: bytes
    extra: bytes
    create_system: int
    create_version: int
    extract_version: int
    flag_bits: int
    internal_attr: int
    external_attr: int
    header_offset: int
    CRC: int
    compress_size: int
    file_size: int

    def is_dir(self) -> bool:
        """Whether the member is a directory (its name ends with a slash)."""
        return self.filename.endswith("/")

    @property
    def is_encrypted(self) -> bool:
        return bool(self.flag_bits & _ENCRYPTED_FLAG)

    @property
    def has_data_descriptor(self) -> bool:
        """Sizes and CRC follow the data (streamed writers); the directory has them too."""
        return bool(self.flag_bits & _DATA_DESCRIPTOR_FLAG)

    # ---- range-streams 1.x's ZippedFileInfo names ---------------------------------------

    @property
    def compressed_size(self) -> int:
        return self.compress_size

    @property
    def uncompressed_size(self) -> int:
        return self.file_size

    @property
    def filename_length(self) -> int:
        """The stored name's length in bytes."""
        return len(self.raw_filename)

    @property
    def comment_length(self) -> int:
        return len(self.comment)

    @property
    def extra_field_length(self) -> int:
        """The central directory's extra field length (the local one may differ)."""
        return len(self.extra)

    @property
    def local_header_offset(self) -> int:
        return self.header_offset

    @property
    def flags(self) -> int:
        return self.flag_bits

    @property
    def signature(self) -> bytes:
        return b"PK\x01\x02"

    @property
    def file_range(self) -> Range:
        """Where the member's compressed data lies: known only from its local header, so
        only a ``LocatedZipInfo`` (``ZipStream.zipped_files``) has it."""
        raise ValueError(
            f"{self.filename!r}: where its data starts is in its local header, not read"
            " yet; ZipStream.zipped_files and ZipReader.data_spans() read it"
        )


@dataclass(frozen=True, slots=True)
class LocatedZipInfo(ZipInfo):
    """A member whose local header was read: ``data_offset`` is where its compressed data
    starts (the local extra field may be longer than the directory's)."""

    data_offset: int

    @classmethod
    def at(cls, info: ZipInfo, data_offset: int) -> LocatedZipInfo:
        values = {f.name: getattr(info, f.name) for f in fields(ZipInfo)}
        return cls(**values, data_offset=data_offset)

    @property
    def file_range(self) -> Range:
        """Where the member's compressed data lies in the archive, ``[start, end)``."""
        return Range(self.data_offset, self.data_offset + self.compress_size)
