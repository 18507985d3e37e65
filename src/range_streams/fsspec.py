"""An fsspec filesystem whose files are range-streams' own: ``rs+http://`` and ``rs+https://``
(and ``rshttp://``/``rshttps://``, for tools whose URL patterns refuse a ``+``, xarray's).

Needs the ``fsspec`` extra (``pip install 'range-streams[fsspec]'``). The protocols are
registered through the ``fsspec.specs`` entry point, so once range-streams is installed::

    import fsspec
    with fsspec.open("rs+https://example.org/data.parquet") as f:   # a BufferedRangeFile
        f.seek(-8, 2); f.read(8)

    import pyarrow.parquet as pq
    fs = fsspec.filesystem("rs+https", headers={"Authorization": "Bearer ..."})
    pq.read_metadata("rs+https://example.org/data.parquet", filesystem=fs)

It is an ``AsyncFileSystem`` (fsspec's ``async_impl``): every operation is a coroutine
(``_cat_file``, ``_cat_ranges``, ``_info``, ``_ls``, ``open_async``, ...) run by the
library's flows on an async client, with fsspec's sync wrappers for the blocking API.
``open`` hands out a sync ``BufferedRangeFile`` on a sync client, so reading a file costs
no trip through fsspec's event loop thread.

* ``cat_file(path, start, end)`` is one request for any slice (``read_slice``).
* ``cat_ranges`` reads each file's ranges through ``read_ranges``: coalesced, packed into
  multi-range requests, concurrent single ranges where the server has no multi-range.
* ``info`` learns the size with one suffix read of the file's last 64 KiB and keeps those
  bytes (``Known``): pyarrow asks ``info`` then reads the footer from the end, so a
  parquet footer costs one request in all, however often the file is opened.
* A directory URL lists what its index page links to (nginx/Apache autoindex, a bucket's
  HTML listing), as fsspec's http filesystem does; ``isdir`` is False for a file.
* A missing file (404/410) is ``range_streams.NotFoundError``, a ``FileNotFoundError``,
  so ``exists`` is False and a mapper raises ``KeyError`` (zarr's probing works).
* Request options (``headers``, ``auth``, ``timeout``, ``verify``, ... or
  ``client_options``, and fsspec http's ``client_kwargs``) are plain values: the
  filesystem pickles (Dask ships it to workers) unless given a live ``client``.
* ``cache=`` (a ``SharedCache`` or its directory; see docs/Cache.md) reads every file
  through a shared cache: a plain value, so the filesystem still pickles to Dask workers,
  which then share the directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import re
import sys
import weakref
from typing import Any

import httpx

from . import _exit
from ._buffered import DEFAULT_BUFFER_SIZE, BufferedRangeFile
from ._core.errors import (
    RemoteFileChangedError,
)
from ._core.listing import listed_urls
from ._core.protocol import RemoteState
from ._core.spans import Span
from ._core.urls import check_url
from ._flows.batch import BatchPolicy
from ._flows.commands import Flow
from ._flows.listing import fetch_page
from ._flows.slices import read_slice
from ._fsspec_support import (
    FILE_SETTINGS,
    FSSPEC_SETTINGS,
    Known,
    caught,
    client_kwargs_settings,
    file_slices,
    gather,
    is_sequence,
    slice_span,
    strategy_for,
)
from ._net.clients import make_async_client, make_client
from ._net.options import ClientOptions
from ._runtime.drivers import run_async, run_sync
from ._state.file_core import FileCore, FileOptions
from ._state.settings import CLIENT_SETTINGS, configure_remote, resolve_client_options
from .file import AsyncRangeFile, RangeFile

try:
    # Imported by name: fsspec ships no type information, and this keeps mypy from
    # needing it installed.
    _fsspec: Any = importlib.import_module("fsspec")
    _asyn: Any = importlib.import_module("fsspec.asyn")
    _utils: Any = importlib.import_module("fsspec.utils")
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "range_streams.fsspec needs fsspec: pip install 'range-streams[fsspec]'"
    ) from exc

__all__ = ["PROTOCOLS", "RangeFileSystem"]

PROTOCOLS = ("rs+http", "rs+https", "rshttp", "rshttps")
_SCHEME = re.compile(r"^(?:rs\+|rs)(https?)://", re.IGNORECASE)
_MADE = [False]  # whether this process made a filesystem (else nothing to wait for)


class RangeFileSystem(_asyn.AsyncFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Read-only files over HTTP(S) range requests, as range-streams' file objects.

    ``client`` (an ``httpx.Client``) or ``async_client`` (an ``httpx.AsyncClient``) are
    used as given; without them the filesystem makes its own from the request options:
    ``client_options`` (a ``ClientOptions``), its keywords (``headers=``, ``auth=``,
    ``timeout=``, ...), or fsspec http's ``client_kwargs``. ``options`` (a
    ``FileOptions``) or its keywords (``strategy=``, ``cache_bytes=``, ...) configure
    every file; ``block_size``/``cache_type`` pick a read strategy as fsspec's names
    mean. ``warm_seconds``: how long what was learned of a URL is trusted. ``simple_links``:
    whether bare URLs in an index page's text count as links, not only ``<a href>``.
    """

    protocol = PROTOCOLS
    root_marker = ""
    sep = "/"
    cachable = True

    def __init__(
        self,
        client: httpx.Client | None = None,
        options: FileOptions | None = None,
        warm_seconds: float = 30.0,
        *,
        async_client: httpx.AsyncClient | None = None,
        client_options: ClientOptions | None = None,
        client_kwargs: dict[str, Any] | None = None,
        block_size: int | None = None,
        cache_type: str | None = None,
        simple_links: bool = True,
        asynchronous: bool = False,
        loop: Any = None,
        batch_size: int | None = None,
        **storage_options: Any,
    ) -> None:
        unknown = sorted(set(storage_options) - CLIENT_SETTINGS - FILE_SETTINGS - FSSPEC_SETTINGS)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown option(s) {', '.join(unknown)}; it takes"
                f" request options ({', '.join(sorted(CLIENT_SETTINGS))}), file options"
                f" ({', '.join(sorted(FILE_SETTINGS))}), client_kwargs, block_size,"
                " cache_type, warm_seconds, simple_links and fsspec's"
                f" ({', '.join(sorted(FSSPEC_SETTINGS))})"
            )
        if client is not None and not isinstance(client, httpx.Client):
            raise TypeError(f"client must be an httpx.Client, not {type(client).__name__}")
        if async_client is not None and not isinstance(async_client, httpx.AsyncClient):
            raise TypeError(
                f"async_client must be an httpx.AsyncClient, not {type(async_client).__name__}"
            )
        base = {name: storage_options[name] for name in FSSPEC_SETTINGS if name in storage_options}
        super().__init__(asynchronous=asynchronous, loop=loop, batch_size=batch_size, **base)
        settings = {n: v for n, v in storage_options.items() if n in CLIENT_SETTINGS}
        settings.update(client_kwargs_settings(client_kwargs or {}))
        given = client if client is not None else async_client
        self.client_options = resolve_client_options(
            given, client_options, settings, type(self).__name__
        )
        file_settings = {n: v for n, v in storage_options.items() if n in FILE_SETTINGS}
        if options is not None and file_settings:
            raise TypeError("give FileOptions' keywords or options=FileOptions(...), not both")
        self.options = options if options is not None else FileOptions(**file_settings)
        self.block_size = block_size
        self.cache_type = cache_type
        strategy_for(self.options, block_size, cache_type)  # a bad one fails here, not later
        self.warm_seconds = warm_seconds
        self.simple_links = simple_links
        self.known = Known(warm_seconds)
        self._client = client
        self._given_async = async_client
        self._sync_client: httpx.Client | None = client
        self._async_clients: weakref.WeakKeyDictionary[Any, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        _MADE[0] = True

    # ---- pickling and identity ------------------------------------------------------------

    def __reduce__(self) -> Any:
        if self._client is not None or self._given_async is not None:
            raise TypeError(
                f"a {type(self).__name__} given a live client cannot be pickled (its"
                " sockets and locks cannot cross processes): configure it with headers=,"
                " auth=, ... or client_options=ClientOptions(...) instead, and each copy"
                " makes its own client"
            )
        return super().__reduce__()

    @property
    def fsid(self) -> str:
        return "rs+http"

    # ---- paths ------------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        """``rs+https://host/x`` -> ``https://host/x``: the path is the URL itself."""
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return _SCHEME.sub(r"\1://", str(_utils.stringify_path(path)))

    def unstrip_protocol(self, name: str) -> str:
        return "rs+" + name if name.startswith(("http://", "https://")) else name

    @classmethod
    def _parent(cls, path: str) -> str:
        parent: str = super()._parent(path)
        return parent if len(parent) > len("https://") else ""

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        return {}

    # ---- clients and flows -------------------------------------------------------------------

    def _sync(self) -> httpx.Client:
        if self._sync_client is None:
            self._sync_client = make_client(self.client_options)
        return self._sync_client

    def _async(self) -> httpx.AsyncClient | None:
        """The async client for the running loop (one per loop: connections belong to
        the loop they were opened on); None when only a sync client was given."""
        if self._given_async is not None:
            return self._given_async
        if self._client is not None:
            return None
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None or client.is_closed:
            client = make_async_client(self.client_options)
            self._async_clients[loop] = client
        return client

    async def _run(self, flow: Flow[Any]) -> Any:
        client = self._async()
        if client is None:  # a caller's sync client: its flows run on a worker thread
            assert self._client is not None
            return await asyncio.to_thread(run_sync, self._client, flow)
        return await run_async(client, flow)

    def _remote(self, url: str) -> tuple[RemoteState, tuple[int, bytes] | None]:
        remote = configure_remote(RemoteState(check_url(url)), self.client_options)
        return remote, self.known.seed(remote)

    async def _with_known(self, url: str, make: Any) -> Any:
        """``make(remote)``'s flow run with what is known of ``url``; once more afresh
        if the file changed since then (what was known is of another version)."""
        remote, _ = self._remote(url)
        seeded = remote.validators is not None
        try:
            result = await self._run(make(remote))
        except RemoteFileChangedError:
            if not seeded:
                raise
            self.known.forget(url)
            remote, _ = self._remote(url)
            result = await self._run(make(remote))
        self.known.learn(remote)
        return result

    # ---- files ------------------------------------------------------------------------------

    def _file_options(self, block_size: int | None, cache_type: str | None) -> FileOptions:
        return FileOptions(
            strategy=strategy_for(
                self.options,
                block_size if block_size is not None else self.block_size,
                cache_type if cache_type is not None else self.cache_type,
            ),
            cache_bytes=self.options.cache_bytes,
            tail_probe=self.options.tail_probe,
            retry=self.options.retry,
            limits=self.options.limits,
            batch=self.options.batch,
            require_ranges=self.options.require_ranges,
            # resolved already: None means none (not "whatever the environment says")
            cache=self.options.cache if self.options.cache is not None else False,
        )

    def _core(
        self,
        url: str,
        block_size: int | None = None,
        cache_type: str | None = None,
        cache_options: dict[str, Any] | None = None,
    ) -> FileCore:
        """A file's core, knowing what was learned of its URL (no redirect paid again,
        the tail kept by ``info``, the same pinned version)."""
        core = FileCore(url, self._file_options(block_size, cache_type))
        configure_remote(core.remote, self.client_options)
        tail = self.known.seed(core.remote)
        if tail is not None:
            core.cache.put(*tail)
        parts = (cache_options or {}).get("data") if cache_type == "parts" else None
        for (start, stop), data in (parts or {}).items():  # fsspec.parquet's known parts
            if len(data) == stop - start:
                core.cache.put(start, data)
        return core

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> BufferedRangeFile:
        if mode != "rb":
            raise ValueError(f"{type(self).__name__} is read-only: mode {mode!r}")
        cache_type = kwargs.pop("cache_type", None)
        kwargs.pop("compression", None)  # fsspec's open() has already handled it
        kwargs.pop("size", None)  # a caller's guess: the file's own answers tell it
        if kwargs:
            raise TypeError(f"open() got unknown option(s) {', '.join(sorted(kwargs))}")
        url = self._strip_protocol(path)
        core = self._core(url, block_size, cache_type, cache_options)
        raw = RangeFile._shared(core, self._sync(), self.client_options)
        raw._on_close = lambda: self.known.learn(core.remote)
        return BufferedRangeFile(raw, DEFAULT_BUFFER_SIZE)

    async def open_async(self, path: str, mode: str = "rb", **kwargs: Any) -> AsyncRangeFile:
        if mode != "rb" or kwargs.get("compression"):
            raise ValueError(f"{type(self).__name__}.open_async reads bytes: mode {mode!r}")
        url = self._strip_protocol(path)
        core = self._core(url, kwargs.get("block_size"), kwargs.get("cache_type"))
        client = self._async()
        if client is None:
            raise TypeError("open_async needs an async client: pass async_client=, not client=")
        return AsyncRangeFile._shared(core, client, self.client_options)

    # ---- reads ------------------------------------------------------------------------------

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """Bytes ``[start:end]`` as a slice reads them (negative from the end), in one
        request."""
        url = self._strip_protocol(path)
        start = None if start is None else int(start)
        end = None if end is None else int(end)
        options = self.options
        return await self._with_known(  # type: ignore[no-any-return]
            url, lambda remote: read_slice(remote, start, end, options.retry, options.limits)
        )

    async def _cat_ranges(
        self,
        paths: list[str],
        starts: Any,
        ends: Any,
        max_gap: int | None = None,
        batch_size: int | None = None,
        on_error: str = "return",
        **kwargs: Any,
    ) -> list[Any]:
        """The bytes of each ``(path, start, end)``: each file's ranges read as one batch
        (coalesced, multi-range, concurrent singles), the files concurrently."""
        if not isinstance(paths, list):
            raise TypeError("paths must be a list")
        starts = list(starts) if is_sequence(starts) else [starts] * len(paths)
        ends = list(ends) if is_sequence(ends) else [ends] * len(paths)
        if len(starts) != len(paths) or len(ends) != len(paths):
            raise ValueError("paths, starts and ends must be as long as each other")
        by_url: dict[str, list[int]] = {}
        for index, path in enumerate(paths):
            by_url.setdefault(self._strip_protocol(path), []).append(index)
        policy = self.options.batch
        if max_gap is not None:
            policy = BatchPolicy(
                max_gap=max_gap,
                max_ranges=policy.max_ranges,
                max_header_bytes=policy.max_header_bytes,
                concurrency=policy.concurrency,
                overhead_per_part=policy.overhead_per_part,
            )
        results: list[Any] = [None] * len(paths)
        jobs = []
        for url, indexes in by_url.items():
            remote, _ = self._remote(url)
            spans = [slice_span(starts[i], ends[i]) for i in indexes]
            jobs.append((url, indexes, remote, spans))
        flows = tuple(
            caught(self._file_ranges(remote, spans, policy)) for _, _, remote, spans in jobs
        )
        limit = batch_size or self.batch_size or policy.concurrency
        answers = await self._run(gather(flows, limit))
        for (_, indexes, remote, _), answer in zip(jobs, answers, strict=True):
            if isinstance(answer, BaseException):
                if on_error != "return":
                    raise answer
                for index in indexes:
                    results[index] = answer
                continue
            self.known.learn(remote)
            for index, data in zip(indexes, answer, strict=True):
                results[index] = data
        return results

    def _file_ranges(
        self, remote: RemoteState, spans: list[Span | None], policy: BatchPolicy
    ) -> Flow[list[bytes]]:
        """One file's slices: empty ones cost nothing, the rest one ``read_spans``."""
        wanted = [s for s in spans if s is not None]
        datas: list[bytes] = []
        if wanted:
            datas = yield from file_slices(remote, wanted, policy, self.options)
        found = iter(datas)
        return [b"" if s is None else next(found) for s in spans]

    # ---- metadata ---------------------------------------------------------------------------

    async def _info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self._strip_protocol(path)
        facts = self.known.facts(url)
        if facts is None or facts["total"] is None:
            core = self._core(url)
            total = await self._run(core.probe_tail())  # one suffix read: size and tail
            start = core.cache.next_start(-1)
            tail = None if start is None else (start, core.cache.read(start, total - start))
            self.known.learn(core.remote, tail)
            await self._run(core.close())
            facts = self.known.facts(url) or {}
        validators = facts.get("validators")
        etag = validators.etag if validators else None
        return {
            "name": url,
            "size": facts.get("total"),
            "type": "file",
            "etag": etag,
            "ETag": etag,
            "last_modified": validators.last_modified if validators else None,
            "url": facts.get("location") or url,
        }

    async def _ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        url = self._strip_protocol(path)
        if self.dircache.use_listings_cache and url in self.dircache:
            entries = self.dircache[url]
        else:
            entries = await self._list(url)
            self.dircache[url] = entries
        return entries if detail else [entry["name"] for entry in entries]

    async def _list(self, url: str) -> list[dict[str, Any]]:
        remote, _ = self._remote(url)
        page = await self._run(fetch_page(remote))
        if page.text is None:  # a file lists as itself, as fsspec's filesystems do
            return [{"name": url, "size": page.size, "type": "file"}]
        return [
            {"name": link, "size": None, "type": "directory" if link.endswith("/") else "file"}
            for link in listed_urls(page.text, url, self.simple_links)
        ]

    async def _isdir(self, path: str) -> bool:
        """A page of links is a directory; a file, or nothing there, is not."""
        url = self._strip_protocol(path)
        try:
            entries = await self._ls(url)
        except (FileNotFoundError, ValueError):
            return False
        return bool(entries) and not (len(entries) == 1 and entries[0]["name"] == url)

    async def _exists(self, path: str, **kwargs: Any) -> bool:
        try:
            await self._info(path)
        except FileNotFoundError:
            return False
        return True

    async def _glob(self, path: str, maxdepth: int | None = None, **kwargs: Any) -> Any:
        """fsspec's glob, with ``*``, ``**`` and ``[...]`` as patterns but ``?`` taken
        literally: in a URL it starts the query."""
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        detail = kwargs.pop("detail", False)
        ends_with_slash = path.endswith("/")
        path = self._strip_protocol(path)
        magic = [i for i in (path.find("*"), path.find("[")) if i >= 0]
        if not magic:
            if await self._exists(path):
                return {path: await self._info(path)} if detail else [path]
            return {} if detail else []
        first = min(magic)
        root = path[: path[:first].rindex("/") + 1] if "/" in path[:first] else ""
        levels = path[len(root) :].count("/") + 1
        depth: int | None = levels
        if "**" in path:  # as deep as maxdepth allows below the "**"
            below = path[path.find("**") :].count("/") + 1
            depth = None if maxdepth is None else levels - below + maxdepth
        found = await self._find(root, maxdepth=depth, withdirs=True, detail=True, **kwargs)
        pattern = re.compile(_utils.glob_translate(path + ("/" if ends_with_slash else "")))
        keep_slash = ends_with_slash or path.endswith(("/**", "/*"))
        matches = {
            (name.rstrip("/") if not keep_slash and info["type"] == "directory" else name): info
            for name, info in sorted(found.items())
            if pattern.match(name.rstrip("/"))
        }
        return matches if detail else list(matches)

    async def _get_file(self, rpath: str, lpath: str, **kwargs: Any) -> None:
        """Download ``rpath`` to the local ``lpath``, streamed in bounded chunks."""
        url = self._strip_protocol(rpath)
        core = self._core(url)
        file = RangeFile._shared(core, self._sync(), self.client_options)
        with open(lpath, "wb") as out:  # local disk, as fsspec does
            while chunk := await asyncio.to_thread(file.read, 1 << 20):
                out.write(chunk)
        await asyncio.to_thread(file.close)

    async def set_session(self) -> _Session:
        """The loop's client, as fsspec's http filesystem hands out its aiohttp session
        (``await session.close()`` closes it)."""
        client = self._async()
        if client is None:
            raise TypeError("this filesystem was given a sync client; it has no session")
        return _Session(client)

    @property
    def _session(self) -> _Session | None:
        try:
            client = self._async()
        except RuntimeError:  # no running loop
            return None
        return None if client is None else _Session(client)

    def close(self) -> None:
        """Close the clients this filesystem made (a caller's are left open)."""
        if self._client is None and self._sync_client is not None:
            self._sync_client.close()
            self._sync_client = None


class _Session:
    """A client as fsspec's http filesystem's session: ``await session.close()``."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def close(self) -> None:
        await self.client.aclose()


def _held_by_pyarrow() -> bool:
    """Whether pyarrow still holds one of our filesystems (``FSSpecHandler``): it lets go
    from one of its C++ threads, which must happen before the interpreter finalizes."""
    handler = getattr(sys.modules.get("pyarrow.fs"), "FSSpecHandler", None)
    if handler is None or not _MADE[0]:
        return False
    return any(
        isinstance(obj, handler) and isinstance(getattr(obj, "fs", None), RangeFileSystem)
        for obj in gc.get_objects()
    )


_exit.wait_for(_held_by_pyarrow)


def _register() -> None:
    """Make the protocols known to fsspec in this process too (the entry points do it
    for an installed package; this covers a package metadata older than a protocol)."""
    for protocol in PROTOCOLS:
        if protocol not in _fsspec.registry and protocol not in getattr(
            importlib.import_module("fsspec.registry"), "known_implementations", {}
        ):
            with contextlib.suppress(ValueError):
                _fsspec.register_implementation(protocol, RangeFileSystem)


_register()
