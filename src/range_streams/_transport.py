"""The httpx clients range-streams creates when the caller does not pass one.

Why a custom network backend (measured in benchmarks/README.md, "The nginx 40 ms trap"):
with ``sendfile on; tcp_nopush on;`` (Debian's default), nginx leaves Nagle on for the
last piece of a response. When a range starts off a 4 KiB boundary, the first segment
is a little under full size, and the few KiB after it wait for that segment's ACK. A
client whose kernel has entered delayed-ACK mode (after ~3 exchanges on a keep-alive
connection) sends that ACK only after ~40 ms. Responses of about 62-120 KiB — exactly two
segments — stall 44 ms each; curl on a keep-alive connection stalls the same way.

The cure on our side is ``TCP_QUICKACK``. Linux clears it by itself, so setting it once
does not last: our own transports (``_wire``) re-arm it before every read (~1 us). For a
client passed in by the caller, the drivers set it once per response, right after the
headers (``quickack``), which clears the stall in the measurements too.
"""

from __future__ import annotations

from typing import Any

import httpx

from ._wire import TCP_QUICKACK, AsyncWireTransport, WireTransport, arm_quickack

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "TCP_QUICKACK",
    "make_async_client",
    "make_async_transport",
    "make_client",
    "make_transport",
    "quickack",
]

# A stalled body must end in a ReadTimeout, never a hang; connecting is quick or broken.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def quickack(response: httpx.Response) -> None:
    """Set TCP_QUICKACK on the connection a caller's client received ``response`` on."""
    stream = response.extensions.get("network_stream")
    if stream is not None:
        arm_quickack(stream.get_extra_info("socket"))


def make_transport(limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.BaseTransport:
    """range-streams' own HTTP/1.1 transport (see ``_wire`` for why not httpcore's)."""
    return WireTransport(limits)


def make_async_transport(limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.AsyncBaseTransport:
    return AsyncWireTransport(limits)


class _Cookies(httpx.Cookies):
    """httpx's cookies, except that a response without Set-Cookie is not parsed: httpx
    builds an email.Message shim of every response's headers for the cookie jar, 10% of
    fetch_many's CPU."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _OwnCookies:
    """The ``cookies`` property of the clients we make, holding ``_Cookies``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rs_cookies = _Cookies(kwargs.get("cookies"))

    @property
    def cookies(self) -> httpx.Cookies:
        return self._rs_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._rs_cookies = _Cookies(cookies)


class _Client(_OwnCookies, httpx.Client):
    pass


class _AsyncClient(_OwnCookies, httpx.AsyncClient):
    pass


def make_client() -> httpx.Client:
    """An ``httpx.Client`` on range-streams' own transport (what the library uses when
    it is not given a client; pass one to your streams to share its connections)."""
    return _Client(transport=make_transport(), timeout=DEFAULT_TIMEOUT)


def make_async_client(limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` counterpart of ``make_client``."""
    return _AsyncClient(transport=make_async_transport(limits), timeout=DEFAULT_TIMEOUT)
