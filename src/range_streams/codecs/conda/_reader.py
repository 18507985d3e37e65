"""``CondaReader``: a ``.conda`` package's metadata without downloading its payload.

A ``.conda`` file is a stored (uncompressed) zip of three members: ``metadata.json``,
``info-<name>.tar.zst`` (the package's ``info/`` directory: index.json, paths.json,
...; small) and ``pkg-<name>.tar.zst`` (the files; possibly huge). Listing costs the
zip's one or two reads; the first question about ``info/`` costs one more read, of the
info member only, which is decompressed and parsed in memory. The pkg member is
fetched only by ``pkg_tar()`` / ``read_pkg_file()``.
"""

from __future__ import annotations

import json
from typing import Any

from ..._core.source import ByteSource, BytesSource
from .._errors import ArchiveFormatError
from ..tar import TarReader
from ..zip import ZipInfo, ZipReader

__all__ = ["INFO_MAX_SIZE", "PKG_MAX_SIZE", "CondaReader"]

#: The most decompressed ``info/`` tar held in memory (real ones are kilobytes to a few MB).
INFO_MAX_SIZE = 64 * 1024 * 1024
#: The most decompressed payload tar ``pkg_tar()`` holds in memory unless told otherwise.
PKG_MAX_SIZE = 1024 * 1024 * 1024

_METADATA = "metadata.json"
_SUFFIX = ".tar.zst"


class CondaReader:
    """The members, metadata and ``info/`` files of a ``.conda`` package."""

    def __init__(self, source: ByteSource, *, zip_reader: ZipReader | None = None) -> None:
        """``zip_reader``: the source's zip listing, if already read (``CondaStream``
        shares its own)."""
        self.source = source
        self.zip = zip_reader if zip_reader is not None else ZipReader(source)
        names = self.zip.namelist()
        info = [n for n in names if n.startswith("info-") and n.endswith(_SUFFIX)]
        pkg = [n for n in names if n.startswith("pkg-") and n.endswith(_SUFFIX)]
        if len(info) != 1 or len(pkg) != 1:
            raise ArchiveFormatError(
                "not a .conda package: it needs one info-*.tar.zst and one pkg-*.tar.zst"
                f" member, and holds {names}"
            )
        self._info_name, self._pkg_name = info[0], pkg[0]
        self._info_tar: TarReader | None = None
        self._pkg_tar: TarReader | None = None

    @property
    def name(self) -> str:
        """The package's file stem, e.g. ``numpy-1.26.4-py312h8753938_0``."""
        return self._info_name[len("info-") : -len(_SUFFIX)]

    @property
    def metadata(self) -> dict[str, Any]:
        """``metadata.json`` (the .conda format version)."""
        return _parse_json(self.zip.read(_METADATA), _METADATA)

    def info_member(self) -> ZipInfo:
        return self.zip.getinfo(self._info_name)

    def pkg_member(self) -> ZipInfo:
        """Where the payload is, and how big: nothing is fetched."""
        return self.zip.getinfo(self._pkg_name)

    def info_tar(self) -> TarReader:
        """The ``info/`` tar, decompressed in memory (fetched on first use, then kept)."""
        if self._info_tar is None:
            compressed = BytesSource(self.zip.read(self._info_name))
            self._info_tar = TarReader.from_compressed(compressed, max_size=INFO_MAX_SIZE)
        return self._info_tar

    def info_namelist(self) -> list[str]:
        return self.info_tar().namelist()

    def read_info_file(self, path: str) -> bytes:
        """A file from ``info/``, by its path in the tar (``info/index.json``)."""
        return self.info_tar().read(path)

    @property
    def index_json(self) -> dict[str, Any]:
        return _parse_json(self.read_info_file("info/index.json"), "info/index.json")

    @property
    def paths_json(self) -> dict[str, Any]:
        return _parse_json(self.read_info_file("info/paths.json"), "info/paths.json")

    def pkg_tar(self, *, max_size: int = PKG_MAX_SIZE) -> TarReader:
        """The payload tar, decompressed in memory: this fetches the whole pkg member."""
        if self._pkg_tar is None:
            compressed = BytesSource(self.zip.read(self._pkg_name))
            self._pkg_tar = TarReader.from_compressed(compressed, max_size=max_size)
        return self._pkg_tar

    def read_pkg_file(self, path: str) -> bytes:
        """One payload file, by its path in the tar (fetches the whole pkg member)."""
        return self.pkg_tar().read(path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError as error:
        raise ArchiveFormatError(f"{what} is not valid JSON: {error}") from error
    if not isinstance(parsed, dict):
        raise ArchiveFormatError(f"{what} is not a JSON object")
    return parsed
