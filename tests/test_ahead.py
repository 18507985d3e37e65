"""fetch_many starts the next items (flow primed, request built, no I/O) while the
workers wait for answers; what goes over the wire is still what the client says at the
moment each request is sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

import range_streams as rs
from range_streams._flows.batch import BatchPolicy
from range_streams._flows.body import RetryPolicy
from range_streams._runtime import backends as _backends
from range_streams._state import item_queue as _item_queue
from tests.slow_server import DATA, PrimeLog, RangeHandler, SendLog, serving

DELAY = 0.1  # the server's answer time: items start ahead ~15 ms into it


class SlowHandler(RangeHandler):
    """Answers each range after ``seconds``; records when each request arrived, its
    target and its headers (names lowercased)."""

    seen: list[tuple[float, str, dict[str, str]]]
    seconds = DELAY

    def delay(self) -> float:
        return self.seconds

    def arrived(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.seen.append((time.perf_counter(), self.path, headers))


@pytest.fixture
def slow_server() -> Iterator[tuple[str, type[SlowHandler]]]:
    handler = type("Recording", (SlowHandler,), {"seen": []})
    with serving(handler) as url:
        yield url, handler


def _items(url: str, count: int) -> list[tuple[str, list[tuple[int, int]]]]:
    return [(f"{url}?n={i}", [(i * 100, i * 100 + 100)]) for i in range(count)]


class AheadLog:
    """When each item was started ahead, and whether each built request was sent."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: list[float] = []
        self.fits: list[bool] = []
        start_ahead, fits = _item_queue.ItemQueue._start_ahead, _backends.Prepared.fits

        def logged_start_ahead(queue: Any, host: Any) -> None:
            before = len(queue._hosts)
            start_ahead(queue, host)
            if len(queue._hosts) > before:
                self.started.append(time.perf_counter())

        def logged_fits(prebuilt: Any, client: Any) -> bool:
            self.fits.append(fits(prebuilt, client))
            return self.fits[-1]

        monkeypatch.setattr(_item_queue.ItemQueue, "_start_ahead", logged_start_ahead)
        monkeypatch.setattr(_backends.Prepared, "fits", logged_fits)


def test_items_start_ahead_and_their_requests_are_sent(
    slow_server: tuple[str, type[SlowHandler]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = slow_server
    log = AheadLog(monkeypatch)
    items = _items(url, 8)
    results = anyio.run(lambda: rs.fetch_many(items, concurrency=2))
    assert [r.data for r in results] == [[DATA[i * 100 : i * 100 + 100]] for i in range(8)]
    assert all(r.requests == 1 for r in results)
    # Every item after each worker's first was started during a wait, and the request
    # built then is the one that went out (the first two were built when taken).
    assert len(log.started) == 6
    assert log.fits == [True] * 8
    assert len(handler.seen) == 8
    for _, _, headers in handler.seen:
        assert headers["accept-encoding"] == "identity"
        assert headers["host"] == url.split("/")[2]


class HeldHandler(SlowHandler):
    """Holds every answer until ``release`` is set (or 10 s pass: a broken test fails
    rather than hangs)."""

    release: threading.Event

    def delay(self) -> float:
        self.release.wait(10)
        return 0.0


@pytest.mark.parametrize("change", ["header", "cookie"])
def test_a_client_changed_meanwhile_is_what_later_requests_carry(
    monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A request built ahead is sent only if the client is as it was: a header set or a
    cookie stored in between (by a callback, another task, or a Set-Cookie) is sent."""
    handler = type("Held", (HeldHandler,), {"seen": [], "release": threading.Event()})
    log = AheadLog(monkeypatch)
    results: list[rs.FetchResult] = []

    async def main(url: str) -> None:
        client = rs.make_async_client()

        async def change_client() -> None:
            # Items 0 and 1 are sent and held by the server; items 2 and 3 have been
            # started ahead (their requests built) but cannot be sent before an answer.
            while len(log.started) < 2:
                await anyio.sleep(0.001)
            if change == "header":
                client.headers["X-Batch"] = "late"
            else:
                client.cookies.set("session", "abc")
            handler.release.set()

        async with client, anyio.create_task_group() as group:
            group.start_soon(change_client)
            results.extend(await rs.fetch_many(_items(url, 6), concurrency=2, client=client))

    with serving(handler) as url:
        anyio.run(main, url)
    assert len(results) == 6 and all(r.error is None for r in results)
    by_item = {int(path.rsplit("=", 1)[1]): headers for _, path, headers in handler.seen}
    assert sorted(by_item) == list(range(6))
    name, value = ("x-batch", "late") if change == "header" else ("cookie", "session=abc")
    assert [by_item[n].get(name) for n in range(6)] == [None, None] + [value] * 4
    if change == "header":  # the requests built before the change were not sent
        assert False in log.fits
    # (A cookie to send takes httpx's own path, which builds the request anew.)


def test_a_cancelled_batch_closes_what_it_started_ahead(
    slow_server: tuple[str, type[SlowHandler]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = slow_server
    handler.seconds = 1.0  # nothing is answered before the cancel
    primed = PrimeLog(monkeypatch)
    sent = SendLog(monkeypatch)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: rs.fetch_many(_items(url, 6), concurrency=2))
            while len(primed) < 4:  # two taken, two started ahead
                await anyio.sleep(0.001)
            group.cancel_scope.cancel()

    anyio.run(main)
    assert len(primed) == 4
    assert primed.all_closed
    # The two started ahead were never sent (recorded on the client's side: complete
    # once the batch has returned).
    assert sorted(sent) == [f"{url}?n=0", f"{url}?n=1"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_timer_only_on_asyncio_and_only_when_round_trips_leave_a_lull(backend: str) -> None:
    async def main() -> tuple[bool, bool]:
        queue = _item_queue.ItemQueue(_runner(), [], None, 8)
        running = _item_queue.Entry(0, [(0, 1)], rs.FetchResult(0, "http://127.0.0.1/"))
        first = queue.arm(running)  # the first guess: a lull is likely
        if first is not None:
            first.cancel()
        queue.took(0.002)  # a local server: 0.6 ms is no lull at all
        return first is not None, queue.arm(running) is None

    # trio has no timer callbacks: there, items start when taken.
    assert anyio.run(main, backend=backend) == (backend == "asyncio", True)


def _runner() -> Any:
    return _item_queue.Runner(httpx.AsyncClient(), BatchPolicy(), RetryPolicy())
