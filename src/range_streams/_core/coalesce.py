"""Plan batch reads: which bytes to fetch, in how many requests, and how to cut them up.

Codecs ask for many small spans at once (index entries, headers of members). Fetching
each on its own costs a round trip apiece, so nearby spans are merged into one fetch
group when the bytes between them are cheaper than another range (``max_gap``), and the
groups are packed into as few multi-range requests as servers accept: servers cap the
number of ranges (Apache and nginx refuse or collapse long lists) and the size of a
header line, hence ``max_ranges`` and ``max_header_bytes``. Big groups are the
opposite case (``plan_fetches``): packed together they would all arrive over one
connection and be copied out of a multipart body, so each goes as a range request of
its own, concurrently, and one too big for a single connection's share of the batch
is cut into pieces fetched side by side.

The planner is pure: it never sees a socket, so the arithmetic is tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import IncompleteBodyError, InvalidRangeError
from .range_headers import range_header
from .spans import Span

__all__ = ["Group", "Piece", "batch_requests", "coalesce", "plan_fetches", "slice_results"]

_PREFIX_BYTES = len("bytes=")


@dataclass(frozen=True, slots=True)
class Group:
    """One contiguous fetch ``[start, stop)`` serving the input spans at ``indices``."""

    start: int
    stop: int
    indices: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Piece:
    """Bytes ``[start, stop)`` of the big group at ``group`` (an index into the groups),
    fetched as a range request of its own."""

    group: int
    start: int
    stop: int


def plan_fetches(
    groups: Sequence[Group], single_from: int, min_piece: int, concurrency: int
) -> tuple[list[int], list[Piece]]:
    """Which groups go into multi-range requests, and the pieces the others are fetched in.

    Groups of ``single_from`` bytes or more are fetched on their own: one request per
    piece, run ``concurrency`` at a time. Their pieces share the batch's big bytes
    evenly among ``concurrency`` connections, at least ``min_piece`` each: 12 column
    chunks of 2 MB are 12 requests, one span of 100 MB is 11 pieces of 9.1 MB at
    concurrency 16 and ``min_piece`` 8 MiB. Returns the indices of the small groups and
    the pieces, each group's in order.
    """
    for name, value in (
        ("single_from", single_from),
        ("min_piece", min_piece),
        ("concurrency", concurrency),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRangeError(f"{name} must be a positive int, not {value!r}")
    small: list[int] = []
    big: list[int] = []
    for index, group in enumerate(groups):
        (big if group.stop - group.start >= single_from else small).append(index)
    big_bytes = sum(groups[i].stop - groups[i].start for i in big)
    share = max(min_piece, -(-big_bytes // concurrency))
    pieces: list[Piece] = []
    for index in big:
        group = groups[index]
        length = group.stop - group.start
        count = max(1, length // share)  # pieces of at least `share`, as even as can be
        for k in range(count):
            pieces.append(
                Piece(
                    index,
                    group.start + length * k // count,
                    group.start + length * (k + 1) // count,
                )
            )
    return small, pieces


def _validated(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    checked = []
    for span in spans:
        if not isinstance(span, (tuple, list)) or len(span) != 2:
            raise InvalidRangeError(f"a span is a (start, stop) pair, not {span!r}")
        start, stop = span
        # bool is an int subclass, and True as an offset is always a mistake.
        if not (type(start) is int and type(stop) is int) and any(
            isinstance(end, bool) or not isinstance(end, int) for end in (start, stop)
        ):
            raise InvalidRangeError(f"span ({start!r}, {stop!r}) must be a pair of ints")
        if not 0 <= start <= stop:
            raise InvalidRangeError(f"span [{start}, {stop}) is negative or inverted")
        checked.append((start, stop))
    return checked


def coalesce(spans: Sequence[tuple[int, int]], max_gap: int) -> list[Group]:
    """Merge spans into fetch groups, sorted by start.

    Spans that overlap, touch, or leave a gap of at most ``max_gap`` bytes share a group;
    the gap's bytes are fetched and thrown away. Empty spans join no group: they are
    served without a fetch.
    """
    checked = _validated(spans)
    if isinstance(max_gap, bool) or not isinstance(max_gap, int) or max_gap < 0:
        raise InvalidRangeError(f"max_gap must be a non-negative int, not {max_gap!r}")
    if len(checked) == 1:  # fetch_many's usual item: nothing to sort or merge
        start, stop = checked[0]
        return [Group(start, stop, (0,))] if start < stop else []
    order = sorted(
        (i for i, (start, stop) in enumerate(checked) if start < stop), key=lambda i: checked[i]
    )
    groups: list[Group] = []
    members: list[int] = []
    group_start = group_stop = 0
    for i in order:
        start, stop = checked[i]
        if members and start - group_stop > max_gap:
            groups.append(Group(group_start, group_stop, tuple(sorted(members))))
            members = []
        if not members:
            group_start, group_stop = start, stop
        group_stop = max(group_stop, stop)
        members.append(i)
    if members:
        groups.append(Group(group_start, group_stop, tuple(sorted(members))))
    return groups


def batch_requests(
    groups: Sequence[Group], max_ranges: int = 50, max_header_bytes: int = 4000
) -> list[list[Group]]:
    """Pack groups, in order, into requests whose Range header fits both limits.

    ``max_header_bytes`` bounds the header value, ``range_header(...)``, e.g.
    ``bytes=0-9,20-29``. A batch of one group is a plain single-range request.
    """
    if max_ranges < 1:
        raise InvalidRangeError(f"max_ranges must be at least 1, not {max_ranges}")
    batches: list[list[Group]] = []
    current: list[Group] = []
    header_bytes = _PREFIX_BYTES
    for group in groups:
        spec_bytes = len(range_header(Span(group.start, group.stop))) - _PREFIX_BYTES
        if _PREFIX_BYTES + spec_bytes > max_header_bytes:
            raise InvalidRangeError(
                f"max_header_bytes={max_header_bytes} cannot fit even the range of {group}"
            )
        comma = 1 if current else 0
        if current and (
            len(current) >= max_ranges or header_bytes + comma + spec_bytes > max_header_bytes
        ):
            batches.append(current)
            current, header_bytes, comma = [], _PREFIX_BYTES, 0
        current.append(group)
        header_bytes += comma + spec_bytes
    if current:
        batches.append(current)
    return batches


def slice_results(
    spans: Sequence[tuple[int, int]], groups: Sequence[Group], group_bytes: Sequence[bytes]
) -> list[bytes]:
    """Each input span's bytes, in input order, cut from its group's fetched bytes.

    A span that is a whole group gets the group's bytes object itself, uncopied.
    Raises ``IncompleteBodyError`` if a group's bytes are not exactly its length, and
    ``InvalidRangeError`` if the groups do not fit the spans.
    """
    checked = _validated(spans)
    if len(groups) != len(group_bytes):
        raise InvalidRangeError(f"{len(groups)} groups but {len(group_bytes)} byte strings")
    if len(checked) == 1 and len(groups) == 1:
        group, data = groups[0], group_bytes[0]
        whole = (group.start, group.stop) == checked[0] and group.indices == (0,)
        if whole and len(data) == group.stop - group.start:  # the span is the group
            return [data]
    owner = _owners(len(checked), groups, group_bytes)
    return [_cut(i, checked[i], groups, group_bytes, owner) for i in range(len(checked))]


def _owners(count: int, groups: Sequence[Group], group_bytes: Sequence[bytes]) -> list[int]:
    """For each span index, the index of the group serving it (-1 for none)."""
    owner = [-1] * count
    for g, (group, data) in enumerate(zip(groups, group_bytes, strict=True)):
        if len(data) != group.stop - group.start:
            raise IncompleteBodyError(
                f"group [{group.start}, {group.stop}) got {len(data)} bytes",
                expected=group.stop - group.start,
                received=len(data),
            )
        for i in group.indices:
            if not 0 <= i < count:
                raise InvalidRangeError(f"{group} serves span {i}, but there are {count}")
            owner[i] = g
    return owner


def _cut(
    i: int,
    span: tuple[int, int],
    groups: Sequence[Group],
    group_bytes: Sequence[bytes],
    owner: Sequence[int],
) -> bytes:
    start, stop = span
    if start == stop:
        return b""
    if owner[i] < 0:
        raise InvalidRangeError(f"span {i} [{start}, {stop}) is served by no group")
    group = groups[owner[i]]
    if not group.start <= start <= stop <= group.stop:
        raise InvalidRangeError(f"span {i} [{start}, {stop}) is not inside {group}")
    return group_bytes[owner[i]][start - group.start : stop - group.start]
