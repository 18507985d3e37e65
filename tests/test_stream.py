"""RangeStream over httpx.MockTransport: exact Range headers and request counts.

The scenario table runs through both drivers (sync ``RangeStream`` and async
``AsyncRangeStream``): same flows, same requests, same bytes.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from ranges import Range

import range_streams as rs
from range_streams._core.spans import coerce_span, resolve_span

from .fakes import FakeServer, payload

URL = "http://files.test/data/sample.bin"
DATA = payload(10_000)


@dataclass
class Scenario:
    name: str
    ops: list[tuple[Any, ...]]
    ranges_sent: list[str]
    server: dict[str, Any] = field(default_factory=dict)
    stream: dict[str, Any] = field(default_factory=dict)
    error: type[Exception] | None = None


SCENARIOS = [
    Scenario("length via GET 0-0, never HEAD", [("total",)], ["bytes=0-0"]),
    Scenario(
        "one range, read in pieces",
        [("add", (100, 200)), ("read", 10), ("read", -1)],
        ["bytes=100-199"],
    ),
    Scenario(
        "suffix before the length is known",
        [("add", (-22, None)), ("read", -1), ("total",)],
        ["bytes=-22"],
    ),
    Scenario("1.x spelling (-10, 0) is a suffix", [("add", (-10, 0)), ("read", -1)], ["bytes=-10"]),
    Scenario(
        "suffix refused (501) falls back to absolute",
        [("add", (-22, None)), ("read", -1), ("add", (-5, None)), ("read", -1)],
        ["bytes=-22", "bytes=0-0", "bytes=9978-9999", "bytes=9995-9999"],
        server={"suffix_status": 501},
    ),
    Scenario(
        "suffix refused (400), as RangeHTTPServer does",
        [("add", (-22, None)), ("read", -1)],
        ["bytes=-22", "bytes=0-0", "bytes=9978-9999"],
        server={"suffix_status": 400},
    ),
    Scenario(
        "negative stop needs the length first",
        [("add", (10, -5)), ("read", 20)],
        ["bytes=0-0", "bytes=10-9994"],
    ),
    Scenario("open range", [("add", (9_990, None)), ("read", -1)], ["bytes=9990-"]),
    Scenario(
        "re-adding a registered range sends nothing",
        [("add", (0, 50)), ("add", (0, 50)), ("read", -1)],
        ["bytes=0-49"],
    ),
    Scenario("empty range sends nothing", [("add", (5, 5))], []),
    Scenario(
        "backward seek inside the history: no request",
        [("add", (0, 5000)), ("read", 3000), ("seek", 100), ("read", 50)],
        ["bytes=0-4999"],
    ),
    Scenario(
        "backward seek past the history: one If-Range resume",
        [("add", (0, 9000)), ("read", 8000), ("seek", 10), ("read", 50)],
        ["bytes=0-8999", "bytes=10-8999"],
        stream={"limits": rs.BodyLimits(history=1024, skip=64)},
    ),
    Scenario(
        "small forward seek skips on the wire: no request",
        [("add", (0, 9000)), ("read", 10), ("seek", 2000), ("read", 10)],
        ["bytes=0-8999"],
    ),
    Scenario(
        "large forward seek opens a new request",
        [("add", (0, 9000)), ("read", 10), ("seek", 5000), ("read", 10)],
        ["bytes=0-8999", "bytes=5000-8999"],
        stream={"limits": rs.BodyLimits(history=1024, skip=100)},
    ),
    Scenario(
        "200 to a range starting at 0 is the file's own first bytes",
        [("add", (0, 100)), ("read", -1)],
        ["bytes=0-99"],
        server={"ranges": False},
    ),
    Scenario(
        "200 to a range elsewhere is never taken as the slice",
        [("add", (100, 200))],
        ["bytes=100-199"],
        server={"ranges": False},
        error=rs.RangeNotSupportedError,
    ),
    Scenario(
        "a gzipped 206 is refused",
        [("add", (0, 100))],
        ["bytes=0-99"],
        server={"gzip_206": True},
        error=rs.ContentEncodingError,
    ),
    Scenario(
        "a 206 starting elsewhere is refused",
        [("add", (100, 200))],
        ["bytes=100-199"],
        server={"shift_start": 4},
        error=rs.ContentRangeError,
    ),
    Scenario(
        "416 past the end",
        [("total",), ("add", (20_000, 20_010))],
        ["bytes=0-0"],
        error=rs.InvalidRangeError,
    ),
    Scenario(
        "a body cut short is resumed with If-Range",
        [("add", (0, 9000)), ("read", -1)],
        ["bytes=0-8999", "bytes=3000-8999"],
        server={"fail_after": 3000, "failures": 1},
        stream={"retry": rs.RetryPolicy(attempts=2, backoff=0)},
    ),
    Scenario(
        "a silently short body is resumed too",
        [("add", (0, 9000)), ("read", -1)],
        ["bytes=0-8999", "bytes=8990-8999"],
        server={"short_by": 10, "failures": 1},
        stream={"retry": rs.RetryPolicy(attempts=2, backoff=0)},
    ),
    Scenario(
        "faults past the retry budget raise, never loop",
        [("add", (0, 9000)), ("read", -1)],
        ["bytes=0-8999", "bytes=100-8999", "bytes=200-8999"],
        server={"fail_after": 100, "failures": 99},
        stream={"retry": rs.RetryPolicy(attempts=2, backoff=0)},
        error=rs.RetriesExhaustedError,
    ),
    Scenario(
        "replant: head overlap re-requests the rest lazily",
        [("add", (100, 200)), ("add", (50, 150)), ("read", -1), ("activate", 150), ("read", -1)],
        ["bytes=100-199", "bytes=50-149", "bytes=150-199"],
    ),
    Scenario(
        "replant: tail overlap marks the tail",
        [("add", (100, 200)), ("add", (150, 250)), ("activate", 100), ("read", -1)],
        ["bytes=100-199", "bytes=150-249"],
    ),
    Scenario(
        "burn: the overlapped range goes",
        [("add", (100, 200)), ("add", (150, 250)), ("read", -1)],
        ["bytes=100-199", "bytes=150-249"],
        stream={"pruning_level": 1},
    ),
    Scenario(
        "strict: an overlap raises before any request",
        [("add", (100, 200)), ("add", (150, 250))],
        ["bytes=100-199"],
        stream={"pruning_level": 2},
        error=rs.OverlapError,
    ),
    Scenario(
        "single request: one GET, windows onto it",
        [("add", (100, 200)), ("read", -1), ("add", (500, 600)), ("read", 10)],
        ["bytes=0-"],
        stream={"single_request": True},
    ),
]


class Model:
    """What the bytes should be: an independent, trivial model of the windows."""

    def __init__(self, level: int = 0, data: bytes = DATA) -> None:
        self.data = data
        self.windows: list[list[int]] = []  # [start, stop, cursor] each
        self.active: list[int] | None = None
        self.level = level

    def add(self, byte_range: Any) -> None:
        start, stop = resolve_span(coerce_span(byte_range), len(self.data))
        if start == stop:
            return
        for window in self.windows:
            if window[1:] == [stop, start] and window[0] <= start:
                self.active = window  # the same unread range: reused
                return
        for window in list(self.windows):
            _, w_stop, cursor = window
            if stop <= cursor or w_stop <= start or cursor >= w_stop:
                continue  # no overlap with the unread part
            self.windows.remove(window)
            covered = start <= cursor and w_stop <= stop
            inside = cursor <= start and stop <= w_stop
            if self.level == 1 or covered or inside:
                continue  # burnt
            if start <= cursor:
                self.windows.append([stop, w_stop, stop])  # replanted
            else:
                self.windows.append([window[0], start, cursor])  # tail marked
        self.active = [start, stop, start]
        self.windows.append(self.active)

    def activate(self, position: int) -> None:
        self.active = next(w for w in self.windows if w[2] <= position < w[1])

    def seek(self, offset: int) -> None:
        assert self.active is not None
        self.active[2] = self.active[0] + offset

    def read(self, size: int) -> bytes:
        assert self.active is not None
        _, stop, cursor = self.active
        end = stop if size < 0 else min(stop, cursor + size)
        self.active[2] = max(end, cursor)
        return self.data[cursor:end]

    def unread(self) -> list[Range]:
        return sorted(Range(c, s) for (_, s, c) in self.windows if c < s)


async def settle(value: Any) -> Any:
    """The value, awaited if the async flavour returned an awaitable."""
    return await value if inspect.isawaitable(value) else value


async def run_scenario(scenario: Scenario, server: FakeServer, driver: str) -> None:
    """Apply the scenario's operations to a stream and the model, comparing every read."""
    if driver == "sync":
        client: Any = server.client()
        stream: Any = rs.RangeStream(URL, client=client, **scenario.stream)
    else:
        client = server.async_client()
        stream = rs.AsyncRangeStream(URL, client=client, **scenario.stream)
    model = Model(int(scenario.stream.get("pruning_level", 0)))
    try:
        for op, *args in scenario.ops:
            if op == "add":
                await settle(stream.add(args[0]))
                model.add(args[0])
            elif op == "read":
                assert await settle(stream.read(args[0])) == model.read(args[0])
            elif op == "seek":
                stream.seek(args[0])
                model.seek(args[0])
            elif op == "activate":
                stream._active = stream.ranges[args[0]]
                model.activate(args[0])
            else:
                total = stream.total_bytes if driver == "sync" else stream.total_bytes()
                assert await settle(total) == len(DATA)
    finally:
        await settle(stream.close() if driver == "sync" else stream.aclose())
        await settle(client.close() if driver == "sync" else client.aclose())


@pytest.mark.parametrize("driver", ["sync", "async"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario(scenario: Scenario, driver: str) -> None:
    server = FakeServer(DATA, **scenario.server)

    def go() -> None:
        anyio.run(run_scenario, scenario, server, driver)

    if scenario.error is not None:
        with pytest.raises(scenario.error):
            go()
    else:
        go()
    assert server.ranges_sent == scenario.ranges_sent
    assert all(s.method == "GET" for s in server.log)


def test_no_request_until_needed() -> None:
    server = FakeServer(DATA)
    with server.client() as client:
        stream = rs.RangeStream(URL, client=client, byte_range=(0, 10))
        assert server.log == []
        assert stream.read() == DATA[:10]
        assert server.ranges_sent == ["bytes=0-9"]
        stream.close()


def test_ranges_views() -> None:
    server = FakeServer(DATA)
    with server.client() as client, rs.RangeStream(URL, client=client) as stream:
        stream.add((100, 200))
        stream.add(Range(300, 400))
        stream.read(30)
        assert stream.list_ranges() == [Range(100, 200), Range(330, 400)]
        assert stream.spanning_range == Range(100, 400)
        assert list(stream._ranges.ranges()) == [Range(100, 200), Range(300, 400)]
        assert stream.ranges[350] is stream.active_range_response
        stream.read()
        assert stream.list_ranges() == [Range(100, 200)]  # consumed ranges disappear
        assert stream.total_range == Range(0, len(DATA))
        assert (stream.name, stream.domain) == ("sample.bin", "files.test")


def test_remote_file_changed_is_caught_by_if_match() -> None:
    server = FakeServer(DATA)
    with server.client() as client, rs.RangeStream(URL, client=client) as stream:
        stream.add((0, 10))
        server.replace(payload(10_000, seed=8))
        with pytest.raises(rs.RemoteFileChangedError):
            stream.add((20, 30))
        assert server.log[-1].if_match == '"v1"'


def test_remote_file_changed_is_caught_without_server_help() -> None:
    server = FakeServer(DATA, honour_if_match=False)
    with server.client() as client, rs.RangeStream(URL, client=client) as stream:
        stream.add((0, 10))
        server.replace(payload(10_000, seed=8))
        with pytest.raises(rs.RemoteFileChangedError):
            stream.add((20, 30))


def test_change_during_resume_is_not_mixed() -> None:
    """A resume after a fault finds a new version: If-Range gives a 200, which is refused."""
    server = FakeServer(DATA, fail_after=1000, failures=1)
    retry = rs.RetryPolicy(attempts=3, backoff=0)
    with server.client() as client, rs.RangeStream(URL, client=client, retry=retry) as stream:
        stream.add((0, 5000))
        assert stream.read(500) == DATA[:500]
        server.replace(payload(10_000, seed=9))
        with pytest.raises(rs.RemoteFileChangedError):
            stream.read()
        assert server.log[-1].if_range == '"v1"'


def test_redirect_is_followed_and_remembered() -> None:
    server = FakeServer(DATA, redirect_from="/data/sample.bin")
    with server.client() as client, rs.RangeStream(URL, client=client) as stream:
        stream.add((0, 10))
        stream.add((20, 30))
        assert stream.read() == DATA[20:30]
    assert [s.url.split("files.test")[1] for s in server.log] == [
        "/data/sample.bin",
        "/real/data/sample.bin",
        "/real/data/sample.bin",
    ]


def test_total_star_needs_known_total() -> None:
    server = FakeServer(DATA, total_star=True)
    with server.client() as client, rs.RangeStream(URL, client=client) as stream:
        with pytest.raises(rs.ContentRangeError):
            stream.add((0, 10))


@pytest.mark.parametrize(
    "bad_url", ["not a url", "ftp://x/y", "/relative/path", "http://", "http://h:65536/x"]
)
def test_bad_url(bad_url: str) -> None:
    with pytest.raises(rs.InvalidURLError):
        rs.RangeStream(bad_url)


def test_bad_inputs() -> None:
    server = FakeServer(DATA)
    with server.client() as client:
        stream = rs.RangeStream(URL, client=client)
        for bad in [(1.5, 3), (5, 2), (True, 4), "0-9"]:
            with pytest.raises(rs.InvalidRangeError):
                stream.add(bad)
        with pytest.raises(rs.InvalidRangeError):
            stream.read()  # nothing added yet
        with pytest.raises(ValueError):
            rs.RangeStream(URL, client=client, pruning_level=7)
        with pytest.raises(TypeError):
            rs.RangeStream(URL, client=httpx.AsyncClient())  # type: ignore[arg-type]
        stream.add((0, 10))
        stream.close()
        with pytest.raises(rs.StreamClosedError):
            stream.read()
        with pytest.raises(rs.StreamClosedError):
            stream.add((20, 30))
        assert not client.is_closed  # a client passed in is never closed by us


def test_owned_client_is_closed() -> None:
    stream = rs.RangeStream(URL)
    stream.close()
    assert stream.client.is_closed


def test_raise_response_false_defers_the_error() -> None:
    server = FakeServer(DATA, ranges=False)
    with (
        server.client() as client,
        rs.RangeStream(URL, client=client, raise_response=False) as stream,
    ):
        response = stream.add((100, 200))
        assert response is not None and response.error is not None
        with pytest.raises(rs.RangeNotSupportedError):
            stream.read()


def test_http_status_error_is_an_httpx_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(404))
    with httpx.Client(transport=transport) as client, rs.RangeStream(URL, client=client) as stream:
        with pytest.raises(httpx.HTTPStatusError) as caught:
            stream.add((0, 10))
        assert isinstance(caught.value, rs.HTTPStatusError)
        assert caught.value.response.status_code == 404


def test_tail_mark_is_honoured_by_read() -> None:
    server = FakeServer(DATA)
    with server.client() as client, rs.RangeStream(URL, client=client) as stream:
        first = stream.add((100, 200))
        stream.add((150, 250))
        assert first is not None
        assert first.tail_mark == 50
        assert first.read() == DATA[100:150]
        assert first.is_consumed()


def test_chunk_size_rechunks_the_body() -> None:
    server = FakeServer(DATA, chunk=5000)
    with server.client() as client, rs.RangeStream(URL, client=client, chunk_size=100) as stream:
        response = stream.add((0, 1000))
        assert response is not None
        assert stream.read(10) == DATA[:10]
        # The body comes off the wire in 100-byte pieces: what is left of the first one
        # is all the wire's next read gives, however much it is asked for.
        wire = response.body._wire
        assert wire is not None
        assert wire.read(1000) == DATA[10:100]  # type: ignore[attr-defined]
