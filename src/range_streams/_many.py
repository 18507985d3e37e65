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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from ._batch import BatchPolicy, read_spans
from ._body import BodyLimits, RetryPolicy
from ._drivers import Primed, prime, run_async
from ._protocol import RemoteState
from ._ranges import coerce_span
from ._schedule import HostQueue
from ._transport import make_async_client
from ._urls import check_url, parse_url

__all__ = ["AsCompleted", "FetchResult", "as_completed", "fetch_many"]

Item = tuple[str, Sequence[tuple[int, int | None]]]
Progress = Callable[[int, int, "FetchResult"], None]

# Starting items ahead (``_Queue``): the timer's delay is this fraction of the shortest
# item time seen in the batch (the first guess until one has finished); no timer when
# that is below the minimum, where answers come too fast for a lull between them.
_AHEAD_FRACTION = 0.3
_AHEAD_MIN = 0.001
_FIRST_GUESS = 0.050
# Under a per-host limit, how many items may wait, taken from the input, for their host
# to have room (at least 4 per worker): an item of a free host further on waits.
_WINDOW = 1024


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
class _Entry:
    """One input on its way: its URL checked (or the error that settled it), its host
    when a per-host limit applies, and its flow once started (primed, request built)."""

    index: int
    spans: Sequence[tuple[int, int | None]]
    result: FetchResult
    url: str = ""
    host: str | None = None
    remote: RemoteState | None = None
    primed: Primed[list[bytes]] | None = None
    started: bool = False


class _Runner:
    def __init__(self, client: httpx.AsyncClient, batch: BatchPolicy, retry: RetryPolicy) -> None:
        self.client = client
        self.batch = batch
        self.retry = retry

    def start(self, entry: _Entry) -> None:
        """Make ``entry`` ready to run, with no I/O: its flow primed and its first
        request built, or its error (a bad span) recorded."""
        entry.started = True
        if entry.result.error is not None:
            return
        try:
            remote = RemoteState(entry.url)
            spans = [coerce_span(span) for span in entry.spans]
            flow = read_spans(remote, spans, self.batch, self.retry, BodyLimits())
            entry.primed, entry.remote = prime(self.client, flow), remote
        except Exception as exc:  # the item's error, not the batch's
            entry.result.error = exc

    async def run(self, entry: _Entry) -> FetchResult:
        if not entry.started:
            self.start(entry)
        result, remote, primed = entry.result, entry.remote, entry.primed
        if primed is None or remote is None:
            return result
        try:
            result.data = await run_async(self.client, primed)
        except Exception as exc:  # the item's error, not the batch's
            result.error = exc
        finally:
            result.requests = remote.requests_sent
        return result


class _Queue:
    """The items in input order, each handed to a worker when one is free and, under a
    per-host limit, when its host runs fewer than that many items (``HostQueue``): an
    item of a busy host waits while later items of other hosts run.

    Items are started (URL checked, flow primed, request built: no I/O) when a worker
    takes them, or earlier, while the workers wait. Why ahead: starting an item is ~50 us
    of CPU, a fifth of a worker's turnaround from one answer to its next request. When
    answers arrive together (the first round's do, within a few ms), each waits for the
    turnarounds before it, so the last connection of the batch starts every later round
    late. Starting the next item in the lull before the answer comes takes that part off
    the path between an answer and the next request. asyncio has no idle priority: a
    worker sets a timer for a fraction of the shortest item time seen so far, which falls
    in the wait for long round trips, and sets none when round trips are too short to
    leave a lull (a local server).
    """

    def __init__(
        self, runner: _Runner, items: Sequence[Item], per_host: int | None, window: int
    ) -> None:
        self._runner = runner
        self._pending = iter(enumerate(items))
        self._per_host = per_host
        self._hosts: HostQueue[_Entry] = HostQueue(per_host)
        self._window = window  # at most this many items wait, taken from the input
        self._freed: anyio.Event | None = None
        self._shortest = _FIRST_GUESS
        self._closed = False

    async def take(self) -> _Entry | None:
        """The next item to run, counted as running on its host; None once none is left."""
        while True:
            entry = self._hosts.take()
            while entry is None and len(self._hosts) < self._window:
                entry = self._pull()
                if entry is None:
                    break
                if self._hosts.has_room(entry.host):
                    self._hosts.started(entry.host)
                else:
                    self._hosts.add(entry.index, entry.host, entry)
                    entry = None
            if entry is not None:
                return entry
            if not self._hosts:
                return None  # every item has been taken
            # Every waiting item's host is full: the next item to finish frees a place.
            if self._freed is None:
                self._freed = anyio.Event()
            await self._freed.wait()

    def done(self, entry: _Entry) -> None:
        self._hosts.done(entry.host)
        if self._freed is not None:
            self._freed.set()
            self._freed = None

    def _pull(self) -> _Entry | None:
        for index, (url, spans) in self._pending:
            entry = _Entry(index, spans, FetchResult(index, str(url)))
            try:
                entry.url = check_url(url)
                if self._per_host is not None:
                    entry.host = parse_url(entry.url).netloc.decode("ascii")
            except Exception as exc:  # the item's error, not the batch's
                entry.result.error = exc
            return entry
        return None

    def arm(self, running: _Entry) -> asyncio.TimerHandle | None:
        """A timer that starts an item ahead while ``running`` runs: the next one of
        its host, which this worker is likeliest to take when it is done."""
        delay = self._shortest * _AHEAD_FRACTION
        if delay < _AHEAD_MIN:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio: it has no timer callbacks; items start when taken
            return None
        return loop.call_later(delay, self._start_ahead, running.host)

    def took(self, seconds: float) -> None:
        self._shortest = min(self._shortest, seconds)

    def _start_ahead(self, host: str | None) -> None:
        """Start the first waiting item of ``host`` not yet started or, when there is
        none, the next item of the input (at most one item per timer)."""
        if self._closed:
            return
        for waiting in self._hosts.waiting(host):
            if not waiting.started:
                self._runner.start(waiting)
                return
        if len(self._hosts) < self._window and (entry := self._pull()) is not None:
            self._runner.start(entry)
            self._hosts.add(entry.index, entry.host, entry)

    def close(self) -> None:
        """Items started but never run: their flows end here (they opened nothing)."""
        self._closed = True
        for entry in self._hosts.drain():
            if entry.primed is not None:
                entry.primed.flow.close()


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
    ) -> None:
        self._host_limit = _host_limit(concurrency, per_host)
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
        self._active = self._client if self._client is not None else _client(self._concurrency)
        self._runner = _Runner(self._active, self._batch, self._retry)
        window = max(_WINDOW, 4 * self._concurrency)
        self._queue = _Queue(self._runner, self._items, self._host_limit, window)
        count = len(self._items)
        self._send, self._receive = anyio.create_memory_object_stream[FetchResult](count or 1)
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        # ``concurrency`` workers share one queue of the items: a worker whose item
        # finishes starts the next at once, without a trip through a limiter (each was a
        # yield to the event loop, which kept all connections in step).
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
    as given and left open; without one, the batch makes its own and closes it.
    ``progress(done, total, result)`` is called as each item finishes.

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
    )
    async with batch_results:
        async for result in batch_results:
            results[result.index] = result
    return [r for r in results if r is not None]
