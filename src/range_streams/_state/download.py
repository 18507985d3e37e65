"""Segmented, resumable download of one URL into a local file (``range-streams get``).

The file is cut into segments fetched over several connections at once, each streamed
to its own offset of ``TARGET.part`` with ``os.pwrite``, so memory stays bounded by
``connections x CHUNK`` whatever the file's size.

Beside it, ``TARGET.part.json`` records the URL, the size, the validators (ETag,
Last-Modified) and the byte spans already written. It is replaced atomically each time a
segment is done, so a download killed at any moment resumes from it and loses at most
the segments that were in flight (an interrupted one, e.g. Ctrl-C, loses nothing: the
workers record how far they got). A re-run whose URL, size or validators disagree with
the record starts over, and so does one whose record has no validator to compare: a
file that changed on the server is never stitched together from two versions. During a
run, every segment request carries the pinned validators (``If-Match``) and its answer
is checked against them, so a change mid-way is an error too.

When every byte is written the part file's size is checked, it is flushed to disk and
renamed over the target in one step: the target is either the old file or the whole
new one, never a partial one.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .._core.errors import IncompleteBodyError
from .._core.protocol import RemoteState
from .._core.spans import Span
from .._core.urls import check_url
from .._flows.body import Body, BodyLimits, RetryPolicy
from .._flows.requests import learn_length, send
from .._net.options import ClientOptions
from .._runtime.drivers import run_sync
from .settings import configure_remote

__all__ = [
    "CHUNK",
    "DownloadResult",
    "PartState",
    "RateLimit",
    "default_segment_size",
    "download",
    "part_paths",
]

#: Bytes read from the wire and written to disk at a time, per connection.
CHUNK = 256 * 1024
STATE_FORMAT = 1

Extent = tuple[int, int]
Progress = Callable[[int, int], None]  # (bytes on disk, total)


def merge(spans: Iterable[Extent]) -> list[Extent]:
    """Sorted, with overlapping and touching spans joined; empty ones dropped."""
    merged: list[Extent] = []
    for start, stop in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def missing(completed: Iterable[Extent], size: int) -> list[Extent]:
    """The spans of ``[0, size)`` not covered by ``completed``."""
    gaps, cursor = [], 0
    for start, stop in merge(completed):
        if start > cursor:
            gaps.append((cursor, min(start, size)))
        cursor = max(cursor, stop)
    if cursor < size:
        gaps.append((cursor, size))
    return [gap for gap in gaps if gap[1] > gap[0]]


def split(spans: Iterable[Extent], segment_size: int) -> list[Extent]:
    return [
        (offset, min(offset + segment_size, stop))
        for start, stop in spans
        for offset in range(start, stop, segment_size)
    ]


def default_segment_size(size: int, connections: int) -> int:
    """About four segments per connection, so the last ones can be spread over every
    connection, between 1 MiB (request overhead) and 32 MiB (what a kill may lose)."""
    return min(max(size // (max(connections, 1) * 4), 1 << 20), 32 << 20)


def part_paths(target: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Where a download of ``target`` keeps its bytes and its record until it is done."""
    path = Path(target)
    return path.with_name(path.name + ".part"), path.with_name(path.name + ".part.json")


@dataclass
class PartState:
    """What ``TARGET.part.json`` holds: enough to tell whether a partial file can be resumed."""

    url: str
    size: int
    etag: str | None
    last_modified: str | None
    completed: list[Extent] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "url": self.url,
            "size": self.size,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "completed": [list(span) for span in self.completed],
        }

    @classmethod
    def load(cls, path: Path) -> PartState | None:
        """The record at ``path``, or None when there is none or it cannot be read (a
        record we do not understand is no reason to fail: the download starts over)."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != STATE_FORMAT:
                return None
            return cls(
                url=str(raw["url"]),
                size=int(raw["size"]),
                etag=raw.get("etag"),
                last_modified=raw.get("last_modified"),
                completed=merge((int(a), int(b)) for a, b in raw["completed"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        """Write atomically: a kill mid-write leaves the previous record, never half of one."""
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)

    def why_not_resumable(self, current: PartState) -> str | None:
        """Why the bytes recorded here cannot be used for ``current``, or None if they can."""
        if self.url != current.url:
            return f"it was for another URL ({self.url})"
        if self.size != current.size:
            return f"the remote size changed from {self.size:,} to {current.size:,} bytes"
        if self.etag is None and self.last_modified is None:
            return "the server sent no ETag or Last-Modified to tell that the file is unchanged"
        if self.etag != current.etag:
            return f"the remote ETag changed from {self.etag} to {current.etag}"
        if self.last_modified != current.last_modified:
            return (
                f"the remote Last-Modified changed from {self.last_modified}"
                f" to {current.last_modified}"
            )
        return None


class RateLimit:
    """A shared cap on bytes per second over every connection (``--limit-rate``)."""

    def __init__(self, bytes_per_second: float) -> None:
        if bytes_per_second <= 0:
            raise ValueError(f"the rate must be positive, not {bytes_per_second}")
        self.rate = float(bytes_per_second)
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, size: int, stop: threading.Event) -> None:
        """Wait until ``size`` more bytes fit in the budget (or ``stop`` is set)."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + size / self.rate
            until = self._next
        stop.wait(max(until - now, 0.0))


@dataclass
class DownloadResult:
    path: Path
    size: int
    fetched: int  # bytes this run fetched
    resumed: int  # bytes an earlier run had already written
    requests: int
    restarted: str | None = None  # why an earlier partial download was thrown away


class _Segments:
    """The shared state of one run: a queue of spans, the record, and the first error."""

    def __init__(
        self,
        state: PartState,
        state_path: Path,
        fd: int,
        spans: list[Extent],
        progress: Progress | None,
    ) -> None:
        self.state = state
        self.state_path = state_path
        self.fd = fd
        self.pending = list(reversed(spans))  # pop() from the end: first span first
        self.progress = progress
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.abandoned = False  # workers still running after an interrupt
        self.on_disk = state.size - sum(b - a for a, b in missing(state.completed, state.size))
        self.fetched = 0

    def next_span(self) -> Extent | None:
        with self.lock:
            if self.stop.is_set() or not self.pending:
                return None
            return self.pending.pop()

    def wrote(self, size: int) -> None:
        with self.lock:
            self.on_disk += size
            self.fetched += size
            if self.progress is not None:
                self.progress(self.on_disk, self.state.size)

    def record(self, start: int, stop: int) -> None:
        """Mark ``[start, stop)`` as on disk, once it really is (fdatasync first: the record
        must never claim bytes that a crash could still lose)."""
        if stop <= start:
            return
        with self.lock:
            os.fdatasync(self.fd)
            self.state.completed = merge([*self.state.completed, (start, stop)])
            self.state.save(self.state_path)

    def fail(self, error: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = error
        self.stop.set()


def _fetch_span(
    segments: _Segments,
    client: httpx.Client,
    remote: RemoteState,
    span: Extent,
    retry: RetryPolicy,
    rate: RateLimit | None,
) -> None:
    start, stop = span
    # A wire chunk may run past the bytes asked for; the body keeps that overshoot in its
    # history for the next read. One CHUNK of history is plenty, and bounds memory.
    body = Body(remote, Span(start, stop), retry=retry, limits=BodyLimits(history=CHUNK))
    position = start
    try:
        while position < stop and not segments.stop.is_set():
            data = run_sync(client, body.read_at(position, min(CHUNK, stop - position)))
            if not data:  # Body raises on short bodies; this guards the loop regardless
                raise OSError(f"no data at byte {position} of {remote.url}")
            if rate is not None:
                rate.wait(len(data), segments.stop)
            view = memoryview(data)
            while view:
                written = os.pwrite(segments.fd, view, position)
                view, position = view[written:], position + written
                segments.wrote(written)
    finally:
        with contextlib.suppress(Exception):
            run_sync(client, body.close())
        segments.record(start, position)  # what was written counts, even on an error


def _worker(
    segments: _Segments,
    client: httpx.Client,
    remote: RemoteState,
    retry: RetryPolicy,
    rate: RateLimit | None,
) -> None:
    try:
        while (span := segments.next_span()) is not None:
            _fetch_span(segments, client, remote, span, retry, rate)
    except BaseException as error:  # handed to the main thread, which raises it
        segments.fail(error)


def _run(
    segments: _Segments,
    client: httpx.Client,
    remote: RemoteState,
    connections: int,
    retry: RetryPolicy,
    rate: RateLimit | None,
) -> None:
    # Daemon threads: a worker stuck on a stalled socket must not keep an interrupted
    # process alive; the record only ever holds bytes already written.
    threads = [
        threading.Thread(
            target=_worker,
            args=(segments, client, remote, retry, rate),
            name=f"range-streams-get-{index}",
            daemon=True,
        )
        for index in range(max(1, min(connections, len(segments.pending))))
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)  # a timed join lets Ctrl-C through on every platform
    except BaseException:
        segments.stop.set()
        deadline = time.monotonic() + 5
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))
        segments.abandoned = any(thread.is_alive() for thread in threads)
        raise
    if segments.error is not None:
        raise segments.error


def download(
    url: str,
    target: str | os.PathLike[str],
    *,
    client: httpx.Client,
    connections: int = 4,
    segment_size: int | None = None,
    progress: Progress | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_restart: Callable[[str], None] | None = None,
    rate_limit: float | None = None,
    retry: RetryPolicy | None = None,
    client_options: ClientOptions | None = None,
) -> DownloadResult:
    """Download ``url`` to ``target`` over ``connections`` range requests at a time,
    resuming a partial download of the same version if ``TARGET.part.json`` records one.

    ``on_start(on_disk, size)`` is called once the size is known and before any segment
    is fetched; ``progress(on_disk, size)`` after every chunk written (from worker
    threads, one at a time). ``on_restart(reason)`` is told why a partial download on
    disk was thrown away. ``rate_limit`` caps the bytes per second of all connections.
    """
    if connections < 1:
        raise ValueError(f"connections must be at least 1, not {connections}")
    target = Path(target)
    part_path, state_path = part_paths(target)
    remote = RemoteState(check_url(url))
    if client_options is not None:  # its redirect and credential rules
        configure_remote(remote, client_options)
    size = run_sync(client, learn_length(remote))
    if remote.ranges_ignored:
        return _download_whole(remote, target, client, progress, on_start, on_restart, rate_limit)
    validators = remote.validators
    current = PartState(
        url=url,
        size=size,
        etag=validators.etag if validators else None,
        last_modified=validators.last_modified if validators else None,
    )
    state, restarted = _resume_or_restart(current, part_path, state_path)
    if restarted is not None and on_restart is not None:
        on_restart(restarted)
    spans = split(
        missing(state.completed, size), segment_size or default_segment_size(size, connections)
    )
    resumed = size - sum(b - a for a, b in missing(state.completed, size))
    fd = os.open(part_path, os.O_RDWR | os.O_CREAT, 0o644)
    segments: _Segments | None = None
    try:
        if os.fstat(fd).st_size != size:
            os.ftruncate(fd, size)  # sparse where the filesystem allows
        state.save(state_path)  # recorded before the first byte: a kill now still resumes
        if on_start is not None:
            on_start(resumed, size)
        segments = _Segments(state, state_path, fd, spans, progress)
        _run(segments, client, remote, connections, retry or RetryPolicy(), _rate(rate_limit))
        gaps = missing(state.completed, size)
        if gaps:
            raise OSError(f"{len(gaps)} spans of {target} are still missing: {gaps[:3]}")
        actual = os.fstat(fd).st_size
        if actual != size:
            raise OSError(f"{part_path} holds {actual:,} bytes, not the {size:,} expected")
        os.fsync(fd)
    finally:
        # A worker stuck past the interrupt deadline may still write: closing its fd
        # could hand the number to another file. The process is about to exit anyway.
        if segments is None or not segments.abandoned:
            os.close(fd)
    os.replace(part_path, target)
    state_path.unlink(missing_ok=True)
    return DownloadResult(
        path=target,
        size=size,
        fetched=segments.fetched if segments is not None else 0,
        resumed=resumed,
        requests=remote.requests_sent,
        restarted=restarted,
    )


def _download_whole(
    remote: RemoteState,
    target: Path,
    client: httpx.Client,
    progress: Progress | None,
    on_start: Callable[[int, int], None] | None,
    on_restart: Callable[[str], None] | None,
    rate_limit: float | None,
) -> DownloadResult:
    """A server that ignores Range still gets the file downloaded: one plain GET streamed
    to the part file (bounded memory, the length checked, renamed in one step), only
    without segments or resuming, which need ranges."""
    part_path, state_path = part_paths(target)
    reason = None
    if part_path.exists() or state_path.exists():
        reason = "the server ignores range requests, so a partial download cannot resume"
        if on_restart is not None:
            on_restart(reason)
    part_path.unlink(missing_ok=True)
    state_path.unlink(missing_ok=True)
    expected = remote.total
    rate = _rate(rate_limit)
    never = threading.Event()
    written = 0
    # Sent as every request of the library is (redirects followed, credentials kept to
    # their origin), then read through httpx's response, which decodes an encoded body.
    response = run_sync(client, send(remote, {"accept-encoding": "identity"})).response
    try:
        remote.requests_sent += 1
        response.raise_for_status()
        encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
        if on_start is not None:
            on_start(0, expected or 0)
        with open(part_path, "wb") as out:
            # A server that encodes anyway is decoded: the file, not its transfer form.
            chunks = response.iter_bytes(CHUNK) if encoded else response.iter_raw(CHUNK)
            for chunk in chunks:
                if rate is not None:
                    rate.wait(len(chunk), never)
                out.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(written, max(expected or 0, written))
            out.flush()
            os.fsync(out.fileno())
    finally:
        response.close()
    if not encoded and expected is not None and written != expected:
        part_path.unlink(missing_ok=True)
        raise IncompleteBodyError(
            f"{remote.url}: got {written:,} bytes of {expected:,}",
            expected=expected,
            received=written,
            url=remote.url,
        )
    os.replace(part_path, target)
    return DownloadResult(
        path=target,
        size=written,
        fetched=written,
        resumed=0,
        requests=remote.requests_sent,
        restarted=reason,
    )


def _rate(rate_limit: float | None) -> RateLimit | None:
    return RateLimit(rate_limit) if rate_limit else None


def _resume_or_restart(
    current: PartState, part_path: Path, state_path: Path
) -> tuple[PartState, str | None]:
    """The record to continue from, and why an older one was thrown away (if it was)."""
    previous = PartState.load(state_path)
    reason: str | None = None
    if previous is not None:
        reason = previous.why_not_resumable(current)
        if reason is None and (not part_path.exists() or part_path.stat().st_size != current.size):
            reason = f"{part_path.name} is missing or has the wrong size"
        if reason is None:
            return previous, None
    elif part_path.exists():
        reason = f"{part_path.name} has no readable record of what it holds"
    if reason is not None:
        part_path.unlink(missing_ok=True)
        state_path.unlink(missing_ok=True)
    return current, reason
