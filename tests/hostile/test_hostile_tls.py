"""TLS and connection failures: a certificate the client must not accept, a server that
speaks the other protocol, a port nothing listens on. httpx's default client and ours
(transport and library, sync, asyncio and trio) must refuse alike, and no request (so
no credential) may reach a server whose certificate failed."""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import range_streams as rs

from .clients import (
    MODES,
    TIMEOUT,
    library_reads,
    reference_gets,
    reference_ranges,
    summary,
    transport_gets,
)
from .server import FileHost, HostileServer

pytestmark = pytest.mark.timeout(30)

DATA = bytes(i % 253 for i in range(2048))
HELLO = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
SECRET = "tls-secret-7c1"
_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Case:
    """A server (``tls``: how its certificate is made, None for plain HTTP), the URL
    the client is given, and the outcome httpx's client reaches."""

    id: str
    tls: Callable[[Any, Any], ssl.SSLContext] | None = field(compare=False)
    scheme: str = "https"
    host: str = "localhost"
    outcome: str = "ConnectError"  # or "ok"
    greeting: bytes | None = None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


CASES = [
    Case("trusted-control", lambda make, other: make(), outcome="ok"),
    Case("untrusted-ca", lambda make, other: make(issuer=other)),
    Case("wrong-hostname", lambda make, other: make("example.test")),
    Case("ip-address-not-in-certificate", lambda make, other: make(), host="127.0.0.1"),
    Case(
        "expired", lambda make, other: make(not_before=_now() - 3 * _DAY, not_after=_now() - _DAY)
    ),
    Case(
        "not-yet-valid",
        lambda make, other: make(not_before=_now() + _DAY, not_after=_now() + 3 * _DAY),
    ),
    # A plain HTTP server that answers at once, where TLS is expected.
    Case(
        "plain-http-where-tls",
        None,
        greeting=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
    ),
    # TLS where plain HTTP is expected: the server fails its handshake on our request.
    Case("tls-where-plain-http", lambda make, other: make(), scheme="http", outcome="ReadError"),
]


@pytest.fixture(scope="module")
def other_ca() -> Any:
    return pytest.importorskip("trustme").CA()


@pytest.fixture
def start(
    server_tls: Callable[..., ssl.SSLContext], other_ca: Any
) -> Iterator[Callable[[Case], HostileServer]]:
    started: list[HostileServer] = []

    def run(case: Case) -> HostileServer:
        context = case.tls(server_tls, other_ca) if case.tls is not None else None
        server = HostileServer(FileHost(DATA), tls=context, greeting=case.greeting)
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()
        assert not server.errors, server.errors


def url_of(server: HostileServer, case: Case, path: str = "/f") -> str:
    return server.url(path, scheme=case.scheme, host=case.host)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_transport_refuses_as_httpx(
    start: Callable[[Case], HostileServer], client_tls: ssl.SSLContext, case: Case, mode: str
) -> None:
    server = start(case)
    theirs = reference_gets([url_of(server, case)], verify=client_tls)
    assert (summary(theirs)[0] if not theirs[0].accepted else "ok") == case.outcome
    assert_hung_up(server, case, 1)
    ours = transport_gets(mode, [url_of(server, case)], verify=client_tls)
    assert ours == theirs
    assert_hung_up(server, case, 2)


def assert_hung_up(server: HostileServer, case: Case, failures: int) -> None:
    """A client that refused the server's certificate closed the connection at once (the
    server's end of the handshake fails then), rather than leaving it open."""
    if case.tls is not None and case.scheme == "https" and case.outcome != "ok":
        assert server.wait_handshake_failures(failures), "the client left the connection open"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_no_credential_reaches_a_failed_handshake(
    start: Callable[[Case], HostileServer], client_tls: ssl.SSLContext, case: Case, mode: str
) -> None:
    """Through the library, with a credential: refused as httpx refuses, and the
    server never sees a request, so never the credential."""
    server = start(case)
    auth = ("user", SECRET)
    theirs = reference_ranges(url_of(server, case), [(0, 100)], verify=client_tls, auth=auth)
    seen_by_httpx = len(server.requests)
    assert_hung_up(server, case, 1)
    server.forget()

    def client(run_async: bool) -> Any:
        make = rs.make_async_client if run_async else rs.make_client
        return make(verify=client_tls, timeout=TIMEOUT, trust_env=False, auth=auth)

    ours = library_reads(mode, url_of(server, case), client, [(0, 100)])
    if case.outcome == "ok":
        assert summary(ours) == summary(theirs) == (DATA[:100],)
        assert len(server.requests) == seen_by_httpx == 1
        return
    assert summary(ours) == summary(theirs) == (case.outcome,)
    assert server.requests == []
    assert seen_by_httpx == 0
    assert_hung_up(server, case, 2)


# -- connections that cannot be made ----------------------------------------------------------


def _refusing_port() -> Iterator[int]:
    """A port that refuses connections: bound, never listening."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


@pytest.fixture
def refusing_port() -> Iterator[int]:
    yield from _refusing_port()


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused(refusing_port: int, mode: str) -> None:
    url = f"http://127.0.0.1:{refusing_port}/"
    assert transport_gets(mode, [url]) == reference_gets([url])
    assert summary(reference_gets([url])) == ("ConnectError",)


@pytest.mark.parametrize("mode", MODES)
def test_port_out_of_range(mode: str) -> None:
    """Port 65536: Python's sockets truncate it to 0 (nothing listens there) or raise
    OverflowError (asyncio's), anyio under trio an ExceptionGroup. Ours: a ConnectError
    on every runtime, as httpx's sync client."""
    url = "http://127.0.0.1:65536/"
    assert summary(reference_gets([url])) == ("ConnectError",)
    assert summary(transport_gets(mode, [url])) == ("ConnectError",)


def test_cases_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)
