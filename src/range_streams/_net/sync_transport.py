"""The sync half of range-streams' own transport: ``WireTransport`` for ``httpx.Client``,
over plain (maybe TLS) sockets in blocking mode. What it shares with the async half is in
``_wire``; the framing is ``_http11.Exchange``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

from .exchange import Recv, RecvInto, Steps
from .options import TLSSource, tls_source
from .shared import (
    READ_CHUNK,
    BodyState,
    IdlePool,
    Origin,
    arm_quickack,
    check_alpn,
    make_response,
    new_exchange,
    once,
    origin_of,
    readable,
    retryable,
    timeouts_of,
)

__all__ = ["WireTransport"]

A = TypeVar("A")
R = TypeVar("R")

# Reads owed this many bytes or more wait for all of them (SO_RCVLOWAT); smaller ones
# (heads, small ranges) wake at the first byte.
LOWAT_FROM = 64 * 1024


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
            connection.wait_for(op.size if op.owed else 1)
            result = connection.recv(op.size, timeouts.get("read"), op.arm)
        elif isinstance(op, RecvInto):
            connection.wait_for(len(op.view) if op.owed else 1)
            result = connection.recv_into(op.view, timeouts.get("read"), op.arm)
        else:
            connection.send(op.data, timeouts.get("write"))
            result = None


class _Socket:
    """A connected (maybe TLS) socket whose errors come out as httpx's."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._timeout: float | None = sock.gettimeout()
        self._lowat = 1  # SO_RCVLOWAT: bytes queued before a read wakes
        self._plain = not isinstance(sock, ssl.SSLSocket)

    @classmethod
    def connect(cls, origin: Origin, timeout: float | None, tls: TLSSource) -> _Socket:
        scheme, host, port = origin
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = tls().wrap_socket(sock, server_hostname=host)
                check_alpn(sock.selected_alpn_protocol(), host)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port}: {exc}") from exc
        except OSError as exc:  # includes ssl.SSLError
            raise httpx.ConnectError(f"connecting to {host}:{port}: {exc}") from exc
        return cls(sock)

    def _settimeout(self, timeout: float | None) -> None:
        if timeout != self._timeout:  # each change costs syscalls
            self.sock.settimeout(timeout)
            self._timeout = timeout

    def wait_for(self, owed: int) -> None:
        """Let a read wake only once ``owed`` bytes are queued (a big read owed by a
        counted body; 1 otherwise): one ``recv`` then takes a whole 1 MiB read, with no
        join of the pieces a read woken early gets, and fewer wake-ups. Plain TCP only
        (a TLS record's bytes are not the body's)."""
        lowat = owed if owed >= LOWAT_FROM and self._plain else 1
        if lowat != self._lowat:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            self._lowat = lowat

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

    def __init__(self, limits: httpx.Limits, tls: TLSSource | None = None) -> None:
        self._tls = once(tls if tls is not None else tls_source())
        self._idle: IdlePool[_Socket] = IdlePool(
            limits.max_keepalive_connections, limits.keepalive_expiry
        )
        self._slots = (
            threading.BoundedSemaphore(limits.max_connections) if limits.max_connections else None
        )
        self._lock = threading.Lock()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = timeouts_of(request)
        origin = origin_of(request.url)
        body = request.read()
        if self._slots is not None and not self._slots.acquire(timeout=timeouts.get("pool")):
            raise httpx.PoolTimeout("no connection slot became free in time")
        try:
            for attempt in (0, 1):
                connection, reused = self._connection(origin, timeouts, fresh=attempt > 0)
                exchange = new_exchange(request, body)
                try:
                    _drive(exchange.head_steps(), connection, timeouts)
                except httpx.TransportError as exc:
                    connection.close()
                    if attempt == 0 and retryable(exc, reused, exchange):
                        continue
                    raise
                break
        except BaseException:
            self._free_slot()
            raise
        stream = _Body(self, origin, connection, exchange, timeouts.get("read"))
        if exchange.done:
            stream.close()
        return make_response(exchange, stream)

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
        return _Socket.connect(origin, timeouts.get("connect"), self._tls), False

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


class _Body(BodyState["WireTransport", _Socket], httpx.SyncByteStream):
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
