"""range-streams' own HTTP/1.1 transports: the clients the library creates use these.

Why not httpx's default transport (measured in benchmarks/README.md): httpcore's pool
re-scans every connection for every queued request (``fetch_many`` spent half its CPU
there, ~1 ms per request at concurrency 20), and every 64 KiB of a body passes through
h11 and four layers of iterators (a sequential read ran at 0.44x curl). Here the pool is
a per-origin stack of idle sockets, the framing is ``_http11.Exchange`` (pure), and a
counted body goes from ``recv`` to the caller as the kernel hands it over.

The drivers below only move bytes; the decisions live in ``Exchange`` and ``IdlePool``.
Both also re-arm TCP_QUICKACK before every read (see ``_transport``: the nginx trap).

Scope: HTTP/1.1 over TCP or TLS, one request per connection at a time, keep-alive,
``Limits`` and ``Timeout`` as httpx defines them. Request bodies are sent from memory
(the library only sends GETs). Proxies from the environment go through httpx's own
proxy transports, which ``_transport.make_client`` mounts in front of this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
from anyio.streams.tls import TLSAttribute, TLSStream

from ._http11 import Exchange, Recv, RecvInto, Steps

__all__ = [
    "BODY_EXTENSION",
    "FIELDS_EXTENSION",
    "AsyncWireTransport",
    "IdlePool",
    "WireTransport",
    "arm_quickack",
    "asyncio_running",
    "readable",
]

# The response extension holding the body stream, whose ``read(size)`` the drivers use.
BODY_EXTENSION = "range_streams.body"
# The response's headers as ``_heads.Head.fields`` (lowercased names; None when the head
# was not all ASCII or h11 read it): what the flows check, without going through Headers.
FIELDS_EXTENSION = "range_streams.fields"
READ_CHUNK = 1 << 20  # most bytes one body read asks the socket for
SMALL_WRITE = 16 * 1024  # writes this small go straight to the kernel's send buffer
TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only

Origin = tuple[str, str, int]
C = TypeVar("C")
T = TypeVar("T")
A = TypeVar("A")
R = TypeVar("R")


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


@functools.cache
def tls_context() -> ssl.SSLContext:
    # Loading the CA bundle takes ~45 ms: once per process, not per client.
    context = httpx.create_ssl_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


class IdlePool(Generic[C]):
    """Idle keep-alive connections by origin, newest on top. Bookkeeping only: the
    caller closes what ``take``/``put``/``clear`` hand back."""

    def __init__(self, max_idle: int | None, expiry: float | None) -> None:
        self.max_idle = max_idle
        self.expiry = expiry
        self._stacks: dict[Origin, list[tuple[float, C]]] = {}
        self._count = 0

    def take(self, origin: Origin, now: float) -> tuple[C | None, list[C]]:
        """The newest idle connection to ``origin`` (or None), and the expired ones."""
        stack = self._stacks.get(origin)
        expired: list[C] = []
        while stack:
            since, connection = stack.pop()
            self._count -= 1
            if self.expiry is not None and now - since > self.expiry:
                expired.append(connection)  # older ones below are expired too
                expired.extend(c for _, c in stack)
                self._count -= len(stack)
                stack.clear()
                break
            return connection, expired
        return None, expired

    def put(self, origin: Origin, connection: C, now: float) -> list[C]:
        if self.max_idle is not None and self._count >= self.max_idle:
            return [connection]
        self._stacks.setdefault(origin, []).append((now, connection))
        self._count += 1
        return []

    def clear(self) -> list[C]:
        everything = [c for stack in self._stacks.values() for _, c in stack]
        self._stacks.clear()
        self._count = 0
        return everything


def _origin(url: httpx.URL) -> Origin:
    port = url.port or (443 if url.scheme == "https" else 80)
    if url.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(
            f"range-streams' transport speaks http and https, not {url.scheme!r}"
        )
    return url.scheme, url.host, port


def _exchange(request: httpx.Request, body: bytes) -> Exchange:
    return Exchange(request.method.encode("ascii"), request.url.raw_path, request.headers.raw, body)


def _timeouts(request: httpx.Request) -> dict[str, float | None]:
    return request.extensions.get("timeout", {})  # type: ignore[no-any-return]


def _retryable(error: Exception, reused: bool, exchange: Exchange) -> bool:
    """A kept-alive connection the server closed while it sat idle: the request never
    reached it, so sending it once more on a new connection is safe."""
    return (
        reused
        and not exchange.received_any
        and isinstance(error, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError))
    )


def _response(
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


# -- sync -------------------------------------------------------------------------------


def _drive(steps: Steps, connection: _Socket | None, timeouts: dict[str, float | None]) -> Any:
    """Run ``steps`` on a connection: the sync half of the steps' two drivers."""
    result: Any = None
    while True:
        try:
            op = steps.send(result)
        except StopIteration as stop:
            return stop.value
        if connection is None:
            raise httpx.StreamClosed()
        if isinstance(op, Recv):
            result = connection.recv(op.size, timeouts.get("read"), op.arm)
        elif isinstance(op, RecvInto):
            result = connection.recv_into(op.view, timeouts.get("read"), op.arm)
        else:
            connection.send(op.data, timeouts.get("write"))
            result = None


class _Socket:
    """A connected (maybe TLS) socket whose errors come out as httpx's."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._timeout: float | None = sock.gettimeout()

    @classmethod
    def connect(cls, origin: Origin, timeout: float | None) -> _Socket:
        scheme, host, port = origin
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = tls_context().wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port}: {exc}") from exc
        except OSError as exc:  # includes ssl.SSLError
            raise httpx.ConnectError(f"connecting to {host}:{port}: {exc}") from exc
        return cls(sock)

    def _settimeout(self, timeout: float | None) -> None:
        if timeout != self._timeout:  # each change costs syscalls
            self.sock.settimeout(timeout)
            self._timeout = timeout

    def send(self, data: bytes, timeout: float | None) -> None:
        try:
            self._settimeout(timeout)
            self.sock.sendall(data)
        except TimeoutError as exc:
            raise httpx.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc)) from exc

    def recv(self, size: int, timeout: float | None, arm: bool = True) -> bytes:
        return self._read(self.sock.recv, size, timeout, arm)

    def recv_into(self, view: memoryview, timeout: float | None, arm: bool = True) -> int:
        return self._read(self.sock.recv_into, view, timeout, arm)

    def _read(self, read: Callable[[A], R], arg: A, timeout: float | None, arm: bool) -> R:
        try:
            self._settimeout(timeout)
            if arm:
                arm_quickack(self.sock)
            return read(arg)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc)) from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class WireTransport(httpx.BaseTransport):
    """A thread-safe keep-alive HTTP/1.1 transport for ``httpx.Client``."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._idle: IdlePool[_Socket] = IdlePool(
            limits.max_keepalive_connections, limits.keepalive_expiry
        )
        self._slots = (
            threading.BoundedSemaphore(limits.max_connections) if limits.max_connections else None
        )
        self._lock = threading.Lock()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = _timeouts(request)
        origin = _origin(request.url)
        body = request.read()
        if self._slots is not None and not self._slots.acquire(timeout=timeouts.get("pool")):
            raise httpx.PoolTimeout("no connection slot became free in time")
        try:
            for attempt in (0, 1):
                connection, reused = self._connection(origin, timeouts, fresh=attempt > 0)
                exchange = _exchange(request, body)
                try:
                    _drive(exchange.head_steps(), connection, timeouts)
                except httpx.TransportError as exc:
                    connection.close()
                    if attempt == 0 and _retryable(exc, reused, exchange):
                        continue
                    raise
                break
        except BaseException:
            self._free_slot()
            raise
        stream = _Body(self, origin, connection, exchange, timeouts.get("read"))
        if exchange.done:
            stream.close()
        return _response(exchange, stream)

    def _connection(
        self, origin: Origin, timeouts: dict[str, float | None], fresh: bool
    ) -> tuple[_Socket, bool]:
        while not fresh:
            with self._lock:
                connection, expired = self._idle.take(origin, time.monotonic())
            for old in expired:
                old.close()
            if connection is None:
                break
            if readable(connection.sock):
                connection.close()
                continue
            return connection, True
        return _Socket.connect(origin, timeouts.get("connect")), False

    def _done_with(self, origin: Origin, connection: _Socket, reusable: bool) -> None:
        surplus = [connection]
        if reusable and not self._closed:
            with self._lock:
                surplus = self._idle.put(origin, connection, time.monotonic())
        for old in surplus:
            old.close()
        self._free_slot()

    def _free_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            idle = self._idle.clear()
        for connection in idle:
            connection.close()


class _BodyState(Generic[T, C]):
    """What a response body holds, sync or async: its transport, connection and exchange."""

    def __init__(
        self, transport: T, origin: Origin, connection: C, exchange: Exchange, timeout: float | None
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._connection: C | None = connection
        self._exchange = exchange
        self._timeout = timeout

    @property
    def counted(self) -> bool:
        return self._exchange.counted


class _Body(_BodyState["WireTransport", _Socket], httpx.SyncByteStream):
    def read(self, max_bytes: int = READ_CHUNK) -> bytes:
        """At most ``max_bytes`` (and at most READ_CHUNK: ``recv`` allocates what it is
        asked for), ``b""`` at the end of the body."""
        return self._run(self._exchange.read_steps(min(max_bytes, READ_CHUNK)))  # type: ignore[no-any-return]

    def readinto(self, view: memoryview) -> int:
        """Body bytes straight into ``view`` (a counted body only): no bytes object, no
        copy but the kernel's. 0 at the end of the body."""
        return self._run(self._exchange.readinto_steps(view))  # type: ignore[no-any-return]

    def _run(self, steps: Steps) -> Any:
        try:
            result = _drive(steps, self._connection, {"read": self._timeout})
        except BaseException:
            self._finish(reusable=False)
            raise
        if self._exchange.done:
            self.close()
        return result

    def __iter__(self) -> Iterator[bytes]:
        while piece := self.read():
            yield piece

    def _finish(self, *, reusable: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._transport._done_with(self._origin, connection, reusable)

    def close(self) -> None:
        self._finish(reusable=self._exchange.done and self._exchange.reusable)


# -- async ------------------------------------------------------------------------------


class _Stream:
    """A connected anyio byte stream whose errors come out as httpx's."""

    def __init__(self, stream: anyio.abc.ByteStream, raw: Any) -> None:
        self.stream = stream
        self.raw = raw

    @classmethod
    async def connect(cls, origin: Origin, timeout: float | None) -> _Stream:
        scheme, host, port = origin
        try:
            with anyio.fail_after(timeout):
                tcp = await anyio.connect_tcp(host, port)
                raw = tcp.extra(anyio.abc.SocketAttribute.raw_socket)
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                stream: anyio.abc.ByteStream = tcp
                if scheme == "https":
                    stream = await TLSStream.wrap(
                        tcp, hostname=host, ssl_context=tls_context(), standard_compatible=False
                    )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port}: timed out") from exc
        except (OSError, anyio.BrokenResourceError) as exc:
            raise httpx.ConnectError(f"connecting to {host}:{port}: {exc}") from exc
        return cls(stream, raw)

    async def send(self, data: bytes, timeout: float | None) -> None:
        try:
            if timeout is None or len(data) <= SMALL_WRITE:
                # A small write only fills the kernel's buffer: it never waits (and a
                # deadline costs a cancel scope per request).
                await self.stream.send(data)
            else:
                with anyio.fail_after(timeout):
                    await self.stream.send(data)
        except TimeoutError as exc:
            raise httpx.WriteTimeout("timed out sending the request") from exc
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__) from exc

    async def recv(self, size: int, timeout: float | None, arm: bool = True) -> bytes:
        if arm:
            arm_quickack(self.raw)
        try:
            if timeout is None:
                return await self.stream.receive(size)
            with anyio.fail_after(timeout):
                return await self.stream.receive(size)
        except anyio.EndOfStream:
            return b""
        except TimeoutError as exc:
            raise httpx.ReadTimeout("timed out reading the response") from exc
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc

    async def recv_into(self, view: memoryview, timeout: float | None, arm: bool = True) -> int:
        data = await self.recv(len(view), timeout, arm)  # anyio streams hand out bytes
        view[: len(data)] = data
        return len(data)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(OSError, anyio.BrokenResourceError):
                await self.stream.aclose()


if sys.version_info >= (3, 11):

    def _deadline(timeout: float | None) -> contextlib.AbstractAsyncContextManager[Any]:
        """asyncio's own timeout: a tenth of the cost of anyio's cancel scope, which
        was 7% of fetch_many's CPU (each response is waited for once)."""
        return asyncio.timeout(timeout)

else:  # pragma: no cover - Python 3.10

    def _deadline(timeout: float | None) -> contextlib.AbstractAsyncContextManager[Any]:
        return _AnyioDeadline(timeout)

    class _AnyioDeadline(contextlib.AbstractAsyncContextManager[Any]):
        def __init__(self, timeout: float | None) -> None:
            self._scope = anyio.fail_after(timeout)

        async def __aenter__(self) -> Any:
            return self._scope.__enter__()

        async def __aexit__(self, *exc: Any) -> bool | None:
            return self._scope.__exit__(*exc)


class _LoopSocket:
    """Plain TCP under asyncio, through the loop's ``sock_*`` calls. The socket is tried
    first, so an answer that is already there costs no trip through the event loop: a
    task that gets its response sends its next request without yielding, instead of
    after every other ready task's turn (which kept fetch_many's connections in lockstep
    and cost a whole "wave" of processing per round trip)."""

    YIELD_EVERY = 16  # ready reads in a row before letting other tasks run

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.raw = sock
        self._loop = loop
        self._ready_reads = 0
        self._fd = sock.fileno()
        # The loop watches the socket from the first wait on and keeps watching while
        # answers keep coming (each request of a kept-alive connection waits once), so
        # a wait costs no add/remove pair of selector calls (two epoll_ctl syscalls).
        self._watched = False
        self._waiter: asyncio.Future[None] | None = None

    @classmethod
    async def connect(cls, origin: Origin, timeout: float | None) -> _LoopSocket:
        _, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            async with _deadline(timeout):
                infos = _literal_address(host, port) or await loop.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
                error: OSError = OSError(f"no address for {host}")
                for family, kind, proto, _, address in infos:
                    sock = socket.socket(family, kind, proto)
                    try:
                        sock.setblocking(False)
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        await loop.sock_connect(sock, address)
                    except OSError as exc:
                        sock.close()
                        error = exc
                        continue
                    except BaseException:
                        sock.close()
                        raise
                    return cls(sock, loop)
                raise error
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port}: timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"connecting to {host}:{port}: {exc}") from exc

    async def send(self, data: bytes, timeout: float | None) -> None:
        try:
            try:
                sent = self.raw.send(data)
            except BlockingIOError:
                sent = 0
            if sent < len(data):
                async with _deadline(timeout):
                    await self._loop.sock_sendall(self.raw, memoryview(data)[sent:])
        except TimeoutError as exc:
            raise httpx.WriteTimeout("timed out sending the request") from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__) from exc

    async def recv(self, size: int, timeout: float | None, arm: bool = True) -> bytes:
        return await self._read(self.raw.recv, size, timeout, arm)

    async def recv_into(self, view: memoryview, timeout: float | None, arm: bool = True) -> int:
        return await self._read(self.raw.recv_into, view, timeout, arm)

    async def _read(self, read: Callable[[A], R], arg: A, timeout: float | None, arm: bool) -> R:
        """``read(arg)`` once the socket has data: at once if it has, else after waiting
        (at most ``timeout``) for the loop to say it is readable."""
        if self._ready_reads >= self.YIELD_EVERY:  # before reading: a cancel loses nothing
            self._ready_reads = 0
            await anyio.lowlevel.checkpoint()
        if arm:
            arm_quickack(self.raw)
        try:
            try:
                result = read(arg)
                self._ready_reads += 1
                return result
            except BlockingIOError:
                self._ready_reads = 0
            while True:
                await self._readable(timeout)
                try:
                    return read(arg)
                except BlockingIOError:  # woken for nothing: wait again
                    continue
        except TimeoutError as exc:
            raise httpx.ReadTimeout("timed out reading the response") from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc

    async def _readable(self, timeout: float | None) -> None:
        """Wait until the socket is readable, or raise ``TimeoutError`` after ``timeout``.

        The loop's ``sock_recv`` would first try the read we just tried (one more
        syscall), and a timeout scope around it cancels and un-cancels the task; one
        future, woken by the reader or failed by the timer, does the same work.
        """
        loop = self._loop
        if not self._watched:
            loop.add_reader(self._fd, self._on_readable)
            self._watched = True
        self._waiter = waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    @property
    def loop_closed(self) -> bool:
        return self._loop.is_closed()

    def _on_readable(self) -> None:
        waiter = self._waiter
        if waiter is None:
            # Nobody waits (bytes or a FIN on an idle connection): stop watching, or the
            # level-triggered selector would call again on every turn of the loop.
            self._unwatch()
        elif not waiter.done():
            waiter.set_result(None)
        # else: woken already, and the reader has not had its turn yet

    def _unwatch(self) -> None:
        if self._watched:
            self._watched = False
            self._loop.remove_reader(self._fd)

    async def aclose(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: loop closed
            self._unwatch()
        with contextlib.suppress(OSError):
            self.raw.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


_AsyncConnection = _LoopSocket | _Stream


async def _adrive(
    steps: Steps, connection: _AsyncConnection | None, timeouts: dict[str, float | None]
) -> Any:
    """Run ``steps`` on a connection: the async half of the steps' two drivers."""
    result: Any = None
    while True:
        try:
            op = steps.send(result)
        except StopIteration as stop:
            return stop.value
        if connection is None:
            raise httpx.StreamClosed()
        if isinstance(op, Recv):
            result = await connection.recv(op.size, timeouts.get("read"), op.arm)
        elif isinstance(op, RecvInto):
            result = await connection.recv_into(op.view, timeouts.get("read"), op.arm)
        else:
            await connection.send(op.data, timeouts.get("write"))
            result = None


def _tls_pending(connection: _AsyncConnection) -> bool:
    if not isinstance(connection, _Stream):
        return False
    ssl_object = connection.stream.extra(TLSAttribute.ssl_object, None)
    if ssl_object is not None and ssl_object.pending() > 0:
        return True
    read_bio = getattr(connection.stream, "_read_bio", None)
    return read_bio is not None and read_bio.pending > 0


def _loop_gone(connection: _AsyncConnection) -> bool:
    """A socket of an event loop that has since closed (a client kept across two
    ``asyncio.run`` calls): the loop can no longer wait on it, so it is not reused."""
    return isinstance(connection, _LoopSocket) and connection.loop_closed


def _literal_address(host: str, port: int) -> list[Any]:
    """An IP address needs no resolver: asyncio's getaddrinfo is a thread-pool hop (the
    first one starts the pool, ~10 ms before the first request of a batch)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return []
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]


def asyncio_running() -> bool:
    """Whether this task runs on asyncio (under trio there is no running asyncio loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _connect(origin: Origin, timeout: float | None) -> _AsyncConnection:
    if origin[0] == "http" and asyncio_running():
        return await _LoopSocket.connect(origin, timeout)
    return await _Stream.connect(origin, timeout)


class AsyncWireTransport(httpx.AsyncBaseTransport):
    """A keep-alive HTTP/1.1 transport for ``httpx.AsyncClient`` (asyncio or trio)."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._idle: IdlePool[_AsyncConnection] = IdlePool(
            limits.max_keepalive_connections, limits.keepalive_expiry
        )
        self._max_connections = limits.max_connections
        self._slots: anyio.Semaphore | None = None  # made inside the event loop
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = _timeouts(request)
        origin = _origin(request.url)
        body = await request.aread()
        await self._take_slot(timeouts.get("pool"))
        try:
            for attempt in (0, 1):
                connection, reused = await self._connection(origin, timeouts, fresh=attempt > 0)
                exchange = _exchange(request, body)
                try:
                    await _adrive(exchange.head_steps(), connection, timeouts)
                except httpx.TransportError as exc:
                    await connection.aclose()
                    if attempt == 0 and _retryable(exc, reused, exchange):
                        continue
                    raise
                except BaseException:  # cancelled mid-exchange: the connection is unusable
                    await connection.aclose()
                    raise
                break
        except BaseException:
            self._free_slot()
            raise
        stream = _AsyncBody(self, origin, connection, exchange, timeouts.get("read"))
        if exchange.done:
            await stream.aclose()
        return _response(exchange, stream)

    async def _take_slot(self, timeout: float | None) -> None:
        if self._max_connections is None:
            return
        if self._slots is None:
            self._slots = anyio.Semaphore(self._max_connections)
        try:
            self._slots.acquire_nowait()  # the usual case: no deadline to set up
            return
        except anyio.WouldBlock:
            pass
        try:
            with anyio.fail_after(timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no connection slot became free in time") from exc

    def _free_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    async def _connection(
        self, origin: Origin, timeouts: dict[str, float | None], fresh: bool
    ) -> tuple[_AsyncConnection, bool]:
        while not fresh:
            connection, expired = self._idle.take(origin, time.monotonic())
            for old in expired:
                await old.aclose()
            if connection is None:
                break
            if readable(connection.raw) or _tls_pending(connection) or _loop_gone(connection):
                await connection.aclose()
                continue
            return connection, True
        return await _connect(origin, timeouts.get("connect")), False

    async def _done_with(
        self, origin: Origin, connection: _AsyncConnection, reusable: bool
    ) -> None:
        surplus = [connection]
        if reusable and not self._closed:
            surplus = self._idle.put(origin, connection, time.monotonic())
        self._free_slot()
        for old in surplus:
            await old.aclose()

    async def aclose(self) -> None:
        self._closed = True
        for connection in self._idle.clear():
            await connection.aclose()


class _AsyncBody(_BodyState["AsyncWireTransport", _AsyncConnection], httpx.AsyncByteStream):
    async def read(self, max_bytes: int = READ_CHUNK) -> bytes:
        steps = self._exchange.read_steps(min(max_bytes, READ_CHUNK))
        return await self._run(steps)  # type: ignore[no-any-return]

    async def readinto(self, view: memoryview) -> int:
        return await self._run(self._exchange.readinto_steps(view))  # type: ignore[no-any-return]

    async def _run(self, steps: Steps) -> Any:
        try:
            result = await _adrive(steps, self._connection, {"read": self._timeout})
        except BaseException:
            await self._finish(reusable=False)
            raise
        if self._exchange.done:
            await self.aclose()
        return result

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while piece := await self.read():
            yield piece

    async def _finish(self, *, reusable: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._transport._done_with(self._origin, connection, reusable)

    async def aclose(self) -> None:
        await self._finish(reusable=self._exchange.done and self._exchange.reusable)
