"""Listing by hopping or streaming (``ListingWindow``): the rule as a table, and what the
tar and PNG readers ask of a source for archives of big and of small members."""

from __future__ import annotations

import io
import random
import struct
import tarfile
import zlib
from collections.abc import Sequence

import pytest

from range_streams import BytesSource
from range_streams.codecs import PngReader, TarReader
from range_streams.codecs._io import HOP_READ, ROUND_TRIP_BYTES, stream_is_cheaper

KIB = 1024
MIB = 1 << 20


@pytest.mark.parametrize(
    ("position", "size", "reads", "cheaper"),
    [
        (1 * MIB, 200 * MIB, 1, False),  # ~1 MiB members: hop (one small read each)
        (64 * KIB, 6 * MIB, 3, True),  # ~21 KiB members: read through
        (300 * KIB, 100 * MIB, 1, False),  # 300 KiB apart: a request is worth less
        (200 * KIB, 100 * MIB, 1, True),  # 200 KiB apart: reading them is cheaper
        (8 * MIB, 8 * MIB + 100, 1, False),  # nothing left worth a stream
        (0, 10 * MIB, 0, False),  # nothing seen yet
        (5 * MIB, 5 * MIB, 3, False),  # at the end
    ],
)
def test_stream_is_cheaper(position: int, size: int, reads: int, cheaper: bool) -> None:
    assert stream_is_cheaper(position, size, reads, HOP_READ, ROUND_TRIP_BYTES) is cheaper


class AdvisedSource(BytesSource):
    """A BytesSource that also records ``advise`` hints, as ``RangeFile`` takes them."""

    def advise(self, start: int, stop: int) -> None:
        self.calls.append(("advise", (start, stop)))


def _tar(sizes: Sequence[int], seed: int) -> bytes:
    rng = random.Random(seed)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for index, size in enumerate(sizes):
            info = tarfile.TarInfo(f"m/{index:04d}")
            info.size = size
            archive.addfile(info, io.BytesIO(rng.randbytes(size)))
    return buffer.getvalue()


def test_tar_of_big_members_is_hopped() -> None:
    data = _tar([700 * KIB] * 10, seed=1)
    source = AdvisedSource(data)
    reader = TarReader(source)
    assert len(reader.namelist()) == 10
    reads = [args for kind, args in source.calls if kind == "read_at"]
    assert reads[0] == (0, 256 * KIB)
    assert all(stop - start == HOP_READ for start, stop in reads[1:-1])
    assert not any(kind == "advise" for kind, _ in source.calls)
    assert (
        reader.read("m/0007") == tarfile.open(fileobj=io.BytesIO(data)).extractfile("m/0007").read()
    )  # type: ignore[union-attr]


def test_tar_of_small_members_is_read_through() -> None:
    rng = random.Random(2)
    data = _tar([rng.randrange(512, 32 * KIB) for _ in range(300)], seed=2)
    source = AdvisedSource(data)
    assert len(TarReader(source).namelist()) == 300
    advised = [args for kind, args in source.calls if kind == "advise"]
    assert len(advised) == 1 and advised[0][1] == len(data)  # the rest, in one request
    reads = [args for kind, args in source.calls if kind == "read_at"]
    assert reads[0] == (0, 256 * KIB) and reads[1][0] == advised[0][0]


def _png(chunk_sizes: Sequence[int]) -> bytes:
    rng = random.Random(4)
    width = 256
    raw = b"".join(b"\0" + rng.randbytes(3 * width) for _ in range(sum(chunk_sizes) // 769 + 1))
    packed = zlib.compress(raw, 0)[: sum(chunk_sizes)]
    height = len(raw) // (3 * width + 1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(body, zlib.crc32(kind))
        return struct.pack(">L", len(body)) + kind + body + struct.pack(">L", crc)

    out = [chunk(b"IHDR", struct.pack(">2L5B", width, height, 8, 2, 0, 0, 0))]
    at = 0
    for size in chunk_sizes:
        out.append(chunk(b"IDAT", packed[at : at + size]))
        at += size
    out.append(chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(out)


def test_png_table_of_big_chunks_is_hopped() -> None:
    data = _png([2 * MIB] * 4)
    source = AdvisedSource(data)
    table = PngReader(source).chunk_table
    assert [c.type for c in table] == ["IHDR", "IDAT", "IDAT", "IDAT", "IDAT", "IEND"]
    reads = [args for kind, args in source.calls if kind == "read_at"]
    assert reads[0] == (0, 64 * KIB)
    assert [start for start, _ in reads[1:]] == [c.offset for c in table[2:]]
    assert not any(kind == "advise" for kind, _ in source.calls)


def test_png_table_of_small_chunks_is_read_through() -> None:
    data = _png([8 * KIB] * 200)
    source = AdvisedSource(data)
    assert len(PngReader(source).chunk_table) == 202
    advised = [args for kind, args in source.calls if kind == "advise"]
    assert len(advised) == 1 and advised[0][1] == len(data)
