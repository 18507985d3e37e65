"""Each overlap case under each pruning level, as a table.

Expected results are range-streams 1.x's: its docs (``handle_overlap``: 0 replants a range
overlapped at its head and tail-marks one overlapped at its tail, 1 burns, 2 raises) and
its tests (a range overlapped "head to tail", i.e. lying inside the new one's... or the
new one inside it, is burnt under replant too: 1.x's edge-case tests count one range left
after adding [3, 7) to [0, 11)). 1.4.1 was run on every single-range case below and gave
these ranges, bytes and active range. Three kinds of row follow the 2.x rule instead
(docs/Migration.md): a strict stream refuses a range that covers a registered one (1.x's
docs say strict raises on any overlap; its code let a covering range through), and a new
range that overlaps two registered ones handles each (1.x handled one and left the other
reading bytes from the wrong offset).

Every row checks the unread ranges, the bytes each one reads (against the file), the
active range, and the requests sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import range_streams as rs

from ._support import DATA, URL, serve, windows

Pairs = list[tuple[int, int]]


@dataclass(frozen=True)
class Case:
    name: str
    initial: Pairs
    new: tuple[int, int]
    by_level: dict[int, Pairs | None]  # None: OverlapError, nothing changes
    read_first: int = 0  # bytes read from the last initial range before the new one
    rule: str = "1.x"
    active: dict[int, int] = field(default_factory=dict)  # start of the active range


def h(*levels: Pairs | None) -> dict[int, Pairs | None]:
    return dict(enumerate(levels))


CASES = [
    Case("disjoint", [(3, 7)], (8, 10), h(*[[(3, 7), (8, 10)]] * 3)),
    Case("adjacent after", [(3, 7)], (7, 9), h(*[[(3, 7), (7, 9)]] * 3)),
    Case("adjacent before", [(3, 7)], (1, 3), h(*[[(1, 3), (3, 7)]] * 3)),
    Case("head", [(3, 7)], (2, 5), h([(2, 5), (5, 7)], [(2, 5)], None)),
    Case("head, to the same end", [(3, 7)], (1, 7), h([(1, 7)], [(1, 7)], None)),
    Case("tail", [(3, 7)], (5, 9), h([(3, 5), (5, 9)], [(5, 9)], None)),
    Case("tail, from the same start", [(3, 7)], (3, 9), h([(3, 9)], [(3, 9)], None)),
    Case("inside", [(0, 11)], (3, 7), h([(3, 7)], [(3, 7)], None)),
    Case("inside, at the start", [(3, 7)], (3, 5), h([(3, 5)], [(3, 5)], None)),
    Case("inside, at the end", [(3, 7)], (5, 7), h([(5, 7)], [(5, 7)], None)),
    Case("the same range", [(3, 7)], (3, 7), h(*[[(3, 7)]] * 3)),
    Case("covers", [(3, 7)], (1, 9), h([(1, 9)], [(1, 9)], None), rule="2.x at level 2"),
    Case(
        "covers two",
        [(2, 4), (6, 9)],
        (0, 11),
        h([(0, 11)], [(0, 11)], None),
        rule="2.x at level 2",
    ),
    Case(
        "bridges two",
        [(2, 4), (6, 9)],
        (3, 7),
        h([(2, 3), (3, 7), (7, 9)], [(3, 7)], None),
        rule="2.x",
    ),
    Case(
        "the head of the second of two",
        [(0, 2), (4, 8)],
        (1, 6),
        h([(0, 1), (1, 6), (6, 8)], [(1, 6)], None),
        rule="2.x",
    ),
    Case(
        "only bytes already read",
        [(3, 7)],
        (3, 5),
        h(*[[(3, 5), (5, 7)]] * 3),
        read_first=2,
    ),
    Case(
        "the unread window exactly",
        [(3, 7)],
        (5, 7),
        h(*[[(5, 7)]] * 3),
        read_first=2,
        active={0: 3, 1: 3, 2: 3},
    ),
    Case(
        "the head of the unread window",
        [(3, 7)],
        (4, 6),
        h([(4, 6), (6, 7)], [(4, 6)], None),
        read_first=2,
    ),
]
ROWS = [(case, level) for case in CASES for level in (0, 1, 2)]


def _id(row: tuple[Case, int]) -> str:
    case, level = row
    return f"{case.name} @ {level}"


@pytest.mark.parametrize("row", ROWS, ids=[_id(r) for r in ROWS])
def test_overlap_table(row: tuple[Case, int]) -> None:
    case, level = row
    expected = case.by_level[level]
    server = serve()
    with server.client() as client:
        stream = rs.RangeStream(URL, client=client, pruning_level=level)
        for pair in case.initial:
            stream.add(pair)
        if case.read_first:
            assert stream.read(case.read_first) == DATA[3 : 3 + case.read_first]
        before, sent_before = windows(stream), len(server.log)
        if expected is None:
            with pytest.raises(rs.OverlapError, match="Range overlap not registered due to strict"):
                stream.add(case.new)
            assert isinstance(rs.OverlapError("x"), ValueError)  # what 1.x raised
            assert windows(stream) == before
            assert len(server.log) == sent_before  # refused before any request
            return
        stream.add(case.new)
        assert windows(stream) == expected
        # The new range is active; re-adding an unread range activates it again.
        assert stream.active_range_response.byte_range.start == case.active.get(level, case.new[0])
        for start, stop in expected:
            assert stream.ranges[start].read() == DATA[start:stop]
        # Each byte range was asked for once at most, and only the new range and what
        # replant re-requests go out after the initial ones.
        asked = server.ranges_sent[sent_before:]
        new_header = f"bytes={case.new[0]}-{case.new[1] - 1}"
        if case.new in [tuple(p) for p in before]:
            assert new_header not in asked  # an unread range already registered: reused
        else:
            assert asked[0] == new_header


def test_replant_requests_the_rest_only_when_read() -> None:
    """1.x re-requested a head-overlapped range at once; here it goes when first read,
    and asks for exactly the rest."""
    server = serve()
    with server.client() as client:
        stream = rs.RangeStream(URL, client=client, byte_range=(3, 7))
        stream.add((2, 5))
        assert server.ranges_sent == ["bytes=3-6", "bytes=2-4"]
        assert stream.ranges[5].read() == DATA[5:7]
        assert server.ranges_sent == ["bytes=3-6", "bytes=2-4", "bytes=5-6"]


def test_tail_mark_cuts_the_read_short_without_a_request() -> None:
    """1.x's ``test_overlapped_read``: [3, 7) then [5, 8) leaves [3, 5) reading 2 bytes."""
    server = serve()
    with server.client() as client:
        stream = rs.RangeStream(URL, client=client)
        stream.add((3, 7))
        stream.add((5, 8))
        assert stream.ranges[3].tail_mark == 2
        assert stream.ranges[3].read() == DATA[3:5]
        assert stream.ranges[5].read() == DATA[5:8]
        assert server.ranges_sent == ["bytes=3-6", "bytes=5-7"]


def test_ranges_iterate_in_registration_order() -> None:
    """1.x's RangeDicts iterated in the order ranges were registered; list_ranges sorts."""
    with serve().client() as client:
        stream = rs.RangeStream(URL, client=client)
        for pair in [(8, 10), (0, 2), (4, 6)]:
            stream.add(pair)
        order = [key[0].ranges()[0].start for key, _ in stream.ranges.items()]
        assert order == [8, 0, 4]
        assert [key[0].ranges()[0].start for key, _ in stream._ranges.items()] == [8, 0, 4]
        assert windows(stream) == [(0, 2), (4, 6), (8, 10)]
