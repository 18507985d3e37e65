"""ByteSources for tests that need more than ``BytesSource`` (huge files, mostly zeros)."""

from __future__ import annotations

from collections.abc import Sequence


class PatchworkSource:
    """A file of zeros with ``pieces`` of real bytes at given offsets, never stored whole.

    Lets a test put a member 5 GiB into a file without allocating 5 GiB. Records calls
    like ``BytesSource``.
    """

    def __init__(self, pieces: dict[int, bytes], size: int | None = None) -> None:
        self.pieces = sorted(pieces.items())
        end = max((offset + len(data) for offset, data in self.pieces), default=0)
        self._size = end if size is None else size
        self.calls: list[tuple[str, object]] = []

    @property
    def size(self) -> int:
        return self._size

    def _slice(self, start: int, stop: int) -> bytes:
        assert 0 <= start <= stop <= self._size, (start, stop, self._size)
        out = bytearray(stop - start)
        for offset, data in self.pieces:
            low, high = max(start, offset), min(stop, offset + len(data))
            if low < high:
                out[low - start : high - start] = data[low - offset : high - offset]
        return bytes(out)

    def read_at(self, start: int, stop: int) -> bytes:
        self.calls.append(("read_at", (start, stop)))
        return self._slice(start, stop)

    def read_ranges(self, spans: Sequence[tuple[int, int]]) -> list[bytes]:
        self.calls.append(("read_ranges", list(spans)))
        return [self._slice(start, stop) for start, stop in spans]

    def read_tail(self, length: int) -> bytes:
        self.calls.append(("read_tail", length))
        return self._slice(max(self._size - length, 0), self._size)


def call_kinds(calls: list[tuple[str, object]]) -> list[str]:
    return [kind for kind, _ in calls]


def spans_requested(calls: list[tuple[str, object]], size: int) -> list[tuple[int, int]]:
    """Every byte span the recorded calls fetched, suffix reads resolved against ``size``."""
    spans: list[tuple[int, int]] = []
    for kind, argument in calls:
        if kind == "read_tail":
            assert isinstance(argument, int)
            spans.append((max(size - argument, 0), size))
        elif kind == "read_at":
            assert isinstance(argument, tuple)
            spans.append((int(argument[0]), int(argument[1])))
        else:
            assert isinstance(argument, list)
            spans.extend((int(start), int(stop)) for start, stop in argument)
    return spans
