"""Streaming decompression with bounded output per read, shared by the codecs.

Every decoder is driven through ``read(size)``, which never returns more than ``size``
bytes, so a small input that expands to gigabytes (a "bomb") costs no more memory than
the caller's read size. Decoder exceptions become ``ArchiveFormatError``.
"""

from __future__ import annotations

import lzma
import zlib
from collections.abc import Callable
from typing import Any, Protocol

from ._errors import ArchiveFormatError

__all__ = [
    "DECODER_ERRORS",
    "Decompressor",
    "IncrementalStream",
    "MultiStream",
    "ReadableStream",
    "ZlibDecompressor",
    "ZstdIncremental",
    "import_zstandard",
]

#: Compressed bytes handed to a decompressor per step.
INPUT_STEP = 64 * 1024

_ZSTD_STEP = 1024

#: Everything the decompressors raise on bad input, translated to ArchiveFormatError.
DECODER_ERRORS = (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError)


class ReadableStream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class Decompressor(Protocol):
    """The incremental interface ``bz2`` and ``lzma`` decompressors share."""

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


class ZlibDecompressor:
    """``zlib.decompressobj`` dressed as a bz2-style decompressor (``wbits`` as zlib's)."""

    def __init__(self, wbits: int) -> None:
        self._zlib = zlib.decompressobj(wbits)
        self.needs_input = True

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    @property
    def unused_data(self) -> bytes:
        return self._zlib.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        output = self._zlib.decompress(self._zlib.unconsumed_tail + data, max_length)
        # A full output buffer may mean zlib still holds output even with no input left.
        self.needs_input = not self._zlib.unconsumed_tail and len(output) < max_length
        return output


class MultiStream:
    """Concatenated compressed streams (pigz, pbzip2, ``cat a.gz b.gz``) as one.

    Never reports ``eof``: the input running out ends it. Zero bytes between or after
    streams are padding, as gzip allows (no stream format here starts with a zero).
    """

    def __init__(self, factory: Callable[[], Decompressor]) -> None:
        self._factory = factory
        self._current = factory()
        self._took_leftover = False
        self.eof = False
        self.unused_data = b""

    @property
    def needs_input(self) -> bool:
        return self._current.eof or self._current.needs_input

    @property
    def complete(self) -> bool:
        """Whether the last stream begun has ended (else the input was truncated)."""
        return self._current.eof

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if self._current.eof:
            if not self._took_leftover:
                data = self._current.unused_data + data
                self._took_leftover = True
            data = data.lstrip(b"\0")
            if not data:
                return b""
            self._current = self._factory()
            self._took_leftover = False
        return self._current.decompress(data, max_length)


class IncrementalStream:
    """``read(size)`` over a compressed stream and a bz2-style decompressor."""

    def __init__(self, compressed: ReadableStream, decompressor: Decompressor) -> None:
        self._compressed = compressed
        self._decompressor = decompressor

    def read(self, size: int = -1, /) -> bytes:
        stalls = 0
        try:
            while not self._decompressor.eof:
                data = b""
                if self._decompressor.needs_input:
                    data = self._compressed.read(INPUT_STEP)
                    if not data:
                        # Input exhausted. LZMA without an end marker never reports eof;
                        # callers' size and CRC checks decide whether this was early.
                        return b""
                output = self._decompressor.decompress(data, size)
                if output:
                    return output
                stalls = 0 if data else stalls + 1
                if stalls > 2:
                    raise ArchiveFormatError("the decompressor stopped making progress")
        except DECODER_ERRORS as error:
            raise ArchiveFormatError(f"corrupt compressed data: {error}") from error
        return b""


class ZstdIncremental:
    """zstandard's decompressobj (which has no ``max_length``) as a bz2-style decompressor.

    Input is fed ``_ZSTD_STEP`` bytes at a time and surplus output is held back, so
    one call costs at most one step's expansion (zstd's worst case is about 32,000
    to one: 32 MiB for a 1 KiB step) plus ``max_length``.
    """

    def __init__(self, zstandard: Any) -> None:
        self._zstd = zstandard.ZstdDecompressor().decompressobj()
        self._errors: tuple[type[BaseException], ...] = (zstandard.ZstdError,)
        self._input = b""
        self._output = b""

    @property
    def eof(self) -> bool:
        return bool(self._zstd.eof) and not self._output

    @property
    def needs_input(self) -> bool:
        return not self._input and not self._output

    @property
    def unused_data(self) -> bytes:
        return bytes(self._zstd.unused_data) + self._input if self._zstd.eof else b""

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        self._input += data
        limit = max_length if max_length >= 0 else 1 << 62
        try:
            while len(self._output) < limit and self._input and not self._zstd.eof:
                step, self._input = self._input[:_ZSTD_STEP], self._input[_ZSTD_STEP:]
                self._output += self._zstd.decompress(step)
        except self._errors as error:
            raise ArchiveFormatError(f"corrupt zstd data: {error}") from error
        output, self._output = self._output[:limit], self._output[limit:]
        return output


def import_zstandard() -> Any:
    """The optional ``zstandard`` module, or ``None`` when it is not installed."""
    try:
        import zstandard  # noqa: PLC0415 (optional dependency, imported when first needed)
    except ImportError:
        return None
    return zstandard
