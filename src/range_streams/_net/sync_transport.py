"""The sync half of range-streams' own transport: ``WireTransport`` for ``httpx.Client``,
over plain (maybe TLS) sockets in blocking mode.

It only moves bytes: which connection a request goes on, when it is retried and what
becomes of a connection afterwards are ``pool.Pool``'s steps, and the framing is
``exchange.Exchange``'s; both are the async half's too. What is here: the socket, the
loop that runs those steps on it, and the response body httpx reads.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

from .._core.stepper import Stepper
from .exchange import SocketRecv, SocketRecvInto, Steps
from .options import TLSSource
from .pool import Connect, Drop, Origin, PoolSteps, PoolTransport, RunOn, Slots, origin_of
from .shared import (
    READ_CHUNK,
    BodyState,
    arm_quickack,
    check_alpn,
    make_response,
    readable,
    timeouts_of,
)

__all__ = ["TransportBody", "WireTransport"]

A = TypeVar("A")
R = TypeVar("R")

# Reads owed this many bytes or more wait for all of them (SO_RCVLOWAT); smaller ones
# (heads, small ranges) wake at the first byte.
LOWAT_FROM = 64 * 1024


def _drive(steps: Steps[R], connection: _Socket | None, timeouts: dict[str, float | None]) -> R:
    """Run an exchange's ``steps`` on a connection (the twin of ``_adrive``; the two are
    checked against each other by tests/test_twins.py)."""
    result: Any = None
    while True:
        try:
            op = steps.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if connection is None:
            raise httpx.StreamClosed()
        if isinstance(op, SocketRecv):
            result = connection.recv(op.size, timeouts.get("read"), op.arm, op.owed)
        elif isinstance(op, SocketRecvInto):
            result = connection.recv_into(op.view, timeouts.get("read"), op.arm, op.owed)
        else:
            connection.send(op.data, timeouts.get("write"))
            result = None


class _Socket:
    """A connected (maybe TLS) socket whose errors come out as httpx's."""

    def __init__(self, sock: socket.socket) -> None:
        self.raw = sock
        self._timeout: float | None = sock.gettimeout()
        self._lowat = 1  # SO_RCVLOWAT: bytes queued before a read wakes
        self._plain = not isinstance(sock, ssl.SSLSocket)

    def stale(self) -> bool:
        self.wait_for(1)  # a low-water mark left by a big read would hide a stray byte
        return readable(self.raw)

    @classmethod
    def connect(cls, origin: Origin, timeout: float | None, tls: TLSSource) -> _Socket:
        scheme, host, port = origin
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = tls().wrap_socket(sock, server_hostname=host)
                check_alpn(sock.selected_alpn_protocol(), host)
        except BaseException as exc:  # nothing half-open is left behind, whatever stopped it
            if sock is not None:
                sock.close()
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout(f"connecting to {host}:{port}: {exc}") from exc
            if isinstance(exc, (OSError, OverflowError)):  # ssl.SSLError; a port past 65535
                raise httpx.ConnectError(f"connecting to {host}:{port}: {exc}") from exc
            raise
        return cls(sock)

    def _settimeout(self, timeout: float | None) -> None:
        if timeout != self._timeout:  # each change costs syscalls
            self.raw.settimeout(timeout)
            self._timeout = timeout

    def wait_for(self, owed: int) -> None:
        """Let a read wake only once ``owed`` bytes are queued (a big read owed by a
        counted body; 1 otherwise): one ``recv`` then takes a whole 1 MiB read, with no
        join of the pieces a read woken early gets, and fewer wake-ups. Plain TCP only
        (a TLS record's bytes are not the body's)."""
        lowat = owed if owed >= LOWAT_FROM and self._plain else 1
        if lowat != self._lowat:
            with contextlib.suppress(OSError):
                self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            self._lowat = lowat

    def send(self, data: bytes, timeout: float | None) -> None:
        try:
            self._settimeout(timeout)
            self.raw.sendall(data)
        except TimeoutError as exc:
            raise httpx.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc)) from exc

    def recv(self, size: int, timeout: float | None, arm: bool = True, owed: bool = False) -> bytes:
        """At most ``size`` bytes; ``owed``: the peer owes them all (see ``wait_for``)."""
        self.wait_for(size if owed else 1)
        return self._read(self.raw.recv, size, timeout, arm)

    def recv_into(
        self, view: memoryview, timeout: float | None, arm: bool = True, owed: bool = False
    ) -> int:
        self.wait_for(len(view) if owed else 1)
        return self._read(self.raw.recv_into, view, timeout, arm)

    def _read(self, read: Callable[[A], R], arg: A, timeout: float | None, arm: bool) -> R:
        try:
            self._settimeout(timeout)
            if arm:
                arm_quickack(self.raw)
            return read(arg)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc)) from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.raw.close()


class _Slots(Slots[threading.BoundedSemaphore]):
    """``Limits.max_connections`` for threads. The semaphore is made up front, so that the
    first requests of two threads cannot each make one."""

    __slots__ = ()

    def __init__(self, limit: int | None) -> None:
        super().__init__(limit)
        if self.limit is not None:
            self.semaphore = self.new_semaphore(self.limit)

    def new_semaphore(self, limit: int) -> threading.BoundedSemaphore:
        return threading.BoundedSemaphore(limit)

    def try_take(self, semaphore: threading.BoundedSemaphore) -> bool:
        return semaphore.acquire(blocking=False)

    def wait(self, timeout: float | None) -> None:
        assert self.semaphore is not None
        if not self.semaphore.acquire(timeout=timeout):
            raise httpx.PoolTimeout("no connection slot became free in time")


class WireTransport(PoolTransport[_Socket, _Slots], httpx.BaseTransport):
    """A thread-safe keep-alive HTTP/1.1 transport for ``httpx.Client``."""

    slots_kind = _Slots

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = timeouts_of(request)
        origin = origin_of(request.url)
        opening = self._pool.open(origin, request, request.read(), timeouts)
        connection, exchange = self._perform(opening)
        stream = TransportBody(self, origin, connection, exchange, timeouts.get("read"))
        if exchange.done:
            stream.close()
        return make_response(exchange, stream)

    def close(self) -> None:
        for connection in self._pool.close():
            connection.close()

    def _perform(self, steps: PoolSteps[R]) -> R:
        """Run the pool's ``steps`` (see ``pool``) with blocking sockets and threads."""
        stepper = Stepper(steps)
        while (op := stepper.next()) is not None:
            try:
                if isinstance(op, RunOn):
                    stepper.result = _drive(op.steps, op.connection, op.timeouts)
                elif isinstance(op, Drop):
                    op.connection.close()
                elif isinstance(op, Connect):
                    stepper.result = _Socket.connect(op.origin, op.timeout, self._tls)
                else:
                    self._slots.wait(op.timeout)
            except BaseException as exc:  # thrown back in: the steps drop what they must
                stepper.error = exc
        return stepper.returned()


class TransportBody(BodyState["WireTransport", _Socket], httpx.SyncByteStream):
    """A response body of our transport, read in the sizes asked for; a counted body can
    be read straight into a caller's buffer."""

    def read(self, max_bytes: int = READ_CHUNK) -> bytes:
        """At most ``max_bytes`` (and at most READ_CHUNK: ``recv`` allocates what it is
        asked for), ``b""`` at the end of the body."""
        return self._run(self._exchange.read_steps(min(max_bytes, READ_CHUNK)))

    def readinto(self, view: memoryview) -> int:
        """Body bytes straight into ``view`` (a counted body only): no bytes object, no
        copy but the kernel's. 0 at the end of the body."""
        return self._run(self._exchange.readinto_steps(view))

    def _run(self, steps: Steps[R]) -> R:
        try:
            result = _drive(steps, self._connection, self._timeouts)
        except BaseException:
            self._end(reusable=False)
            raise
        if self._exchange.done:
            self.close()
        return result

    def __iter__(self) -> Iterator[bytes]:
        while piece := self.read():
            yield piece

    def _end(self, *, reusable: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            for closing in self._transport._pool.release(self._origin, connection, reusable):
                closing.close()

    def close(self) -> None:
        self._end(reusable=self._exchange.done and self._exchange.reusable)
