"""Pure tables: range arithmetic, header building and parsing, overlap planning."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ranges import Range

from range_streams import InvalidRangeError, OverlapError
from range_streams._core.errors import ContentRangeError, RangeStreamError
from range_streams._core.range_headers import (
    ContentRange,
    Validators,
    header_map,
    parse_content_range,
    range_header,
)
from range_streams._core.registry import (
    Burn,
    PruningLevel,
    Registry,
    Rekey,
    Replant,
    Trim,
    plan_overlap,
)
from range_streams._core.spans import Span, coerce_span, resolve_span
from range_streams._flows.body import History


@pytest.mark.parametrize(
    ("given_", "span"),
    [
        ((0, 10), Span(0, 10)),
        (Range(5, 9), Span(5, 9)),
        ([3, 3], Span(3, 3)),
        ((-22, None), Span(-22, None)),
        ((-10, 0), Span(-10, None)),  # 1.x: (-n, 0) is the last n bytes
        ((-10, -2), Span(-10, -2)),
        ((10, -5), Span(10, -5)),
        ((7, None), Span(7, None)),
        (Range(7, float("inf")), Span(7, None)),
    ],
)
def test_coerce_span(given_: object, span: Span) -> None:
    assert coerce_span(given_) == span


@pytest.mark.parametrize(
    "bad",
    [(1.0, 2), (0, 2.5), (True, 3), (5, 3), (-2, -5), "0-10", (1, 2, 3), None, Range("(0, 10]")],
)
def test_coerce_span_rejects(bad: object) -> None:
    with pytest.raises(InvalidRangeError):
        coerce_span(bad)


@pytest.mark.parametrize(
    ("span", "total", "resolved"),
    [
        (Span(0, 10), 100, (0, 10)),
        (Span(-10, None), 100, (90, 100)),
        (Span(-200, None), 100, (0, 100)),  # a suffix longer than the file: all of it
        (Span(-10, -2), 100, (90, 98)),
        (Span(10, -5), 100, (10, 95)),
        (Span(5, None), 100, (5, 100)),
        (Span(100, 100), 100, (100, 100)),
        (Span(-5, None), 0, (0, 0)),
    ],
)
def test_resolve_span(span: Span, total: int, resolved: tuple[int, int]) -> None:
    assert resolve_span(span, total) == resolved


@pytest.mark.parametrize(
    ("span", "total"),
    [(Span(0, 101), 100), (Span(101, 102), 100), (Span(10, -95), 100), (Span(0, -101), 100)],
)
def test_resolve_span_rejects(span: Span, total: int) -> None:
    with pytest.raises(InvalidRangeError):
        resolve_span(span, total)


@pytest.mark.parametrize(
    ("spans", "header"),
    [
        (Span(0, 1), "bytes=0-0"),
        (Span(0, 100), "bytes=0-99"),
        (Span(-22, None), "bytes=-22"),
        (Span(50, None), "bytes=50-"),
        ([Span(0, 10), Span(20, 30)], "bytes=0-9,20-29"),
    ],
)
def test_range_header(spans: Span | list[Span], header: str) -> None:
    assert range_header(spans) == header


@pytest.mark.parametrize("span", [Span(5, 5), Span(10, -2), Span(-3, -1)])
def test_range_header_rejects_unsendable(span: Span) -> None:
    with pytest.raises(InvalidRangeError):
        range_header(span)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("bytes 0-9/100", ContentRange(0, 10, 100)),
        ("BYTES 0-9/100", ContentRange(0, 10, 100)),
        ("bytes  90-99 / 100", ContentRange(90, 100, 100)),
        ("bytes 0-9/*", ContentRange(0, 10, None)),
        ("bytes */100", ContentRange(None, None, 100)),
        ("bytes */0", ContentRange(None, None, 0)),
    ],
)
def test_parse_content_range(value: str, parsed: ContentRange) -> None:
    assert parse_content_range(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "",
        "bytes",
        "bytes 9-0/100",
        "bytes 0-100/100",
        "items 0-9/100",
        "bytes 0-9",
        "bytes -1-9/100",
        "bytes 0-9/1" + "0" * 40,
        "bytes */*",
        "bytes 0-9/100 junk",
    ],
)
def test_parse_content_range_rejects(value: str) -> None:
    with pytest.raises(ContentRangeError):
        parse_content_range(value)


@given(st.integers(0, 2**62), st.integers(1, 2**20), st.integers(0, 2**20))
def test_header_round_trip(start: int, length: int, tail: int) -> None:
    """What range_header asks for, parse_content_range reads back (as a server echoes it)."""
    header = range_header(Span(start, start + length))
    first, last = header.removeprefix("bytes=").split("-")
    total = start + length + tail
    parsed = parse_content_range(f"bytes {first}-{last}/{total}")
    assert (parsed.start, parsed.stop, parsed.total) == (start, start + length, total)


@given(st.text(max_size=80))
def test_parse_content_range_fuzz(value: str) -> None:
    with contextlib.suppress(RangeStreamError):
        parse_content_range(value)


@pytest.mark.parametrize(
    ("validators", "resume", "headers"),
    [
        (Validators('"abc"', "date", 10), False, {"if-match": '"abc"'}),
        (Validators('"abc"', "date", 10), True, {"if-range": '"abc"'}),
        (Validators('W/"abc"', "date", 10), False, {"if-unmodified-since": "date"}),
        (Validators('W/"abc"', "date", 10), True, {}),  # weak ETag: If-Range would be unsafe
        (Validators(None, "date", 10), True, {"if-range": "date"}),
        (Validators(None, None, 10), False, {}),
    ],
)
def test_preconditions(validators: Validators, resume: bool, headers: dict[str, str]) -> None:
    assert validators.preconditions(resume=resume) == headers


def test_validator_mismatch() -> None:
    pinned = Validators('"a"', "d1", 10)
    assert pinned.mismatch(Validators('"a"', "d1", 10)) is None
    assert pinned.mismatch(Validators(None, None, 10)) is None
    assert "size" in (pinned.mismatch(Validators('"a"', "d1", 11)) or "")
    assert "ETag" in (pinned.mismatch(Validators('"b"', "d1", 10)) or "")
    assert "Last-Modified" in (pinned.mismatch(Validators('"a"', "d2", 10)) or "")


R, B, S = PruningLevel.replant, PruningLevel.burn, PruningLevel.strict


@pytest.mark.parametrize(
    ("windows", "new", "level", "actions"),
    [
        # key_start, key_stop, window_start, window_stop
        ([(10, 20, 10, 20)], (5, 15), R, [Replant(10, 15, 20)]),  # head overlap
        ([(10, 20, 10, 20)], (15, 25), R, [Trim(10, 15)]),  # tail overlap
        ([(10, 20, 10, 20)], (12, 15), R, [Burn(10)]),  # inside: burnt, as 1.x did
        ([(10, 20, 10, 20)], (10, 15), R, [Burn(10)]),  # inside, same start
        ([(10, 20, 10, 20)], (15, 20), R, [Burn(10)]),  # inside, same end
        ([(10, 20, 10, 20)], (5, 25), R, [Burn(10)]),  # covered
        ([(10, 20, 10, 20)], (10, 20), R, [Burn(10)]),
        ([(10, 20, 10, 20), (30, 40, 30, 40)], (15, 35), R, [Trim(10, 15), Replant(30, 35, 40)]),
        ([(10, 20, 10, 20)], (5, 15), B, [Burn(10)]),
        ([(10, 20, 10, 20)], (15, 25), B, [Burn(10)]),
        ([(10, 20, 16, 20)], (10, 15), R, [Rekey(10, 15)]),  # only read bytes overlap
        ([(10, 20, 20, 20)], (10, 15), S, [Burn(10)]),  # consumed: never a conflict
    ],
)
def test_plan_overlap(
    windows: list[tuple[int, int, int, int]],
    new: tuple[int, int],
    level: PruningLevel,
    actions: list[object],
) -> None:
    assert plan_overlap(windows, *new, level) == actions


def test_plan_overlap_strict() -> None:
    with pytest.raises(OverlapError):
        plan_overlap([(10, 20, 10, 20)], 15, 25, PruningLevel.strict)


def test_registry_lookup() -> None:
    registry: Registry[str] = Registry()
    for start in (30, 10, 50):
        registry.add(start, start + 10, f"r{start}")
    assert [e.key_start for e in registry] == [10, 30, 50]
    assert registry.containing(35) is not None and registry.containing(35).value == "r30"  # type: ignore[union-attr]
    assert registry.containing(25) is None
    assert [e.value for e in registry.intersecting(15, 51)] == ["r10", "r30", "r50"]
    assert registry.intersecting(20, 30) == []
    registry.rekey(30, 33)
    assert registry.get(33).value == "r30"


# -- History: the bytes pulled off the wire, kept for the reader ---------------------------


@pytest.mark.parametrize(
    ("chunks", "limit", "consumed", "start", "served"),
    [
        # One chunk bigger than the limit, read through: only its last `limit` served.
        ([100_000], 1024, 100_000, 98_976, [(98_976, 10, 10), (10, 10, 0)]),
        # ... but bytes the reader has not reached yet are always served.
        ([100_000], 1024, 10, 0, [(10, 5, 5), (99_000, 10, 10), (0, 3, 3)]),
        ([100_000], 1024, 5000, 3976, [(3975, 1, 0), (3976, 1, 1), (60_000, 4, 4)]),
        # Small chunks: the same window whatever the split, front chunks dropped.
        ([400] * 10, 1000, 4000, 3000, [(2999, 5, 0), (3000, 5, 5), (3900, 500, 100)]),
        ([50_000, 50_000], 1024, 100_000, 98_976, [(98_976, 2000, 1024), (50_000, 1, 0)]),
        ([], 1024, 0, 0, [(0, 1, 0)]),
        # No history at all: only what is not read yet.
        ([5000], 0, 4000, 4000, [(3999, 1, 0), (4000, 1000, 1000)]),
    ],
)
def test_history_serves_the_unread_and_the_last_limit_bytes(
    chunks: list[int],
    limit: int,
    consumed: int,
    start: int,
    served: list[tuple[int, int, int]],
) -> None:
    history = History(limit)
    history.clear(0)
    data = bytes(range(256)) * (sum(chunks) // 256 + 1)
    offset = 0
    for size in chunks:
        history.append(data[offset : offset + size])
        offset += size
    history.consume(consumed)
    assert (history.start, history.end) == (start, offset)
    for position, size, expected in served:
        got = b"".join(bytes(p) for p in history.read(position, size))
        assert got == data[position : position + expected]


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [("Content-Range", "bytes 0-9/100"), ("ETag", '"a"')],
        [("X-Dup", "1"), ("x-dup", "2"), ("X-DUP", "3")],
        [("Content-Length", "10"), ("Set-Cookie", "a=b"), ("Set-Cookie", "c=d")],
    ],
)
def test_header_map_reads_as_httpx_headers_get(raw: list[tuple[str, str]]) -> None:
    headers = httpx.Headers(raw)
    mapped = header_map(headers.multi_items())
    assert set(mapped) == {name.lower() for name, _ in raw}
    for name, _ in raw:
        assert mapped[name.lower()] == headers.get(name)
