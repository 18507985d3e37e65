"""The commands a flow yields, and the type of a flow.

A *flow* is a generator that yields commands and receives their results, the way httpx's
``Auth.auth_flow`` yields requests and receives responses. The same flow runs under the
sync driver and the async one (``_runtime.drivers``); no flow touches a socket. An error
raised by a command is thrown back into the flow at its ``yield``, so a flow can retry.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

__all__ = [
    "Close",
    "Command",
    "Discard",
    "Flow",
    "Gather",
    "Join",
    "Receive",
    "ReceiveInto",
    "Send",
    "Sleep",
    "Spawn",
    "Spawned",
    "Wire",
]

T = TypeVar("T")


class Wire(Protocol):
    """An open response, as a flow holds it: its status and headers are in; its body is
    read with ``Receive``/``ReceiveInto`` and it is let go with ``Close``. The backend
    that made it (``_runtime/backends``) is what reads and closes it."""

    @property
    def response(self) -> httpx.Response:
        """The response (status, headers, and the request it answers)."""
        ...

    @property
    def fields(self) -> dict[str, str]:
        """The headers as lowercased names to values, repeated names joined."""
        ...

    @property
    def waited(self) -> float:
        """Seconds from sending the request to the response's head."""
        ...

    @property
    def closed(self) -> bool:
        """Whether it has been closed (by ``Close``, or by the driver on interruption)."""
        ...


@dataclass(frozen=True, slots=True)
class Send:
    """Send a request and return a ``Wire`` once the headers are in (body not read).

    ``strip``: header names (lowercased) the request must not carry, from the client's
    defaults either, and then no client ``auth`` either: a request to an origin the
    credentials were not given for (the flow decides, ``origins``; the driver obeys).
    """

    method: str
    url: str
    headers: dict[str, str]
    chunk_size: int | None = None  # re-chunk the body (range-streams 1.x's chunk_size)
    strip: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Receive:
    """At most ``size`` bytes of a wire's body (0: as many as the wire has at hand, up to
    the driver's cap); ``b""`` at its end."""

    wire: Wire
    size: int = 0


@dataclass(frozen=True, slots=True)
class ReceiveInto:
    """At most ``len(view)`` body bytes into ``view``: their count, 0 at the end. Our own
    transport reads a counted body straight from the socket into it."""

    wire: Wire
    view: memoryview


@dataclass(frozen=True, slots=True)
class Close:
    wire: Wire


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Gather:
    """Run independent flows concurrently (at most ``limit`` at once); their results, in
    order. The first error is raised once the others have finished."""

    flows: tuple[Generator[Any, Any, Any], ...]
    limit: int


class Spawned:
    """A flow started by ``Spawn``: the driver's job for it, and the wires it opened
    (which whoever joins it takes over, and which ``Discard`` closes)."""

    __slots__ = ("flow", "job", "opened")

    def __init__(self, flow: Generator[Any, Any, Any]) -> None:
        self.flow = flow
        self.job: Any = None  # a Future (sync), a Task (asyncio) or None (run when joined)
        self.opened: list[Any] = []  # the driver's wires


@dataclass(frozen=True, slots=True)
class Spawn:
    """Start ``flow`` now and carry on: a request kept in flight ahead of the reader.
    Returns a ``Spawned``, which must be either joined or discarded."""

    flow: Generator[Any, Any, Any]


@dataclass(frozen=True, slots=True)
class Join:
    """Wait for a spawned flow: its result, or its exception raised here."""

    spawned: Spawned


@dataclass(frozen=True, slots=True)
class Discard:
    """A spawned flow's result is not wanted: stop it, close what it opened. ``wait``:
    only return once it has stopped (on close: nothing runs on after it)."""

    spawned: Spawned
    wait: bool = False


Command = Send | Receive | ReceiveInto | Close | Sleep | Gather | Spawn | Join | Discard
Flow = Generator[Command, Any, T]
