"""``ZipReader``: list and extract the members of a zip held in any ``ByteSource``.

Request budget, for a source where each call is one HTTP request:

- listing: one suffix read (``ZIP_TAIL_PROBE`` bytes), plus one ``read_at`` when the
  central directory is bigger than what that read held;
- ``read(name)`` / ``open(name)``: one read of the local header, a guess at its extra
  field and the first ``CHUNK_SIZE`` bytes of data; one more only when the local extra
  field is longer than the guess, and one per further ``CHUNK_SIZE`` of compressed data;
- ``read_many(names)``: one ``read_ranges`` for all of them (a second only for members
  whose local extra field outgrew the guess).

Whatever the listing read already holds (all of a small archive) is served from memory.
A member's span never reaches past the next local header (or the central directory),
which bounds every guess and rejects members whose data overlaps another's.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from ..._core.source import ByteSource
from .._errors import ArchiveFormatError, MemberNotFoundError, UnsupportedMemberError
from .._io import CHUNK_SIZE, SegmentReader, advise, read_exactly
from ._decoders import check_method_supported, open_decoded
from ._directory import read_directory
from ._info import ZipInfo
from ._member import (
    LOCAL_HEADER_SIZE,
    LOCAL_HEADER_SLACK,
    ZipMemberReader,
    data_offset,
    local_name_end,
)

__all__ = ["ZipReader"]


class ZipReader:
    """Random access to the members of a zip archive.

    The central directory is read when the reader is made. ``source`` is any
    ``ByteSource``: ``BytesSource(data)`` for bytes in memory, or a remote file.
    """

    def __init__(self, source: ByteSource) -> None:
        self.source = source
        directory = read_directory(source)
        self.comment = directory.comment
        self.directory_offset = directory.directory_offset
        self.directory_size = directory.directory_size
        self.eocd_offset = directory.eocd_offset
        self._members = directory.members
        self._by_name = {info.filename: info for info in self._members}  # last one wins
        # Every member's data must end before the next local header or the directory.
        self._boundaries = sorted({info.header_offset for info in self._members})
        self._boundaries.append(directory.directory_offset)
        self._tail = directory.tail
        self._tail_offset = directory.tail_offset

    def infolist(self) -> list[ZipInfo]:
        return list(self._members)

    def namelist(self) -> list[str]:
        return [info.filename for info in self._members]

    def getinfo(self, name: str) -> ZipInfo:
        try:
            return self._by_name[name]
        except KeyError:
            raise MemberNotFoundError(f"there is no member named {name!r}") from None

    def _resolve(self, member: str | ZipInfo) -> ZipInfo:
        info = self.getinfo(member) if isinstance(member, str) else member
        if info.is_encrypted:
            raise UnsupportedMemberError(f"{info.filename!r} is encrypted")
        check_method_supported(info.compress_type, info.filename)
        return info

    def _boundary_after(self, info: ZipInfo) -> int:
        index = bisect.bisect_right(self._boundaries, info.header_offset)
        return self._boundaries[min(index, len(self._boundaries) - 1)]

    def _head_span(self, info: ZipInfo, data_budget: int) -> tuple[int, int]:
        """The one read that most likely covers the local header and ``data_budget``."""
        guess = LOCAL_HEADER_SIZE + len(info.raw_filename) + len(info.extra) + LOCAL_HEADER_SLACK
        stop = info.header_offset + guess + data_budget
        return info.header_offset, min(stop, self._boundary_after(info))

    def _data_span(self, info: ZipInfo, head: bytes) -> tuple[int, int]:
        """Where the member's compressed data lies, checked against its neighbours."""
        if len(head) < local_name_end(head):
            # The span was cut at the next member, so the header runs into it.
            raise ArchiveFormatError(
                f"{info.filename!r}: its local header overlaps the next member: corrupt"
            )
        start = data_offset(info, head)
        stop = start + info.compress_size
        if stop > self._boundary_after(info):
            raise ArchiveFormatError(
                f"{info.filename!r}: its data [{start}, {stop}) overlaps the next member"
                " or the central directory: corrupt archive"
            )
        return start, stop

    def _cached(self, start: int, stop: int) -> bytes | None:
        """``[start, stop)`` from the bytes the listing read, if it holds them."""
        if self._tail_offset <= start <= stop <= self._tail_offset + len(self._tail):
            return self._tail[start - self._tail_offset : stop - self._tail_offset]
        return None

    def _read_span(self, start: int, stop: int) -> bytes:
        cached = self._cached(start, stop)
        if cached is not None:
            return cached
        return read_exactly(self.source, start, stop, "member")

    def _read_batch(self, spans: dict[int, tuple[int, int]]) -> dict[int, bytes]:
        """One ``read_ranges`` for all ``spans`` (none if empty), keyed as given."""
        if not spans:
            return {}
        fetched = self.source.read_ranges(list(spans.values()))
        for (start, stop), data in zip(spans.values(), fetched, strict=True):
            if len(data) != stop - start:
                raise ArchiveFormatError(f"asked for [{start}, {stop}), got {len(data)} bytes")
        return dict(zip(spans, fetched, strict=True))

    def _reader(self, info: ZipInfo, head: bytes) -> ZipMemberReader:
        start, stop = self._data_span(info, head)
        compressed = SegmentReader(
            self.source, [(start, stop - start)], head=head, head_offset=info.header_offset
        )
        return ZipMemberReader(info, open_decoded(info.compress_type, compressed), compressed)

    def open(self, member: str | ZipInfo) -> ZipMemberReader:
        """A streaming reader of the member's decompressed bytes (CRC checked at EOF).

        Compressed data is fetched ``CHUNK_SIZE`` bytes per request as it is consumed.
        """
        info = self._resolve(member)
        start, stop = self._head_span(info, min(info.compress_size, CHUNK_SIZE))
        if self._cached(start, stop) is None:
            # Header and data in one streaming request, ending where the member does.
            advise(self.source, start, self._boundary_after(info))
        return self._reader(info, self._read_span(start, stop))

    def read(self, member: str | ZipInfo) -> bytes:
        """The member's decompressed bytes, CRC checked."""
        with self.open(member) as reader:
            return reader.readall()

    def read_many(self, members: Iterable[str | ZipInfo]) -> dict[str, bytes]:
        """Several members' bytes by name, fetched with one ``read_ranges`` call."""
        infos = {}
        for member in members:
            info = self._resolve(member)
            infos[info.filename] = info
        by_offset = {info.header_offset: info for info in infos.values()}
        spans = {
            offset: self._head_span(info, info.compress_size)
            for offset, info in sorted(by_offset.items())
        }
        heads: dict[int, bytes] = {}
        for offset, span in spans.items():
            cached = self._cached(*span)
            if cached is not None:
                heads[offset] = cached
        to_fetch = [offset for offset in spans if offset not in heads]
        heads.update(self._read_batch({offset: spans[offset] for offset in to_fetch}))
        # Members whose local extra field outgrew the guess: one more batch for them all.
        missing = {}
        for offset, info in by_offset.items():
            _, stop = self._data_span(info, heads[offset])
            if stop > offset + len(heads[offset]):
                missing[offset] = (offset + len(heads[offset]), stop)
        for offset, rest in self._read_batch(missing).items():
            heads[offset] += rest
        result = {}
        for name, info in infos.items():
            with self._reader(info, heads[info.header_offset]) as reader:
                result[name] = reader.readall()
        return result

    def data_spans(
        self, members: Iterable[str | ZipInfo], *, check_method: bool = True
    ) -> dict[str, tuple[int, int]]:
        """Where each member's compressed data lies, from its local header (whose extra
        field may differ from the central directory's): one ``read_ranges`` for all.
        ``check_method=False`` also places members this reader cannot decompress."""
        if check_method:
            infos = [self._resolve(member) for member in members]
        else:
            infos = [self.getinfo(m) if isinstance(m, str) else m for m in members]
        spans = self.data_span_list(infos, check_method=False)
        return {info.filename: span for info, span in zip(infos, spans, strict=True)}

    def data_span_list(
        self, members: Iterable[ZipInfo], *, check_method: bool = True
    ) -> list[tuple[int, int]]:
        """``data_spans`` as a list in the order given (members may share a name)."""
        infos = [self._resolve(info) if check_method else info for info in members]
        spans = {index: self._head_span(info, 0) for index, info in enumerate(infos)}
        cached = {i: self._cached(*span) for i, span in spans.items()}
        heads = self._read_batch({i: s for i, s in spans.items() if cached[i] is None})
        heads.update({i: data for i, data in cached.items() if data is not None})
        return [self._data_span(info, heads[i]) for i, info in enumerate(infos)]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self._members)} members>"
