from __future__ import annotations

import io
import json
import random
import tarfile
import zipfile

import pytest

from range_streams._core.source import BytesSource
from range_streams.codecs import ArchiveFormatError, CondaReader, MemberNotFoundError

from ._sources import spans_requested

zstandard = pytest.importorskip("zstandard")

NAME = "example-1.2.3-py312h1234567_0"
INDEX = {"name": "example", "version": "1.2.3", "build": "py312h1234567_0", "depends": []}
PATHS = {"paths": [{"_path": "lib/example.py", "path_type": "hardlink"}], "paths_version": 1}


def zstd_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    compressed: bytes = zstandard.ZstdCompressor(level=3).compress(buffer.getvalue())
    return compressed


def info_files(extra: int = 0) -> dict[str, bytes]:
    return {
        "info/index.json": json.dumps(INDEX).encode(),
        "info/paths.json": json.dumps(PATHS).encode(),
        "info/about.json": b'{"license": "MIT"}',
        "info/padding.bin": random.Random(1).randbytes(extra),  # incompressible
    }


PKG_FILES = {
    "lib/example.py": b"print('hello from the payload')\n",
    "lib/big.bin": random.Random(2).randbytes(400_000),
}


def build_conda(info_extra: int = 0) -> bytes:
    buffer = io.BytesIO()
    # conda-package-handling's order: metadata, payload, then info (nearest the directory).
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        archive.writestr(f"pkg-{NAME}.tar.zst", zstd_tar(PKG_FILES))
        archive.writestr(f"info-{NAME}.tar.zst", zstd_tar(info_files(info_extra)))
    return buffer.getvalue()


def pkg_span(data: bytes) -> tuple[int, int]:
    """The payload member's local header and data: up to the next member's header."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pkg = archive.getinfo(f"pkg-{NAME}.tar.zst")
        info = archive.getinfo(f"info-{NAME}.tar.zst")
    assert pkg.header_offset < info.header_offset
    return pkg.header_offset, info.header_offset


def test_metadata_and_info_without_the_payload() -> None:
    data = build_conda()
    source = BytesSource(data)
    reader = CondaReader(source)
    assert reader.name == NAME
    assert reader.metadata == {"conda_pkg_format_version": 2}
    assert reader.index_json == INDEX
    assert reader.paths_json == PATHS
    assert reader.info_namelist() == list(info_files())
    assert reader.read_info_file("info/about.json") == b'{"license": "MIT"}'
    # A small info member sits inside the zip's tail read: everything came with it.
    assert [kind for kind, _ in source.calls] == ["read_tail", "read_at"]
    assert reader.pkg_member().file_size > 400_000
    pkg_start, pkg_stop = pkg_span(data)
    for start, stop in spans_requested(source.calls[1:], len(data)):
        assert stop <= pkg_start or start >= pkg_stop, "the payload was fetched"


def test_big_info_member_costs_one_read_and_never_touches_the_payload() -> None:
    data = build_conda(info_extra=300_000)
    source = BytesSource(data)
    reader = CondaReader(source)
    source.calls.clear()
    assert reader.index_json == INDEX
    assert reader.paths_json == PATHS
    assert [kind for kind, _ in source.calls] == ["read_at"]
    pkg_start, pkg_stop = pkg_span(data)
    ((start, _),) = spans_requested(source.calls, len(data))
    assert start >= pkg_stop > pkg_start


def test_payload_only_when_asked() -> None:
    reader = CondaReader(BytesSource(build_conda()))
    assert reader.read_pkg_file("lib/example.py") == PKG_FILES["lib/example.py"]
    assert reader.pkg_tar().read("lib/big.bin") == PKG_FILES["lib/big.bin"]
    with pytest.raises(MemberNotFoundError):
        reader.read_info_file("info/missing.json")


def test_not_a_conda_package() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", "{}")
    with pytest.raises(ArchiveFormatError, match=r"not a \.conda package"):
        CondaReader(BytesSource(buffer.getvalue()))
