"""The httpx clients range-streams creates when the caller does not pass one."""

from __future__ import annotations

import socket

import httpx

__all__ = ["DEFAULT_TIMEOUT", "make_async_client", "make_client", "socket_options"]

# A stalled body must end in a ReadTimeout, never a hang; connecting is quick or broken.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def socket_options() -> list[tuple[int, int, int]]:
    """Disable Nagle on our side, so a small request is never held back waiting for an ACK."""
    return [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def make_client() -> httpx.Client:
    transport = httpx.HTTPTransport(socket_options=socket_options(), retries=1)
    return httpx.Client(transport=transport, timeout=DEFAULT_TIMEOUT)


def make_async_client() -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(socket_options=socket_options(), retries=1)
    return httpx.AsyncClient(transport=transport, timeout=DEFAULT_TIMEOUT)
