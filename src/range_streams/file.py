"""Standard file objects over a URL: ``range_streams.open(url)``.

``RangeFile`` is an ``io.RawIOBase``, so ``zipfile``, ``tarfile``, Pillow and pyarrow take
it as is; ``AsyncRangeFile`` offers the same with ``await``. Both also implement the
``ByteSource`` protocol the codecs read through (``size``, ``read_at``, ``read_ranges``,
``read_tail``). The logic lives in ``FileCore``; these classes only pick a driver.
``open`` wraps a ``RangeFile`` as the built-in ``open`` wraps a raw file: buffered
(``BufferedRangeFile``) or as text (``TextRangeFile``), in ``_buffered``.

A file pickles (Dask ships open files to its workers) to one that reopens the same URL
at the same position, with the same pinned validators, so the copy reads the same
version or raises ``RemoteFileChangedError``. Only a live client of the caller's cannot
be pickled: the copy makes its own client from the same ``ClientOptions``.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

import httpx

from . import _exit
from ._core.cache_stats import CacheStats
from ._core.protocol import FILE_FACTS, RemoteState
from ._flows.commands import Flow
from ._net.clients import make_async_client, make_client
from ._net.options import ClientOptions
from ._runtime.drivers import run_async, run_sync
from ._state.file_core import FILE_SETTINGS, FileCore, FileOptions
from ._state.settings import client_settings, configure_remote, resolve_client_options

T = TypeVar("T")

__all__ = ["AsyncRangeFile", "RangeFile", "open", "open_async"]

_PAST_ANY_END = 1 << 62  # an advised stop beyond any file: its answer says where it ends


class _FileFacts:
    """What a file is, and where it stands: answered from its ``FileCore`` without I/O,
    so ``RangeFile`` and ``AsyncRangeFile`` share one copy (docs/Design.md, "Sync and
    async twins")."""

    _core: FileCore
    _client_options: ClientOptions

    @property
    def url(self) -> str:
        return self._core.url

    @property
    def name(self) -> str:
        """The URL (a file's ``name`` is what it was opened from)."""
        return self._core.url

    @property
    def mode(self) -> str:
        return "rb"

    @property
    def options(self) -> FileOptions:
        return self._core.options

    @property
    def client_options(self) -> ClientOptions:
        """The request options the file's client was made with (or was given with)."""
        return self._client_options

    @property
    def known_size(self) -> int | None:
        """The file's length if a response has told it already, else None (no I/O)."""
        return self._core.remote.total

    @property
    def requests_sent(self) -> int:
        return self._core.remote.requests_sent

    @property
    def cache_stats(self) -> CacheStats | None:
        """What the shared cache did for this file so far (None without one)."""
        shared = self._core.shared
        return None if shared is None else shared.counter.snapshot()

    def tell(self) -> int:
        self._core._check()
        return self._core.position

    def advise(self, start: int, stop: int) -> None:
        """Hint that ``[start, stop)`` will be read through in order: one request for it."""
        self._core.advise(start, stop)


class RangeFile(_FileFacts, io.RawIOBase):
    """A remote file, read-only and seekable, fetched by range requests as it is read.

    ``client`` is used as given (and left open); without one the file makes its own from
    ``client_options`` (``ClientOptions``: headers, auth, timeout, ...) and closes it.
    """

    def __init__(
        self,
        url: str,
        client: httpx.Client | None = None,
        options: FileOptions | None = None,
        *,
        client_options: ClientOptions | None = None,
    ) -> None:
        super().__init__()
        if client is not None and not isinstance(client, httpx.Client):
            raise TypeError(f"RangeFile needs an httpx.Client, not {type(client).__name__}")
        self._client_options = resolve_client_options(client, client_options, {}, "RangeFile")
        self._core = FileCore(url, options or FileOptions())
        configure_remote(self._core.remote, self._client_options)
        self._owns_client = client is None
        # Whether the client came from ``_client_options`` (ours, or a filesystem's made
        # so): then a pickled copy can make an equal one.
        self._options_client = client is None
        # Set by BufferedRangeFile around a read: how many bytes its caller asked for,
        # so a buffer refill after a seek asks the read strategy for no more than that.
        self._read_limit: int | None = None
        self._refills = False  # True once a BufferedRangeFile reads through this file
        self._on_close: Callable[[], None] | None = None  # told once the file closes
        self.client = client if client is not None else make_client(self._client_options)

    @classmethod
    def _shared(
        cls,
        core: FileCore,
        client: httpx.Client,
        client_options: ClientOptions,
    ) -> RangeFile:
        """A file around ``core`` on a client made from ``client_options`` that someone
        else (a filesystem) owns and closes: picklable, as such a client can be remade."""
        file = cls.__new__(cls)
        io.RawIOBase.__init__(file)
        file._client_options = client_options
        file._core = core
        configure_remote(core.remote, client_options)
        file._owns_client = False
        file._options_client = True
        file._read_limit = None
        file._refills = False
        file._on_close = None
        file.client = client
        return file

    def _run(self, flow: Flow[T]) -> T:
        with _exit.guard():  # see _exit: no I/O once the interpreter shuts down
            return run_sync(self.client, flow)

    def __repr__(self) -> str:
        return f"<RangeFile {self.url!r} at {self._core.position}>"

    # ---- pickling -----------------------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen_raw, (_file_state(self, self.tell()),))

    # ---- what the file is (beyond _FileFacts) -------------------------------------------

    @property
    def size(self) -> int:
        """The file's length (one small request the first time, unless already known)."""
        return self._run(self._core.size())

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    # ---- reading ------------------------------------------------------------------------

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._run(self._core.seek(offset, whence))

    def read(self, size: int | None = -1) -> bytes:
        return self._run(self._core.read(size))

    def readall(self) -> bytes:
        return self.read(-1)

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer``. With the library's own client, bytes read in order go
        from the socket straight into it: no bytes object, no copy (the fastest way to
        stream a file: ``f.readinto(buffer)`` with one reused buffer)."""
        view = memoryview(buffer).cast("B")
        limit = self._read_limit
        planned = 0
        if limit is not None and 0 < limit < len(view):
            view = view[:limit]  # a buffered caller wants only this many
        elif limit is not None:
            planned = limit  # ... and all of them, this piece first: one request
        elif self._refills:
            self._refilling()
        count: int = self._run(self._core.readinto(view, planned))
        if limit is not None:
            self._read_limit = limit - count
        return count

    def _refilling(self) -> None:
        """A buffer refill for line reads, iteration or ``peek`` (sized reads set
        ``_read_limit`` instead). One that carries on from the last read, once the
        length is known, is advised through to the end: lines read from here on come
        from one bounded request, as reading the file whole would, rather than from
        read-ahead windows that double (a request each). The first refill after a seek
        is a read like any other."""
        core = self._core
        total = core.remote.total
        position = core.position
        if core._advised is not None or (total is not None and position >= total):
            return
        if position == 0 or core._continues(position):
            # The length unknown (lines from the start of a fresh file): a span past any
            # end, which the answer cuts at the file's end, as every read-ahead may be.
            core.advise(position, total if total is not None else _PAST_ANY_END)

    def read_at(self, start: int, stop: int) -> bytes:
        return self._run(self._core.read_at(start, stop))

    def read_tail(self, length: int) -> bytes:
        return self._run(self._core.read_tail(length))

    def read_ranges(self, spans: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(start, stop)``, in order, in as few round trips as the
        server allows (coalesced, multi-range, concurrent single ranges as a fallback)."""
        return self._run(self._core.read_ranges(spans))

    def iter_bytes(
        self, start: int = 0, stop: int | None = None, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """The bytes of ``[start, stop)`` (to the end for None) in chunks of at most
        ``chunk_size``, streamed; the file's position moves with them."""
        self.seek(start)
        while chunk := self._run(_next_chunk(self._core, stop, chunk_size)):
            yield chunk

    def close(self) -> None:
        if self.closed:
            return
        # io's finalizer closes even a file whose __init__ raised (a bad URL): whatever
        # was not made then has nothing to close.
        core = getattr(self, "_core", None)
        owned = getattr(self, "client", None) if getattr(self, "_owns_client", False) else None
        if _exit.exiting():
            # Shutting down, perhaps in another library's native thread (see _exit):
            # closing would do socket I/O. What it would close lives until the process ends.
            _exit.keep(core, owned)
            if core is not None:
                core.closed = True
            super().close()
            return
        try:
            if core is not None:
                self._run(core.close())
        finally:
            if owned is not None:
                owned.close()
            super().close()
            told = getattr(self, "_on_close", None)
            if told is not None:
                told()

    def __enter__(self) -> RangeFile:
        return self


class AsyncRangeFile(_FileFacts):
    """``RangeFile``'s async twin: ``await f.read(n)``, ``await f.seek(...)``, ``f.tell()``."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient | None = None,
        options: FileOptions | None = None,
        *,
        client_options: ClientOptions | None = None,
    ) -> None:
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise TypeError(
                f"AsyncRangeFile needs an httpx.AsyncClient, not {type(client).__name__}"
            )
        chosen = resolve_client_options(client, client_options, {}, "AsyncRangeFile")
        self._client_options = chosen
        self._core = FileCore(url, options or FileOptions())
        configure_remote(self._core.remote, chosen)
        self._owns_client = client is None
        self.client = client if client is not None else make_async_client(chosen)

    @classmethod
    def _shared(
        cls, core: FileCore, client: httpx.AsyncClient, client_options: ClientOptions
    ) -> AsyncRangeFile:
        """A file around ``core`` on a client someone else (a filesystem) owns."""
        file = cls.__new__(cls)
        file._client_options = client_options
        file._core = core
        configure_remote(core.remote, client_options)
        file._owns_client = False
        file.client = client
        return file

    async def _run(self, flow: Flow[T]) -> T:
        return await run_async(self.client, flow)

    @property
    def closed(self) -> bool:
        return self._core.closed

    async def size(self) -> int:
        return await self._run(self._core.size())

    async def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return await self._run(self._core.seek(offset, whence))

    async def read(self, size: int | None = -1) -> bytes:
        return await self._run(self._core.read(size))

    async def readinto(self, buffer: Any) -> int:
        """Read into ``buffer`` (see ``RangeFile.readinto``)."""
        view = memoryview(buffer).cast("B")
        return await self._run(self._core.readinto(view))

    async def read_at(self, start: int, stop: int) -> bytes:
        return await self._run(self._core.read_at(start, stop))

    async def read_tail(self, length: int) -> bytes:
        return await self._run(self._core.read_tail(length))

    async def read_ranges(self, spans: Sequence[tuple[int, int]]) -> list[bytes]:
        return await self._run(self._core.read_ranges(spans))

    async def aiter_bytes(
        self, start: int = 0, stop: int | None = None, chunk_size: int = 1 << 20
    ) -> AsyncIterator[bytes]:
        """The bytes of ``[start, stop)`` (to the end for None) in chunks of at most
        ``chunk_size``, streamed; the file's position moves with them."""
        await self.seek(start)
        while chunk := await self._run(_next_chunk(self._core, stop, chunk_size)):
            yield chunk

    async def aclose(self) -> None:
        if self._core.closed:
            return
        try:
            await self._run(self._core.close())
        finally:
            if self._owns_client:
                await self.client.aclose()

    async def close(self) -> None:
        """``aclose``, under the name fsspec's async files use."""
        await self.aclose()

    async def __aenter__(self) -> AsyncRangeFile:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _next_chunk(core: FileCore, stop: int | None, chunk_size: int) -> Flow[bytes]:
    """The next chunk of ``iter_bytes``/``aiter_bytes``: up to ``chunk_size`` bytes from
    the file's position, none at or past ``stop``; ``b""`` when there are no more."""
    if stop is None:
        return (yield from core.read(chunk_size))
    if core.position >= stop:
        return b""
    return (yield from core.read(min(chunk_size, stop - core.position)))


def _file_state(file: RangeFile, position: int) -> dict[str, Any]:
    """What a pickled file reopens from: plain values, no client, no open response."""
    if file.closed:
        raise ValueError(f"cannot pickle the closed file {file.url}")
    if not file._options_client:
        raise TypeError(
            f"a RangeFile on a client you passed in cannot be pickled (an {type(file.client)}"
            " holds sockets and locks): open it with client_options=ClientOptions(...), or"
            " headers=/auth=/... keywords, and range-streams makes the client, in the copy too"
        )
    remote = file._core.remote
    return {
        "remote": replace(remote, requests_sent=0),
        "options": file._core.options,
        "client_options": file._client_options,
        "position": position,
    }


def _restore_raw(state: dict[str, Any]) -> RangeFile:
    remote: RemoteState = state["remote"]
    file = RangeFile(remote.url, None, state["options"], client_options=state["client_options"])
    known = file._core.remote
    # The reopened file knows what the original knew: the same version (validators),
    # length, where redirects led, and the server's range dialect.
    for name in (*FILE_FACTS, "basic_auth"):
        setattr(known, name, getattr(remote, name))
    file._core.position = state["position"]
    return file


def _reopen_raw(state: dict[str, Any]) -> RangeFile:
    return _restore_raw(state)


def open(  # mirrors builtins.open on purpose
    url: str,
    mode: str = "rb",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    *,
    client: httpx.Client | None = None,
    client_options: ClientOptions | None = None,
    **options: Any,
) -> Any:
    """Open ``url`` for reading, as the built-in ``open`` opens a file.

    ``"rb"`` (the default) gives a ``BufferedRangeFile`` (an ``io.BufferedReader``: fast
    ``readline``, iteration and ``peek``; ``read(n)`` after a seek asks the read strategy
    for ``n`` bytes, not a buffer's worth); ``buffering=0`` the raw ``RangeFile``;
    ``buffering=N`` a buffer of N bytes. ``"r"``/``"rt"`` give a ``TextRangeFile`` (an
    ``io.TextIOWrapper``), decoded as ``encoding`` (UTF-8 by default: a remote file has
    nothing to do with this machine's locale) with ``errors`` and ``newline`` as for
    ``open``. Every object keeps ``size``, ``read_at``, ``read_ranges`` and ``url``.

    ``options`` are ``FileOptions``' keywords (``strategy``: ``Adaptive()`` by default,
    ``Readahead()``, ``BlockCache()``, ``ExactReads()``; ``cache_bytes``, ``tail_probe``,
    ``retry``, ``limits``, ``batch``, ``require_ranges``, ``cache``: a ``SharedCache``,
    a directory, True or False, see docs/Cache.md) and
    ``ClientOptions``' (``headers``, ``auth``, ``timeout``, ``verify``, ``cert``,
    ``trust_env``, ``follow_redirects``, ``http2``, ``proxy``, ``sensitive_headers``), or
    one ``client_options=ClientOptions(...)``. ``client`` is an ``httpx.Client`` to use as
    given (it cannot be combined with the options that would build one).
    """
    from ._buffered import wrap  # noqa: PLC0415  # _buffered builds on this module

    if not isinstance(buffering, int) or isinstance(buffering, bool):
        raise TypeError(
            f"buffering must be an int, not {type(buffering).__name__}"
            + (" (pass the client by keyword: client=...)" if _is_client(buffering) else "")
        )
    text = _check_mode(mode)
    settings = client_settings(options, FILE_SETTINGS)
    chosen = resolve_client_options(client, client_options, settings, "range_streams.open")
    raw = RangeFile(url, client, FileOptions(**options), client_options=chosen)
    try:
        return wrap(raw, text, buffering, encoding, errors, newline)
    except BaseException:
        raw.close()
        raise


def _is_client(value: object) -> bool:
    return isinstance(value, (httpx.Client, httpx.AsyncClient))


def _check_mode(mode: str) -> bool:
    """Whether ``mode`` is text; a ValueError for anything but reading."""
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a str, not {type(mode).__name__}")
    letters = set(mode)
    if len(letters) != len(mode) or not letters <= set("rbt") or "r" not in letters:
        if letters & set("wax+"):
            raise ValueError(f"range_streams.open is read-only: mode {mode!r} (use 'rb' or 'r')")
        raise ValueError(f"invalid mode: {mode!r}")
    if {"b", "t"} <= letters:
        raise ValueError("can't have text and binary mode at once")
    return "b" not in letters


def open_async(
    url: str,
    client: httpx.AsyncClient | None = None,
    *,
    client_options: ClientOptions | None = None,
    **options: Any,
) -> AsyncRangeFile:
    """``open``'s async counterpart (binary, unbuffered: ``await f.read(n)``); takes
    the same ``options``."""
    settings = client_settings(options, FILE_SETTINGS)
    chosen = resolve_client_options(client, client_options, settings, "range_streams.open_async")
    return AsyncRangeFile(url, client, FileOptions(**options), client_options=chosen)
