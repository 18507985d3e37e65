"""The pure parts of range-streams' HTTP/1.1 transport: ``_net/exchange.Exchange``
(framing) and ``_net/pool.IdlePool`` (bookkeeping), fed byte strings split at every
position."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import httpx
import pytest

from range_streams._net.exchange import HEAD_READ, MAX_HEAD, Exchange
from range_streams._net.heads import Head
from range_streams._net.pool import IdlePool

HOST = [(b"Host", b"example.test")]


class WouldBlock(Exception):
    """The exchange asked for more bytes than the peer has sent (and it has not closed)."""


class FakeSocket:
    """Bytes arriving in segments: one ``recv`` returns bytes of one segment only, at most
    ``size`` of them, as a kernel does when segments arrive apart."""

    def __init__(self, segments: list[bytes], closed: bool) -> None:
        self.segments = [s for s in segments if s]
        self.closed = closed

    def recv(self, size: int) -> bytes:
        assert size > 0
        if not self.segments:
            if self.closed:
                return b""
            raise WouldBlock
        segment = self.segments[0]
        piece, rest = segment[:size], segment[size:]
        if rest:
            self.segments[0] = rest
        else:
            self.segments.pop(0)
        return piece

    def leftover(self) -> bytes:
        """Bytes left unread: ``shared.readable`` would see them and discard the socket."""
        return b"".join(self.segments)


def drive(exchange: Exchange, sock: FakeSocket, max_bytes: int) -> tuple[Head, list[bytes]]:
    """What the transports' ``_perform`` loops do with an exchange, minus the I/O."""
    head = None
    while head is None:
        head = exchange.receive_head(sock.recv(HEAD_READ))
    assert exchange.head is head
    pieces: list[bytes] = []
    counted = exchange._length is not None
    while not exchange.done:
        piece = exchange.buffered(max_bytes)
        while not piece and not exchange.done:
            want = exchange.want(max_bytes)
            assert want > 0
            if counted:
                assert want <= max_bytes
            piece = exchange.receive(sock.recv(want))
        if counted:
            assert len(piece) <= max_bytes
        pieces.append(piece)
    # Once done, nothing more comes out.
    assert exchange.buffered(max_bytes) == b""
    return head, pieces


@dataclass
class Case:
    id: str
    wire: bytes
    status: int = 200
    body: bytes = b""
    reusable: bool = True
    closed: bool = False  # the peer closes after ``wire``
    method: bytes = b"GET"
    headers: tuple[tuple[bytes, bytes], ...] = ()


OK_CASES = [
    Case(
        "content-length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
        body=b"hello world",
    ),
    Case(
        "206",
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/100\r\n"
        b"Content-Length: 10\r\n\r\n0123456789",
        status=206,
        body=b"0123456789",
    ),
    Case("content-length-0", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    # Bare LF line ends (old and embedded servers): h11 reads them, and so do we; the
    # connection stays usable (a kept-alive one waited for a CRLF CRLF that never came).
    Case("bare-lf-head", b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello", body=b"hello"),
    Case(
        "mixed-line-ends",
        b"HTTP/1.1 206 Partial\r\nContent-Range: bytes 0-4/9\nContent-Length: 5\r\n\nhello",
        status=206,
        body=b"hello",
    ),
    Case(
        "bare-lf-chunked",
        b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\r\nhello\r\n0\r\n\r\n",
        body=b"hello",
    ),
    Case("bare-lf-no-body", b"HTTP/1.1 204 No Content\n\n", status=204),
    Case(
        "bytes-after-body",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
        body=b"hello",
        reusable=False,
    ),
    Case(
        "bytes-after-empty-body",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nX",
        reusable=False,
    ),
    Case(
        "duplicate-equal-content-length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        body=b"abc",
    ),
    Case(
        "chunked-extensions-trailers",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n",
        body=b"hello world",
    ),
    Case(
        "chunked-empty",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    Case(
        "chunked-bytes-after",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\njunk",
        body=b"abc",
        reusable=False,
    ),
    Case(
        "transfer-encoding-wins-over-content-length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nabcd\r\n0\r\n\r\n",
        body=b"abcd",
    ),
    Case(
        "close-delimited",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
        body=b"until the end",
        reusable=False,
        closed=True,
    ),
    Case("close-delimited-empty", b"HTTP/1.1 200 OK\r\n\r\n", reusable=False, closed=True),
    Case(
        "http10-content-length",
        b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        body=b"hello",
        reusable=False,
    ),
    Case(
        "http10-keep-alive-header",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello",
        body=b"hello",
        reusable=False,
    ),
    Case(
        "http10-close-delimited",
        b"HTTP/1.0 200 OK\r\n\r\nhello",
        body=b"hello",
        reusable=False,
        closed=True,
    ),
    Case(
        "connection-close",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
        body=b"hello",
        reusable=False,
    ),
    Case(
        "connection-close-chunked",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n",
        body=b"ok",
        reusable=False,
    ),
    Case(
        "we-said-close",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        body=b"hello",
        reusable=False,
        headers=((b"Connection", b"close"),),
    ),
    Case(
        "informational-skipped",
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        body=b"ok",
    ),
    Case(
        "head",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
        method=b"HEAD",
    ),
    Case(
        "head-chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        method=b"HEAD",
    ),
    Case(
        "head-no-length",
        b"HTTP/1.1 200 OK\r\n\r\n",
        method=b"HEAD",
    ),
    Case(
        "head-bytes-after",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        method=b"HEAD",
        reusable=False,
    ),
    Case(
        "head-connection-close",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n",
        method=b"HEAD",
        reusable=False,
    ),
    Case("204", b"HTTP/1.1 204 No Content\r\n\r\n", status=204),
    Case(
        "204-with-stray-body",
        b"HTTP/1.1 204 No Content\r\n\r\nxyz",
        status=204,
        reusable=False,
    ),
    Case(
        "304-with-length",
        b'HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\nETag: "x"\r\n\r\n',
        status=304,
    ),
    Case(
        "100-then-204",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        status=204,
    ),
]


def splits(wire: bytes) -> list[list[bytes]]:
    """Every two-piece split, byte by byte, and a few seeded three-piece splits."""
    out = [[wire[:i], wire[i:]] for i in range(len(wire) + 1)]
    out.append([wire[i : i + 1] for i in range(len(wire))])
    rng = random.Random(len(wire))
    for _ in range(30):
        i, j = sorted(rng.randrange(len(wire) + 1) for _ in range(2))
        out.append([wire[:i], wire[i:j], wire[j:]])
    return out


def exchange_for(case: Case) -> Exchange:
    return Exchange(case.method, b"/file", HOST + list(case.headers), b"")


@pytest.mark.parametrize("case", OK_CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("max_bytes", [1, 3, 1 << 20])
def test_exchange_every_split(case: Case, max_bytes: int) -> None:
    for segments in splits(case.wire):
        exchange = exchange_for(case)
        sock = FakeSocket(segments, closed=case.closed)
        head, pieces = drive(exchange, sock, max_bytes)
        assert head.status_code == case.status, segments
        assert b"".join(pieces) == case.body, segments
        assert exchange.done
        assert exchange.received_any
        # What the driver pools: the exchange says so and no stray bytes wait unread.
        reused = exchange.reusable and not sock.leftover()
        assert reused is case.reusable, segments
        if case.reusable:
            assert sock.leftover() == b""  # never read into (or past) the next message


def test_exchange_never_reads_past_a_counted_body() -> None:
    # The next response is already in the kernel: a counted body leaves it there.
    wire = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"
    nxt = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    sock = FakeSocket([wire, b"abcdef" + nxt], closed=False)
    exchange = Exchange(b"GET", b"/", HOST, b"")
    _, pieces = drive(exchange, sock, 1 << 20)
    assert b"".join(pieces) == b"abcdef"
    assert exchange.reusable  # by itself; the driver's readable() check sees ``nxt``
    assert sock.leftover() == nxt


def test_informational_headers_are_not_the_response_headers() -> None:
    exchange = Exchange(b"GET", b"/", HOST, b"")
    head = exchange.receive_head(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    )
    assert head is not None and head.status_code == 200
    assert [name.lower() for name, _ in head.headers] == [b"content-length"]


def test_header_case_and_reason_are_kept() -> None:
    exchange = Exchange(b"GET", b"/", HOST, b"")
    head = exchange.receive_head(
        b"HTTP/1.1 206 Partial Stuff\r\nX-Mixed-CASE: Value\r\nContent-Length: 0\r\n\r\n"
    )
    assert head is not None
    assert head.reason == b"Partial Stuff"
    assert (b"X-Mixed-CASE", b"Value") in head.headers


@dataclass
class ErrorCase:
    id: str
    wire: bytes
    message: str | None  # None: h11's own wording
    received_any: bool = True
    method: bytes = b"GET"


NO_RESPONSE = "Server disconnected without sending a response."

ERROR_CASES = [
    ErrorCase("nothing", b"", NO_RESPONSE, received_any=False),
    ErrorCase("partial-status-line", b"HTTP/1.1 20", "peer unexpectedly closed"),
    ErrorCase("partial-head", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", "peer unexpectedly"),
    ErrorCase("only-informational", b"HTTP/1.1 100 Continue\r\n\r\n", None),
    ErrorCase(
        "short-counted-body",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
        "peer closed connection without sending complete message body:"
        " received 5 bytes, expected 10",
    ),
    ErrorCase(
        "counted-body-missing",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
        "received 0 bytes, expected 3",
    ),
    ErrorCase(
        "short-chunk",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "incomplete chunked read",
    ),
    ErrorCase(
        "no-last-chunk",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        "incomplete chunked read",
    ),
    ErrorCase(
        "bad-chunk-size",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        None,
    ),
    ErrorCase("not-http", b"SSH-2.0-OpenSSH_9.6\r\n\r\n", None),
    ErrorCase(
        "conflicting-content-length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "conflicting Content-Length",
    ),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("max_bytes", [2, 1 << 20])
def test_exchange_errors_every_split(case: ErrorCase, max_bytes: int) -> None:
    for segments in splits(case.wire) if case.wire else [[]]:
        exchange = Exchange(case.method, b"/", HOST, b"")
        sock = FakeSocket(segments, closed=True)
        match = None if case.message is None else re.escape(case.message)
        with pytest.raises(httpx.RemoteProtocolError, match=match):
            drive(exchange, sock, max_bytes)
        assert exchange.received_any is case.received_any
        assert not exchange.reusable


def test_receive_more_than_wanted_keeps_the_rest_and_is_not_reusable() -> None:
    exchange = Exchange(b"GET", b"/", HOST, b"")
    assert exchange.receive_head(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab") is not None
    assert exchange.buffered(1) == b"a"
    assert exchange.buffered(10) == b"b"
    assert exchange.buffered(10) == b""
    assert exchange.want(1 << 20) == 2  # never past the body's end
    assert exchange.want(1) == 1
    assert exchange.receive(b"cdNEXT") == b"cd"  # a driver that asked for more than want()
    assert exchange.done and not exchange.reusable


def test_receive_head_needs_more_and_flags() -> None:
    exchange = Exchange(b"GET", b"/", HOST, b"")
    assert not exchange.received_any
    assert exchange.receive_head(b"HTTP/1.1 200 OK\r\n") is None
    assert exchange.received_any and exchange.head is None and not exchange.done
    head = exchange.receive_head(b"Content-Length: 1\r\n\r\n")
    assert head is not None and not exchange.done
    assert exchange.receive(b"x") == b"x"
    assert exchange.done and exchange.reusable


def test_outgoing_request_bytes() -> None:
    assert Exchange(b"GET", b"/a?b=c", [*HOST, (b"Range", b"bytes=0-9")], b"").outgoing == (
        b"GET /a?b=c HTTP/1.1\r\nHost: example.test\r\nRange: bytes=0-9\r\n\r\n"
    )
    post = Exchange(b"POST", b"/p", [*HOST, (b"Content-Length", b"3")], b"abc")
    assert (
        post.outgoing == b"POST /p HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3\r\n\r\nabc"
    )
    chunked = Exchange(b"POST", b"/p", [*HOST, (b"Transfer-Encoding", b"chunked")], b"abc")
    assert chunked.outgoing.endswith(b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ([], b"", "Missing mandatory Host"),
        (HOST, b"abc", "Too much data for declared Content-Length"),
        ([*HOST, (b"Bad Name", b"x")], b"", "Illegal header name"),
        ([*HOST, (b"X", b"a\r\nInjected: 1")], b"", "Illegal header value"),
    ],
)
def test_outgoing_invalid_requests(
    headers: list[tuple[bytes, bytes]], body: bytes, message: str
) -> None:
    with pytest.raises(httpx.LocalProtocolError, match=message):
        Exchange(b"POST", b"/", headers, body)


# -- IdlePool -------------------------------------------------------------------------

A = ("http", "a.test", 80)
B = ("https", "a.test", 443)


def test_pool_take_from_empty() -> None:
    pool: IdlePool[str] = IdlePool(None, None)
    assert pool.take(A, 0.0) == (None, [])
    assert pool.clear() == []


def test_pool_newest_first_and_per_origin() -> None:
    pool: IdlePool[str] = IdlePool(None, None)
    assert pool.put(A, "a1", 1.0) == []
    assert pool.put(A, "a2", 2.0) == []
    assert pool.put(B, "b1", 3.0) == []
    assert pool.take(A, 10.0) == ("a2", [])
    assert pool.take(B, 10.0) == ("b1", [])
    assert pool.take(B, 10.0) == (None, [])
    assert pool.take(A, 10.0) == ("a1", [])
    assert pool.take(A, 10.0) == (None, [])


@pytest.mark.parametrize(
    ("max_idle", "kept"),
    [(0, []), (1, ["c0"]), (2, ["c0", "c1"]), (None, ["c0", "c1", "c2", "c3"])],
)
def test_pool_max_idle_counts_every_origin(max_idle: int | None, kept: list[str]) -> None:
    pool: IdlePool[str] = IdlePool(max_idle, None)
    refused: list[str] = []
    for i, origin in enumerate([A, B, A, B]):
        refused += pool.put(origin, f"c{i}", float(i))
    assert sorted(refused) == sorted({"c0", "c1", "c2", "c3"} - set(kept))
    assert sorted(pool.clear()) == kept
    # Counting starts over after clear().
    assert pool.put(A, "again", 9.0) == ([] if max_idle != 0 else ["again"])


def test_pool_count_follows_take() -> None:
    pool: IdlePool[str] = IdlePool(1, None)
    assert pool.put(A, "x", 0.0) == []
    assert pool.put(A, "y", 0.0) == ["y"]
    assert pool.take(A, 0.0) == ("x", [])
    assert pool.put(B, "y", 0.0) == []  # a slot came free


@pytest.mark.parametrize(
    ("now", "taken", "expired"),
    [
        (10.0, "c3", []),
        (15.0, "c3", []),  # exactly ``expiry`` after the put: still fresh
        (15.5, None, ["c3", "c2", "c1"]),  # the newest expired: so did the older ones
        (100.0, None, ["c3", "c2", "c1"]),
    ],
)
def test_pool_expiry(now: float, taken: str | None, expired: list[str]) -> None:
    pool: IdlePool[str] = IdlePool(None, 5.0)
    for i, at in enumerate([1.0, 5.0, 10.0], start=1):
        pool.put(A, f"c{i}", at)
    pool.put(B, "other", 0.0)
    got, gone = pool.take(A, now)
    assert (got, sorted(gone)) == (taken, sorted(expired))
    # Expired ones are gone for good; the other origin is untouched until taken.
    if taken is None:
        assert pool.take(A, now) == (None, [])
    assert pool.take(B, 0.0) == ("other", [])
    assert pool.clear() == ([] if taken is None else ["c1", "c2"])


def test_pool_expiry_then_count_is_consistent() -> None:
    pool: IdlePool[str] = IdlePool(2, 1.0)
    pool.put(A, "old1", 0.0)
    pool.put(A, "old2", 0.0)
    assert pool.put(A, "refused", 0.0) == ["refused"]
    got, gone = pool.take(A, 50.0)
    assert (got, sorted(gone)) == (None, ["old1", "old2"])
    assert pool.put(A, "n1", 50.0) == []
    assert pool.put(A, "n2", 50.0) == []
    assert pool.put(A, "n3", 50.0) == ["n3"]


def test_pool_no_expiry() -> None:
    pool: IdlePool[str] = IdlePool(None, None)
    pool.put(A, "c", 0.0)
    assert pool.take(A, 1e12) == ("c", [])


# -- the head's size: one limit, however the bytes arrive ------------------------------


def head_of(size: int, status: bytes = b"200 OK", body: bytes = b"") -> bytes:
    """A valid head of exactly ``size`` bytes (status line to blank line) framing ``body``."""
    start = b"HTTP/1.1 %s\r\nContent-Length: %d\r\nX-Pad: " % (status, len(body))
    pad = size - len(start) - 4
    assert pad >= 0
    return start + b"p" * pad + b"\r\n\r\n"


def segmented(wire: bytes, size: int) -> list[bytes]:
    return [wire[i : i + size] for i in range(0, len(wire), size)]


SEGMENT_SIZES = [1, 7, 1000, 1024, 16 * 1024, 64 * 1024, 1 << 30]


@pytest.mark.parametrize("size", [1024, 16 * 1024, 16 * 1024 + 1, 60_000, MAX_HEAD])
def test_a_head_up_to_the_limit_is_read_however_it_arrives(size: int) -> None:
    wire = head_of(size, body=b"abc") + b"abc"
    for segment in SEGMENT_SIZES[1:] if size > 20_000 else SEGMENT_SIZES:
        exchange = Exchange(b"GET", b"/", HOST, b"")
        head, pieces = drive(exchange, FakeSocket(segmented(wire, segment), closed=False), 1 << 20)
        assert (head.status_code, b"".join(pieces)) == (200, b"abc"), segment
        assert exchange.reusable


@pytest.mark.parametrize("size", [MAX_HEAD + 1, 120_000, 300_000])
def test_a_head_past_the_limit_is_refused_however_it_arrives(size: int) -> None:
    wire = head_of(size) + b"more"
    for segment in SEGMENT_SIZES[2:]:
        exchange = Exchange(b"GET", b"/", HOST, b"")
        with pytest.raises(httpx.RemoteProtocolError, match=f"longer than {MAX_HEAD} bytes"):
            drive(exchange, FakeSocket(segmented(wire, segment), closed=False), 1 << 20)


def test_the_limit_is_configurable() -> None:
    wire = head_of(8192)
    for limit, accepted in [(8191, False), (8192, True), (200_000, True)]:
        exchange = Exchange(b"GET", b"/", HOST, b"", max_head=limit)
        sock = FakeSocket(segmented(wire, 1000), closed=False)
        if accepted:
            assert drive(exchange, sock, 1 << 20)[0].status_code == 200
        else:
            with pytest.raises(httpx.RemoteProtocolError, match="longer than"):
                drive(exchange, sock, 1 << 20)


def test_informational_heads_count_toward_the_limit() -> None:
    # An endless stream of 100 Continue heads must end, as one long head does.
    one = b"HTTP/1.1 100 Continue\r\nX-Pad: " + b"p" * 1000 + b"\r\n\r\n"
    wire = one * (MAX_HEAD // len(one) + 2) + head_of(200)
    for segment in (1024, 1 << 30):
        exchange = Exchange(b"GET", b"/", HOST, b"")
        with pytest.raises(httpx.RemoteProtocolError, match="longer than"):
            drive(exchange, FakeSocket(segmented(wire, segment), closed=False), 1 << 20)
    fewer = one * 3 + head_of(200, body=b"ok") + b"ok"
    exchange = Exchange(b"GET", b"/", HOST, b"")
    assert drive(exchange, FakeSocket(segmented(fewer, 512), closed=False), 1 << 20)[1] == [b"ok"]


@pytest.mark.parametrize(("extension", "ok"), [(100_000, True), (MAX_HEAD + 5000, False)])
def test_chunk_extensions_up_to_the_limit(extension: int, ok: bool) -> None:
    # httpcore gives h11 a 100 KiB limit for an incomplete event (a chunk header here);
    # past it, h11 refuses the line once that much of it is buffered incomplete (with
    # whole-line segments it may see it complete first, as httpx does: memory stays
    # bounded by the limit plus one read either way).
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"5;x="
        + b"e" * extension
        + b"\r\nhello\r\n0\r\n\r\n"
    )
    exchange = Exchange(b"GET", b"/", HOST, b"")
    sock = FakeSocket(segmented(wire, 1000), closed=False)
    if ok:
        assert b"".join(drive(exchange, sock, 1 << 20)[1]) == b"hello"
    else:
        with pytest.raises(httpx.RemoteProtocolError):
            drive(exchange, sock, 1 << 20)
