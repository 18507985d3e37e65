"""A sequential reader keeps the next window in flight (``Readahead.ahead_from``): the
request for window k+1 goes out while window k is still being read, on another
connection; a window requested ahead and not wanted is closed, a failed one asked again.
Asserted on the transport's events (request sent, body read to its end, body closed)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest

import range_streams as rs

from .fakes import FakeServer, payload

URL = "http://files.test/f.bin"
MIB = 1 << 20
DATA = payload(24 * MIB, seed=23)


class Watched(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(
        self,
        inner: httpx.Response,
        key: str,
        events: list[tuple[str, str]],
        hold: threading.Event | None = None,
    ) -> None:
        self.inner, self.key, self.events, self.hold = inner, key, events, hold

    def __iter__(self) -> Iterator[bytes]:
        if self.hold is not None:
            # In memory a window is read in microseconds, faster than a thread starts:
            # hold its last byte until the next window is asked for (or give up), so the
            # order of events says whether that request was made ahead.
            data = self.inner.read()
            yield data[:-1]
            self.hold.wait(timeout=5)
            yield data[-1:]
        else:
            yield from self.inner.iter_raw()
        self.events.append(("done", self.key))

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.inner.iter_raw():
            yield piece
        self.events.append(("done", self.key))

    def close(self) -> None:
        self.events.append(("close", self.key))

    async def aclose(self) -> None:
        self.close()


class Tracker(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """FakeServer behind a transport that logs when each response is sent, read to its
    end and closed (from whichever thread or task does it)."""

    def __init__(
        self, server: FakeServer, fail: set[int] | None = None, hold: bool = False
    ) -> None:
        self.server = server
        self.fail = fail or set()  # window starts answered 503 once
        self.hold = hold  # hold each window's last byte until the next one is asked for
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.asked: dict[int, threading.Event] = {}

    def _asked(self, start: int) -> threading.Event:
        with self.lock:
            return self.asked.setdefault(start, threading.Event())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("range", "")
        first, _, last = key.removeprefix("bytes=").partition("-")
        start = int(first or 0)
        with self.lock:
            self.events.append(("send", key))
            failed = start in self.fail
            self.fail.discard(start)
        # Only once the request is in the log: a test woken by this event reads the log
        # at once (setting it first let a test on a loaded machine miss the request).
        self._asked(start).set()
        if failed:
            return httpx.Response(503)
        response = self.server.handle(request)
        stop = int(last) + 1 if last else len(self.server.data)
        # The first window is a random read: nothing is asked ahead of it.
        held = self.hold and start > 0 and stop < len(self.server.data)
        hold = self._asked(stop) if held else None
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=Watched(response, key, self.events, hold),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self.handle_request(request)

    def sent(self) -> list[tuple[int, int]]:
        spans = []
        for kind, key in self.events:
            if kind == "send":
                first, last = key.removeprefix("bytes=").split("-")
                spans.append((int(first), int(last) + 1))
        return spans

    def index(self, kind: str, key: str) -> int:
        return self.events.index((kind, key))


def key(span: tuple[int, int]) -> str:
    return f"bytes={span[0]}-{span[1] - 1}"


def ahead_file(client: httpx.Client, ahead_from: int = MIB) -> rs.RangeFile:
    # In memory a request waits microseconds: ahead_min_wait=0 asks ahead anyway.
    options = rs.FileOptions(strategy=rs.Readahead(ahead_from=ahead_from, ahead_min_wait=0))
    return rs.RangeFile(URL, client, options)


def read_all(f: rs.RangeFile, size: int = MIB) -> bytes:
    return b"".join(iter(lambda: f.read(size), b""))


def test_the_next_window_is_requested_before_this_one_ends() -> None:
    tracker = Tracker(FakeServer(DATA), hold=True)
    with httpx.Client(transport=tracker) as client, ahead_file(client) as f:
        assert read_all(f) == DATA
    spans = tracker.sent()
    assert spans[0][0] == 0 and spans[-1][1] == len(DATA)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans)), spans
    ahead = [
        (this, following)
        for this, following in itertools.pairwise(spans)
        if tracker.index("send", key(following)) < tracker.index("done", key(this))
    ]
    # Every sequential window (all but the first, a random read) of at least ahead_from
    # (1 MiB here; 8 MiB by default) had its successor asked for before its end was read.
    assert [this for this, _ in ahead] == [s for s in spans[1:-1] if s[1] - s[0] >= MIB]
    assert len(ahead) >= 4
    closes = [k for kind, k in tracker.events if kind == "close"]
    assert sorted(closes) == sorted(key(s) for s in spans)  # nothing left open


def test_by_default_only_windows_of_8_mib_have_the_next_requested_ahead() -> None:
    """A zip member or a small file read through never pays for a window it will not
    read: the request ahead starts once windows reach 8 MiB."""
    assert rs.Readahead().ahead_from == 8 * MIB
    tracker = Tracker(FakeServer(DATA))
    strategy = rs.Readahead(ahead_min_wait=0)
    with httpx.Client(transport=tracker) as c, rs.open(URL, client=c, strategy=strategy) as f:
        for _ in range(6):
            f.read(MIB)
        f.seek(0)
        f.read(10)
    assert all(stop <= 6 * MIB for _, stop in tracker.sent()[:-1])


def test_no_window_ahead_on_a_quick_link() -> None:
    """Requests that wait less than ahead_min_wait (1 ms by default) for their answer are
    on a link too quick for a second connection to pay: none is made."""
    tracker = Tracker(FakeServer(DATA))
    options = rs.FileOptions(strategy=rs.Readahead(ahead_from=MIB, ahead_min_wait=60.0))
    with httpx.Client(transport=tracker) as client, rs.RangeFile(URL, client, options) as f:
        assert read_all(f) == DATA
    spans = tracker.sent()
    for this, following in itertools.pairwise(spans):
        assert tracker.index("done", key(this)) < tracker.index("send", key(following))


def test_no_window_ahead_when_disabled_or_for_random_reads() -> None:
    tracker = Tracker(FakeServer(DATA))
    options = rs.FileOptions(strategy=rs.Readahead(ahead_from=0))
    with httpx.Client(transport=tracker) as client, rs.RangeFile(URL, client, options) as f:
        assert read_all(f) == DATA
    spans = tracker.sent()
    for this, following in itertools.pairwise(spans):
        assert tracker.index("done", key(this)) < tracker.index("send", key(following))

    tracker = Tracker(FakeServer(DATA))
    with httpx.Client(transport=tracker) as client, ahead_file(client) as f:
        for offset in (5 * MIB, 1 * MIB, 17 * MIB, 9 * MIB):
            f.seek(offset)
            assert f.read(4096) == DATA[offset : offset + 4096]
    assert len(tracker.sent()) == 4


def test_a_window_requested_ahead_and_not_wanted_is_closed_unread() -> None:
    tracker = Tracker(FakeServer(DATA))
    with httpx.Client(transport=tracker) as client, ahead_file(client) as f:
        for _ in range(4):
            f.read(MIB)
        # Requested, from another thread, while the fourth read was served.
        assert tracker._asked(4 * MIB).wait(timeout=5)
        ahead = next(span for span in tracker.sent() if span[0] == 4 * MIB)
        f.seek(20 * MIB)
        assert f.read(100) == DATA[20 * MIB : 20 * MIB + 100]
    assert ("close", key(ahead)) in tracker.events
    assert ("done", key(ahead)) not in tracker.events  # dropped, not read through


def test_closing_the_file_closes_the_window_requested_ahead() -> None:
    tracker = Tracker(FakeServer(DATA))
    with httpx.Client(transport=tracker) as client:
        f = ahead_file(client)
        for _ in range(4):
            f.read(MIB)
        assert tracker._asked(4 * MIB).wait(timeout=5)
        f.close()  # waits for the request made ahead, then closes it
    sent = [k for kind, k in tracker.events if kind == "send"]
    closed = [k for kind, k in tracker.events if kind == "close"]
    assert sorted(sent) == sorted(closed)


def test_a_failed_request_ahead_is_asked_again() -> None:
    tracker = Tracker(FakeServer(DATA), fail={4 * MIB})
    with httpx.Client(transport=tracker) as client, ahead_file(client) as f:
        assert read_all(f) == DATA
    starts = [start for start, _ in tracker.sent()]
    assert starts.count(4 * MIB) == 2  # the 503 ahead, then asked again when reached


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_sequential_read_is_exact_and_leaves_nothing_open(backend: str) -> None:
    tracker = Tracker(FakeServer(DATA))

    async def main() -> bytes:
        async with httpx.AsyncClient(transport=tracker) as client:
            strategy = rs.Readahead(ahead_from=MIB, ahead_min_wait=0)
            f = rs.open_async(URL, client=client, strategy=strategy)
            pieces = []
            while piece := await f.read(MIB):
                pieces.append(piece)
            # and one window requested ahead, then abandoned by a seek
            await f.seek(0)
            for _ in range(4):
                await f.read(MIB)
            await f.seek(20 * MIB)
            assert await f.read(10) == DATA[20 * MIB : 20 * MIB + 10]
            await f.aclose()
            await anyio.sleep(0.05)  # a cancelled request-ahead task closes on its own turn
            return b"".join(pieces)

    assert anyio.run(main, backend=backend) == DATA
    sent = [k for kind, k in tracker.events if kind == "send"]
    closed = [k for kind, k in tracker.events if kind == "close"]
    assert sorted(sent) == sorted(closed)
