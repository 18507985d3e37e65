"""The exceptions range-streams raises, as one tree.

Every error that range-streams itself decides on derives from ``RangeStreamError``.
httpx's own transport errors (``httpx.ConnectError``, ``httpx.ReadTimeout``, ...) pass
through unchanged unless the retry budget turned them into ``RetriesExhaustedError``.

::

    RangeStreamError
    ├── InvalidRangeError (ValueError) ........ a range that cannot be asked for: float,
    │                                           start > stop, past the end, negative with
    │                                           no known length
    ├── InvalidURLError (ValueError) .......... not an absolute http(s) URL
    ├── OverlapError (ValueError) ............. strict overlap policy refused a range
    ├── StreamClosedError (ValueError) ........ I/O on a closed stream or file
    └── RangeResponseError .................... the server's answer cannot be trusted
        ├── PartialContentStatusError ......... not 206 (range-streams 1.x's name)
        │   ├── HTTPStatusError (httpx.HTTPStatusError)  4xx / 5xx (except below)
        │   │   ├── RangeNotSatisfiableError .. 416
        │   │   └── NotFoundError (FileNotFoundError)  404 / 410: no such file
        │   └── RangeNotSupportedError ........ 200 (the whole file) to a ranged request
        ├── RedirectError ..................... a redirect not followed: malformed or
        │                                       non-http(s) Location, too many hops, or
        │                                       follow_redirects=False
        ├── ContentRangeError ................. missing, malformed or mismatched
        │                                       Content-Range (start, length, total)
        ├── ContentEncodingError .............. a 206 whose body is encoded (gzip, ...)
        ├── RemoteFileChangedError ............ validators or size changed, or 412
        ├── MultipartError .................... unparsable multipart/byteranges body
        ├── IncompleteBodyError ............... the body ended before / ran past its length
        └── RetriesExhaustedError ............. transient faults outlasted the retry budget

``ValueError`` is a base of the input errors so that code written against the io
module (which raises ``ValueError`` for I/O on closed files) keeps working.
"""

from __future__ import annotations

import httpx

__all__ = [
    "ContentEncodingError",
    "ContentRangeError",
    "HTTPStatusError",
    "IncompleteBodyError",
    "InvalidRangeError",
    "InvalidURLError",
    "MultipartError",
    "NotFoundError",
    "OverlapError",
    "PartialContentStatusError",
    "RangeNotSatisfiableError",
    "RangeNotSupportedError",
    "RangeResponseError",
    "RangeStreamError",
    "RedirectError",
    "RemoteFileChangedError",
    "RetriesExhaustedError",
    "StreamClosedError",
]


class RangeStreamError(Exception):
    """Base class of every error range-streams raises itself."""


class InvalidRangeError(RangeStreamError, ValueError):
    """A byte range that cannot be requested as given."""


class InvalidURLError(RangeStreamError, ValueError):
    """The URL is not an absolute http(s) URL."""


class OverlapError(RangeStreamError, ValueError):
    """A new range overlaps a registered one under the strict policy."""


class StreamClosedError(RangeStreamError, ValueError):
    """I/O was attempted on a closed stream, response or file."""


class RangeResponseError(RangeStreamError):
    """The server's response to a range request cannot be used as the bytes asked for."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class PartialContentStatusError(RangeResponseError):
    """The answer to a range request was not 206 (Partial Content).

    range-streams 1.x raised this for any such answer; 2.x says why with its two
    subclasses (an error status, or the whole file sent instead), so a 1.x ``except
    PartialContentStatusError`` still catches both. ``request`` and ``response`` are the
    httpx objects, when there is a response to show.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        url: str | None = None,
        request: httpx.Request | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        if message is None:
            status = "?" if response is None else response.status_code
            message = f"Got HTTP {status} not 206 (Partial Content)"
        if url is None and request is not None:
            url = str(request.url)
        super().__init__(message, url=url)
        # Set in the instance's dict: HTTPStatusError, a subclass, has httpx's typed
        # ``request`` and ``response`` instead, which are always there.
        vars(self).update(request=request, response=response)


class HTTPStatusError(PartialContentStatusError, httpx.HTTPStatusError):
    """An error status. Also an ``httpx.HTTPStatusError``, as upstream raised that."""

    def __init__(self, message: str, *, request: httpx.Request, response: httpx.Response) -> None:
        httpx.HTTPStatusError.__init__(self, message, request=request, response=response)
        self.url = str(request.url)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled (Dask ships a worker's errors home) with the request's method and URL
        # only: its headers may hold credentials, which a pickle must not carry.
        request = httpx.Request(self.request.method, self.request.url)
        response = httpx.Response(
            self.response.status_code, headers=self.response.headers, request=request
        )
        return (_rebuild_status_error, (type(self), str(self.args[0]), request, response))


def _rebuild_status_error(
    kind: type[HTTPStatusError], message: str, request: httpx.Request, response: httpx.Response
) -> HTTPStatusError:
    return kind(message, request=request, response=response)


class RangeNotSatisfiableError(HTTPStatusError):
    """416: the range starts at or past the end of the file."""


class NotFoundError(HTTPStatusError, FileNotFoundError):
    """404 or 410: there is no file at the URL. Also a ``FileNotFoundError``, so code
    written for files (``except FileNotFoundError``, fsspec's ``exists``, a mapper's
    ``KeyError``, zarr's probing for metadata) treats a missing URL as a missing file."""

    def __init__(self, message: str, *, request: httpx.Request, response: httpx.Response) -> None:
        super().__init__(message, request=request, response=response)
        self.filename = self.url

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RangeNotSupportedError(PartialContentStatusError):
    """The server sent the whole file (200) where a range was asked for."""


class RedirectError(RangeResponseError):
    """A redirect that is not followed: its Location is malformed or not http(s), the
    chain is too long, or redirects are switched off (``follow_redirects=False``)."""


class ContentRangeError(RangeResponseError):
    """Content-Range is missing, malformed, or does not match what was asked for."""


class ContentEncodingError(RangeResponseError):
    """A partial response body is content-encoded, so its bytes are not the file's."""


class RemoteFileChangedError(RangeResponseError):
    """The remote file is not the version the stream started reading."""


class MultipartError(RangeResponseError):
    """A multipart/byteranges body could not be parsed."""


class IncompleteBodyError(RangeResponseError):
    """A body ended early (or ran long); ``received`` says how many bytes arrived."""

    def __init__(
        self, message: str, *, expected: int, received: int, url: str | None = None
    ) -> None:
        super().__init__(message, url=url)
        self.expected = expected
        self.received = received


class RetriesExhaustedError(RangeResponseError):
    """Transient faults outlasted the retry budget; ``position`` is how far reading got."""

    def __init__(
        self, message: str, *, attempts: int, position: int, url: str | None = None
    ) -> None:
        super().__init__(message, url=url)
        self.attempts = attempts
        self.position = position
