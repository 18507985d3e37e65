"""range-streams 1.x's ``RangeResponse`` and ``RangeRequest``, as documented."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest
from ranges import Range

import range_streams as rs
from range_streams.http_utils import PartialContentStatusError
from range_streams.request import RangeRequest
from range_streams.response import RangeResponse

from ._support import DATA, URL, serve


def test_response_attributes() -> None:
    server = serve()
    stream = rs.RangeStream(URL, client=server.client(), byte_range=(3, 9))
    response = stream.active_range_response
    assert response.parent_stream is stream
    assert (response.url, response.name) == (stream.url, "example_text_file.txt")
    assert response.client is stream.client
    assert response.is_windowed is False and response.source_range == Range(0, 0)
    assert response.request.range == Range(3, 9)
    assert response.request.range_header == {"range": "bytes=3-8"}
    assert response.total_len_to_read == 6
    assert response.read(2) == DATA[3:5]
    assert (response.told, response.tell(), response.tell_abs()) == (2, 2, 2)
    assert response.is_in_window and not response.is_consumed()
    assert response.read(size=None) == DATA[5:9] and response.is_consumed()
    assert repr(response) == (
        "RangeResponse \u2836 [3, 9) @ 'example_text_file.txt' from raw.githubusercontent.com"
    )


def test_windowed_response_attributes() -> None:
    stream = rs.RangeStream(URL, client=serve().client(), single_request=True)
    stream.add((4, 8))
    window = stream.active_range_response
    assert window.is_windowed is True
    assert window.source_range == Range(0, 11)
    assert window.window_offset == 4
    window.seek(1)
    assert window.told == 1 and window.tell_abs() == 5
    assert window.read() == DATA[5:8]


def test_seek_whence_as_in_1x() -> None:
    stream = rs.RangeStream(URL, client=serve().client(), byte_range=(0, 11))
    response = stream.active_range_response
    for position, whence, expected in [(4, io.SEEK_SET, 4), (0, io.SEEK_END, 11), (-4, 2, 7)]:
        response.seek(position, whence)
        assert response.tell() == expected


def test_named_response_repr() -> None:
    stream = rs.RangeStream(URL, client=serve().client())
    stream.add((0, 3), name="head")
    assert repr(stream.active_range_response).startswith('RangeResponse \u2836 "head" [0, 3)')


@pytest.mark.parametrize("name", ["_bytes", "buf_keep", "store_tell", "source_iterator"])
def test_removed_response_attributes_name_their_replacement(name: str) -> None:
    stream = rs.RangeStream(URL, client=serve().client(), byte_range=(0, 3))
    with pytest.raises(AttributeError, match=f"RangeResponse.{name} is not in range-streams 2"):
        getattr(stream.active_range_response, name)


def test_sync_response_refuses_async_reads() -> None:
    stream = rs.RangeStream(URL, client=serve().client(), byte_range=(0, 3))
    with pytest.raises(TypeError, match="AsyncRangeStream"):
        asyncio.run(stream.active_range_response.aread())


# ---- RangeRequest ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rng", "header", "body"),
    [
        (Range(0, 1), "bytes=0-0", DATA[:1]),
        (Range(0, 3), "bytes=0-2", DATA[:3]),
        (Range(0, 0), "bytes=0-", DATA),  # 1.x: an empty range asks for the whole file
    ],
)
def test_range_request_is_sent_when_made(rng: Range, header: str, body: bytes) -> None:
    server = serve()
    request = RangeRequest(byte_range=rng, url=URL, client=server.client())
    assert server.ranges_sent == [header]
    assert request.range_header == {"range": header}
    assert request.response.status_code == 206 and request.total_content_length == 11
    assert request.content_range == request.response.headers["content-range"]
    assert request.request.headers["range"] == header  # the httpx.Request sent
    assert b"".join(request.iter_raw()) == body
    assert request.response.is_closed is True  # read to its end
    request.close()


def test_range_request_chunks_and_close() -> None:
    server = serve()
    request = RangeRequest(Range(1, 9), URL, server.client(), chunk_size=3)
    assert next(request.iter_raw()) == DATA[1:4]
    assert request.response.is_closed is False
    request.close()
    assert request.response.is_closed is True
    request.close()  # twice is fine


def test_range_request_missing_content_range() -> None:
    request = RangeRequest(Range(0, 1), URL, serve().client())
    del request.response.headers["content-range"]
    with pytest.raises(KeyError, match="Response was missing 'content-range' header"):
        request.content_range_header()


def missing_client() -> httpx.Client:
    def missing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(missing))


def test_range_request_wants_206() -> None:
    server = serve()
    server.ranges = False  # answers 200 with the whole file
    with pytest.raises(PartialContentStatusError, match="Got HTTP 200 not 206") as caught:
        RangeRequest(Range(0, 1), URL, server.client())
    assert caught.value.response.status_code == 200
    with pytest.raises(PartialContentStatusError, match="404") as missing:
        RangeRequest(Range(0, 1), URL, missing_client())
    assert missing.value.response.status_code == 404
    assert isinstance(missing.value, rs.HTTPStatusError)  # 2.x's finer error, also 1.x's


def test_1x_except_clause_catches_a_streams_http_errors() -> None:
    """1.x raised PartialContentStatusError from add(); 2.x's errors for a non-206
    answer derive from it, so 1.x's except clauses still catch them."""
    stream = rs.RangeStream(URL, client=missing_client())
    with pytest.raises(PartialContentStatusError) as caught:
        stream.add((0, 3))
    assert caught.value.response.status_code == 404


def test_response_over_a_request_reads_with_its_client() -> None:
    server = serve()
    stream = rs.RangeStream(URL, client=server.client())
    request = RangeRequest(Range(0, 11), URL, server.client())
    response = RangeResponse(stream=stream, range_request=request)
    assert response.request is request and response.url is request.url
    assert response.seek(-4, io.SEEK_END) == 7 and response.read() == DATA[7:]
    assert stream.list_ranges() == []  # not registered: register_range does that


@pytest.mark.parametrize(
    "call",
    [
        lambda c: RangeRequest(Range(0, 1), URL, c, window_on_range=Range(0, 11)),
        lambda c: RangeRequest.windowed_request(),
        lambda c: RangeRequest.from_get_stream(),
        lambda c: RangeRequest(Range(0, 1), URL, httpx.AsyncClient()),
    ],
    ids=["windowed", "windowed_request", "from_get_stream", "async client"],
)
def test_range_request_parts_now_elsewhere(call: object) -> None:
    with pytest.raises(TypeError, match=r"not part of range-streams 2: .*(single_request|Async)"):
        call(serve().client())  # type: ignore[operator]
