"""What ``range_streams.open`` returns by default: the raw ``RangeFile`` buffered, or as text.

``BufferedRangeFile`` is an ``io.BufferedReader``, so ``readline``, iteration and ``peek``
run in C over a buffer refilled a buffer's worth at a time: the lines of a file cost what
reading it whole costs. A plain ``BufferedReader`` would also turn every small ``read``
after a seek into a raw read of a whole buffer, over-reading every random access; here
``read``/``readinto`` tell the raw file how many bytes their caller wants before the C
code refills, and the raw file asks its read strategy for that many only
(``RangeFile._read_limit``). So ``read(n)`` costs what the raw file's ``read(n)`` costs,
and only the line-oriented calls read ahead.

``TextRangeFile`` is an ``io.TextIOWrapper`` over it. Both pickle to a file reopened at
the same position (see ``file``).
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from ._core.cache_stats import CacheStats
from ._core.errors import InvalidRangeError
from .file import RangeFile, _file_state, _restore_raw

__all__ = ["DEFAULT_BUFFER_SIZE", "BufferedRangeFile", "TextRangeFile", "wrap"]

# One read strategy block: a line read after a random seek costs one block, as any read.
DEFAULT_BUFFER_SIZE = 128 * 1024


class _RemoteView:
    """The remote file's own calls, passed to the raw file (none moves the position)."""

    raw: RangeFile

    @property
    def url(self) -> str:
        return self.raw.url

    @property
    def size(self) -> int:
        """The file's length (one small request the first time, unless already known)."""
        return self.raw.size

    @property
    def known_size(self) -> int | None:
        return self.raw.known_size

    @property
    def requests_sent(self) -> int:
        return self.raw.requests_sent

    @property
    def cache_stats(self) -> CacheStats | None:
        """The shared cache's counters for this file (None without a shared cache)."""
        return self.raw.cache_stats

    def read_at(self, start: int, stop: int) -> bytes:
        """Exactly ``[start, stop)``, without moving the position."""
        return self.raw.read_at(start, stop)

    def read_ranges(self, spans: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(start, stop)``, batched (see ``RangeFile.read_ranges``)."""
        return self.raw.read_ranges(spans)

    def read_tail(self, length: int) -> bytes:
        return self.raw.read_tail(length)

    def advise(self, start: int, stop: int) -> None:
        self.raw.advise(start, stop)


class BufferedRangeFile(_RemoteView, io.BufferedReader):
    """A ``RangeFile`` behind a read buffer (``range_streams.open(url)``'s default)."""

    raw: RangeFile

    def __init__(self, raw: RangeFile, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        if not isinstance(raw, RangeFile):
            raise TypeError(f"BufferedRangeFile buffers a RangeFile, not {type(raw).__name__}")
        super().__init__(raw, buffer_size)
        raw._refills = True  # see RangeFile._refilling
        self._buffer_size = buffer_size
        self._limit_lock = threading.Lock()

    def _buffered(self) -> int:
        """Bytes in the buffer ahead of the position (no I/O)."""
        return int(self.raw.tell()) - super().tell()

    def _limited(self, wanted: int, call: Any, *args: Any) -> Any:
        """``call(*args)`` with the raw file asked for at most what the caller wants."""
        with self._limit_lock:
            self.raw._read_limit = max(wanted, 0)
            try:
                return call(*args)
            finally:
                self.raw._read_limit = None

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return super().read()
        if self.closed:
            raise ValueError("read of closed file")
        missing = size - self._buffered()
        if missing <= 0:
            return super().read(size)
        return self._limited(missing, super().read, size)  # type: ignore[no-any-return]

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("readinto of closed file")
        missing = memoryview(buffer).nbytes - self._buffered()
        if missing <= 0:
            return super().readinto(buffer)
        return self._limited(missing, super().readinto, buffer)  # type: ignore[no-any-return]

    def readinto1(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("readinto of closed file")
        missing = memoryview(buffer).nbytes - self._buffered()
        if missing <= 0:
            return super().readinto1(buffer)
        return self._limited(missing, super().readinto1, buffer)  # type: ignore[no-any-return]

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if isinstance(offset, bool) or not isinstance(offset, int):
            # The raw file's error, not the TypeError BufferedReader raises itself.
            raise InvalidRangeError(f"seek offset must be an int, not {offset!r}")
        return super().seek(offset, whence)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reopen_buffered, (_file_state(self.raw, self.tell()), self.buffer_size))

    @property
    def buffer_size(self) -> int:
        return self._buffer_size

    def __enter__(self) -> BufferedRangeFile:
        return self


class TextRangeFile(io.TextIOWrapper):
    """A remote file decoded as text (``range_streams.open(url, "r")``)."""

    buffer: BufferedRangeFile

    def __init__(
        self,
        buffer: BufferedRangeFile,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> None:
        super().__init__(buffer, encoding or "utf-8", errors, newline)
        self._newline = newline  # as asked; TextIOWrapper keeps only its decoder's view
        # Decode a buffer's worth at a time (TextIOWrapper's default is 8 KiB).
        self._CHUNK_SIZE = buffer.buffer_size

    @property
    def url(self) -> str:
        return self.buffer.url

    @property
    def size(self) -> int:
        """The file's length in bytes."""
        return self.buffer.size

    def __reduce__(self) -> tuple[Any, ...]:
        state = _file_state(self.buffer.raw, 0)
        return (
            _reopen_text,
            (
                state,
                self.buffer.buffer_size,
                self.encoding,
                self.errors,
                self._newline,
                self.tell(),
            ),
        )

    def __enter__(self) -> TextRangeFile:
        return self


def wrap(
    raw: RangeFile,
    text: bool,
    buffering: int,
    encoding: str | None,
    errors: str | None,
    newline: str | None,
) -> RangeFile | BufferedRangeFile | TextRangeFile:
    """``raw`` as the built-in ``open`` would hand it out for these arguments."""
    if not text and (encoding is not None or errors is not None or newline is not None):
        what = "encoding" if encoding is not None else "errors" if errors is not None else "newline"
        raise ValueError(f"binary mode doesn't take an {what} argument")
    if buffering == 0:
        if text:
            raise ValueError("can't have unbuffered text I/O")
        return raw
    if buffering == 1 and not text:
        warnings.warn(
            "line buffering (buffering=1) isn't supported in binary mode, the default buffer"
            " size will be used",
            RuntimeWarning,
            stacklevel=3,
        )
    size = buffering if buffering > 1 else DEFAULT_BUFFER_SIZE
    buffered = BufferedRangeFile(raw, size)
    if not text:
        return buffered
    return TextRangeFile(buffered, encoding, errors, newline)


def _reopen_buffered(state: dict[str, Any], buffer_size: int) -> BufferedRangeFile:
    return BufferedRangeFile(_restore_raw(state), buffer_size)


def _reopen_text(
    state: dict[str, Any],
    buffer_size: int,
    encoding: str,
    errors: str,
    newline: str | None,
    cookie: int,
) -> TextRangeFile:
    buffered = BufferedRangeFile(_restore_raw(state), buffer_size)
    text = TextRangeFile(buffered, encoding, errors, newline)
    text.seek(cookie)
    return text
