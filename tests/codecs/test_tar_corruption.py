"""Damaged tars: a codec error or the right bytes, never a hang or another exception.

Tar has no checksum over member data or PAX records, so a flipped data byte reads back
flipped: header blocks, which do carry a checksum, are where "never the wrong member"
can be demanded.
"""

from __future__ import annotations

import io
import tarfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from range_streams._core.source import BytesSource
from range_streams.codecs import CodecError, TarReader

FILES = {
    "a.txt": b"alpha " * 30,
    "b/" + "long" * 40: b"beta " * 200,
    "c.bin": bytes(range(256)) * 3,
    "empty": b"",
}


def archive(format_code: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=format_code) as tar:
        for name, data in FILES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


GNU, PAX = archive(tarfile.GNU_FORMAT), archive(tarfile.PAX_FORMAT)


def header_offsets(data: bytes) -> list[int]:
    """Offsets of header blocks (not of long-name or PAX payload blocks, unchecksummed)."""
    offsets = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    for member in members:
        for offset in range(member.offset, member.offset_data, 512):
            try:
                tarfile.TarInfo.frombuf(data[offset : offset + 512], "utf-8", "strict")
            except tarfile.HeaderError:
                continue
            offsets.append(offset)
    return offsets


def read_all(data: bytes) -> dict[str, bytes] | None:
    """Every member's bytes, or None if the reader raised a codec error."""
    try:
        reader = TarReader(BytesSource(data))
        return {name: reader.read(name) for name in reader.namelist()}
    except CodecError:
        return None


def test_every_truncation_gives_an_error_or_a_correct_prefix() -> None:
    for data in (GNU, PAX):
        for cut in range(0, len(data), 3):
            result = read_all(data[:cut])
            if result is not None:
                assert list(result) == list(FILES)[: len(result)]
                assert all(FILES[name] == content for name, content in result.items())


def test_every_header_byte_flip_is_caught() -> None:
    for data in (GNU, PAX):
        for header in header_offsets(data):
            for position in range(header, header + 512):
                damaged = bytearray(data)
                damaged[position] ^= 0x5A
                result = read_all(bytes(damaged))
                if result is not None:  # a flip that does not change what tar means
                    assert result == FILES


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([GNU, PAX]), st.data())
def test_random_damage_never_raises_anything_else(data: bytes, draw: st.DataObject) -> None:
    damaged = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 8))):
        position = draw.draw(st.integers(0, len(data) - 1))
        damaged[position] = draw.draw(st.integers(0, 255))
    read_all(bytes(damaged))
