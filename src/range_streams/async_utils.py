"""range-streams 1.x's ``AsyncFetcher``: many URLs fetched concurrently, each handed to an
async callback as a stream of the class you chose.

It is a thin layer over ``as_completed``: each URL is fetched whole (1.x sent one GET of
the whole file per URL, too), 20 at a time, and as each arrives its bytes become a
stream of ``stream_cls`` (``RangeStream``, ``PngStream``, ``ZipStream``, ... with your
``**kwargs``) whose requests are answered from memory, so the callback can use it, even
through 1.x's async methods (``add_async``, ``aread``, ``enumerate_chunks_async``),
without blocking the event loop. Every byte the stream returns is from that one answer.

Callbacks run one at a time, in the order the URLs finish. For spans of many files
rather than whole files, ``fetch_many``/``as_completed`` are the 2.x API.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterable
from signal import Signals
from typing import TYPE_CHECKING, Any

import httpx
from ranges import Range, RangeSet

from ._many import as_completed
from ._net.clients import make_async_client
from .stream import RangeStream

if TYPE_CHECKING:
    from ._state.item_queue import FetchResult

__all__ = ["AsyncFetcher", "SignalHaltError"]

logger = logging.getLogger("range_streams")

#: How many URLs are fetched at once (1.x's task limit).
CONCURRENCY = 20

Callback = Callable[["AsyncFetcher", RangeStream, httpx.URL], Awaitable[Any]]


class SignalHaltError(SystemExit):
    """The fetch loop was stopped by a signal (or ``immediate_exit``); the exit code is
    the signal's number."""

    def __init__(self, signal_enum: Signals) -> None:
        self.signal_enum = signal_enum
        logger.critical(repr(self))
        super().__init__(self.exit_code)

    @property
    def exit_code(self) -> int:
        return int(self.signal_enum.value)

    def __repr__(self) -> str:
        return f"Exitted due to {self.signal_enum.name}"


class AsyncFetcher:
    """Fetch ``urls`` concurrently and call ``await callback(fetcher, stream, url)`` for
    each, ``stream`` being a ``stream_cls`` over that URL's bytes and ``url`` an
    ``httpx.URL``. ``make_calls()`` runs it; URLs marked complete (``completed``, by the
    fetcher after each callback, or by ``mark_url_complete``) are skipped by later calls,
    so a run stopped by an error or a signal can be resumed.

    ``timeout_s`` is set on the client; ``client`` (an ``httpx.AsyncClient``) is used as
    given and closed at the end only with ``close_client=True``, else one is made for
    each ``make_calls()``. ``verbose`` logs each URL to the console (the
    ``range_streams`` logger). With ``raise_response=False`` in ``kwargs`` a URL that
    fails is recorded in ``errors`` and left incomplete instead of stopping the run.
    """

    def __init__(
        self,
        stream_cls: type[RangeStream],
        urls: list[str],
        callback: Callback | None = None,
        verbose: bool = False,
        show_progress_bar: bool = True,
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
        close_client: bool = False,
        **kwargs: Any,
    ) -> None:
        if urls == []:
            raise ValueError("The list of URLs to fetch cannot be empty")
        if not (isinstance(stream_cls, type) and issubclass(stream_cls, RangeStream)):
            raise TypeError(f"stream_cls must be RangeStream or a subclass, not {stream_cls!r}")
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise TypeError(f"client must be an httpx.AsyncClient, not {type(client).__name__}")
        unique = len(set(urls))
        if unique != len(urls):
            raise ValueError(f"List of URLs is not unique (only {unique} of {len(urls)})")
        self.stream_cls = stream_cls
        self.stream_cls_kwargs = kwargs
        self.url_list = list(urls)
        self.callback = callback
        self.n = len(urls)
        self.verbose = verbose
        self.show_progress_bar = show_progress_bar and not verbose
        self.client = client
        self.close_client_on_completion = close_client
        self.timeout = httpx.Timeout(timeout=timeout_s)
        self.completed = RangeSet()
        self.errors: dict[str, BaseException] = {}
        self.pbar: Any = None
        self._halted_by: Signals | None = None
        self._raise = bool(kwargs.get("raise_response", True))
        self._index = {url: index for index, url in enumerate(self.url_list)}
        if self.show_progress_bar:
            _tqdm()  # fail now, not halfway, if the progress bar cannot be shown

    # ---- bookkeeping ------------------------------------------------------------------

    @property
    def total_complete(self) -> int:
        return sum(r.length() for r in self.completed.ranges())

    def mark_url_complete(self, url: str) -> None:
        """Skip ``url`` in later ``make_calls()`` (it was handled, well or not)."""
        self.complete_row(self.url_list.index(url))

    def complete_row(self, row_index: int) -> None:
        self.completed.add(Range(row_index, row_index + 1))

    @property
    def filtered_url_list(self) -> list[str]:
        """The URLs not yet complete, in their original order."""
        if self.completed.isempty():
            return list(self.url_list)
        return [u for i, u in enumerate(self.url_list) if i not in self.completed]

    def set_up_progress_bar(self) -> None:
        done = self.n - len(self.filtered_url_list)
        self.pbar = _tqdm()(total=self.n)
        if done:
            self.pbar.update(done)
            self.pbar.refresh()

    # ---- running ----------------------------------------------------------------------

    def make_calls(self) -> None:
        """Fetch every URL not yet complete, calling back for each (``asyncio.run``)."""
        level, handler = logger.level, _console_handler() if self.verbose else None
        if self.show_progress_bar:
            self.set_up_progress_bar()
        try:
            self.fetch_things(urls=self.filtered_url_list)
        finally:
            if self.pbar is not None:
                self.pbar.close()
            if handler is not None:
                logger.removeHandler(handler)
                logger.setLevel(level)

    def fetch_things(self, urls: Iterable[str]) -> None:
        try:
            asyncio.run(self.async_fetch_urlset(urls))
        except SignalHaltError:
            if self.pbar is not None:
                self.pbar.disable = True

    async def async_fetch_urlset(self, urls: Iterable[str]) -> None:
        """Fetch ``urls`` on the fetcher's client, or on one made (and closed) here."""
        urls = list(urls)
        with self._signals_stop_the_run():
            if self.client is None:
                limits = httpx.Limits(
                    max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY
                )
                async with make_async_client(timeout=self.timeout, limits=limits) as client:
                    await self.fetch_and_process(urls, client)
                return
            if self.client.is_closed:
                raise ValueError(
                    "Cannot use a closed client to fetch.\n\nDid you attempt to retry after"
                    " using the client in a contextmanager block (which implicitly closes"
                    " after exiting the block) perhaps?"
                )
            await self.fetch_and_process(urls, self.client)

    async def fetch_and_process(self, urls: Iterable[str], client: httpx.AsyncClient) -> None:
        urls = list(urls)
        if not urls:
            if self.close_client_on_completion and self.client is not None:
                await self.client.aclose()
            return
        client.timeout = self.timeout
        items = [(url, [(0, None)]) for url in urls]
        async with as_completed(items, concurrency=CONCURRENCY, client=client) as results:
            async for result in results:
                stream = self._stream_of(urls[result.index], result)
                if stream is not None:
                    await self.process_stream(stream)

    async def fetch(self, client: httpx.AsyncClient, url: str | httpx.URL) -> RangeStream:
        """One URL's stream, fetched on ``client`` (what ``make_calls`` does per URL)."""
        async with as_completed([(str(url), [(0, None)])], concurrency=1, client=client) as got:
            async for result in got:
                if result.error is not None:
                    raise result.error
                return self._replay(str(url), result)
        raise RuntimeError(f"no result for {url}")  # as_completed yields one per item

    def _stream_of(self, url: str, result: FetchResult) -> RangeStream | None:
        if result.error is None:
            return self._replay(url, result)
        if self._raise:
            raise result.error
        self.errors[url] = result.error
        logger.warning("%s failed and stays incomplete: %s", url, result.error)
        return None

    def _replay(self, url: str, result: FetchResult) -> RangeStream:
        assert result.data is not None
        data = result.data[0]
        replay = httpx.Client(transport=httpx.MockTransport(_Replay(data)))
        kwargs: dict[str, Any] = {"single_request": True, **self.stream_cls_kwargs}
        stream = self.stream_cls(url, replay, **kwargs)
        stream._loop_safe = True
        stream._owns_client = True  # the replay client goes with the stream
        stream._source_url = url  # as given (the stream's own url has no userinfo)
        self.errors.pop(url, None)
        return stream

    async def process_stream(self, range_stream: RangeStream) -> None:
        """Call back with ``range_stream``, then mark its URL complete and close it."""
        url = range_stream._source_url or range_stream.url
        index = self._index[url]
        try:
            if self.callback is not None:
                await self.callback(self, range_stream, httpx.URL(url))
            logger.debug("Processed URL in async callback: %s", url)
            if self.pbar is not None:
                self.pbar.update()
            if index not in self.completed:
                self.complete_row(index)
        finally:
            range_stream.close()
        if self.total_complete == self.n and self.close_client_on_completion and self.client:
            await self.client.aclose()

    # ---- stopping ---------------------------------------------------------------------

    def immediate_exit(self, signal_enum: Signals, loop: Any = None) -> None:
        """Stop the run as a signal would: raises ``SignalHaltError``, which closes every
        open response on its way out; ``make_calls`` then returns."""
        raise SignalHaltError(signal_enum=signal_enum)

    async def set_async_signal_handlers(self) -> None:
        """SIGINT and SIGTERM stop the running ``make_calls`` (main thread only)."""
        self._install_signal_handlers(asyncio.current_task())

    def _install_signal_handlers(self, task: asyncio.Task[Any] | None) -> dict[Signals, Any]:
        """Install the handlers; the ones they replace, by signal."""
        if task is None or threading.current_thread() is not threading.main_thread():
            return {}
        loop = asyncio.get_running_loop()
        replaced = {}
        for signal_enum in (signal.SIGINT, signal.SIGTERM):
            replaced[signal_enum] = signal.getsignal(signal_enum)
            loop.add_signal_handler(signal_enum, self._on_signal, signal_enum, task)
        return replaced

    def _on_signal(self, signal_enum: Signals, task: asyncio.Task[Any]) -> None:
        self._halted_by = signal_enum
        task.cancel()

    def _signals_stop_the_run(self) -> _SignalScope:
        return _SignalScope(self)


class _SignalScope:
    """Signal handlers for one run: a signal cancels the run, which then raises
    ``SignalHaltError`` (after every response is closed by the cancellation)."""

    def __init__(self, fetcher: AsyncFetcher) -> None:
        self.fetcher = fetcher
        self.replaced: dict[Signals, Any] = {}

    def __enter__(self) -> _SignalScope:
        self.fetcher._halted_by = None
        self.replaced = self.fetcher._install_signal_handlers(asyncio.current_task())
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        loop = asyncio.get_running_loop()
        for signal_enum, previous in self.replaced.items():
            loop.remove_signal_handler(signal_enum)
            if previous is not None:
                signal.signal(signal_enum, previous)  # the caller's own handler, back
        halted = self.fetcher._halted_by
        if halted is not None and isinstance(exc, asyncio.CancelledError):
            raise SignalHaltError(signal_enum=halted) from None


class _Replay:
    """Answers a stream's requests from one fetched body: ranges as 206, one range per
    request (several at once get the whole body, 200, which the stream handles)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __call__(self, request: httpx.Request) -> httpx.Response:
        size = len(self.data)
        wanted = request.headers.get("range")
        span = _parse_range(wanted, size) if wanted else None
        if span is None or request.method == "HEAD":
            body = b"" if request.method == "HEAD" else self.data
            return httpx.Response(200, headers={"content-length": str(size)}, content=body)
        if span == UNSATISFIABLE:
            return httpx.Response(416, headers={"content-range": f"bytes */{size}"})
        start, stop = span
        headers = {"content-range": f"bytes {start}-{stop - 1}/{size}"}
        return httpx.Response(206, headers=headers, content=self.data[start:stop])


UNSATISFIABLE = (-1, -1)


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` / ``a-`` / ``-n`` as ``(start, stop)`` (``UNSATISFIABLE`` past the
    end); None for anything else (several ranges, other units): the whole body."""
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if not first:
        length = int(last)
        return (max(size - length, 0), size) if length else UNSATISFIABLE
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return UNSATISFIABLE
    return start, size if not last else min(int(last) + 1, size)


def _tqdm() -> Any:
    try:
        return importlib.import_module("tqdm.asyncio").tqdm_asyncio
    except ImportError:
        raise ImportError(
            "AsyncFetcher's progress bar needs tqdm: pip install 'range-streams[progress]',"
            " or pass show_progress_bar=False"
        ) from None


def _console_handler() -> logging.Handler:
    """1.x's ``verbose``: the library's log on the console while the run lasts."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(levelname)s] - %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler
