from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from range_streams._core.source import BytesSource
from range_streams.codecs import (
    ArchiveFormatError,
    CodecError,
    MemberNotFoundError,
    TarReader,
    UnsupportedMemberError,
)
from range_streams.codecs.tar import TAR_READ_AHEAD

from ._sources import PatchworkSource, spans_requested

FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


def files(format_name: str) -> dict[str, bytes]:
    rng = random.Random(format_name)
    result = {
        "small.txt": b"hello tar\n",
        "empty": b"",
        "exactly-one-block": b"x" * 512,
        "deep/" + "d" * 90 + "/" + "n" * 90 + ".txt": b"a name longer than 100 bytes",
        "big.bin": rng.randbytes(200_000),
    }
    if format_name != "ustar":
        result["ünïcödé/名前.txt"] = b"non-ascii"
        result["x" * 300] = b"a name too long even for ustar's prefix"
    return result


def reference_members(data: bytes) -> list[tarfile.TarInfo]:
    """What tarfile makes of the archive: the reference we compare with."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def build_tar(format_name: str, pax_headers: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w", format=FORMATS[format_name], pax_headers=pax_headers
    ) as tar:
        directory = tarfile.TarInfo("deep")
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o755
        tar.addfile(directory)
        for name, data in files(format_name).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.mode = 0o640
            info.uid, info.gid, info.uname, info.gname = 1000, 100, "user", "group"
            tar.addfile(info, io.BytesIO(data))
        symlink = tarfile.TarInfo("deep/link-to-small")
        symlink.type = tarfile.SYMTYPE
        symlink.linkname = "../small.txt"
        tar.addfile(symlink)
        hardlink = tarfile.TarInfo("hardlink")
        hardlink.type = tarfile.LNKTYPE
        hardlink.linkname = "big.bin"
        tar.addfile(hardlink)
        if format_name != "ustar":
            long_link = tarfile.TarInfo("long-link")
            long_link.type = tarfile.SYMTYPE
            long_link.linkname = "x" * 300
            tar.addfile(long_link)
    return buffer.getvalue()


@pytest.mark.parametrize("format_name", FORMATS)
def test_listing_and_contents_match_tarfile(format_name: str) -> None:
    data = build_tar(format_name)
    reader = TarReader(BytesSource(data))
    reference = reference_members(data)
    assert reader.namelist() == [member.name for member in reference]
    for ours, theirs in zip(reader.infolist(), reference, strict=True):
        assert (ours.name, ours.size, ours.type.encode()) == (theirs.name, theirs.size, theirs.type)
        assert (ours.mode, ours.uid, ours.gid, ours.uname, ours.gname) == (
            theirs.mode,
            theirs.uid,
            theirs.gid,
            theirs.uname,
            theirs.gname,
        )
        assert ours.mtime == theirs.mtime
        assert ours.linkname == theirs.linkname
        assert ours.data_offset == theirs.offset_data
        assert ours.header_offset == theirs.offset
    for name, expected in files(format_name).items():
        assert reader.read(name) == expected
    assert reader.read("deep/link-to-small") == b"hello tar\n"
    assert reader.read("hardlink") == files(format_name)["big.bin"]
    assert reader.getmember("deep").isdir()
    with pytest.raises(UnsupportedMemberError, match="not a file"):
        reader.read("deep")


def test_pax_headers_are_never_members_and_global_headers_apply() -> None:
    data = build_tar("pax", pax_headers={"comment": "global comment"})
    reader = TarReader(BytesSource(data))
    assert not any("PaxHeader" in name or "@" in name for name in reader.namelist())
    assert all(m.pax_headers.get("comment") == "global comment" for m in reader.infolist())


def patch_header(data: bytearray, offset: int, field: slice, value: bytes) -> None:
    """Overwrite a header field and recompute the header's checksum."""
    data[offset + field.start : offset + field.stop] = value.ljust(field.stop - field.start, b"\0")
    data[offset + 148 : offset + 156] = b" " * 8
    checksum = sum(data[offset : offset + 512])
    data[offset + 148 : offset + 156] = b"%06o\0 " % checksum


def test_pax_size_overrides_the_header_size() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("sized")
        info.size = 3000
        info.pax_headers = {"size": "3000"}  # written as a PAX record
        tar.addfile(info, io.BytesIO(b"s" * 3000))
        tar.addfile(tarfile.TarInfo("after"), io.BytesIO(b""))
    data = bytearray(buffer.getvalue())
    member_header = reference_members(bytes(data))[0].offset_data - 512
    patch_header(data, member_header, slice(124, 136), b"00000000000")  # header says 0
    reader = TarReader(BytesSource(bytes(data)))
    assert reader.namelist() == ["sized", "after"]
    assert reader.read("sized") == b"s" * 3000


def test_hopping_over_a_huge_member_costs_one_request() -> None:
    """A 10 GiB member (PAX size and GNU base-256 size), never stored: only headers exist."""
    for format_code in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        huge = tarfile.TarInfo("huge.bin")
        huge.size = 10 * 1024**3
        head = huge.tobuf(format=format_code)
        after = tarfile.TarInfo("after.txt")
        after.size = 5
        tail = after.tobuf(format=format_code) + b"after".ljust(512, b"\0") + bytes(1024)
        source = PatchworkSource({0: head, len(head) + huge.size: tail})
        reader = TarReader(source)
        assert [(m.name, m.size) for m in reader.infolist()] == [
            ("huge.bin", huge.size),
            ("after.txt", 5),
        ]
        assert [kind for kind, _ in source.calls] == ["read_at", "read_at"]
        assert reader.read("after.txt") == b"after"
        assert len(source.calls) == 2  # served from the read-ahead window


def test_small_tar_is_listed_and_read_with_one_request() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for index in range(20):
            info = tarfile.TarInfo(f"file{index}")
            info.size = index * 10
            tar.addfile(info, io.BytesIO(bytes([index]) * info.size))
    source = BytesSource(buffer.getvalue())
    reader = TarReader(source)
    for index in range(20):
        assert reader.read(f"file{index}") == bytes([index]) * index * 10
    assert source.calls == [("read_at", (0, len(buffer.getvalue())))]


def test_many_small_members_cost_no_more_requests_than_streaming() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for index in range(3000):
            info = tarfile.TarInfo(f"dir/file-{index:05}.txt")
            payload = f"{index}\n".encode() * 30
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    data = buffer.getvalue()
    source = BytesSource(data)
    reader = TarReader(source)
    assert len(reader.namelist()) == 3000
    streaming_requests = -(-len(data) // TAR_READ_AHEAD)
    assert len(source.calls) <= streaming_requests + 1
    assert reader.read("dir/file-01234.txt") == b"1234\n" * 30


def test_open_streams_in_bounded_requests() -> None:
    payload = random.Random(5).randbytes(3 * 1024 * 1024 + 7)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("big")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    source = BytesSource(buffer.getvalue())
    reader = TarReader(source)
    source.calls.clear()
    with reader.open("big") as member:
        assert member.read(100) == payload[:100]
        assert member.read() == payload[100:]
    sizes = [stop - start for start, stop in spans_requested(source.calls, source.size)]
    assert max(sizes) <= 1024 * 1024


@pytest.fixture(scope="module")
def sparse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is not installed")
    path = tmp_path_factory.mktemp("sparse") / "sparse.bin"
    rng = random.Random(7)
    with path.open("wb") as handle:
        for run in range(30):  # more runs than an old GNU header holds: extension blocks
            handle.seek(run * 256 * 1024 + rng.randrange(4096))
            handle.write(rng.randbytes(rng.randrange(1, 3000)))
        handle.truncate(30 * 256 * 1024 + 12345)
    return path


SPARSE_VERSIONS = ("0.0", "0.1", "1.0")


@pytest.mark.parametrize(
    "options",
    [
        ["--format=gnu"],
        *(["--format=posix", f"--sparse-version={v}"] for v in ("0.0", "0.1", "1.0")),
    ],
    ids=["gnu-S", "pax-0.0", "pax-0.1", "pax-1.0"],
)
def test_gnu_sparse_members(sparse_file: Path, options: list[str]) -> None:
    archive = sparse_file.parent / f"sparse-{options[-1][-3:]}.tar"
    command = ["tar", "--sparse", *options, "-cf", str(archive), "-C", str(sparse_file.parent)]
    subprocess.run([*command, sparse_file.name], check=True)
    data = archive.read_bytes()
    reader = TarReader(BytesSource(data))
    assert reader.namelist() == [sparse_file.name]
    member = reader.getmember(sparse_file.name)
    assert member.size == sparse_file.stat().st_size
    assert member.issparse()
    assert member.stored_size < member.size
    assert reader.read(sparse_file.name) == sparse_file.read_bytes()
    (reference,) = reference_members(data)
    theirs: list[tuple[int, int]] = reference.sparse or []  # type: ignore[assignment]
    ours = [pair for pair in member.sparse or () if pair[1]]
    assert ours == [pair for pair in theirs if pair[1]]


def compressors() -> dict[str, Callable[[bytes], bytes]]:
    zstandard = pytest.importorskip("zstandard")
    return {
        "gzip": gzip.compress,
        "bzip2": bz2.compress,
        "xz": lzma.compress,
        "zstd": zstandard.ZstdCompressor().compress,
    }


@pytest.mark.parametrize("compression", ["gzip", "bzip2", "xz", "zstd"])
def test_compressed_tars_are_refused_then_read_on_request(compression: str) -> None:
    plain = build_tar("pax")
    compressed = compressors()[compression](plain)
    with pytest.raises(ArchiveFormatError, match=f"{compression}.*from_compressed"):
        TarReader(BytesSource(compressed))
    source = BytesSource(compressed)
    reader = TarReader.from_compressed(source)
    assert reader.namelist() == TarReader(BytesSource(plain)).namelist()
    assert reader.read("big.bin") == files("pax")["big.bin"]
    assert all(kind == "read_at" for kind, _ in source.calls)
    for cut in (len(compressed) // 3, len(compressed) - 1):
        with pytest.raises(CodecError):
            TarReader.from_compressed(BytesSource(compressed[:cut]))
    with pytest.raises(CodecError, match="max_size"):
        TarReader.from_compressed(BytesSource(compressed), max_size=1000)


def test_concatenated_gzip_members_and_uncompressed_from_compressed() -> None:
    plain = build_tar("gnu")
    split = len(plain) // 2
    source = BytesSource(gzip.compress(plain[:split]) + gzip.compress(plain[split:]) + bytes(10))
    expected = [member.name for member in reference_members(plain)]
    assert TarReader.from_compressed(source).namelist() == expected
    assert TarReader.from_compressed(BytesSource(plain)).namelist()[0] == "deep"


def test_member_named_like_a_magic_is_still_a_tar() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("BZh91AY&SY")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    assert TarReader(BytesSource(buffer.getvalue())).read("BZh91AY&SY") == b"abc"


def test_errors() -> None:
    assert TarReader(BytesSource(b"")).namelist() == []
    assert TarReader(BytesSource(bytes(10240))).namelist() == []
    with pytest.raises(ArchiveFormatError, match="checksum"):
        TarReader(BytesSource(b"this is not a tar archive".ljust(2048, b"!")))
    with pytest.raises(ArchiveFormatError, match="truncated"):
        TarReader(BytesSource(build_tar("gnu")[:700]))
    reader = TarReader(BytesSource(build_tar("gnu")))
    with pytest.raises(MemberNotFoundError):
        reader.read("nope")
    with pytest.raises(KeyError):
        reader.getmember("nope")
