"""What each access pattern costs on a real nginx: the requests the server received and
their Range headers, for the default read strategy (``Adaptive``), the tar and PNG
listings, ``read_ranges`` with big spans and the parquet helper."""

from __future__ import annotations

import io
import itertools
import random
import struct
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

import range_streams as rs
from range_streams.codecs import PngReader, TarReader
from tests.servers.launch import AccessRecord, RunningServer

KIB = 1024
MIB = 1 << 20


@pytest.fixture(scope="module")
def nginx(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory("nginx")


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_704_067_200
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">L", len(data))
        + kind
        + data
        + struct.pack(">L", zlib.crc32(data, zlib.crc32(kind)))
    )


def _png(width: int, height: int, idat: int, rng: random.Random) -> bytes:
    """Seeded RGB noise whose compressed data is cut into IDAT chunks of ``idat`` bytes."""
    raw = b"".join(b"\0" + rng.randbytes(3 * width) for _ in range(height))
    packed = zlib.compress(raw, 1)
    chunks = [_chunk(b"IHDR", struct.pack(">2L5B", width, height, 8, 2, 0, 0, 0))]
    chunks += [_chunk(b"IDAT", packed[i : i + idat]) for i in range(0, len(packed), idat)]
    chunks.append(_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


@pytest.fixture(scope="module")
def files(docroot: Path) -> dict[str, bytes]:
    rng = random.Random(20)
    made = {
        # 12 members of 600-700 KiB: further apart than a response is worth reading through
        "big-members.tar": _tar(
            [
                (f"big/{i:02d}.bin", rng.randbytes(rng.randrange(600 * KIB, 700 * KIB)))
                for i in range(12)
            ]
        ),
        # 200 members of 0.5-16 KiB: read through
        "small-members.tar": _tar(
            [
                (f"small/{i:03d}.txt", rng.randbytes(rng.randrange(512, 16 * KIB)))
                for i in range(200)
            ]
        ),
        "big-chunks.png": _png(1024, 1100, 1 * MIB, rng),  # 3.3 MB in four IDAT chunks
        "small-chunks.png": _png(1024, 1100, 32 * KIB, rng),  # ... in 103 of 32 KiB
        "random.bin": rng.randbytes(8 * MIB),
    }
    for name, data in made.items():
        (docroot / name).write_bytes(data)
        (docroot / name).chmod(0o644)
    return made


def _ranges(server: RunningServer, name: str, count: int) -> list[tuple[int, int]]:
    """The [start, stop) of each request the server logged for ``name``, in order."""
    records = server.access_records(lambda r: r.target.endswith("/" + name), min_count=count)
    return [_span(record) for record in records]


def _span(record: AccessRecord) -> tuple[int, int]:
    assert record.status == 206 and record.range is not None, record
    first, _, last = record.range.removeprefix("bytes=").partition("-")
    assert "," not in record.range, record
    return int(first), int(last) + 1


def _header_offsets(data: bytes) -> list[int]:
    """Where each member's header starts, and then where the end-of-archive blocks do."""
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
    last = members[-1]
    return [m.offset for m in members] + [last.offset_data + -(-last.size // 512) * 512]


@pytest.mark.parametrize("opener", [rs.open, rs.RangeFile], ids=["open", "RangeFile"])
def test_random_4k_reads_cost_their_own_bytes(
    nginx: RunningServer, files: dict[str, bytes], opener: Callable[[str], rs.RangeFile]
) -> None:
    data = files["random.bin"]
    offsets = [i * 64 * KIB + 1000 for i in random.Random(3).sample(range(120), 40)]
    nginx.clear_access_log()
    with opener(nginx.url("random.bin")) as f:
        for offset in offsets:
            f.seek(offset)
            assert f.read(4096) == data[offset : offset + 4096]
    assert _ranges(nginx, "random.bin", 40) == [(o, o + 4096) for o in offsets]


def test_tarfile_hops_between_big_members(nginx: RunningServer, files: dict[str, bytes]) -> None:
    """One request per member, at the byte before its header (tarfile reads it to check
    the archive goes on), 4 KiB each: none of the 7.8 MB of member data."""
    data = files["big-members.tar"]
    headers = _header_offsets(data)
    nginx.clear_access_log()
    with rs.open(nginx.url("big-members.tar")) as f, tarfile.open(fileobj=f, mode="r:") as archive:
        assert archive.getnames() == [f"big/{i:02d}.bin" for i in range(12)]
    spans = _ranges(nginx, "big-members.tar", 13)
    assert spans == [(0, 4096)] + [(h - 1, min(h + 4095, len(data))) for h in headers[1:]]


def test_tarfile_streams_small_members(nginx: RunningServer, files: dict[str, bytes]) -> None:
    """Headers 0.5-16 KiB apart: the run grows 8-fold per request, so the listing costs a
    handful of requests and about the archive's bytes, not a request per member."""
    data = files["small-members.tar"]
    nginx.clear_access_log()
    with rs.open(nginx.url("small-members.tar")) as f, tarfile.open(fileobj=f) as archive:
        assert len(archive.getnames()) == 200
    spans = _ranges(nginx, "small-members.tar", 4)
    assert len(spans) <= 6
    assert sum(stop - start for start, stop in spans) <= len(data)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))  # forward only


def test_tar_codec_hops_or_streams_by_the_bytes(
    nginx: RunningServer, files: dict[str, bytes]
) -> None:
    big = files["big-members.tar"]
    nginx.clear_access_log()
    with rs.open(nginx.url("big-members.tar")) as f:
        assert len(TarReader(f).namelist()) == 12
    spans = _ranges(nginx, "big-members.tar", 12)
    # The first 256 KiB (it holds the first header), then 4 KiB at each later header.
    assert spans == [(0, 256 * KIB)] + [
        (h, min(h + 4096, len(big))) for h in _header_offsets(big)[1:]
    ]

    small = files["small-members.tar"]
    nginx.clear_access_log()
    with rs.open(nginx.url("small-members.tar")) as f:
        assert len(TarReader(f).namelist()) == 200
    spans = _ranges(nginx, "small-members.tar", 2)
    # The first 256 KiB held ~30 headers: the rest is read through, in one request.
    assert len(spans) == 2 and spans[0] == (0, 256 * KIB)
    assert spans[1][1] == len(small) and spans[1][0] < 256 * KIB + 16 * KIB


def test_png_chunk_table_hops_big_chunks(nginx: RunningServer, files: dict[str, bytes]) -> None:
    data = files["big-chunks.png"]
    nginx.clear_access_log()
    with rs.open(nginx.url("big-chunks.png")) as f:
        table = PngReader(f).chunk_table
    assert [c.type for c in table] == ["IHDR"] + ["IDAT"] * 4 + ["IEND"]
    spans = _ranges(nginx, "big-chunks.png", 4)
    assert spans[0] == (0, 64 * KIB)
    assert [start for start, _ in spans[1:]] == [c.offset for c in table[2:]]
    assert all(stop - start <= 4096 for start, stop in spans[1:])
    assert spans[-1][1] == len(data)

    nginx.clear_access_log()
    with rs.open(nginx.url("small-chunks.png")) as f:
        table = PngReader(f).chunk_table
    assert len(table) > 100
    spans = _ranges(nginx, "small-chunks.png", 2)
    assert len(spans) == 2 and spans[1][1] == len(files["small-chunks.png"])


def test_read_ranges_sends_big_spans_side_by_side(
    nginx: RunningServer, files: dict[str, bytes]
) -> None:
    """Big groups are requests of their own (no multipart body), a span bigger than its
    share cut into pieces; small ones still share one multi-range request."""
    data = files["random.bin"]
    policy = rs.BatchPolicy(single_from=256 * KIB, min_piece=1 * MIB)
    spans = [(100, 200), (50_000, 50_100), (1 * MIB, 1 * MIB + 300 * KIB), (4 * MIB, 8 * MIB)]
    nginx.clear_access_log()
    with rs.open(nginx.url("random.bin"), batch=policy) as f:
        assert f.read_ranges(spans) == [data[a:b] for a, b in spans]
    records = nginx.access_records(lambda r: r.target.endswith("/random.bin"), min_count=6)
    ranges = sorted(r.range or "" for r in records)
    assert ranges == sorted(
        [
            "bytes=100-199,50000-50099",
            f"bytes={MIB}-{MIB + 300 * KIB - 1}",
            *(f"bytes={4 * MIB + k * MIB}-{4 * MIB + (k + 1) * MIB - 1}" for k in range(4)),
        ]
    )


@pytest.fixture(scope="module")
def readers_files(docroot: Path) -> dict[str, bytes]:
    h5py = pytest.importorskip("h5py")
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(1)
    path = docroot / "chunks.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("big", data=rng.random((2000, 500)), chunks=(100, 500))
        f.create_dataset("small", data=np.arange(100))
    path.chmod(0o644)
    lines = "".join(f"{i},{i * 3.5},name-{i % 97},{'x' * 20}\n" for i in range(60_000))
    (docroot / "lines.csv").write_text("id,v,name,pad\n" + lines)
    (docroot / "lines.csv").chmod(0o644)
    return {"chunks.h5": path.read_bytes(), "lines.csv": (docroot / "lines.csv").read_bytes()}


def test_h5py_gets_consecutive_chunks_at_their_own_size(
    nginx: RunningServer, readers_files: dict[str, bytes]
) -> None:
    """h5py asks for each 400 kB chunk exactly: consecutive ones are a run, and the run's
    window counts reads, not bytes, so no request reaches past the chunks read."""
    import h5py  # noqa: PLC0415

    local = h5py.File(io.BytesIO(readers_files["chunks.h5"]), "r")
    chunks = [local["big"].id.get_chunk_info(i) for i in (5, 6)]
    nginx.clear_access_log()
    with rs.RangeFile(nginx.url("chunks.h5")) as f, h5py.File(f, "r") as remote:
        got = remote["big"][500:700, :10]
    assert (got == local["big"][500:700, :10]).all()
    records = nginx.access_records(lambda r: r.target.endswith("/chunks.h5"), min_count=3)
    suffix = [r for r in records if (r.range or "").startswith("bytes=-")]
    assert len(suffix) == 1  # h5py learns the size first: the end-relative tail probe
    spans = [_span(r) for r in records if r not in suffix]
    for chunk in chunks:
        assert (chunk.byte_offset, chunk.byte_offset + chunk.size) in spans
    data_end = max(c.byte_offset + c.size for c in chunks)
    assert not any(start < data_end < stop for start, stop in spans)


def test_csv_lines_stream_in_a_few_requests(
    nginx: RunningServer, readers_files: dict[str, bytes]
) -> None:
    data = readers_files["lines.csv"]
    nginx.clear_access_log()
    with rs.RangeFile(nginx.url("lines.csv")) as f:
        lines = sum(1 for _ in io.TextIOWrapper(io.BufferedReader(f), encoding="ascii"))
    assert lines == 60_001
    spans = _ranges(nginx, "lines.csv", 4)
    # 8 KiB (the buffer's first read), then windows of 32 KiB, 256 KiB, 2 MiB, the rest.
    assert spans[0] == (0, 8192) and len(spans) <= 5
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans)) and spans[-1][1] == len(data)
