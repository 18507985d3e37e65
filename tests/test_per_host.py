"""fetch_many's per-host limit against two real local servers: no server ever has more
than ``per_host`` requests of the batch at once, and an item of a busy host waits while
later items of other hosts run (the servers record the order of arrivals and answers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import range_streams as rs
from range_streams import _many
from tests.slow_server import DATA, PrimeLog, RangeHandler, SendLog, serving


class Recorder:
    """What the servers saw, in one order: ``("in", name)`` when a request arrived,
    ``("out", name)`` when its answer was written; the most in flight per server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.open: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def arrived(self, name: str) -> None:
        with self.lock:
            self.events.append(("in", name))
            self.open[name] = self.open.get(name, 0) + 1
            self.peak[name] = max(self.peak.get(name, 0), self.open[name])

    def answered(self, name: str) -> None:
        with self.lock:
            self.events.append(("out", name))
            self.open[name] -= 1


def _handler(name: str, recorder: Recorder, seconds: float) -> type[RangeHandler]:
    class Handler(RangeHandler):
        def delay(self) -> float:
            return seconds

        def arrived(self) -> None:
            recorder.arrived(name)

        def answered(self) -> None:
            recorder.answered(name)

    return Handler


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, str], Recorder]]:
    seconds = getattr(request, "param", 0.05)
    recorder = Recorder()
    with (
        serving(_handler("A", recorder, seconds)) as a,
        serving(_handler("B", recorder, seconds)) as b,
    ):
        yield {"A": a, "B": b}, recorder


def _items(urls: dict[str, str], hosts: str) -> list[tuple[str, list[tuple[int, int]]]]:
    return [(f"{urls[h]}?n={i}", [(i * 10, i * 10 + 10)]) for i, h in enumerate(hosts)]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_no_host_exceeds_its_limit_and_a_busy_host_does_not_hold_up_the_others(
    servers: tuple[dict[str, str], Recorder], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls, recorder = servers
    primed = PrimeLog(monkeypatch)
    items = _items(urls, "A" * 12 + "B" * 12)
    results = anyio.run(lambda: rs.fetch_many(items, concurrency=6, per_host=2), backend=backend)
    assert [r.data for r in results] == [[DATA[i * 10 : i * 10 + 10]] for i in range(24)]
    assert recorder.peak == {"A": 2, "B": 2}
    # B's items come after all of A's in the input, yet B was asked before A answered
    # anything: the workers A's limit leaves idle took B's items.
    assert recorder.events.index(("in", "B")) < recorder.events.index(("out", "A"))
    arrivals = [name for kind, name in recorder.events if kind == "in"]
    assert arrivals.count("A") == arrivals.count("B") == 12
    # Within a host, items start in input order (two connections may still deliver
    # two requests to the server in either order: the order that is promised is ours).
    for host in "AB":
        started = [url for url in primed.urls if url.startswith(urls[host] + "?")]
        assert started == [url for url, _ in items if url.startswith(urls[host] + "?")]


def test_a_limit_at_or_above_the_concurrency_binds_nothing(
    servers: tuple[dict[str, str], Recorder],
) -> None:
    urls, recorder = servers
    results = anyio.run(lambda: rs.fetch_many(_items(urls, "A" * 8), concurrency=4, per_host=9))
    assert all(r.ok for r in results)
    assert recorder.peak == {"A": 4}


def test_bad_items_under_a_limit_settle_at_once_in_input_order(
    servers: tuple[dict[str, str], Recorder],
) -> None:
    urls, recorder = servers
    items = _items(urls, "AAAB")
    items.insert(1, ("not a url", [(0, 1)]))
    items.insert(3, (urls["A"], [(5, 1)]))  # a backwards span
    results = anyio.run(lambda: rs.fetch_many(items, concurrency=3, per_host=1))
    assert [r.index for r in results] == list(range(6))
    assert isinstance(results[1].error, rs.InvalidURLError)
    assert isinstance(results[3].error, rs.InvalidRangeError)
    assert [r.requests for r in results] == [1, 0, 1, 0, 1, 1]
    assert recorder.peak == {"A": 1, "B": 1}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"per_host": 0}, ValueError),
        ({"per_host": -3}, ValueError),
        ({"concurrency": 0}, ValueError),
        ({"per_host": "2"}, TypeError),
        ({"per_host": 1.5}, TypeError),
        ({"concurrency": True}, TypeError),
    ],
)
def test_bad_limits_are_refused_before_anything_is_opened(
    kwargs: dict[str, Any], error: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[object] = []
    monkeypatch.setattr(_many, "_client", made.append)
    with pytest.raises(error):
        anyio.run(lambda: rs.fetch_many([("http://127.0.0.1:1/x", [(0, 1)])], **kwargs))
    assert made == []


@pytest.mark.parametrize("servers", [1.0], indirect=True)
def test_a_cancelled_batch_closes_the_items_waiting_for_their_host(
    servers: tuple[dict[str, str], Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    urls, _ = servers
    primed = PrimeLog(monkeypatch)
    sent = SendLog(monkeypatch)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(
                lambda: rs.fetch_many(_items(urls, "A" * 6), concurrency=3, per_host=1)
            )
            # one running, the next of its host started ahead while it waits
            while len(primed) < 2:
                await anyio.sleep(0.001)
            group.cancel_scope.cancel()

    anyio.run(main)
    assert len(primed) == 2
    assert primed.all_closed
    # The item started ahead was never sent: recorded on the client's side, complete
    # once the batch has returned (no waiting to see what the server gets).
    assert sent == [f"{urls['A']}?n=0"]
