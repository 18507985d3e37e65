"""Parquet over HTTP at the speed of engines that read it natively (extra ``parquet``).

pyarrow reads a Python file one range at a time, so a column spread over 12 row groups
costs 12 round trips in a row through any file object. This module reads the way
polars and DuckDB do: the footer with one suffix request, then every column chunk the
read needs (the columns asked for and those a filter names, in the row groups whose
statistics the filter cannot rule out) in one batch of concurrent requests
(``read_ranges``), and hands pyarrow the bytes from memory::

    import range_streams.parquet as rsp

    table = rsp.read_table(url, columns=["value"])                    # 1 + chunks, concurrent
    table = rsp.read_table(url, columns=["value"], filters=[("id", ">=", 2_750_000)])
    with rsp.ParquetFile(url) as pf:                                  # the footer once ...
        pf.metadata.num_rows
        pf.read(columns=["id"], row_groups=[0, 1])                    # ... for every read

``filters`` take pyarrow's forms: a list of ``(column, op, value)`` tuples (or a list of
such lists, OR-ed), as ``pyarrow.parquet.read_table`` does, or a
``pyarrow.compute.Expression``. Row groups are chosen from the footer's statistics and
rows are then filtered, so the result equals ``pyarrow.parquet.read_table``'s.

Any byte pyarrow asks for outside the batch (a page index, a column found in a filter
expression only at run time) is read from the file then, one request each: a result is
never wrong for want of a span, only slower.
"""

from __future__ import annotations

import bisect
import importlib
import io
import logging
import re
import struct
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ._core.coalesce import coalesce
from ._core.errors import InvalidRangeError, RangeStreamError
from ._core.source import ByteSource
from ._state.file_core import FileOptions
from .file import RangeFile

try:
    # Imported by name: mypy then needs no pyarrow stubs; pyarrow is an optional extra.
    _pa: Any = importlib.import_module("pyarrow")
    _pq: Any = importlib.import_module("pyarrow.parquet")
    _ds: Any = importlib.import_module("pyarrow.dataset")
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "range_streams.parquet needs pyarrow: pip install 'range-streams[parquet]'"
    ) from exc

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["FOOTER_READ", "ParquetFile", "ParquetFormatError", "read_metadata", "read_table"]

logger = logging.getLogger("range_streams")

#: The suffix read that holds the footer of most files (pyarrow's own first read).
FOOTER_READ = 64 * 1024
_MAGIC = b"PAR1"
_MAX_FOOTER = 256 << 20  # a footer claiming more is corrupt, not read


class ParquetFormatError(RangeStreamError, ValueError):
    """The file does not end the way a parquet file ends."""


class _Prefetched(io.RawIOBase):
    """The file as pyarrow sees it: ``size`` bytes of which the fetched spans are held
    in memory; a read outside them is fetched from ``source`` (and counted)."""

    def __init__(self, source: ByteSource, size: int, spans: dict[int, bytes]) -> None:
        super().__init__()
        self._source = source
        self._size = size
        self._starts = sorted(spans)
        self._spans = spans
        self._position = 0
        self.fallback_reads: list[tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = (0, self._position, self._size)[whence]
        if base + offset < 0:
            raise InvalidRangeError(f"cannot seek to {base + offset}")
        self._position = base + offset
        return self._position

    def _held(self, start: int, stop: int) -> bytes | None:
        index = bisect.bisect_right(self._starts, start) - 1
        if index < 0:
            return None
        begin = self._starts[index]
        data = self._spans[begin]
        if stop > begin + len(data):
            return None
        if (start, stop) == (begin, begin + len(data)):
            return data
        return data[start - begin : stop - begin]

    def read(self, size: int = -1, /) -> bytes:
        start = self._position
        stop = self._size if size is None or size < 0 else min(start + size, self._size)
        if stop <= start:
            return b""
        data = self._held(start, stop)
        if data is None:
            logger.debug("parquet: [%d, %d) was not in the batch; reading it now", start, stop)
            self.fallback_reads.append((start, stop))
            data = self._source.read_at(start, stop)
        self._position = stop
        return data

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def size(self) -> int:
        return self._size


class ParquetFile:
    """One remote parquet file: its footer, read once, and reads of its columns, each
    fetched as one concurrent batch.

    ``source`` is a URL (opened here, with the library's own client unless ``client``
    is given, and ``options`` as ``FileOptions`` takes them) or anything with the
    ``ByteSource`` methods (a ``RangeFile``, ``BytesSource``), which is left open.
    """

    def __init__(
        self,
        source: str | ByteSource,
        *,
        client: httpx.Client | None = None,
        footer_read: int = FOOTER_READ,
        **options: Any,
    ) -> None:
        if isinstance(source, str):
            self.source: ByteSource = RangeFile(source, client, FileOptions(**options))
            self._owned: RangeFile | None = self.source
        else:
            if client is not None or options:
                raise TypeError("client and file options apply to a URL, not to an open source")
            self.source = source
            self._owned = None
        try:
            self._size, self._footer_start, self._footer = self._read_footer(footer_read)
            self.metadata: Any = _pq.read_metadata(self._file({}))
        except BaseException:
            self.close()
            raise
        self.schema_arrow: Any = self.metadata.schema.to_arrow_schema()
        self.last_fallback_reads: list[tuple[int, int]] = []

    def _read_footer(self, footer_read: int) -> tuple[int, int, bytes]:
        """The file's size, and the bytes from the start of its footer to its end."""
        tail = self.source.read_tail(max(footer_read, 12))
        size = self.source.size
        if len(tail) < 12 or tail[-4:] != _MAGIC:
            raise ParquetFormatError(f"{_name(self.source)} does not end with {_MAGIC!r}")
        (length,) = struct.unpack("<I", tail[-8:-4])
        needed = length + 8
        if needed + 4 > size or length > _MAX_FOOTER:
            raise ParquetFormatError(f"{_name(self.source)}: a footer of {length} bytes")
        if needed > len(tail):  # a big footer: the rest of it, one more request
            tail = self.source.read_at(size - needed, size - len(tail)) + tail
        start = size - len(tail)
        return size, start, tail

    def _file(self, spans: dict[int, bytes]) -> _Prefetched:
        return _Prefetched(self.source, self._size, {**spans, self._footer_start: self._footer})

    @property
    def num_row_groups(self) -> int:
        return int(self.metadata.num_row_groups)

    def row_groups(self, filters: Any = None) -> list[int]:
        """The row groups whose statistics ``filters`` cannot rule out (all without)."""
        if filters is None:
            return list(range(self.num_row_groups))
        fragment = _ds.ParquetFileFormat().make_fragment(self._file({}))
        parts = fragment.split_by_row_group(_expression(filters), schema=self.schema_arrow)
        return sorted(group.id for part in parts for group in part.row_groups)

    def spans(
        self, columns: Sequence[str] | None = None, row_groups: Sequence[int] | None = None
    ) -> list[tuple[int, int]]:
        """The byte spans of the column chunks of ``columns`` (all: None; a top-level
        name takes its nested leaves too) in ``row_groups`` (all: None), in file order."""
        groups = range(self.num_row_groups) if row_groups is None else row_groups
        found: set[str] = set()
        spans: list[tuple[int, int]] = []
        for index in groups:
            if not 0 <= index < self.num_row_groups:
                raise InvalidRangeError(f"row group {index} of {self.num_row_groups}")
            group = self.metadata.row_group(index)
            for position in range(group.num_columns):
                chunk = group.column(position)
                name = _top_level(chunk.path_in_schema, columns)
                if columns is not None and name is None:
                    continue
                if name is not None:
                    found.add(name)
                spans.append(_chunk_span(chunk, self._size))
        if columns is not None and groups and (missing := set(columns) - found):
            raise KeyError(f"no column named {sorted(missing)} in {_name(self.source)}")
        return sorted(spans)

    def read(
        self,
        columns: Sequence[str] | None = None,
        *,
        row_groups: Sequence[int] | None = None,
        filters: Any = None,
        use_threads: bool = True,
    ) -> Any:
        """A ``pyarrow.Table`` of ``columns`` (all: None) from ``row_groups`` (all, or
        those ``filters`` may match), rows filtered by ``filters``: one batch of
        requests for every chunk it needs."""
        wanted = list(range(self.num_row_groups)) if row_groups is None else list(row_groups)
        if filters is not None:
            kept = set(self.row_groups(filters))
            wanted = [group for group in wanted if group in kept]
        needed = None if columns is None else list(columns)
        if needed is not None and filters is not None:
            needed += _filter_columns(filters, self.schema_arrow.names)
        spans = self.spans(needed, wanted) if wanted else []
        merged = [(group.start, group.stop) for group in coalesce(spans, 0)]
        datas = self.source.read_ranges(merged) if merged else []
        file = self._file(dict(zip((start for start, _ in merged), datas, strict=True)))
        fragment = _ds.ParquetFileFormat().make_fragment(file, row_groups=wanted)
        table = fragment.to_table(
            schema=self.schema_arrow,
            columns=None if columns is None else list(columns),
            filter=None if filters is None else _expression(filters),
            use_threads=use_threads,
        )
        self.last_fallback_reads = list(file.fallback_reads)
        return table

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> ParquetFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ParquetFile {_name(self.source)} {self.num_row_groups} row groups>"


def read_metadata(
    source: str | ByteSource, *, client: httpx.Client | None = None, **options: Any
) -> Any:
    """The file's ``pyarrow.parquet.FileMetaData``: one suffix request (two for a footer
    over 64 KiB)."""
    with ParquetFile(source, client=client, **options) as parquet:
        return parquet.metadata


def read_table(
    source: str | ByteSource,
    columns: Sequence[str] | None = None,
    *,
    row_groups: Sequence[int] | None = None,
    filters: Any = None,
    client: httpx.Client | None = None,
    use_threads: bool = True,
    **options: Any,
) -> Any:
    """``pyarrow.parquet.read_table(url, columns=..., filters=...)``, fetched as polars
    and DuckDB fetch: the footer, then the needed column chunks side by side."""
    with ParquetFile(source, client=client, **options) as parquet:
        return parquet.read(
            columns, row_groups=row_groups, filters=filters, use_threads=use_threads
        )


def _chunk_span(chunk: Any, size: int) -> tuple[int, int]:
    """Where a column chunk's pages are: from its dictionary page (or first data page)
    for ``total_compressed_size`` bytes. Some writers record a dictionary offset of 0
    for chunks without one; only offsets inside the file after the magic count."""
    offsets = [chunk.data_page_offset]
    if chunk.has_dictionary_page and chunk.dictionary_page_offset:
        offsets.append(chunk.dictionary_page_offset)
    start = min(offset for offset in offsets if offset is not None)
    stop = start + chunk.total_compressed_size
    if not 4 <= start < stop <= size:
        raise ParquetFormatError(f"a column chunk at [{start}, {stop}) of a {size}-byte file")
    return start, stop


def _top_level(path: str, columns: Sequence[str] | None) -> str | None:
    """The name among ``columns`` that selects the leaf at ``path`` (``a`` selects
    ``a.b.c``), else None."""
    if columns is None:
        return None
    for name in columns:
        if path == name or path.startswith(name + "."):
            return name
    return None


def _expression(filters: Any) -> Any:
    if isinstance(filters, _pa.compute.Expression):
        return filters
    return _pq.filters_to_expression(filters)


def _filter_columns(filters: Any, names: Sequence[str]) -> list[str]:
    """The top-level columns a filter reads: named by its tuples, or, for an
    ``Expression``, the column names its text shows (a name that only occurs in a
    literal costs its chunks' bytes, never a wrong row)."""
    if isinstance(filters, _pa.compute.Expression):
        text = str(filters)
        return [name for name in names if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text)]
    clauses = filters if filters and isinstance(filters[0], list) else [filters]
    found: list[str] = []
    for clause in clauses:
        for term in clause:
            column = term[0]
            name = column if isinstance(column, str) else ".".join(column)
            top = next((n for n in names if name == n or name.startswith(n + ".")), name)
            if top not in found:
                found.append(top)
    return found


def _name(source: ByteSource) -> str:
    return str(getattr(source, "url", type(source).__name__))
