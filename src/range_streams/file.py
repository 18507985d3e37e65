"""Standard file objects over a URL: ``range_streams.open(url)``.

``RangeFile`` is an ``io.RawIOBase``, so ``zipfile``, ``tarfile``, Pillow and pyarrow take
it as is; ``AsyncRangeFile`` offers the same with ``await``. Both also implement the
``ByteSource`` protocol the codecs read through (``size``, ``read_at``, ``read_ranges``,
``read_tail``). The logic lives in ``FileCore``; these classes only pick a driver.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any

import httpx

from ._core.cache_stats import CacheStats
from ._flows.commands import Flow
from ._net.clients import make_async_client, make_client
from ._runtime.drivers import run_async, run_sync
from ._state.file_core import FileCore, FileOptions

__all__ = ["AsyncRangeFile", "RangeFile", "open", "open_async"]


class RangeFile(io.RawIOBase):
    """A remote file, read-only and seekable, fetched by range requests as it is read."""

    def __init__(
        self, url: str, client: httpx.Client | None = None, options: FileOptions | None = None
    ) -> None:
        super().__init__()
        if client is not None and not isinstance(client, httpx.Client):
            raise TypeError(f"RangeFile needs an httpx.Client, not {type(client).__name__}")
        self._core = FileCore(url, options or FileOptions())
        self._owns_client = client is None
        self.client = client if client is not None else make_client()

    def _run(self, flow: Flow[Any]) -> Any:
        return run_sync(self.client, flow)

    def __repr__(self) -> str:
        return f"<RangeFile {self.url!r} at {self._core.position}>"

    @property
    def url(self) -> str:
        return self._core.url

    @property
    def name(self) -> str:
        return self._core.url

    @property
    def mode(self) -> str:
        return "rb"

    @property
    def size(self) -> int:
        """The file's length (one small request the first time, unless already known)."""
        return self._run(self._core.size())  # type: ignore[no-any-return]

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

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        self._core._check()
        return self._core.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._run(self._core.seek(offset, whence))  # type: ignore[no-any-return]

    def read(self, size: int | None = -1) -> bytes:
        return self._run(self._core.read(size))  # type: ignore[no-any-return]

    def readall(self) -> bytes:
        return self.read(-1)

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer``. With the library's own client, bytes read in order go
        from the socket straight into it: no bytes object, no copy (the fastest way to
        stream a file: ``f.readinto(buffer)`` with one reused buffer)."""
        view = memoryview(buffer).cast("B")
        return self._run(self._core.readinto(view))  # type: ignore[no-any-return]

    def read_at(self, start: int, stop: int) -> bytes:
        return self._run(self._core.read_at(start, stop))  # type: ignore[no-any-return]

    def advise(self, start: int, stop: int) -> None:
        """Hint that ``[start, stop)`` will be read through in order: one request for it."""
        self._core.advise(start, stop)

    def read_tail(self, length: int) -> bytes:
        return self._run(self._core.read_tail(length))  # type: ignore[no-any-return]

    def read_ranges(self, spans: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(start, stop)``, in order, in as few round trips as the
        server allows (coalesced, multi-range, concurrent single ranges as a fallback)."""
        return self._run(self._core.read_ranges(spans))  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.closed:
            return
        # io's finalizer closes even a file whose __init__ raised (a bad URL): whatever
        # was not made then has nothing to close.
        core = getattr(self, "_core", None)
        try:
            if core is not None:
                self._run(core.close())
        finally:
            if getattr(self, "_owns_client", False) and hasattr(self, "client"):
                self.client.close()
            super().close()

    def __enter__(self) -> RangeFile:
        return self


class AsyncRangeFile:
    """``RangeFile``'s async twin: ``await f.read(n)``, ``await f.seek(...)``, ``f.tell()``."""

    def __init__(
        self, url: str, client: httpx.AsyncClient | None = None, options: FileOptions | None = None
    ) -> None:
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise TypeError(
                f"AsyncRangeFile needs an httpx.AsyncClient, not {type(client).__name__}"
            )
        self._core = FileCore(url, options or FileOptions())
        self._owns_client = client is None
        self.client = client if client is not None else make_async_client()

    async def _run(self, flow: Flow[Any]) -> Any:
        return await run_async(self.client, flow)

    @property
    def url(self) -> str:
        return self._core.url

    @property
    def closed(self) -> bool:
        return self._core.closed

    @property
    def requests_sent(self) -> int:
        return self._core.remote.requests_sent

    @property
    def cache_stats(self) -> CacheStats | None:
        shared = self._core.shared
        return None if shared is None else shared.counter.snapshot()

    async def size(self) -> int:
        return await self._run(self._core.size())  # type: ignore[no-any-return]

    def tell(self) -> int:
        self._core._check()
        return self._core.position

    async def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return await self._run(self._core.seek(offset, whence))  # type: ignore[no-any-return]

    async def read(self, size: int | None = -1) -> bytes:
        return await self._run(self._core.read(size))  # type: ignore[no-any-return]

    async def readinto(self, buffer: Any) -> int:
        """Read into ``buffer`` (see ``RangeFile.readinto``)."""
        view = memoryview(buffer).cast("B")
        return await self._run(self._core.readinto(view))  # type: ignore[no-any-return]

    async def read_at(self, start: int, stop: int) -> bytes:
        return await self._run(self._core.read_at(start, stop))  # type: ignore[no-any-return]

    def advise(self, start: int, stop: int) -> None:
        self._core.advise(start, stop)

    async def read_tail(self, length: int) -> bytes:
        return await self._run(self._core.read_tail(length))  # type: ignore[no-any-return]

    async def read_ranges(self, spans: Sequence[tuple[int, int]]) -> list[bytes]:
        return await self._run(self._core.read_ranges(spans))  # type: ignore[no-any-return]

    async def aiter_bytes(
        self, start: int = 0, stop: int | None = None, chunk_size: int = 1 << 20
    ) -> AsyncIterator[bytes]:
        """The bytes of ``[start, stop)`` (to the end for None) in chunks, streamed."""
        await self.seek(start)
        remaining = None if stop is None else stop - start
        while remaining is None or remaining > 0:
            want = chunk_size if remaining is None else min(chunk_size, remaining)
            chunk = await self.read(want)
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk

    async def aclose(self) -> None:
        if self._core.closed:
            return
        try:
            await self._run(self._core.close())
        finally:
            if self._owns_client:
                await self.client.aclose()

    async def __aenter__(self) -> AsyncRangeFile:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def open(  # mirrors builtins.open on purpose
    url: str,
    mode: str = "rb",
    client: httpx.Client | None = None,
    **options: Any,
) -> RangeFile:
    """Open ``url`` as a read-only, seekable binary file (``io.RawIOBase``).

    ``options`` are ``FileOptions``' keywords: ``strategy`` (``Readahead()`` by default,
    ``BlockCache()``, ``ExactReads()``), ``cache_bytes``, ``tail_probe``, ``retry``,
    ``limits``, ``batch``, ``cache`` (a ``SharedCache`` or its directory: see
    docs/Cache.md).
    """
    if mode not in ("rb", "r"):
        raise ValueError(f"range_streams.open is read-only and binary: mode {mode!r}")
    return RangeFile(url, client, FileOptions(**options))


def open_async(url: str, client: httpx.AsyncClient | None = None, **options: Any) -> AsyncRangeFile:
    return AsyncRangeFile(url, client, FileOptions(**options))
