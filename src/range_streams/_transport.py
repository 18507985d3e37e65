"""The httpx clients range-streams creates when the caller does not pass one.

Why a custom network backend (measured in benchmarks/README.md, "The nginx 40 ms trap"):
with ``sendfile on; tcp_nopush on;`` (Debian's default), nginx leaves Nagle on for the
last piece of a response. When a range starts off a 4 KiB boundary, the first segment
is a little under full size, and the few KiB after it wait for that segment's ACK. A
client whose kernel has entered delayed-ACK mode (after ~3 exchanges on a keep-alive
connection) sends that ACK only after ~40 ms. Responses of about 62-120 KiB — exactly two
segments — stall 44 ms each; curl on a keep-alive connection stalls the same way.

The cure on our side is ``TCP_QUICKACK``. Linux clears it by itself, so setting it once
in ``socket_options`` does not last: our backend re-arms it before every read (~1 us).
For a client passed in by the caller, the drivers set it once per response, right after
the headers (``quickack``), which clears the stall in the measurements too.
"""

from __future__ import annotations

import functools
import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

__all__ = [
    "DEFAULT_TIMEOUT",
    "make_async_client",
    "make_async_transport",
    "make_client",
    "make_transport",
    "quickack",
    "socket_options",
]

# A stalled body must end in a ReadTimeout, never a hang; connecting is quick or broken.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def socket_options() -> list[tuple[int, int, int]]:
    """Disable Nagle on our side, so a small request is never held back waiting for an ACK."""
    return [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def _quickack(stream: Any) -> Any:
    """The stream's socket with TCP_QUICKACK set, or None where that is not possible."""
    return _arm(stream.get_extra_info("socket"))


def _arm(sock: Any) -> Any:
    # Duck-typed: under asyncio the "socket" is an asyncio TransportSocket, not a
    # socket.socket, and it takes setsockopt all the same.
    if TCP_QUICKACK is None or not hasattr(sock, "setsockopt"):
        return None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
    except OSError:
        return None
    return sock


def _extra_info(stream: Any, raw: Any, info: str) -> Any:
    # httpcore's pool asks every idle connection "socket" and "is_readable" on every
    # request; anyio answers both through its typed-attribute machinery, which made the
    # pool the bottleneck of fetch_many. The socket never changes: answer from it.
    if info == "socket":
        return raw
    if info == "is_readable" and hasattr(raw, "fileno") and hasattr(select, "poll"):
        return _readable(raw)
    return stream.get_extra_info(info)


def _readable(sock: Any) -> bool:
    """Readable now (data, or the peer closed): the connection is not safely reusable."""
    fileno = sock.fileno()
    if fileno < 0:
        return True
    poller = select.poll()
    poller.register(fileno, select.POLLIN)
    return bool(poller.poll(0))


def quickack(response: httpx.Response) -> None:
    """Set TCP_QUICKACK on the connection a response arrived on, if there is one."""
    stream = response.extensions.get("network_stream")
    if stream is not None:
        _quickack(stream)


class _QuickAckStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream
        # Kept: httpcore's pool asks every idle connection for its socket on every
        # request, and anyio answers that slowly; the socket never changes.
        self._raw = stream.get_extra_info("socket")
        self._sock = _arm(self._raw)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._sock is not None:
            self._sock = _arm(self._sock)
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _QuickAckStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return _extra_info(self._stream, self._raw, info)


class _QuickAckBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _QuickAckStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return self._backend.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _AsyncQuickAckStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._raw = stream.get_extra_info("socket")
        self._sock = _arm(self._raw)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._sock is not None:
            self._sock = _arm(self._sock)
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return _AsyncQuickAckStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return _extra_info(self._stream, self._raw, info)


class _AsyncQuickAckBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _AsyncQuickAckStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._backend.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~45 ms: do it once per process, not per client.
    return httpx.create_ssl_context()


def _pool_settings(limits: httpx.Limits) -> dict[str, Any]:
    """What httpx would give its own pool, for the pool we build with our backend."""
    return {
        "ssl_context": _ssl_context(),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "retries": 1,
        "socket_options": socket_options(),
    }


def make_transport(limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.HTTPTransport:
    """An httpx transport immune to the sendfile/tcp_nopush + delayed-ACK stall.

    httpx.HTTPTransport takes no network backend, so its pool is replaced by an httpcore
    ConnectionPool with the same settings and ours.
    """
    transport = httpx.HTTPTransport(verify=_ssl_context(), limits=limits)
    transport._pool = httpcore.ConnectionPool(
        **_pool_settings(limits), network_backend=_QuickAckBackend()
    )
    return transport


def make_async_transport(limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(verify=_ssl_context(), limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(
        **_pool_settings(limits), network_backend=_AsyncQuickAckBackend()
    )
    return transport


def make_client() -> httpx.Client:
    return httpx.Client(transport=make_transport(), timeout=DEFAULT_TIMEOUT)


def make_async_client(limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=make_async_transport(limits), timeout=DEFAULT_TIMEOUT)
