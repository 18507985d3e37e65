"""``_net/heads`` against h11: whatever the strict fast path accepts, h11 accepts and reads the
same way; whatever h11 refuses, the fast path declines (and ``Exchange`` hands to h11)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h11
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from range_streams._core.range_headers import header_map
from range_streams._net.exchange import Exchange
from range_streams._net.heads import (
    Head,
    fields_say_close,
    parse_response_head,
    says_close,
    write_request_head,
)

FAST = settings(max_examples=400, deadline=None)
HOST = (b"Host", b"example.test")


def h11_request(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes | None:
    connection = h11.Connection(h11.CLIENT)
    try:
        out = connection.send(h11.Request(method=method, target=target, headers=headers))
        return (out or b"") + (connection.send(h11.EndOfMessage()) or b"")
    except h11.LocalProtocolError:
        return None


def h11_response(head: bytes, method: bytes = b"GET") -> tuple[h11.Response, bool] | None:
    """h11's reading of a response head, and whether it would keep the connection."""
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method=method, target=b"/", headers=[HOST]))
    connection.send(h11.EndOfMessage())
    connection.receive_data(head)
    try:
        while True:
            event = connection.next_event()
            if isinstance(event, h11.Response):
                return event, connection.our_state is h11.DONE
            if not isinstance(event, h11.InformationalResponse):
                return None
    except h11.RemoteProtocolError:
        return None


# -- requests -------------------------------------------------------------------------

REQUEST_CASES = [
    ("plain", b"GET", b"/f?a=b", [HOST, (b"Range", b"bytes=0-9")], True),
    ("host-not-first", b"GET", b"/", [(b"Accept", b"*/*"), HOST, (b"X", b"y")], True),
    ("empty-value", b"GET", b"/", [HOST, (b"X-Empty", b"")], True),
    ("inner-spaces", b"GET", b"/", [HOST, (b"User-Agent", b"a b\tc")], True),
    ("no-host", b"GET", b"/", [(b"Accept", b"*/*")], False),
    ("two-hosts", b"GET", b"/", [HOST, HOST], False),
    ("content-length", b"GET", b"/", [HOST, (b"Content-Length", b"0")], False),
    ("transfer-encoding", b"GET", b"/", [HOST, (b"Transfer-Encoding", b"chunked")], False),
    ("crlf-in-value", b"GET", b"/", [HOST, (b"X", b"a\r\nInjected: 1")], False),
    ("colon-in-name", b"GET", b"/", [HOST, (b"X: y", b"z")], False),
    ("leading-space-value", b"GET", b"/", [HOST, (b"X", b" a")], False),
    ("nul-in-value", b"GET", b"/", [HOST, (b"X", b"a\x00b")], False),
    ("trailing-tab-value", b"GET", b"/", [HOST, (b"X", b"a\t")], False),
    ("form-feed-in-value", b"GET", b"/", [HOST, (b"X", b"a\x0cb")], False),
    ("same-names-again", b"GET", b"/", [HOST, (b"Range", b"bytes=1-2")], True),
    ("space-in-target", b"GET", b"/a b", [HOST], False),
    ("bad-method", b"G(T", b"/", [HOST], False),
]


@pytest.mark.parametrize(
    ("method", "target", "headers", "fast"),
    [case[1:] for case in REQUEST_CASES],
    ids=[case[0] for case in REQUEST_CASES],
)
def test_request_head_table(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], fast: bool
) -> None:
    ours = write_request_head(method, target, headers)
    assert (ours is not None) is fast
    if ours is not None:
        assert ours == h11_request(method, target, headers)
    # Whatever the fast path declines, Exchange still sends what h11 writes (or raises
    # h11's error): the same bytes either way.
    try:
        sent = Exchange(method, target, headers, b"").outgoing
    except httpx.LocalProtocolError:  # h11's refusal, mapped
        assert h11_request(method, target, headers) is None
    else:
        assert sent == h11_request(method, target, headers)


NAME_BYTES = st.sampled_from([b"a", b"X", b"-", b"1", b"~", b" ", b":", b"\r", b"\n", b"\x00"])
VALUE_BYTES = st.sampled_from(
    [b"a", b" ", b"\t", b":", b"\r", b"\n", b"\x00", b"\x01", b"\x0b", b"\x0c", b"\x7f", b"\xff"]
)
names = st.lists(NAME_BYTES, min_size=0, max_size=4).map(b"".join)
values = st.lists(VALUE_BYTES, min_size=0, max_size=5).map(b"".join)


@FAST
@given(
    extra=st.lists(st.tuples(names, values), max_size=4),
    host_at=st.integers(0, 4),
    target=st.sampled_from([b"/", b"/a?b=c", b"/a b", b"", b"/\x7f"]),
)
def test_request_head_matches_h11(
    extra: list[tuple[bytes, bytes]], host_at: int, target: bytes
) -> None:
    headers = list(extra)
    headers.insert(min(host_at, len(headers)), HOST)
    ours = write_request_head(b"GET", target, headers)
    theirs = h11_request(b"GET", target, headers)
    if ours is not None:
        assert ours == theirs
    if theirs is None:
        assert ours is None


# -- responses ------------------------------------------------------------------------

RESPONSE_CASES = [
    (
        "206",
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/99\r\nContent-Length: 10\r\n",
        10,
    ),
    ("no-reason", b"HTTP/1.1 200\r\nContent-Length: 1\r\n", 1),
    ("empty-reason", b"HTTP/1.1 200 \r\nContent-Length: 1\r\n", 1),
    ("http-1.0", b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n", 1),
    ("ows", b"HTTP/1.1 200 OK\r\nContent-Length:  \t7 \r\nX:\r\n", 7),
    ("no-length", b"HTTP/1.1 204 No Content\r\nX: y\r\n", None),
    (
        "connection-close",
        b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n",
        0,
    ),
]
DECLINED = [
    ("informational", b"HTTP/1.1 100 Continue\r\n"),
    ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"),
    ("two-lengths", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n"),
    ("obs-fold", b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n"),
    ("bad-length", b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n"),
    ("huge-length", b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 21 + b"\r\n"),
    ("http-2", b"HTTP/2.0 200 OK\r\nContent-Length: 1\r\n"),
    ("bare-lf", b"HTTP/1.1 200 OK\nContent-Length: 1\r\n"),
    ("space-before-colon", b"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n"),
    ("leading-blank-line", b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n"),
    ("not-http", b"SSH-2.0-OpenSSH_9.6\r\n"),
]


@pytest.mark.parametrize(
    ("block", "length"), [c[1:] for c in RESPONSE_CASES], ids=[c[0] for c in RESPONSE_CASES]
)
def test_response_head_table(block: bytes, length: int | None) -> None:
    parsed = parse_response_head(block)
    assert parsed is not None and parsed[1] == length
    assert_same_as_h11(block, parsed[0])


@pytest.mark.parametrize("block", [c[1] for c in DECLINED], ids=[c[0] for c in DECLINED])
def test_response_head_declined(block: bytes) -> None:
    assert parse_response_head(block) is None


def assert_same_as_h11(block: bytes, head: Head) -> None:
    theirs = h11_response(block + b"\r\n")
    assert theirs is not None
    response, keep_alive = theirs
    assert head == Head(
        response.status_code,
        response.reason,
        response.http_version,
        list(response.headers.raw_items()),
    )
    fast_keep_alive = head.http_version == b"1.1" and not says_close(head.headers)
    assert fast_keep_alive is keep_alive
    if head.fields is not None:
        assert fields_say_close(head.fields) is says_close(head.headers)
    # The field map is what the flows would otherwise make of httpx's Headers.
    if block.isascii():
        assert head.fields == header_map(httpx.Headers(head.headers).multi_items())
    else:
        assert head.fields is None


STATUS_LINES = st.sampled_from(
    [
        b"HTTP/1.1 206 Partial Content",
        b"HTTP/1.1 200",
        b"HTTP/1.0 200 OK",
        b"HTTP/1.1 204 ",
        b"HTTP/1.1 101 Switching",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 200 O\x01K",
        b"HTTP/1.1 200 O\rK",
        b"HTTP/3 200 OK",
    ]
)
FIELD_NAMES = st.sampled_from(
    [
        b"Content-Length",
        b"content-length",
        b"Transfer-Encoding",
        b"Connection",
        b"X-A",
        b"x-a",
        b"",
        b"X A",
        b" X",
    ]
)
FIELD_VALUES = st.lists(
    st.sampled_from([b"1", b"0", b"close", b",", b" ", b"\t", b"a", b"\x00", b"\n", b"\xfe"]),
    max_size=4,
).map(b"".join)


@FAST
@given(status=STATUS_LINES, fields=st.lists(st.tuples(FIELD_NAMES, FIELD_VALUES), max_size=5))
def test_response_head_matches_h11(status: bytes, fields: list[tuple[bytes, bytes]]) -> None:
    block = status + b"\r\n" + b"".join(b"%s:%s\r\n" % field for field in fields)
    parsed = parse_response_head(block)
    theirs = h11_response(block + b"\r\n")
    if parsed is not None:
        head, length = parsed
        assert_same_as_h11(block, head)
        assert theirs is not None
        lengths = [v for n, v in theirs[0].headers if n == b"content-length"]
        assert length == (int(lengths[0]) if lengths else None)
    if theirs is None:
        assert parsed is None


# -- cost: linear in the bytes, for every input -----------------------------------------


def _heads_of(size: int) -> dict[str, bytes]:
    """Blocks of about ``size`` bytes (a head up to its last field's CRLF), valid and
    hostile: the shapes that made a backtracking pattern quadratic."""
    status = b"HTTP/1.1 206 Partial Content\r\n"
    many = status + b"".join(b"X-F%06d: value %d\r\n" % (i, i) for i in range(size // 24))
    return {
        "valid-many-fields": many,
        "valid-one-long-value": status + b"X-Long: " + b"v" * size + b"\r\n",
        "valid-spaced-value": status + b"X-Words: " + b"a " * (size // 2) + b"z\r\n",
        "no-colon": status + b"a" * size + b"\r\n",
        "bad-byte-at-end": status + b"X-Bad: " + b"v" * size + b"\x00\r\n",
        "spaces-then-bad": status + b"X-Bad: " + b"a " * (size // 2) + b"\x0b\r\n",
        "bad-name-at-end": status + b"a" * size + b"(: x\r\n",
        "many-bad-lines": status + b"a a a\r\n" * (size // 7),
        "bare-cr-inside": status + b"X-Cr: " + b"v\r" * (size // 2) + b"\r\n",
    }


def _work(monkeypatch: pytest.MonkeyPatch) -> Callable[[bytes], int]:
    """A parse of a block, returning the bytes handed to the parser's scanning steps
    (each is a bounded number of C passes over what it is given)."""
    from range_streams._net import heads  # noqa: PLC0415

    counted = [0]
    for name in ("split_lines", "parse_status_line", "parse_fields"):
        original = getattr(heads, name)

        def counting(data: Any, original: Callable[[Any], object] = original) -> object:
            # a block or a line is bytes; the field lines are a list of them
            counted[0] += len(data) if isinstance(data, bytes) else sum(map(len, data))
            return original(data)

        monkeypatch.setattr(heads, name, counting)

    def parse(block: bytes) -> int:
        counted[0] = 0
        heads.parse_response_head(block)
        return counted[0]

    return parse


@pytest.mark.parametrize("kind", sorted(_heads_of(1000)))
def test_head_parsing_work_is_linear(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parse = _work(monkeypatch)
    for size in (1_000, 10_000, 100_000):
        block = _heads_of(size)[kind]
        work = parse(block)
        # Each byte goes through the line split and then the status or the fields step.
        assert work <= 2 * len(block), (kind, size, work)


def test_head_parsing_work_counts_what_it_should(monkeypatch: pytest.MonkeyPatch) -> None:
    # The counter sees the work: a valid head is split once and each line parsed once.
    parse = _work(monkeypatch)
    block = b"HTTP/1.1 200 OK\r\nA: b\r\nC: d\r\n"
    assert parse(block) == len(block) + len(b"HTTP/1.1 200 OK") + len(b"A: b") + len(b"C: d")


@pytest.mark.parametrize("segment", [1, 7, 1024])
def test_finding_a_heads_end_is_linear_whatever_the_segments(
    segment: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from range_streams._net import exchange as module  # noqa: PLC0415

    searched = [0]
    pattern = module._BLANK_LINE

    class Counting:
        def search(self, data: bytearray, start: int) -> object:
            searched[0] += len(data) - start
            return pattern.search(data, start)

    monkeypatch.setattr(module, "_BLANK_LINE", Counting())
    for size in (1_000, 10_000, 100_000):
        searched[0] = 0
        wire = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: " + b"p" * size + b"\r\n\r\n"
        exchange = Exchange(b"GET", b"/", [HOST], b"")
        head = None
        for at in range(0, len(wire), segment):
            head = exchange.receive_head(wire[at : at + segment])
        assert head is not None and head.status_code == 200
        # Each byte is searched about once (a few again where the search resumes).
        assert searched[0] <= len(wire) + 2 * (len(wire) // segment + 1), (size, searched[0])
