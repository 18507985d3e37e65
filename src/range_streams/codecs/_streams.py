"""URL-level codec streams, compatible with range-streams 1.x: ``ZipStream(url)``,
``TarStream(url)``, ``CondaStream(url)`` (and ``PngStream``, in ``_png_stream``).

Each is a ``RangeStream`` (so ``add``, ``ranges``, ``read``... work as before) whose
``reader`` is the codec over a ``RangeFile`` sharing the stream's client and its pinned
view of the remote file (length, validators): the two can never read different versions.

1.x listed an archive at construction (``scan_contents``/``scan_headers``) and registered
each member's data as a named range, one request per member. Here the listing costs one
or two requests, and the members' ranges are registered, unsent, on the first use of the
stream's own range API (``ranges``, ``add``, ``read()``, ...) or of ``add_file_ranges``,
with one batched read of the local headers; reading members by name never needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from ranges import Range

from .._core.registry import PruningLevel
from .._flows.commands import Flow
from .._state.response import RangeResponse
from .._state.stream_core import EMPTY_RANGE, ByteRange
from ..file import RangeFile
from ..stream import RangeStream
from ._errors import MemberNotFoundError
from ._legacy import COMPRESSIONS, TarData, ZipData, decompress
from .conda import CondaReader
from .tar import TarInfo, TarReader
from .zip import LocatedZipInfo, ZipInfo, ZipReader

__all__ = ["CondaStream", "TarStream", "ZipStream"]


class _CodecStream(RangeStream):
    """A ``RangeStream`` with a ``RangeFile`` (``file``) over the same remote file."""

    def __init__(
        self,
        url: str,
        client: httpx.Client | None = None,
        byte_range: ByteRange = EMPTY_RANGE,
        pruning_level: int | PruningLevel = PruningLevel.replant,
        single_request: bool = False,
        force_async: bool = False,
        chunk_size: int | None = None,
        raise_response: bool = True,
        **options: Any,
    ) -> None:
        # options: RangeStream's keywords (retry, limits, cache, request options such as
        # headers= or client_options=), which the stream's client is made from.
        super().__init__(
            url, client, byte_range, pruning_level, single_request, force_async, chunk_size,
            raise_response, **options,
        )  # fmt: skip
        self.file = RangeFile(self.url, self.client)
        self.file._core.remote = self.remote  # one pinned version for both views

    def set_client(self, client: httpx.Client | None, force_async: bool = False) -> None:
        super().set_client(client, force_async)
        self.file.client = self.client  # the codec reads through the same client

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            super().close()


class _ArchiveStream(_CodecStream):
    """Listing, member ranges and reading shared by the zip and tar streams."""

    reader_class: type[ZipReader] | type[TarReader]

    def _set_up(self, scan: bool) -> None:
        self._reader: Any = None
        self._by_name: dict[str, RangeResponse] | None = None
        if scan:
            self._list()
            self._on_first_use = self._register_members

    def _list(self) -> Any:
        if self._reader is None:
            self._reader = self.reader_class(self.file)
        return self._reader

    @property
    def filename_list(self) -> list[str]:
        return self._list().namelist()  # type: ignore[no-any-return]

    def namelist(self) -> list[str]:
        return self._list().namelist()  # type: ignore[no-any-return]

    def infolist(self) -> list[Any]:
        return self._list().infolist()  # type: ignore[no-any-return]

    def read(self, size: Any = -1) -> bytes:
        """``read(name)`` extracts a member; ``read(size)`` reads the active range (1.x)."""
        if isinstance(size, (str, ZipInfo, TarInfo)):
            return self._list().read(size)  # type: ignore[no-any-return]
        return super().read(size)

    def _member_spans(self) -> dict[str, tuple[int, int]]:
        raise NotImplementedError

    def add_file_ranges(self) -> dict[str, RangeResponse]:
        """Register each member's data as a range named after it (sent when first read),
        once; the ranges by name."""
        if self._by_name is None:
            spans = self._member_spans()
            self._by_name = self._run(self._register_spans(spans))
            self._on_first_use = None
        return self._by_name

    def _register_members(self) -> None:
        registered = self.add_file_ranges()
        if self._active is None and registered:
            # 1.x added each member in turn, so the last one was active.
            self._activate(next(reversed(registered.values())))

    def _register_spans(self, spans: dict[str, tuple[int, int]]) -> Flow[dict[str, RangeResponse]]:
        registered: dict[str, RangeResponse] = {}
        for name, (start, stop) in spans.items():
            if start < stop:
                response = yield from self._add_lazy(start, stop, name)
                registered[name] = response
        return registered

    @property
    def ranges_by_name(self) -> dict[str, RangeResponse]:
        """Each member's raw (stored) data range, keyed by member name."""
        return self.add_file_ranges()

    def member_range(self, member: str) -> Range:
        return self.ranges_by_name[member].byte_range


class ZipStream(_ArchiveStream):
    """A remote zip: listing costs one request (two for a large directory).

    1.x's attributes are here: ``zipped_files`` (each a ``ZipInfo``, which also answers to
    1.x's ``ZippedFileInfo`` names, ``file_range`` included), ``data`` (where the central
    directory and its end record are), ``get_central_dir_bytes``, ``check_*`` and
    ``decompress_zipped_file``.
    """

    reader_class = ZipReader

    def __init__(
        self,
        url: str,
        client: httpx.Client | None = None,
        byte_range: ByteRange = EMPTY_RANGE,
        pruning_level: int | PruningLevel = PruningLevel.replant,
        single_request: bool = False,
        force_async: bool = False,
        chunk_size: int | None = None,
        raise_response: bool = True,
        scan_contents: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            url, client, byte_range, pruning_level, single_request, force_async, chunk_size,
            raise_response, **options,
        )  # fmt: skip
        self.data = ZipData()
        self._zipped: list[ZipInfo] | None = None
        self._set_up(scan_contents)
        if scan_contents:
            self.check_end_of_central_dir_rec()

    @property
    def reader(self) -> ZipReader:
        return self._list()  # type: ignore[no-any-return]

    def check_head_bytes(self) -> None:
        """Check that the file starts with a local file header's signature."""
        start_sig = self.data.LOC_F_H.start_sig
        head = self.file.read_at(0, len(start_sig))
        if head != start_sig:
            raise ValueError(f"Invalid zip header sequence {head!r}: expected {start_sig!r}")

    def check_end_of_central_dir_start(self) -> None:
        """Find the end-of-central-directory record (``data.E_O_CTRL_DIR_REC.start_pos``)."""
        self.data.E_O_CTRL_DIR_REC.start_pos = self.reader.eocd_offset

    def check_end_of_central_dir_rec(self) -> None:
        """Fill ``data.CTRL_DIR_REC``: the directory's entry count, size and start."""
        reader = self.reader
        self.check_end_of_central_dir_start()
        record = self.data.CTRL_DIR_REC
        record.entry_count = len(reader.infolist())
        record.size = reader.directory_size
        record.start_pos = reader.directory_offset

    def check_central_dir_rec(self) -> None:
        """List the members into ``zipped_files``."""
        self.check_end_of_central_dir_rec()
        _ = self.zipped_files

    def get_central_dir_bytes(self, step: int = 20) -> bytes:
        """The bytes from the central directory's start to the end record's (``step``
        was 1.x's search stride; the directory's position is known here)."""
        reader = self.reader
        return self.file.read_at(reader.directory_offset, reader.eocd_offset)

    @property
    def zipped_files(self) -> list[ZipInfo]:
        """The members in directory order, each a ``LocatedZipInfo`` (its ``data_offset``
        and ``file_range`` read from its local header; one batched read for all, the
        first time), except encrypted ones, which stay ``ZipInfo``."""
        if self._zipped is None:
            infos = self.reader.infolist()
            plain = [info for info in infos if not info.is_encrypted]
            spans = iter(self.reader.data_span_list(plain, check_method=False))
            self._zipped = [
                info if info.is_encrypted else LocatedZipInfo.at(info, next(spans)[0])
                for info in infos
            ]
        return self._zipped

    def _member_spans(self) -> dict[str, tuple[int, int]]:
        return {
            info.filename: (info.file_range.start, info.file_range.end)
            for info in self.zipped_files
            if isinstance(info, LocatedZipInfo)
        }

    def open_member(self, member: str | ZipInfo) -> Any:
        return self.reader.open(member)

    def read_many(self, members: list[str]) -> dict[str, bytes]:
        return self.reader.read_many(members)

    def decompress_zipped_file(
        self, zf_info: ZipInfo, method: str | None = None, ext: str | None = None
    ) -> Any:
        """A member decompressed once more by the compression its name (or ``ext``, or
        ``method``: ``gz``, ``xz``, ``bz2``, ``zst``) says, e.g. a conda package's
        ``.tar.zst``: a ``TarFile`` for a tar, else a binary file object."""
        name = zf_info.filename
        archive = None
        if method is None:
            suffix_of = ext or name
            found = next(((e, m) for e, m in COMPRESSIONS.items() if suffix_of.endswith(e)), None)
            if found is None:
                raise ValueError(f"Could not detect '{zf_info}' compression method")
            matched, method = found
            archive = "tar" if ".tar" in name or (ext or matched).startswith(".t") else None
        elif method not in COMPRESSIONS.values():
            raise ValueError(f"{method} is not a valid option ({COMPRESSIONS=})")
        return decompress(self.reader.read(zf_info), method=method, archive=archive)


class TarStream(_ArchiveStream):
    """A remote uncompressed tar, listed by hopping headers.

    1.x's attributes are here: ``tarred_files`` (each a ``TarInfo``, which also answers to
    1.x's ``TarredFileInfo`` names), ``data``, ``check_header_recs``, ``read_file_name``,
    ``read_file_size``.
    """

    reader_class = TarReader

    def __init__(
        self,
        url: str,
        client: httpx.Client | None = None,
        byte_range: ByteRange = EMPTY_RANGE,
        pruning_level: int | PruningLevel = PruningLevel.replant,
        scan_headers: bool = True,
        single_request: bool = False,
        force_async: bool = False,
        chunk_size: int | None = None,
        raise_response: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            url, client, byte_range, pruning_level, single_request, force_async, chunk_size,
            raise_response, **options,
        )  # fmt: skip
        self.data = TarData()
        self._set_up(scan_headers)

    @property
    def reader(self) -> TarReader:
        return self._list()  # type: ignore[no-any-return]

    @property
    def tarred_files(self) -> list[TarInfo]:
        return self.reader.infolist()

    def check_header_recs(self) -> None:
        """List the members (``tarred_files``)."""
        self._list()

    def _header_field(self, offset: int, start: int, size: int) -> bytes:
        return self.file.read_at(offset + start, offset + start + size)

    def read_file_name(self, start_pos_offset: int = 0) -> str:
        """The name field of the header block at ``start_pos_offset``; ``StopIteration``
        if the block is padding (the end of the archive)."""
        header = self.data.HEADER
        raw = self._header_field(
            start_pos_offset, header._H_FILENAME_START, header._H_FILENAME_SIZE
        ).rstrip(b"\x00")
        if raw == b"":
            raise StopIteration("Expected file name, got padding bytes")
        return raw.decode("ascii")

    def read_file_size(self, start_pos_offset: int = 0) -> int:
        """The size field (octal) of the header block at ``start_pos_offset``."""
        header = self.data.HEADER
        raw = self._header_field(
            start_pos_offset, header._H_FILE_SIZE_START, header._H_FILE_SIZE_SIZE
        )
        return int(raw.rstrip(b"\x00 ") or b"0", 8)

    def _member_spans(self) -> dict[str, tuple[int, int]]:
        return {
            info.name: (info.file_range.start, info.file_range.end)
            for info in self.tarred_files
            if info.isreg()
        }

    def open_member(self, member: str | TarInfo) -> Any:
        return self.reader.open(member)


class CondaStream(ZipStream):
    """A remote ``.conda`` package: a zip (as in 1.x, a ``ZipStream``) whose info files are
    read without touching the payload (``index_json``, ``paths_json``, ...).

    ``meta_json``, ``info_tzst`` and ``pkg_tzst`` are its three members (1.x's
    ``validate_files`` names); ``decompress_zipped_file(stream.pkg_tzst)`` opens the
    payload tar (fetching all of it).
    """

    def __init__(
        self,
        url: str,
        client: httpx.Client | None = None,
        byte_range: ByteRange = EMPTY_RANGE,
        pruning_level: int | PruningLevel = PruningLevel.replant,
        single_request: bool = False,
        force_async: bool = False,
        chunk_size: int | None = None,
        raise_response: bool = True,
        scan_contents: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            url, client, byte_range, pruning_level, single_request, force_async, chunk_size,
            raise_response, scan_contents, **options,
        )  # fmt: skip
        self._conda: CondaReader | None = None
        if scan_contents:
            self.validate_files()

    @property
    def conda(self) -> CondaReader:
        """The package reader, over this stream's own zip listing."""
        if self._conda is None:
            self._conda = CondaReader(self.file, zip_reader=self.reader)
        return self._conda

    def validate_files(self) -> None:
        """Check there is one ``info-*.tar.zst``, one ``pkg-*.tar.zst`` and a
        ``metadata.json`` (ValueError otherwise)."""
        names = self.filename_list
        info = [n for n in names if n.startswith("info-") and n.endswith(".tar.zst")]
        pkg = [n for n in names if n.startswith("pkg-") and n.endswith(".tar.zst")]
        if len(info) != 1 or len(pkg) != 1 or "metadata.json" not in names:
            raise ValueError(f"Invalid .conda archive: its members are {names}")

    def _member(self, predicate: Callable[[str], bool]) -> ZipInfo:
        for info in self.zipped_files:
            if predicate(info.filename):
                return info
        raise MemberNotFoundError("Invalid .conda archive: a member is missing")

    @property
    def meta_json(self) -> ZipInfo:
        return self._member(lambda name: name == "metadata.json")

    @property
    def info_tzst(self) -> ZipInfo:
        return self._member(lambda name: name.startswith("info-") and name.endswith(".tar.zst"))

    @property
    def pkg_tzst(self) -> ZipInfo:
        return self._member(lambda name: name.startswith("pkg-") and name.endswith(".tar.zst"))

    @property
    def index_json(self) -> dict[str, Any]:
        return self.conda.index_json

    @property
    def paths_json(self) -> dict[str, Any]:
        return self.conda.paths_json

    def info_namelist(self) -> list[str]:
        return self.conda.info_namelist()

    def read_info_file(self, path: str) -> bytes:
        return self.conda.read_info_file(path)
