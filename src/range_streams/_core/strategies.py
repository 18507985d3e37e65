"""Read strategies: given a read the caches cannot serve, which span to request.

One class per strategy, in the spirit of fsspec's ``caching.py`` but pure: a strategy
only *plans* (the file object fetches). A strategy is settings, a frozen value that
any number of files may share (``FileOptions`` of an fsspec filesystem are shared by
all its files); ``planner()`` starts the per-file state, so what one file's reads
teach a strategy never changes another file's requests.

* ``ExactReads``: exactly the bytes asked for, one request per read that misses.
* ``BlockCache``: aligned blocks, kept in an LRU cache under ``max_bytes``; re-reads
  and nearby reads cost nothing.
* ``Readahead``: a random read fetches one block; a read that continues the previous
  one doubles the window, up to ``max_window``.
* ``Adaptive`` (the default): a random read fetches what it asks for (at least
  ``min_read``), so scattered small reads cost about their own bytes; a run of reads
  that continue one another, or hop a short way forward (``FileCore`` decides which
  reads those are), grows a window ``growth``-fold per request from ``min_read`` up to
  ``max_window``, each request the window or the read, whichever is bigger: a reader
  streaming a file, walking the headers of small tar members or reading CSV lines gets
  large responses after a few requests; one reading big exact pieces gets those.

Every response is bounded, so each connection is drained and reused rather than dropped
(a dropped connection costs a new handshake: one more round trip); ``drain_limit`` is
how much of an abandoned response is still worth reading to keep its connection. Once
a window is ``ahead_from`` bytes or more and a request waits ``ahead_min_wait`` or more
for its answer, the next window is requested while this one is still being read, on a
second connection, so the reader never waits a round trip at a window's end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "Adaptive",
    "BlockCache",
    "ExactReads",
    "ReadPlanner",
    "ReadStrategy",
    "Readahead",
]

KIB = 1024
# 128 KiB, not 64: Debian's default nginx (sendfile + tcp_nopush) answers 64-100 KiB
# ranges slowly to clients that read in 64 KiB steps without re-arming TCP_QUICKACK;
# see benchmarks/README.md.
DEFAULT_BLOCK = 128 * KIB
DEFAULT_MAX_WINDOW = 64 << 20
DEFAULT_AHEAD_FROM = 8 << 20
# A second connection costs more than the wait it saves on a quick link (measured:
# benchmarks/README.md).
DEFAULT_AHEAD_MIN_WAIT = 0.001


class ReadPlanner(Protocol):
    """One file's planning state; ``ReadStrategy.planner()`` makes one per file."""

    def plan(
        self, position: int, size: int, file_size: int | None, sequential: bool
    ) -> tuple[int, int]:
        """The span ``[start, stop)`` to request so that ``[position, position+size)`` can
        be served; ``start <= position < stop``. ``stop`` may pass ``file_size`` when that
        is unknown (the response then says where the file ends). ``sequential``: the read
        continues the previous one (at its end, or a short hop forward)."""
        ...


class ReadStrategy(Protocol):
    """What the file object reads of a strategy: settings and a planner per file."""

    @property
    def keep(self) -> bool:
        """True: a fetched span goes whole into the span cache (else it is streamed
        through one open response with bounded history)."""
        ...

    @property
    def max_bytes(self) -> int | None:
        """The span cache's cap for a file read with this strategy (None: the file's
        ``FileOptions.cache_bytes``)."""
        ...

    @property
    def drain_limit(self) -> int:
        """A response abandoned with at most this many bytes unread is read to its end
        (its connection is reused) rather than closed."""
        ...

    @property
    def ahead_from(self) -> int:
        """Windows at least this big have the next one requested ahead (0: never)."""
        ...

    @property
    def ahead_min_wait(self) -> float:
        """... when a request waited at least this many seconds for its answer."""
        ...

    def planner(self) -> ReadPlanner:
        """A fresh planner for one file."""
        ...


def _clip(stop: int, file_size: int | None) -> int:
    return stop if file_size is None else min(stop, file_size)


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, not {value!r}")


@dataclass(frozen=True)
class ExactReads:
    """Exactly the bytes asked for: one request per read the caches cannot serve."""

    drain_limit: int = 64 * KIB
    keep: bool = field(default=False, init=False)
    max_bytes: int | None = field(default=None, init=False)
    ahead_from: int = field(default=0, init=False)
    ahead_min_wait: float = field(default=0.0, init=False)

    def planner(self) -> ExactReads:
        return self  # nothing to remember between reads

    def plan(
        self, position: int, size: int, file_size: int | None, sequential: bool
    ) -> tuple[int, int]:
        return position, _clip(position + max(size, 1), file_size)


@dataclass(frozen=True)
class BlockCache:
    """Aligned ``block_size`` blocks, each kept whole in the span cache, which holds at
    most ``max_bytes`` (None: ``FileOptions.cache_bytes``) and evicts the least
    recently used first."""

    block_size: int = DEFAULT_BLOCK
    max_bytes: int | None = None
    keep: bool = field(default=True, init=False)
    ahead_from: int = field(default=0, init=False)
    ahead_min_wait: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        _positive("block_size", self.block_size)
        if self.max_bytes is not None:
            _positive("max_bytes", self.max_bytes)

    @property
    def drain_limit(self) -> int:
        return max(self.block_size, 64 * KIB)

    def planner(self) -> BlockCache:
        return self  # blocks depend on the position alone

    def plan(
        self, position: int, size: int, file_size: int | None, sequential: bool
    ) -> tuple[int, int]:
        first = position - position % self.block_size
        last = position + max(size, 1)
        stop = -(-last // self.block_size) * self.block_size
        return first, _clip(stop, file_size)


@dataclass(frozen=True)
class Readahead:
    """A random read fetches one ``block_size`` block; each read that continues the
    previous one doubles the window (from two blocks), up to ``max_window``."""

    block_size: int = DEFAULT_BLOCK
    max_window: int = DEFAULT_MAX_WINDOW
    ahead_from: int = DEFAULT_AHEAD_FROM
    ahead_min_wait: float = DEFAULT_AHEAD_MIN_WAIT
    keep: bool = field(default=False, init=False)
    max_bytes: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        _positive("block_size", self.block_size)
        _positive("max_window", self.max_window)

    @property
    def drain_limit(self) -> int:
        return max(self.block_size, 64 * KIB)

    def planner(self) -> ReadaheadPlanner:
        return ReadaheadPlanner(self)


class ReadaheadPlanner:
    """``Readahead``'s state for one file: the current window."""

    def __init__(self, settings: Readahead) -> None:
        self.settings = settings
        self.window = 0

    def plan(
        self, position: int, size: int, file_size: int | None, sequential: bool
    ) -> tuple[int, int]:
        settings = self.settings
        if sequential:
            grown = max(self.window * 2, settings.block_size * 2)
            self.window = min(grown, settings.max_window)
        else:
            self.window = settings.block_size
        return position, _clip(position + max(size, self.window), file_size)


@dataclass(frozen=True)
class Adaptive:
    """Random reads cost what they ask for; runs of reads grow the window.

    A read that does not continue the previous one fetches ``max(size, min_read)``
    bytes and starts a run with a window of ``min_read``. Each read that continues the
    run (``sequential``) multiplies the window by ``growth``, up to ``max_window``, and
    fetches the window or what it asks for, whichever is more. ``min_read`` covers the
    small reads that come in pairs: ``tarfile`` reads the byte before a header, then the
    header; a 4 KiB minimum serves both with one request, while 200 random 4 KiB reads
    still cost 4 KiB each.
    """

    min_read: int = 4 * KIB
    growth: int = 8
    max_window: int = DEFAULT_MAX_WINDOW
    ahead_from: int = DEFAULT_AHEAD_FROM
    ahead_min_wait: float = DEFAULT_AHEAD_MIN_WAIT
    drain_limit: int = DEFAULT_BLOCK
    keep: bool = field(default=False, init=False)
    max_bytes: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        _positive("min_read", self.min_read)
        _positive("max_window", self.max_window)
        if isinstance(self.growth, bool) or not isinstance(self.growth, int) or self.growth < 2:
            raise ValueError(f"growth must be an int of at least 2, not {self.growth!r}")

    def planner(self) -> AdaptivePlanner:
        return AdaptivePlanner(self)


class AdaptivePlanner:
    """``Adaptive``'s state for one file: the window of the current run.

    The window counts the run's reads, not their sizes: a reader that asks for exactly
    what it needs in big pieces (h5py reading a dataset's chunks one after the other)
    gets exactly those pieces, while one that asks in small pieces (a CSV reader's 8 KiB
    buffer) soon gets windows far bigger than its reads."""

    def __init__(self, settings: Adaptive) -> None:
        self.settings = settings
        self.window = 0

    def plan(
        self, position: int, size: int, file_size: int | None, sequential: bool
    ) -> tuple[int, int]:
        settings = self.settings
        if sequential and self.window:
            self.window = min(self.window * settings.growth, settings.max_window)
        else:
            self.window = settings.min_read
        request = max(size, self.window, 1)
        return position, _clip(position + request, file_size)
