"""Prototype of the client-side remedy for the nginx 40 ms trap (see README.md, nginx_trap.py).

This is *not* part of range-streams: it is the measured recipe the library should adopt in its
own ``make_transport()``. It lives here so the benchmarks can show its effect.

Remedy: re-arm ``TCP_QUICKACK`` on the client socket before every ``recv``. Linux clears the
quick-ACK state by itself (a keep-alive connection re-enters delayed-ACK "ping-pong" mode after
~3 request/response exchanges), so setting it once in ``socket_options`` at connect time does
not last; it must be set again on each read. Cost: one ``setsockopt`` per read (~1 us).
"""

from __future__ import annotations

import socket
import ssl
import typing

import httpcore
import httpx

TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's


def _arm(sock: socket.socket | None) -> socket.socket | None:
    """Set TCP_QUICKACK; returns the socket, or None if the option is unusable."""
    if sock is None or TCP_QUICKACK is None:
        return None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)
    except OSError:
        return None
    return sock


class QuickAckStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream
        self._sock: socket.socket | None = _arm(stream.get_extra_info("socket"))

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
        return QuickAckStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class QuickAckBackend(httpcore.NetworkBackend):
    """Wraps httpcore's SyncBackend; every TCP stream re-arms TCP_QUICKACK before each read."""

    def __init__(self, backend: httpcore.NetworkBackend | None = None) -> None:
        self._backend = backend or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return QuickAckStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return self._backend.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def make_transport(
    *,
    verify: ssl.SSLContext | str | bool = True,
    limits: httpx.Limits = DEFAULT_LIMITS,
    retries: int = 0,
    http2: bool = False,
) -> httpx.HTTPTransport:
    """An httpx transport immune to the sendfile/tcp_nopush + delayed-ACK stall.

    httpx.HTTPTransport has no ``network_backend`` argument, so the pool is rebuilt with the
    same settings through httpcore's public ConnectionPool API.
    """
    transport = httpx.HTTPTransport(verify=verify, limits=limits, retries=retries, http2=http2)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=http2,
        retries=retries,
        network_backend=QuickAckBackend(),
    )
    return transport


def quickack_response_hook(response: httpx.Response) -> None:
    """Alternative for clients the library does not own: re-arm once per response.

    Runs after the status line and headers were read, before the body: flushes the pending
    delayed ACK and leaves ping-pong mode for the rest of this response.
    """
    stream = response.extensions.get("network_stream")
    if stream is not None:
        _arm(stream.get_extra_info("socket"))


class AsyncQuickAckStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._sock: socket.socket | None = _arm(stream.get_extra_info("socket"))

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
        inner = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return AsyncQuickAckStream(inner)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class AsyncQuickAckBackend(httpcore.AsyncNetworkBackend):
    """Async twin of QuickAckBackend, wrapping httpcore's AnyIO/trio auto-detecting backend."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return AsyncQuickAckStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._backend.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def make_async_transport(
    *,
    verify: ssl.SSLContext | str | bool = True,
    limits: httpx.Limits = DEFAULT_LIMITS,
    retries: int = 0,
    http2: bool = False,
) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits, retries=retries, http2=http2)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=http2,
        retries=retries,
        network_backend=AsyncQuickAckBackend(),
    )
    return transport
