"""The items of a ``fetch_many`` batch on their way to the workers: read from the input
lazily, checked, started (flow primed, request built: no I/O) when taken or ahead of
time, and handed out in input order under the per-host limit (``_core.schedule.HostQueue``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio
import httpx

from .._core.protocol import RemoteState
from .._core.schedule import HostQueue
from .._core.spans import coerce_span
from .._core.urls import check_url, parse_url
from .._flows.batch import BatchPolicy, read_spans
from .._flows.body import BodyLimits, RetryPolicy
from .._net.options import ClientOptions
from .._runtime.drivers import Primed, prime, run_async
from .settings import configure_remote
from .shared_cache import SharedCache

__all__ = ["Entry", "FetchResult", "Item", "ItemQueue", "Progress", "Runner"]

Item = tuple[str, Sequence[tuple[int, int | None]]]
Progress = Callable[[int, int, "FetchResult"], None]

# Starting items ahead (``ItemQueue``): the timer's delay is this fraction of the shortest
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


@dataclass(slots=True)
class Entry:
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


class Runner:
    def __init__(
        self,
        client: httpx.AsyncClient,
        batch: BatchPolicy,
        retry: RetryPolicy,
        options: ClientOptions | None = None,
        cache: SharedCache | None = None,
    ) -> None:
        self.client = client
        self.batch = batch
        self.retry = retry
        self.options = options if options is not None else ClientOptions()
        self.cache = cache

    def start(self, entry: Entry) -> None:
        """Make ``entry`` ready to run, with no I/O: its flow primed and its first
        request built, or its error (a bad span) recorded."""
        entry.started = True
        if entry.result.error is not None:
            return
        try:
            remote = configure_remote(RemoteState(entry.url), self.options)
            spans = [coerce_span(span) for span in entry.spans]
            if self.cache is not None:  # the shared cache's seam
                from .cache_session import CacheSession  # noqa: PLC0415 - only with a cache

                session = CacheSession(remote, self.cache, retry=self.retry, batch=self.batch)
                flow = session.read_spans(spans)
            else:
                flow = read_spans(remote, spans, self.batch, self.retry, BodyLimits())
            entry.primed, entry.remote = prime(self.client, flow), remote
        except Exception as exc:  # the item's error, not the batch's
            entry.result.error = exc

    async def run(self, entry: Entry) -> FetchResult:
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


class ItemQueue:
    """The items in input order, each handed to a worker when one is free and, under a
    per-host limit, when its host runs fewer than that many items (``HostQueue``): an
    item of a busy host waits while later items of other hosts run.

    Items are started (URL checked, flow primed, request built: no I/O) when a worker
    takes them, or earlier, while the workers wait. Why ahead: starting an item is CPU
    work on a worker's path from one answer to its next request, and a sizeable part of
    it. When answers arrive together (the first round's do), each waits for the
    turnarounds before it, so the last connection of the batch starts every later round
    late. Starting the next item in the lull before the answer comes takes that part off
    the path between an answer and the next request. asyncio has no idle priority: a
    worker sets a timer for a fraction of the shortest item time seen so far, which falls
    in the wait for long round trips, and sets none when round trips are too short to
    leave a lull (a local server).
    """

    def __init__(
        self, runner: Runner, items: Sequence[Item], per_host: int | None, window: int
    ) -> None:
        self._runner = runner
        self._pending = iter(enumerate(items))
        self._per_host = per_host
        self._hosts: HostQueue[Entry] = HostQueue(per_host)
        self._window = window  # at most this many items wait, taken from the input
        self._freed: anyio.Event | None = None
        self._shortest = _FIRST_GUESS
        self._closed = False

    async def take(self) -> Entry | None:
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

    def done(self, entry: Entry) -> None:
        self._hosts.done(entry.host)
        if self._freed is not None:
            self._freed.set()
            self._freed = None

    def _pull(self) -> Entry | None:
        for index, (url, spans) in self._pending:
            entry = Entry(index, spans, FetchResult(index, str(url)))
            try:
                entry.url = check_url(url)
                if self._per_host is not None:
                    entry.host = parse_url(entry.url).netloc.decode("ascii")
            except Exception as exc:  # the item's error, not the batch's
                entry.result.error = exc
            return entry
        return None

    def arm(self, running: Entry) -> asyncio.TimerHandle | None:
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
