"""A tiny zip writer for the cases zipfile will not produce: zstd members, unknown methods,
long local extra fields, cp437 names, ZIP64 fields past 4 GiB (with ``PatchworkSource``)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class RawMember:
    name: bytes
    payload: bytes  # the bytes stored in the archive (already compressed)
    content: bytes  # what the payload decompresses to: gives CRC and file size
    method: int = 0
    flags: int = 0
    local_extra: bytes = b""
    cd_extra: bytes = b""
    crc: int | None = None


def build_zip(
    members: Sequence[RawMember], *, comment: bytes = b"", gap: int = 0, zip64: bool = False
) -> bytes:
    """The archive bytes; offsets are written as if ``gap`` bytes preceded them."""
    out = bytearray()
    directory = bytearray()
    for member in members:
        offset = gap + len(out)
        crc = zlib.crc32(member.content) if member.crc is None else member.crc
        sizes = (len(member.payload), len(member.content))
        out += struct.pack(
            "<4s5HL2L2H", b"PK\x03\x04", 20, member.flags, member.method, 0, 0x21,
            crc, *sizes, len(member.name), len(member.local_extra),
        )  # fmt: skip
        out += member.name + member.local_extra + member.payload
        cd_extra = member.cd_extra
        fields = (*sizes, offset)
        if zip64:
            cd_extra = struct.pack("<2H3Q", 1, 24, sizes[1], sizes[0], offset) + cd_extra
            fields = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        directory += struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 45, 3, 45, 0, member.flags, member.method,
            0, 0x21, crc, fields[0], fields[1], len(member.name), len(cd_extra), 0, 0, 0, 0,
            fields[2],
        )  # fmt: skip
        directory += member.name + cd_extra
    directory_offset = gap + len(out)
    out += directory
    count = len(members)
    if zip64:
        record_offset = gap + len(out)
        out += struct.pack(
            "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count,
            len(directory), directory_offset,
        )  # fmt: skip
        out += struct.pack("<4sLQL", b"PK\x06\x07", 0, record_offset, 1)
        out += struct.pack(
            "<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
            len(comment),
        )  # fmt: skip
    else:
        out += struct.pack(
            "<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory),
            directory_offset, len(comment),
        )  # fmt: skip
    return bytes(out + comment)
