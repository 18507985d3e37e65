"""An fsspec filesystem whose files are range-streams' own: ``rs+http://`` and ``rs+https://``.

Needs the ``fsspec`` extra (``pip install 'range-streams[fsspec]'``). The protocols are
registered through the ``fsspec.specs`` entry point, so once range-streams is installed::

    import fsspec
    with fsspec.open("rs+https://example.org/data.parquet") as f:   # a RangeFile
        f.seek(-8, 2); f.read(8)

    import pyarrow.parquet as pq
    fs = fsspec.filesystem("rs+https")
    pq.read_metadata("rs+https://example.org/data.parquet", filesystem=fs)

A path is the URL with ``rs+`` in front of its scheme (a plain ``https://`` URL is taken
too). ``open`` returns a ``range_streams.RangeFile``: an ``io.RawIOBase`` with ``read``,
``seek``, ``tell``, ``size``, ``read_at``, ``read_ranges`` and ``close``, which is what
pyarrow, pandas and the ``zipfile``/``tarfile`` modules need.

``info(path)`` learns the size with one suffix read of the file's last 64 KiB, and hands
that file (bytes and validators) to the next ``open`` of the same path within
``warm_seconds``: pyarrow checks ``info`` before opening, then reads the footer from the
end, so reading a parquet footer costs one request in all, not two. A URL names one
file: ``ls`` lists just that file, and there are no directories.

``cache=`` (a ``SharedCache`` or its directory; see docs/Cache.md) reads every file
through a shared cache: a plain value, so the filesystem still pickles to Dask workers,
which then share the directory.
"""

from __future__ import annotations

import copy
import importlib
import io
import threading
import time
from collections import OrderedDict
from typing import Any

import httpx

from ._core.errors import HTTPStatusError
from ._net.clients import make_client
from ._state.file_core import FileOptions
from ._state.shared_cache import CacheChoice, resolve_cache
from .file import RangeFile

try:
    # Imported by name: fsspec ships no type information, and this keeps mypy from
    # needing it installed.
    _AbstractFileSystem: Any = importlib.import_module("fsspec.spec").AbstractFileSystem
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "range_streams.fsspec needs fsspec: pip install 'range-streams[fsspec]'"
    ) from exc

__all__ = ["PROTOCOLS", "RangeFileSystem"]

PROTOCOLS = ("rs+http", "rs+https")
WARM_FILES = 8  # files kept between info() and open(); more are closed, oldest first


class RangeFileSystem(_AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Read-only files over HTTP(S) range requests, as range-streams' ``RangeFile``."""

    protocol = PROTOCOLS
    root_marker = ""
    cachable = True

    def __init__(
        self,
        client: httpx.Client | None = None,
        options: FileOptions | None = None,
        warm_seconds: float = 30.0,
        cache: CacheChoice = None,
        **storage_options: Any,
    ) -> None:
        super().__init__(**storage_options)
        self.client = client if client is not None else make_client()
        if cache is not None:  # the shared cache's seam: every file of this filesystem uses it
            options = copy.copy(options) if options is not None else FileOptions()
            options.cache = resolve_cache(cache)
        self.options = options
        self.warm_seconds = warm_seconds
        self._warm: OrderedDict[str, tuple[float, RangeFile]] = OrderedDict()
        self._lock = threading.Lock()

    # -- paths -----------------------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        """``rs+https://host/x`` -> ``https://host/x``: the path is the URL itself."""
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(path)
        for protocol in PROTOCOLS:
            if text.startswith(protocol + "://"):
                return text[len("rs+") :]
        return text

    def unstrip_protocol(self, name: str) -> str:
        return "rs+" + name if name.startswith(("http://", "https://")) else name

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        return {}

    # -- files -----------------------------------------------------------------------------
    def _new_file(self, url: str) -> RangeFile:
        return RangeFile(url, self.client, self.options)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> RangeFile:
        if mode != "rb":
            raise ValueError(f"{type(self).__name__} is read-only: mode {mode!r}")
        url = self._strip_protocol(path)
        file = self._take_warm(url)
        if file is None:
            file = self._new_file(url)
        return file

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self._strip_protocol(path)
        file = self._peek_warm(url)
        if file is None:
            file = self._probe(path, url)
            self._keep_warm(url, file)
        validators = file._core.remote.validators
        return {
            "name": url,
            "size": file._core.remote.total,
            "type": "file",
            "etag": validators.etag if validators else None,
            "last_modified": validators.last_modified if validators else None,
        }

    def _probe(self, path: str, url: str) -> RangeFile:
        file = self._new_file(url)
        try:
            size = file.seek(0, io.SEEK_END)  # one suffix read: the size, and the tail kept
            file.seek(0)
        except HTTPStatusError as error:
            file.close()
            if error.response.status_code in (404, 410):
                raise FileNotFoundError(path) from error
            raise
        except BaseException:
            file.close()
            raise
        assert size == file._core.remote.total
        return file

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        entry = self.info(path)
        return [entry] if detail else [entry["name"]]

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """Bytes ``[start, end)``, negative offsets counting from the end, as in a slice."""
        with self._open(path) as file:
            begin, stop, _ = slice(start, end).indices(file.size)
            return file.read_at(begin, stop) if stop > begin else b""

    # -- the info() -> open() hand-off ------------------------------------------------------
    def _keep_warm(self, url: str, file: RangeFile) -> None:
        with self._lock:
            previous = self._warm.pop(url, None)
            self._warm[url] = (time.monotonic(), file)
            evicted = [previous[1]] if previous else []
            while len(self._warm) > WARM_FILES:
                evicted.append(self._warm.popitem(last=False)[1][1])
        for stale in evicted:
            stale.close()

    def _peek_warm(self, url: str) -> RangeFile | None:
        """A fresh warm file for ``url`` left in place: a repeated ``info`` costs nothing."""
        with self._lock:
            entry = self._warm.get(url)
        if entry is None or time.monotonic() - entry[0] > self.warm_seconds:
            return None
        return entry[1]

    def _take_warm(self, url: str) -> RangeFile | None:
        with self._lock:
            entry = self._warm.pop(url, None)
        if entry is None:
            return None
        created, file = entry
        if time.monotonic() - created > self.warm_seconds or file.closed:
            file.close()  # the file may have changed since: start afresh
            return None
        return file
