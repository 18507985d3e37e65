"""Streaming decompression of one member's data, with bounded output per read.

Every decoder is driven through ``read(size)``, which never returns more than ``size``
bytes, so a small compressed member that expands to gigabytes (a zip bomb) costs no
more memory than the caller's read size.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from typing import Any, Protocol

from .._errors import ArchiveFormatError, UnsupportedMemberError

__all__ = ["METHOD_NAMES", "DecodedStream", "check_method_supported", "open_decoded"]

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

#: Compressed bytes handed to a decompressor per step.
_INPUT_STEP = 64 * 1024

# Everything the decompressors raise on bad input, translated to ArchiveFormatError.
_DECODER_ERRORS = (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError)


class DecodedStream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _Decompressor(Protocol):
    """The incremental interface bz2 and lzma decompressors share."""

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


class _RawDeflate:
    """zlib's decompressobj dressed as a bz2-style decompressor."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        self.needs_input = True

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        output = self._zlib.decompress(self._zlib.unconsumed_tail + data, max_length)
        # A full output buffer may mean zlib still holds output even with no input left.
        self.needs_input = not self._zlib.unconsumed_tail and len(output) < max_length
        return output


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


class _IncrementalStream:
    """``read(size)`` over a compressed stream and a bz2-style decompressor."""

    def __init__(self, compressed: DecodedStream, decompressor: _Decompressor) -> None:
        self._compressed = compressed
        self._decompressor = decompressor

    def read(self, size: int = -1, /) -> bytes:
        stalls = 0
        try:
            while not self._decompressor.eof:
                data = b""
                if self._decompressor.needs_input:
                    data = self._compressed.read(_INPUT_STEP)
                    if not data:
                        # Input exhausted. LZMA without an end marker never reports eof;
                        # the caller's size and CRC checks decide whether this was early.
                        return b""
                output = self._decompressor.decompress(data, size)
                if output:
                    return output
                stalls = 0 if data else stalls + 1
                if stalls > 2:
                    raise ArchiveFormatError("the decompressor stopped making progress")
        except _DECODER_ERRORS as error:
            raise ArchiveFormatError(f"corrupt compressed data: {error}") from error
        return b""


class _ZstdStream:
    """zstandard's stream reader (it has no max-length decompressobj), errors translated."""

    def __init__(self, compressed: DecodedStream, zstandard: Any) -> None:
        self._errors: tuple[type[BaseException], ...] = (zstandard.ZstdError, *_DECODER_ERRORS)
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            compressed, read_size=_INPUT_STEP, read_across_frames=True, closefd=False
        )

    def read(self, size: int = -1, /) -> bytes:
        try:
            return bytes(self._reader.read(size))
        except self._errors as error:
            raise ArchiveFormatError(f"corrupt zstd data: {error}") from error


def _import_zstandard() -> Any:
    try:
        import zstandard  # noqa: PLC0415 (optional dependency, imported when first needed)
    except ImportError:
        return None
    return zstandard


def check_method_supported(method: int, name: str) -> None:
    """Raise ``UnsupportedMemberError`` before any bytes are fetched for the member."""
    if method in (STORED, DEFLATED, BZIP2, LZMA):
        return
    if method == ZSTANDARD:
        if _import_zstandard() is None:
            raise UnsupportedMemberError(
                f"{name!r} is zstd-compressed; install the extra to read it:"
                " pip install 'range-streams[zstd]'"
            )
        return
    label = METHOD_NAMES.get(method, "unknown")
    raise UnsupportedMemberError(f"{name!r} uses compression method {method} ({label})")


def open_decoded(method: int, compressed: DecodedStream) -> DecodedStream:
    """A stream of the decompressed bytes of ``compressed`` (methods checked already)."""
    if method == STORED:
        return compressed
    if method == DEFLATED:
        return _IncrementalStream(compressed, _RawDeflate())
    if method == BZIP2:
        return _IncrementalStream(compressed, bz2.BZ2Decompressor())
    if method == LZMA:
        return _IncrementalStream(compressed, _ZipLzma())
    return _ZstdStream(compressed, _import_zstandard())
