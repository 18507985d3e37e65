"""as_completed is an ``async with`` block: leaving it early (break, an exception, a
cancel) stops the items still running and closes their responses in the caller's task,
and the caller carries on unharmed. Run on asyncio and trio, against a slow real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import range_streams as rs
from range_streams import _many
from tests.slow_server import RangeHandler, serving


class Handler(RangeHandler):
    """Answers item ``n`` after ``n`` x 50 ms, so results finish in input order."""

    arrived_paths: list[str]

    def delay(self) -> float:
        return 0.05 * int(self.path.rsplit("=", 1)[1])

    def arrived(self) -> None:
        self.arrived_paths.append(self.path)


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    handler = type("Recording", (Handler,), {"arrived_paths": []})
    with serving(handler) as url:
        yield url, handler.arrived_paths


def _items(url: str, count: int) -> list[tuple[str, list[tuple[int, int]]]]:
    return [(f"{url}?n={i}", [(i, i + 10)]) for i in range(count)]


class Wires:
    """The batch's clients, and how many of their responses are still open."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clients: list[Any] = []
        make = _many._client

        def logged(*args: Any, **kwargs: Any) -> Any:
            self.clients.append(make(*args, **kwargs))
            return self.clients[-1]

        monkeypatch.setattr(_many, "_client", logged)

    @property
    def closed(self) -> bool:
        return all(client.is_closed for client in self.clients)


BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])


@BACKENDS
def test_break_stops_the_rest_and_the_caller_carries_on(
    server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    url, arrived = server
    wires = Wires(monkeypatch)

    async def main() -> tuple[list[int], bool]:
        got = []
        async with rs.as_completed(_items(url, 12), concurrency=3) as results:
            async for result in results:
                got.append(result.index)
                if len(got) == 2:
                    break
        left_closed = wires.closed  # before anything else runs
        await anyio.sleep(0.3)  # the caller's task is not cancelled behind its back
        return got, left_closed

    got, left_closed = anyio.run(main, backend=backend)
    assert got == [0, 1]
    assert left_closed
    # Items after the ones running at the break were never asked for.
    assert len(arrived) <= 5


@BACKENDS
def test_an_error_in_the_block_propagates_as_itself(
    server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    url, _ = server
    wires = Wires(monkeypatch)

    async def main() -> None:
        async with rs.as_completed(_items(url, 6), concurrency=3) as results:
            async for _ in results:
                raise KeyError("the caller's own")

    with pytest.raises(KeyError, match="the caller's own"):
        anyio.run(main, backend=backend)
    assert wires.closed


def test_a_progress_callback_that_raises_ends_fetch_many_with_its_error(
    server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = server
    wires = Wires(monkeypatch)

    def progress(done: int, total: int, result: rs.FetchResult) -> None:
        raise RuntimeError(f"progress {done}/{total}")

    with pytest.raises(RuntimeError, match="progress 1/4"):
        anyio.run(lambda: rs.fetch_many(_items(url, 4), concurrency=2, progress=progress))
    assert wires.closed


@BACKENDS
def test_a_cancel_from_outside_closes_everything(
    server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    url, arrived = server
    wires = Wires(monkeypatch)
    seen: list[int] = []

    async def main() -> None:
        with anyio.move_on_after(0.1):
            async with rs.as_completed(_items(url, 20), concurrency=4) as results:
                async for result in results:
                    seen.append(result.index)

    anyio.run(main, backend=backend)
    assert seen and seen == sorted(seen) and len(seen) < 20
    assert wires.closed
    assert len(arrived) < 20


def test_iterating_outside_the_block_is_refused_with_the_fix() -> None:
    batch = rs.as_completed([("http://127.0.0.1:1/x", [(0, 1)])])
    with pytest.raises(TypeError, match="async with"):
        batch.__aiter__()


def test_a_batch_is_entered_once(server: tuple[str, list[str]]) -> None:
    url, _ = server

    async def main() -> list[int]:
        batch = rs.as_completed(_items(url, 2))
        async with batch:
            indices = [r.index async for r in batch]
        with pytest.raises(RuntimeError, match="only once"):
            async with batch:
                pass
        assert [r async for r in _closed(batch)] == []
        return indices

    assert anyio.run(main) == [0, 1]


async def _closed(batch: rs.AsCompleted) -> Any:
    # A batch whose block has been left yields nothing more (and says why on __aiter__).
    with pytest.raises(TypeError):
        batch.__aiter__()
    return
    yield


def test_bad_limits_raise_when_called() -> None:
    with pytest.raises(ValueError, match="per_host"):
        rs.as_completed([], per_host=0)
