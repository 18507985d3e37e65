"""The zip compression methods: which ones we decode, and a decoded stream for each."""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib

from .._decode import (
    IncrementalStream,
    ReadableStream,
    ZlibDecompressor,
    ZstdIncremental,
    import_zstandard,
)
from .._errors import ArchiveFormatError, UnsupportedMemberError

__all__ = ["METHOD_NAMES", "check_method_supported", "open_decoded"]

STORED, DEFLATED, BZIP2, LZMA, ZSTANDARD = 0, 8, 12, 14, 93

METHOD_NAMES = {
    STORED: "stored",
    1: "shrink",
    6: "implode",
    DEFLATED: "deflate",
    9: "deflate64",
    BZIP2: "bzip2",
    LZMA: "lzma",
    ZSTANDARD: "zstd",
    95: "xz",
    98: "ppmd",
    99: "WinZip AES encryption",
}


class _ZipLzma:
    """LZMA as zip stores it: version (2 bytes), properties size (2), properties, then a
    raw LZMA1 stream (which ``lzma``'s FORMAT_ALONE would expect with a different header)."""

    def __init__(self) -> None:
        self._header = b""
        self._lzma: lzma.LZMADecompressor | None = None

    @property
    def eof(self) -> bool:
        return self._lzma is not None and self._lzma.eof

    @property
    def needs_input(self) -> bool:
        return self._lzma is None or self._lzma.needs_input

    @property
    def unused_data(self) -> bytes:
        return b"" if self._lzma is None else self._lzma.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if self._lzma is None:
            self._header += data
            if len(self._header) < 4:
                return b""
            (properties_size,) = struct.unpack_from("<H", self._header, 2)
            if len(self._header) < 4 + properties_size:
                return b""
            properties = self._header[4 : 4 + properties_size]
            data = self._header[4 + properties_size :]
            self._lzma = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[_lzma1_filter(properties)])
        return self._lzma.decompress(data, max_length)


def _lzma1_filter(properties: bytes) -> dict[str, int]:
    """Decode the 5-byte LZMA1 properties: lc/lp/pb packed in one byte, then dict size."""
    if len(properties) != 5:
        raise ArchiveFormatError(f"LZMA properties are {len(properties)} bytes, not 5")
    packed, dict_size = struct.unpack("<BL", properties)
    if packed >= 9 * 5 * 5:
        raise ArchiveFormatError(f"invalid LZMA properties byte {packed}")
    pb, rest = divmod(packed, 45)
    lp, lc = divmod(rest, 9)
    return {"id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": lc, "lp": lp, "pb": pb}


def check_method_supported(method: int, name: str) -> None:
    """Raise ``UnsupportedMemberError`` before any bytes are fetched for the member."""
    if method in (STORED, DEFLATED, BZIP2, LZMA):
        return
    if method == ZSTANDARD:
        if import_zstandard() is None:
            raise UnsupportedMemberError(
                f"{name!r} is zstd-compressed; install the extra to read it:"
                " pip install 'range-streams[zstd]'"
            )
        return
    label = METHOD_NAMES.get(method, "unknown")
    raise UnsupportedMemberError(f"{name!r} uses compression method {method} ({label})")


def open_decoded(method: int, compressed: ReadableStream) -> ReadableStream:
    """A stream of the decompressed bytes of ``compressed`` (methods checked already)."""
    if method == STORED:
        return compressed
    if method == DEFLATED:
        return IncrementalStream(compressed, ZlibDecompressor(-zlib.MAX_WBITS))
    if method == BZIP2:
        return IncrementalStream(compressed, bz2.BZ2Decompressor())
    if method == LZMA:
        return IncrementalStream(compressed, _ZipLzma())
    return IncrementalStream(compressed, ZstdIncremental(import_zstandard()))
