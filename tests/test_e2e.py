"""End to end against real servers on 127.0.0.1: uvicorn + Starlette always, the others
(nginx, Apache, lighttpd, Caddy, Werkzeug, aiohttp, ...) where installed."""

from __future__ import annotations

import anyio
import httpx
import pytest

import range_streams as rs
from tests.servers.fixtures import docroot_bytes
from tests.servers.launch import RunningServer

SAMPLE = docroot_bytes("sample.bin")


@pytest.fixture(scope="module")
def uvicorn_server(server_factory) -> RunningServer:  # type: ignore[no-untyped-def]
    return server_factory("uvicorn-starlette")


def test_uvicorn_basics(uvicorn_server: RunningServer) -> None:
    url = uvicorn_server.url("sample.bin")
    sent: list[str | None] = []
    hooks = {"request": [lambda request: sent.append(request.headers.get("range"))]}
    with httpx.Client(event_hooks=hooks) as client, rs.RangeStream(url, client=client) as stream:
        stream.add((-22, None))
        assert stream.read() == SAMPLE[-22:]
        assert stream.total_bytes == len(SAMPLE)
        stream.add((1000, 70_000))
        assert stream.read(10) == SAMPLE[1000:1010]
        stream.seek(50_000)
        assert stream.read(100) == SAMPLE[51_000:51_100]
        stream.seek(5)
        assert stream.read(5) == SAMPLE[1005:1010]
        stream.add((60_000, 80_000))  # tail overlap: the first range is cut at 60,000
        response = stream.ranges[60_000]
        assert response.read() == SAMPLE[60_000:80_000]
    assert sent == ["bytes=-22", "bytes=1000-69999", "bytes=60000-79999"]


def test_uvicorn_async(uvicorn_server: RunningServer) -> None:
    url = uvicorn_server.url("sample.bin")

    async def main() -> bytes:
        async with rs.AsyncRangeStream(url, byte_range=(-100, None)) as stream:
            head = await stream.read(50)
            await stream.add((0, 10))
            return head + await stream.read()

    assert anyio.run(main) == SAMPLE[-100:-50] + SAMPLE[:10]


def test_uvicorn_empty_file(uvicorn_server: RunningServer) -> None:
    with rs.RangeStream(uvicorn_server.url("empty.bin")) as stream:
        assert stream.total_bytes == 0
        assert stream.add((-10, None)) is None
        with pytest.raises(rs.InvalidRangeError):
            stream.add((0, 10))


def test_uvicorn_missing_file(uvicorn_server: RunningServer) -> None:
    with (
        rs.RangeStream(uvicorn_server.url("nope.bin")) as stream,
        pytest.raises(rs.HTTPStatusError),
    ):
        stream.add((0, 10))


def test_every_range_server_single_ranges(range_server: RunningServer) -> None:
    """The same reads on every server that supports ranges: exact bytes, exact requests."""
    url = range_server.url("sample.bin")
    with rs.RangeStream(url) as stream:
        stream.add((-1000, None))
        assert stream.read() == SAMPLE[-1000:]
        stream.add((0, 1))
        assert stream.read() == SAMPLE[:1]
        stream.add((123_456, 123_456 + 300_000))
        assert stream.read(1) == SAMPLE[123_456:123_457]
        stream.seek(200_000)
        assert stream.read() == SAMPLE[123_456 + 200_000 : 123_456 + 300_000]
        stream.add((len(SAMPLE) - 10, None))
        assert stream.read() == SAMPLE[-10:]


def test_every_server_zip_tail_never_wrong(any_server: RunningServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """On every server, ranges supported or not: the right bytes, or one of our errors."""
    url = any_server.url("sample.bin")
    try:
        with rs.RangeStream(url) as stream:
            stream.add((5000, 6000))
            assert stream.read() == SAMPLE[5000:6000]
    except rs.RangeNotSupportedError:
        assert any_server.variant != "default" or any_server.name == "http.server"
