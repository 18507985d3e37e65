"""``file[start:end]``, as a Python slice reads it, in one request.

What fsspec's ``cat_file(path, start, end)`` means. Either end may be missing or
negative; ends past the file are cut, as in a slice. Every shape needs one request
whether or not the length is known: ``[a:]`` is ``bytes=a-``; ``[-n:]`` is ``bytes=-n``;
``[a:-m]`` and ``[-n:-m]`` send those and drop the last ``m`` bytes; ``[-n:b]`` sends
``bytes=-n`` and cuts at ``b`` once the answer has told the length. A server that ignores
Range gets one more request, a plain GET of the whole file, which is then sliced.
"""

from __future__ import annotations

import io

from .._core.errors import RangeNotSatisfiableError, RangeNotSupportedError
from .._core.protocol import RemoteState
from .._core.spans import Span
from .body import Body, BodyLimits, RetryPolicy
from .commands import Flow
from .whole import fetch_whole

__all__ = ["read_slice"]


def read_slice(
    remote: RemoteState,
    start: int | None,
    end: int | None,
    retry: RetryPolicy,
    limits: BodyLimits,
) -> Flow[bytes]:
    start = 0 if start is None else start
    if remote.total is not None:
        first, stop, _ = slice(start, end).indices(remote.total)
        if stop <= first:
            return b""
        span, drop = Span(first, stop), 0
    else:
        if end is not None and (start >= 0) == (end >= 0) and end <= start:
            return b""
        span = Span(start, end if end is not None and end >= 0 and start >= 0 else None)
        drop = -end if end is not None and end < 0 else 0
    try:
        data = yield from Body(remote, span, retry=retry, limits=limits, clip=True).read_all()
    except RangeNotSatisfiableError:
        if remote.total is not None and span.start >= remote.total:
            return b""  # starts at or past the end: an empty slice
        raise
    except RangeNotSupportedError:
        whole = io.BytesIO()
        yield from fetch_whole(remote, whole, retry)
        return whole.getvalue()[start:end]
    if drop:
        data = data[: max(len(data) - drop, 0)]
    if start < 0 and end is not None and end >= 0:
        # [-n:b]: the suffix told the length; cut at b.
        assert remote.total is not None
        first = max(remote.total + start, 0)
        data = data[: max(end - first, 0)]
    return data
