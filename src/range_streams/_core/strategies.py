"""Read strategies: given a read the caches cannot serve, which span to request.

Small pluggable classes, in the spirit of fsspec's ``caching.py`` but pure: a strategy
only *plans* (``plan`` returns the span to fetch); the file object fetches, and keeps
what the strategy says is worth keeping (``keep``: hold the whole span in the block
cache, or stream it through one open response with bounded history).

* ``ExactReads``: exactly the bytes asked for, one request per read that misses.
* ``BlockCache``: aligned blocks, kept in an LRU cache under a memory cap; re-reads
  and nearby reads cost nothing.
* ``Readahead`` (the default): a random read fetches one block; a read that continues
  the previous one doubles the window, up to ``max_window``, so a sequential read runs
  on a few large responses at line rate while a random read never over-reads more than
  a block. Every response is bounded, so each connection is drained and reused rather
  than dropped (a dropped connection costs a new handshake: one more round trip). Once
  a window is ``ahead_from`` bytes or more and a request waits ``ahead_min_wait`` or
  more for its answer, the next window is requested while this one is still being
  read, on a second connection, so the reader never waits a round trip at a window's
  end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["BlockCache", "ExactReads", "ReadStrategy", "Readahead"]

# 128 KiB, not 64: Debian's default nginx (sendfile + tcp_nopush) answers 64-100 KiB
# ranges slowly to clients that read in 64 KiB steps; see benchmarks/README.md.
DEFAULT_BLOCK = 128 * 1024


class ReadStrategy(Protocol):
    keep: bool  # True: the fetched span goes whole into the block cache

    def plan(
        self, position: int, size: int, file_size: int | None, sequential: bool
    ) -> tuple[int, int]:
        """The span ``[start, stop)`` to request so that ``[position, position+size)`` can
        be served; ``start <= position`` and ``stop > position``. ``stop`` may pass
        ``file_size`` when that is unknown (the response then says where the file ends)."""
        ...


def _clip(stop: int, file_size: int | None) -> int:
    return stop if file_size is None else min(stop, file_size)


@dataclass
class ExactReads:
    keep: bool = False

    def plan(
        self, position: int, size: int, file_size: int | None, sequential: bool
    ) -> tuple[int, int]:
        return position, _clip(position + max(size, 1), file_size)


@dataclass
class BlockCache:
    block_size: int = DEFAULT_BLOCK
    max_bytes: int = 32 << 20  # the LRU's memory cap
    keep: bool = True

    def plan(
        self, position: int, size: int, file_size: int | None, sequential: bool
    ) -> tuple[int, int]:
        first = position - position % self.block_size
        last = position + max(size, 1)
        stop = -(-last // self.block_size) * self.block_size
        return first, _clip(stop, file_size)


@dataclass
class Readahead:
    block_size: int = DEFAULT_BLOCK
    max_window: int = 64 << 20
    ahead_from: int = 8 << 20  # windows this big have the next one requested ahead; 0: never
    # ... when a request waits this long for its answer: on a quick link a second
    # connection costs more than the wait it saves (measured: benchmarks/README.md).
    ahead_min_wait: float = 0.001
    keep: bool = False
    _window: int = field(default=0, repr=False)

    def plan(
        self, position: int, size: int, file_size: int | None, sequential: bool
    ) -> tuple[int, int]:
        if sequential:
            self._window = min(max(self._window * 2, self.block_size * 2), self.max_window)
        else:
            self._window = self.block_size
        return position, _clip(position + max(size, self._window), file_size)
