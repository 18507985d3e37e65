"""Size limits at and past each bound, and the same answers split at every write size,
through httpx's default client and our transport (sync, asyncio, trio).

Ours has one head-size limit, ``HEAD_LIMIT`` (httpcore's 100 KiB), counted over the
whole head (status line through the blank line) whatever the TCP segmentation: a head of
``HEAD_LIMIT`` bytes is read, one byte more is refused. httpcore applies h11's limit to
the head *while it is incomplete*, after each read of up to 64 KiB: a head of
``HEAD_LIMIT + 1`` bytes always passes there, one of ``HEAD_LIMIT + 64 KiB + 2`` or more
never does, and one in between passes or not with how its bytes arrive. In that window
httpx's verdict is not compared (``accepted=None``); ours must be the same every time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest

from . import test_hostile_framing as framing
from .clients import MODES, Known, Outcome, reference_gets, summary, transport_gets
from .server import Play, Reply, routes, serving

# Every case takes milliseconds; a parser that backtracks on a long invalid line would
# take minutes, and fails here instead.
pytestmark = pytest.mark.timeout(15)

HEAD_LIMIT = 100 * 1024  # ours: the most bytes a response head may have
HTTPCORE_READ = 64 * 1024  # what httpcore asks of the socket per read
REFUSED_BY_HTTPX = HEAD_LIMIT + HTTPCORE_READ + 2  # from here on, whatever the reads


def head_of(size: int, *, fields: int = 1, name: bytes = b"X-Pad") -> bytes:
    """A 200 with ``Content-Length: 5``, padded with ``fields`` field lines to a head of
    exactly ``size`` bytes, and its body ``hello``."""
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
    room = size - len(start) - 2
    lines = []
    for i in range(fields):
        share = room // fields + (1 if i < room % fields else 0)
        prefix = b"%s-%d: " % (name, i)
        lines.append(prefix + b"a" * (share - len(prefix) - 2) + b"\r\n")
    head = start + b"".join(lines) + b"\r\n"
    assert len(head) == size
    return head + b"hello"


def chunked_with_line(line: bytes, *, trailer: bytes = b"") -> bytes:
    """A chunked 200 whose first chunk-size line is ``line`` (CRLF included)."""
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%shello\r\n0\r\n%s\r\n" % (
        line,
        trailer,
    )


def chunk_line(size: int) -> bytes:
    """``5;x=...`` + CRLF, ``size`` bytes in all: a chunk extension that long."""
    return b"5;x=" + b"e" * (size - 6) + b"\r\n"


def trailers_of(size: int) -> bytes:
    """Trailer field lines of about ``size`` bytes, each under 1 KiB."""
    line = b"X-T: " + b"t" * 1000 + b"\r\n"
    return line * (size // len(line))


@dataclass(frozen=True)
class Case:
    """``answer`` written ``split`` bytes at a time; ``accepted``: httpx's verdict
    whatever the reads, or None where it depends on them (then ``KNOWN`` says ours)."""

    id: str
    answer: bytes
    accepted: bool | None
    split: int | None = None


def sized(id: str, size: int, split: int | None = None, **shape: int) -> Case:
    if size <= HEAD_LIMIT + 1:
        verdict: bool | None = True
    elif size >= REFUSED_BY_HTTPX:
        verdict = False
    else:
        verdict = None
    return Case(id, head_of(size, **shape), verdict, split)


CASES = [
    # -- one limit on the whole head, in one write and in 1 KiB and prime-sized ones ----
    *(
        case
        for split, tag in [(None, "whole"), (1024, "1k"), (7919, "7919")]
        for case in (
            sized(f"head-limit-minus-1-{tag}", HEAD_LIMIT - 1, split),
            sized(f"head-limit-{tag}", HEAD_LIMIT, split),
            sized(f"head-limit-plus-1-{tag}", HEAD_LIMIT + 1, split),
            sized(f"head-120k-{tag}", 120_000, split),
            sized(f"head-200k-{tag}", 200_000, split),
        )
    ),
    # The sizes of the report: between h11's default 16 KiB and httpcore's 100 KiB.
    sized("head-20k-1k", 20_000, 1024),
    sized("head-60k-whole", 60_000),
    sized("head-60k-1k", 60_000, 1024),
    sized("head-60k-997", 60_000, 997),
    # -- one huge field line (every head-* case above), a huge name, many small lines ----
    sized("one-field-name-90k", 90_000, name=b"N" * 89_900),
    sized("many-fields-at-limit", HEAD_LIMIT, fields=4000),
    sized("many-fields-at-limit-1k", HEAD_LIMIT, 1024, fields=4000),
    sized("many-fields-past-limit", 200_000, fields=8000),
    # -- invalid lines, long: refused, and quickly ------------------------------------
    Case(
        "invalid-line-60k-no-colon",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n" + b"a" * 60_000 + b"\r\n\r\nhello",
        False,
    ),
    Case(
        "invalid-line-60k-nul-at-end",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: " + b"b " * 30_000 + b"\x00\r\n\r\nhello",
        False,
    ),
    Case(
        "invalid-line-60k-space-in-name",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n" + b"a" * 60_000 + b" x: y\r\n\r\nhello",
        False,
    ),
    # -- chunk extensions and trailers: h11's limit, now the same number ----------------
    Case("chunk-extension-at-limit", chunked_with_line(chunk_line(HEAD_LIMIT)), True),
    Case("chunk-extension-at-limit-1k", chunked_with_line(chunk_line(HEAD_LIMIT)), True, 1024),
    Case("chunk-extension-40k-1k", chunked_with_line(chunk_line(40_000)), True, 1024),
    Case("chunk-extension-past-limit", chunked_with_line(chunk_line(200_000)), False),
    Case("trailers-60k", chunked_with_line(b"5\r\n", trailer=trailers_of(60_000)), True, 1024),
    Case("trailers-past-limit", chunked_with_line(b"5\r\n", trailer=trailers_of(200_000)), False),
    # Many informational heads (45 KB in all), each small, before the answer.
    Case("1xx-1000-then-200", framing.EARLY_HINTS * 1000 + framing.HELLO, True),
]

_REFUSED = "RemoteProtocolError"
_ONE_LIMIT = (
    "One head-size limit, on the whole head, whatever the segmentation. httpcore checks"
    " h11's limit only while the head is incomplete, after each read of up to 64 KiB:"
    " a head one byte over passes there always, and one of up to 164 KiB passes when a"
    " read happens to carry its end."
)
KNOWN = {
    case.id: Known(_ONE_LIMIT, ours=(_REFUSED, (200, b"real")))
    for case in CASES
    if case.id.startswith(("head-limit-plus-1", "head-120k"))
}


@functools.cache
def reference(answer: bytes, split: int | None, then: str) -> tuple[Outcome, ...]:
    with serving(play(answer, split, then)) as server:
        return reference_gets([server.url("/1"), server.url("/2")])


def play(answer: bytes, split: int | None, then: str = "keep") -> Play:
    return routes(
        {
            "/1": lambda request: Reply(answer, split=split, then=then),
            "/2": lambda request: Reply(framing.REAL),
        }
    )


def check(
    case_id: str,
    answer: bytes,
    split: int | None,
    accepted: bool | None,
    mode: str,
    then: str = "keep",
) -> None:
    with serving(play(answer, split, then)) as server:
        ours = transport_gets(mode, [server.url("/1"), server.url("/2")])
    theirs = reference(answer, split, then)
    known = KNOWN.get(case_id) or framing.KNOWN.get(case_id)
    if known is not None:
        assert summary(ours) == known.ours, known.reason
        assert known.httpx is None or summary(theirs) in known.httpx
        return
    assert accepted is not None, "httpx's verdict varies here: KNOWN must say what ours does"
    assert theirs[0].accepted is accepted, "httpx's verdict is not the one in the table"
    assert ours == theirs


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_limits_as_httpx(case: Case, mode: str) -> None:
    check(case.id, case.answer, case.split, case.accepted, mode)


# -- the same answers, split at every write size --------------------------------------

SPLITS = [1, 3, 7, 1024]  # and whole: every framing case
# Not the smuggling cases: bytes after an answer that arrive after the client's check of
# the idle connection cannot be told from the next answer, by any client. Written in one
# piece with the answer (test_hostile_framing), they arrive together on loopback.
SPLIT_CASES = [
    case
    for case in framing.CASES
    if case.id
    in {
        "cl-plain",
        "cl-conflicting",
        "te-and-cl",
        "chunk-extensions",
        "chunk-trailers",
        "chunk-size-0x",
        "obs-fold",
        "line-without-colon",
        "value-obs-text",
        "status-no-reason",
        "http11-no-length",
        "1xx-three-103-then-200",
        "bare-lf",
        "bare-lf-chunked",
    }
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("case", SPLIT_CASES, ids=[case.id for case in SPLIT_CASES])
def test_split_at_every_write_size(case: framing.Case, split: int, mode: str) -> None:
    check(case.id, case.answer, split, case.accepted, mode, case.then)


def test_sizes_are_what_they_say() -> None:
    assert len(head_of(HEAD_LIMIT).split(b"\r\n\r\n")[0]) + 4 == HEAD_LIMIT
    assert len(chunk_line(HEAD_LIMIT)) == HEAD_LIMIT
    assert len({case.id for case in CASES}) == len(CASES)
