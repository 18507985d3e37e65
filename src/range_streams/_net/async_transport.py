"""The async half of range-streams' own transport: ``AsyncWireTransport`` for
``httpx.AsyncClient``, on asyncio (plain TCP straight through the loop's ``sock_*``
calls) or trio and TLS (anyio streams).

It only moves bytes: which connection a request goes on, when it is retried and what
becomes of a connection afterwards are ``pool.Pool``'s steps, and the framing is
``exchange.Exchange``'s; both are the sync half's too. What is here: the two kinds of
connection, the loop that runs those steps on them, and the response body httpx reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
from anyio.streams.tls import TLSAttribute, TLSStream

from .._core.stepper import Stepper
from .exchange import SocketRecv, SocketRecvInto, Steps
from .options import TLSSource
from .pool import Connect, Drop, Origin, PoolSteps, PoolTransport, RunOn, Slots, origin_of
from .shared import (
    READ_CHUNK,
    SMALL_WRITE,
    BodyState,
    arm_quickack,
    check_alpn,
    make_response,
    readable,
    timeouts_of,
)

if sys.version_info < (3, 11):  # pragma: no cover - Python 3.10: anyio's backport
    from exceptiongroup import BaseExceptionGroup

__all__ = ["AsyncTransportBody", "AsyncWireTransport", "asyncio_running"]

A = TypeVar("A")
R = TypeVar("R")


# What an anyio stream's send or receive raises when it fails: see ``_httpx_error``.
_STREAM_FAILURES = (TimeoutError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


def _httpx_error(exc: BaseException, *, sending: bool) -> httpx.TransportError:
    """A stream's failure in sending the request or reading the response, as httpx's."""
    if isinstance(exc, TimeoutError):
        if sending:
            return httpx.WriteTimeout("timed out sending the request")
        return httpx.ReadTimeout("timed out reading the response")
    message = str(exc) or type(exc).__name__
    return httpx.WriteError(message) if sending else httpx.ReadError(message)


class _Stream:
    """A connected anyio byte stream whose errors come out as httpx's."""

    def __init__(self, stream: anyio.abc.ByteStream, raw: Any) -> None:
        self.stream = stream
        self.raw = raw

    @classmethod
    async def connect(cls, origin: Origin, timeout: float | None, tls: TLSSource) -> _Stream:
        scheme, host, port = origin
        tcp: anyio.abc.SocketStream | None = None
        try:
            with anyio.fail_after(timeout):
                tcp = await anyio.connect_tcp(host, port)
                raw = tcp.extra(anyio.abc.SocketAttribute.raw_socket)
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                stream: anyio.abc.ByteStream = tcp
                if scheme == "https":
                    stream = await TLSStream.wrap(
                        tcp, hostname=host, ssl_context=tls(), standard_compatible=False
                    )
                    check_alpn(stream.extra(TLSAttribute.alpn_protocol), host)
        except BaseException as exc:  # nothing half-open is left behind, whatever stopped it
            if tcp is not None:
                with anyio.CancelScope(shield=True):
                    await tcp.aclose()
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout(f"connecting to {host}:{port}: timed out") from exc
            if isinstance(exc, (OSError, OverflowError, anyio.BrokenResourceError)):
                raise httpx.ConnectError(f"connecting to {host}:{port}: {exc}") from exc
            if isinstance(exc, BaseExceptionGroup) and exc.subgroup(OverflowError) is not None:
                raise httpx.ConnectError(f"connecting to {host}:{port}: {exc}") from exc
            raise
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
        except _STREAM_FAILURES as exc:
            raise _httpx_error(exc, sending=True) from exc

    async def recv(
        self, size: int, timeout: float | None, arm: bool = True, owed: bool = False
    ) -> bytes:
        """At most ``size`` bytes; the read wakes at the first byte, whatever is ``owed``."""
        if arm:
            arm_quickack(self.raw)
        try:
            if timeout is None:
                return await self.stream.receive(size)
            with anyio.fail_after(timeout):
                return await self.stream.receive(size)
        except anyio.EndOfStream:
            return b""
        except _STREAM_FAILURES as exc:
            raise _httpx_error(exc, sending=False) from exc

    async def recv_into(
        self, view: memoryview, timeout: float | None, arm: bool = True, owed: bool = False
    ) -> int:
        data = await self.recv(len(view), timeout, arm)  # anyio streams hand out bytes
        view[: len(data)] = data
        return len(data)

    def stale(self) -> bool:
        if readable(self.raw):
            return True
        # Bytes the TLS layer already holds: polling the socket does not see them.
        ssl_object = self.stream.extra(TLSAttribute.ssl_object, None)
        if ssl_object is not None and ssl_object.pending() > 0:
            return True
        read_bio = getattr(self.stream, "_read_bio", None)
        return read_bio is not None and read_bio.pending > 0

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(OSError, anyio.BrokenResourceError):
                await self.stream.aclose()


if sys.version_info >= (3, 11):

    def _deadline(timeout: float | None) -> contextlib.AbstractAsyncContextManager[Any]:
        """asyncio's own timeout: a tenth of the cost of anyio's cancel scope (each
        response is waited for once, so this is paid per request)."""
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
        except (OSError, OverflowError) as exc:  # OverflowError: a port past 65535
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

    async def recv(
        self, size: int, timeout: float | None, arm: bool = True, owed: bool = False
    ) -> bytes:
        """At most ``size`` bytes; the read wakes at the first byte, whatever is ``owed``."""
        return await self._read(self.raw.recv, size, timeout, arm)

    async def recv_into(
        self, view: memoryview, timeout: float | None, arm: bool = True, owed: bool = False
    ) -> int:
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

    def stale(self) -> bool:
        # A socket of an event loop that has since closed (a client kept across two
        # ``asyncio.run`` calls) cannot be waited on any more.
        return readable(self.raw) or self._loop.is_closed()

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
    steps: Steps[R], connection: _AsyncConnection | None, timeouts: dict[str, float | None]
) -> R:
    """Run an exchange's ``steps`` on a connection: ``_drive`` is its sync twin, checked
    against it by tests/test_twins.py."""
    result: Any = None
    while True:
        try:
            op = steps.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if connection is None:
            raise httpx.StreamClosed()
        if isinstance(op, SocketRecv):
            result = await connection.recv(op.size, timeouts.get("read"), op.arm, op.owed)
        elif isinstance(op, SocketRecvInto):
            result = await connection.recv_into(op.view, timeouts.get("read"), op.arm, op.owed)
        else:
            await connection.send(op.data, timeouts.get("write"))
            result = None


def _literal_address(host: str, port: int) -> list[Any]:
    """An IP address needs no resolver: asyncio's getaddrinfo is a thread-pool hop (the
    first one starts the pool, which delays the first request of a batch)."""
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


async def _connect(origin: Origin, timeout: float | None, tls: TLSSource) -> _AsyncConnection:
    if origin[0] == "http" and asyncio_running():
        return await _LoopSocket.connect(origin, timeout)
    return await _Stream.connect(origin, timeout, tls)


class _Slots(Slots[anyio.Semaphore]):
    """``Limits.max_connections`` for tasks; the semaphore is made inside the event loop,
    on first use."""

    __slots__ = ()

    def new_semaphore(self, limit: int) -> anyio.Semaphore:
        return anyio.Semaphore(limit)

    def try_take(self, semaphore: anyio.Semaphore) -> bool:
        try:
            semaphore.acquire_nowait()
        except anyio.WouldBlock:
            return False
        return True

    async def wait(self, timeout: float | None) -> None:
        assert self.semaphore is not None
        try:
            with anyio.fail_after(timeout):
                await self.semaphore.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no connection slot became free in time") from exc


class AsyncWireTransport(PoolTransport[_AsyncConnection, _Slots], httpx.AsyncBaseTransport):
    """A keep-alive HTTP/1.1 transport for ``httpx.AsyncClient`` (asyncio or trio);
    ``WireTransport`` is its sync twin, checked against it by tests/test_twins.py."""

    slots_kind = _Slots

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = timeouts_of(request)
        origin = origin_of(request.url)
        opening = self._pool.open(origin, request, await request.aread(), timeouts)
        connection, exchange = await self._perform(opening)
        stream = AsyncTransportBody(self, origin, connection, exchange, timeouts.get("read"))
        if exchange.done:
            await stream.aclose()
        return make_response(exchange, stream)

    async def aclose(self) -> None:
        for connection in self._pool.close():
            await connection.aclose()

    async def _perform(self, steps: PoolSteps[R]) -> R:
        """Run the pool's ``steps`` (see ``pool``) on the event loop."""
        stepper = Stepper(steps)
        while (op := stepper.next()) is not None:
            try:
                if isinstance(op, RunOn):
                    stepper.result = await _adrive(op.steps, op.connection, op.timeouts)
                elif isinstance(op, Drop):
                    await op.connection.aclose()
                elif isinstance(op, Connect):
                    stepper.result = await _connect(op.origin, op.timeout, self._tls)
                else:
                    await self._slots.wait(op.timeout)
            except BaseException as exc:  # thrown back in: the steps drop what they must
                stepper.error = exc
        return stepper.returned()


class AsyncTransportBody(BodyState["AsyncWireTransport", _AsyncConnection], httpx.AsyncByteStream):
    """``TransportBody``'s async twin (checked against it by tests/test_twins.py)."""

    async def read(self, max_bytes: int = READ_CHUNK) -> bytes:
        return await self._run(self._exchange.read_steps(min(max_bytes, READ_CHUNK)))

    async def readinto(self, view: memoryview) -> int:
        return await self._run(self._exchange.readinto_steps(view))

    async def _run(self, steps: Steps[R]) -> R:
        try:
            result = await _adrive(steps, self._connection, self._timeouts)
        except BaseException:
            await self._end(reusable=False)
            raise
        if self._exchange.done:
            await self.aclose()
        return result

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while piece := await self.read():
            yield piece

    async def _end(self, *, reusable: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            for closing in self._transport._pool.release(self._origin, connection, reusable):
                await closing.aclose()

    async def aclose(self) -> None:
        await self._end(reusable=self._exchange.done and self._exchange.reusable)
