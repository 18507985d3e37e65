"""Re-iterable request content: a remote byte range as ``content=`` for an upload.

httpx re-sends a request's content after a 307/308 redirect or in a retry only if the
content can be iterated again. A generator cannot; ``RangeContent`` can: each iteration
starts a fresh range read (same pinned version of the file, so a changed source raises
``RemoteFileChangedError`` instead of uploading a mix). It streams in chunks, never
holding the range in memory, and works with both sync and async clients.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx

from ._core.protocol import RemoteState
from ._core.spans import coerce_span
from ._core.urls import check_url
from ._flows.body import Body, BodyLimits, RetryPolicy
from ._net.clients import make_async_client, make_client
from ._runtime.drivers import run_async, run_sync

__all__ = ["RangeContent"]


class RangeContent:
    """The bytes ``[start, stop)`` of ``url``, as an iterable httpx request body."""

    def __init__(
        self,
        url: str,
        start: int = 0,
        stop: int | None = None,
        *,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
        chunk_size: int = 1 << 20,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.remote = RemoteState(check_url(url))
        self.span = coerce_span((start, stop))
        self.client = client
        self.async_client = async_client
        self.chunk_size = chunk_size
        self.retry = retry or RetryPolicy()
        self.iterations = 0

    def _body(self) -> Body:
        self.iterations += 1
        return Body(self.remote, self.span, retry=self.retry, limits=BodyLimits(history=0))

    def __iter__(self) -> Iterator[bytes]:
        client = self.client or make_client()  # ours: own transport, proxies honoured
        body = self._body()
        try:
            run_sync(client, body.open())
            position, stop = _bounds(body)
            while position < stop:
                chunk = run_sync(client, body.read_at(position, self.chunk_size))
                if not chunk:
                    break
                position += len(chunk)
                yield chunk
        finally:
            run_sync(client, body.close())
            if self.client is None:
                client.close()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        client = self.async_client or make_async_client()
        body = self._body()
        try:
            await run_async(client, body.open())
            position, stop = _bounds(body)
            while position < stop:
                chunk = await run_async(client, body.read_at(position, self.chunk_size))
                if not chunk:
                    break
                position += len(chunk)
                yield chunk
        finally:
            await run_async(client, body.close())
            if self.async_client is None:
                await client.aclose()


def _bounds(body: Body) -> tuple[int, int]:
    if body.start is None or body.stop is None:
        # An absolute span is known without a request; others were opened just before.
        raise AssertionError("the body's bounds are known once it is open")
    return body.start, body.stop
