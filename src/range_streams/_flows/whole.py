"""The whole file in one plain GET: what a file object reads from when the server
ignores ``Range`` (answers 200 with the whole file where a range was asked for).

The request carries no ``Range`` at all (a server that mangles ranges still sends the
whole file to it), ``Accept-Encoding: identity`` and, once validators are pinned,
``If-Match``. The body must be exactly as long as its ``Content-Length`` and as the
length already pinned; one with no length is counted to its end, and that count is
pinned. A body that breaks off is fetched again from the start (without ranges there is
no resuming), within the retry budget.
"""

from __future__ import annotations

import logging
from typing import Protocol

from .._core.errors import IncompleteBodyError, RetriesExhaustedError
from .._core.protocol import RemoteState, whole_body_length
from .body import TRANSIENT, RetryPolicy
from .commands import Flow, Receive, Sleep
from .requests import DRAIN_LIMIT, finish, headers_of, send, status_error

__all__ = ["fetch_whole"]

logger = logging.getLogger("range_streams")


class Sink(Protocol):
    """Where the bytes go: a file, in memory or on disk, rewound for each attempt."""

    def write(self, data: bytes, /) -> int: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def truncate(self, size: int | None = None, /) -> object: ...


def fetch_whole(remote: RemoteState, sink: Sink, retry: RetryPolicy) -> Flow[int]:
    """Write the whole file into ``sink`` (from its start); the file's length."""
    attempts = 0
    while True:
        sink.seek(0)
        sink.truncate()
        try:
            return (yield from _fetch_once(remote, sink))
        except TRANSIENT as exc:
            if attempts >= retry.attempts:
                raise RetriesExhaustedError(
                    f"{remote.url}: gave up on the whole file after {attempts + 1} attempts: {exc}",
                    attempts=attempts + 1,
                    position=0,
                    url=remote.url,
                ) from exc
            delay = retry.delay(attempts)
            attempts += 1
            logger.warning(
                "%s: %s reading the whole file; again (attempt %d) in %.2fs",
                remote.url,
                type(exc).__name__,
                attempts,
                delay,
            )
            yield Sleep(delay)


def _fetch_once(remote: RemoteState, sink: Sink) -> Flow[int]:
    headers = {"accept-encoding": "identity"}
    if remote.validators is not None:
        headers.update(remote.validators.preconditions())
    wire = yield from send(remote, headers)
    if wire.response.status_code != 200:
        yield from finish(wire, DRAIN_LIMIT + 1)
        raise status_error(wire, remote, "the whole file")
    fields = headers_of(wire)
    try:
        declared = whole_body_length(fields, remote)
    except Exception:
        yield from finish(wire, DRAIN_LIMIT + 1)
        raise
    received = 0
    try:
        while chunk := (yield Receive(wire)):
            received += len(chunk)
            if declared is not None and received > declared:
                raise IncompleteBodyError(
                    f"{remote.url}: the whole file ran past its Content-Length {declared}",
                    expected=declared,
                    received=received,
                    url=remote.url,
                )
            sink.write(chunk)
    except Exception:
        yield from finish(wire, DRAIN_LIMIT + 1)
        raise
    yield from finish(wire, 0)
    if declared is not None and received != declared:
        raise IncompleteBodyError(
            f"{remote.url}: the whole file ended at byte {received} of {declared}",
            expected=declared,
            received=received,
            url=remote.url,
        )
    remote.pin(received, fields)  # a length that differs from one pinned: another version
    remote.ranges_ignored = True
    return received
