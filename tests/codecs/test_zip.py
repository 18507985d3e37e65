from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest

from range_streams._core.errors import RangeStreamError
from range_streams._core.source import ByteSource, BytesSource
from range_streams.codecs import (
    ArchiveFormatError,
    ChecksumError,
    CodecError,
    MemberNotFoundError,
    UnsupportedMemberError,
    ZipReader,
)
from range_streams.codecs.zip import ZIP_TAIL_PROBE, ZipMemberReader, _decoders

from ._sources import PatchworkSource, call_kinds, spans_requested
from ._zipwriter import RawMember, build_zip

METHODS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]


def contents(seed: int = 0) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {
        "empty.txt": b"",
        "one.bin": b"\x00",
        "text/lorem.txt": b"lorem ipsum dolor sit amet\n" * 2000,
        "random.bin": rng.randbytes(50_000),
        "ünïcödé/名前.txt": b"unicode names",
    }


def make_zip(files: dict[str, bytes], method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        archive.writestr("folder/", b"")  # a directory entry
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def kinds(source: BytesSource | PatchworkSource) -> list[str]:
    return call_kinds(source.calls)


@pytest.mark.parametrize("method", METHODS, ids=["stored", "deflate", "bzip2", "lzma"])
def test_every_stdlib_method_round_trips(method: int) -> None:
    files = contents()
    data = make_zip(files, method)
    reader = ZipReader(BytesSource(data))
    reference = zipfile.ZipFile(io.BytesIO(data))
    assert reader.namelist() == reference.namelist()
    for ours, theirs in zip(reader.infolist(), reference.infolist(), strict=True):
        assert ours.filename == theirs.filename
        assert (ours.CRC, ours.file_size, ours.compress_size) == (
            theirs.CRC,
            theirs.file_size,
            theirs.compress_size,
        )
        assert ours.date_time == theirs.date_time
        assert ours.compress_type == theirs.compress_type
        assert ours.external_attr == theirs.external_attr
        assert ours.is_dir() == theirs.is_dir()
    for name, expected in files.items():
        assert reader.read(name) == expected
        with reader.open(name) as member:
            assert isinstance(member, io.RawIOBase)
            assert member.read(7) + member.read() == expected
    assert reader.read_many(files) == files


def test_source_is_a_bytesource_and_small_zip_lists_in_one_call() -> None:
    source = BytesSource(make_zip(contents(), zipfile.ZIP_DEFLATED))
    assert isinstance(source, ByteSource)
    reader = ZipReader(source)
    assert source.calls == [("read_tail", ZIP_TAIL_PROBE)]
    # The whole archive came with that read: members cost nothing more.
    assert reader.read_many(reader.namelist())
    assert reader.read("random.bin") == contents()["random.bin"]
    assert kinds(source) == ["read_tail"]


@pytest.fixture(scope="module")
def big_directory_zip() -> bytes:
    """20,000 tiny members: a central directory of about a megabyte."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for index in range(20_000):
            archive.writestr(f"members/{index:05}.txt", str(index).encode())
    return buffer.getvalue()


def test_big_directory_lists_with_tail_plus_exactly_the_missing_part(
    big_directory_zip: bytes,
) -> None:
    source = BytesSource(big_directory_zip)
    reader = ZipReader(source)
    assert len(reader.namelist()) == 20_000
    assert kinds(source) == ["read_tail", "read_at"]
    directory_start = zipfile.ZipFile(io.BytesIO(big_directory_zip)).start_dir
    tail_start = len(big_directory_zip) - ZIP_TAIL_PROBE
    assert source.calls[1] == ("read_at", (directory_start, tail_start))


def test_member_read_costs_one_read_at(big_directory_zip: bytes) -> None:
    source = BytesSource(big_directory_zip)
    reader = ZipReader(source)
    source.calls.clear()
    assert reader.read("members/00042.txt") == b"42"
    assert kinds(source) == ["read_at"]
    ((start, stop),) = spans_requested(source.calls, source.size)
    assert start == reader.getinfo("members/00042.txt").header_offset
    assert stop - start < 100  # bounded by the next local header, not the slack


def test_read_many_is_one_read_ranges(big_directory_zip: bytes) -> None:
    source = BytesSource(big_directory_zip)
    reader = ZipReader(source)
    names = [f"members/{index:05}.txt" for index in range(0, 20_000, 997)]
    source.calls.clear()
    result = reader.read_many(names)
    assert result == {name: str(int(name[8:13])).encode() for name in names}
    assert kinds(source) == ["read_ranges"]
    assert len(spans_requested(source.calls, source.size)) == len(names)


def test_large_member_streams_in_bounded_chunks() -> None:
    payload = random.Random(1).randbytes(5 * 1024 * 1024 + 123)
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        source = BytesSource(make_zip({"big.bin": payload, "after.txt": b"x"}, method))
        reader = ZipReader(source)
        source.calls.clear()
        with reader.open("big.bin") as member:
            assert member.read(10) == payload[:10]
            assert len(source.calls) == 1  # header + first chunk only
            rest = io.BufferedReader(member).read()
        assert payload[:10] + rest == payload
        sizes = [stop - start for start, stop in spans_requested(source.calls, source.size)]
        assert max(sizes) <= 1024 * 1024 + 512
        assert all(kind == "read_at" for kind in kinds(source))


def test_zip64_with_more_than_65535_entries() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(70_000):
            archive.writestr(zipfile.ZipInfo(f"{index}"), b"")
        archive.writestr("last.txt", b"the end")
    source = BytesSource(buffer.getvalue())
    reader = ZipReader(source)
    assert len(reader.namelist()) == 70_001
    assert reader.namelist()[:3] == ["0", "1", "2"]
    assert kinds(source) == ["read_tail", "read_at"]
    assert reader.read("last.txt") == b"the end"
    assert reader.read("69999") == b""


def test_forced_zip64_local_extra_differs_from_directory() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("forced.txt", "w", force_zip64=True) as member:
            member.write(b"zip64 " * 5000)
        archive.writestr("plain.txt", b"plain")
    reader = ZipReader(BytesSource(buffer.getvalue()))
    assert reader.getinfo("forced.txt").extra == b""  # the 20-byte ZIP64 block is local only
    assert reader.read("forced.txt") == b"zip64 " * 5000
    assert reader.read_many(["forced.txt", "plain.txt"])["plain.txt"] == b"plain"


def test_zip64_sizes_and_offsets_past_4_gib() -> None:
    gap = 5 * 1024**3  # the archive "starts" 5 GiB into the file
    members = [
        RawMember(b"a.txt", b"alpha", b"alpha"),
        RawMember(b"b.txt", zlib.compress(b"beta" * 100)[2:-4], b"beta" * 100, method=8),
    ]
    source = PatchworkSource({gap: build_zip(members, gap=gap, zip64=True)})
    reader = ZipReader(source)
    assert reader.infolist()[1].header_offset > 2**32
    assert kinds(source) == ["read_tail"]
    assert reader.read_many(["a.txt", "b.txt"]) == {"a.txt": b"alpha", "b.txt": b"beta" * 100}


@pytest.fixture(scope="module")
def info_zip_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, bytes]]:
    """An archive from the Info-ZIP ``zip`` command: local ``UT``/``ux`` extra fields."""
    if shutil.which("zip") is None:
        pytest.skip("the zip command is not installed")
    root = tmp_path_factory.mktemp("infozip")
    files = {
        "small.txt": b"hello from Info-ZIP\n",
        "sub/compressible.txt": b"abc" * 100_000,
        "sub/random.bin": random.Random(2).randbytes(200_000),
        "empty": b"",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    subprocess.run(["zip", "-qr", "archive.zip", *files], cwd=root, check=True)
    return (root / "archive.zip").read_bytes(), files


def local_extra_length(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset + 28 : offset + 30], "little")


def test_info_zip_archive(info_zip_archive: tuple[bytes, dict[str, bytes]]) -> None:
    data, files = info_zip_archive
    source = BytesSource(data)
    reader = ZipReader(source)
    assert set(reader.namelist()) >= set(files)
    differing = [
        info
        for info in reader.infolist()
        if local_extra_length(data, info.header_offset) != len(info.extra)
    ]
    assert differing, "Info-ZIP should write longer local extra fields than central ones"
    for name, expected in files.items():
        assert reader.read(name) == expected
    source.calls.clear()
    assert reader.read_many(files) == files
    assert kinds(source) == ["read_ranges"]


def test_info_zip_bzip2_and_streamed_data_descriptors(tmp_path: Path) -> None:
    if shutil.which("zip") is None:
        pytest.skip("the zip command is not installed")
    payload = b"streamed through a pipe " * 4000
    (tmp_path / "piped.txt").write_bytes(payload)
    # Writing to stdout makes zip use data descriptors (it cannot seek back).
    streamed = subprocess.run(
        ["zip", "-q", "-Z", "bzip2", "-", "piped.txt"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    ).stdout
    reader = ZipReader(BytesSource(streamed))
    info = reader.getinfo("piped.txt")
    assert info.has_data_descriptor
    assert info.compress_type == zipfile.ZIP_BZIP2
    assert reader.read("piped.txt") == payload


def test_encrypted_member_is_unsupported(tmp_path: Path) -> None:
    if shutil.which("zip") is None:
        pytest.skip("the zip command is not installed")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    subprocess.run(["zip", "-q", "-P", "pw", "s.zip", "secret.txt"], cwd=tmp_path, check=True)
    source = BytesSource((tmp_path / "s.zip").read_bytes())
    reader = ZipReader(source)
    assert reader.getinfo("secret.txt").is_encrypted
    source.calls.clear()
    with pytest.raises(UnsupportedMemberError, match="encrypted"):
        reader.read("secret.txt")
    with pytest.raises(UnsupportedMemberError):
        reader.read_many(["secret.txt"])
    assert source.calls == []


def zstd_member(name: bytes, content: bytes) -> RawMember:
    zstandard = pytest.importorskip("zstandard")
    return RawMember(name, zstandard.ZstdCompressor().compress(content), content, method=93)


def test_zstd_member() -> None:
    content = b"zstandard in zip " * 10_000
    data = build_zip([zstd_member(b"z.txt", content), RawMember(b"s.txt", b"s", b"s")])
    reader = ZipReader(BytesSource(data))
    assert reader.read("z.txt") == content
    with reader.open("z.txt") as member:
        assert member.read(9) == b"zstandard"


def test_zstd_without_zstandard_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    data = build_zip([zstd_member(b"z.txt", b"data")])
    monkeypatch.setattr(_decoders, "import_zstandard", lambda: None)
    with pytest.raises(UnsupportedMemberError, match=r"range-streams\[zstd\]"):
        ZipReader(BytesSource(data)).read("z.txt")


@pytest.mark.parametrize("method", [1, 6, 9, 98, 99, 4242])
def test_unknown_methods_are_unsupported(method: int) -> None:
    data = build_zip([RawMember(b"m", b"payload", b"payload", method=method)])
    with pytest.raises(UnsupportedMemberError, match=f"method {method}"):
        ZipReader(BytesSource(data)).read("m")


def test_long_local_extra_costs_one_more_read() -> None:
    big = random.Random(3).randbytes(300_000)  # pushes the members out of the tail probe
    members = [
        RawMember(b"long-extra.txt", b"content", b"content", local_extra=b"\x99\x99" + bytes(998)),
        RawMember(b"big.bin", big, big),
    ]
    source = BytesSource(build_zip(members))
    reader = ZipReader(source)
    source.calls.clear()
    assert reader.read("long-extra.txt") == b"content"
    assert kinds(source) == ["read_at", "read_at"]
    source.calls.clear()
    assert reader.read_many(["long-extra.txt", "big.bin"]) == {
        "long-extra.txt": b"content",
        "big.bin": big,
    }
    assert kinds(source) == ["read_ranges", "read_ranges"]


def test_names_cp437_utf8_flag_and_unicode_path_extra() -> None:
    unicode_path = b"\x01" + zlib.crc32(b"legacy").to_bytes(4, "little") + "ñame".encode()
    unicode_extra = b"\x75\x70" + len(unicode_path).to_bytes(2, "little") + unicode_path
    members = [
        RawMember(b"caf\x82", b"1", b"1"),
        RawMember("naïve".encode(), b"2", b"2", flags=1 << 11),
        RawMember(b"legacy", b"3", b"3", cd_extra=unicode_extra),
    ]
    reader = ZipReader(BytesSource(build_zip(members)))
    assert reader.namelist() == ["café", "naïve", "ñame"]
    assert reader.read_many(reader.namelist()) == {"café": b"1", "naïve": b"2", "ñame": b"3"}


def test_comments_and_prepended_bytes() -> None:
    files = {"a.txt": b"a" * 100, "b.txt": b"b"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        # A comment at the maximum length, holding a decoy signature.
        archive.comment = (b"PK\x05\x06" + bytes(18) + b"decoy") * 2000 + bytes(65535 - 54000)
    stub = b"#!/bin/sh\necho self-extracting stub\n" * 1000
    source = BytesSource(stub + buffer.getvalue())
    reader = ZipReader(source)
    assert len(reader.comment) == 65535
    assert reader.read_many(files) == files
    assert reader.getinfo("a.txt").header_offset == len(stub)
    assert kinds(source)[0] == "read_tail"


def test_member_reader_behaves_like_a_file() -> None:
    data = make_zip({"f.txt": b"line one\nline two\n"}, zipfile.ZIP_DEFLATED)
    reader = ZipReader(BytesSource(data))
    member = reader.open(reader.getinfo("f.txt"))
    assert isinstance(member, ZipMemberReader)
    assert member.readable() and not member.seekable()
    assert member.readline() == b"line one\n"
    buffer = bytearray(4)
    assert member.readinto(buffer) == 4 and buffer == b"line"
    assert member.read() == b" two\n"
    assert member.read() == b""
    member.close()
    with pytest.raises(ValueError, match="closed"):
        member.read()


def test_missing_member_is_a_key_error() -> None:
    reader = ZipReader(BytesSource(make_zip({"a": b"1"}, zipfile.ZIP_STORED)))
    with pytest.raises(MemberNotFoundError) as caught:
        reader.getinfo("b")
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, CodecError)
    assert isinstance(caught.value, RangeStreamError)
    assert "'b'" in str(caught.value)


def test_crc_mismatch_raises_checksum_error() -> None:
    members = [RawMember(b"bad.txt", b"contents", b"contents", crc=12345)]
    reader = ZipReader(BytesSource(build_zip(members)))
    with pytest.raises(ChecksumError):
        reader.read("bad.txt")
    with reader.open("bad.txt") as member:
        assert member.read(3) == b"con"  # early bytes are served; the check is at EOF
        with pytest.raises(ChecksumError):
            member.read()


@pytest.mark.parametrize(
    "data",
    [b"", b"PK", b"not a zip file at all" * 10, os.urandom(200_000), b"PK\x05\x06" + bytes(18)],
    ids=["empty", "tiny", "text", "random", "empty-archive"],
)
def test_not_a_zip(data: bytes) -> None:
    if data == b"PK\x05\x06" + bytes(18):
        assert ZipReader(BytesSource(data)).namelist() == []  # a valid empty archive
        return
    with pytest.raises(ArchiveFormatError):
        ZipReader(BytesSource(data))
