"""A reader in its own process, for tests/test_cache.py: reads a URL through a shared
cache directory and prints one JSON line (the bytes' SHA-256 and the cache's counters).

    python tests/cache_reader.py URL CACHE_DIR [--chunk N] [--spans A:B,C:D]
        [--barrier DIR --readers N] [--kill-at-store N] [--memory-bytes N]

``--barrier``: first wait until ``--readers`` readers have reached the barrier (so that
they read at the same time). ``--kill-at-store N``: SIGKILL this process inside the N-th
write transaction of the disk tier, after its blocks were inserted and before they are
committed: a writer killed mid-write.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import range_streams
from range_streams._state import cache_disk


def _barrier(directory: Path, readers: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / str(os.getpid())).touch()
    deadline = time.monotonic() + 30
    while len(list(directory.iterdir())) < readers:
        if time.monotonic() > deadline:
            raise SystemExit("the other readers never came")
        time.sleep(0.001)


def _kill_inside_store(count: int) -> None:
    evict = cache_disk.DiskTier._evict
    calls = [0]

    def dying_evict(self: Any, db: Any) -> int:  # runs inside the store's transaction
        calls[0] += 1
        if calls[0] == count:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return evict(self, db)

    cache_disk.DiskTier._evict = dying_evict  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("cache")
    parser.add_argument("--chunk", type=int, default=64 * 1024)
    parser.add_argument("--spans", default="")
    parser.add_argument("--barrier", type=Path)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--kill-at-store", type=int, default=0)
    parser.add_argument("--memory-bytes", type=int, default=64 << 20)
    args = parser.parse_args()
    if args.kill_at_store:
        _kill_inside_store(args.kill_at_store)
    cache = range_streams.SharedCache(args.cache, memory_bytes=args.memory_bytes)
    if args.barrier is not None:
        _barrier(args.barrier, args.readers)
    digest = hashlib.sha256()
    with range_streams.open(args.url, cache=cache) as file:
        if args.spans:
            spans = [tuple(int(n) for n in part.split(":")) for part in args.spans.split(",")]
            for data in file.read_ranges(spans):  # type: ignore[arg-type]
                digest.update(data)
        else:
            while chunk := file.read(args.chunk):
                digest.update(chunk)
        stats = file.cache_stats
        requests = file.requests_sent
    assert stats is not None
    counts = {name: getattr(stats, name) for name in stats.__dataclass_fields__}
    print(json.dumps({"sha256": digest.hexdigest(), "stats": counts, "requests": requests}))


if __name__ == "__main__":
    main()
