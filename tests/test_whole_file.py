"""A server that ignores Range: the file object reads the file whole, once (size-checked,
spilled to disk past ``cache_bytes``); where a ranged answer is required the clear
``RangeNotSupportedError`` stays (``require_ranges``, RangeStream, fetch_many)."""

from __future__ import annotations

import anyio
import httpx
import pytest

import range_streams as rs

from .fakes import FakeServer, payload

URL = "http://files.test/f.bin"
DATA = payload(600_000, seed=23)
NO_WAIT = rs.RetryPolicy(attempts=0)


def raw_open(client: httpx.Client, **options: object) -> rs.RangeFile:
    return rs.open(URL, buffering=0, client=client, **options)  # type: ignore[no-any-return]


def test_reads_anywhere_are_served_from_one_whole_read() -> None:
    server = FakeServer(DATA, ranges=False)
    with raw_open(server.client(), cache_bytes=64 * 1024) as f:
        f.seek(400_000)
        assert f.read(100) == DATA[400_000:400_100]
        assert f.read_at(10, 20) == DATA[10:20]
        assert f.read_ranges([(0, 3), (599_990, 600_000)]) == [DATA[:3], DATA[-10:]]
        assert f.read_tail(5) == DATA[-5:]
        assert f.size == len(DATA)
        whole = f._core._whole
        assert whole is not None and whole.on_disk  # 600 KB past a 64 KiB memory bound
    # The refused range (its 200 drained or dropped), then one plain GET: no Range at all.
    assert server.ranges_sent == ["bytes=400000-404095", None]
    assert [s.if_match for s in server.log] == [None, None]


def test_a_small_file_stays_in_memory() -> None:
    server = FakeServer(DATA[:20_000], ranges=False)
    with raw_open(server.client()) as f:
        f.seek(15_000)
        assert f.read() == DATA[15_000:20_000]
        assert f._core._whole is None or not f._core._whole.on_disk


def test_the_whole_read_carries_the_pinned_version() -> None:
    server = FakeServer(DATA, ranges=False)
    with raw_open(server.client()) as f:
        assert f.read(10) == DATA[:10]  # a 200 at offset 0 pins the validators
        server.replace(DATA[::-1])
        f.seek(500_000)
        with pytest.raises(rs.RemoteFileChangedError):
            f.read(10)
    server = FakeServer(DATA, ranges=False, honour_if_match=False)
    with raw_open(server.client()) as f:
        assert f.read(10) == DATA[:10]
        server.replace(DATA[::-1], etag='"v2"')
        f.seek(500_000)
        with pytest.raises(rs.RemoteFileChangedError):  # the whole GET's ETag says so
            f.read(10)
    assert server.log[-1].range is None
    assert all(sent.if_match == '"v1"' for sent in server.log[1:])


def _answers(whole: bytes, length: str | None) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        headers = {} if length is None else {"content-length": length}
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(whole))

    return httpx.MockTransport(handle)


def test_a_short_whole_body_is_an_error_never_data() -> None:
    transport = _answers(DATA[:1000], str(len(DATA)))
    with httpx.Client(transport=transport) as client, raw_open(client, retry=NO_WAIT) as f:
        f.seek(5000)
        with pytest.raises(rs.RetriesExhaustedError) as info:
            f.read(10)
    assert isinstance(info.value.__cause__, rs.IncompleteBodyError)


def test_a_long_whole_body_is_an_error_never_data() -> None:
    transport = _answers(DATA + b"extra", str(len(DATA)))
    with httpx.Client(transport=transport) as client, raw_open(client, retry=NO_WAIT) as f:
        f.seek(5000)
        with pytest.raises(rs.RetriesExhaustedError) as info:
            f.read(10)
    assert "ran past" in str(info.value.__cause__)


def test_a_whole_body_without_a_length_is_counted_to_its_end() -> None:
    transport = _answers(DATA, None)
    with httpx.Client(transport=transport) as client, raw_open(client) as f:
        assert f.seek(-10, 2) == len(DATA) - 10
        assert f.read() == DATA[-10:]
        assert f.known_size == len(DATA)


def test_require_ranges_and_range_stream_keep_the_error() -> None:
    server = FakeServer(DATA, ranges=False)
    with raw_open(server.client(), require_ranges=True) as f:
        f.seek(400_000)
        with pytest.raises(rs.RangeNotSupportedError):
            f.read(10)
    with rs.RangeStream(URL, client=server.client()) as stream:
        with pytest.raises(rs.RangeNotSupportedError):
            stream.add((400_000, 400_010))


def test_fetch_many_spans_keep_the_error() -> None:
    server = FakeServer(DATA, ranges=False)

    async def main() -> list[rs.FetchResult]:
        async with server.async_client() as client:
            return await rs.fetch_many([(URL, [(400_000, 400_010)])], client=client)

    (result,) = anyio.run(main)
    assert isinstance(result.error, rs.RangeNotSupportedError)


def test_the_async_file_reads_whole_too() -> None:
    server = FakeServer(DATA, ranges=False)

    async def main() -> bytes:
        async with rs.open_async(URL, client=server.async_client()) as f:
            await f.seek(300_000)
            return await f.read(50)

    assert anyio.run(main) == DATA[300_000:300_050]
