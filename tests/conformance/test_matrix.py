"""The conformance matrix: every case, through the public API, on every real server.

Each case asserts exact bytes (or one of our exceptions where no right answer exists) and,
where it means something, the requests the server logged: method, ``Range`` and status.
Every request of a case carries a query tag (``?rs=<case>``) that static servers ignore, so
a case reads only its own lines of the shared access log. The outcome of each case is
recorded by the ``matrix`` fixture (``docs/servers-matrix.json`` with
``RANGE_STREAMS_WRITE_MATRIX=1``), and rendered by ``scripts/servers_table.py``.

What a server does is taken from ``docs/servers-observed.json`` (raw probes with plain
httpx), so the expectations here are "given what this server does, the library does X".
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import re
import socket
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import range_streams as rs
from range_streams._net.clients import make_async_client, make_client
from tests.servers.fixtures import MTIME, docroot_bytes
from tests.servers.launch import AccessRecord, RunningServer

from .conftest import Matrix, stale_results

pytestmark = pytest.mark.timeout(60)

SAMPLE = docroot_bytes("sample.bin")
SMALL = docroot_bytes("small.bin")
TEXT = docroot_bytes("text.txt")
N = len(SAMPLE)

OBSERVED_JSON = Path(__file__).resolve().parents[2] / "docs" / "servers-observed.json"
OBSERVED: dict[str, dict[str, Any]] = {
    s["server"]: s for s in json.loads(OBSERVED_JSON.read_text())["servers"]
}


def observed_status(server: RunningServer, probe: str) -> int:
    return int(OBSERVED[server.id]["probes"][probe]["status"])


@dataclass
class Ctx:
    """One case on one server: tagged URLs, clients that record what was sent, the log."""

    server: RunningServer
    case: str
    sent: list[httpx.Request] = field(default_factory=list)
    answers: list[httpx.Response] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    concurrent: bool = False  # requests sent concurrently: logged in any order
    _clients: list[Any] = field(default_factory=list)

    @property
    def ranges(self) -> bool:
        return self.server.spec.ranges

    @property
    def tag(self) -> str:
        return f"rs={self.case}"

    def url(self, name: str = "sample.bin") -> str:
        return f"{self.server.url(name)}?{self.tag}"

    def _hook(self, request: httpx.Request) -> None:
        self.sent.append(request)

    def _answer_hook(self, response: httpx.Response) -> None:
        self.answers.append(response)

    async def _ahook(self, request: httpx.Request) -> None:
        self.sent.append(request)

    def multi_answer(self) -> str:
        """How the first multi-range request was answered: multipart, one range, or not."""
        for response in self.answers:
            if "," not in response.request.headers.get("range", ""):
                continue
            kind = response.headers.get("content-type", "")
            if response.status_code != 206:
                return f"{response.status_code}"
            if kind.startswith("multipart/"):
                return "206 multipart"
            return f"206 one range ({response.headers.get('content-range')})"
        return "no multi-range request"

    def client(self) -> httpx.Client:
        """The library's own default client, plus a hook that keeps every request."""
        client = make_client()
        client.event_hooks = {"request": [self._hook], "response": [self._answer_hook]}
        self._clients.append(client)
        return client

    def async_client(self) -> httpx.AsyncClient:
        client = make_async_client()
        client.event_hooks = {"request": [self._ahook]}
        return client

    def stream(self, name: str = "sample.bin", **kw: Any) -> rs.RangeStream:
        return rs.RangeStream(self.url(name), client=self.client(), **kw)

    def open(self, name: str = "sample.bin", **options: Any) -> rs.RangeFile:
        """The file object, strict by default (``require_ranges``): the matrix records
        how each server answers ranges, so a 200 shows as RangeNotSupportedError here;
        "200 to a ranged request" shows what the default (the file read whole) does."""
        options.setdefault("require_ranges", True)
        return rs.open(self.url(name), client=self.client(), **options)

    def log(
        self,
        count: int,
        where: Callable[[AccessRecord], bool] | None = None,
        *,
        paths: bool = False,
    ) -> list[str]:
        """The server's log lines for this case (``method range status``), once ``count``
        of them are there, in the order they were sent: threaded servers may log one
        request after the next. Concurrent cases are recorded sorted."""
        records = self.server.access_records(
            where or (lambda r: r.target.endswith(self.tag)), min_count=count, timeout=5.0
        )
        lines = [
            f"{r.method} {r.range or '-'} {r.status}" + (f" {_path(r.target)}" if paths else "")
            for r in self._in_send_order(records)
        ]
        self.requests = sorted(lines, key=lambda x: ("," not in x, x)) if self.concurrent else lines
        return lines

    def _in_send_order(self, records: list[AccessRecord]) -> list[AccessRecord]:
        """The k-th logged request with a given Range is the k-th one sent with it."""
        sent: dict[str | None, deque[int]] = defaultdict(deque)
        for i, request in enumerate(self.sent):
            sent[request.headers.get("range")].append(i)
        keyed = []
        for n, record in enumerate(records):
            queue = sent.get(record.range)
            keyed.append((queue.popleft() if queue else len(self.sent) + n, n, record))
        return [record for _, _, record in sorted(keyed, key=lambda k: k[:2])]

    def settled(self) -> list[str]:
        """All of this case's log lines: those logged before a marker request sent now
        (servers log a response the client abandoned when they notice, not before)."""
        marker = f"{self.tag}-end"
        httpx.get(f"{self.server.url('small.bin')}?{marker}", headers={"range": "bytes=0-0"})
        self.server.access_records(lambda r: r.target.endswith(marker), min_count=1, timeout=5)
        return self.log(0)

    def quiet_log(self, sentinel: Callable[[], Any]) -> list[str]:
        """The log after ``sentinel`` ran (one request of ours, known to be the last)."""
        sentinel()
        return self.log(1)

    def close(self) -> None:
        for client in self._clients:
            client.close()


def _path(target: str) -> str:
    return "/redirect" if target.startswith("/redirect") else "/files"


def raises(error: type[BaseException], call: Callable[[], Any]) -> str:
    with pytest.raises(error) as info:
        call()
    return type(info.value).__name__


def status_of(ctx: Ctx, probe: str) -> int:
    return observed_status(ctx.server, probe)


# -- the cases ----------------------------------------------------------------------------------
CASES: dict[str, Callable[[Ctx], str]] = {}


def case(name: str) -> Callable[[Callable[[Ctx], str]], Callable[[Ctx], str]]:
    def register(fn: Callable[[Ctx], str]) -> Callable[[Ctx], str]:
        CASES[name] = fn
        return fn

    return register


@case("single range")
def single(ctx: Ctx) -> str:
    """``bytes=1000-1999``: through RangeStream and through the file object."""
    with ctx.stream() as stream, ctx.open(strategy=rs.ExactReads()) as f:
        f.seek(1000)
        if ctx.ranges:
            stream.add((1000, 2000))
            assert stream.read() == SAMPLE[1000:2000]
            assert f.read(1000) == SAMPLE[1000:2000]
            result = "exact bytes"
        else:
            result = raises(rs.RangeNotSupportedError, lambda: stream.add((1000, 2000)))
            raises(rs.RangeNotSupportedError, lambda: f.read(1000))
    status = 206 if ctx.ranges else 200
    assert ctx.log(2) == [f"GET bytes=1000-1999 {status}"] * 2
    return result


@case("open range")
def open_range(ctx: Ctx) -> str:
    """``bytes=N-``: the rest of the file; its answer tells the length (no extra request)."""
    with ctx.stream() as stream:
        if ctx.ranges:
            stream.add((N - 576, None))
            assert stream.read() == SAMPLE[-576:]
            assert stream.total_bytes == N
            result = "exact bytes, length learned"
        else:
            result = raises(rs.RangeNotSupportedError, lambda: stream.add((N - 576, None)))
    assert ctx.log(1) == [f"GET bytes={N - 576}- {206 if ctx.ranges else 200}"]
    return result


@case("suffix range")
def suffix(ctx: Ctx) -> str:
    """``bytes=-100`` (RangeStream) and an end-relative seek (the file's tail probe)."""
    status = status_of(ctx, "suffix")
    probe = 64 * 1024 + 42
    with ctx.stream() as stream, ctx.open() as f:
        if status == 206:
            stream.add((-100, None))
            assert stream.read() == SAMPLE[-100:]
            assert f.seek(-100, io.SEEK_END) == N - 100
            assert f.read() == SAMPLE[-100:]
            expected = ["GET bytes=-100 206", f"GET bytes=-{probe} 206"]
            result = "exact bytes"
        elif ctx.ranges:  # refused (RangeHTTPServer: 400): learn the length, then absolute
            stream.add((-100, None))
            assert stream.read() == SAMPLE[-100:]
            assert f.seek(-100, io.SEEK_END) == N - 100
            assert f.read() == SAMPLE[-100:]
            expected = [
                f"GET bytes=-100 {status}",
                "GET bytes=0-0 206",
                f"GET bytes={N - 100}-{N - 1} 206",
                f"GET bytes=-{probe} {status}",
                "GET bytes=0-0 206",
                f"GET bytes={N - probe}-{N - 1} 206",
            ]
            result = f"exact bytes after {status}: fell back to bytes=0-0 + absolute range"
        else:
            result = raises(rs.RangeNotSupportedError, lambda: stream.add((-100, None)))
            raises(rs.RangeNotSupportedError, lambda: f.seek(-100, io.SEEK_END))
            expected = ["GET bytes=-100 200", f"GET bytes=-{probe} 200"]
        assert stream.remote.total == (N if ctx.ranges else None)  # no request for it
    assert ctx.log(len(expected)) == expected
    return result


@case("suffix longer than the file")
def long_suffix(ctx: Ctx) -> str:
    """``bytes=-200`` on the 100-byte small.bin: the whole file, however it is answered."""
    status = status_of(ctx, "suffix_longer_than_file")
    with ctx.stream("small.bin") as stream:
        stream.add((-200, None))
        assert stream.read() == SMALL
        assert stream.total_bytes == len(SMALL)
    expected = {
        206: ["GET bytes=-200 206"],
        200: ["GET bytes=-200 200"],  # the whole file is exactly what a long suffix asks
        416: ["GET bytes=-200 416", "GET bytes=0-99 206"],  # 416 said */100
    }.get(status, [f"GET bytes=-200 {status}", "GET bytes=0-0 206", "GET bytes=0-99 206"])
    assert ctx.log(len(expected)) == expected
    if status == 206:
        return "exact bytes"
    if status == 200:
        return "exact bytes: a 200 holding the whole file is the suffix"
    return f"exact bytes after {status}: fell back to an absolute range"


@case("range past the end")
def past_end(ctx: Ctx) -> str:
    """Past the end before the length is known (the server says), and after (we say)."""
    status = status_of(ctx, "past_end")
    with ctx.stream() as stream:
        if status == 416:
            result = raises(rs.RangeNotSatisfiableError, lambda: stream.add((2_000_000, 2_000_100)))
        else:  # a 200 with the whole file: its Content-Length says where the file ends
            result = raises(rs.InvalidRangeError, lambda: stream.add((2_000_000, 2_000_100)))
    with ctx.stream() as stream:
        assert stream.total_bytes == N
        raises(rs.InvalidRangeError, lambda: stream.add((2_000_000, 2_000_100)))
        raises(rs.InvalidRangeError, lambda: stream.add((N - 10, N + 10)))
    with ctx.open(strategy=rs.ExactReads()) as f:
        f.seek(2_000_000)
        assert f.read(10) == b""  # like a local file: reading past the end gives b""
        if ctx.ranges:
            f.seek(N - 76)
            assert f.read(1000) == SAMPLE[-76:]
    length_probe = f"GET bytes=0-0 {200 + 6 * ctx.ranges}"
    expected = [f"GET bytes=2000000-2000099 {status}", length_probe]
    expected.append(f"GET bytes=2000000-2000009 {status}")
    if status == 416 and not OBSERVED[ctx.server.id]["probes"]["past_end"].get("content_range"):
        expected.append(length_probe)  # a 416 without ``*/N``: the length is asked for
    if ctx.ranges:
        expected.append(f"GET bytes={N - 76}-{N - 1} 206")  # 416 told the length
    assert ctx.log(len(expected)) == expected
    return result + "; InvalidRangeError without a request once the length is known"


@case("empty file")
def empty_file(ctx: Ctx) -> str:
    """empty.bin: size 0, every read empty, suffix ranges too (Caddy: ``0--1/0``)."""
    with ctx.stream("empty.bin") as stream:
        assert stream.add((-10, None)) is None  # sent before the length is known
        assert stream.total_bytes == 0
        raises(rs.InvalidRangeError, lambda: stream.add((0, 10)))
    with ctx.stream("empty.bin") as stream:
        assert stream.total_bytes == 0
        assert stream.add((-10, None)) is None
    with ctx.open("empty.bin") as f:
        assert f.seek(0, io.SEEK_END) == 0  # the tail probe
        assert f.read() == b""
        assert f.read_tail(10) == b""
        assert f.read_ranges([(0, 0)]) == [b""]
    with ctx.open("empty.bin") as f:
        assert f.read(10) == b""
        assert f.size == 0
    return "size 0, every read b''"


@case("invalid ranges rejected locally")
def invalid(ctx: Ctx) -> str:
    """Inverted, float, bool, str: refused before anything is sent."""
    with ctx.stream() as stream:
        for bad in [(50, 10), (1.5, 3), (True, 4), ("0", 5), (5,), None, (-5, -10)]:
            raises(rs.InvalidRangeError, lambda bad=bad: stream.add(bad))  # type: ignore[misc]
    with ctx.open() as f:
        raises(rs.InvalidRangeError, lambda: f.read_ranges([(10, 5)]))
        raises(rs.InvalidRangeError, lambda: f.read_ranges([(0, 5), (3.0, 5)]))  # type: ignore[list-item]
        raises(rs.InvalidRangeError, lambda: f.seek(-1))
        raises(rs.InvalidRangeError, lambda: f.seek(1.5))  # type: ignore[arg-type]
    raises(rs.InvalidURLError, lambda: rs.RangeStream("ftp://127.0.0.1/x"))
    with ctx.stream() as stream:
        lines = ctx.quiet_log(lambda: stream.total_bytes)
    assert lines == [f"GET bytes=0-0 {206 if ctx.ranges else 200}"]  # only the sentinel
    return "InvalidRangeError, nothing sent"


MULTI_SPANS = [
    (0, 100),
    (300_000, 300_100),
    (300_050, 300_300),  # overlaps the one before: one group
    (600_000, 600_050),
    (N - 576, N),
]
MULTI_GROUPS = "bytes=0-99,300000-300299,600000-600049,1048000-1048575"


@case("multi-range (read_ranges)")
def multi(ctx: Ctx) -> str:
    status = status_of(ctx, "multi")
    with ctx.open() as f:
        if not ctx.ranges:
            result = raises(rs.RangeNotSupportedError, lambda: f.read_ranges(MULTI_SPANS))
            lines = ctx.settled()
            assert lines[0] == f"GET {MULTI_GROUPS} 200"
            return result
        assert f.read_ranges(MULTI_SPANS) == [SAMPLE[a:b] for a, b in MULTI_SPANS]
        again = [(10, 20), (600_010, 600_020)]  # what was learned is remembered
        assert f.read_ranges(again) == [SAMPLE[a:b] for a, b in again]
    if status == 206:
        lines = ctx.log(2)
        assert lines == [f"GET {MULTI_GROUPS} 206", "GET bytes=10-19,600010-600019 206"]
        return f"exact bytes, one request ({ctx.multi_answer()})"
    singles = ["bytes=0-99", "bytes=300000-300299", "bytes=600000-600049", f"bytes={N - 576}-"]
    singles[-1] += str(N - 1)
    lines = ctx.log(7)
    assert lines[0] == f"GET {MULTI_GROUPS} {status}"
    assert sorted(lines[1:5]) == sorted(f"GET {g} 206" for g in singles)
    assert sorted(lines[5:]) == ["GET bytes=10-19 206", "GET bytes=600010-600019 206"]
    return f"exact bytes: {status} to the multi-range request, then concurrent single ranges"


@case("close ranges (lighttpd merges)")
def multi_close(ctx: Ctx) -> str:
    spans = [(0, 10), (20, 30), (40, 50)]
    with ctx.open(batch=rs.BatchPolicy(max_gap=0)) as f:
        if not ctx.ranges:
            return raises(rs.RangeNotSupportedError, lambda: f.read_ranges(spans[1:]))
        assert f.read_ranges(spans) == [SAMPLE[a:b] for a, b in spans]
    lines = ctx.settled()
    assert lines[0].startswith("GET bytes=0-9,20-29,40-49 ")
    answer = ctx.multi_answer()
    if answer.startswith("206"):
        return f"exact bytes, one request ({answer})"
    return f"exact bytes: {answer} to the multi-range request, then single ranges"


@case("many ranges (>50, split)")
def many(ctx: Ctx) -> str:
    spans = [(i * 13_000, i * 13_000 + 50) for i in range(80)]
    with ctx.open() as f:
        if not ctx.ranges:
            return raises(rs.RangeNotSupportedError, lambda: f.read_ranges(spans))
        got = f.read_ranges(spans)
        assert got == [SAMPLE[a:b] for a, b in spans]
    if ctx.server.name == "lighttpd":
        # lighttpd answers only the first 10 ranges of a longer list: the reader uses
        # those 10, remembers the cap, and asks for the other 70 ten at a time.
        counts = sorted(line.split()[1].count(",") + 1 for line in ctx.log(8))
        assert counts == [10] * 7 + [50]
        return "only the first 10 of 50 ranges came back: cap remembered, 8 requests, exact bytes"
    status = status_of(ctx, "multi")
    if status == 206:
        lines = ctx.log(2)
        counts = sorted(line.split()[1].count(",") + 1 for line in lines)
        assert counts == [30, 50]
        return "exact bytes, 2 requests (50 + 30 ranges)"
    lines = ctx.log(81)
    assert len(lines) == 81 and lines[0].count(",") == 49  # refused once, remembered
    return f"exact bytes: one refused multi-range request ({status}), then 80 single ranges"


@case("length without HEAD")
def length(ctx: Ctx) -> str:
    with ctx.stream() as stream:
        assert stream.total_bytes == N
    with ctx.open() as f:
        assert f.size == N
    status = 206 if ctx.ranges else 200
    assert ctx.log(2) == [f"GET bytes=0-0 {status}"] * 2
    return f"GET bytes=0-0 ({status}), never HEAD"


@case("200 to a ranged request")
def whole(ctx: Ctx) -> str:
    """A server ignoring Range: offset 0 streams through its 200; a read anywhere else
    has the file read whole once (one plain GET), and every read is served from it."""
    with ctx.open(require_ranges=False, strategy=rs.ExactReads()) as f:
        assert f.read(100) == SAMPLE[:100]
        f.seek(5000)
        assert f.read(100) == SAMPLE[5000:5100]  # skipped on the same 200's wire
        f.seek(900_000)
        assert f.read(100) == SAMPLE[900_000:900_100]
        spans = [(10, 20), (600_000, 600_050)]
        assert f.read_ranges(spans) == [SAMPLE[a:b] for a, b in spans]
        if ctx.ranges:
            return "exact bytes (ranges honoured)"
    expected = ["GET bytes=0-99 200", "GET bytes=900000-900099 200", "GET - 200"]
    assert ctx.log(len(expected)) == expected
    with ctx.open() as f:  # require_ranges: the slice refused, never misread
        f.seek(900_000)
        strict = raises(rs.RangeNotSupportedError, lambda: f.read(100))
    with ctx.stream() as stream:
        stream.add((0, 100))
        assert stream.read() == SAMPLE[:100]
    return (
        "offset 0 streams through the 200; elsewhere the file is read whole once (plain"
        f" GET) and served from it; with require_ranges: {strict}"
    )


@case("gzip server, text file")
def gzip_text(ctx: Ctx) -> str:
    """text.txt on every server: identity asked, exact bytes, never ContentEncodingError."""
    with ctx.stream("text.txt") as stream, ctx.open("text.txt") as f:
        if ctx.ranges:
            stream.add((1000, 5000))
            assert stream.read() == TEXT[1000:5000]
            spans = [(0, 100), (100_000, 100_100), (len(TEXT) - 50, len(TEXT))]
            assert f.read_ranges(spans) == [TEXT[a:b] for a, b in spans]
            assert f.read() == TEXT
        else:
            stream.add((0, 5000))
            assert stream.read() == TEXT[:5000]
            assert f.read(5000) == TEXT[:5000]
    assert ctx.sent
    assert {r.headers.get("accept-encoding") for r in ctx.sent} == {"identity"}
    gzip = OBSERVED[ctx.server.id]["probes"]["gzip_text_range"].get("content_encoding")
    if gzip:
        return "exact bytes: Accept-Encoding: identity honoured (gzip otherwise)"
    return "exact bytes, Accept-Encoding: identity"


@pytest.fixture(scope="module")
def redirect_files(docroot: Path) -> Callable[[str], str]:
    def make(server_id: str) -> str:
        name = f"redirect-{server_id}.bin"
        (docroot / name).write_bytes(SAMPLE[:200_000])
        (docroot / name).chmod(0o644)
        return name

    return make


@case("redirect")
def redirect(ctx: Ctx) -> str:
    """Range re-sent to the target; later requests go straight there."""
    name = f"redirect-{ctx.server.id}.bin"
    url = ctx.server.redirect_url(name)
    with rs.RangeStream(url, client=ctx.client()) as stream:
        if ctx.ranges:
            stream.add((1000, 2000))
            assert stream.read() == SAMPLE[1000:2000]
            stream.add((5000, 6000))
            assert stream.read() == SAMPLE[5000:6000]
            first, second, status = "bytes=1000-1999", "bytes=5000-5999", 206
        else:
            assert stream.total_bytes == 200_000
            stream.add((0, 100))
            assert stream.read() == SAMPLE[:100]
            first, second, status = "bytes=0-0", "bytes=0-99", 200
    lines = ctx.log(3, lambda r: name in r.target, paths=True)
    assert lines == [
        f"GET {first} 302 /redirect",
        f"GET {first} {status} /files",
        f"GET {second} {status} /files",
    ]
    return "Range re-sent after the 302; later requests go to the target directly"


@case("If-Range resume")
def if_range_resume(ctx: Ctx) -> str:
    """A backward seek past the history: a resume carrying If-Range (the strong ETag, or
    the date when there is none), never If-Match."""
    limits = rs.BodyLimits(history=1024, skip=64)
    with ctx.stream(limits=limits) as stream:
        stream.add((0, 200_000))
        assert stream.read(100_000) == SAMPLE[:100_000]
        stream.seek(10)
        if ctx.ranges:
            assert stream.read() == SAMPLE[10:200_000]
            result = "exact bytes, If-Range resume"
        else:
            result = raises(rs.RangeNotSupportedError, lambda: stream.read(50))
        validators = stream.remote.validators
    assert validators is not None
    first, resume = ctx.sent
    assert [first.headers["range"], resume.headers["range"]] == [
        "bytes=0-199999",
        "bytes=10-199999",
    ]
    assert "if-range" not in first.headers and "if-match" not in first.headers
    assert "if-match" not in resume.headers
    assert resume.headers["if-range"] == (validators.strong_etag or validators.last_modified)
    ctx.settled()  # Twisted does not log a response the client abandoned (the first one)
    kind = "ETag" if validators.strong_etag else "Last-Modified"
    return f"{result} (If-Range: {kind})"


def rewrite(path: Path, data: bytes, mtime_ns: int) -> None:
    path.write_bytes(data)  # in place: same inode
    os.utime(path, ns=(mtime_ns, mtime_ns))


@case("file rewritten (same size)")
def rewritten(ctx: Ctx) -> str:
    """Validators pinned by the first answer: a rewrite in another second is always caught;
    one in the same second only by servers whose ETag is finer than seconds."""
    path = ctx.server.docroot / f"mut-{ctx.server.id}.bin"
    rng = random.Random(ctx.server.id)
    v1, v2, v3 = (rng.randbytes(8192) for _ in range(3))
    second = MTIME * 1_000_000_000
    rewrite(path, v1, second + 100_000_000)
    path.chmod(0o644)
    # Servers without ranges answer every request with the whole file: read from 0.
    first, later = ((0, 100), (200, 300)) if ctx.ranges else ((0, 100), (0, 200))
    outcomes = []
    with ctx.stream(path.name) as stream:
        assert stream.total_bytes == 8192
        rewrite(path, v2, second + 600_000_000)  # same second, same size
        try:
            stream.add(first)
            data = stream.read()
        except rs.RemoteFileChangedError:
            outcomes.append("same second: RemoteFileChangedError")
        else:
            assert data == v2[slice(*first)]  # the documented limitation: nothing told
            outcomes.append("same second: not detectable (validators unchanged)")
        rewrite(path, v3, second + 5_000_000_000)  # five seconds later, same size
        if ctx.server.name == "lighttpd":
            # lighttpd's stat cache serves new bytes with the old validators for up to a
            # second: nobody can tell until it expires.
            time.sleep(1.2)
        with pytest.raises(rs.RemoteFileChangedError):
            stream.add(later)
            stream.read()
    outcomes.append("later second: RemoteFileChangedError")
    statuses = ctx.log(3, lambda r: path.name in r.target)
    if "412" in statuses[-1]:
        outcomes.append("(412 to If-Match)")
    return "; ".join(outcomes)


@case("file truncated mid-read")
def truncated(ctx: Ctx) -> str:
    """The file shrinks while a long range is being read. Servers close the connection
    (nginx), stall (aiohttp: only the read timeout ends it) or carry on; the bytes read
    are the old version's, then an error. The client's small receive buffer keeps most
    of the file from being in flight before the truncation."""
    path = ctx.server.docroot / f"trunc-{ctx.server.id}.bin"
    data = random.Random(7).randbytes(8 << 20)
    path.write_bytes(data)
    path.chmod(0o644)
    os.utime(path, (MTIME, MTIME))
    transport = httpx.HTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)]
    )
    client = httpx.Client(transport=transport, timeout=httpx.Timeout(5.0, read=1.0))
    client.event_hooks = {"request": [ctx._hook]}
    ctx._clients.append(client)
    retry = rs.RetryPolicy(attempts=2, backoff=0)
    collected = bytearray()
    error: BaseException | None = None
    resumes = Resumes()
    logging.getLogger("range_streams").addHandler(resumes)
    try:
        with rs.RangeStream(ctx.url(path.name), client=client, retry=retry) as stream:
            stream.add((0, len(data)))
            collected += stream.read(1 << 20)
            os.truncate(path, 2 << 20)
            while chunk := stream.read(256 * 1024):
                collected += chunk
    except rs.RangeStreamError as exc:
        error = exc
    finally:
        logging.getLogger("range_streams").removeHandler(resumes)
        path.unlink()
    assert bytes(collected) == data[: len(collected)]  # only ever the old version's bytes
    assert len(ctx.sent) <= 1 + 2 * 3  # bounded: each attempt, one request sent again once
    if error is None:
        assert bytes(collected) == data
        return "all 8 MiB read: already in flight before the truncation"
    # Where the body broke depends on buffering: the resumes' offsets are shown as <got>.
    ctx.requests = [re.sub(r"bytes=[1-9]\d*-", "bytes=<got>-", line) for line in ctx.settled()]
    path_taken = " → ".join([*resumes.faults, type(error).__name__])
    return f"old version's bytes only, then {path_taken}"


class Resumes(logging.Handler):
    """The transient faults the library resumed after (its ``resuming`` warnings)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.faults: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "resuming" in record.getMessage() and isinstance(record.args, tuple):
            self.faults.append(f"{record.args[1]}, resumed")


@case("async")
def async_case(ctx: Ctx) -> str:
    async def main() -> None:
        async with (
            ctx.async_client() as client,
            rs.open_async(ctx.url(), client=client) as f,
            rs.AsyncRangeStream(ctx.url(), client=client, byte_range=(1000, 2000)) as stream,
        ):
            assert await stream.read() == SAMPLE[1000:2000]
            await f.seek(-100, io.SEEK_END)
            assert await f.read() == SAMPLE[-100:]
            spans = [(0, 10), (500_000, 500_010)]
            assert await f.read_ranges(spans) == [SAMPLE[a:b] for a, b in spans]

    if not ctx.ranges:
        return raises(rs.RangeNotSupportedError, lambda: anyio.run(main))
    anyio.run(main)
    return "exact bytes"


# read_ranges falls back to concurrent single ranges; the async case runs two readers.
CONCURRENT = {
    "multi-range (read_ranges)",
    "close ranges (lighttpd merges)",
    "many ranges (>50, split)",
    "gzip server, text file",
    "async",
}


# -- the test --------------------------------------------------------------------------------
@pytest.fixture
def ctx(any_server: RunningServer, request: pytest.FixtureRequest) -> Iterator[Ctx]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.callspec.params["name"].lower()).strip("-")
    made = Ctx(any_server, slug)
    yield made
    made.close()


@pytest.mark.parametrize("name", list(CASES))
def test_matrix(ctx: Ctx, name: str, matrix: Matrix, redirect_files: Callable[[str], str]) -> None:
    if name == "redirect":
        redirect_files(ctx.server.id)
    ctx.concurrent = name in CONCURRENT
    try:
        result = CASES[name](ctx)
    except BaseException as exc:
        matrix.record(
            ctx.server.id,
            name,
            {"result": f"FAILED: {type(exc).__name__}: {exc}"[:400], "requests": ctx.requests},
        )
        raise
    if not ctx.requests:
        ctx.settled()
    matrix.record(ctx.server.id, name, {"result": result, "requests": ctx.requests})


def test_a_changed_result_is_stale() -> None:
    published = {"servers": {"nginx": {"tail": {"result": "exact bytes", "requests": []}}}}
    same = {"nginx": {"tail": {"result": "exact bytes", "requests": ["GET bytes=-1 206"]}}}
    changed = {"nginx": {"tail": {"result": "RangeNotSupportedError"}}}
    unknown = {"caddy": {"tail": {"result": "exact bytes"}}}
    assert stale_results(same, published) == []
    assert stale_results(changed, published) == ["nginx / tail"]
    assert stale_results(unknown, published) == ["caddy / tail"]
    racy = {"nginx": {"file truncated mid-read": {"result": "anything"}}}
    assert stale_results(racy, published) == []
