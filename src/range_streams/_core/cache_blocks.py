"""The shared cache's blocks, as pure rules: alignment, splitting, the in-memory tier's
LRU and eviction targets.

A file is cut into aligned blocks of ``block_size`` bytes (the last one shorter), so two
programs that read overlapping parts of a file fetch, and then reuse, the same blocks.
The cache holds at most one piece per block: the whole block, or the contiguous part of
it that a read brought (the tail probe's first block usually starts mid-block); a piece
is replaced by the whole block once that is fetched.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "BlockLRU",
    "Piece",
    "aligned_run",
    "blocks_wanted",
    "eviction_target",
    "runs",
    "split",
]


@dataclass(frozen=True, slots=True)
class Piece:
    """Bytes of block ``index``, starting at file offset ``start``."""

    index: int
    start: int
    data: bytes

    @property
    def stop(self) -> int:
        return self.start + len(self.data)

    def covers(self, start: int, stop: int) -> bool:
        return self.start <= start and stop <= self.stop

    def complete(self, block_size: int, total: int) -> bool:
        """Whether this is the whole block (up to the end of a ``total``-byte file)."""
        first = self.index * block_size
        return self.start == first and self.stop == min(first + block_size, total)


def split(start: int, data: bytes, block_size: int) -> list[Piece]:
    """``data`` (file bytes from ``start``) cut at block boundaries."""
    pieces = []
    view = memoryview(data)
    offset = start
    stop = start + len(data)
    while offset < stop:
        index = offset // block_size
        end = min((index + 1) * block_size, stop)
        chunk = (
            data if (offset == start and end == stop) else bytes(view[offset - start : end - start])
        )
        pieces.append(Piece(index, offset, chunk))
        offset = end
    return pieces


def aligned_run(
    position: int,
    planned: tuple[int, int],
    size: int,
    block_size: int,
    total: int | None,
    max_run: int,
) -> tuple[int, int]:
    """The whole blocks to fetch so that ``[position, position + size)`` can be served,
    given the read strategy's plan ``planned`` (its window): from the block holding
    ``position``, as long as the plan's window and at least the read, rounded up to
    whole blocks, at most ``max_run`` bytes (at least one block), ended at ``total``."""
    start = position - position % block_size
    window = planned[1] - planned[0]
    stop = max(start + window, position + max(size, 1))
    stop = -(-stop // block_size) * block_size
    stop = min(stop, start + max(max_run - max_run % block_size, block_size))
    if total is not None:
        stop = min(stop, total)
    return start, stop


def blocks_wanted(spans: Iterable[tuple[int, int]], block_size: int) -> dict[int, tuple[int, int]]:
    """For each block some span touches, the part of it the spans need (their hull
    within the block), as file offsets."""
    wanted: dict[int, tuple[int, int]] = {}
    for start, stop in spans:
        if stop <= start:
            continue
        for index in range(start // block_size, (stop - 1) // block_size + 1):
            low = max(start, index * block_size)
            high = min(stop, (index + 1) * block_size)
            known = wanted.get(index)
            wanted[index] = (
                (low, high) if known is None else (min(low, known[0]), max(high, known[1]))
            )
    return wanted


def runs(indexes: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted block indexes as runs of consecutive ones, ``[first, last + 1)`` each."""
    found: list[tuple[int, int]] = []
    for index in indexes:
        if found and found[-1][1] == index:
            found[-1] = (found[-1][0], index + 1)
        else:
            found.append((index, index + 1))
    return found


def eviction_target(used: int, limit: int) -> int:
    """How many bytes to free once ``used`` passes ``limit``: down to nine tenths of it,
    so that a full cache does not evict on every store."""
    if used <= limit:
        return 0
    return used - limit * 9 // 10


BlockKey = tuple[str, str, int]  # file key, version key, block index


class BlockLRU:
    """The in-memory tier: pieces under ``(file, version, index)``, least recently used
    evicted first once their bytes pass ``max_bytes``. Thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._pieces: OrderedDict[BlockKey, Piece] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._pieces)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: BlockKey) -> Piece | None:
        with self._lock:
            piece = self._pieces.get(key)
            if piece is not None:
                self._pieces.move_to_end(key)
            return piece

    def put(self, key: BlockKey, piece: Piece) -> int:
        """Keep ``piece`` (in place of any piece of that block); the bytes evicted."""
        if len(piece.data) > self.max_bytes:
            return 0
        evicted = 0
        with self._lock:
            old = self._pieces.pop(key, None)
            if old is not None:
                self._bytes -= len(old.data)
            self._pieces[key] = piece
            self._bytes += len(piece.data)
            while self._bytes > self.max_bytes:
                _, oldest = self._pieces.popitem(last=False)
                self._bytes -= len(oldest.data)
                evicted += len(oldest.data)
        return evicted

    def forget(self, file: str, keep_version: str | None = None) -> None:
        """Drop a file's pieces of every version but ``keep_version``."""
        with self._lock:
            for key in [k for k in self._pieces if k[0] == file and k[1] != keep_version]:
                self._bytes -= len(self._pieces.pop(key).data)

    def clear(self) -> None:
        with self._lock:
            self._pieces.clear()
            self._bytes = 0
