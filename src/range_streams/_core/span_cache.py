"""A bounded LRU cache of fetched byte spans (the zip tail probe, strategy blocks)."""

from __future__ import annotations

import bisect
from collections import OrderedDict

__all__ = ["SpanCache"]


class SpanCache:
    """Disjoint ``[start, start+len(data))`` entries, evicted least recently used first
    once the total passes ``max_bytes``. Lookups are O(log n) with ``bisect``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, bytes] = OrderedDict()  # start -> data, LRU order
        self._starts: list[int] = []
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def put(self, start: int, data: bytes) -> None:
        if not data or len(data) > self.max_bytes:
            return
        stop = start + len(data)
        for other in self._overlapping(start, stop):
            self._drop(other)
        bisect.insort(self._starts, start)
        self._entries[start] = data
        self._bytes += len(data)
        while self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def read(self, position: int, size: int) -> bytes:
        """Cached bytes from ``position`` on (at most ``size``), or ``b""``."""
        index = bisect.bisect_right(self._starts, position) - 1
        if index < 0:
            return b""
        start = self._starts[index]
        data = self._entries[start]
        offset = position - start
        if offset >= len(data):
            return b""
        self._entries.move_to_end(start)
        return data[offset : offset + size]

    def next_start(self, position: int) -> int | None:
        """Where the first cached entry after ``position`` begins."""
        index = bisect.bisect_right(self._starts, position)
        return self._starts[index] if index < len(self._starts) else None

    def clear(self) -> None:
        self._entries.clear()
        self._starts.clear()
        self._bytes = 0

    def _overlapping(self, start: int, stop: int) -> list[int]:
        index = max(bisect.bisect_right(self._starts, start) - 1, 0)
        found = []
        while index < len(self._starts) and self._starts[index] < stop:
            other = self._starts[index]
            if other + len(self._entries[other]) > start:
                found.append(other)
            index += 1
        return found

    def _drop(self, start: int) -> None:
        data = self._entries.pop(start)
        self._starts.remove(start)
        self._bytes -= len(data)
