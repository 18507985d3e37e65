"""Damaged zips: a codec error or the right bytes, never a hang, another exception, or the
bytes of the wrong member."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from range_streams._core.source import BytesSource
from range_streams.codecs import CodecError, ZipReader

FILES = {
    "stored.txt": b"stored member " * 20,
    "deflated.txt": b"deflated member " * 50,
    "bzip2.txt": b"bzip2 member " * 40,
    "lzma.txt": b"lzma member " * 30,
    "same-size-a": b"A" * 64,
    "same-size-b": b"B" * 64,
}
METHODS = {
    "stored.txt": zipfile.ZIP_STORED,
    "deflated.txt": zipfile.ZIP_DEFLATED,
    "bzip2.txt": zipfile.ZIP_BZIP2,
    "lzma.txt": zipfile.ZIP_LZMA,
    "same-size-a": zipfile.ZIP_STORED,
    "same-size-b": zipfile.ZIP_STORED,
}


def archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in FILES.items():
            zf.writestr(name, data, compress_type=METHODS[name])
        zf.comment = b"archive comment"
    return buffer.getvalue()


ARCHIVE = archive()


def check_reads_right_or_raises(data: bytes) -> None:
    """Every member either reads as the original or raises a CodecError."""
    try:
        reader = ZipReader(BytesSource(data))
    except CodecError:
        return
    for name in reader.namelist():
        for read in (reader.read, lambda n: reader.read_many([n])[n]):
            try:
                content = read(name)
            except CodecError:
                continue
            assert name in FILES, f"a damaged archive produced an unknown member {name!r}"
            assert content == FILES[name], f"{name!r} read back wrong"


def test_every_truncation_is_an_error() -> None:
    for cut in range(len(ARCHIVE)):
        with pytest.raises(CodecError):
            ZipReader(BytesSource(ARCHIVE[:cut]))


def test_every_front_cut() -> None:
    for cut in range(1, len(ARCHIVE)):
        check_reads_right_or_raises(ARCHIVE[cut:])


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_byte_flipped(mask: int) -> None:
    for position in range(len(ARCHIVE)):
        damaged = bytearray(ARCHIVE)
        damaged[position] ^= mask
        check_reads_right_or_raises(bytes(damaged))


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(ARCHIVE) - 1), st.integers(0, 255)), min_size=1, max_size=6
    )
)
def test_random_byte_overwrites(edits: list[tuple[int, int]]) -> None:
    damaged = bytearray(ARCHIVE)
    for position, value in edits:
        damaged[position] = value
    check_reads_right_or_raises(bytes(damaged))
