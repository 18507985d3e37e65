"""``ZipInfo``: one central directory entry, named as ``zipfile.ZipInfo`` names things."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ZipInfo"]

_ENCRYPTED_FLAG = 1 << 0
_DATA_DESCRIPTOR_FLAG = 1 << 3


@dataclass(frozen=True, slots=True)
class ZipInfo:
    """A member as the central directory describes it.

    Field names follow ``zipfile.ZipInfo`` so code written against the standard library
    reads the same. ``header_offset`` is absolute in the source (corrected for any bytes
    prepended to the archive); ``extra`` is the central directory's extra field, which
    may differ from the local header's.
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
