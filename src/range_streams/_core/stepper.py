"""Stepping a generator of operations, for loops that perform them sync or async.

The library writes its I/O logic as generators that yield operations and receive their
outcomes (the flows, our transport's connection pool, ``Exchange``'s socket steps); an
interpreter performs each operation, sync or async. ``Stepper`` is the part that does
not depend on how: send the last result in, or throw the last error in at the ``yield``,
and take the next operation, or the generator's value once it returns. The transports'
loops over the pool's steps (``WireTransport._perform``, ``AsyncWireTransport._perform``)
use it; the drivers and the transports' loops over an exchange's socket steps (``_drive``,
``_adrive``) step their generators inline.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Generic, TypeVar

__all__ = ["Stepper"]

Y = TypeVar("Y")
T = TypeVar("T")


class Stepper(Generic[Y, T]):
    """``next()`` is the generator's next operation, or None once it has returned (its
    value then in ``value``); set ``result`` or ``error`` to the outcome in between."""

    __slots__ = ("error", "generator", "result", "value")

    def __init__(self, generator: Generator[Y, Any, T]) -> None:
        self.generator = generator
        self.result: Any = None
        self.error: BaseException | None = None
        self.value: T | None = None

    def next(self) -> Y | None:
        error, result = self.error, self.result
        self.error = self.result = None
        try:
            if error is not None:
                return self.generator.throw(error)
            return self.generator.send(result)
        except StopIteration as stop:
            self.value = stop.value
            return None

    def returned(self) -> T:
        """The generator's value (once ``next`` has returned None)."""
        return self.value  # type: ignore[return-value]  # set by next() before this is asked
