"""range-streams 1.x's helper functions on ``ranges.Range`` and ``RangeDict``, pure.

They are what 1.x's ``range_utils``, ``http_utils`` and ``overlaps`` modules exported,
with 1.x's meanings, including the ones 2.x itself does not use: ``range_len`` is one
less than the number of positions (1.x measured ``end - start`` between the inclusive
termini), and ``range_header`` asks for ``bytes=0-`` for any empty range. The public
modules of those names re-export them; 2.x code uses ``spans``/``range_headers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ranges import Range, RangeDict

__all__ = [
    "byte_range_from_range_obj",
    "detect_header_value",
    "get_range_containing",
    "legacy_range_header",
    "most_recent_range",
    "overlap_whence",
    "range_len",
    "range_max",
    "range_min",
    "range_span",
    "range_termini",
    "ranges_in_reg_order",
    "response_ranges_in_reg_order",
    "validate_range",
]


class _HasRanges(Protocol):
    @property
    def _ranges(self) -> RangeDict: ...

    @property
    def ranges(self) -> RangeDict: ...


def range_termini(rng: Range) -> tuple[int, int]:
    """The inclusive first and last positions of a non-empty range."""
    if rng.isempty():
        raise ValueError("Empty range has no termini")
    start = rng.start if rng.include_start else rng.start + 1
    end = rng.end if rng.include_end else rng.end - 1
    return start, end


def range_len(rng: Range) -> int:
    """1.x's length: last terminus minus first (``Range(0, 3)`` gives 2)."""
    first, last = range_termini(rng)
    return int(last - first)


def range_min(rng: Range) -> int:
    if rng.isempty():
        raise ValueError("Empty range has no minimum")
    return range_termini(rng)[0]


def range_max(rng: Range) -> int:
    if rng.isempty():
        raise ValueError("Empty range has no maximum")
    return range_termini(rng)[1]


def validate_range(byte_range: Range | tuple[int, int], allow_empty: bool = True) -> Range:
    """``byte_range`` as a half-open ``Range``; a tuple must be two ints."""
    complaint = (
        f"{byte_range=} must be a Range from the python-ranges package or an integer 2-tuple"
    )
    if isinstance(byte_range, tuple):
        if len(byte_range) != 2 or not all(isinstance(x, int) for x in byte_range):
            raise TypeError(complaint)
        byte_range = Range(*byte_range)
    elif not isinstance(byte_range, Range):
        raise TypeError(complaint)
    elif not all(isinstance(x, int) for x in (byte_range.start, byte_range.end)):
        raise TypeError("Ranges must be discrete: use integers for start and end")
    if not allow_empty and byte_range.isempty():
        raise ValueError("Range is empty")
    return byte_range


def range_span(ranges: list[Range]) -> Range:
    """From the lowest start to the highest end of the first and last of ``ranges``."""
    first, last = range_termini(ranges[0]), range_termini(ranges[-1])
    if first > last:
        first, last = last, first
    return Range(first[0], last[1] + 1)


def ranges_in_reg_order(ranges: RangeDict) -> list[Range]:
    """Each key's range, in the RangeDict's order (which is ascending)."""
    return [key[0].ranges()[0] for key, _ in ranges.items()]


def response_ranges_in_reg_order(ranges: RangeDict) -> list[Range]:
    """Each value's requested range (``value.request.range``), in the same order."""
    return [value.request.range for _, value in ranges.items()]


def most_recent_range(stream: _HasRanges, internal: bool = True) -> Range | None:
    """The last range of the stream's internal (or external) RangeDict, or None."""
    if stream._ranges.isempty():
        return None
    return ranges_in_reg_order(stream._ranges if internal else stream.ranges)[-1]


def byte_range_from_range_obj(rng: Range) -> str:
    """``"start-end"`` (inclusive) for a Range header; ``"0-"`` for an empty range."""
    if rng.isempty():
        return "0-"
    start, end = range_termini(rng)
    return f"{start}-{end}"


def legacy_range_header(rng: Range) -> dict[str, str]:
    """1.x's ``range_header``: ``{"range": "bytes=start-end"}``."""
    return {"range": f"bytes={byte_range_from_range_obj(rng)}"}


def detect_header_value(headers: Mapping[str, Any], key: str, source: str = "Response") -> Any:
    """The header's value under its title, lower or capitalised spelling; KeyError if none."""
    for variant in (key.title(), key.lower(), key.capitalize()):
        if variant in headers:
            return headers.get(variant)
    raise KeyError(f"{source} was missing '{key}' header")


def get_range_containing(rng_dict: RangeDict, position: int) -> Range:
    """The key range of ``rng_dict`` that contains ``position``; ValueError if none."""
    for key, _ in rng_dict.items():
        if position in key[0]:
            found: Range = key[0].ranges()[0]
            return found
    raise ValueError(f"No range containing position {position} in {rng_dict=}")


def overlap_whence(rng_dict: RangeDict, rng: Range) -> int | None:
    """Where ``rng`` overlaps a key of ``rng_dict``: 0 at a key's head (its last
    position is in one), 1 inside one, 2 at a key's tail (its first position is in
    one), None if neither terminus is in any key (the ``io.SEEK_*`` numbering). An
    empty ``rng`` has no termini: ValueError."""
    if rng in rng_dict:
        return 1
    first, last = range_termini(rng)
    if first in rng_dict:
        return 2
    if last in rng_dict:
        return 0
    return None
