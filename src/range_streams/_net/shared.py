"""range-streams' own HTTP/1.1 transports: the clients the library creates use these.

Why not httpx's default transport (measured in benchmarks/README.md, "The library's own
transport"): httpcore's pool re-scans every connection for every queued request, which
is much of ``fetch_many``'s CPU, and every 64 KiB of a body passes through h11 and four
layers of iterators, which slows a sequential read well below curl's speed. Here the pool
is a per-origin stack of idle sockets (``pool``), the framing is ``exchange.Exchange``
(pure), and a counted body goes from ``recv`` to the caller as the kernel hands it over.

This module holds what the two transports share besides their decisions (``pool``) and
their framing (``exchange``): the response they hand to httpx, the body's state, the
socket helpers. ``sync_transport`` (``WireTransport``) and ``async_transport``
(``AsyncWireTransport``) only move bytes. Both re-arm TCP_QUICKACK before every read
(see ``clients``: the nginx trap).

Scope: HTTP/1.1 over TCP or TLS, one request per connection at a time, keep-alive,
``Limits`` and ``Timeout`` as httpx defines them. Request bodies are sent from memory
(the library only sends GETs). Proxies from the environment go through httpx's own
proxy transports, which ``clients.make_client`` mounts in front of ours.
"""

from __future__ import annotations

import select
import socket
import ssl
from typing import Any, Generic, TypeVar

import httpx

from .exchange import Exchange
from .pool import Origin

__all__ = [
    "BODY_EXTENSION",
    "check_alpn",
    "FIELDS_EXTENSION",
    "READ_CHUNK",
    "SMALL_WRITE",
    "TCP_QUICKACK",
    "BodyState",
    "arm_quickack",
    "make_response",
    "readable",
    "timeouts_of",
]

# The response extension holding the body stream, whose ``read(size)`` the drivers use.
BODY_EXTENSION = "range_streams.body"
# The response's headers as ``_net.heads.Head.fields`` (lowercased names; None when the head
# was not all ASCII or h11 read it): what the flows check, without going through Headers.
FIELDS_EXTENSION = "range_streams.fields"
READ_CHUNK = 1 << 20  # most bytes one body read asks the socket for
SMALL_WRITE = 16 * 1024  # writes this small go straight to the kernel's send buffer
TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only

C = TypeVar("C")
T = TypeVar("T")


def arm_quickack(sock: Any) -> bool:
    """Set TCP_QUICKACK (Linux clears it by itself, so callers re-arm it per read)."""
    # Duck-typed: under asyncio the socket is a TransportSocket, which takes it too.
    if TCP_QUICKACK is None or sock is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
    except (OSError, AttributeError):
        return False
    return True


def readable(sock: Any) -> bool:
    """Readable while idle (unsolicited bytes, or the peer closed): not reusable."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    fileno = sock.fileno()
    if fileno < 0:
        return True
    poller = select.poll()
    poller.register(fileno, select.POLLIN)
    return bool(poller.poll(0))


def check_alpn(protocol: str | None, host: str) -> None:
    """The TLS handshake agreed on HTTP/1.1 (or on nothing, which means it): a context
    of the caller's that offered ``h2`` could otherwise have the server start HTTP/2."""
    if protocol not in (None, "http/1.1"):
        raise httpx.ConnectError(
            f"{host} chose {protocol!r} in the TLS handshake; range-streams' transport"
            " speaks HTTP/1.1 (use http2=True for httpx's HTTP/2 transport)"
        )


def timeouts_of(request: httpx.Request) -> dict[str, float | None]:
    return request.extensions.get("timeout", {})  # type: ignore[no-any-return]


def make_response(
    exchange: Exchange, stream: httpx.SyncByteStream | httpx.AsyncByteStream
) -> httpx.Response:
    head = exchange.head
    assert head is not None
    return httpx.Response(
        head.status_code,
        headers=head.headers,
        stream=stream,
        extensions={
            "http_version": b"HTTP/" + head.http_version,
            "reason_phrase": head.reason,
            BODY_EXTENSION: stream,
            FIELDS_EXTENSION: head.fields,
        },
    )


class BodyState(Generic[T, C]):
    """What a response body holds, sync or async: its transport, connection and exchange."""

    def __init__(
        self, transport: T, origin: Origin, connection: C, exchange: Exchange, timeout: float | None
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._connection: C | None = connection
        self._exchange = exchange
        self._timeouts = {"read": timeout}

    @property
    def counted(self) -> bool:
        """A Content-Length body: its bytes may be read straight into a caller's buffer."""
        return self._exchange.counted
