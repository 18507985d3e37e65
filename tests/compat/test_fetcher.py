"""``AsyncFetcher`` (1.x's ``range_streams.async_utils``): every URL fetched once, each
handed to the async callback as a stream of the class asked for, over ``as_completed``."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import zipfile
from typing import Any

import httpx
import pytest

import range_streams as rs
from range_streams.async_utils import AsyncFetcher, SignalHaltError
from range_streams.codecs import PngStream, ZipStream
from tests.codecs import _pngwriter as png

from ._support import DATA

BASE = "http://files.test/"
IMAGE = png.encode(png.random_samples(5, 4, 6, 8, seed=1), width=5, colour_type=6, bit_depth=8)


class Files:
    """Files by path on an async MockTransport; anything else is a 404. Logs requests."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.log: list[tuple[str, str | None]] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.log.append((request.url.path, request.headers.get("range")))
        data = self.files.get(request.url.path)
        if data is None:
            return httpx.Response(404)
        spec = request.headers.get("range", "")
        first, _, last = spec.removeprefix("bytes=").partition("-")
        start, stop = int(first or 0), (int(last) + 1 if last else len(data))
        headers = {"content-range": f"bytes {start}-{stop - 1}/{len(data)}"}
        return httpx.Response(206, headers=headers, content=data[start:stop])

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


def urls(*names: str) -> list[str]:
    return [BASE + name for name in names]


class Seen:
    def __init__(self) -> None:
        self.calls: list[tuple[AsyncFetcher, Any, httpx.URL]] = []
        self.read: dict[str, bytes] = {}

    async def __call__(self, fetcher: AsyncFetcher, stream: Any, url: httpx.URL) -> None:
        self.calls.append((fetcher, stream, url))
        stream.add((0, 3))
        self.read[str(url)] = stream.read()


def test_each_url_once_to_the_callback() -> None:
    files = Files({"/a.txt": DATA, "/b.txt": DATA[::-1], "/c.txt": b"xyz123"})
    seen = Seen()
    wanted = urls("a.txt", "b.txt", "c.txt")
    fetcher = AsyncFetcher(
        rs.RangeStream, wanted, seen, show_progress_bar=False, client=files.client()
    )
    fetcher.make_calls()
    assert {str(url) for _, _, url in seen.calls} == set(wanted)
    assert all(type(s) is rs.RangeStream and f is fetcher for f, s, _ in seen.calls)
    assert all(isinstance(url, httpx.URL) for _, _, url in seen.calls)
    assert seen.read == {wanted[0]: DATA[:3], wanted[1]: DATA[::-1][:3], wanted[2]: b"xyz"}
    assert sorted(path for path, _ in files.log) == ["/a.txt", "/b.txt", "/c.txt"]
    assert fetcher.total_complete == 3 and fetcher.filtered_url_list == []
    assert fetcher.client is not None and fetcher.client.timeout == httpx.Timeout(5.0)
    assert all(s.is_closed for _, s, _ in seen.calls)  # closed after its callback


def test_a_failed_run_resumes_where_it_stopped() -> None:
    files = Files({"/a": b"1", "/b": b"2", "/c": b"3"})
    seen: list[str] = []

    async def fail_on_b(fetcher: AsyncFetcher, stream: Any, url: httpx.URL) -> None:
        if url.path == "/b" and "/b" not in seen:
            seen.append("/b")
            raise RuntimeError("callback failed")
        seen.append(url.path)

    fetcher = AsyncFetcher(
        rs.RangeStream, urls("a", "b", "c"), fail_on_b, show_progress_bar=False,
        client=files.client(),
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="callback failed"):
        fetcher.make_calls()
    done_first = fetcher.total_complete
    assert done_first < 3
    fetcher.make_calls()
    assert fetcher.total_complete == 3
    assert sorted(set(seen)) == ["/a", "/b", "/c"]
    assert seen.count("/a") == 1 and seen.count("/c") == 1  # completed URLs not redone


def test_http_errors_stop_the_run_or_are_recorded() -> None:
    files = Files({"/a": b"1"})
    fetcher = AsyncFetcher(
        rs.RangeStream, urls("a", "gone"), show_progress_bar=False, client=files.client()
    )
    with pytest.raises(rs.HTTPStatusError):
        fetcher.make_calls()
    lenient = AsyncFetcher(
        rs.RangeStream, urls("a", "gone"), show_progress_bar=False, client=files.client(),
        raise_response=False,
    )  # fmt: skip
    lenient.make_calls()
    assert lenient.filtered_url_list == [BASE + "gone"]
    assert isinstance(lenient.errors[BASE + "gone"], rs.HTTPStatusError)


def test_immediate_exit_stops_after_the_callback() -> None:
    files = Files({"/a": b"1", "/b": b"2", "/c": b"3"})
    called: list[str] = []

    async def stop(fetcher: AsyncFetcher, stream: Any, url: httpx.URL) -> None:
        called.append(url.path)
        fetcher.immediate_exit(signal.SIGINT, asyncio.get_running_loop())

    fetcher = AsyncFetcher(
        rs.RangeStream, urls("a", "b", "c"), stop, show_progress_bar=False, client=files.client()
    )
    fetcher.make_calls()  # returns: the halt is how 1.x reported a stop
    assert len(called) == 1 and fetcher.total_complete == 0
    assert SignalHaltError(signal.SIGINT).exit_code == signal.SIGINT.value


def test_sigint_stops_the_run() -> None:
    files = Files({"/a": b"1", "/b": b"2"})
    called: list[str] = []

    async def interrupted(fetcher: AsyncFetcher, stream: Any, url: httpx.URL) -> None:
        called.append(url.path)
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.Event().wait()  # cancelled by the handler, never set

    def own_handler(number: int, frame: object) -> None:
        raise AssertionError("the fetcher's handler should have run, not this one")

    fetcher = AsyncFetcher(
        rs.RangeStream, urls("a", "b"), interrupted, show_progress_bar=False,
        client=files.client(),
    )  # fmt: skip
    previous = signal.signal(signal.SIGINT, own_handler)
    try:
        fetcher.make_calls()
        assert signal.getsignal(signal.SIGINT) is own_handler  # the caller's, restored
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(called) == 1


def test_png_streams_and_1x_async_methods_in_the_callback() -> None:
    files = Files({"/one.png": IMAGE, "/two.png": IMAGE})
    found: list[Any] = []

    async def read_png(fetcher: AsyncFetcher, stream: Any, url: httpx.URL) -> None:
        chunks = await stream.enumerate_chunks_async()
        await stream.add_async((0, 8))
        signature = await stream.active_range_response.aread()
        found.append((type(stream), list(chunks), signature))

    fetcher = PngStream.make_async_fetcher(
        urls("one.png", "two.png"), read_png, show_progress_bar=False, client=files.client()
    )
    fetcher.make_calls()
    assert found == [(PngStream, ["IHDR", "IDAT", "IEND"], IMAGE[:8])] * 2
    assert len(files.log) == 2  # one GET each; everything else came from memory


def test_zip_streams_in_the_callback() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("inside.txt", b"zipped")
    files = Files({"/a.zip": archive.getvalue()})
    found: list[Any] = []

    async def read_member(fetcher: AsyncFetcher, stream: Any, url: httpx.URL) -> None:
        names = [response.range_name for _, response in stream.ranges.items()]
        found.append((stream.filename_list, names, stream.read("inside.txt"), stream.read()))

    ZipStream.make_async_fetcher(
        urls("a.zip"), read_member, show_progress_bar=False, client=files.client()
    ).make_calls()
    assert found == [(["inside.txt"], ["inside.txt"], b"zipped", b"zipped")]
    assert len(files.log) == 1


def test_progress_bar_and_verbose(caplog: pytest.LogCaptureFixture, capsys: Any) -> None:
    files = Files({"/a": b"1", "/b": b"2"})
    bar = AsyncFetcher(rs.RangeStream, urls("a", "b"), client=files.client())
    bar.make_calls()
    assert bar.pbar.n == 2
    caplog.set_level(logging.DEBUG, logger="range_streams")
    loud = AsyncFetcher(rs.RangeStream, urls("a", "b"), verbose=True, client=files.client())
    loud.make_calls()
    assert loud.pbar is None  # verbose replaces the bar, as in 1.x
    assert sum("Processed URL in async callback" in r.message for r in caplog.records) == 2
    assert "Processed URL" in capsys.readouterr().err


def test_close_client_and_own_client() -> None:
    files = Files({"/a": b"1"})
    client = files.client()
    AsyncFetcher(
        rs.RangeStream, urls("a"), show_progress_bar=False, client=client, close_client=True
    ).make_calls()
    assert client.is_closed
    again = AsyncFetcher(rs.RangeStream, urls("a"), show_progress_bar=False, client=client)
    with pytest.raises(ValueError, match="Cannot use a closed client"):
        again.make_calls()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"urls": []}, ValueError, "cannot be empty"),
        ({"urls": [BASE + "a", BASE + "a"]}, ValueError, "not unique"),
        ({"stream_cls": rs.AsyncRangeStream}, TypeError, "RangeStream or a subclass"),
        ({"client": httpx.Client()}, TypeError, "httpx.AsyncClient"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type, message: str) -> None:
    arguments: dict[str, Any] = {"stream_cls": rs.RangeStream, "urls": [BASE + "a"]}
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        AsyncFetcher(**arguments, show_progress_bar=False)


def test_fetch_one() -> None:
    files = Files({"/a": DATA})

    async def main() -> bytes:
        fetcher = AsyncFetcher(rs.RangeStream, urls("a"), show_progress_bar=False)
        async with files.client() as client:
            stream = await fetcher.fetch(client, BASE + "a")
        stream.add((2, 6))
        return stream.read()

    assert asyncio.run(main()) == DATA[2:6]
