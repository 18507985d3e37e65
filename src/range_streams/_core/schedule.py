"""Which item of a batch runs next under a per-host limit (``fetch_many(per_host=...)``).

Input order, except that an item whose host already runs ``limit`` items waits while
later items of other hosts run. A plain limiter in front of each item keeps input order
strictly: the workers then sit on the first busy host's items and a batch of 1,000 URLs
of host A followed by 1,000 of host B runs B only after A, at A's limit.

Pure: no I/O, no clock, no event loop. Items wait in one queue per host; a heap holds the
input position of each queue's first item while its host has room, so choosing the next
item costs O(log hosts) however the input is ordered. Heap rows go stale (a host filled
up, its first item was taken) and are dropped when they reach the top; ``done`` pushes
a host back once it has room again.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["HostQueue"]

T = TypeVar("T")


class HostQueue(Generic[T]):
    """Items waiting to run, each under a key (its host; ``None``: under no limit), of
    which at most ``limit`` may run at once (``limit=None``: no key is ever full)."""

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"a per-host limit must be at least 1, not {limit}")
        self._limit = limit
        self._waiting: dict[str | None, deque[tuple[int, T]]] = {}
        self._running: dict[str, int] = {}
        self._heads: list[tuple[int, str | None]] = []
        self._size = 0

    def __len__(self) -> int:
        """How many items wait."""
        return self._size

    def has_room(self, key: str | None) -> bool:
        return self._limit is None or key is None or self._running.get(key, 0) < self._limit

    def add(self, index: int, key: str | None, item: T) -> None:
        """Queue ``item`` (input position ``index``, larger than any added before)."""
        queue = self._waiting.get(key)
        if queue is None:
            queue = self._waiting[key] = deque()
        queue.append((index, item))
        self._size += 1
        if len(queue) == 1 and self.has_room(key):
            heapq.heappush(self._heads, (index, key))

    def take(self) -> T | None:
        """The waiting item earliest in the input whose key has room, counted as
        running; None when every waiting item's key is full (or nothing waits)."""
        while self._heads:
            index, key = heapq.heappop(self._heads)
            queue = self._waiting.get(key)
            if not queue or queue[0][0] != index or not self.has_room(key):
                continue  # stale: taken already, or the host filled up since
            item = queue.popleft()[1]
            self._size -= 1
            self.started(key)
            if not queue:
                del self._waiting[key]
            elif self.has_room(key):
                heapq.heappush(self._heads, (queue[0][0], key))
            return item
        return None

    def started(self, key: str | None) -> None:
        """Count an item of ``key`` as running (``take`` does; so does a caller that
        runs an item straight from the input because ``has_room``)."""
        if self._limit is not None and key is not None:
            self._running[key] = self._running.get(key, 0) + 1

    def waiting(self, key: str | None) -> Iterator[T]:
        """The items of ``key`` that wait, in input order."""
        return (item for _, item in self._waiting.get(key, ()))

    def drain(self) -> list[T]:
        """Every waiting item, in no particular order, leaving none (a batch that ends
        early closes what it had started)."""
        items = [item for queue in self._waiting.values() for _, item in queue]
        self._waiting.clear()
        self._heads.clear()
        self._size = 0
        return items

    def done(self, key: str | None) -> None:
        """An item of ``key`` that was counted as running has finished."""
        if self._limit is None or key is None:
            return
        left = self._running[key] - 1
        if left:
            self._running[key] = left
        else:
            del self._running[key]
        queue = self._waiting.get(key)
        if queue:  # room again: its first item is a candidate (a duplicate row is stale)
            heapq.heappush(self._heads, (queue[0][0], key))
