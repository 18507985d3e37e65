"""The read interface codecs are written against, so they work on any random-access source.

``RangeFile`` (a URL) implements it; so does ``BytesSource`` (bytes in memory), which the
tests and local files use. Codecs never care which one they were given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["ByteSource", "BytesSource"]


@runtime_checkable
class ByteSource(Protocol):
    """Random access to the bytes of one version of one file."""

    @property
    def size(self) -> int:
        """Total length in bytes (may cost one request the first time)."""
        ...

    def read_at(self, start: int, stop: int) -> bytes:
        """Exactly the bytes ``[start, stop)``; ``stop`` may not pass ``size``."""
        ...

    def read_ranges(self, spans: Sequence[tuple[int, int]]) -> list[bytes]:
        """Exactly the bytes of each ``[start, stop)``, in the order given, batched."""
        ...

    def read_tail(self, length: int) -> bytes:
        """The last ``length`` bytes (fewer if the file is shorter): one suffix request."""
        ...


class BytesSource:
    """A ``ByteSource`` over bytes in memory; counts calls, so tests can assert on them."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self.calls: list[tuple[str, object]] = []

    @property
    def size(self) -> int:
        return len(self._data)

    def _check(self, start: int, stop: int) -> None:
        if not 0 <= start <= stop <= len(self._data):
            raise ValueError(f"[{start}, {stop}) is not inside [0, {len(self._data)})")

    def read_at(self, start: int, stop: int) -> bytes:
        self._check(start, stop)
        self.calls.append(("read_at", (start, stop)))
        return self._data[start:stop]

    def read_ranges(self, spans: Sequence[tuple[int, int]]) -> list[bytes]:
        for start, stop in spans:
            self._check(start, stop)
        self.calls.append(("read_ranges", list(spans)))
        return [self._data[start:stop] for start, stop in spans]

    def read_tail(self, length: int) -> bytes:
        self.calls.append(("read_tail", length))
        return self._data[max(len(self._data) - length, 0) :]
