"""Telling a container's format from its bytes, and listing it in one shape for all formats.

Detection reads the tail first: zip (and so .conda) is told by its end-of-central-directory
record, and the suffix read that finds it is the one the zip reader needs anyway, so a zip
whose directory fits in it is listed with a single request. Only then is the head read,
for the formats that announce themselves there (PNG's signature, ustar at offset 257);
a file smaller than the tail read costs no second request for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._core.source import ByteSource
from ..codecs import ArchiveFormatError, CondaReader, PngReader, TarInfo, TarReader, ZipReader
from ..codecs.png import PNG_READ_AHEAD, ChunkInfo
from ..codecs.zip import ZIP_TAIL_PROBE, ZipInfo

__all__ = ["LS_SCHEMA_VERSION", "Archive", "Member", "detect"]

LS_SCHEMA_VERSION = 1

_EOCD = b"PK\x05\x06"
_PNG = b"\x89PNG\r\n\x1a\n"
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


@dataclass(frozen=True, slots=True)
class Member:
    """One entry of ``ls``: an archive member, or a PNG chunk."""

    name: str
    type: str  # file, dir, symlink, hardlink, other; chunk for PNG
    size: int  # uncompressed bytes (a chunk's data length)
    compressed_size: int | None  # zip only
    offset: int  # where its header starts in the file

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "size": self.size,
            "compressed_size": self.compressed_size,
            "offset": self.offset,
        }


@dataclass
class Archive:
    format: str  # zip, conda, tar, png
    source: ByteSource
    zip: ZipReader | None = None
    tar: TarReader | None = None
    png: PngReader | None = None
    conda: CondaReader | None = None

    def members(self) -> list[Member]:
        if self.zip is not None:
            return [_zip_member(info) for info in self.zip.infolist()]
        if self.tar is not None:
            return [_tar_member(info) for info in self.tar.infolist()]
        assert self.png is not None
        return [_chunk_member(chunk) for chunk in self.png.chunk_table]

    def image(self) -> dict[str, Any] | None:
        if self.png is None:
            return None
        header = self.png.ihdr
        return {
            "width": header.width,
            "height": header.height,
            "bit_depth": header.bit_depth,
            "colour_type": header.colour_type,
            "interlaced": bool(header.interlacing),
        }

    def package(self) -> str | None:
        return self.conda.name if self.conda is not None else None


def detect(source: ByteSource) -> Archive:
    """Open ``source`` with the codec its bytes call for, or raise ``ArchiveFormatError``."""
    tail = source.read_tail(ZIP_TAIL_PROBE)
    if not tail:
        raise ArchiveFormatError("the file is empty: there is nothing to list")
    zip_error: ArchiveFormatError | None = None
    if _EOCD in tail:
        try:
            return _zip_or_conda(source)
        except ArchiveFormatError as error:  # the signature may be data: look at the head
            zip_error = error
    # The PNG reader's own first read: a PNG is then listed from what detection fetched,
    # and a tar header (512 bytes) is in it too.
    head = source.read_at(0, min(PNG_READ_AHEAD, source.size))
    if head.startswith(_PNG):
        return Archive("png", source, png=PngReader(source))
    if head[257:262] == b"ustar":
        return Archive("tar", source, tar=TarReader(source))
    for magic, name in _COMPRESSED.items():
        if head.startswith(magic):
            raise ArchiveFormatError(
                f"a {name}-compressed file: its members cannot be reached without"
                " decompressing it from the start (use `cat` or `get`)"
            )
    if zip_error is not None:
        raise zip_error
    raise ArchiveFormatError("not a zip, .conda, tar or PNG file: no known signature")


def _zip_or_conda(source: ByteSource) -> Archive:
    reader = ZipReader(source)
    names = reader.namelist()
    looks_conda = "metadata.json" in names and any(
        name.startswith("info-") and name.endswith(".tar.zst") for name in names
    )
    if looks_conda:
        try:
            conda = CondaReader(source)  # lists again, from what the zip reader holds
        except ArchiveFormatError:
            pass  # a zip that only looks like a package: list it as a zip
        else:
            return Archive("conda", source, zip=conda.zip, conda=conda)
    return Archive("zip", source, zip=reader)


def _zip_member(info: ZipInfo) -> Member:
    return Member(
        name=info.filename,
        type="dir" if info.is_dir() else "file",
        size=info.file_size,
        compressed_size=info.compress_size,
        offset=info.header_offset,
    )


def _tar_type(info: TarInfo) -> str:
    if info.isdir():
        return "dir"
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    return "file" if info.isreg() else "other"


def _tar_member(info: TarInfo) -> Member:
    return Member(info.name, _tar_type(info), info.size, None, info.header_offset)


def _chunk_member(chunk: ChunkInfo) -> Member:
    return Member(chunk.type, "chunk", chunk.length, None, chunk.offset)
