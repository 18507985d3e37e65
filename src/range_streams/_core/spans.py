"""Pure range arithmetic: what the user asked for, and what that means in absolute bytes.

Users give ranges as ``ranges.Range`` objects or ``(start, stop)`` tuples, half-open like
Python slices. Negative numbers count from the end of the file. Two spellings reach the
end of the file: a stop of ``None`` and, as range-streams 1.x had it, a stop of ``0``
after a negative start (``(-22, 0)`` is the last 22 bytes, never the empty slice).

A request is described by a ``Span``: ``Span(start, stop)`` with ``stop=None`` for "to
the end". A negative ``start`` with ``stop=None`` is a suffix request (``bytes=-N``),
the one kind of request that can be sent before the file's length is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ranges import Range

from .errors import InvalidRangeError

__all__ = ["Span", "as_range", "coerce_span", "resolve_span"]


@dataclass(frozen=True, slots=True)
class Span:
    """A requested byte span, half-open; ``stop=None`` means "to the end of the file"."""

    start: int
    stop: int | None

    @property
    def is_suffix(self) -> bool:
        return self.start < 0 and self.stop is None

    @property
    def is_absolute(self) -> bool:
        """Both ends are known offsets from the start of the file."""
        return self.start >= 0 and self.stop is not None and self.stop >= 0

    @property
    def needs_length(self) -> bool:
        """Whether the span can only be sent once the total length is known."""
        return (self.stop is not None and self.stop < 0) or (
            self.start < 0 and self.stop is not None
        )

    def __len__(self) -> int:
        if not self.is_absolute:
            raise InvalidRangeError(f"the length of {self} depends on the file's length")
        assert self.stop is not None
        return self.stop - self.start


def _as_int(value: Any, what: str) -> int:
    # bool is an int subclass; True as an offset is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRangeError(f"{what} must be an int, not {type(value).__name__} {value!r}")
    return value


def coerce_span(byte_range: Any) -> Span:
    """Turn a ``Range``, a 2-tuple/list or a ``Span`` into a validated ``Span``."""
    if isinstance(byte_range, Span):
        return byte_range
    if isinstance(byte_range, Range):
        if not (byte_range.include_start and not byte_range.include_end):
            raise InvalidRangeError(f"{byte_range} must be half-open, like [start, stop)")
        start_value, stop_value = byte_range.start, byte_range.end
        if stop_value == float("inf"):
            stop_value = None
    elif isinstance(byte_range, (tuple, list)) and len(byte_range) == 2:
        start_value, stop_value = byte_range
    else:
        raise InvalidRangeError(
            f"a byte range is a ranges.Range or a (start, stop) tuple, not {byte_range!r}"
        )
    start = _as_int(start_value, "range start")
    stop = None if stop_value is None else _as_int(stop_value, "range stop")
    if start < 0 and stop == 0:
        stop = None  # range-streams 1.x: (-n, 0) is the last n bytes
    if stop is not None and (start >= 0) == (stop >= 0) and start > stop:
        raise InvalidRangeError(f"range start {start} is after its stop {stop}")
    if start >= 0 and stop is not None and stop < 0:
        pass  # (10, -5): valid once the length is known, checked in resolve_span
    return Span(start, stop)


def resolve_span(span: Span, total: int) -> tuple[int, int]:
    """Absolute ``[start, stop)`` of ``span`` in a file of ``total`` bytes.

    Negative ends resolve like slice bounds (a suffix longer than the file is the whole
    file, as in HTTP). A span reaching past the end is an error, not a silent clip: the
    caller asked for bytes that do not exist.
    """
    start = span.start if span.start >= 0 else max(total + span.start, 0)
    if span.stop is None:
        stop = total
    elif span.stop < 0:
        stop = total + span.stop
        if stop < 0:
            raise InvalidRangeError(f"{span} ends before the start of a {total}-byte file")
    else:
        stop = span.stop
    if start > stop:
        raise InvalidRangeError(f"{span} is empty or inverted in a {total}-byte file")
    if stop > total:
        raise InvalidRangeError(f"{span} reaches past the end of a {total}-byte file")
    return start, stop


def as_range(start: int, stop: int) -> Range:
    return Range(start, stop)
