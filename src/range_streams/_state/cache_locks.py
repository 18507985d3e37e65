"""Claims on blocks being fetched, so that readers of one file fetch each block once.

A reader about to fetch blocks claims them first; another reader that finds a block
claimed waits for the claim to go, then finds the block in the cache. Claims are held
in this process (threads, tasks) and, with a cache directory, as POSIX byte-range locks
on one lock file there (one byte per block, at an offset hashed from the URL and the
block), so they hold across processes and vanish with a process that dies, even by
SIGKILL: nobody waits on a dead reader. A claim is an optimisation only: without one
(no ``fcntl``, a lock that cannot be taken) a block may be fetched twice, never wrongly.

POSIX locks belong to the process, and closing any descriptor of the file drops them
all: the file is opened once per process and never closed while claims are held.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: claims within this process only
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "BlockClaims"]

logger = logging.getLogger("range_streams")

LOCK_FILE = "range-streams-cache.lock"
TAIL = -1  # the pseudo-block a file's first end-relative read claims


def _offset(url: str, index: int) -> int:
    digest = hashlib.blake2b(f"{url}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2  # below 2**62: a valid off_t anywhere


class BlockClaims:
    """Claims on ``(url key, block index)`` pairs."""

    def __init__(self, directory: Path | None) -> None:
        self._held: set[tuple[str, int]] = set()
        self._mutex = threading.Lock()
        self._fd: int | None = None
        if directory is not None and fcntl is not None:
            try:
                self._fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                logger.info(
                    "no lock file in %s (%s): claims hold in this process only", directory, exc
                )

    def claim(self, url: str, index: int) -> bool:
        """Claim a block if nobody (here or in another process) has: whether we now do."""
        key = (url, index)
        with self._mutex:
            if key in self._held:
                return False
            if self._fd is not None:
                try:
                    fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _offset(url, index))
                except OSError:  # EAGAIN/EACCES: another process holds it
                    return False
            self._held.add(key)
            return True

    def claim_run(self, url: str, indexes: Iterable[int]) -> list[int]:
        """Claim blocks in order, stopping at the first one held by someone else: the
        ones claimed (a prefix; empty if the first is held). A claimant never waits while
        it holds claims, so claims cannot deadlock."""
        claimed = []
        for index in indexes:
            if not self.claim(url, index):
                break
            claimed.append(index)
        return claimed

    def release(self, url: str, indexes: Iterable[int]) -> None:
        with self._mutex:
            for index in indexes:
                key = (url, index)
                if key not in self._held:
                    continue
                self._held.discard(key)
                if self._fd is not None:
                    try:
                        fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, _offset(url, index))
                    except OSError as exc:  # pragma: no cover - an unlock does not fail
                        logger.debug("unlocking a cache claim failed: %r", exc)

    def free(self, url: str, index: int) -> bool:
        """Whether nobody holds a claim on the block now (it is claimed and let go)."""
        if self.claim(url, index):
            self.release(url, [index])
            return True
        return False
