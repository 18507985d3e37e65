"""``RangeRequest``: range-streams 1.x's one streaming range request, over a ``Body``.

In 1.x a ``RangeRequest`` sent ``GET`` with a ``Range`` header at construction and kept
the streaming ``httpx.Response``; a ``RangeResponse`` read it. Here the request is a
``Body`` (so its answer is checked as every 2.x answer is: status, Content-Range,
encoding, validators; and resumed if it breaks off), sent at construction as 1.x did.
Every ``RangeResponse`` of a stream also has one, made on demand over the same body
(``RangeResponse.request``), which sends nothing.

What 1.x's request did for single-request mode ("simulated" and "windowed" requests,
built from a whole-file GET) is the stream's job now: ``RangeStream(url,
single_request=True)``. Async requests are ``AsyncRangeStream``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import httpx
from ranges import Range

from .._core.errors import PartialContentStatusError, RangeResponseError
from .._core.legacy import detect_header_value, legacy_range_header, validate_range
from .._core.protocol import RemoteState
from .._core.spans import Span
from .._core.urls import check_url
from .._flows.body import Body
from .._flows.commands import Flow
from .._runtime.drivers import run_sync

__all__ = ["PartialContentStatusError", "RangeRequest"]

EMPTY = Range(0, 0)
DEFAULT_CHUNK = 64 * 1024  # iter_raw's chunk when no chunk_size was given


def _body_for(remote: RemoteState, byte_range: Range) -> Body:
    """1.x asked for ``bytes=0-`` (the whole file) for any empty range."""
    if byte_range.isempty():
        return Body(remote, Span(0, None))
    return Body(remote, Span(byte_range.start, byte_range.end))


def _gone(what: str, replacement: str) -> NoReturn:
    raise TypeError(f"{what} is not part of range-streams 2: {replacement}")


class RangeRequest:
    """A sent range request for ``byte_range`` of ``url`` (1.x's class).

    ``byte_range`` is half-open; an empty range asks for the whole file (``bytes=0-``),
    as in 1.x. The request is sent by the constructor and must be answered 206.
    """

    def __init__(
        self,
        byte_range: Range,
        url: str,
        client: httpx.Client,
        GET_got: tuple[Any, Any] | None = None,  # 1.x's name
        window_on_range: Range = EMPTY,
        chunk_size: int | None = None,
    ) -> None:
        if GET_got is not None or not window_on_range.isempty():
            _gone(
                "a simulated or windowed RangeRequest",
                "one GET read through windows is RangeStream(url, single_request=True)",
            )
        if isinstance(client, httpx.AsyncClient):
            _gone("a RangeRequest on an httpx.AsyncClient", "use AsyncRangeStream")
        if not isinstance(client, httpx.Client):
            raise TypeError(f"client must be an httpx.Client, not {type(client).__name__}")
        self.range = validate_range(byte_range)
        self.url = url
        self.client = client
        self.chunk_size = chunk_size
        self.window_on_range = EMPTY
        self.is_windowed = False
        self.is_simulated = False
        self._body = _body_for(RemoteState(check_url(url), chunk_size=chunk_size), self.range)
        self._run: Callable[[Flow[Any]], Any] = lambda flow: run_sync(client, flow)
        self._position = 0 if self.range.isempty() else self.range.start
        self.response: httpx.Response
        self.setup_stream()
        self.content_range = self.content_range_header()

    @classmethod
    def _over(
        cls,
        body: Body,
        byte_range: Range,
        url: str,
        client: Any,
        run: Callable[[Flow[Any]], Any],
        window_on_range: Range = EMPTY,
    ) -> RangeRequest:
        """The request behind a stream's response: the same body, nothing sent."""
        request = cls.__new__(cls)
        request.range = byte_range
        request.url = url
        request.client = client
        request.chunk_size = body.remote.chunk_size
        request.window_on_range = window_on_range
        request.is_windowed = request.is_simulated = not window_on_range.isempty()
        request._body = body
        request._run = run
        request._position = 0 if byte_range.isempty() else byte_range.start
        return request

    @classmethod
    def _send(
        cls,
        remote: RemoteState,
        client: httpx.Client,
        byte_range: Range,
        run: Callable[[Flow[Any]], Any],
    ) -> RangeRequest:
        """A request sent now for a stream (its client and its pinned version)."""
        request = cls._over(_body_for(remote, byte_range), byte_range, remote.url, client, run)
        request.setup_stream()
        request.content_range = request.content_range_header()
        return request

    def __getattr__(self, name: str) -> Any:
        if name == "response":
            # A stream's lazy range has no response until its first read sends it.
            response = self.__dict__["_body"].response
            if response is None:
                raise AttributeError(
                    f"the request for {self.range} has not been sent yet: it goes with the"
                    " first read of its range"
                )
            return response
        if name == "content_range":
            return detect_header_value(self.response.headers, "content-range")
        if name == "request":
            return self.response.request  # the httpx.Request that was sent
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def client_is_async(self) -> bool:
        return False

    @property
    def range_header(self) -> dict[str, str]:
        return legacy_range_header(self.range)

    @property
    def total_content_length(self) -> int:
        """The file's length, from the answer's Content-Range."""
        total = self._body.remote.total
        if total is None:
            total = int(str(self.content_range).split("/")[-1])
        return total

    def setup_stream(self) -> None:
        """Send the request (headers only; the body is read as it is iterated)."""
        # An error status raises HTTPStatusError, a PartialContentStatusError (1.x's).
        self._run(self._body.send_now())
        response = self._body.response
        if response is None:
            raise RangeResponseError(f"{self.url}: no bytes to ask for in {self.range}")
        self.response = response
        self.raise_for_non_partial_content()

    def raise_for_non_partial_content(self) -> None:
        if self.response.status_code != 206:
            self._run(self._body.close())
            raise PartialContentStatusError(request=self.response.request, response=self.response)

    def content_range_header(self) -> str:
        """The answer's Content-Range; KeyError if it has none."""
        return str(detect_header_value(self.response.headers, "content-range"))

    def iter_raw(self) -> Iterator[bytes]:
        """The range's bytes in chunks of at most ``chunk_size``, from where the last
        iteration of this request stopped."""
        body = self._body
        step = self.chunk_size or DEFAULT_CHUNK
        limit = None if self.range.isempty() else self.range.end
        while True:
            self._run(body.open())
            assert body.stop is not None
            stop = body.stop if limit is None else min(body.stop, limit)
            if self._position >= stop:
                return
            chunk: bytes = self._run(body.read_at(self._position, min(step, stop - self._position)))
            if not chunk:
                return
            self._position += len(chunk)
            yield chunk

    def close(self) -> None:
        """Close the response (its connection is reused when little is left unread)."""
        self._run(self._body.close())

    def check_client(self) -> None:
        if not isinstance(self.client, httpx.Client):
            raise TypeError(f"client must be an httpx.Client, not {type(self.client).__name__}")

    async def await_aiterator(self) -> None:
        _gone("RangeRequest.await_aiterator", "async reads are AsyncRangeStream's")

    async def aiter_raw(self) -> Any:
        _gone("RangeRequest.aiter_raw", "async reads are AsyncRangeStream's")

    @property
    def aiterator_initialised(self) -> bool:
        return False

    @classmethod
    def windowed_request(cls, *args: Any, **kwargs: Any) -> RangeRequest:
        _gone(
            "RangeRequest.windowed_request",
            "windows onto one GET are RangeStream(url, single_request=True).add(range)",
        )

    @classmethod
    def from_get_stream(cls, *args: Any, **kwargs: Any) -> RangeRequest:
        _gone(
            "RangeRequest.from_get_stream",
            "one GET read through windows is RangeStream(url, single_request=True)",
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.range} of {self.url!r}>"
