"""Redirects and credentials, checked by what each server actually received.

The file's origin is server A (plain HTTP and TLS on one port, so that ``https`` to
``http`` on the same host and port is a downgrade and nothing else); the other origin is
server B, on another port. Each way of giving a credential (a caller's client's headers
or ``auth=``, URL userinfo, ``make_client`` settings, ``ClientOptions`` headers, auth
or ``sensitive_headers``, cookies) meets each redirect topology. httpx's default client
(``follow_redirects=True``) reads the first range; ours reads it and then a second one
(which goes to the remembered location), through ``range_streams.open`` /
``open_async`` on sync, asyncio and trio.

The rule both are held to: a request carries the credential only to the file's own
origin, and only while the chain of redirects that led there never left it (httpx's
rule for ``Authorization``); a later request to the remembered location carries it only
if the chain that found it never left the origin. Where httpx differs, ``KNOWN`` says
how and why; ours has no exception.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx
import pytest

import range_streams as rs

from .clients import (
    MODES,
    TIMEOUT,
    library_reads,
    reference_ranges,
    summary,
)
from .server import FileHost, HostileServer, Reply, Request, redirect, routes

pytestmark = pytest.mark.timeout(30)

SECRET = "hunter2-Zq9x"
USER = "reader"
BEARER = f"Bearer {SECRET}"
BASIC = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
# Every form the secret could travel in: as given, and inside Basic's base64.
LEAK_FORMS = (SECRET.encode(), BASIC.split(" ", 1)[1].encode())
CREDENTIAL_FIELDS = ("authorization", "cookie", "x-api-key")
DATA = bytes(i % 251 for i in range(4096))
FIRST, SECOND = (0, 100), (1000, 1050)

Client = httpx.Client | httpx.AsyncClient
Builder = Callable[[bool, ssl.SSLContext], Client]


def caller(**settings: Any) -> Builder:
    """A client the caller made with httpx and passes to ``open(url, client=...)``."""

    def build(run_async: bool, tls: ssl.SSLContext) -> Client:
        kind = httpx.AsyncClient if run_async else httpx.Client
        return kind(verify=tls, timeout=TIMEOUT, trust_env=False, **settings)

    return build


def made(
    options: rs.ClientOptions | None = None,
    *,
    cookies: dict[str, str] | None = None,
    **settings: Any,
) -> Builder:
    """A client from ``make_client`` / ``make_async_client`` (``options``, ``settings``)."""

    def build(run_async: bool, tls: ssl.SSLContext) -> Client:
        make = rs.make_async_client if run_async else rs.make_client
        client = make(options, verify=tls, timeout=TIMEOUT, trust_env=False, **settings)
        if cookies:
            client.cookies = cookies  # type: ignore[assignment]
        return client

    return build


@dataclass(frozen=True)
class Way:
    """One way of giving the credential: the field it travels in, its exact value at the
    origin, the same credential for httpx's client (``reference``), and our client."""

    id: str
    carrier: str  # the header field, lowercased
    value: str
    reference: Mapping[str, Any]
    ours: Builder = field(compare=False)
    userinfo: bool = False  # given as ``user:secret@`` in the file's URL


AUTHORIZATION = {"Authorization": BEARER}
COOKIE = f"session={SECRET}"
WAYS = [
    Way(
        "caller-headers",
        "authorization",
        BEARER,
        {"headers": AUTHORIZATION},
        caller(headers=AUTHORIZATION),
    ),
    Way(
        "caller-auth", "authorization", BASIC, {"auth": (USER, SECRET)}, caller(auth=(USER, SECRET))
    ),
    Way("caller-userinfo", "authorization", BASIC, {}, caller(), userinfo=True),
    Way(
        "made-headers",
        "authorization",
        BEARER,
        {"headers": AUTHORIZATION},
        made(headers=AUTHORIZATION),
    ),
    Way("made-auth", "authorization", BASIC, {"auth": (USER, SECRET)}, made(auth=(USER, SECRET))),
    Way("made-userinfo", "authorization", BASIC, {}, made(), userinfo=True),
    Way(
        "options-headers",
        "authorization",
        BEARER,
        {"headers": AUTHORIZATION},
        made(rs.ClientOptions(headers=AUTHORIZATION)),
    ),
    Way(
        "options-auth",
        "authorization",
        BASIC,
        {"auth": httpx.BasicAuth(USER, SECRET)},
        made(rs.ClientOptions(auth=httpx.BasicAuth(USER, SECRET))),
    ),
    Way(
        "options-sensitive-header",
        "x-api-key",
        SECRET,
        {"headers": {"X-Api-Key": SECRET}},
        made(
            rs.ClientOptions(
                headers={"X-Api-Key": SECRET}, sensitive_headers=frozenset({"X-Api-Key"})
            )
        ),
    ),
    Way(
        "caller-cookie-header",
        "cookie",
        COOKIE,
        {"headers": {"Cookie": COOKIE}},
        caller(headers={"Cookie": COOKIE}),
    ),
    Way(
        "caller-cookie-jar",
        "cookie",
        COOKIE,
        {"cookies": {"session": SECRET}},
        caller(cookies={"session": SECRET}),
    ),
    Way(
        "made-cookie-jar",
        "cookie",
        COOKIE,
        {"cookies": {"session": SECRET}},
        made(cookies={"session": SECRET}),
    ),
]


class Hop(NamedTuple):
    """A request as a server saw it: which server, over what, to which host and path,
    and whether it carried the credential."""

    server: str
    scheme: str
    host: str
    path: str
    carried: bool


@dataclass
class Servers:
    """A (the file's origin: plain and TLS on one port) and B (another origin)."""

    a: HostileServer
    b: HostileServer

    def hops(self, way: Way) -> list[Hop]:
        seen = [("A", r) for r in self.a.requests] + [("B", r) for r in self.b.requests]
        seen.sort(key=lambda pair: pair[1].arrival)
        return [Hop(name, r.scheme, r.host, r.path, carries(r, way)) for name, r in seen]


def carries(request: Request, way: Way) -> bool:
    """Whether ``request`` carried the credential: its field, with exactly the value
    given (a field with anything else is a failure of its own)."""
    value = request.header(way.carrier)
    assert value in (None, way.value), f"{way.carrier}: {value!r} at {request.path}"
    return value is not None


@pytest.fixture
def servers(server_tls: Callable[..., ssl.SSLContext]) -> Iterator[Servers]:
    a = HostileServer(FileHost(DATA), tls=server_tls(), sniff=True)
    b = HostileServer(FileHost(DATA))
    yield Servers(a, b)
    for server in (a, b):
        server.stop()
    assert not a.errors and not b.errors, a.errors + b.errors


def plain(a: HostileServer, path: str, host: str = "127.0.0.1") -> str:
    return a.url(path, scheme="http", host=host)


# -- topologies: each sets the plays and says where the file is and what one read sends --

Topology = Callable[[Servers], tuple[str, list[Hop]]]


def same_origin(s: Servers) -> tuple[str, list[Hop]]:
    s.a.play = routes({"/f": lambda r: redirect("/g")}, FileHost(DATA))
    return plain(s.a, "/f"), [
        Hop("A", "http", "127.0.0.1", "/f", True),
        Hop("A", "http", "127.0.0.1", "/g", True),
    ]


def other_port(s: Servers) -> tuple[str, list[Hop]]:
    s.a.play = routes({"/f": lambda r: redirect(s.b.url("/f"), 307)}, FileHost(DATA))
    return plain(s.a, "/f"), [
        Hop("A", "http", "127.0.0.1", "/f", True),
        Hop("B", "http", "127.0.0.1", "/f", False),
    ]


def scheme_relative(s: Servers) -> tuple[str, list[Hop]]:
    """``Location: //127.0.0.1:<B>/f``: a relative reference that changes the origin."""
    s.a.play = routes({"/f": lambda r: redirect(f"//127.0.0.1:{s.b.port}/f", 301)}, FileHost(DATA))
    return plain(s.a, "/f"), [
        Hop("A", "http", "127.0.0.1", "/f", True),
        Hop("B", "http", "127.0.0.1", "/f", False),
    ]


def other_host(s: Servers) -> tuple[str, list[Hop]]:
    """Same server, same port, another host name: another origin."""
    s.a.play = routes({"/f": lambda r: redirect(plain(s.a, "/g", "localhost"))}, FileHost(DATA))
    return plain(s.a, "/f"), [
        Hop("A", "http", "127.0.0.1", "/f", True),
        Hop("A", "http", "localhost", "/g", False),
    ]


def back_to_origin(s: Servers) -> tuple[str, list[Hop]]:
    """A -> B -> A: the chain left the origin, so its last hop carries nothing, though it
    is the origin again (B chose where on A we go)."""
    s.a.play = routes({"/f": lambda r: redirect(s.b.url("/hop"))}, FileHost(DATA))
    s.b.play = routes({"/hop": lambda r: redirect(plain(s.a, "/g"), 303)}, FileHost(DATA))
    return plain(s.a, "/f"), [
        Hop("A", "http", "127.0.0.1", "/f", True),
        Hop("B", "http", "127.0.0.1", "/hop", False),
        Hop("A", "http", "127.0.0.1", "/g", False),
    ]


def downgrade(s: Servers) -> tuple[str, list[Hop]]:
    """``https://localhost:<A>/f`` to ``http://localhost:<A>/f``: only the scheme changes."""
    s.a.play = routes(
        {
            "/f": lambda r: (
                redirect(plain(s.a, "/f", "localhost"))
                if r.scheme == "https"
                else FileHost(DATA)(r)
            )
        }
    )
    return s.a.url("/f", scheme="https", host="localhost"), [
        Hop("A", "https", "localhost", "/f", True),
        Hop("A", "http", "localhost", "/f", False),
    ]


TOPOLOGIES: dict[str, Topology] = {
    "same-origin": same_origin,
    "other-port": other_port,
    "scheme-relative": scheme_relative,
    "other-host": other_host,
    "back-to-origin": back_to_origin,
    "downgrade": downgrade,
}


def with_userinfo(url: str, way: Way) -> str:
    if not way.userinfo:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{USER}:{SECRET}@{rest}"


# -- where httpx differs from the rule ---------------------------------------------------


def _httpx_sends_on_every_hop(expected: list[Hop]) -> list[Hop]:
    return [hop._replace(carried=True) for hop in expected]


def _httpx_sends_on_first_hop_only(expected: list[Hop]) -> list[Hop]:
    return [hop._replace(carried=i == 0) for i, hop in enumerate(expected)]


@dataclass(frozen=True)
class HttpxDiffers:
    reason: str
    hops: Callable[[list[Hop]], list[Hop]]


HTTPX_DIFFERS = {
    "options-sensitive-header": HttpxDiffers(
        "httpx strips only Authorization on leaving the origin: a header the caller marked"
        " sensitive (ClientOptions.sensitive_headers, which httpx has no notion of) goes"
        " on every hop. Ours drops it as it drops Authorization.",
        _httpx_sends_on_every_hop,
    ),
    "caller-cookie-header": HttpxDiffers(
        "httpx drops a hand-set Cookie header on every redirect, even to the same origin,"
        " and rebuilds Cookie from the client's jar. Ours keeps it to the origin it was"
        " set for and drops it elsewhere, like Authorization.",
        _httpx_sends_on_first_hop_only,
    ),
    "caller-cookie-jar": HttpxDiffers(
        "httpx sends the jar's cookies by domain, not origin: RFC 6265 cookies ignore the"
        " port, one without Secure goes over http, and one given as a dict"
        " (Client(cookies={...})) has no domain at all, so every host gets it. Ours sends"
        " no Cookie on a hop that left the origin.",
        _httpx_sends_on_every_hop,
    ),
}
HTTPX_DIFFERS["made-cookie-jar"] = HTTPX_DIFFERS["caller-cookie-jar"]


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("way", WAYS, ids=[way.id for way in WAYS])
def test_httpx_on_redirects(
    servers: Servers, client_tls: ssl.SSLContext, way: Way, topology: str
) -> None:
    """The reference: httpx's default client, following redirects, against the rule (or
    as ``HTTPX_DIFFERS`` says)."""
    url, expected = TOPOLOGIES[topology](servers)
    outcome = reference_ranges(
        with_userinfo(url, way), [FIRST], follow_redirects=True, verify=client_tls, **way.reference
    )
    assert summary(outcome) == (DATA[slice(*FIRST)],)
    differs = HTTPX_DIFFERS.get(way.id)
    assert servers.hops(way) == (differs.hops(expected) if differs else expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("way", WAYS, ids=[way.id for way in WAYS])
def test_ours_on_redirects(
    servers: Servers, client_tls: ssl.SSLContext, way: Way, topology: str, mode: str
) -> None:
    """Ours: the first read sends what the rule says (httpx's hops, where httpx follows
    the rule); the second goes straight to the remembered location, with the credential
    only if the chain that found it never left the origin."""
    url, expected = TOPOLOGIES[topology](servers)
    reads = library_reads(
        mode,
        with_userinfo(url, way),
        lambda run_async: way.ours(run_async, client_tls),
        [FIRST, SECOND],
    )
    assert summary(reads) == (DATA[slice(*FIRST)], DATA[slice(*SECOND)])
    remembered = expected[-1]._replace(carried=all(hop.carried for hop in expected))
    assert servers.hops(way) == [*expected, remembered]
    assert_no_leak(servers, way)


def assert_no_leak(servers: Servers, way: Way) -> None:
    """Beyond the hop list: no request that is not the origin's carries any credential
    field, and the secret appears nowhere in what they carried, in any form."""
    for name, server in (("A", servers.a), ("B", servers.b)):
        for request in server.requests:
            if carries(request, way):
                continue
            present = [f for f in CREDENTIAL_FIELDS if request.header(f) is not None]
            assert not present, f"{name} {request.scheme} {request.path} got {present}"
            assert not any(form in request.raw for form in LEAK_FORMS), request.raw


# -- a remembered location that expires ---------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("way", WAYS, ids=[way.id for way in WAYS])
def test_expired_location_goes_back_to_the_origin(
    servers: Servers, client_tls: ssl.SSLContext, way: Way, mode: str
) -> None:
    """A presigned location that answers 403 sends the request again from the file's URL,
    with the credential (it is the origin), and from there to B again without it."""
    servers.a.play = routes({"/f": lambda r: redirect(servers.b.url("/f"))}, FileHost(DATA))
    answered = []

    def presigned(request: Request) -> Reply:
        answered.append(request)
        if len(answered) == 2:  # the first request to the remembered location
            return Reply(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        return FileHost(DATA)(request)

    servers.b.play = presigned
    reads = library_reads(
        mode,
        with_userinfo(plain(servers.a, "/f"), way),
        lambda run_async: way.ours(run_async, client_tls),
        [FIRST, SECOND],
    )
    assert summary(reads) == (DATA[slice(*FIRST)], DATA[slice(*SECOND)])
    origin = Hop("A", "http", "127.0.0.1", "/f", True)
    other = Hop("B", "http", "127.0.0.1", "/f", False)
    assert servers.hops(way) == [origin, other, other, origin, other]
    assert_no_leak(servers, way)


# -- Location headers that are not a place to go -------------------------------------------


@dataclass(frozen=True)
class Location:
    """A Location that cannot be followed, what httpx raises on it and what ours does."""

    id: str
    value: str
    httpx_error: str
    ours_errors: tuple[str, ...] = ("RedirectError",)


LOCATIONS = [
    Location("unclosed-ipv6-bracket", "http://[::1/x", "RemoteProtocolError"),
    Location("control-char-in-host", "http://\x01/x", "RemoteProtocolError"),
    Location("ftp-scheme", "ftp://127.0.0.1/x", "UnsupportedProtocol"),
    Location("file-scheme", "file:///etc/passwd", "UnsupportedProtocol"),
    Location("javascript-scheme", "javascript:alert(1)", "InvalidURL"),
    Location("data-scheme", "data:text/plain,hello", "InvalidURL"),
    # A port no socket can have. Python's sockets truncate it to 16 bits (65536 is port
    # 0, where nothing listens): httpx tries that and fails to connect. Ours must refuse
    # it as a named error on every runtime (asyncio's sockets raise OverflowError, and
    # anyio under trio an ExceptionGroup, if nothing catches them).
    Location(
        "port-out-of-range",
        "http://127.0.0.1:65536/x",
        "ConnectError",
        ("RedirectError", "ConnectError"),
    ),
]
LOCATION_REASON = (
    "A Location that cannot be followed is a RedirectError, of range-streams' tree, in"
    " ours, whichever client the file was opened with; httpx raises its own transport or"
    " URL error."
)
# Our clients on both of the drivers' paths: straight to our transport (a made client
# with nothing for httpx's layers to do), and through httpx's client.send (a caller's
# client with auth=, which the driver must not let httpx follow or judge).
LOCATION_CLIENTS = {"made": WAYS[5], "caller-auth": WAYS[1]}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client", LOCATION_CLIENTS)
@pytest.mark.parametrize("location", LOCATIONS, ids=[loc.id for loc in LOCATIONS])
def test_unusable_location(
    servers: Servers, client_tls: ssl.SSLContext, location: Location, client: str, mode: str
) -> None:
    way = LOCATION_CLIENTS[client]
    servers.a.play = always_redirect(location.value)
    url = plain(servers.a, "/f")
    theirs = reference_ranges(url, [FIRST], follow_redirects=True, verify=client_tls)
    assert summary(theirs) == (location.httpx_error,)
    servers.a.forget()
    ours = library_reads(mode, url, lambda run_async: way.ours(run_async, client_tls), [FIRST])
    assert summary(ours)[0] in location.ours_errors, LOCATION_REASON
    assert len(summary(ours)) == 1
    assert len(servers.a.requests) == 1  # judged once: not sent again, not followed
    assert servers.b.requests == []


def always_redirect(location: str, status: int = 302) -> Callable[[Request], Reply]:
    return lambda request: redirect(location, status)


@pytest.mark.parametrize("mode", MODES)
def test_redirect_loop_ends(servers: Servers, client_tls: ssl.SSLContext, mode: str) -> None:
    """A Location that leads back to itself: both give up, each with its own error."""
    servers.a.play = always_redirect("/f")
    url = plain(servers.a, "/f")
    theirs = reference_ranges(url, [FIRST], follow_redirects=True, verify=client_tls)
    assert summary(theirs) == ("TooManyRedirects",)
    assert len(servers.a.requests) == 21  # httpx: the first and 20 redirects
    servers.a.forget()
    ours = library_reads(mode, url, lambda run_async: made()(run_async, client_tls), [FIRST])
    assert summary(ours) == ("RedirectError",)
    assert len(servers.a.requests) == 11  # ours: the first and 10 redirects


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("location", ["g", "./g", "../g", "/g?x=1", "/g#frag", " /g "])
def test_relative_locations(
    servers: Servers, client_tls: ssl.SSLContext, location: str, mode: str
) -> None:
    """Relative references resolve against the current URL alike, and stay on A."""
    servers.a.play = routes({"/d/f": always_redirect(location)}, FileHost(DATA))
    url = plain(servers.a, "/d/f")
    theirs = reference_ranges(url, [FIRST], follow_redirects=True, verify=client_tls)
    their_paths = [r.target for r in servers.a.requests]
    servers.a.forget()
    ours = library_reads(mode, url, lambda run_async: made()(run_async, client_tls), [FIRST])
    our_paths = [r.target for r in servers.a.requests]
    assert summary(ours) == summary(theirs) == (DATA[slice(*FIRST)],)
    assert our_paths == their_paths


def test_tables_are_consistent() -> None:
    assert len({way.id for way in WAYS}) == len(WAYS)
    assert set(HTTPX_DIFFERS) <= {way.id for way in WAYS}
    assert len({loc.id for loc in LOCATIONS}) == len(LOCATIONS)
