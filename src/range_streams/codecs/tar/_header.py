"""Parsing tar's 512-byte header blocks, PAX records and GNU sparse maps.

Field decoding follows ``tarfile`` (names are UTF-8 with surrogateescape, numbers are
octal or GNU base-256) so that the two agree on names and sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import ArchiveFormatError

__all__ = [
    "BLOCK_SIZE",
    "Header",
    "decode_text",
    "parse_header",
    "parse_pax_records",
    "parse_sparse_extension",
    "parse_sparse_map_text",
    "round_up",
]

BLOCK_SIZE = 512
_POSIX_MAGIC = b"ustar\x00"
_OLD_GNU_SPARSE_AT = 386  # four (offset, numbytes) pairs of 12-byte numbers
_EXTENSION_ENTRIES = 21  # pairs in each GNU sparse extension block


def round_up(count: int) -> int:
    """``count`` rounded up to whole blocks: where the next header starts."""
    return -(-count // BLOCK_SIZE) * BLOCK_SIZE


def decode_text(raw: bytes) -> str:
    """A NUL-terminated field as text (undecodable bytes kept, as tarfile does)."""
    end = raw.find(b"\0")
    return (raw if end < 0 else raw[:end]).decode("utf-8", "surrogateescape")


def parse_number(field: bytes, what: str) -> int:
    """An octal field, or GNU's base-256 (first byte 0x80, or 0xff for negatives)."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] == 0xFF else value
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise ArchiveFormatError(f"tar header field {what} is not a number: {field!r}") from None


@dataclass(frozen=True, slots=True)
class Header:
    """The fields of one header block, before PAX or GNU long names are applied."""

    name: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    typeflag: str
    linkname: str
    uname: str
    gname: str
    devmajor: int
    devminor: int
    sparse: list[tuple[int, int]]  # old GNU sparse ('S') map held in the header itself
    sparse_extended: bool  # more map entries follow in extension blocks
    real_size: int  # old GNU sparse: the expanded size


def _checksum_matches(block: bytes) -> bool:
    stored = parse_number(block[148:156], "checksum")
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    # Some old tars summed signed chars; tarfile accepts either, so do we.
    signed = unsigned - 256 * sum(1 for byte in block[:148] + block[156:] if byte > 127)
    return stored in (unsigned, signed)


def parse_header(block: bytes, offset: int) -> Header:
    """One header block at ``offset``; ``ArchiveFormatError`` if its checksum fails."""
    if not _checksum_matches(block):
        raise ArchiveFormatError(
            f"bad tar header checksum at offset {offset}: not a tar archive, or corrupt"
        )
    typeflag = block[156:157].decode("latin-1")
    name = decode_text(block[0:100])
    if typeflag in ("\0", "") and name.endswith("/"):
        typeflag = "5"  # V7 tar marked directories only by the trailing slash
    if block[257:263] == _POSIX_MAGIC and block[345] != 0:
        name = decode_text(block[345:500]) + "/" + name  # ustar splits long paths here
    size = parse_number(block[124:136], "size")
    if size < 0:
        raise ArchiveFormatError(f"negative size in the tar header at offset {offset}")
    sparse: list[tuple[int, int]] = []
    sparse_extended, real_size = False, 0
    if typeflag == "S":
        sparse = _sparse_pairs(block, _OLD_GNU_SPARSE_AT, 4)
        sparse_extended = block[482] != 0
        real_size = max(parse_number(block[483:495], "realsize"), 0)
    return Header(
        name=name,
        mode=parse_number(block[100:108], "mode"),
        uid=parse_number(block[108:116], "uid"),
        gid=parse_number(block[116:124], "gid"),
        size=size,
        mtime=parse_number(block[136:148], "mtime"),
        typeflag=typeflag,
        linkname=decode_text(block[157:257]),
        uname=decode_text(block[265:297]),
        gname=decode_text(block[297:329]),
        devmajor=parse_number(block[329:337], "devmajor"),
        devminor=parse_number(block[337:345], "devminor"),
        sparse=sparse,
        sparse_extended=sparse_extended,
        real_size=real_size,
    )


def _sparse_pairs(block: bytes, start: int, count: int) -> list[tuple[int, int]]:
    pairs = []
    for index in range(count):
        at = start + 24 * index
        offset = parse_number(block[at : at + 12], "sparse offset")
        length = parse_number(block[at + 12 : at + 24], "sparse length")
        if offset == 0 and length == 0:
            break  # unused slots are zero-filled
        pairs.append((offset, length))
    return pairs


def parse_sparse_extension(block: bytes) -> tuple[list[tuple[int, int]], bool]:
    """The map entries of an old GNU sparse extension block, and whether more follow."""
    return _sparse_pairs(block, 0, _EXTENSION_ENTRIES), block[504] != 0


def parse_pax_records(payload: bytes, offset: int) -> list[tuple[str, str]]:
    """``"<length> <key>=<value>\\n"`` records, in order (GNU sparse 0.0 repeats keys)."""
    records = []
    position = 0
    while position < len(payload) and payload[position] != 0:
        space = payload.find(b" ", position, position + 20)
        length_text = payload[position:space] if space > position else b""
        if not length_text.isdigit():
            raise ArchiveFormatError(f"malformed PAX record in the header at offset {offset}")
        end = position + int(length_text)
        record = payload[space + 1 : end]
        if end > len(payload) or end <= space or not record.endswith(b"\n"):
            raise ArchiveFormatError(f"malformed PAX record in the header at offset {offset}")
        key, equals, value = record[:-1].partition(b"=")
        if not equals:
            raise ArchiveFormatError(f"PAX record without '=' in the header at offset {offset}")
        records.append((decode_text(key), value.decode("utf-8", "surrogateescape")))
        position = end
    return records


def parse_sparse_map_text(data: bytes) -> tuple[list[tuple[int, int]], int] | None:
    """GNU sparse 1.0's map at the start of the data: a count, then offset/length lines.

    Returns the pairs and how many bytes the map occupies (whole blocks), or ``None``
    when ``data`` does not yet hold the whole map.
    """
    lines = data.split(b"\n")
    if len(lines) < 2:
        return None
    numbers = []
    for line in lines[:-1]:
        if not line.isdigit():
            raise ArchiveFormatError("malformed GNU sparse 1.0 map")
        numbers.append(int(line))
        if len(numbers) == 1 + 2 * numbers[0]:
            used = sum(len(text) + 1 for text in lines[: len(numbers)])
            pairs = list(zip(numbers[1::2], numbers[2::2], strict=True))
            return pairs, round_up(used)
    return None
