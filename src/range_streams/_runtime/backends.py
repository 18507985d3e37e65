"""The network as the drivers see it: a backend sends a request, a wire carries its body.

This is the one boundary between the flows and HTTP. A flow yields ``Send``; the driver
asks its backend to ``send`` it and hands the flow the ``Wire`` that comes back (status and
headers in, body not read). ``Receive``/``ReceiveInto``/``Close`` then become the wire's
``read``/``readinto``/``close``. Every wire keeps the same contract whoever made it:

* ``read(size)``: at most ``size`` bytes of the body (``size`` >= 1), ``b""`` at its end;
* ``readinto(view)``: at most ``len(view)`` bytes into ``view``, their count, 0 at the end;
* ``close()``: the response is done with (what is left unread is the transport's to drop).

The backend here takes any httpx client. A request to one of the library's own clients
that no httpx layer has work for (no auth, hooks, proxies, cookies: ``DirectSend``) goes
straight to our transport, and its wire reads the transport's body (``TransportWire``:
sized reads, counted bodies straight from the socket into the caller's buffer); anything
else goes through ``client.send`` and its wire reads httpx's raw stream (``StreamWire``).
Another HTTP client would be one more backend with the same two methods; the flows would
not change.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import httpx

from .._core.errors import RedirectError
from .._core.origins import split_userinfo
from .._core.range_headers import header_map
from .._core.urls import parse_url
from .._flows.commands import Send
from .._net.async_transport import AsyncTransportBody
from .._net.clients import SENSITIVE_ATTRIBUTE, DirectSend, quickack
from .._net.shared import BODY_EXTENSION, FIELDS_EXTENSION
from .._net.sync_transport import TransportBody

__all__ = [
    "AsyncBackend",
    "AsyncHttpxBackend",
    "AsyncWire",
    "Backend",
    "HttpxBackend",
    "Prepared",
    "SyncWire",
]

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)
BodyT = TypeVar("BodyT", TransportBody, AsyncTransportBody)


class _WireBase:
    """What every wire holds: the response (status, headers, the request it answers),
    its headers as lowercased names to values (repeated names joined: read from the
    transport's parse of the head when it made one, else from ``Headers``), how long
    its head took to come (``waited``), and whether it is closed."""

    __slots__ = ("closed", "fields", "response", "waited")

    def __init__(
        self, response: httpx.Response, waited: float, fields: dict[str, str] | None
    ) -> None:
        self.response = response
        self.waited = waited  # seconds from sending the request to its response's head
        self.closed = False
        self.fields = fields if fields is not None else header_map(response.headers.multi_items())


class _Pending:
    """Bytes of a chunk beyond what a read asked for: served first by the next read."""

    __slots__ = ("_data", "_offset")

    def __init__(self) -> None:
        self._data = b""
        self._offset = 0

    def __bool__(self) -> bool:
        return self._offset < len(self._data)

    def take(self, size: int) -> bytes:
        start = self._offset
        self._offset = min(start + size, len(self._data))
        return self._data[start : self._offset]

    def cut(self, chunk: bytes, size: int) -> bytes:
        """At most ``size`` bytes of ``chunk``; the rest is kept."""
        if len(chunk) <= size:
            return chunk
        self._data, self._offset = chunk, size
        return chunk[:size]


class SyncWire(_WireBase):
    """A sync wire: see the module's docstring for the contract. Each sync class here has
    an async twin (``AsyncWire``, ...) that tests/test_twins.py checks it against."""

    __slots__ = ()

    def read(self, size: int) -> bytes:
        raise NotImplementedError

    def readinto(self, view: memoryview) -> int:
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.closed = True
        self.response.close()


class AsyncWire(_WireBase):
    """An async wire: the contract of ``SyncWire``, awaited."""

    __slots__ = ()

    async def read(self, size: int) -> bytes:
        raise NotImplementedError

    async def readinto(self, view: memoryview) -> int:
        data = await self.read(len(view))
        view[: len(data)] = data
        return len(data)

    async def close(self) -> None:
        self.closed = True
        await self.response.aclose()


class StreamWire(SyncWire):
    """An httpx response's raw byte stream, read in the sizes asked for."""

    __slots__ = ("_chunks", "_pending")

    def __init__(self, response: httpx.Response, chunks: Iterator[bytes], waited: float) -> None:
        super().__init__(response, waited, None)
        self._chunks = chunks
        self._pending = _Pending()

    def read(self, size: int) -> bytes:
        if self._pending:
            return self._pending.take(size)
        return self._pending.cut(next(self._chunks, b""), size)


class AsyncStreamWire(AsyncWire):
    __slots__ = ("_chunks", "_pending")

    def __init__(
        self, response: httpx.Response, chunks: AsyncIterator[bytes], waited: float
    ) -> None:
        super().__init__(response, waited, None)
        self._chunks = chunks
        self._pending = _Pending()

    async def read(self, size: int) -> bytes:
        if self._pending:
            return self._pending.take(size)
        return self._pending.cut(await anext(self._chunks, b""), size)


class _OnTransportBody(_WireBase, Generic[BodyT]):
    """What a wire on our transport's body holds, sync or async: the body, the largest
    read it may ask for (``max_read``: range-streams 1.x's ``chunk_size``; None: any),
    and whether ``readinto`` goes straight to the body (a counted body, reads of any
    size: the socket then fills the caller's buffer). Only the reads differ by side."""

    __slots__ = ("_body", "_direct", "_size")

    def __init__(
        self,
        response: httpx.Response,
        body: BodyT,
        waited: float,
        fields: dict[str, str] | None,
        max_read: int | None,
    ) -> None:
        super().__init__(response, waited, fields)
        self._body: BodyT = body
        self._size = max_read
        self._direct = max_read is None and body.counted  # counted is known from the head


class TransportWire(_OnTransportBody[TransportBody], SyncWire):
    """Our transport's body: a read asks the socket for at most ``size`` bytes, and a
    counted body is read straight into the caller's buffer."""

    __slots__ = ()

    def read(self, size: int) -> bytes:
        return self._body.read(size if self._size is None else min(size, self._size))

    def readinto(self, view: memoryview) -> int:
        if self._direct:
            return self._body.readinto(view)
        return super().readinto(view)


class AsyncTransportWire(_OnTransportBody[AsyncTransportBody], AsyncWire):
    __slots__ = ()

    async def read(self, size: int) -> bytes:
        return await self._body.read(size if self._size is None else min(size, self._size))

    async def readinto(self, view: memoryview) -> int:
        if self._direct:
            return await self._body.readinto(view)
        return await super().readinto(view)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request built ahead of sending it (``fetch_many`` builds the next item's while
    it waits), with what of the client it was built from: it is sent only if those are
    unchanged and the client still takes requests directly (a cookie may have arrived
    meanwhile, which ``DirectSend.of`` sees)."""

    request: httpx.Request
    client_headers: list[tuple[bytes, bytes]]
    timeout: httpx.Timeout

    def fits(self, client: httpx.Client | httpx.AsyncClient) -> bool:
        return client.timeout is self.timeout and client.headers.raw == self.client_headers


class Backend(Protocol):
    def send(self, command: Send, prepared: Prepared | None = None) -> SyncWire: ...


class AsyncBackend(Protocol):
    async def send(self, command: Send, prepared: Prepared | None = None) -> AsyncWire: ...


class _HttpxBase(Generic[ClientT]):
    """What the sync and async httpx backends share: building the request."""

    def __init__(self, client: ClientT) -> None:
        self.client: ClientT = client

    def prepare(self, command: Send) -> Prepared | None:
        """The request for ``command``, built now, if it will go to our transport."""
        direct = DirectSend.of(self.client)
        if direct is None:
            return None
        try:
            request = direct.request(
                command.method, parse_url(command.url), command.headers, command.strip
            )
        except Exception:  # raised again when it is sent, where the flow handles it
            return None
        return Prepared(request, self.client.headers.raw, self.client.timeout)

    def _request(
        self, command: Send, prepared: Prepared | None
    ) -> tuple[httpx.Request, DirectSend | None]:
        """The request to send, and whether it may go straight to our transport."""
        client = self.client
        strip = command.strip
        if strip:  # leaving the origin: what the client itself calls sensitive goes too
            strip = strip | getattr(client, SENSITIVE_ATTRIBUTE, frozenset())
        direct = DirectSend.of(client)
        if direct is None:
            request = client.build_request(
                command.method, parse_url(command.url), headers=command.headers
            )
            for name in strip:  # the client's defaults included
                request.headers.pop(name, None)
            return request, None
        if prepared is not None and prepared.fits(client):
            return prepared.request, direct
        url = parse_url(command.url)
        return direct.request(command.method, url, command.headers, strip), direct


class HttpxBackend(_HttpxBase[httpx.Client]):
    """Any ``httpx.Client``; the library's own straight to their transport. The twin of
    ``AsyncHttpxBackend``, checked against it by tests/test_twins.py."""

    def send(self, command: Send, prepared: Prepared | None = None) -> SyncWire:
        request, direct = self._request(command, prepared)
        started = time.perf_counter()
        if direct is None:
            with _redirect_errors(command):
                response = self.client.send(
                    request, stream=True, follow_redirects=False, auth=_auth(command)
                )
        else:
            response = direct.transport.handle_request(request)
            direct.answered(request, response, started)
        waited = time.perf_counter() - started
        quickack(response)  # a no-op on our own clients' sockets, which re-arm per read
        body = response.extensions.get(BODY_EXTENSION)
        if direct is not None and isinstance(body, TransportBody):
            fields = response.extensions.get(FIELDS_EXTENSION)
            return TransportWire(response, body, waited, fields, command.chunk_size)
        if _preloaded(response):
            return StreamWire(response, _once(response.content), waited)
        return StreamWire(response, response.iter_raw(command.chunk_size), waited)


class AsyncHttpxBackend(_HttpxBase[httpx.AsyncClient]):
    """Any ``httpx.AsyncClient``; the library's own straight to their transport."""

    async def send(self, command: Send, prepared: Prepared | None = None) -> AsyncWire:
        request, direct = self._request(command, prepared)
        started = time.perf_counter()
        if direct is None:
            with _redirect_errors(command):
                response = await self.client.send(
                    request, stream=True, follow_redirects=False, auth=_auth(command)
                )
        else:
            response = await direct.transport.handle_async_request(request)
            direct.answered(request, response, started)
        waited = time.perf_counter() - started
        quickack(response)
        body = response.extensions.get(BODY_EXTENSION)
        if direct is not None and isinstance(body, AsyncTransportBody):
            fields = response.extensions.get(FIELDS_EXTENSION)
            return AsyncTransportWire(response, body, waited, fields, command.chunk_size)
        if _preloaded(response):
            return AsyncStreamWire(response, _aonce(response.content), waited)
        return AsyncStreamWire(response, response.aiter_raw(command.chunk_size), waited)


@contextlib.contextmanager
def _redirect_errors(command: Send) -> Iterator[None]:
    """httpx's ``send`` parses a redirect's Location itself (for ``next_request``), even
    when not following it, and raises RemoteProtocolError for a malformed one: that is
    the library's RedirectError, as it is on our own clients' path."""
    try:
        yield
    except (httpx.RemoteProtocolError, httpx.InvalidURL) as exc:
        if isinstance(exc, httpx.RemoteProtocolError) and not str(exc).startswith(
            "Invalid URL in location header"
        ):
            raise
        url = split_userinfo(command.url)[0]
        raise RedirectError(f"{url} redirected to an unusable Location: {exc}", url=url) from exc


def _auth(command: Send) -> Any:
    """The ``auth`` for ``client.send``: none at all for a request that must carry no
    credentials (``Send.strip``), else the client's own."""
    return None if command.strip else httpx.USE_CLIENT_DEFAULT


def _preloaded(response: httpx.Response) -> bool:
    # Transports that build responses from bytes (MockTransport, respx) hand over a body
    # httpx already read; streaming it again would raise StreamConsumed.
    return response.is_stream_consumed and hasattr(response, "_content")


def _once(data: bytes) -> Iterator[bytes]:
    yield data


async def _aonce(data: bytes) -> AsyncIterator[bytes]:
    yield data
