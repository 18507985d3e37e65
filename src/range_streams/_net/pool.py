"""Our transport's decisions, as steps both transports run: which connection a request goes
on, when it is sent once more, and what becomes of a connection afterwards.

Like the flows one level up and ``Exchange`` one level down, this is logic without I/O.
``Pool.open`` is a generator that yields the few operations it needs and receives their
results:

* ``WaitSlot(timeout)``: wait for a connection slot (``Limits.max_connections``), only
  when none is free at once;
* ``Connect(origin, timeout)``: a new connection;
* ``RunOn(steps, connection, timeouts)``: an ``Exchange``'s steps on a connection;
* ``Drop(connection)``: close it.

The sync transport (blocking sockets, threads) and the async one (asyncio or trio) each
run them with a loop of a few lines (``WireTransport._perform``,
``AsyncWireTransport._perform``), so there is one copy of the logic and the two cannot
drift. An exception raised by an operation is thrown back in at its ``yield``: a
connection that failed mid-exchange, or whose task was cancelled there, is dropped by
the same lines whichever transport runs them. ``Pool.release`` and ``Pool.close`` need
no I/O of their own: they return the connections the transport is to close. What the two
transports are made of besides I/O is here too: ``PoolTransport`` (the pool, its
connection ``Slots``, the TLS context) is the base of both.

The common request costs one operation (``RunOn``, on an idle connection) and its release
none: the pool's bookkeeping is plain calls, so the steps add little to a request.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import httpx

from .exchange import MAX_HEAD, Exchange, Steps
from .options import TLSSource, tls_source

__all__ = [
    "Connect",
    "Drop",
    "IdlePool",
    "Origin",
    "Pool",
    "PoolOp",
    "PoolSteps",
    "PoolTransport",
    "RunOn",
    "Slots",
    "WaitSlot",
    "origin_of",
]

Origin = tuple[str, str, int]
T = TypeVar("T")


class Connection(Protocol):
    def stale(self) -> bool:
        """Whether an idle connection can no longer be used: bytes (or the peer's close)
        arrived while it sat idle, or the event loop it belonged to is gone."""
        ...


C = TypeVar("C", bound=Connection)


class Semaphore(Protocol):
    def release(self) -> None: ...


S = TypeVar("S", bound=Semaphore)


class Slots(Generic[S]):
    """``Limits.max_connections`` (None or 0: no limit) as a semaphore of the transport's
    kind (a thread's or an event loop's). Taking a slot that is free at once and freeing
    one are the same steps for both kinds and are here; waiting for one is I/O, each
    kind's own ``wait``. The semaphore is made on first use, since an event loop's can
    only be made inside its loop; a kind whose first users may race makes it up front."""

    __slots__ = ("limit", "semaphore")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit or None
        self.semaphore: S | None = None

    def take_now(self) -> bool:
        """Take a slot if one is free at once."""
        semaphore = self.semaphore
        if semaphore is None:
            if self.limit is None:
                return True
            semaphore = self.semaphore = self.new_semaphore(self.limit)
        return self.try_take(semaphore)

    def free(self) -> None:
        if self.semaphore is not None:
            self.semaphore.release()

    def new_semaphore(self, limit: int) -> S:
        raise NotImplementedError

    def try_take(self, semaphore: S) -> bool:
        """Take one of ``semaphore``'s slots if it has one free, without waiting."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class WaitSlot:
    timeout: float | None


@dataclass(frozen=True, slots=True)
class Connect:
    origin: Origin
    timeout: float | None


@dataclass(frozen=True, slots=True)
class RunOn:
    steps: Steps[Any]
    connection: Any
    timeouts: dict[str, float | None]


@dataclass(frozen=True, slots=True)
class Drop:
    connection: Any


PoolOp = WaitSlot | Connect | RunOn | Drop
PoolSteps = Generator[PoolOp, Any, T]


class IdlePool(Generic[T]):
    """Idle keep-alive connections by origin, newest on top. Bookkeeping only: the
    caller closes what ``take``/``put``/``clear`` hand back."""

    def __init__(self, max_idle: int | None, expiry: float | None) -> None:
        self.max_idle = max_idle
        self.expiry = expiry
        self._stacks: dict[Origin, list[tuple[float, T]]] = {}
        self._count = 0

    def __iter__(self) -> Any:
        return (connection for stack in self._stacks.values() for _, connection in stack)

    def take(self, origin: Origin, now: float) -> tuple[T | None, list[T]]:
        """The newest idle connection to ``origin`` (or None), and the expired ones."""
        stack = self._stacks.get(origin)
        expired: list[T] = []
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

    def put(self, origin: Origin, connection: T, now: float) -> list[T]:
        if self.max_idle is not None and self._count >= self.max_idle:
            return [connection]
        self._stacks.setdefault(origin, []).append((now, connection))
        self._count += 1
        return []

    def clear(self) -> list[T]:
        everything = [c for stack in self._stacks.values() for _, c in stack]
        self._stacks.clear()
        self._count = 0
        return everything


def origin_of(url: httpx.URL) -> Origin:
    port = url.port or (443 if url.scheme == "https" else 80)
    if url.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(
            f"range-streams' transport speaks http and https, not {url.scheme!r}"
        )
    return url.scheme, url.host, port


def retryable(error: BaseException, reused: bool, exchange: Exchange) -> bool:
    """A kept-alive connection the server closed while it sat idle: the request never
    reached it, so sending it once more on a new connection is safe."""
    return (
        reused
        and not exchange.received_any
        and isinstance(error, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError))
    )


class Pool(Generic[C]):
    """The connections of one transport: idle ones by origin, and the rules for taking,
    retrying and giving back. Thread-safe (the sync transport serves many threads)."""

    def __init__(self, limits: httpx.Limits, max_head: int, slots: Slots[Any]) -> None:
        self.idle: IdlePool[C] = IdlePool(limits.max_keepalive_connections, limits.keepalive_expiry)
        self.max_head = max_head
        self.closed = False
        self.slots = slots
        self._lock = threading.Lock()

    def open(
        self,
        origin: Origin,
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, float | None],
    ) -> PoolSteps[tuple[C, Exchange]]:
        """Send ``request`` to ``origin`` and read its response's head: the connection it
        is on and its exchange. A request that fails on a reused connection before any
        byte of an answer came (the server closed it while it sat idle) goes once more on
        a new one."""
        if not self.slots.take_now():
            yield WaitSlot(timeouts.get("pool"))
        try:
            for attempt in (0, 1):
                connection, reused = yield from self._connection(origin, timeouts, attempt > 0)
                exchange = Exchange(
                    request.method.encode("ascii"),
                    request.url.raw_path,
                    request.headers.raw,
                    body,
                    self.max_head,
                )
                try:
                    yield RunOn(exchange.head_steps(), connection, timeouts)
                except GeneratorExit:
                    raise
                except BaseException as exc:  # failed or interrupted mid-exchange: unusable
                    yield Drop(connection)
                    if attempt == 0 and retryable(exc, reused, exchange):
                        continue
                    raise
                return connection, exchange
            raise AssertionError("unreachable: the second attempt returns or raises")
        except BaseException:
            self.slots.free()
            raise

    def _connection(
        self, origin: Origin, timeouts: dict[str, float | None], fresh: bool
    ) -> PoolSteps[tuple[C, bool]]:
        """A connection to ``origin``: the newest idle one still usable, else a new one;
        and whether it was reused."""
        while not fresh:
            with self._lock:
                connection, expired = self.idle.take(origin, time.monotonic())
            for old in expired:
                yield Drop(old)
            if connection is None:
                break
            if connection.stale():
                yield Drop(connection)
                continue
            return connection, True
        return (yield Connect(origin, timeouts.get("connect"))), False

    def release(self, origin: Origin, connection: C, reusable: bool) -> list[C]:
        """A response is done with: its slot is free, and its connection goes back idle
        if it can be reused and there is room. What is to be closed is returned."""
        self.slots.free()
        if not reusable or self.closed:
            return [connection]
        with self._lock:
            return self.idle.put(origin, connection, time.monotonic())

    def close(self) -> list[C]:
        """No more requests: the idle connections, to be closed."""
        self.closed = True
        with self._lock:
            return self.idle.clear()


SlotsT = TypeVar("SlotsT", bound=Slots[Any])


class PoolTransport(Generic[C, SlotsT]):
    """What both transports are made of besides their I/O: the pool of their connections,
    its slots (``slots_kind``: a semaphore for threads or for tasks), and what makes their
    TLS context (on the first https connection, then reused)."""

    slots_kind: type[SlotsT]

    def __init__(
        self, limits: httpx.Limits, tls: TLSSource | None = None, max_head: int = MAX_HEAD
    ) -> None:
        self._tls: TLSSource = functools.cache(tls if tls is not None else tls_source())
        self._slots = self.slots_kind(limits.max_connections)
        self._pool: Pool[C] = Pool(limits, max_head, self._slots)
