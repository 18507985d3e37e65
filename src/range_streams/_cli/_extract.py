"""``extract``: members of a remote zip, .conda or tar written under a directory.

Small members are fetched together (zip: ``read_many``; tar: one ``read_ranges`` over
their data), so extracting many costs about one request per batch rather than one per
member; a big member is streamed in bounded pieces. No member is ever written outside
the destination: absolute names, ``..`` components and paths that resolve elsewhere
(through a symlink already in the destination) are refused before anything is written,
and symlinks from a tar are skipped rather than created.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Protocol

from .._core.errors import RangeStreamError
from ..codecs import TarInfo, TarReader, ZipInfo, ZipReader
from ._archive import Archive
from ._common import Console, UsageError

__all__ = ["UnsafePathError", "extract", "safe_target"]

#: Members up to this size are fetched in batches; bigger ones are streamed.
BATCH_MEMBER = 8 << 20
#: The most member bytes one batch holds in memory.
BATCH_BYTES = 64 << 20
STREAM_CHUNK = 1 << 20


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes | None: ...

    def close(self) -> None: ...


class UnsafePathError(RangeStreamError):
    """A member's name would be written outside the destination directory."""


def safe_target(root: Path, name: str) -> Path:
    """Where member ``name`` goes under ``root``, or ``UnsafePathError``."""
    cleaned = name.replace("\\", "/")  # zips made on Windows may use backslashes
    parts = PurePosixPath(cleaned).parts
    if (
        not cleaned.strip("/")
        or cleaned.startswith("/")
        or re.match(r"^[A-Za-z]:", cleaned)
        or "\x00" in cleaned
        or ".." in parts
    ):
        raise UnsafePathError(f"refusing to extract {name!r}: it points outside {root}")
    target = root.joinpath(*[part for part in parts if part not in ("", ".")])
    if not target.resolve().is_relative_to(root.resolve()):
        raise UnsafePathError(f"refusing to extract {name!r}: it resolves outside {root}")
    return target


def extract(archive: Archive, names: Sequence[str], root: Path, console: Console) -> list[Path]:
    """Write the named members (all of them when ``names`` is empty) under ``root``."""
    if archive.zip is not None:
        return _extract_zip(archive.zip, names, root, console)
    if archive.tar is not None:
        return _extract_tar(archive.tar, names, root, console)
    raise UsageError(f"a {archive.format} file has no members to extract (try `ls` or `cat`)")


def _batches(sizes: Sequence[tuple[str, int]]) -> Iterator[list[str]]:
    batch: list[str] = []
    held = 0
    for name, size in sizes:
        if batch and held + size > BATCH_BYTES:
            yield batch
            batch, held = [], 0
        batch.append(name)
        held += size
    if batch:
        yield batch


def _write(target: Path, data: bytes, mtime: float | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    if mtime is not None:
        os.utime(target, (mtime, mtime))


def _stream(target: Path, reader: _Readable, mtime: float | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "wb") as out:
            while chunk := reader.read(STREAM_CHUNK):
                out.write(chunk)
    finally:
        reader.close()
    if mtime is not None:
        os.utime(target, (mtime, mtime))


def _zip_mtime(info: ZipInfo) -> float | None:
    try:
        return time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return None


def _extract_zip(
    reader: ZipReader, names: Sequence[str], root: Path, console: Console
) -> list[Path]:
    infos = [reader.getinfo(name) for name in names] if names else reader.infolist()
    targets = {info.filename: safe_target(root, info.filename) for info in infos}  # check all
    written: list[Path] = []
    small: list[tuple[str, int]] = []
    for info in infos:
        target = targets[info.filename]
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif info.file_size <= BATCH_MEMBER:
            small.append((info.filename, info.file_size))
            continue
        else:
            _stream(target, reader.open(info), _zip_mtime(info))
        written.append(target)
        console.print(target)
    by_name = {info.filename: info for info in infos}
    for batch in _batches(small):
        for name, data in reader.read_many(batch).items():
            _write(targets[name], data, _zip_mtime(by_name[name]))
            written.append(targets[name])
            console.print(targets[name])
    return written


def _extract_tar(
    reader: TarReader, names: Sequence[str], root: Path, console: Console
) -> list[Path]:
    infos = [reader.getmember(name) for name in names] if names else reader.infolist()
    targets = {info.name: safe_target(root, info.name) for info in infos}
    written: list[Path] = []
    plain: list[TarInfo] = []
    for info in infos:
        target = targets[info.name]
        if info.isdir():
            target.mkdir(parents=True, exist_ok=True)
        elif info.issym() or not (info.isreg() or info.islnk()):
            console.warn(f"skipped {info.name!r}: only files and directories are extracted")
            continue
        elif info.isreg() and not info.issparse() and info.size <= BATCH_MEMBER:
            plain.append(info)
            continue
        else:  # hard links, sparse and big files: the reader follows and streams them
            _stream(target, reader.open(info), info.mtime)
        written.append(target)
        console.print(target)
    # Plain files' bytes lie as-is at their data offset: one batched read for many.
    by_name = {info.name: info for info in plain}
    for batch in _batches([(info.name, info.size) for info in plain]):
        spans = [(by_name[n].data_offset, by_name[n].data_offset + by_name[n].size) for n in batch]
        for name, data in zip(batch, reader.source.read_ranges(spans), strict=True):
            _write(targets[name], data, by_name[name].mtime)
            written.append(targets[name])
            console.print(targets[name])
    return written
