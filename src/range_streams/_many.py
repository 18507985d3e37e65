"""Many files at once: ``fetch_many`` and ``as_completed``.

Each item (a URL and its spans) runs ``_flows.batch.read_spans`` (the batching a file's
``read_ranges`` uses, plus spans from the end) under the async driver, with bounded
concurrency overall and per host (``_state.item_queue``). One item's failure is that
item's ``error``; it never loses the others' results. Cancelling the caller cancels every
item and closes every open response (the async driver's cleanup).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import anyio
import httpx

from ._flows.batch import BatchPolicy
from ._flows.body import RetryPolicy
from ._net.clients import make_async_client
from ._net.options import ClientOptions
from ._state.item_queue import FetchResult, Item, ItemQueue, Progress, Runner
from ._state.settings import resolve_client_options
from ._state.shared_cache import CacheChoice, SharedCache, resolve_cache

__all__ = ["AsCompleted", "FetchResult", "as_completed", "fetch_many"]

# Under a per-host limit, how many items may wait, taken from the input, for their host
# to have room (at least 4 per worker): an item of a free host further on waits.
_WINDOW = 1024


def _client(concurrency: int, options: ClientOptions) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return make_async_client(options, limits=limits)


def _host_limit(concurrency: int, per_host: int | None) -> int | None:
    """The per-host limit that binds (None: the workers' number is the only bound)."""
    for name, value in (("concurrency", concurrency), ("per_host", per_host)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise TypeError(f"{name} must be an int, not {value!r}")
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, not {value}")
    return per_host if per_host is not None and per_host < concurrency else None


class AsCompleted:
    """The results of a batch as each item finishes: ``as_completed``'s answer.

    Enter it, then iterate::

        async with range_streams.as_completed(items, concurrency=20) as results:
            async for result in results:  # ``result.index`` says which input
                ...

    The workers run in a task group that the ``async with`` opens and closes in the
    caller's task, so leaving early (``break``, an exception, a cancel) stops the items
    still running and closes their responses before the block is left. (An async
    generator cannot promise that: one abandoned mid-loop is closed later, from another
    task, where its task group can no longer be exited.)
    """

    def __init__(
        self,
        items: Sequence[Item],
        *,
        concurrency: int,
        per_host: int | None,
        client: httpx.AsyncClient | None,
        progress: Progress | None,
        batch: BatchPolicy | None,
        retry: RetryPolicy | None,
        client_options: ClientOptions | None = None,
        settings: dict[str, Any] | None = None,
        cache: SharedCache | None = None,
    ) -> None:
        self._host_limit = _host_limit(concurrency, per_host)
        self._client_options = resolve_client_options(
            client, client_options, settings or {}, "as_completed"
        )
        self._cache = cache
        self._items = items
        self._concurrency = concurrency
        self._client = client
        self._progress = progress
        self._batch = batch or BatchPolicy()
        self._retry = retry or RetryPolicy()
        self._ready: deque[FetchResult] = deque()
        self._done = 0
        self._state = "new"

    async def __aenter__(self) -> AsCompleted:
        if self._state != "new":
            raise RuntimeError("an as_completed batch can be entered only once")
        self._state = "running"
        self._owned = self._client is None
        self._active = (
            self._client
            if self._client is not None
            else _client(self._concurrency, self._client_options)
        )
        self._runner = Runner(
            self._active, self._batch, self._retry, self._client_options, self._cache
        )
        window = max(_WINDOW, 4 * self._concurrency)
        self._queue = ItemQueue(self._runner, self._items, self._host_limit, window)
        count = len(self._items)
        self._send, self._receive = anyio.create_memory_object_stream[FetchResult](count or 1)
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        # ``concurrency`` workers share one queue of the items: a worker whose item
        # finishes starts the next at once, without a trip through a limiter (a limiter
        # per item would yield to the event loop each time, keeping all connections in
        # step).
        for _ in range(min(self._concurrency, count)):
            self._group.start_soon(self._worker)
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        self._state = "closed"
        try:
            self._group.cancel_scope.cancel()  # the items still running, if left early
            # Exited as if the block had ended well: the block's own exception (or
            # cancel) then propagates as itself, not inside the group's ExceptionGroup.
            await self._group.__aexit__(None, None, None)
        finally:
            self._queue.close()
            self._send.close()
            self._receive.close()
            if self._owned:
                with anyio.CancelScope(shield=True):
                    await self._active.aclose()
        return None

    def __aiter__(self) -> AsCompleted:
        if self._state != "running":
            raise TypeError(
                "iterate an as_completed batch inside its block: `async with"
                " as_completed(items) as results: async for result in results: ...`"
            )
        return self

    async def __anext__(self) -> FetchResult:
        if not self._ready:
            if self._done == len(self._items) or self._state != "running":
                raise StopAsyncIteration
            # One wait, then whatever else has finished meanwhile: receive() yields to the
            # loop each time, a turn taken in the middle of the workers' waves.
            self._ready.append(await self._receive.receive())
            with contextlib.suppress(anyio.WouldBlock):
                while True:
                    self._ready.append(self._receive.receive_nowait())
        result = self._ready.popleft()
        self._done += 1
        if self._progress is not None:
            self._progress(self._done, len(self._items), result)
        return result

    async def _worker(self) -> None:
        queue, runner = self._queue, self._runner
        while (entry := await queue.take()) is not None:
            timer = queue.arm(entry)
            began = time.perf_counter()
            try:
                result = await runner.run(entry)
            finally:
                queue.done(entry)
                if timer is not None:
                    timer.cancel()
            if result.requests:  # a round trip's length, not a local refusal's
                queue.took(time.perf_counter() - began)
            self._send.send_nowait(result)  # the buffer holds all


def as_completed(
    items: Sequence[Item],
    *,
    concurrency: int = 10,
    per_host: int | None = None,
    client: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
    batch: BatchPolicy | None = None,
    retry: RetryPolicy | None = None,
    cache: CacheChoice = None,
    client_options: ClientOptions | None = None,
    **settings: Any,
) -> AsCompleted:
    """Each item's ``FetchResult`` as it finishes, from an ``async with`` block (see
    ``AsCompleted``). Takes the arguments of ``fetch_many``; bad limits raise here."""
    return AsCompleted(
        items,
        concurrency=concurrency,
        per_host=per_host,
        client=client,
        progress=progress,
        batch=batch,
        retry=retry,
        client_options=client_options,
        settings=settings,
        cache=resolve_cache(cache),
    )


async def fetch_many(
    items: Sequence[Item],
    *,
    concurrency: int = 10,
    per_host: int | None = None,
    client: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
    batch: BatchPolicy | None = None,
    retry: RetryPolicy | None = None,
    cache: CacheChoice = None,
    client_options: ClientOptions | None = None,
    **settings: Any,
) -> list[FetchResult]:
    """Fetch the spans of many URLs concurrently; one result per input, in input order.

    ``items`` are ``(url, spans)`` pairs. Spans are half-open ``(start, stop)`` pairs
    (or ``ranges.Range``); negative numbers count from the end and ``stop=None`` runs to
    it, so ``(-22, None)`` is one ``Range: bytes=-22`` request. An item's spans are
    coalesced into as few requests as its server allows (``batch``), and a body that
    breaks off is resumed (``retry``).

    At most ``concurrency`` items run at once (on a client of ours, that many
    connections); with ``per_host``, at most that many per host (``host:port``), and an
    item of a busy host waits while later items of other hosts run. ``client`` is used
    as given and left open; without one, the batch makes its own from
    ``client_options`` or ``ClientOptions``' keywords (``headers=``, ``auth=``,
    ``timeout=``, ...) and closes it.
    ``progress(done, total, result)`` is called as each item finishes. ``cache``: a
    ``SharedCache`` (or its directory) the items are read through (docs/Cache.md);
    None follows the ``RANGE_STREAMS_CACHE`` environment variable, False is none.

    One item's failure is that item's ``error`` (a bad URL or span, an error status, a
    file that changed); it never loses the others' results. Bad limits raise
    ``ValueError``/``TypeError`` before anything is opened. Cancelling the call closes
    every response it opened.
    """
    results: list[FetchResult | None] = [None] * len(items)
    batch_results = as_completed(
        items,
        concurrency=concurrency,
        per_host=per_host,
        client=client,
        progress=progress,
        batch=batch,
        retry=retry,
        cache=cache,
        client_options=client_options,
        **settings,
    )
    async with batch_results:
        async for result in batch_results:
            results[result.index] = result
    return [r for r in results if r is not None]
