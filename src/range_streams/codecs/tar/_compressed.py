"""Compressed tars: recognised by magic bytes, and decompressed only when asked.

A compressed tar has no index: where a member starts in the compressed stream is only
known by decompressing everything before it. So ``TarReader`` refuses one with a clear
error instead of quietly downloading the whole file, and ``TarReader.from_compressed``
is the explicit opt-in: it streams the file through once (``CHUNK_SIZE`` per request)
and keeps the decompressed tar in memory, up to a limit.
"""

from __future__ import annotations

import bz2
import lzma
import zlib

from ..._core.source import ByteSource, BytesSource
from .._decode import (
    IncrementalStream,
    MultiStream,
    ZlibDecompressor,
    ZstdIncremental,
    import_zstandard,
)
from .._errors import ArchiveFormatError, CodecError, UnsupportedMemberError
from .._io import CHUNK_SIZE, SegmentReader

__all__ = ["DEFAULT_MAX_DECOMPRESSED", "decompress_whole", "detect_compression"]

#: How much decompressed tar ``from_compressed`` holds in memory unless told otherwise.
DEFAULT_MAX_DECOMPRESSED = 256 * 1024 * 1024

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x1f\x9d", "compress (.Z)"),
)


def detect_compression(head: bytes) -> str | None:
    """The compression whose magic bytes start ``head``, if any."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def _decoder(compression: str) -> MultiStream:
    if compression == "zstd":
        zstandard = import_zstandard()
        if zstandard is None:
            raise UnsupportedMemberError(
                "this is a zstd-compressed tar; install the extra to read it:"
                " pip install 'range-streams[zstd]'"
            )
        return MultiStream(lambda: ZstdIncremental(zstandard))
    if compression == "gzip":
        return MultiStream(lambda: ZlibDecompressor(16 + zlib.MAX_WBITS))
    if compression == "bzip2":
        return MultiStream(bz2.BZ2Decompressor)
    if compression == "xz":
        return MultiStream(lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ))
    raise UnsupportedMemberError(f"{compression} compression is not supported")


def decompress_whole(
    source: ByteSource, compression: str, max_size: int, *, head: bytes = b""
) -> BytesSource:
    """The decompressed bytes of the whole source, read in ``CHUNK_SIZE`` requests
    (``head``: the first bytes, already fetched)."""
    decoder = _decoder(compression)
    compressed = SegmentReader(source, [(0, source.size)], head=head)
    stream = IncrementalStream(compressed, decoder)
    pieces = []
    total = 0
    while piece := stream.read(CHUNK_SIZE):
        total += len(piece)
        if total > max_size:
            raise CodecError(
                f"the {compression} tar decompresses to more than max_size={max_size} bytes;"
                " pass a larger max_size to read it anyway"
            )
        pieces.append(piece)
    if not decoder.complete:
        raise ArchiveFormatError(f"the {compression} stream is truncated")
    return BytesSource(b"".join(pieces))
