"""fetch_many's spans may count from the end, as everywhere else in the library: the
tail of each of many files costs one request (``bytes=-n``), the tail plus other spans
two, and a span that needs the length first learns it with ``bytes=0-0``."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import range_streams as rs
from tests.fakes import FakeServer, payload

DATA = payload(50_000)


def fetch(server: FakeServer, spans: list[Any], **kwargs: Any) -> rs.FetchResult:
    async def main() -> list[rs.FetchResult]:
        async with server.async_client() as client:
            return await rs.fetch_many([("http://h/f.bin", spans)], client=client, **kwargs)

    return anyio.run(main)[0]


@pytest.mark.parametrize(
    ("spans", "expected", "ranges_sent"),
    [
        ([(-22, None)], [DATA[-22:]], ["bytes=-22"]),
        ([(-22, 0)], [DATA[-22:]], ["bytes=-22"]),  # the 1.x spelling of a suffix
        ([(49_990, None)], [DATA[49_990:]], ["bytes=49990-"]),
        ([(-100, -10)], [DATA[-100:-10]], ["bytes=0-0", "bytes=49900-49989"]),
        ([(10, -49_980)], [DATA[10:20]], ["bytes=0-0", "bytes=10-19"]),
        # the suffix goes first and tells the length; the rest is one batch after it
        (
            [(0, 4), (-22, None), (100, 110)],
            [DATA[:4], DATA[-22:], DATA[100:110]],
            ["bytes=-22", "bytes=0-109"],
        ),
        ([(-5, -1), (0, 3)], [DATA[-5:-1], DATA[:3]], ["bytes=0-0", "bytes=0-2,49995-49998"]),
        # a suffix longer than the file is the whole file, as in HTTP
        ([(-60_000, None)], [DATA], ["bytes=-60000"]),
    ],
)
def test_relative_spans(spans: list[Any], expected: list[bytes], ranges_sent: list[str]) -> None:
    server = FakeServer(DATA, multi_status=200)
    result = fetch(server, spans)
    assert result.error is None, result.error
    assert result.data == expected
    assert server.ranges_sent[: len(ranges_sent)] == ranges_sent
    assert result.requests == len(server.log)


def test_absolute_spans_are_sent_as_they_were() -> None:
    server = FakeServer(DATA)
    result = fetch(server, [(0, 10)])
    assert result.data == [DATA[:10]] and server.ranges_sent == ["bytes=0-9"]


def test_a_suffix_the_server_refuses_is_retried_as_an_absolute_range() -> None:
    server = FakeServer(DATA, suffix_status=501)  # RangeHTTPServer, PyPI
    result = fetch(server, [(-22, None)])
    assert result.data == [DATA[-22:]]
    assert server.ranges_sent == ["bytes=-22", "bytes=0-0", "bytes=49978-49999"]


@pytest.mark.parametrize(
    ("spans", "error"),
    [
        ([(-10, -20)], rs.InvalidRangeError),  # inverted once resolved
        ([(0, 60_000)], rs.RangeStreamError),  # past the end
        ([(-60_010, -60_000)], rs.InvalidRangeError),  # ends before the start
        ([("a", 3)], rs.InvalidRangeError),
        ([(5, 1)], rs.InvalidRangeError),
    ],
)
def test_bad_spans_are_the_items_error(spans: list[Any], error: type[Exception]) -> None:
    result = fetch(FakeServer(DATA), spans)
    assert isinstance(result.error, error), result.error
    assert result.data is None
