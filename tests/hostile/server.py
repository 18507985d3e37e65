"""A raw-socket HTTP/1.1 server on 127.0.0.1 that plays scripted answers byte for byte.

A ``Play`` is a function from each request the server reads to the ``Reply`` it sends:
the exact bytes (nothing is added or checked), the size of each write (``split``: 1
byte, a small prime, 1 KiB, or the whole at once; the socket has ``TCP_NODELAY``, so
each write leaves as its own segment), a pause between writes (even none yields to the
client's thread, so its reads mostly see the pieces apart), and what happens next
(``then``: read the next request on the same connection, close, or send nothing more and
wait for the client to hang up, recording whether it did), and a hook to run once the
bytes are out (``after``: e.g. interrupt the client mid-head).

Every request received is recorded (``HostileServer.requests``), so a test can assert on
exactly what a client sent, credentials included. A server speaks plain HTTP, TLS with
a given context, or both on one port (``sniff``: a first byte of 0x16 is a TLS
handshake), which gives an ``https`` and an ``http`` URL of the same host and port: a
redirect between them is a downgrade and nothing else.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "WAIT",
    "FileHost",
    "HostileServer",
    "Play",
    "Reply",
    "Request",
    "redirect",
    "routes",
    "serving",
]

WAIT = 5.0  # the most any server-side wait lasts: a liveness bound, never reached when green
# Orders the requests of several servers as they arrived (next() on a count is atomic).
_ARRIVALS = itertools.count()
_REQUEST_LIMIT = 1 << 20  # a request head longer than this is a client bug here


@dataclass(frozen=True)
class Request:
    """One request as it arrived: the raw bytes and their reading."""

    connection: int  # index of the connection it came on
    scheme: str  # "http" or "https": what the connection spoke
    arrival: int  # orders requests across servers
    raw: bytes
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]  # (name as sent, value), latin-1

    def header(self, name: str) -> str | None:
        """The value of ``name`` (any case); repeated fields joined with ", "."""
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ", ".join(values) if values else None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def host(self) -> str:
        """The Host header's name, without the port."""
        return (self.header("host") or "").rsplit(":", 1)[0]


@dataclass(frozen=True)
class Reply:
    """What to send for one request, how, and what to do after."""

    data: bytes
    split: int | None = None  # bytes per write; None: one write
    delay: float = 0.0  # seconds between writes (0: just let the client run)
    then: str = "keep"  # "keep" | "close" | "stall"
    after: Callable[[], None] | None = None  # called once the data is sent

    def __post_init__(self) -> None:
        if self.then not in ("keep", "close", "stall"):
            raise ValueError(f"then is keep, close or stall, not {self.then!r}")
        if self.split is not None and self.split < 1:
            raise ValueError("split is a positive write size")

    def pieces(self) -> Iterator[bytes]:
        if self.split is None:
            yield self.data
            return
        view = memoryview(self.data)
        for start in range(0, len(self.data), self.split):
            yield bytes(view[start : start + self.split])


Play = Callable[[Request], Reply]


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(
        b"HTTP/1.1 %d Redirect\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"
        % (status, location.encode("latin-1"))
    )


def routes(table: Mapping[str, Play], default: Play | None = None) -> Play:
    """Plays by request path; a path not in ``table`` gets ``default``, or a 404."""

    def play(request: Request) -> Reply:
        chosen = table.get(request.path, default)
        if chosen is None:
            return Reply(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        return chosen(request)

    return play


@dataclass
class FileHost:
    """A well-behaved range server for one file: 206 with an exact Content-Range for a
    single ``bytes=`` range, 200 with the whole file otherwise, an ETag either way."""

    data: bytes
    etag: str = '"v1"'

    def __call__(self, request: Request) -> Reply:
        total = len(self.data)
        span = _single_range(request.header("range"), total)
        common = b"ETag: %s\r\nAccept-Ranges: bytes\r\n" % self.etag.encode()
        if span is None:
            head = b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n" % (common, total)
            return Reply(head + self.data)
        start, stop = span
        if start >= total:
            return Reply(
                b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%d\r\n"
                b"Content-Length: 0\r\n\r\n" % total
            )
        head = b"HTTP/1.1 206 Partial Content\r\n%sContent-Range: bytes %d-%d/%d\r\n" % (
            common,
            start,
            stop - 1,
            total,
        )
        return Reply(head + b"Content-Length: %d\r\n\r\n" % (stop - start) + self.data[start:stop])


def _single_range(value: str | None, total: int) -> tuple[int, int] | None:
    """``[start, stop)`` of a single ``bytes=`` range, clipped to ``total``; None if
    there is none (or several: this host answers those with the whole file)."""
    if value is None or not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = value[len("bytes=") :].strip().partition("-")
    if not first:
        return max(0, total - int(last)), total
    start = int(first)
    stop = total if not last else min(total, int(last) + 1)
    return start, stop


class _ClientGone(Exception):
    """The client closed the connection where a request was expected."""


class _Connection:
    def __init__(self, sock: socket.socket, index: int, scheme: str) -> None:
        self.sock = sock
        self.index = index
        self.scheme = scheme
        self.buffer = b""

    def recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except (OSError, ssl.SSLError):
            return b""

    def read_request(self) -> Request:
        while b"\r\n\r\n" not in self.buffer:
            data = self.recv()
            if not data:
                raise _ClientGone
            self.buffer += data
            if len(self.buffer) > _REQUEST_LIMIT:
                raise AssertionError("a request head of more than 1 MiB")
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = tuple(
            (name, value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])
        )
        length = sum(int(v) for n, v in headers if n.lower() == "content-length")
        while len(rest) < length:
            data = self.recv()
            if not data:
                raise _ClientGone
            rest += data
        raw = head + b"\r\n\r\n" + rest[:length]
        self.buffer = rest[length:]
        return Request(self.index, self.scheme, next(_ARRIVALS), raw, method, target, headers)

    def send(self, reply: Reply) -> None:
        for i, piece in enumerate(reply.pieces()):
            if i:
                # Even a zero pause lets the client's thread run (the GIL): without it
                # the client would mostly read the pieces of a split answer as one.
                time.sleep(reply.delay)
            self.sock.sendall(piece)

    def wait_for_hang_up(self) -> bool:
        """Read (and drop) whatever comes until the client closes or resets the
        connection (True), or until our read times out after ``WAIT`` (False)."""
        while True:
            try:
                if not self.sock.recv(65536):
                    return True
            except TimeoutError:
                return False
            except OSError:
                return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


class HostileServer:
    """Plays ``play`` to every request on every connection (see the module docstring)."""

    def __init__(
        self,
        play: Play,
        *,
        tls: ssl.SSLContext | None = None,
        sniff: bool = False,
        greeting: bytes | None = None,
    ) -> None:
        self.play = play
        self.tls = tls
        self.sniff = sniff
        self.greeting = greeting  # sent at once on each connection, which then closes
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.requests: list[Request] = []
        self.connections = 0
        self.handshake_failures = 0  # TLS handshakes the client ended without completing
        self.handshake_timeouts = 0  # TLS handshakes the client left hanging until WAIT
        # How each stalled connection ended: True, the client hung up; False, it kept
        # the connection open until our read timed out (``WAIT``).
        self.stalls: list[bool] = []
        self.errors: list[BaseException] = []  # bugs of a play: reported at teardown
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a handshake failed
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = False
        accept = threading.Thread(target=self._accept, daemon=True, name=f"hostile-{self.port}")
        accept.start()
        self._threads.append(accept)

    def url(self, path: str = "/", *, scheme: str | None = None, host: str | None = None) -> str:
        """A URL of this server; TLS servers default to ``https://localhost`` (the name
        their certificate is for), plain ones to ``http://127.0.0.1``."""
        scheme = scheme or ("https" if self.tls is not None else "http")
        host = host or ("localhost" if scheme == "https" else "127.0.0.1")
        return f"{scheme}://{host}:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if self._stopping:
                    sock.close()
                    return
                index = self.connections
                self.connections += 1
                self._sockets.append(sock)
                thread = threading.Thread(target=self._serve, args=(sock, index), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, index: int) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(WAIT)
        connection: _Connection | None = None
        try:
            if self.greeting is not None:  # speaks first (plain HTTP where TLS is expected)
                sock.sendall(self.greeting)
                return
            wrapped = self._handshake(sock)
            if wrapped is None:
                return
            sock, scheme = wrapped
            connection = _Connection(sock, index, scheme)
            while True:
                request = connection.read_request()
                with self._lock:
                    self.requests.append(request)
                reply = self.play(request)
                connection.send(reply)
                if reply.after is not None:
                    reply.after()
                if reply.then == "close":
                    break
                if reply.then == "stall":
                    hung_up = connection.wait_for_hang_up()
                    with self._changed:
                        self.stalls.append(hung_up)
                        self._changed.notify_all()
                    break
        except (_ClientGone, OSError):
            pass  # the client hung up or reset: its business
        except BaseException as exc:  # a bug of the play: fails the test at teardown
            self.errors.append(exc)
        finally:
            if connection is not None:
                connection.close()
            else:
                with contextlib.suppress(OSError):
                    sock.close()

    def _handshake(self, sock: socket.socket) -> tuple[socket.socket, str] | None:
        if self.tls is None:
            return sock, "http"
        if self.sniff:
            first = sock.recv(1, socket.MSG_PEEK)
            if not first:
                return None
            if first != b"\x16":
                return sock, "http"
        wrapped = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            self._sockets.append(wrapped)  # what stop() must shut down from now on
        try:
            wrapped.do_handshake()
        except (OSError, ssl.SSLError) as exc:
            # The client refused us (an alert) or hung up: it must not keep the
            # connection open, so this happens at once (see ``wait_handshake_failures``).
            # Our own read timing out is not that: the client kept it open all along.
            with self._changed:
                if isinstance(exc, TimeoutError):
                    self.handshake_timeouts += 1
                else:
                    self.handshake_failures += 1
                self._changed.notify_all()
            with contextlib.suppress(OSError):
                wrapped.close()
            return None
        return wrapped, "https"

    def wait_handshake_failures(self, count: int) -> bool:
        """Whether ``count`` TLS handshakes have been ended by the client (a client that
        refuses the certificate sends an alert or hangs up at once; one that leaves the
        connection open shows up as a timeout of ours, after ``WAIT``)."""
        with self._changed:
            self._changed.wait_for(
                lambda: self.handshake_failures + self.handshake_timeouts >= count, WAIT * 2
            )
            return self.handshake_failures >= count

    def wait_stalls(self, count: int) -> list[bool]:
        """How the first ``count`` stalled connections ended (waiting for them: a client
        that gives up hangs up at once; one that leaves its socket open shows up as
        False, after ``WAIT``)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.stalls) >= count, WAIT * 2)
            return self.stalls[:count]

    def forget(self) -> None:
        """Drop the requests recorded so far (one server, several clients in turn)."""
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            sockets = list(self._sockets)
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        self.listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(WAIT)


@contextlib.contextmanager
def serving(play: Play, **options: object) -> Iterator[HostileServer]:
    """A server for the duration of a ``with`` block; a play's bug fails the block."""
    server = HostileServer(play, **options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
    assert not server.errors, server.errors
