"""``RangeStream`` and ``AsyncRangeStream``: the public faces of ``StreamCore``.

Each method is one line that runs a shared flow with its own driver; there is no
second copy of any logic here. ``RangeStream`` also carries range-streams 1.x's
methods (``StreamCompat``), and takes 1.x's constructor arguments in 1.x's order.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from ranges import Range, RangeDict

from ._core.registry import PruningLevel
from ._flows.body import BodyLimits, RetryPolicy
from ._flows.commands import Flow
from ._net.clients import make_async_client, make_client
from ._net.options import ClientOptions
from ._runtime.drivers import run_async, run_sync
from ._state.response import AsyncRangeResponse, RangeResponse
from ._state.shared_cache import CacheChoice
from ._state.stream_compat import ASYNC_REPLACEMENT, StreamCompat
from ._state.stream_core import EMPTY_RANGE, ByteRange, StreamCore

if TYPE_CHECKING:
    from .async_utils import AsyncFetcher


T = TypeVar("T")

__all__ = ["AsyncRangeStream", "RangeStream"]


class RangeStream(StreamCompat):
    """A remote file as a set of disjoint byte ranges, each read lazily (sync).

    Compatible with range-streams 1.x: ``add`` registers a range (one streaming GET, the
    body not pulled until read), ``ranges`` shows the unread part of each, overlaps are
    resolved by ``pruning_level`` (0 replant, 1 burn, 2 strict), and ``read``/``seek``/
    ``tell`` act on the active range. No request is sent by the constructor: the first
    range (if given) is sent on first use, and the length is learned when first needed.
    ``force_async=True`` (1.x's experimental async mode) is ``AsyncRangeStream`` now.
    """

    response_class = RangeResponse
    client_class = httpx.Client

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
        *,
        retry: RetryPolicy | None = None,
        limits: BodyLimits | None = None,
        cache: CacheChoice = None,
        client_options: ClientOptions | None = None,
        **settings: Any,
    ) -> None:
        if force_async or isinstance(client, httpx.AsyncClient):
            raise TypeError(f"an async stream is {ASYNC_REPLACEMENT}")
        super().__init__(
            url, client, byte_range, pruning_level, single_request, chunk_size=chunk_size,
            raise_response=raise_response, retry=retry, limits=limits, cache=cache,
            client_options=client_options, **settings,
        )  # fmt: skip

    def _make_client(self) -> httpx.Client:
        return make_client(self.client_options)

    def _run(self, flow: Flow[T]) -> T:
        return run_sync(self.client, flow)

    def __enter__(self) -> RangeStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every open response, and the client if this stream created it."""
        try:
            self._run(self._close_all())
        finally:
            if self._owns_client:
                self.client.close()

    def add(
        self, byte_range: ByteRange = EMPTY_RANGE, activate: bool = True, name: str = ""
    ) -> RangeResponse | None:
        """Register ``byte_range`` (a ``Range`` or ``(start, stop)``; negatives count from
        the end) and send its request. Returns its response (None for an empty range)."""
        return self._run(self._add(byte_range, activate, name))

    @property
    def total_bytes(self) -> int:
        """The file's length (one small request the first time, if nothing told it yet)."""
        return self._run(self._total_bytes())

    @property
    def total_range(self) -> Range:
        """``Range(0, total_bytes)``: the whole file (a request the first time, as
        ``total_bytes``)."""
        return self._run(self._total_range())

    @property
    def _ranges(self) -> RangeDict:
        """Internal view: keys as registered, moved only by overlap handling."""
        self._run(self._flush())
        return self._internal()

    @property
    def ranges(self) -> RangeDict:
        """External view: the unread part of each range; consumed ranges are gone."""
        self._run(self._flush())
        return self._external()

    def list_ranges(self) -> list[Range]:
        """The unread part of each range, sorted by position (sends the constructor's
        range first, if it is not sent yet)."""
        self._run(self._flush())
        return self._windows()

    @property
    def active_range_response(self) -> RangeResponse:
        self._run(self._flush())
        return self._active_response()

    def read(self, size: int | None = -1) -> bytes:
        return self.active_range_response.read(size)

    def tell(self) -> int:
        return self.active_range_response.tell()

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        return self.active_range_response.seek(position, whence)

    def iter_bytes(self, byte_range: ByteRange, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream ``byte_range`` in chunks of at most ``chunk_size`` (memory stays bounded).

        The range is added without becoming the active one; its request is sent when
        iteration starts."""
        response = self.add(byte_range, activate=False)
        while response is not None and (chunk := response.read(chunk_size)):
            yield chunk

    async def add_async(
        self, byte_range: ByteRange = EMPTY_RANGE, activate: bool = True, name: str = ""
    ) -> None:
        """1.x's async ``add``: only on the streams ``AsyncFetcher`` hands its callback
        (their bytes are in memory); elsewhere use ``AsyncRangeStream``."""
        self._check_loop_safe("add_async")
        self.add(byte_range, activate, name)

    async def aclose(self) -> None:
        """1.x's async ``close``: as ``add_async``."""
        self._check_loop_safe("aclose")
        self.close()

    def _check_loop_safe(self, method: str) -> None:
        if not self._loop_safe:
            raise TypeError(
                f"RangeStream.{method} would block the event loop on network I/O: use"
                f" {ASYNC_REPLACEMENT}"
            )

    @classmethod
    def make_async_fetcher(
        cls,
        urls: list[str],
        callback: Callable[..., Any] | None = None,
        verbose: bool = False,
        show_progress_bar: bool = True,
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
        close_client: bool = False,
        **kwargs: Any,
    ) -> AsyncFetcher:
        """An ``AsyncFetcher`` that makes this class's streams (1.x's shortcut)."""
        from .async_utils import AsyncFetcher  # noqa: PLC0415 (it imports this module)

        return AsyncFetcher(
            cls, urls, callback, verbose, show_progress_bar, timeout_s, client, close_client,
            **kwargs,
        )  # fmt: skip


class AsyncRangeStream(StreamCore[httpx.AsyncClient, AsyncRangeResponse]):
    """The same data model over ``httpx.AsyncClient``; ``async with`` learns nothing it
    does not need, and no I/O happens in ``__init__``.

    Only coroutine methods do I/O: properties and plain methods (``ranges``,
    ``list_ranges``, ``isempty``, ``spanning_range``, ``known_total_bytes``, ``tell``)
    answer from what the stream knows. Where ``RangeStream`` has a property that may
    send a request (``total_bytes``, ``total_range``), this class has a coroutine method
    of the same name (docs/Design.md, "Sync and async twins").
    """

    response_class = AsyncRangeResponse
    client_class = httpx.AsyncClient

    def _make_client(self) -> httpx.AsyncClient:
        return make_async_client(self.client_options)

    async def _run(self, flow: Flow[T]) -> T:
        return await run_async(self.client, flow)

    async def __aenter__(self) -> AsyncRangeStream:
        await self._run(self._flush())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            await self._run(self._close_all())
        finally:
            if self._owns_client:
                await self.client.aclose()

    async def add(
        self, byte_range: ByteRange = EMPTY_RANGE, activate: bool = True, name: str = ""
    ) -> AsyncRangeResponse | None:
        return await self._run(self._add(byte_range, activate, name))

    async def total_bytes(self) -> int:
        """The file's length (one small request the first time, if nothing told it yet)."""
        return await self._run(self._total_bytes())

    async def total_range(self) -> Range:
        """``Range(0, await total_bytes())``: the whole file."""
        return await self._run(self._total_range())

    @property
    def _ranges(self) -> RangeDict:
        return self._internal()

    @property
    def ranges(self) -> RangeDict:
        return self._external()

    def list_ranges(self) -> list[Range]:
        """The unread part of each range, sorted by position (known state: the
        constructor's range is sent by ``async with`` or the first ``add``/``read``)."""
        return self._windows()

    @property
    def active_range_response(self) -> AsyncRangeResponse:
        return self._active_response()

    async def read(self, size: int | None = -1) -> bytes:
        await self._run(self._flush())
        return await self.active_range_response.read(size)

    async def aiter_bytes(
        self, byte_range: ByteRange, chunk_size: int = 1 << 20
    ) -> AsyncIterator[bytes]:
        """Stream ``byte_range`` in chunks of at most ``chunk_size`` (memory stays bounded)."""
        response = await self.add(byte_range, activate=False)
        if response is None:
            return
        while chunk := await response.read(chunk_size):
            yield chunk

    def tell(self) -> int:
        return self.active_range_response.tell()

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        return self.active_range_response.seek(position, whence)
