"""The httpx clients range-streams creates when the caller does not pass one.

Why a custom network backend (benchmarks/README.md, "The nginx 40 ms trap"): with
``sendfile on; tcp_nopush on;`` (Debian's default), nginx leaves Nagle on for the last
piece of a response. When a range starts off a 4 KiB boundary, the first segment is a
little under full size, and the few KiB after it wait for that segment's ACK. A client
whose kernel has entered delayed-ACK mode (after a few exchanges on a keep-alive
connection) sends that ACK only when its delayed-ACK timer fires (~40 ms on Linux), so a
response of about two segments (62-120 KiB) stalls that long; curl on a keep-alive
connection stalls the same way.

The cure on our side is ``TCP_QUICKACK``. Linux clears it by itself, so setting it once
does not last: our own transports (``sync_transport``, ``async_transport``) re-arm it
before every read (one ``setsockopt``). For a client passed in by the caller, the backends
set it once per response, right after the headers (``quickack``), which is enough to
avoid the stall too.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import time
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from .async_transport import AsyncWireTransport
from .exchange import MAX_HEAD
from .options import DEFAULT_TIMEOUT, ClientOptions, TLSSource
from .shared import FIELDS_EXTENSION, TCP_QUICKACK, arm_quickack
from .sync_transport import WireTransport

__all__ = [
    "SENSITIVE_ATTRIBUTE",
    "ClientOptions",
    "DEFAULT_LIMITS",
    "DirectSend",
    "DEFAULT_TIMEOUT",
    "TCP_QUICKACK",
    "environment_proxies",
    "make_async_client",
    "make_async_transport",
    "make_client",
    "make_transport",
    "quickack",
]

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)
SENSITIVE_ATTRIBUTE = "_rs_sensitive_headers"
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def quickack(response: httpx.Response) -> None:
    """Set TCP_QUICKACK on the connection a caller's client received ``response`` on."""
    stream = response.extensions.get("network_stream")
    if stream is not None:
        arm_quickack(stream.get_extra_info("socket"))


def make_transport(
    limits: httpx.Limits = DEFAULT_LIMITS, tls: TLSSource | None = None, max_head: int = MAX_HEAD
) -> httpx.BaseTransport:
    """range-streams' own HTTP/1.1 transport (see ``shared`` for why not httpcore's)."""
    return WireTransport(limits, tls, max_head)


def make_async_transport(
    limits: httpx.Limits = DEFAULT_LIMITS, tls: TLSSource | None = None, max_head: int = MAX_HEAD
) -> httpx.AsyncBaseTransport:
    return AsyncWireTransport(limits, tls, max_head)


class _Cookies(httpx.Cookies):
    """httpx's cookies, except that a response without Set-Cookie is not parsed: httpx
    builds an email.Message shim of every response's headers for the cookie jar, which
    costs more than the rest of a small response's handling."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _OwnCookies:
    """The ``cookies`` property of the clients we make, holding ``_Cookies``, and what
    lets the drivers hand a request straight to our transport (``DirectSend``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rs_cookies = _Cookies(kwargs.get("cookies"))
        # Straight to our own transport, unless proxies are mounted in front of it
        # (requests then need httpx's routing; if httpx renames the attribute: never).
        transport = kwargs.get("transport")
        ours = isinstance(transport, (WireTransport, AsyncWireTransport))
        self._rs_transport = transport if ours and not getattr(self, "_mounts", True) else None

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


def make_client(
    options: ClientOptions | None = None,
    /,
    *,
    limits: httpx.Limits = DEFAULT_LIMITS,
    **settings: Any,
) -> httpx.Client:
    """An ``httpx.Client`` on range-streams' own transport: what the library uses when it
    is not given a client (pass one to your streams to share its connections).

    ``settings`` are ``ClientOptions``' (``headers``, ``auth``, ``timeout``, ``verify``,
    ``cert``, ``trust_env``, ``http2``, ``proxy``, ...), on top of ``options``. Proxies
    from the environment are honoured as httpx honours them, unless ``trust_env=False``.
    """
    chosen = ClientOptions.of(options, **settings)
    return _make(_Client, httpx.HTTPTransport, WireTransport, chosen, limits)


def make_async_client(
    options: ClientOptions | None = None,
    /,
    *,
    limits: httpx.Limits = DEFAULT_LIMITS,
    **settings: Any,
) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` counterpart of ``make_client``."""
    chosen = ClientOptions.of(options, **settings)
    return _make(_AsyncClient, httpx.AsyncHTTPTransport, AsyncWireTransport, chosen, limits)


def _make(
    client_class: type[ClientT],
    httpx_transport: Callable[..., Any],
    our_transport: Callable[[httpx.Limits, TLSSource, int], Any],
    options: ClientOptions,
    limits: httpx.Limits,
) -> ClientT:
    """A client of ``client_class`` on our transport (httpx's for HTTP/2), with httpx's
    proxy transports mounted in front of it for the proxies that apply."""
    tls = options.tls()
    if options.http2:
        transport = httpx_transport(verify=tls(), http2=True, limits=limits)
    else:
        transport = our_transport(limits, tls, options.max_head_bytes)
    mounts = {
        pattern: None
        if proxy is None
        else httpx_transport(proxy=proxy, verify=tls(), limits=limits)
        for pattern, proxy in _proxies(options).items()
    }
    auth = options.auth
    client = client_class(
        transport=transport,
        mounts=mounts,
        headers=options.headers,
        auth=httpx.BasicAuth(*auth) if isinstance(auth, tuple) else auth,
        timeout=options.timeout_value(),
        trust_env=options.trust_env,
    )
    # The headers this client's requests must not carry to another origin, besides the
    # credential headers every request leaves behind there (the backends read it).
    setattr(client, SENSITIVE_ATTRIBUTE, options.sensitive_headers)
    return client


def _proxies(options: ClientOptions) -> dict[str, str | None]:
    if options.proxy is not None:
        return {"all://": options.proxy}
    return environment_proxies() if options.trust_env else {}


def environment_proxies() -> dict[str, str | None]:
    """httpx's reading of HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY, as URL
    patterns for ``mounts`` (``None``: no proxy there). httpx reads them only for a client
    without a ``transport``, and ours always has one: without this, a client we made
    ignored the environment's proxies and connected straight to the server."""
    found = urllib.request.getproxies()
    patterns: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if found.get(scheme):
            proxy = found[scheme]
            patterns[f"{scheme}://"] = proxy if "://" in proxy else f"http://{proxy}"
    for host in (part.strip() for part in found.get("no", "").split(",")):
        if host == "*":  # no proxy for anything
            return {}
        if not host:
            continue
        if "://" in host:
            patterns[host] = None
        elif _is_ip(host.split("/")[0]) or host.lower() == "localhost":
            patterns[f"all://[{host}]" if ":" in host else f"all://{host}"] = None
        else:  # "example.com" covers it and its subdomains, as curl reads NO_PROXY
            patterns[f"all://*{host}"] = None
    return patterns


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_HTTPX_LOG = logging.getLogger("httpx")
_BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
_NO_BODY = httpx.ByteStream(b"")


class DirectSend:
    """``client.send`` for the clients we make, minus the layers that have nothing to do
    for them: URL and header merging through several ``Headers`` copies, auth and
    redirect generators, transport routing (together a large part of a small request's
    CPU, which is what ``fetch_many`` is made of).

    ``DirectSend.of(client)`` is ``None`` whenever a layer would have work: a client we
    did not make, proxies mounted, auth, event hooks, default params, cookies to send, a
    closed client. What the request and response look like is what ``send`` makes: the
    client's headers overridden by the request's, Host first, the client's timeouts,
    cookies taken from the response, httpx's log line, and ``elapsed`` once closed.
    """

    __slots__ = ("client", "transport")

    def __init__(self, client: httpx.Client | httpx.AsyncClient, transport: Any) -> None:
        self.client = client
        self.transport = transport

    @classmethod
    def of(cls, client: httpx.Client | httpx.AsyncClient) -> DirectSend | None:
        transport = getattr(client, "_rs_transport", None)
        if (
            transport is None
            or client.is_closed
            or client.auth is not None
            or any(client.event_hooks.values())
            or client.params
            or _has_cookies(client.cookies)
        ):
            return None
        return cls(client, transport)

    def request(
        self,
        method: str,
        url: httpx.URL,
        headers: dict[str, str],
        strip: frozenset[str] = frozenset(),
    ) -> httpx.Request:
        """``client.build_request``'s request, less the client's headers in ``strip``
        (lowercased names: credentials a request to another origin must not carry)."""
        # httpx's merge: the client's headers less those the request names, then the
        # request's in its order; the Request then puts Host first.
        named = {name.lower() for name in headers}
        if strip:
            named |= strip
        merged: list[tuple[Any, Any]] = [
            pair
            for pair in self.client.headers.raw
            if pair[0].decode("latin-1").lower() not in named
        ]
        has_host = "host" in named or any(name.lower() == b"host" for name, _ in merged)
        merged.extend(headers.items())
        extensions = {"timeout": self.client.timeout.as_dict()}
        if method not in _BODYLESS:
            return httpx.Request(method, url, headers=merged, extensions=extensions)
        # A body-less request is what httpx's own encoding makes of no content: no
        # framing header, Host first unless given, an empty body already read. Built
        # from one Headers (httpx's path copies and re-normalises every header twice).
        if not has_host:
            merged.insert(0, (b"Host", url.netloc))
        request = httpx.Request(
            method, url, headers=httpx.Headers(merged), stream=_NO_BODY, extensions=extensions
        )
        request.read()
        return request

    def answered(self, request: httpx.Request, response: httpx.Response, start: float) -> None:
        response.request = request
        response.stream = _Elapsed(response, start)
        fields = response.extensions.get(FIELDS_EXTENSION)
        if fields is None or "set-cookie" in fields:
            self.client.cookies.extract_cookies(response)
        if _HTTPX_LOG.isEnabledFor(logging.INFO):
            _HTTPX_LOG.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )


def _has_cookies(cookies: httpx.Cookies) -> bool:
    # The jar's own dict of domains when it has one (empty: no cookie, and no walk of
    # the jar's generator of generators); anything else is asked the public way.
    domains = getattr(cookies.jar, "_cookies", None)
    return bool(domains) if isinstance(domains, dict) else bool(cookies)


class _Elapsed(httpx.SyncByteStream, httpx.AsyncByteStream):
    """The response's body, setting ``response.elapsed`` when closed, as httpx does."""

    def __init__(self, response: httpx.Response, start: float) -> None:
        self._stream: Any = response.stream
        # Dropped once closed: the response holds this stream, so the pair would
        # otherwise wait for the cycle collector, with dozens of objects per request
        # behind them: enough to make it run every few requests, pausing the batch.
        self._response: httpx.Response | None = response
        self._start = start

    def __iter__(self) -> Any:
        yield from self._stream

    async def __aiter__(self) -> Any:
        async for chunk in self._stream:
            yield chunk

    def close(self) -> None:
        self._set_elapsed()
        self._stream.close()

    async def aclose(self) -> None:
        self._set_elapsed()
        await self._stream.aclose()

    def _set_elapsed(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.elapsed = _since(self._start)


def _since(start: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=time.perf_counter() - start)
