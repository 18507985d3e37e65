"""URL-level codec streams, compatible with range-streams 1.x: ``ZipStream(url)``,
``TarStream(url)``, ``CondaStream(url)``, ``PngStream(url)``.

Each is a ``RangeStream`` (so ``add``, ``ranges``, ``read``... work as before) whose
``reader`` is the codec over a ``RangeFile`` sharing the stream's client and its pinned
view of the remote file (length, validators): the two can never read different versions.
"""

from __future__ import annotations

from typing import Any

import httpx
from ranges import Range

from .._core.registry import PruningLevel
from .._state.response import RangeResponse
from .._state.stream_core import EMPTY_RANGE, ByteRange
from ..file import RangeFile
from ..stream import RangeStream
from .conda import CondaReader
from .png import PngReader
from .tar import TarInfo, TarReader
from .zip import ZipInfo, ZipReader

__all__ = ["CondaStream", "PngStream", "TarStream", "ZipStream"]


class _CodecStream(RangeStream):
    def __init__(
        self,
        url: str,
        client: httpx.Client | None = None,
        byte_range: ByteRange = EMPTY_RANGE,
        pruning_level: int | PruningLevel = PruningLevel.replant,
        single_request: bool = False,
        chunk_size: int | None = None,
        raise_response: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            url, client, byte_range, pruning_level, single_request, chunk_size, raise_response,
            **options,
        )  # fmt: skip
        self.file = RangeFile(self.url, self.client)
        self.file._core.remote = self.remote  # one pinned version for both views

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            super().close()


class _ArchiveStream(_CodecStream):
    """Listing and reading shared by the zip and tar streams."""

    reader: ZipReader | TarReader
    reader_class: type[ZipReader] | type[TarReader]

    def __init__(
        self,
        url: str,
        client: httpx.Client | None = None,
        *args: Any,
        scan_contents: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(url, client, *args, **kwargs)
        self.reader = self.reader_class(self.file)
        if scan_contents:
            self.reader.infolist()

    @property
    def filename_list(self) -> list[str]:
        return self.reader.namelist()

    def namelist(self) -> list[str]:
        return self.reader.namelist()

    def infolist(self) -> list[Any]:
        return self.reader.infolist()

    def read(self, member: Any = -1) -> bytes:
        """``read(name)`` extracts a member; ``read(size)`` reads the active range (1.x)."""
        if isinstance(member, (str, ZipInfo, TarInfo)):
            return self.reader.read(member)  # type: ignore[arg-type]
        return super().read(member)


class ZipStream(_ArchiveStream):
    """A remote zip: listing costs one request (two for a large directory).

    ``scan_contents`` lists the members at construction, as 1.x did; their data ranges
    are registered (named, unsent) on first use of ``ranges_by_name`` or by
    ``add_file_ranges()``, with one batched read of the local headers, never one request
    per entry.
    """

    reader: ZipReader
    reader_class = ZipReader
    _by_name: dict[str, RangeResponse] | None = None

    @property
    def zipped_files(self) -> list[ZipInfo]:
        return self.reader.infolist()

    def open_member(self, member: str | ZipInfo) -> Any:
        return self.reader.open(member)

    def read_many(self, members: list[str]) -> dict[str, bytes]:
        return self.reader.read_many(members)

    def add_file_ranges(self) -> dict[str, RangeResponse]:
        """Register each member's compressed data as a named range (no request yet)."""
        if self._by_name is None:
            spans = self.reader.data_spans(self.reader.namelist())
            self._by_name = {}
            for name, (start, stop) in spans.items():
                if start < stop:
                    self._by_name[name] = self._run(self._add_lazy(start, stop, name))
        return self._by_name

    @property
    def ranges_by_name(self) -> dict[str, RangeResponse]:
        """Each member's raw (compressed) data range, keyed by member name."""
        return self.add_file_ranges()

    def member_range(self, member: str) -> Range:
        return self.ranges_by_name[member].byte_range


class TarStream(_ArchiveStream):
    """A remote uncompressed tar, listed by hopping headers."""

    reader: TarReader
    reader_class = TarReader

    @property
    def tarred_files(self) -> list[TarInfo]:
        return self.reader.infolist()

    def open_member(self, member: str | TarInfo) -> Any:
        return self.reader.open(member)


class CondaStream(_CodecStream):
    """A remote ``.conda`` package: its info files without touching the payload."""

    def __init__(
        self, url: str, client: httpx.Client | None = None, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(url, client, *args, **kwargs)
        self.reader = CondaReader(self.file)

    @property
    def index_json(self) -> dict[str, Any]:
        return self.reader.index_json

    @property
    def paths_json(self) -> dict[str, Any]:
        return self.reader.paths_json

    def info_namelist(self) -> list[str]:
        return self.reader.info_namelist()

    def read_info_file(self, path: str) -> bytes:
        return self.reader.read_info_file(path)


class _PngData:
    """1.x's ``PngStream(url).data.IHDR``."""

    def __init__(self, reader: PngReader) -> None:
        self._reader = reader

    @property
    def IHDR(self) -> Any:
        return self._reader.ihdr


class PngStream(_CodecStream):
    """A remote PNG: chunk table and header from one read, pixels on request."""

    def __init__(
        self, url: str, client: httpx.Client | None = None, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(url, client, *args, **kwargs)
        self.reader = PngReader(self.file)
        self.data = _PngData(self.reader)

    @property
    def chunks(self) -> Any:
        return self.reader.chunks

    @property
    def alpha_as_direct(self) -> bool:
        return self.reader.alpha_as_direct

    @property
    def channel_count_as_direct(self) -> int:
        return self.reader.channel_count_as_direct

    def get_idat_data(self) -> bytes:
        return self.reader.get_idat_data()
