"""The batch-read planner: grouping, packing into requests, and cutting results back up."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from range_streams._core.coalesce import (
    Group,
    batch_requests,
    coalesce,
    plan_fetches,
    slice_results,
)
from range_streams._core.errors import IncompleteBodyError, InvalidRangeError
from range_streams._core.range_headers import range_header
from range_streams._core.spans import Span

FAST = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize(
    ("spans", "max_gap", "groups"),
    [
        ([], 0, []),
        ([(0, 10)], 0, [Group(0, 10, (0,))]),
        ([(0, 10), (10, 20)], 0, [Group(0, 20, (0, 1))]),  # touching spans always merge
        ([(0, 10), (11, 20)], 0, [Group(0, 10, (0,)), Group(11, 20, (1,))]),
        ([(0, 10), (11, 20)], 1, [Group(0, 20, (0, 1))]),
        ([(30, 40), (0, 10), (12, 15)], 2, [Group(0, 15, (1, 2)), Group(30, 40, (0,))]),
        ([(0, 100), (10, 20), (50, 60)], 0, [Group(0, 100, (0, 1, 2))]),  # nested
        ([(5, 10), (5, 10)], 0, [Group(5, 10, (0, 1))]),  # duplicates share the fetch
        ([(5, 5), (0, 10), (99, 99)], 1000, [Group(0, 10, (1,))]),  # empty spans: no fetch
        ([(3, 3)], 0, []),
    ],
)
def test_coalesce(spans: list[tuple[int, int]], max_gap: int, groups: list[Group]) -> None:
    assert coalesce(spans, max_gap) == groups


@pytest.mark.parametrize(
    "spans", [[(-1, 5)], [(5, 4)], [(0, 1), (2, -3)], [(0.0, 1)], [(True, 2)], [(1, 2, 3)]]
)
def test_coalesce_rejects_bad_spans(spans: list[tuple[int, int]]) -> None:
    with pytest.raises(InvalidRangeError):
        coalesce(spans, 0)


@pytest.mark.parametrize("max_gap", [-1, 1.5, True])
def test_coalesce_rejects_bad_gap(max_gap: int) -> None:
    with pytest.raises(InvalidRangeError):
        coalesce([(0, 1)], max_gap)


def test_batch_requests_by_count() -> None:
    groups = [Group(i * 10, i * 10 + 5, (i,)) for i in range(7)]
    batches = batch_requests(groups, max_ranges=3)
    assert batches == [groups[0:3], groups[3:6], groups[6:7]]


def test_batch_requests_by_header_size() -> None:
    groups = [Group(1000, 2000, (0,)), Group(3000, 4000, (1,)), Group(5000, 6000, (2,))]
    # "bytes=1000-1999,3000-3999" is 25 bytes; adding ",5000-5999" makes 35.
    assert len(range_header([Span(1000, 2000), Span(3000, 4000)])) == 25
    assert batch_requests(groups, max_header_bytes=25) == [groups[0:2], groups[2:3]]
    assert batch_requests(groups, max_header_bytes=34) == [groups[0:2], groups[2:3]]
    assert batch_requests(groups, max_header_bytes=35) == [groups]
    assert batch_requests(groups, max_header_bytes=24) == [[g] for g in groups]


def test_batch_requests_edge_cases() -> None:
    assert batch_requests([]) == []
    with pytest.raises(InvalidRangeError, match="max_ranges"):
        batch_requests([Group(0, 1, (0,))], max_ranges=0)
    with pytest.raises(InvalidRangeError, match="max_header_bytes"):
        batch_requests([Group(0, 10, (0,))], max_header_bytes=8)  # "bytes=0-9" is 9 bytes
    assert batch_requests([Group(0, 10, (0,))], max_header_bytes=9) == [[Group(0, 10, (0,))]]


def test_slice_results() -> None:
    data = bytes(range(100))
    spans = [(50, 60), (0, 5), (3, 8), (7, 7), (52, 55)]
    groups = coalesce(spans, 0)
    assert groups == [Group(0, 8, (1, 2)), Group(50, 60, (0, 4))]
    fetched = [data[g.start : g.stop] for g in groups]
    results = slice_results(spans, groups, fetched)
    assert results == [data[start:stop] for start, stop in spans]
    assert results[0] is fetched[1]  # a span that is a whole group is not copied


def test_slice_results_errors() -> None:
    spans = [(0, 5), (10, 15)]
    groups = coalesce(spans, 0)
    with pytest.raises(InvalidRangeError, match="groups"):
        slice_results(spans, groups, [b"12345"])
    with pytest.raises(IncompleteBodyError) as info:
        slice_results(spans, groups, [b"12345", b"123"])
    assert (info.value.expected, info.value.received) == (5, 3)
    with pytest.raises(InvalidRangeError, match="no group"):
        slice_results(spans, groups[:1], [b"12345"])
    with pytest.raises(InvalidRangeError, match="not inside"):
        slice_results([(0, 5), (10, 16)], groups, [b"12345", b"12345"])
    with pytest.raises(InvalidRangeError, match="there are 1"):
        slice_results([(0, 5)], groups, [b"12345", b"12345"])
    with pytest.raises(InvalidRangeError):
        slice_results([(5, 0)], [], [])
    # One span, one group (fetch_many's usual item) is checked the same way.
    with pytest.raises(IncompleteBodyError):
        slice_results([(0, 5)], [Group(0, 5, (0,))], [b"123"])
    with pytest.raises(InvalidRangeError, match="not inside"):
        slice_results([(0, 6)], [Group(0, 5, (0,))], [b"12345"])
    with pytest.raises(InvalidRangeError, match="must be a pair of ints"):
        slice_results([(0, 5.0)], [Group(0, 5, (0,))], [b"12345"])  # type: ignore[list-item]
    whole = b"12345"
    assert slice_results([(0, 5)], [Group(0, 5, (0,))], [whole])[0] is whole


@st.composite
def span_lists(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int]]]:
    data = draw(st.binary(max_size=2000))
    spans = []
    for _ in range(draw(st.integers(0, 40))):
        start = draw(st.integers(0, len(data)))
        spans.append((start, draw(st.integers(start, min(len(data), start + 100)))))
    return data, spans


@FAST
@given(
    span_lists(),
    st.integers(0, 300),
    st.integers(1, 8),
    st.integers(20, 120),
)
def test_plan_round_trips(
    sample: tuple[bytes, list[tuple[int, int]]],
    max_gap: int,
    max_ranges: int,
    max_header_bytes: int,
) -> None:
    data, spans = sample
    groups = coalesce(spans, max_gap)
    # Groups are sorted, disjoint, further apart than max_gap, and serve each span once.
    for before, after in itertools.pairwise(groups):
        assert after.start - before.stop > max_gap
    served = sorted(i for g in groups for i in g.indices)
    assert served == [i for i, (start, stop) in enumerate(spans) if start < stop]

    batches = batch_requests(groups, max_ranges=max_ranges, max_header_bytes=max_header_bytes)
    assert [g for batch in batches for g in batch] == groups
    for batch in batches:
        assert 1 <= len(batch) <= max_ranges
        header = range_header([Span(g.start, g.stop) for g in batch])
        assert len(header) <= max_header_bytes
        assert ", " not in header

    fetched = [data[g.start : g.stop] for g in groups]
    assert slice_results(spans, groups, fetched) == [data[start:stop] for start, stop in spans]


MIB = 1 << 20


@pytest.mark.parametrize(
    ("sizes", "small", "pieces"),
    [
        ([100, 200], [0, 1], []),
        # 12 parquet column chunks of 2.2 MB: a request each, none split.
        (
            [2_271_805] * 12,
            [],
            [(i, i * 10_000_000, i * 10_000_000 + 2_271_805) for i in range(12)],
        ),
        # One 100 MB span: 11 pieces of at least 8 MiB (min_piece) across connections.
        (
            [100_000_000],
            [],
            [(0, 100_000_000 * k // 11, 100_000_000 * (k + 1) // 11) for k in range(11)],
        ),
        # A big span beside small ones: only it goes alone; 9 MiB is one piece.
        ([4096, 9 * MIB, 100], [0, 2], [(1, 10_000_000, 10_000_000 + 9 * MIB)]),
        # Just under the line: a part of a multi-range request.
        ([MIB - 1], [0], []),
        # 20 spans of 10 MB: their share per connection (12.5 MB) is more than each.
        (
            [10_000_000] * 20,
            [],
            [(i, i * 10_000_000, i * 10_000_000 + 10_000_000) for i in range(20)],
        ),
    ],
)
def test_plan_fetches(
    sizes: list[int], small: list[int], pieces: list[tuple[int, int, int]]
) -> None:
    groups = [Group(i * 10_000_000, i * 10_000_000 + n, (i,)) for i, n in enumerate(sizes)]
    if sizes == [100_000_000]:
        groups = [Group(0, 100_000_000, (0,))]
    got_small, got_pieces = plan_fetches(groups, MIB, 8 * MIB, 16)
    assert got_small == small
    assert [(p.group, p.start, p.stop) for p in got_pieces] == pieces


@FAST
@given(
    st.lists(st.integers(1, 64 * MIB), max_size=30),
    st.integers(1, 4 * MIB),
    st.integers(1, 16 * MIB),
    st.integers(1, 64),
)
def test_plan_fetches_covers_each_big_group_exactly(
    sizes: list[int], single_from: int, min_piece: int, concurrency: int
) -> None:
    groups, at = [], 0
    for i, size in enumerate(sizes):
        groups.append(Group(at, at + size, (i,)))
        at += size + 1
    small, pieces = plan_fetches(groups, single_from, min_piece, concurrency)
    assert small == [i for i, g in enumerate(groups) if g.stop - g.start < single_from]
    for index, group in enumerate(groups):
        mine = [(p.start, p.stop) for p in pieces if p.group == index]
        if index in small:
            assert mine == []
            continue
        assert mine[0][0] == group.start and mine[-1][1] == group.stop
        assert all(a[1] == b[0] for a, b in itertools.pairwise(mine))  # contiguous, in order
        assert len(mine) == 1 or min(b - a for a, b in mine) >= min_piece


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_plan_fetches_rejects_bad_limits(bad: int) -> None:
    with pytest.raises(InvalidRangeError):
        plan_fetches([Group(0, 10, (0,))], bad, 1, 1)
