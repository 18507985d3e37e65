"""The registry of disjoint byte ranges and the overlap policies, without any I/O.

Each entry has a *key* (its place in the internal ``_ranges``; keys never overlap) and
a *window* (the part not yet read, which is what the external ``ranges`` shows and what
overlaps are judged on). A new range that overlaps windows is resolved by a policy:

::

    existing  [=======)            new range  (----)
    REPLANT   head overlap   (----[==)=====)  ->  burn, re-request [new.stop, old.stop)
              tail overlap   [=====(==)---)   ->  tail mark: old now ends at new.start
              inside         [==(----)===)    ->  burn (range-streams 1.x's rule)
              covered      (--[=======)--)    ->  burn (nothing would be left)
    BURN      any overlap                     ->  burn the existing range
    STRICT    any overlap                     ->  OverlapError

"Inside" includes a new range sharing the existing window's start or end: only a range
that crosses exactly one end of a window is cut down rather than burnt, which is what
range-streams 1.x did (its design notes said the upstream part of a range overlapped
inside would be kept; its code and tests burnt it, and 1.x users saw the latter). Each
overlapped range is judged on its own, so a new range crossing several is handled for
each of them. The planner returns actions; the stream applies them (closing responses,
sending the re-request lazily). Lookups use a sorted list with ``bisect``; a python-ranges
``RangeDict`` is built only when someone asks for one, since it is a linked list whose
every ``add`` is O(n) (range-streams 1.x rebuilt one on every ``add``: quadratic).
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import OverlapError

__all__ = ["Burn", "Entry", "PruningLevel", "Registry", "Replant", "Trim", "plan_overlap"]

V = TypeVar("V")


class PruningLevel(enum.IntEnum):
    """Overlap policy; the ints 0, 1, 2 of range-streams 1.x stay accepted."""

    replant = 0
    burn = 1
    strict = 2

    @classmethod
    def coerce(cls, level: object) -> PruningLevel:
        """``level`` as a member: an int 0-2 or a member; anything else is refused here,
        where it is set, rather than misread later by the overlap planner."""
        if isinstance(level, bool) or not isinstance(level, int):
            raise TypeError(
                f"pruning_level must be an int (0, 1, 2) or a PruningLevel, not {level!r}"
            )
        try:
            return cls(level)
        except ValueError:
            raise ValueError(
                f"Pruning level must be 0, 1, or 2 (replant, burn, strict), not {level!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class Burn:
    key: int  # the entry's key start


@dataclass(frozen=True, slots=True)
class Trim:
    """The entry now ends at ``stop`` (a tail mark)."""

    key: int
    stop: int


@dataclass(frozen=True, slots=True)
class Replant:
    """Burn the entry and register a fresh range for ``[start, stop)``."""

    key: int
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class Rekey:
    """An entry's consumed head overlaps: move its key start to ``start``."""

    key: int
    start: int


Action = Burn | Trim | Replant | Rekey


@dataclass(slots=True)
class Entry(Generic[V]):
    key_start: int
    key_stop: int
    value: V


def plan_overlap(
    windows: list[tuple[int, int, int, int]], start: int, stop: int, level: PruningLevel
) -> list[Action]:
    """Actions that make room for ``[start, stop)``.

    ``windows`` holds ``(key_start, key_stop, window_start, window_stop)`` of each entry
    whose key intersects the new range; a window is the unread part of its key.
    """
    actions: list[Action] = []
    for key_start, _key_stop, w_start, w_stop in windows:
        if w_start >= w_stop or stop <= w_start or w_stop <= start:
            # Only bytes already read overlap: they are history, not a conflict.
            if w_start >= w_stop:
                actions.append(Burn(key_start))
            else:
                actions.append(Rekey(key_start, stop))
            continue
        if level == PruningLevel.strict:
            raise OverlapError(
                "Range overlap not registered due to strict pruning policy:"
                f" [{start}, {stop}) overlaps the registered range [{w_start}, {w_stop})"
            )
        covered = start <= w_start and w_stop <= stop
        inside = w_start <= start and stop <= w_stop
        if level == PruningLevel.burn or covered or inside:
            actions.append(Burn(key_start))
        elif start < w_start:
            actions.append(Replant(key_start, stop, w_stop))
        else:
            actions.append(Trim(key_start, start))
    return actions


class Registry(Generic[V]):
    """Disjoint keyed entries in key order."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._entries: list[Entry[V]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry[V]]:
        return iter(list(self._entries))

    def add(self, start: int, stop: int, value: V) -> Entry[V]:
        index = bisect.bisect_left(self._starts, start)
        entry = Entry(start, stop, value)
        self._starts.insert(index, start)
        self._entries.insert(index, entry)
        return entry

    def get(self, key_start: int) -> Entry[V]:
        index = bisect.bisect_left(self._starts, key_start)
        if index == len(self._starts) or self._starts[index] != key_start:
            raise KeyError(key_start)
        return self._entries[index]

    def remove(self, key_start: int) -> Entry[V]:
        index = bisect.bisect_left(self._starts, key_start)
        if index == len(self._starts) or self._starts[index] != key_start:
            raise KeyError(key_start)
        del self._starts[index]
        return self._entries.pop(index)

    def rekey(self, key_start: int, new_start: int) -> None:
        entry = self.remove(key_start)
        self.add(new_start, entry.key_stop, entry.value)

    def intersecting(self, start: int, stop: int) -> list[Entry[V]]:
        """Entries whose keys intersect ``[start, stop)``."""
        index = max(bisect.bisect_right(self._starts, start) - 1, 0)
        found = []
        while index < len(self._entries) and self._entries[index].key_start < stop:
            entry = self._entries[index]
            if entry.key_stop > start:
                found.append(entry)
            index += 1
        return found

    def containing(self, position: int) -> Entry[V] | None:
        index = bisect.bisect_right(self._starts, position) - 1
        if index >= 0 and position < self._entries[index].key_stop:
            return self._entries[index]
        return None
