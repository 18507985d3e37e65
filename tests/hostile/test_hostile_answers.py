"""Answers to range requests, through the library's own paths (``range_streams.open`` /
``open_async`` and ``read``, on a client ``make_client`` / ``make_async_client`` made,
sync, asyncio and trio) and through httpx's default client sending the same ``Range``.

Two tables. ``FRAMED``: one well-formed 206 for the range asked, framed in every way a
server may frame it (chunked, close-delimited, 1xx first, bare LF, split a byte at a
time ...): both must return the same bytes. ``DOUBTFUL``: 206s whose bytes are not the
ones asked for, or not of one version of the file. httpx's client, which does not know
what was asked, hands them over; ours refuses each with a named error, on purpose
(``KNOWN`` says which and why).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass

import pytest

import range_streams as rs

from .clients import MODES, TIMEOUT, Known, library_reads, reference_ranges, summary
from .server import HostileServer, Reply, Request, serving

pytestmark = pytest.mark.timeout(30)

DATA = bytes((i * 7) % 256 for i in range(8192))
FIRST, SECOND = (0, 100), (1000, 1100)
ETAG = b'"v1"'


def asked(request: Request) -> tuple[int, int]:
    """The ``[start, stop)`` a ``bytes=a-b`` request asks for."""
    value = request.header("range") or ""
    first, _, last = value.removeprefix("bytes=").partition("-")
    return int(first), int(last) + 1


def partial(
    start: int,
    stop: int,
    *,
    body: bytes | None = None,
    fields: tuple[bytes, ...] = (),
    content_range: bytes | None = None,
    total: int = len(DATA),
    etag: bytes = ETAG,
    length: bool = True,
    eol: bytes = b"\r\n",
    status: bytes = b"HTTP/1.1 206 Partial Content",
    prefix: bytes = b"",
) -> bytes:
    """A 206 for ``[start, stop)``: DATA's bytes unless ``body``; Content-Range as it
    should be unless ``content_range``; Content-Length unless not ``length``."""
    body = DATA[start:stop] if body is None else body
    lines = [status, b"ETag: " + etag]
    lines.append(
        b"Content-Range: " + (content_range or b"bytes %d-%d/%d" % (start, stop - 1, total))
    )
    if length:
        lines.append(b"Content-Length: %d" % len(body))
    lines.extend(fields)
    return prefix + eol.join(lines) + eol + eol + body


def chunked(data: bytes, size: int = 7) -> bytes:
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x;n=%d\r\n%s\r\n" % (len(p), i, p) for i, p in enumerate(pieces)) + (
        b"0\r\nX-Trailer: done\r\n\r\n"
    )


Answer = Callable[[Request], Reply]


def each(build: Callable[[int, int], bytes], **reply: object) -> Answer:
    """Every request gets ``build(start, stop)`` of the range it asked for."""
    return lambda request: Reply(build(*asked(request)), **reply)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Case:
    """``play()`` makes a fresh play for each server (some remember what they saw)."""

    id: str
    play: Callable[[], Answer]


TE = b"Transfer-Encoding: chunked"
FRAMED = [
    Case("content-length", lambda: each(partial)),
    Case("content-length-split-1", lambda: each(partial, split=1)),
    Case(
        "chunked-extensions-trailers",
        lambda: each(
            lambda a, b: partial(a, b, length=False, fields=(TE,), body=chunked(DATA[a:b]))
        ),
    ),
    Case(
        "chunked-split-3",
        lambda: each(
            lambda a, b: partial(a, b, length=False, fields=(TE,), body=chunked(DATA[a:b])), split=3
        ),
    ),
    Case("close-delimited", lambda: each(lambda a, b: partial(a, b, length=False), then="close")),
    Case(
        "http10-close-delimited",
        lambda: each(
            lambda a, b: partial(a, b, length=False, status=b"HTTP/1.0 206 Partial Content"),
            then="close",
        ),
    ),
    Case(
        "connection-close",
        lambda: each(lambda a, b: partial(a, b, fields=(b"Connection: close",)), then="close"),
    ),
    Case(
        "1xx-first",
        lambda: each(
            lambda a, b: partial(a, b, prefix=b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")
        ),
    ),
    Case("obs-fold", lambda: each(lambda a, b: partial(a, b, fields=(b"X-Folded: one", b"  two")))),
    Case("bare-lf", lambda: each(lambda a, b: partial(a, b, eol=b"\n"))),
    Case("bare-lf-split-2", lambda: each(lambda a, b: partial(a, b, eol=b"\n"), split=2)),
    Case(
        "large-head-60k",
        lambda: each(lambda a, b: partial(a, b, fields=(b"X-Pad: " + b"p" * 60_000,))),
    ),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", FRAMED, ids=[case.id for case in FRAMED])
def test_framed_answers_give_the_same_bytes(case: Case, mode: str) -> None:
    with serving(case.play()) as server:
        theirs = reference_ranges(server.url("/f"), [FIRST, SECOND])
    with serving(case.play()) as server:
        ours = library_reads(mode, server.url("/f"), made, [FIRST, SECOND])
    assert summary(theirs) == (DATA[slice(*FIRST)], DATA[slice(*SECOND)])
    assert ours == theirs


def made(run_async: bool) -> object:
    make = rs.make_async_client if run_async else rs.make_client
    return make(timeout=TIMEOUT, trust_env=False)


# -- answers that are not the bytes asked for -----------------------------------------------


def second_differs(build: Callable[[int, int], bytes]) -> Answer:
    """The first request gets a true 206; every later one ``build(start, stop)``."""
    seen: list[Request] = []

    def answer(request: Request) -> Reply:
        seen.append(request)
        start, stop = asked(request)
        return Reply(partial(start, stop) if len(seen) == 1 else build(start, stop))

    return answer


DOUBTFUL = [
    Case("wrong-start", lambda: each(lambda a, b: partial(a + 100, b + 100))),
    Case("shorter-than-asked", lambda: each(lambda a, b: partial(a, b - 50))),
    Case(
        "no-content-range",
        lambda: each(lambda a, b: partial(a, b).replace(b"Content-Range", b"X-Range")),
    ),
    Case("content-range-past-total", lambda: each(lambda a, b: partial(a, b, total=50))),
    Case(
        "unparsable-content-range",
        lambda: each(lambda a, b: partial(a, b, content_range=b"bytes 0-99")),
    ),
    Case(
        "length-disagrees-with-range",
        lambda: each(lambda a, b: partial(a, b, body=DATA[a : b - 10])),
    ),
    Case(
        "gzip-encoded",
        lambda: each(
            lambda a, b: partial(
                a, b, body=gzip.compress(DATA[a:b], mtime=0), fields=(b"Content-Encoding: gzip",)
            )
        ),
    ),
    Case("etag-changes", lambda: second_differs(lambda a, b: partial(a, b, etag=b'"v2"'))),
    Case("length-changes", lambda: second_differs(lambda a, b: partial(a, b, total=len(DATA) + 1))),
]

KNOWN = {
    "wrong-start": Known(
        "The 206 holds other bytes than those asked for (Content-Range starts elsewhere).",
        ours=("ContentRangeError",),
        httpx=((DATA[100:200], DATA[1100:1200]),),
    ),
    "shorter-than-asked": Known(
        "The 206 holds fewer bytes than asked for, and does not end at the file's end.",
        ours=("ContentRangeError",),
        httpx=((DATA[0:50], DATA[1000:1050]),),
    ),
    "no-content-range": Known(
        "A 206 without Content-Range does not say which bytes it holds.",
        ours=("ContentRangeError",),
        httpx=((DATA[0:100], DATA[1000:1100]),),
    ),
    "content-range-past-total": Known(
        "Content-Range ends past the total it states: not a possible range.",
        ours=("ContentRangeError",),
        httpx=((DATA[0:100], DATA[1000:1100]),),
    ),
    "unparsable-content-range": Known(
        "Content-Range without a total (or otherwise unparsable).",
        ours=("ContentRangeError",),
        httpx=((DATA[0:100], DATA[1000:1100]),),
    ),
    "length-disagrees-with-range": Known(
        "Content-Length says 90 bytes, Content-Range 100: one of them is wrong.",
        ours=("ContentRangeError",),
        httpx=((DATA[0:90], DATA[1000:1090]),),
    ),
    "gzip-encoded": Known(
        "A content-coded 206 holds a range of the encoded bytes, not of the file: httpx"
        " decodes it (right here only because the server compressed the range alone).",
        ours=("ContentEncodingError",),
        httpx=((DATA[0:100], DATA[1000:1100]),),
    ),
    "etag-changes": Known(
        "The second answer is of another version of the file (ETag): mixing the two"
        " would return bytes of neither.",
        ours=(DATA[0:100], "RemoteFileChangedError"),
        httpx=((DATA[0:100], DATA[1000:1100]),),
    ),
    "length-changes": Known(
        "The second answer states another length: another version of the file.",
        ours=(DATA[0:100], "RemoteFileChangedError"),
        httpx=((DATA[0:100], DATA[1000:1100]),),
    ),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", DOUBTFUL, ids=[case.id for case in DOUBTFUL])
def test_doubtful_answers_are_refused(case: Case, mode: str) -> None:
    known = KNOWN[case.id]
    with serving(case.play()) as server:
        theirs = reference_ranges(server.url("/f"), [FIRST, SECOND])
    with serving(case.play()) as server:
        ours = library_reads(mode, server.url("/f"), made, [FIRST, SECOND])
        assert_bounded(server)
    assert summary(theirs) in known.httpx  # type: ignore[operator]
    assert summary(ours) == known.ours, known.reason


def assert_bounded(server: HostileServer) -> None:
    """A refused answer is refused, not retried at length: a few requests at most."""
    assert len(server.requests) <= 4, [r.header("range") for r in server.requests]


def test_tables_are_consistent() -> None:
    assert set(KNOWN) == {case.id for case in DOUBTFUL}
    assert len({case.id for case in FRAMED + DOUBTFUL}) == len(FRAMED) + len(DOUBTFUL)
