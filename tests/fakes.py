"""An in-process range server for ``httpx.MockTransport``, with switchable misbehaviour.

It logs every request (method, Range, preconditions) so tests can assert on exactly
what was sent, and serves bodies as streams, as a real transport does.
"""

from __future__ import annotations

import gzip
import random
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Sent:
    method: str
    range: str | None
    if_match: str | None
    if_range: str | None
    url: str


class _Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, data: bytes, chunk: int, fail_after: int | None, loud: bool) -> None:
        self.data, self.chunk, self.fail_after, self.loud = data, chunk, fail_after, loud

    def _pieces(self) -> Iterator[bytes]:
        sent = 0
        for i in range(0, len(self.data), self.chunk):
            piece = self.data[i : i + self.chunk]
            if self.fail_after is not None and sent + len(piece) > self.fail_after:
                yield piece[: self.fail_after - sent]
                if self.loud:
                    raise httpx.RemoteProtocolError("peer closed connection mid-body")
                return
            sent += len(piece)
            yield piece

    def __iter__(self) -> Iterator[bytes]:
        yield from self._pieces()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces():
            yield piece


@dataclass
class FakeServer:
    data: bytes
    etag: str | None = '"v1"'
    last_modified: str | None = "Wed, 21 Oct 2026 07:28:00 GMT"
    ranges: bool = True  # False: answer 200 with the whole file
    suffix_status: int | None = None  # e.g. 501: refuse suffix ranges
    gzip_206: bool = False  # compress range bodies whatever Accept-Encoding says
    honour_if_match: bool = True
    shift_start: int = 0  # Content-Range start off by this much
    short_by: int = 0  # bodies end this many bytes early (then the stream errors)
    fail_after: int | None = None  # break the body after this many bytes
    failures: int = 0  # how many responses break (fail_after / short_by), then heal
    total_star: bool = False  # send bytes a-b/* instead of the total
    chunk: int = 4096
    redirect_from: str | None = None  # path that 302s to the real one
    multi_status: int = 416  # answer to a multi-range request (Werkzeug: 416, Tornado: 200)
    log: list[Sent] = field(default_factory=list)

    def replace(self, data: bytes, etag: str | None = '"v2"') -> None:
        self.data, self.etag = data, etag

    @property
    def ranges_sent(self) -> list[str | None]:
        return [s.range for s in self.log]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport())

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport())

    def _validators(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["etag"] = self.etag
        if self.last_modified:
            headers["last-modified"] = self.last_modified
        return headers

    def handle(self, request: httpx.Request) -> httpx.Response:
        h = request.headers
        self.log.append(
            Sent(
                request.method,
                h.get("range"),
                h.get("if-match"),
                h.get("if-range"),
                str(request.url),
            )
        )
        if self.redirect_from and request.url.path == self.redirect_from:
            return httpx.Response(302, headers={"location": "/real" + self.redirect_from})
        headers = self._validators()
        n = len(self.data)
        if_match = h.get("if-match")
        if self.honour_if_match and if_match and if_match != self.etag:
            return httpx.Response(412, headers=headers)
        spec = h.get("range")
        if_range = h.get("if-range")
        if if_range and if_range not in (self.etag, self.last_modified):
            spec = None  # RFC 9110: a failed If-Range means the whole file
        if request.method == "HEAD":
            return httpx.Response(200, headers={**headers, "content-length": str(n)})
        if spec is None or not self.ranges:
            return self._body(200, self.data, headers)
        if "," in spec:
            if self.multi_status == 200:
                return self._body(200, self.data, headers)
            return httpx.Response(self.multi_status, headers=headers)
        match = RANGE_RE.match(spec)
        assert match, f"the client sent a malformed Range: {spec!r}"
        first, last = match.groups()
        if first == "":
            if self.suffix_status:
                return httpx.Response(self.suffix_status, headers=headers)
            start, stop = max(n - int(last), 0), n
        else:
            start = int(first)
            stop = min(int(last) + 1, n) if last else n
        if start >= n:
            return httpx.Response(416, headers={**headers, "content-range": f"bytes */{n}"})
        body = self.data[start:stop]
        total = "*" if self.total_star else str(n)
        cr_start = start + self.shift_start
        headers["content-range"] = f"bytes {cr_start}-{cr_start + len(body) - 1}/{total}"
        if self.gzip_206:
            headers["content-encoding"] = "gzip"
            body = gzip.compress(body)
        return self._body(206, body, headers)

    def _body(self, status: int, body: bytes, headers: dict[str, str]) -> httpx.Response:
        headers["content-length"] = str(len(body))
        fail_after = None
        if self.failures > 0 and (self.fail_after is not None or self.short_by):
            self.failures -= 1
            fail_after = (
                self.fail_after if self.fail_after is not None else len(body) - self.short_by
            )
        stream = _Body(body, self.chunk, fail_after, loud=self.fail_after is not None)
        return httpx.Response(status, headers=headers, stream=stream)


def payload(n: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)
