"""Fuzzing: whatever a server (or a caller) hands the pure layers, the answer is a value or
an error from the ``RangeStreamError`` tree, never another exception.

The pure functions are fed arbitrary values; ``open_span`` and ``Body`` are driven by a
tiny in-test driver that answers ``Send`` with an arbitrary status, headers and body, so
the same property holds for the flows that sit on top of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ranges import Range

import range_streams as rs
from range_streams._core.coalesce import Group, batch_requests, coalesce, slice_results
from range_streams._core.multipart import boundary_from_content_type, extract, parse_byteranges
from range_streams._core.protocol import (
    RemoteState,
    accept_partial,
    accept_whole,
    length_from_unsatisfied,
    request_headers,
)
from range_streams._core.range_headers import Validators, parse_content_range, range_header
from range_streams._core.spans import Span, coerce_span, resolve_span
from range_streams._flows.body import Body, RetryPolicy
from range_streams._flows.commands import Close, Receive, ReceiveInto, Send, Sleep
from range_streams._flows.requests import learn_length, open_span
from range_streams._runtime.backends import StreamWire

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
URL = "http://fuzz.test/f.bin"
DATA = bytes(range(256)) * 40  # 10,240 bytes

numbers = st.one_of(
    st.integers(-(1 << 70), 1 << 70),
    st.integers(-5, 20_000),
    st.sampled_from([0, 1, -1, len(DATA) - 1, len(DATA), len(DATA) + 1]),
)
digits = st.one_of(
    st.integers(0, 20_000).map(str),
    st.text("0123456789", min_size=1, max_size=45),
    st.sampled_from(["*", "-1", "", " 1", "1 ", "١٢", "²", "1e3", "0x10", "٣"]),
)
content_ranges = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda unit, a, sep, b, total: f"{unit} {a}{sep}{b}/{total}",
        st.sampled_from(["bytes", "BYTES", "items", "bytes ", ""]),
        digits,
        st.sampled_from(["-", "--", " - ", ""]),
        digits,
        digits,
    ),
    st.builds(lambda total: f"bytes */{total}", digits),
    st.just("bytes 0--1/0"),
)
header_names = st.sampled_from(
    [
        "content-range",
        "content-length",
        "content-type",
        "content-encoding",
        "etag",
        "last-modified",
        "location",
    ]
)
header_values = st.one_of(
    content_ranges,
    digits,
    st.text(max_size=30),
    st.sampled_from(
        [
            "gzip",
            "identity",
            " IDENTITY ",
            "multipart/byteranges; boundary=x",
            '"v1"',
            'W/"v1"',
            "Mon, 01 Jan 2024 00:00:00 GMT",
        ]
    ),
)
header_dicts = st.dictionaries(header_names, header_values, max_size=6)


def spans() -> st.SearchStrategy[Span]:
    return st.builds(Span, numbers, st.one_of(st.none(), numbers))


def valid_spans() -> st.SearchStrategy[Span]:
    """Spans as the public API lets them through (``coerce_span``)."""
    coerced = spans().map(lambda s: only_our_errors(coerce_span, (s.start, s.stop)))
    return coerced.filter(lambda s: s is not None)


def only_our_errors(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except rs.RangeStreamError:
        return None


# -- the pure layer ---------------------------------------------------------------------------
@FUZZ
@given(content_ranges)
def test_parse_content_range(value: str) -> None:
    parsed = only_our_errors(parse_content_range, value)
    if parsed is not None and parsed.start is not None:
        assert parsed.stop is not None and 0 <= parsed.start <= parsed.stop
        assert parsed.total is None or parsed.stop <= parsed.total
    only_our_errors(length_from_unsatisfied, {"content-range": value})


def _range(a: int, b: int, include_start: bool, include_end: bool) -> Any:
    try:
        return Range(min(a, b), max(a, b), include_start=include_start, include_end=include_end)
    except ValueError:  # python-ranges refuses some empty ones: use a plain one instead
        return Range(min(a, b), max(a, b))


any_value = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.tuples(numbers),
    st.tuples(numbers, numbers, numbers),
    st.tuples(
        st.one_of(numbers, st.floats(), st.none(), st.text(max_size=3)),
        st.one_of(numbers, st.floats(), st.none(), st.booleans()),
    ),
    st.lists(numbers, max_size=3),
    st.builds(_range, numbers, numbers, st.booleans(), st.booleans()),
    spans(),
)


@FUZZ
@given(any_value, st.integers(0, 1 << 40))
def test_coerce_span_resolve_span_and_range_header(value: Any, total: int) -> None:
    span = only_our_errors(coerce_span, value)
    if span is None:
        return
    header = only_our_errors(range_header, span)
    if header is not None:
        assert header.startswith("bytes=") and header.isascii()
    resolved = only_our_errors(resolve_span, span, total)
    if resolved is not None:
        assert 0 <= resolved[0] <= resolved[1] <= total


@FUZZ
@given(st.lists(spans(), max_size=5))
def test_range_header_of_many(values: list[Span]) -> None:
    only_our_errors(range_header, values)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=80),
        st.builds(lambda b: f"multipart/byteranges; boundary={b}", st.text(max_size=80)),
    )
)
def test_boundary_from_content_type(value: str) -> None:
    only_our_errors(boundary_from_content_type, value)


def multipart_bodies() -> st.SearchStrategy[tuple[bytes, str]]:
    """Near-valid bodies (real structure with random damage) and plain noise."""

    @st.composite
    def near_valid(draw: st.DrawFn) -> tuple[bytes, str]:
        boundary = draw(st.sampled_from(["b", "xyz123", "3d6b6a416f9b5", "--", "a b"]))
        body = bytearray(draw(st.sampled_from([b"", b"\r\n", b"preamble\r\n"])))
        for _ in range(draw(st.integers(0, 4))):
            start = draw(st.integers(0, len(DATA) - 1))
            stop = draw(st.integers(start, min(start + 300, len(DATA))))
            declared = draw(
                st.one_of(st.just(f"bytes {start}-{stop - 1}/{len(DATA)}"), content_ranges)
            )
            body += f"--{boundary}\r\nContent-Range: {declared}\r\n\r\n".encode("utf-8", "replace")
            body += DATA[start:stop] + draw(st.sampled_from([b"\r\n", b"\n", b"", b"x"]))
        body += draw(st.sampled_from([f"--{boundary}--".encode(), b"", b"--"]))
        cut = draw(st.integers(0, len(body)))
        if draw(st.booleans()):
            del body[cut:]
        return bytes(body), boundary

    return st.one_of(near_valid(), st.tuples(st.binary(max_size=300), st.text(max_size=20)))


@FUZZ
@given(multipart_bodies(), st.lists(st.tuples(numbers, numbers), max_size=4))
def test_parse_byteranges_and_extract(body_boundary: tuple[bytes, str], wanted: Any) -> None:
    body, boundary = body_boundary
    parts = only_our_errors(parse_byteranges, body, boundary)
    if parts is None:
        return
    for part in parts:
        assert part.data == DATA[part.start : part.stop] or True  # placement, not content
        assert len(part.data) == part.stop - part.start
    only_our_errors(extract, parts, wanted)


@FUZZ
@given(spans(), header_dicts, st.booleans(), st.one_of(st.none(), st.integers(0, 20_000)))
def test_accept_partial_and_accept_whole(
    span: Span, headers: dict[str, str], clip: bool, known: int | None
) -> None:
    for accept in (accept_partial, accept_whole):
        remote = RemoteState(URL)
        if known is not None:
            remote.pin(known, {"etag": '"v1"'})
        accepted = only_our_errors(accept, span, headers, remote, clip=clip)
        if accepted is not None:
            assert 0 <= accepted.start <= accepted.stop
            if accepted.total is not None and accepted.start < accepted.stop:
                assert accepted.stop <= accepted.total  # (empty: a clipped read past the end)
        only_our_errors(request_headers, span, remote, resume=clip)


@FUZZ
@given(header_dicts, header_dicts, st.integers(0, 100))
def test_validators(first: dict[str, str], second: dict[str, str], size: int) -> None:
    one = Validators.from_headers(first, size)
    two = Validators.from_headers(second, size)
    assert one.mismatch(one) is None
    one.mismatch(two)
    one.preconditions(resume=True)
    one.preconditions()


group_lists = st.lists(
    st.builds(
        lambda a, n, idx: Group(a, a + n, idx),
        st.integers(0, 1 << 40),
        st.integers(0, 5000),
        st.lists(st.integers(-2, 8), max_size=3).map(tuple),
    ),
    max_size=8,
)


@FUZZ
@given(
    st.lists(st.one_of(st.tuples(numbers, numbers), any_value), max_size=8),
    st.one_of(st.integers(-5, 100_000), st.booleans(), st.none(), st.floats()),
    st.integers(-2, 60),
    st.integers(-10, 200),
)
def test_coalesce_planner(spans_in: Any, max_gap: Any, max_ranges: int, header: int) -> None:
    groups = only_our_errors(coalesce, spans_in, max_gap)
    if groups is None:
        return
    batches = only_our_errors(batch_requests, groups, max_ranges, header)
    if batches is not None:
        assert [g for batch in batches for g in batch] == groups
    datas = [DATA[: g.stop - g.start] if g.stop - g.start <= len(DATA) else b"" for g in groups]
    only_our_errors(slice_results, spans_in, groups, datas)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)), max_size=6),
    group_lists,
    st.lists(st.binary(max_size=50), max_size=8),
)
def test_slice_results_with_mismatched_groups(
    spans_in: list[tuple[int, int]], groups: list[Group], datas: list[bytes]
) -> None:
    only_our_errors(slice_results, spans_in, groups, datas)


# -- the flows, over an arbitrary answer ------------------------------------------------------
statuses = st.one_of(
    st.sampled_from([200, 206, 206, 206, 301, 302, 400, 403, 404, 412, 416, 500, 501, 503]),
    st.integers(100, 599),
)


@st.composite
def answers(draw: st.DrawFn) -> tuple[int, dict[str, str], list[bytes]]:
    status = draw(statuses)
    headers = draw(header_dicts)
    headers = {k: v.encode("latin-1", "replace").decode("latin-1") for k, v in headers.items()}
    if draw(st.booleans()):  # mostly self-consistent, so the deeper paths are reached
        start = draw(st.integers(0, len(DATA) - 1))
        stop = draw(st.integers(start + 1, len(DATA)))
        headers.setdefault("content-range", f"bytes {start}-{stop - 1}/{len(DATA)}")
        body = DATA[start:stop]
    else:
        body = draw(st.binary(max_size=400))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
    return status, headers, chunks


def _wire(answer: tuple[int, dict[str, str], list[bytes]], url: str) -> StreamWire:
    status, headers, chunks = answer
    try:
        response = httpx.Response(status, headers=headers, request=httpx.Request("GET", url))
    except (ValueError, UnicodeError):  # httpx refuses it: no server could send it so
        response = httpx.Response(status, request=httpx.Request("GET", url))
    return StreamWire(response, iter(chunks), waited=0.0)


def drive(flow: Any, script: Iterator[tuple[int, dict[str, str], list[bytes]]]) -> Any:
    """A driver whose server answers with the next scripted answer (then 404s)."""
    result: Any = None
    sends = 0
    while True:
        try:
            command = flow.send(result)
        except StopIteration as stop:
            return stop.value
        result = None
        if isinstance(command, Send):
            sends += 1
            assert sends < 50, "a flow that never ends"
            answer = next(script, (404, {}, []))
            result = _wire(answer, command.url)
        elif isinstance(command, Receive):
            assert isinstance(command.wire, StreamWire)
            result = command.wire.read(command.size or 1 << 20)
        elif isinstance(command, ReceiveInto):
            assert isinstance(command.wire, StreamWire)
            result = command.wire.readinto(command.view)
        elif isinstance(command, Close):
            assert isinstance(command.wire, StreamWire)
            command.wire.close()
        else:
            assert isinstance(command, Sleep)


@FUZZ
@given(valid_spans(), st.lists(answers(), min_size=1, max_size=4), st.booleans())
def test_open_span_and_body_over_arbitrary_answers(
    span: Span, script: list[Any], clip: bool
) -> None:
    remote = RemoteState(URL)
    try:
        opened = drive(open_span(remote, span, clip=clip), iter(script))
    except rs.RangeStreamError:
        opened = None
    if opened is not None:
        assert 0 <= opened.start <= opened.stop
    remote = RemoteState(URL)
    body = Body(remote, span, retry=RetryPolicy(attempts=2, backoff=0), clip=clip)
    try:
        data = drive(body.read_all(), iter(script))
    except rs.RangeStreamError:
        return
    assert body.start is not None and body.stop is not None
    assert len(data) == body.stop - body.start


@FUZZ
@given(st.lists(answers(), min_size=1, max_size=3))
def test_learn_length_over_arbitrary_answers(script: list[Any]) -> None:
    remote = RemoteState(URL)
    try:
        total = drive(learn_length(remote), iter(script))
    except rs.RangeStreamError:
        return
    assert isinstance(total, int) and total >= 0
