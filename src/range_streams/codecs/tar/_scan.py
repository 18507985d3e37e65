"""Listing an uncompressed tar by hopping from header to header.

A member is a run of blocks: optional GNU long-name (``L``/``K``) and PAX (``x``/``g``)
blocks, its own header, sparse extension blocks, then its data padded to 512 bytes.
Only headers are read; data is skipped by its size. All reads go through a
``ListingWindow``, which hops to each header or streams the archive through, whichever
costs less for this archive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .._errors import ArchiveFormatError
from .._io import ListingWindow
from ._header import (
    BLOCK_SIZE,
    Header,
    decode_text,
    parse_header,
    parse_pax_records,
    parse_sparse_extension,
    parse_sparse_map_text,
    round_up,
)
from ._info import REGULAR_TYPES, SUPPORTED_TYPES, TarInfo

__all__ = ["scan_members"]

#: The most we accept for a long name or PAX header: a corrupt size field must not
#: make us fetch gigabytes.
MAX_EXTENDED_HEADER = 16 * 1024 * 1024
_ZERO_BLOCK = bytes(BLOCK_SIZE)


@dataclass
class _Pending:
    """What the extended header blocks said about the member that follows them."""

    first_offset: int
    long_name: str | None = None
    long_link: str | None = None
    pax: dict[str, str] = field(default_factory=dict)
    sparse_00: list[tuple[int, int]] = field(default_factory=list)


def scan_members(window: ListingWindow) -> list[TarInfo]:
    """Every member, in archive order; ends at a zero block or the end of the file."""
    members: list[TarInfo] = []
    global_pax: dict[str, str] = {}
    pending: _Pending | None = None
    position = 0
    file_size = window.source.size
    while True:
        block = window.read(position, position + BLOCK_SIZE)
        if len(block) == 0 or block == _ZERO_BLOCK:
            if pending is not None:
                raise ArchiveFormatError(f"the archive ends after an extended header at {position}")
            return members
        if len(block) < BLOCK_SIZE:
            raise ArchiveFormatError(f"truncated tar header at offset {position}")
        header = parse_header(block, position)
        if pending is None:
            pending = _Pending(first_offset=position)
        data_offset = position + BLOCK_SIZE
        next_position = data_offset + round_up(header.size)
        if header.typeflag in ("L", "K", "x", "g", "X"):
            payload = _read_extended(window, data_offset, header.size)
            _apply_extended(header.typeflag, payload, position, pending, global_pax)
        else:
            member, next_position = _build_member(window, header, data_offset, pending, global_pax)
            members.append(member)
            pending = None
        if next_position > file_size:
            raise ArchiveFormatError(
                f"the member at offset {position} runs past the end of the file: truncated"
            )
        position = next_position


def _read_extended(window: ListingWindow, offset: int, size: int) -> bytes:
    if size > MAX_EXTENDED_HEADER:
        raise ArchiveFormatError(f"extended header of {size} bytes at {offset}: corrupt")
    payload = window.read(offset, offset + size)
    if len(payload) < size:
        raise ArchiveFormatError(f"extended header at {offset} is truncated")
    return payload


def _apply_extended(
    typeflag: str, payload: bytes, offset: int, pending: _Pending, global_pax: dict[str, str]
) -> None:
    if typeflag == "L":
        pending.long_name = decode_text(payload)
    elif typeflag == "K":
        pending.long_link = decode_text(payload)
    else:
        records = parse_pax_records(payload, offset)
        (global_pax if typeflag == "g" else pending.pax).update(records)
        # Sparse format 0.0 repeats these two keys, one pair per data run.
        offsets = _integers(value for key, value in records if key == "GNU.sparse.offset")
        lengths = _integers(value for key, value in records if key == "GNU.sparse.numbytes")
        pending.sparse_00.extend(zip(offsets, lengths, strict=False))


def _integers(texts: Iterable[str]) -> list[int]:
    try:
        numbers = [int(text) for text in texts]
    except ValueError:
        raise ArchiveFormatError("a GNU sparse map holds something other than numbers") from None
    if any(number < 0 for number in numbers):
        raise ArchiveFormatError("a GNU sparse map holds a negative number")
    return numbers


def _number(pax: dict[str, str], key: str, default: int) -> int:
    if key not in pax:
        return default
    text = pax[key]
    if not text.isascii() or not text.isdigit():
        raise ArchiveFormatError(f"PAX {key}={text!r} is not a non-negative integer")
    return int(text)


def _build_member(
    window: ListingWindow,
    header: Header,
    data_offset: int,
    pending: _Pending,
    global_pax: dict[str, str],
) -> tuple[TarInfo, int]:
    """The member and where the next header starts."""
    pax = {**global_pax, **pending.pax}
    name = header.name if pending.long_name is None else pending.long_name
    if "path" in pax:
        name = pax["path"].rstrip("/")
    name = pax.get("GNU.sparse.name", name)
    linkname = pax.get(
        "linkpath", header.linkname if pending.long_link is None else pending.long_link
    )
    stored_size = _number(pax, "size", header.size)
    has_data = header.typeflag in REGULAR_TYPES or header.typeflag not in SUPPORTED_TYPES
    next_position = data_offset + round_up(stored_size) if has_data else data_offset
    sparse, real_size = None, stored_size
    if header.typeflag == "S":
        sparse, data_offset = _old_gnu_sparse_map(window, header, data_offset)
        real_size = header.real_size
        next_position = data_offset + round_up(stored_size)
    elif "GNU.sparse.map" in pax:
        numbers = _integers(text for text in pax["GNU.sparse.map"].split(",") if text)
        sparse = list(zip(numbers[::2], numbers[1::2], strict=False))
        real_size = _number(pax, "GNU.sparse.size", stored_size)
    elif "GNU.sparse.size" in pax:
        sparse, real_size = pending.sparse_00, _number(pax, "GNU.sparse.size", stored_size)
    elif pax.get("GNU.sparse.major") == "1" and pax.get("GNU.sparse.minor") == "0":
        sparse, map_size = _sparse_1_0_map(window, data_offset, stored_size)
        data_offset += map_size
        stored_size -= map_size
        real_size = _number(pax, "GNU.sparse.realsize", stored_size)
    if sparse is not None:
        _check_sparse_map(sparse, real_size, stored_size, data_offset)
    if header.typeflag == "5":
        name = name.rstrip("/")
    member = TarInfo(
        name=name,
        size=real_size,
        type=header.typeflag,
        mode=header.mode,
        uid=_number(pax, "uid", header.uid),
        gid=_number(pax, "gid", header.gid),
        mtime=float(pax["mtime"]) if _is_float(pax.get("mtime")) else header.mtime,
        linkname=linkname,
        uname=pax.get("uname", header.uname),
        gname=pax.get("gname", header.gname),
        devmajor=header.devmajor,
        devminor=header.devminor,
        header_offset=pending.first_offset,
        data_offset=data_offset,
        stored_size=stored_size if has_data else 0,
        sparse=None if sparse is None else tuple(sparse),
        pax_headers=pax,
    )
    return member, next_position


def _is_float(text: str | None) -> bool:
    try:
        return text is not None and float(text) == float(text)
    except ValueError:
        return False


def _old_gnu_sparse_map(
    window: ListingWindow, header: Header, data_offset: int
) -> tuple[list[tuple[int, int]], int]:
    """The whole map, following extension blocks; returns it and where data starts."""
    pairs = list(header.sparse)
    more = header.sparse_extended
    while more:
        block = window.read(data_offset, data_offset + BLOCK_SIZE)
        if len(block) < BLOCK_SIZE:
            raise ArchiveFormatError(f"truncated GNU sparse extension block at {data_offset}")
        entries, more = parse_sparse_extension(block)
        pairs.extend(entries)
        data_offset += BLOCK_SIZE
    return pairs, data_offset


def _sparse_1_0_map(
    window: ListingWindow, data_offset: int, stored_size: int
) -> tuple[list[tuple[int, int]], int]:
    """GNU sparse 1.0 keeps its map in the first data blocks; read as many as it takes."""
    length = BLOCK_SIZE
    while length <= stored_size:
        parsed = parse_sparse_map_text(window.read(data_offset, data_offset + length))
        if parsed is not None:
            return parsed
        length += BLOCK_SIZE
    raise ArchiveFormatError(f"the GNU sparse map at {data_offset} overruns its member")


def _check_sparse_map(
    pairs: list[tuple[int, int]], real_size: int, stored_size: int, data_offset: int
) -> None:
    """Runs must be in order, inside the file, and held by the stored data."""
    end = 0
    for offset, length in pairs:
        if offset < end or length < 0 or offset + length > real_size:
            raise ArchiveFormatError(f"invalid sparse map for the member at {data_offset}")
        end = offset + length
    if sum(length for _, length in pairs) > stored_size:
        raise ArchiveFormatError(f"the sparse map at {data_offset} needs more data than stored")
