"""Many files at once: ``fetch_many`` and ``as_completed``.

Each item (a URL and its spans) runs the same ``read_ranges`` flow as a file object,
under the async driver, with bounded concurrency overall and per host. One item's
failure is that item's ``error``; it never loses the others' results. Cancelling the
caller cancels every item and closes every open response (the async driver's cleanup).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import anyio
import httpx

from ._batch import BatchPolicy, read_ranges
from ._body import BodyLimits, RetryPolicy
from ._drivers import Primed, prime, run_async
from ._protocol import RemoteState
from ._ranges import coerce_span
from ._transport import make_async_client
from ._urls import check_url

__all__ = ["FetchResult", "as_completed", "fetch_many"]

Item = tuple[str, Sequence[tuple[int, int]]]
Progress = Callable[[int, int, "FetchResult"], None]

# Starting items ahead (``_Queue``): the timer's delay is this fraction of the shortest
# item time seen in the batch (the first guess until one has finished); no timer when
# that is below the minimum, where answers come too fast for a lull between them.
_AHEAD_FRACTION = 0.3
_AHEAD_MIN = 0.001
_FIRST_GUESS = 0.050


@dataclass(repr=False)
class FetchResult:
    """One input's outcome: ``data`` holds the bytes of each span, in order, or ``error``."""

    index: int
    url: str
    data: list[bytes] | None = None
    error: BaseException | None = None
    requests: int = field(default=0)

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        # The sizes, not the bytes: a result's repr lands in logs and tracebacks (and
        # asyncio.run formats the main task's result on its way out), where megabytes
        # of escaped bytes help no one and cost milliseconds.
        data = None if self.data is None else f"[{', '.join(_size(d) for d in self.data)}]"
        return (
            f"FetchResult(index={self.index}, url={self.url!r}, data={data},"
            f" error={self.error!r}, requests={self.requests})"
        )


def _size(data: bytes) -> str:
    return f"<{len(data)} bytes>"


def _client(concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return make_async_client(limits)


@dataclass(slots=True)
class _Started:
    """One item made ready to run (no I/O yet): its result, and its flow primed, or the
    error that already settled it."""

    result: FetchResult
    remote: RemoteState | None = None
    url: str = ""
    primed: Primed[list[bytes]] | None = None


class _Runner:
    def __init__(
        self,
        client: httpx.AsyncClient,
        concurrency: int,
        per_host: int | None,
        batch: BatchPolicy,
        retry: RetryPolicy,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.client = client
        self.concurrency = concurrency
        self.per_host_limit = per_host or concurrency
        self.hosts: dict[str, anyio.CapacityLimiter] = {}
        self.batch = batch
        self.retry = retry

    def start(self, index: int, item: Item) -> _Started:
        url, spans = item
        result = FetchResult(index, str(url))
        try:
            checked = check_url(url)
            remote = RemoteState(checked)
            spans = [_absolute(span) for span in spans]
            flow = read_ranges(remote, spans, self.batch, self.retry, BodyLimits())
            return _Started(result, remote, checked, prime(self.client, flow))
        except Exception as exc:  # the item's error, not the batch's
            result.error = exc
            return _Started(result)

    async def run(self, started: _Started) -> FetchResult:
        result, remote, primed = started.result, started.remote, started.primed
        if primed is None or remote is None:
            return result
        try:
            try:
                if self.per_host_limit < self.concurrency:
                    async with self._host_limit(started.url):
                        result.data = await run_async(self.client, primed)
                else:  # the workers' number is the only bound: no limiter to pass
                    result.data = await run_async(self.client, primed)
            finally:
                result.requests = remote.requests_sent
        except Exception as exc:  # the item's error, not the batch's
            result.error = exc
        return result

    def _host_limit(self, url: str) -> anyio.CapacityLimiter:
        host = httpx.URL(url).netloc.decode("ascii")
        if host not in self.hosts:
            self.hosts[host] = anyio.CapacityLimiter(self.per_host_limit)
        return self.hosts[host]


class _Queue:
    """The items in input order, each started (checked, its flow primed and request
    built: no I/O) when a worker takes it, or earlier, while the workers wait.

    Why ahead: starting an item is ~50 us of CPU, a fifth of a worker's turnaround from
    one answer to its next request. When answers arrive together (the first round's do,
    within a few ms), each waits for the turnarounds before it, so the last connection
    of the batch starts every later round late. Starting the next item in the lull before
    the answer comes takes that part off the path between an answer and the next request.
    asyncio has no idle priority: a worker sets a timer for a fraction of the shortest
    item time seen so far, which falls in the wait for long round trips, and sets none
    when round trips are too short to leave a lull (a local server).
    """

    def __init__(self, runner: _Runner, items: Sequence[Item]) -> None:
        self._runner = runner
        self._pending = iter(enumerate(items))
        self._ready: deque[_Started] = deque()
        self._shortest = _FIRST_GUESS
        self._closed = False

    def take(self) -> _Started | None:
        if self._ready:
            return self._ready.popleft()
        for index, item in self._pending:
            return self._runner.start(index, item)
        return None

    def arm(self) -> asyncio.TimerHandle | None:
        """A timer that starts the next item ahead while this worker's item runs."""
        delay = self._shortest * _AHEAD_FRACTION
        if delay < _AHEAD_MIN:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio: it has no timer callbacks; items start when taken
            return None
        return loop.call_later(delay, self._start_ahead)

    def took(self, seconds: float) -> None:
        self._shortest = min(self._shortest, seconds)

    def _start_ahead(self) -> None:
        if not self._closed:
            for index, item in self._pending:  # at most one: a timer per running item
                self._ready.append(self._runner.start(index, item))
                return

    def close(self) -> None:
        """Items started but never run: their flows end here (they opened nothing)."""
        self._closed = True
        while self._ready:
            primed = self._ready.popleft().primed
            if primed is not None:
                primed.flow.close()


def _absolute(span: tuple[int, int]) -> tuple[int, int]:
    coerced = coerce_span(span)
    if not coerced.is_absolute:
        raise ValueError(f"fetch_many takes absolute (start, stop) spans, not {span!r}")
    assert coerced.stop is not None
    return coerced.start, coerced.stop


async def as_completed(
    items: Sequence[Item],
    *,
    concurrency: int = 10,
    per_host: int | None = None,
    client: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
    batch: BatchPolicy | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[FetchResult]:
    """Yield each item's ``FetchResult`` as it finishes (``.index`` says which input)."""
    owned = client is None
    active = client if client is not None else _client(concurrency)
    runner = _Runner(active, concurrency, per_host, batch or BatchPolicy(), retry or RetryPolicy())
    queue = _Queue(runner, items)
    send, receive = anyio.create_memory_object_stream[FetchResult](len(items) or 1)
    try:
        async with anyio.create_task_group() as group:
            # ``concurrency`` workers share one queue of the items: a worker whose item
            # finishes starts the next at once, without a trip through a limiter (each
            # was a yield to the event loop, which kept all connections in step).
            async def worker() -> None:
                while (started := queue.take()) is not None:
                    timer = queue.arm()
                    began = time.perf_counter()
                    try:
                        result = await runner.run(started)
                    finally:
                        if timer is not None:
                            timer.cancel()
                    if result.requests:  # a round trip's length, not a local refusal's
                        queue.took(time.perf_counter() - began)
                    send.send_nowait(result)  # the buffer holds all

            for _ in range(min(concurrency, len(items))):
                group.start_soon(worker)
            done = 0
            while done < len(items):
                # One wait, then whatever else has finished meanwhile: receive() yields to
                # the loop each time, a turn taken in the middle of the workers' waves.
                ready = [await receive.receive()]
                with contextlib.suppress(anyio.WouldBlock):
                    while True:
                        ready.append(receive.receive_nowait())
                for result in ready:
                    done += 1
                    if progress is not None:
                        progress(done, len(items), result)
                    yield result
    finally:
        queue.close()
        send.close()
        receive.close()
        if owned:
            with anyio.CancelScope(shield=True):
                await active.aclose()


async def fetch_many(
    items: Sequence[Item],
    *,
    concurrency: int = 10,
    per_host: int | None = None,
    client: httpx.AsyncClient | None = None,
    progress: Progress | None = None,
    batch: BatchPolicy | None = None,
    retry: RetryPolicy | None = None,
) -> list[FetchResult]:
    """Fetch the spans of many URLs concurrently; one result per input, in input order."""
    results: list[FetchResult | None] = [None] * len(items)
    stream = as_completed(
        items,
        concurrency=concurrency,
        per_host=per_host,
        client=client,
        progress=progress,
        batch=batch,
        retry=retry,
    )
    async for result in stream:
        results[result.index] = result
    return [r for r in results if r is not None]
