"""range-streams' own HTTP/1.1 transports (``_net/sync_transport``,
``_net/async_transport``) against a scripted raw-TCP server on 127.0.0.1: what goes on
the wire, which connections are reused, and which errors come out.

Every scenario runs through ``httpx.Client`` on ``WireTransport`` and through
``httpx.AsyncClient`` on ``AsyncWireTransport`` (asyncio, and trio where a trio this anyio
supports is installed), the async client driven from the test's thread through an anyio
blocking portal."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import socket
import ssl
import struct
import termios
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.from_thread
import httpx
import pytest

from range_streams._net import pool, shared
from range_streams._net.async_transport import AsyncWireTransport
from range_streams._net.sync_transport import WireTransport
from tests.runtimes import BACKENDS

pytestmark = pytest.mark.timeout(30)

WAIT = 5.0  # the most any wait on the server may take before a test fails

# -- the scripted server ----------------------------------------------------------------


class ClientGone(Exception):
    """The client closed the connection while the script expected a request."""


class Conn:
    """One accepted connection: what the client sent, and whether it hung up."""

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.index = index
        self.requests: list[bytes] = []
        self.eof = threading.Event()  # the client closed its end
        self.closed = threading.Event()  # we closed ours
        self._buffer = b""

    def _recv(self) -> bytes:
        try:
            data = self.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.eof.set()
        return data

    def read_request(self) -> bytes:
        while b"\r\n\r\n" not in self._buffer:
            data = self._recv()
            if not data:
                raise ClientGone
            self._buffer += data
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            data = self._recv()
            if not data:
                raise ClientGone
            rest += data
        request, self._buffer = head + b"\r\n\r\n" + rest[:length], rest[length:]
        self.requests.append(request)
        return request

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def wait_eof(self) -> None:
        """Read (and keep as a request) whatever comes until the client closes."""
        with contextlib.suppress(ClientGone):
            while True:
                self.read_request()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.closed.set()


Step = Callable[[Conn], None]


def reply(data: bytes) -> Step:
    """Read a request, send ``data``."""

    def step(conn: Conn) -> None:
        conn.read_request()
        conn.send(data)

    return step


def reply_close(data: bytes) -> Step:
    """Read a request, send ``data``, close."""

    def step(conn: Conn) -> None:
        reply(data)(conn)
        conn.close()

    return step


def read_and_close(conn: Conn) -> None:
    """Read a request and close without a word (a keep-alive timeout racing it)."""
    conn.read_request()
    conn.close()


def hang_up(conn: Conn) -> None:
    conn.close()


def stall(conn: Conn) -> None:
    """Send nothing more; wait for the client to give up and close."""
    conn.wait_eof()


def pieces(*parts: bytes, pause: float = 0.02) -> Step:
    """Read a request, send ``parts`` apart (so the client likely reads them apart)."""

    def step(conn: Conn) -> None:
        conn.read_request()
        for i, part in enumerate(parts):
            if i:
                time.sleep(pause)
            conn.send(part)

    return step


def serve_forever(answer: Callable[[bytes], bytes]) -> Step:
    def step(conn: Conn) -> None:
        while True:
            conn.send(answer(conn.read_request()))

    return step


class ScriptServer:
    """Accepts connections; the i-th follows ``scripts[i]`` (a list of steps), then waits
    for the client to close. Connections beyond the scripts are closed at once."""

    def __init__(self, scripts: list[list[Step]], tls: ssl.SSLContext | None = None) -> None:
        self.scripts = scripts
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[Conn] = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._stopping = False
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)

    def url(self, path: str = "/") -> str:
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}{path}"

    @property
    def accepted(self) -> int:
        return len(self.connections)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            if self._stopping:
                sock.close()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(WAIT * 2)
            conn = Conn(sock, len(self.connections))
            self.connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: Conn) -> None:
        try:
            if self.tls is not None:
                conn.sock = self.tls.wrap_socket(conn.sock, server_side=True)
            steps = self.scripts[conn.index] if conn.index < len(self.scripts) else []
            for step in steps:
                if conn.closed.is_set():
                    return
                step(conn)
            if not conn.closed.is_set():
                conn.wait_eof()
        except ClientGone:
            pass
        except OSError:
            conn.eof.set()
        except BaseException as exc:  # pragma: no cover - shows up in the test's teardown
            self.errors.append(exc)
        finally:
            if not conn.closed.is_set():
                conn.close()

    def conn(self, index: int) -> Conn:
        return self.connections[index]

    def wait_eof(self, index: int) -> bool:
        """The client closed connection ``index`` (waits a little for it)."""
        return self.connections[index].eof.wait(WAIT)

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
        self.listener.close()
        for conn in list(self.connections):
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(WAIT)


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptServer]]:
    servers: list[ScriptServer] = []

    def start(scripts: list[list[Step]], tls: ssl.SSLContext | None = None) -> ScriptServer:
        server = ScriptServer(scripts, tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    for server in servers:
        assert not server.errors, server.errors


# -- the clients --------------------------------------------------------------------------


MODES = ["sync", *BACKENDS]


class Harness:
    """One client (sync, or async driven through a portal) with a sync face."""

    def __init__(self, mode: str, limits: httpx.Limits, timeout: httpx.Timeout) -> None:
        self.mode = mode
        self._closed = False
        self.portal: anyio.from_thread.BlockingPortal | None = None
        self._portal_cm: Any = None
        self.client: httpx.Client | httpx.AsyncClient
        if mode == "sync":
            self.transport: Any = WireTransport(limits)
            self.client = httpx.Client(transport=self.transport, timeout=timeout, trust_env=False)
        else:
            self._portal_cm = anyio.from_thread.start_blocking_portal(mode)
            self.portal = self._portal_cm.__enter__()
            self.transport = AsyncWireTransport(limits)
            self.client = httpx.AsyncClient(
                transport=self.transport, timeout=timeout, trust_env=False
            )

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.portal is None:
            return fn(*args)
        return self.portal.call(fn, *args)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.call(functools.partial(self.client.request, method, url, **kwargs))  # type: ignore[no-any-return]

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def open(self, url: str, method: str = "GET") -> httpx.Response:
        request = self.client.build_request(method, url)
        return self.call(functools.partial(self.client.send, request, stream=True))  # type: ignore[no-any-return]

    def read(self, response: httpx.Response) -> bytes:
        if self.portal is None:
            return response.read()
        return self.call(response.aread)  # type: ignore[no-any-return]

    def first_chunk(self, response: httpx.Response) -> bytes:
        """One read of the body (what the socket had), through httpx's raw iterator."""
        if self.portal is None:
            chunks = response.iter_raw()
            chunk = next(chunks)
            chunks.close()
            return chunk

        async def first() -> bytes:
            chunks = response.aiter_raw()
            chunk = await chunks.__anext__()
            await chunks.aclose()  # type: ignore[attr-defined]
            return chunk

        return self.call(first)  # type: ignore[no-any-return]

    def drain(self, response: httpx.Response, into: list[bytes]) -> None:
        """Read the rest through httpx's raw iterator, keeping what came before an error."""
        if self.portal is None:
            into.extend(response.iter_raw())
            return

        async def rest() -> None:
            async for chunk in response.aiter_raw():
                into.append(chunk)

        self.call(rest)

    def close_response(self, response: httpx.Response) -> None:
        if self.portal is None:
            response.close()
        else:
            self.call(response.aclose)

    def idle_sockets(self) -> list[Any]:
        return [connection.raw for connection in self.transport._pool.idle]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if isinstance(self.client, httpx.Client):
            self.client.close()
        else:
            self.call(self.client.aclose)
            self._portal_cm.__exit__(None, None, None)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make(mode: str) -> Iterator[Callable[..., Harness]]:
    harnesses: list[Harness] = []

    def factory(
        limits: httpx.Limits | None = None, timeout: httpx.Timeout | float = WAIT
    ) -> Harness:
        harness = Harness(
            mode,
            limits or httpx.Limits(max_connections=None, max_keepalive_connections=20),
            timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        )
        harnesses.append(harness)
        return harness

    yield factory
    for harness in harnesses:
        harness.close()


@pytest.fixture
def client(make: Callable[..., Harness]) -> Harness:
    return make()


def ok(body: bytes, *headers: bytes, status: bytes = b"200 OK", version: bytes = b"1.1") -> bytes:
    head = b"HTTP/" + version + b" " + status + b"\r\n"
    for header in headers:
        head += header + b"\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


HELLO = ok(b"hello")


def request_line(raw: bytes) -> bytes:
    return raw.split(b"\r\n", 1)[0]


# -- keep-alive ---------------------------------------------------------------------------


def test_keep_alive_reuse(serve: Any, client: Harness) -> None:
    server = serve([[reply(ok(b"one")), reply(ok(b"two")), reply(ok(b"three"))]])
    bodies = [client.get(server.url(f"/{i}")).content for i in range(3)]
    assert bodies == [b"one", b"two", b"three"]
    assert server.accepted == 1
    requests = server.conn(0).requests
    assert [request_line(r) for r in requests] == [b"GET /%d HTTP/1.1" % i for i in range(3)]
    assert all(b"\r\nHost: 127.0.0.1:%d\r\n" % server.port in r for r in requests)


def test_request_body_sent_exactly(serve: Any, client: Harness) -> None:
    server = serve([[reply(HELLO), reply(HELLO)]])
    payload = bytes(range(256)) * 40
    assert client.request("POST", server.url("/p"), content=payload).content == b"hello"
    assert client.request("PUT", server.url("/q"), content=b"").content == b"hello"
    first, second = server.conn(0).requests
    assert request_line(first) == b"POST /p HTTP/1.1"
    assert b"\r\nContent-Length: 10240\r\n" in first
    assert first.endswith(b"\r\n\r\n" + payload)
    assert request_line(second) == b"PUT /q HTTP/1.1"
    assert server.accepted == 1


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(ok(b"hello", b"Connection: close"), id="connection-close"),
        pytest.param(ok(b"hello", b"Connection: Close, foo"), id="connection-close-list"),
        pytest.param(ok(b"hello", version=b"1.0"), id="http-1.0"),
        pytest.param(ok(b"hello", b"Connection: keep-alive", version=b"1.0"), id="http-1.0-ka"),
    ],
)
def test_not_reused_when_the_server_says_so(serve: Any, client: Harness, response: bytes) -> None:
    # The server keeps its end open (and would answer again): the client must not.
    server = serve([[reply(response), reply(HELLO)], [reply(response)]])
    assert client.get(server.url("/a")).content == b"hello"
    assert client.get(server.url("/b")).content == b"hello"
    assert server.accepted == 2
    assert [len(c.requests) for c in server.connections] == [1, 1]
    assert server.wait_eof(0)  # the client closed the first one


def test_close_delimited_body(serve: Any, client: Harness) -> None:
    body = bytes(range(251)) * 1200  # ~300 KB: many reads
    server = serve(
        [[reply_close(b"HTTP/1.1 200 OK\r\nContent-Type: x/y\r\n\r\n" + body)], [reply(HELLO)]]
    )
    response = client.get(server.url())
    assert response.content == body
    assert "content-length" not in response.headers
    assert client.get(server.url()).content == b"hello"
    assert server.accepted == 2


def test_close_delimited_connection_takes_no_idle_slot(serve: Any, make: Any) -> None:
    # With room for one idle connection, the finished close-delimited one must not take
    # it from the good keep-alive connection that finishes after it.
    client = make(httpx.Limits(max_connections=None, max_keepalive_connections=1))
    big = bytes(300_000)
    server = serve(
        [
            [reply(ok(big)), reply(HELLO)],
            [reply_close(b"HTTP/1.1 200 OK\r\n\r\nclose-delimited")],
            [reply(HELLO)],
        ]
    )
    keep = client.open(server.url("/keep"))
    delimited = client.open(server.url("/delimited"))
    assert client.read(delimited) == b"close-delimited"
    assert client.read(keep) == big
    assert client.get(server.url("/again")).content == b"hello"
    assert server.accepted == 2
    assert len(server.conn(0).requests) == 2


def test_content_length_zero(serve: Any, client: Harness) -> None:
    server = serve([[reply(ok(b"")), reply(ok(b"")), reply(HELLO)]])
    assert client.get(server.url()).content == b""
    streamed = client.open(server.url())
    assert client.read(streamed) == b""
    assert client.get(server.url()).content == b"hello"
    assert server.accepted == 1


@pytest.mark.parametrize(
    ("method", "response", "status"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 200),
        ("HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200),
        ("HEAD", b"HTTP/1.1 200 OK\r\n\r\n", 200),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n", 204),
        ("GET", b'HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\nETag: "e"\r\n\r\n', 304),
    ],
    ids=["head", "head-chunked", "head-no-length", "204", "304"],
)
def test_no_body_responses_keep_the_connection(
    serve: Any, client: Harness, method: str, response: bytes, status: int
) -> None:
    server = serve([[reply(response), reply(response), reply(HELLO)]])
    first = client.request(method, server.url())
    assert (first.status_code, first.content) == (status, b"")
    streamed = client.open(server.url(), method)  # done at once: the slot comes back
    assert streamed.status_code == status
    assert client.read(streamed) == b""
    assert client.get(server.url()).content == b"hello"
    assert server.accepted == 1


def test_informational_responses_are_skipped(serve: Any, client: Harness) -> None:
    informational = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    )
    server = serve(
        [[pieces(informational, ok(b"final", b"X-Final: 1")), reply(informational + HELLO)]]
    )
    response = client.get(server.url())
    assert (response.status_code, response.content) == (200, b"final")
    assert "link" not in response.headers
    assert response.headers["x-final"] == "1"
    assert client.get(server.url()).content == b"hello"
    assert server.accepted == 1


def test_header_case_reason_and_version(serve: Any, client: Harness) -> None:
    server = serve(
        [[reply(ok(b"x", b"X-Mixed-CASE: Value", b'etag: "lower"', status=b"200 Fine Thanks"))]]
    )
    response = client.get(server.url())
    assert (b"X-Mixed-CASE", b"Value") in response.headers.raw
    assert (b"etag", b'"lower"') in response.headers.raw
    assert response.headers["x-mixed-case"] == "Value"
    assert response.reason_phrase == "Fine Thanks"
    assert response.http_version == "HTTP/1.1"


# -- bodies ---------------------------------------------------------------------------------


def test_chunked_body_with_extensions_and_trailers(serve: Any, client: Harness) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5;name=value\r\nhel",
        b"lo\r\n6\r\n world\r\n",
        b"0\r\nX-Trailer: yes\r\n\r\n",
    )
    server = serve([[pieces(*chunked), reply(b"".join(chunked)), reply(HELLO)]])
    for _ in range(2):
        response = client.get(server.url())
        assert response.content == b"hello world"
        assert "x-trailer" not in response.headers
    assert client.get(server.url()).content == b"hello"
    assert server.accepted == 1


def test_large_counted_body_exact_and_reused(serve: Any, client: Harness) -> None:
    body = bytes(i % 253 for i in range(3_000_000))
    server = serve([[reply(ok(body)), reply(HELLO)]])
    response = client.open(server.url())
    assert client.read(response) == body
    assert client.get(server.url()).content == b"hello"
    assert server.accepted == 1


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(
            reply_close(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"), id="with-head"
        ),
        pytest.param(
            pieces(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", b"hello", b""),
            id="after-head",
        ),
        pytest.param(
            reply_close(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), id="no-body-at-all"
        ),
        pytest.param(
            reply_close(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
            id="chunked",
        ),
    ],
)
def test_short_body_is_an_error(serve: Any, client: Harness, script: Step) -> None:
    def then_close(conn: Conn) -> None:
        script(conn)
        conn.close()

    server = serve([[then_close], [then_close]])
    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        client.get(server.url())
    # Streamed: the bytes that came are handed over, then the error; never short data.
    response = client.open(server.url())
    got: list[bytes] = []
    with pytest.raises(httpx.RemoteProtocolError):
        client.drain(response, got)
    assert b"hello".startswith(b"".join(got))
    assert server.accepted == 2


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(reply(ok(b"hello") + b"EXTRA"), id="with-head"),
        pytest.param(
            pieces(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"helloEXTRA"),
            id="with-body",
        ),
        pytest.param(
            pieces(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"hel", b"loEXTRA"),
            id="with-the-body-end",
        ),
        pytest.param(
            pieces(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"hello" + HELLO),
            id="a-whole-response",
        ),
    ],
)
def test_bytes_after_the_body_spoil_the_connection(
    serve: Any, client: Harness, script: Step
) -> None:
    server = serve([[script, reply(ok(b"bad"))], [reply(ok(b"good"))]])
    assert client.get(server.url()).content == b"hello"
    assert client.get(server.url()).content == b"good"
    assert server.accepted == 2
    assert server.wait_eof(0)


def wait_until(condition: Callable[[], bool], failure: str) -> None:
    """Poll ``condition`` until it holds; ``WAIT`` seconds is a liveness bound only."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(failure)
        time.sleep(0.001)


def wait_until_idle_readable(client: Harness) -> None:
    wait_until(
        lambda: all(shared.readable(sock) for sock in client.idle_sockets()),
        "the server's close never reached the idle connections",
    )


def test_bytes_while_idle_spoil_the_connection(serve: Any, client: Harness) -> None:
    sent = threading.Event()
    go = threading.Event()

    def junk(conn: Conn) -> None:
        go.wait(WAIT)
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad")
        sent.set()

    server = serve([[reply(HELLO), junk], [reply(ok(b"good"))]])
    assert client.get(server.url()).content == b"hello"
    go.set()
    assert sent.wait(WAIT)
    wait_until_idle_readable(client)
    assert client.get(server.url()).content == b"good"
    assert server.accepted == 2
    assert server.wait_eof(0)


def test_a_stray_byte_after_a_big_body_spoils_the_connection(serve: Any, client: Harness) -> None:
    # A big counted body is read with SO_RCVLOWAT raised (sync transport): the idle check
    # must still see one stray byte, which a raised low-water mark would hide from poll.
    # (150 KB: after the head's read, the rest is one read owed ~85 KB, which the
    # kernel's low-water mark lets through whole: the mark stays raised.)
    body = bytes(i % 251 for i in range(150_000))
    sent = threading.Event()
    go = threading.Event()

    def stray(conn: Conn) -> None:
        go.wait(WAIT)
        conn.send(b"X")
        sent.set()

    server = serve([[reply(ok(body)), stray], [reply(ok(b"good"))]])
    assert client.get(server.url()).content == body
    go.set()
    assert sent.wait(WAIT)
    (sock,) = client.idle_sockets()
    queued = bytearray(4)

    def byte_queued() -> bool:  # the kernel holds the byte, whatever poll would say of it
        return fcntl.ioctl(sock.fileno(), termios.FIONREAD, queued) != 0 or bool(
            struct.unpack("i", queued)[0]
        )

    wait_until(byte_queued, "the stray byte never arrived")
    assert client.get(server.url()).content == b"good"
    assert server.accepted == 2


# -- connections that go away -----------------------------------------------------------------


def test_idle_connection_closed_by_server_is_replaced(serve: Any, client: Harness) -> None:
    server = serve([[reply(HELLO), hang_up], [reply(ok(b"again"))]])
    assert client.get(server.url()).content == b"hello"
    assert server.conn(0).closed.wait(WAIT)
    wait_until_idle_readable(client)
    assert client.get(server.url()).content == b"again"
    assert server.accepted == 2
    assert [len(c.requests) for c in server.connections] == [1, 1]


def test_reused_connection_dropped_is_retried_once(serve: Any, client: Harness) -> None:
    server = serve([[reply(HELLO), read_and_close], [reply(ok(b"again"))]])
    assert client.get(server.url("/1")).content == b"hello"
    assert client.get(server.url("/2")).content == b"again"
    assert server.accepted == 2
    first, second = server.connections
    assert [request_line(r) for r in first.requests] == [b"GET /1 HTTP/1.1", b"GET /2 HTTP/1.1"]
    assert second.requests == [first.requests[1]]


def test_retry_is_not_repeated(serve: Any, client: Harness) -> None:
    server = serve([[reply(HELLO), read_and_close], [read_and_close], [reply(HELLO)]])
    assert client.get(server.url()).content == b"hello"
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        client.get(server.url())
    assert server.accepted == 2


def test_retry_goes_to_a_new_connection(serve: Any, client: Harness) -> None:
    # Two idle connections that both drop the next request: the one retry must not land
    # on the other one.
    server = serve(
        [
            [reply(ok(bytes(300_000))), read_and_close],
            [reply(HELLO), read_and_close],
            [reply(HELLO)],
        ]
    )
    first = client.open(server.url())
    second = client.open(server.url())
    assert len(client.read(second)) == 5
    assert len(client.read(first)) == 300_000
    assert client.get(server.url()).content == b"hello"
    assert server.accepted == 3


def test_fresh_connection_dropped_is_not_retried(serve: Any, client: Harness) -> None:
    server = serve([[read_and_close], [reply(HELLO)]])
    with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected without sending"):
        client.get(server.url())
    assert server.accepted == 1


def test_reused_connection_with_a_partial_answer_is_not_retried(
    serve: Any, client: Harness
) -> None:
    server = serve([[reply(HELLO), reply_close(b"HTTP/1.1 200 OK\r\nContent-")], [reply(HELLO)]])
    assert client.get(server.url()).content == b"hello"
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(server.url())
    assert server.accepted == 1


def test_closing_the_transport_closes_idle_connections(serve: Any, make: Any) -> None:
    client = make()
    server = serve([[reply(HELLO)]])
    assert client.get(server.url()).content == b"hello"
    client.close()
    assert server.wait_eof(0)


# -- timeouts, errors, limits -------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        pytest.param([stall], id="no-head"),
        pytest.param([reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")], id="counted"),
        pytest.param(
            [reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")],
            id="chunked",
        ),
        pytest.param([reply(HELLO), stall], id="no-head-on-reused"),
    ],
)
def test_read_timeout(serve: Any, make: Any, script: list[Step]) -> None:
    client = make(timeout=httpx.Timeout(WAIT, read=0.3))
    server = serve([script, [reply(HELLO)]])
    if len(script) > 1:
        assert client.get(server.url()).content == b"hello"
    with pytest.raises(httpx.ReadTimeout):
        client.get(server.url())
    assert server.wait_eof(0)  # given up: closed, not pooled
    assert server.accepted == 1  # a timeout is not retried
    assert client.get(server.url()).content == b"hello"


def test_connect_refused(make: Any) -> None:
    client = make()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(httpx.ConnectError):
            client.get(f"http://127.0.0.1:{port}/")


def test_unsupported_scheme() -> None:
    with pytest.raises(httpx.UnsupportedProtocol):
        WireTransport(httpx.Limits()).handle_request(httpx.Request("GET", "ftp://example.test/"))


@pytest.mark.parametrize("finish", ["read", "close"])
def test_pool_timeout_then_freed(serve: Any, make: Any, finish: str) -> None:
    client = make(
        httpx.Limits(max_connections=1, max_keepalive_connections=1),
        httpx.Timeout(WAIT, pool=0.2),
    )
    big = bytes(500_000)
    server = serve([[reply(ok(big)), reply(HELLO)], [reply(HELLO)]])
    held = client.open(server.url())
    with pytest.raises(httpx.PoolTimeout):
        client.get(server.url())
    if finish == "read":
        assert client.read(held) == big
    else:
        client.close_response(held)
    assert client.get(server.url()).content == b"hello"
    assert server.accepted == (1 if finish == "read" else 2)


def test_no_pool_timeout_waits_for_a_slot(serve: Any, make: Any) -> None:
    client = make(
        httpx.Limits(max_connections=1, max_keepalive_connections=1),
        httpx.Timeout(WAIT, pool=None),
    )
    big = bytes(500_000)
    server = serve([[reply(ok(big)), reply(HELLO)]])
    held = client.open(server.url())
    results: list[Any] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        try:
            results.append(client.get(server.url()).content)
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait(WAIT)
    time.sleep(0.05)  # let it queue for the slot (the outcome must not depend on it)
    assert client.read(held) == big
    thread.join(WAIT)
    assert results == [b"hello"]
    assert server.accepted == 1


def test_partial_read_then_close_is_not_reused(serve: Any, client: Harness) -> None:
    # Half the body, and no more until the client gives up.
    half = pieces(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", b"01234")
    server = serve([[half], [reply(HELLO), reply(HELLO)]])
    response = client.open(server.url())
    assert b"01234".startswith(client.first_chunk(response))
    client.close_response(response)
    assert server.wait_eof(0)
    response = client.open(server.url())
    assert client.read(response) == b"hello"  # read to the end: kept
    client.close_response(response)
    assert client.get(server.url()).content == b"hello"
    assert server.accepted == 2


class FakeTime:
    """``time`` for the transports only, with a hand-driven ``monotonic``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_keepalive_expiry(serve: Any, make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeTime()
    monkeypatch.setattr(pool, "time", clock)
    client = make(httpx.Limits(max_keepalive_connections=5, keepalive_expiry=5.0))
    server = serve([[reply(HELLO), reply(HELLO), reply(HELLO)], [reply(HELLO)]])
    assert client.get(server.url()).content == b"hello"
    clock.now += 5.0  # idle exactly the expiry: still good
    assert client.get(server.url()).content == b"hello"
    clock.now += 5.5
    assert client.get(server.url()).content == b"hello"
    assert server.accepted == 2
    assert len(server.conn(0).requests) == 2
    assert server.wait_eof(0)  # the expired one was closed


def test_max_keepalive_connections_closes_the_surplus(serve: Any, make: Any) -> None:
    client = make(httpx.Limits(max_connections=None, max_keepalive_connections=1))
    big = bytes(300_000)
    server = serve([[reply(ok(big)), reply(HELLO)], [reply(ok(big))]])
    first = client.open(server.url())
    second = client.open(server.url())
    assert client.read(first) == big  # pooled
    assert client.read(second) == big  # no room: closed
    assert server.wait_eof(1)
    assert client.get(server.url()).content == b"hello"
    assert server.accepted == 2


# -- sync only: threads ------------------------------------------------------------------------


def test_threads_share_one_transport(serve: Any) -> None:
    def answer(request: bytes) -> bytes:
        path = request_line(request).split(b" ")[1]
        return ok(path * 50)

    threads, per_thread = 8, 20
    server = serve([[serve_forever(answer)] for _ in range(threads * 2)])
    errors: list[BaseException] = []
    with httpx.Client(transport=WireTransport(httpx.Limits()), trust_env=False) as client:

        def work(t: int) -> None:
            try:
                for i in range(per_thread):
                    path = f"/t{t}/r{i}"
                    assert client.get(server.url(path)).content == path.encode() * 50
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(WAIT * 2)
    assert not errors, errors
    assert 1 <= server.accepted <= threads
    assert sum(len(c.requests) for c in server.connections) == threads * per_thread


# -- async only: cancellation ----------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("where", ["body", "head"])
def test_cancelled_mid_exchange_closes_the_connection(serve: Any, backend: str, where: str) -> None:
    stalled = (
        [reply(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)]
        if where == "body"
        else [stall]
    )
    server = serve([stalled, [reply(HELLO)]])

    async def main() -> tuple[bool, bytes]:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        transport = AsyncWireTransport(limits)
        async with httpx.AsyncClient(transport=transport, timeout=WAIT, trust_env=False) as client:
            with anyio.move_on_after(0.2) as scope:
                async with client.stream("GET", server.url()) as response:
                    await response.aread()
            eof = await anyio.to_thread.run_sync(server.wait_eof, 0)
            assert scope.cancelled_caught
            # The slot came back: the one connection allowed is free again.
            with anyio.fail_after(WAIT):
                again = await client.get(server.url(), timeout=httpx.Timeout(WAIT, pool=1.0))
            return eof, again.content

    assert anyio.run(main, backend=backend) == (True, b"hello")
    assert server.accepted == 2


def test_asyncio_watches_a_kept_alive_socket_once(serve: Any) -> None:
    """Under asyncio a connection's socket is added to the loop's selector at its first
    wait and stays while answers come; a FIN on the idle connection makes the loop stop
    watching it (instead of waking on it every turn), and closing removes it."""
    # Each answer comes 20 ms after its request, so the client always has to wait for it.
    late = pieces(b"", HELLO)
    server = serve([[late, late, late, hang_up], [late]])
    calls: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        add, remove = loop.add_reader, loop.remove_reader

        def counted_add(*args: Any) -> None:
            calls.append("add")
            add(*args)

        def counted_remove(fd: Any) -> bool:
            calls.append("remove")
            return remove(fd)

        loop.add_reader, loop.remove_reader = counted_add, counted_remove  # type: ignore[method-assign]
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        transport = AsyncWireTransport(limits)
        async with httpx.AsyncClient(transport=transport, timeout=WAIT) as client:
            for _ in range(3):
                assert (await client.get(server.url())).content == b"hello"
            assert calls == ["add"]
            assert await anyio.to_thread.run_sync(server.conn(0).closed.wait, WAIT)
            for _ in range(100):  # the FIN reaches the loop on one of its next turns
                if calls == ["add", "remove"]:
                    break
                await asyncio.sleep(0.01)
            assert calls == ["add", "remove"]
            assert (await client.get(server.url())).content == b"hello"  # a new connection
        assert calls == ["add", "remove", "add", "remove"]  # closed: no longer watched
        watched = list(loop._selector.get_map().values())  # type: ignore[attr-defined]
        assert len(watched) == 1  # only the loop's own wake-up pipe: no socket left

    asyncio.run(main())


def test_a_client_kept_across_two_asyncio_runs_connects_anew(serve: Any) -> None:
    """A pooled socket belongs to the loop that opened it; once that loop has closed, the
    next loop gets a new connection instead of an error."""
    server = serve([[reply(HELLO)], [reply(HELLO)]])
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    client = httpx.AsyncClient(transport=AsyncWireTransport(limits), timeout=WAIT)

    async def get() -> bytes:
        return (await client.get(server.url())).content

    assert asyncio.run(get()) == b"hello"
    assert asyncio.run(get()) == b"hello"
    assert server.accepted == 2


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> Any:
    return pytest.importorskip("trustme").CA()


@pytest.fixture
def tls(ca: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> ssl.SSLContext:
    """The server's context; transports made meanwhile trust the throwaway CA (through
    SSL_CERT_FILE, read as a transport is made: tests request this fixture before the
    client, which pytest then makes after it)."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    return server


def test_tls_keep_alive(tls: ssl.SSLContext, serve: Any, client: Harness) -> None:
    body = bytes(i % 249 for i in range(200_000))
    server = serve([[reply(ok(body)), reply(ok(b"two"))]], tls=tls)
    assert client.get(server.url()).content == body
    assert client.get(server.url()).content == b"two"
    assert server.accepted == 1


def test_tls_bytes_after_the_body_spoil_the_connection(
    tls: ssl.SSLContext, serve: Any, client: Harness
) -> None:
    # The stray bytes share a TLS record with the body's end: they wait in the TLS layer,
    # where polling the socket does not see them.
    script = pieces(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"hello" + ok(b"bad"))
    server = serve([[script, reply(ok(b"bad"))], [reply(ok(b"good"))]], tls=tls)
    assert client.get(server.url()).content == b"hello"
    assert client.get(server.url()).content == b"good"
    assert server.accepted == 2


def test_tls_handshake_failure_is_a_connect_error(serve: Any, client: Harness) -> None:
    # A server speaking plain HTTP where TLS is expected.
    def plain(conn: Conn) -> None:
        conn.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    server = serve([[plain]])
    with pytest.raises(httpx.ConnectError):
        client.get(f"https://127.0.0.1:{server.port}/")


@pytest.mark.parametrize("size", [5, 70_000, 300_000, 1_000_000])
def test_tls_bytes_after_the_body_in_records_of_their_own(
    tls: ssl.SSLContext, serve: Any, client: Harness, size: int
) -> None:
    # Stray records right behind the body's last one: once they have arrived (a stray
    # answer arriving after the idle check cannot be told from a real one), they may sit
    # in the kernel, in the TLS library, or in anyio's buffers; none may pass for the
    # next response.
    body = bytes(i % 241 for i in range(size))
    sent = threading.Event()

    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        time.sleep(0.02)
        conn.send(body)
        conn.send(ok(b"bad"))
        sent.set()

    server = serve([[script, reply(ok(b"bad"))], [reply(ok(b"good"))]], tls=tls)
    assert client.get(server.url()).content == body
    assert sent.wait(WAIT)
    assert client.get(server.url()).content == b"good"
    assert server.accepted == 2
