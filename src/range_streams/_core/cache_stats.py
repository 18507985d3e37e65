"""What a shared cache did, as counts: ``CacheStats`` (a snapshot a caller reads) and
``StatsCounter`` (counting them as it happens)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields

__all__ = ["CacheStats", "StatsCounter"]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What a shared cache did, as counts (a snapshot; see ``SharedCache.stats()`` and
    ``RangeFile.cache_stats``).

    ``hits`` blocks were served from the cache (``memory_hits`` from this process's
    memory, ``disk_hits`` from the directory) instead of the network: ``bytes_saved``
    bytes. ``misses`` blocks were fetched (``bytes_fetched`` bytes), ``revalidations``
    requests were sent only to check that cached blocks were still the file's,
    ``invalidations`` times a file had changed since it was cached (its old blocks
    are then never served), ``corrupt`` blocks failed their checksum and were fetched
    again, ``waits`` reads waited for another reader fetching the same block, and
    ``evicted_bytes`` bytes left the cache to keep it under its bounds.
    """

    hits: int = 0
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    bytes_saved: int = 0
    bytes_fetched: int = 0
    revalidations: int = 0
    invalidations: int = 0
    corrupt: int = 0
    waits: int = 0
    evicted_bytes: int = 0

    def since(self, earlier: CacheStats) -> CacheStats:
        """What was counted after ``earlier`` (a snapshot of the same counter)."""
        return CacheStats(
            **{name: getattr(self, name) - getattr(earlier, name) for name in _FIELDS}
        )

    def summary(self) -> str:
        """One line, as ``--trace`` prints it."""
        return (
            f"{self.hits} hit{'' if self.hits == 1 else 's'} ({self.memory_hits} memory,"
            f" {self.disk_hits} disk), {self.misses} miss{'' if self.misses == 1 else 'es'},"
            f" {self.bytes_saved:,} bytes saved, {self.bytes_fetched:,} fetched,"
            f" {self.revalidations} revalidation{'' if self.revalidations == 1 else 's'}"
            + (f", {self.invalidations} changed" if self.invalidations else "")
            + (f", {self.corrupt} corrupt" if self.corrupt else "")
            + (f", {self.waits} waited" if self.waits else "")
        )


_FIELDS = tuple(f.name for f in fields(CacheStats))


class StatsCounter:
    """``CacheStats`` being counted; ``add`` also counts into the parents (a file's
    counter counts into its cache's). Thread-safe."""

    def __init__(self, *parents: StatsCounter) -> None:
        self._counts = dict.fromkeys(_FIELDS, 0)
        self._parents = parents
        self._lock = threading.Lock()

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                self._counts[name] += value
        for parent in self._parents:
            parent.add(**counts)

    def snapshot(self) -> CacheStats:
        with self._lock:
            return CacheStats(**self._counts)

    def reset(self) -> None:
        with self._lock:
            for name in self._counts:
                self._counts[name] = 0
