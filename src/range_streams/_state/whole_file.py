"""A file held whole, for a server that ignores ``Range``.

Such a server answers any range request with 200 and the whole file. A file object then
takes that file whole (``_flows.whole.fetch_whole``: one plain GET, its length checked)
and serves every read from it: in memory up to ``memory`` bytes, in a temporary file
past that, so a big file costs disk rather than memory, and no read is ever cut short
or served from a slice of a body taken as the file.
"""

from __future__ import annotations

import tempfile

from .._core.protocol import RemoteState
from .._flows.body import RetryPolicy
from .._flows.commands import Flow
from .._flows.whole import fetch_whole

__all__ = ["WholeFile"]


class WholeFile:
    """The remote file's bytes, all of them, read once."""

    def __init__(self, memory: int) -> None:
        # Closed by close(): it lives as long as the file object does.
        self._spool = tempfile.SpooledTemporaryFile(max_size=max(memory, 0))  # noqa: SIM115
        self.size = 0

    def load(self, remote: RemoteState, retry: RetryPolicy) -> Flow[int]:
        self.size = yield from fetch_whole(remote, self._spool, retry)
        return self.size

    @property
    def on_disk(self) -> bool:
        """Whether the bytes went past the memory bound into a temporary file."""
        return bool(getattr(self._spool, "_rolled", False))

    def read(self, position: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``position`` (fewer only at the end)."""
        if position >= self.size or size <= 0:
            return b""
        self._spool.seek(position)
        return self._spool.read(min(size, self.size - position))

    def close(self) -> None:
        self._spool.close()
