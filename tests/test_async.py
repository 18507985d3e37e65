"""Async: fetch_many / as_completed against the real local server, cancellation, and
re-iterable upload content. (The sync/async scenario table lives in test_stream.py.)"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import range_streams as rs
from tests.servers.fixtures import docroot_bytes
from tests.servers.launch import RunningServer

SAMPLE = docroot_bytes("sample.bin")


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts responses in flight (sent and not yet closed), and the most ever at once."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.open = 0
        self.peak = 0
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self.open -= 1
            raise
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Tracked(response.stream, self),  # type: ignore[arg-type]
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Tracked(httpx.AsyncByteStream):
    def __init__(self, inner: Any, owner: CountingTransport) -> None:
        self.inner, self.owner, self.closed = inner, owner, False

    async def __aiter__(self) -> Any:
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.owner.open -= 1
            await self.inner.aclose()


@pytest.fixture(scope="module")
def server(server_factory) -> RunningServer:  # type: ignore[no-untyped-def]
    return server_factory("uvicorn-starlette")


def counting_client(concurrency: int) -> tuple[httpx.AsyncClient, CountingTransport]:
    inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=concurrency))
    transport = CountingTransport(inner)
    return httpx.AsyncClient(transport=transport), transport


def test_fetch_many_200_urls_bounded(server: RunningServer) -> None:
    items = [
        (server.url("sample.bin") + f"?n={i}", [(i * 1000, i * 1000 + 50), (9, 10)])
        for i in range(200)
    ]
    seen: list[int] = []

    async def main() -> tuple[list[rs.FetchResult], CountingTransport]:
        client, transport = counting_client(20)
        async with client:
            results = await rs.fetch_many(
                items,
                concurrency=20,
                client=client,
                progress=lambda done, total, r: seen.append(done),
            )
        return results, transport

    results, transport = anyio.run(main)
    assert [r.index for r in results] == list(range(200))
    for i, result in enumerate(results):
        assert result.error is None, result.error
        assert result.data == [SAMPLE[i * 1000 : i * 1000 + 50], SAMPLE[9:10]]
    assert transport.peak <= 20
    assert transport.open == 0
    assert seen == list(range(1, 201))
    # Two spans far apart: one multi-range request per URL (Starlette speaks multipart).
    assert transport.requests == 200


def test_fetch_many_one_bad_item_keeps_the_others(server: RunningServer) -> None:
    items = [
        (server.url("sample.bin"), [(0, 10)]),
        (server.url("missing.bin"), [(0, 10)]),
        ("not a url", [(0, 1)]),
        (server.url("sample.bin"), [(5, 1)]),
        (server.url("small.bin"), [(0, 100)]),
    ]
    results = anyio.run(lambda: rs.fetch_many(items, concurrency=3))
    assert results[0].data == [SAMPLE[:10]]
    assert isinstance(results[1].error, rs.HTTPStatusError)
    assert isinstance(results[2].error, rs.InvalidURLError)
    assert isinstance(results[3].error, rs.InvalidRangeError)
    assert results[4].data == [docroot_bytes("small.bin")]


def test_as_completed_yields_every_item(server: RunningServer) -> None:
    items = [(server.url("sample.bin"), [(i, i + 1)]) for i in range(30)]

    async def main() -> list[int]:
        async with rs.as_completed(items, concurrency=5) as results:
            return sorted([r.index async for r in results])

    assert anyio.run(main) == list(range(30))


def test_cancellation_leaves_no_open_response(server: RunningServer) -> None:
    items = [(server.url("sample.bin"), [(0, len(SAMPLE))]) for _ in range(20)]

    async def main() -> CountingTransport:
        client, transport = counting_client(10)
        async with client:
            with anyio.move_on_after(0.05):
                await rs.fetch_many(items, concurrency=10, client=client)
        return transport

    transport = anyio.run(main)
    assert transport.requests > 0
    assert transport.open == 0


def test_async_stream_cancelled_mid_read_closes_its_response(server: RunningServer) -> None:
    async def main() -> CountingTransport:
        client, transport = counting_client(2)
        async with client:
            stream = rs.AsyncRangeStream(server.url("sample.bin"), client=client)
            await stream.add((0, len(SAMPLE)))
            with anyio.CancelScope() as scope:
                scope.cancel()
                await stream.read()
            await stream.aclose()
        return transport

    assert anyio.run(main).open == 0


def test_range_content_is_reiterable_for_redirected_uploads(
    server: RunningServer, tmp_path: Path
) -> None:
    received: list[bytes] = []
    redirected = []

    def upload(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            request.read()  # the first attempt consumes the body, as a real server would
            redirected.append(True)
            return httpx.Response(307, headers={"location": "/new"})
        received.append(request.read())
        return httpx.Response(201)

    content = rs.RangeContent(server.url("sample.bin"), 1000, 400_000, chunk_size=65536)
    with httpx.Client(transport=httpx.MockTransport(upload), follow_redirects=True) as client:
        assert client.post("http://upload.test/old", content=content).status_code == 201
    assert redirected and received == [SAMPLE[1000:400_000]]
    # Every iteration restarts the range read, which is what a re-sent body needs.
    assert b"".join(content) == b"".join(content) == SAMPLE[1000:400_000]
    assert content.iterations >= 3

    async def main() -> bytes:
        return b"".join(
            [chunk async for chunk in rs.RangeContent(server.url("sample.bin"), -300, None)]
        )

    assert anyio.run(main) == SAMPLE[-300:]


def _cycle_garbage(work: Any) -> list[str]:
    """Type names of the objects ``work()`` left in reference cycles (found by a
    collection with the collector off meanwhile, so nothing was freed behind our back)."""
    gc.collect()
    gc.disable()
    try:
        work()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return sorted({type(o).__qualname__ for o in gc.garbage})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_requests_leave_no_reference_cycles(server: RunningServer) -> None:
    """Objects in cycles wait for the cycle collector, which then runs every few
    requests and pauses the batch each time: a closed response must be freed at once."""
    items = [(server.url("sample.bin") + f"?n={i}", [(i, i + 100)]) for i in range(40)]
    url = server.url("sample.bin")

    def batch() -> None:
        results = anyio.run(lambda: rs.fetch_many(items, concurrency=5))
        assert all(r.error is None for r in results)

    def file_reads() -> None:
        with rs.open(url) as f:
            f.seek(1000)
            assert f.read(100) == SAMPLE[1000:1100]
            f.seek(-10, 2)
            assert f.read() == SAMPLE[-10:]

    batch()  # first use: imports, caches, the loop's one-off objects
    file_reads()
    assert _cycle_garbage(batch) == []
    assert _cycle_garbage(file_reads) == []


def test_fetch_result_repr_shows_sizes_not_bytes() -> None:
    result = rs.FetchResult(3, "http://h/f", [b"x" * 4096, b""], None, 1)
    assert repr(result) == (
        "FetchResult(index=3, url='http://h/f', data=[<4096 bytes>, <0 bytes>],"
        " error=None, requests=1)"
    )
    failed = rs.FetchResult(0, "u", error=ValueError("no"))
    assert (
        repr(failed)
        == "FetchResult(index=0, url='u', data=None, error=ValueError('no'), requests=0)"
    )
