"""Small, server-free tests for what the conformance matrix found wrong in the library.

Each names the real server whose answer it stands for; the matrix (test_matrix.py) checks
the same behaviour end to end.
"""

from __future__ import annotations

import httpx
import pytest

import range_streams as rs
from range_streams._core.protocol import RemoteState, accept_partial, accept_whole
from range_streams._core.range_headers import ContentRange, parse_content_range
from range_streams._core.spans import Span
from range_streams._flows.body import Body
from range_streams._runtime.drivers import run_sync

URL = "http://files.test/f.bin"


def test_caddy_empty_file_suffix_content_range_parses() -> None:
    # Caddy answers ``bytes=-10`` on an empty file with ``206 Content-Range: bytes 0--1/0``.
    assert parse_content_range("bytes 0--1/0") == ContentRange(0, 0, 0)
    for nonsense in ("bytes 0--1/5", "bytes 1--1/0", "bytes 0--2/0", "bytes --1/0"):
        with pytest.raises(rs.ContentRangeError):
            parse_content_range(nonsense)


def test_caddy_empty_file_suffix_is_accepted_as_nothing() -> None:
    remote = RemoteState(URL)
    accepted = accept_partial(
        Span(-10, None), {"content-range": "bytes 0--1/0", "content-length": "0"}, remote
    )
    assert (accepted.start, accepted.stop, remote.total) == (0, 0, 0)


def test_a_200_is_the_answer_to_a_suffix_covering_the_whole_file() -> None:
    # Tornado answers a suffix longer than the file with 200 (and nginx, Apache, lighttpd,
    # Werkzeug and http.server answer any range on an empty file so).
    remote = RemoteState(URL)
    accepted = accept_whole(Span(-200, None), {"content-length": "100"}, remote)
    assert (accepted.start, accepted.stop, remote.total) == (0, 100, 100)
    empty = RemoteState(URL)
    accepted = accept_whole(Span(-10, None), {"content-length": "0"}, empty)
    assert (accepted.start, accepted.stop, empty.total) == (0, 0, 0)
    with pytest.raises(rs.RangeNotSupportedError):  # a shorter suffix is not at offset 0
        accept_whole(Span(-50, None), {"content-length": "100"}, RemoteState(URL))


def test_a_200_to_a_range_past_the_end_says_so() -> None:
    # nginx max_ranges 0, lighttpd range-disabled, http.server: a 200 with the whole file,
    # whose Content-Length shows the range starts past the end.
    remote = RemoteState(URL)
    with pytest.raises(rs.InvalidRangeError, match="past the end"):
        accept_whole(Span(2000, 2100), {"content-length": "1000"}, remote)
    assert remote.total == 1000
    clipped = accept_whole(
        Span(2000, 2100), {"content-length": "1000"}, RemoteState(URL), clip=True
    )
    assert clipped.start == clipped.stop == 2000


def _whole_file_server(data: bytes) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=data, headers={"content-length": str(len(data))})

    return httpx.MockTransport(handle)


def test_file_read_past_the_end_of_a_server_without_ranges_is_empty() -> None:
    with rs.RangeFile(URL, httpx.Client(transport=_whole_file_server(b"x" * 1000))) as f:
        f.seek(5000)
        assert f.read(10) == b""
        assert f.size == 1000


def test_empty_file_on_a_server_without_ranges() -> None:
    client = httpx.Client(transport=_whole_file_server(b""))
    with rs.RangeStream(URL, client=client) as stream:
        assert stream.add((-10, None)) is None
        assert stream.total_bytes == 0
    with rs.RangeFile(URL, client) as f:
        assert f.seek(0, 2) == 0
        assert f.read() == b""


@pytest.mark.parametrize("length", ["\xb2", "\u0661\u0660", "1 0", "-1", "1e3"])
def test_a_content_length_that_is_not_ascii_digits_is_our_error(length: str) -> None:
    # Found by test_fuzz.py: str.isdigit() accepts '\xb2' (superscript two: a latin-1 byte a
    # server can send), which int() refuses with ValueError. Non-ASCII digits are no
    # Content-Length either, even where int() would take them.
    for accept in (accept_partial, accept_whole):
        headers = {"content-range": "bytes 0-9/100", "content-length": length}
        with pytest.raises(rs.ContentRangeError):
            accept(Span(0, 10), headers, RemoteState(URL))


def test_a_resume_answered_200_with_a_strange_content_length_is_our_error() -> None:
    remote = RemoteState(URL)
    remote.pin(100, {"etag": '"v1"'})

    def handle(request: httpx.Request) -> httpx.Response:
        headers = [(b"content-length", b"\xb2"), (b"etag", b'"v1"')]  # as latin-1 on the wire
        return httpx.Response(200, headers=headers, content=b"")

    body = Body(remote, Span(0, 10))
    body._sent = True  # what is sent next is a resume
    with pytest.raises(rs.ContentRangeError):
        run_sync(httpx.Client(transport=httpx.MockTransport(handle)), body.read_all())
