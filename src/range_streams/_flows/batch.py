"""``read_ranges``: many spans in as few round trips as the server allows.

Spans are coalesced (``_core.coalesce``). Small groups are packed into multi-range
requests of at most ``max_ranges`` ranges and ``max_header_bytes`` of header, and the
multipart bodies are parsed (``_core.multipart``). Big groups (``single_from`` bytes or
more: parquet column chunks, a large span) go as range requests of their own, cut into
pieces when one would carry more than its connection's share of the batch, all in flight
at once: a columnar reader's chunks arrive side by side over ``concurrency``
connections instead of one after another. Servers that answer a multi-range request
with 200 (Tornado), 416 or 400 (Werkzeug, aiohttp), or with one part that does not cover
everything, are remembered as not supporting it; their groups are fetched as single
ranges, concurrently (the ``Gather`` command: threads under the sync driver, tasks under
the async one).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from .._core.coalesce import Group, Piece, batch_requests, coalesce, plan_fetches, slice_results
from .._core.errors import ContentRangeError, MultipartError, RangeResponseError
from .._core.multipart import boundary_from_content_type, extract, parse_byteranges
from .._core.protocol import RemoteState, check_encoding, multi_range_headers
from .._core.range_headers import parse_content_range
from .._core.spans import Span, resolve_span
from .body import Body, BodyLimits, RetryPolicy
from .commands import Flow, Gather, Receive, Wire
from .requests import finish, learn_length, send, status_error

__all__ = ["BatchPolicy", "read_ranges", "read_spans"]

logger = logging.getLogger("range_streams")


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_gap: int = 8 * 1024  # read through gaps smaller than this rather than split
    max_ranges: int = 50  # per request: more is refused or merged by common servers
    max_header_bytes: int = 4000
    concurrency: int = 16  # requests of one batch in flight at once
    overhead_per_part: int = 1024  # multipart headers we accept per part
    single_from: int = 1 << 20  # groups this big get a request of their own, not a part
    min_piece: int = 8 << 20  # ... and are split across connections into pieces this big


def read_ranges(
    remote: RemoteState,
    spans: Sequence[tuple[int, int]],
    policy: BatchPolicy,
    retry: RetryPolicy,
    limits: BodyLimits,
) -> Flow[list[bytes]]:
    groups = coalesce(spans, policy.max_gap)
    if len(groups) == 1 and groups[0].stop - groups[0].start < 2 * policy.min_piece:
        # One request whatever the server (a group this small is never cut in two).
        data = yield from _fetch_single(remote, groups[0], retry, limits)
        return slice_results(spans, groups, [data])
    small_indices, pieces = plan_fetches(
        groups, policy.single_from, policy.min_piece, policy.concurrency
    )
    small = [groups[i] for i in small_indices]
    fetched: dict[tuple[int, int], bytes] = {}
    # Round one: the big pieces, the multi-range requests (only the first while it is not
    # known whether, and how far, the server speaks multipart) and the small groups that
    # go alone anyway, all side by side.
    probing = remote.multipart_supported is None and len(small) > 1
    multis: list[list[Group]] = []
    alone: list[Group] = []
    if probing:
        multis = _batches(small, remote, policy)[:1]
    elif remote.multipart_supported is False:
        alone = small
    else:
        for batch in _batches(small, remote, policy):
            if len(batch) > 1:
                multis.append(batch)
            else:
                alone.extend(batch)
    flows = [
        *(_fetch_single(remote, piece, retry, limits) for piece in pieces),
        *(_fetch_single(remote, group, retry, limits) for group in alone),
        *(_fetch_multi(remote, batch, policy) for batch in multis),
    ]
    answers = yield Gather(tuple(flows), policy.concurrency)
    piece_data = answers[: len(pieces)]
    for group, data in zip(alone, answers[len(pieces) : len(pieces) + len(alone)], strict=True):
        fetched[(group.start, group.stop)] = data
    for served in answers[len(pieces) + len(alone) :]:
        fetched.update(served)
    if probing and remote.multipart_supported:
        pending = [g for g in small if (g.start, g.stop) not in fetched]
        multis = [b for b in _batches(pending, remote, policy) if len(b) > 1]
        if multis:
            answers = yield Gather(
                tuple(_fetch_multi(remote, b, policy) for b in multis), policy.concurrency
            )
            for served in answers:
                fetched.update(served)
    singles = [g for g in small if (g.start, g.stop) not in fetched]
    if singles:
        single_flows = tuple(_fetch_single(remote, group, retry, limits) for group in singles)
        datas = yield Gather(single_flows, policy.concurrency)
        for group, data in zip(singles, datas, strict=True):
            fetched[(group.start, group.stop)] = data
    for index, data in _join_pieces(groups, pieces, piece_data):
        fetched[(groups[index].start, groups[index].stop)] = data
    return slice_results(spans, groups, [fetched[(g.start, g.stop)] for g in groups])


def _join_pieces(
    groups: Sequence[Group], pieces: Sequence[Piece], datas: Sequence[bytes]
) -> list[tuple[int, bytes]]:
    """Each big group's bytes from its pieces (one piece: its bytes, uncopied)."""
    parts: dict[int, list[bytes]] = {}
    for piece, data in zip(pieces, datas, strict=True):
        parts.setdefault(piece.group, []).append(data)
    return [(index, got[0] if len(got) == 1 else b"".join(got)) for index, got in parts.items()]


def read_spans(
    remote: RemoteState,
    spans: Sequence[Span],
    policy: BatchPolicy,
    retry: RetryPolicy,
    limits: BodyLimits,
) -> Flow[list[bytes]]:
    """``read_ranges`` for spans that may also count from the end or run to it.

    The length those need is learned by the first request that can go without it (a
    suffix ``bytes=-n`` or an open end ``bytes=n-``), whose bytes are kept, or else by
    ``GET bytes=0-0``; the other spans are then resolved and read as one batch. So the
    tail of a file costs one request, and the tail plus any other spans two. Absolute
    spans get ``read_ranges``' own flow (no generator of ours in between).
    """
    absolute: list[tuple[int, int]] = []
    for span in spans:
        if span.stop is None or not span.is_absolute:
            return _read_relative(remote, spans, policy, retry, limits)
        absolute.append((span.start, span.stop))
    return read_ranges(remote, absolute, policy, retry, limits)


def _read_relative(
    remote: RemoteState,
    spans: Sequence[Span],
    policy: BatchPolicy,
    retry: RetryPolicy,
    limits: BodyLimits,
) -> Flow[list[bytes]]:
    read: dict[int, bytes] = {}
    first = next((i for i, s in enumerate(spans) if not s.is_absolute and not s.needs_length), None)
    if first is not None:
        read[first] = yield from Body(remote, spans[first], retry=retry, limits=limits).read_all()
    total = remote.total if remote.total is not None else (yield from learn_length(remote))
    rest = [i for i in range(len(spans)) if i not in read]
    if rest:
        resolved = [resolve_span(spans[i], total) for i in rest]
        datas = yield from read_ranges(remote, resolved, policy, retry, limits)
        read.update(zip(rest, datas, strict=True))
    return [read[i] for i in range(len(spans))]


def _batches(groups: list[Group], remote: RemoteState, policy: BatchPolicy) -> list[list[Group]]:
    """Requests' worth of groups, under the policy's limits and any cap the server showed."""
    max_ranges = min(policy.max_ranges, remote.max_ranges or policy.max_ranges)
    return batch_requests(groups, max_ranges, policy.max_header_bytes)


def _fetch_single(
    remote: RemoteState, group: Group | Piece, retry: RetryPolicy, limits: BodyLimits
) -> Flow[bytes]:
    body = Body(remote, Span(group.start, group.stop), retry=retry, limits=limits)
    return (yield from body.read_all())


def _read_body(wire: Wire, limit: int, url: str) -> Flow[bytes]:
    chunks: list[bytes] = []
    received = 0
    while chunk := (yield Receive(wire)):
        received += len(chunk)
        if received > limit:
            yield from finish(wire, limit + 1)
            raise MultipartError(f"{url}: multipart body ran past {limit} bytes", url=url)
        chunks.append(chunk)
    yield from finish(wire, 0)
    return b"".join(chunks)


def _fetch_multi(
    remote: RemoteState, batch: list[Group], policy: BatchPolicy
) -> Flow[dict[tuple[int, int], bytes]]:
    wanted = [(g.start, g.stop) for g in batch]
    headers = multi_range_headers([Span(a, b) for a, b in wanted], remote)
    wire = yield from send(remote, headers)
    response = wire.response
    status = response.status_code
    if status != 206:
        yield from finish(wire, 1 << 62)  # never drain a whole file
        if status in (200, 400, 416) or 500 <= status < 600:
            logger.info("%s answered a multi-range request with %s", remote.url, status)
            remote.multipart_supported = False
            return {}
        raise status_error(wire, remote, f"ranges {headers['range']}")
    try:
        check_encoding(response.headers, remote.url)
        limit = sum(b - a for a, b in wanted) + policy.overhead_per_part * len(wanted) + 65536
        content_type = response.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/"):
            return (yield from _single_part(remote, wire, wanted, limit))
        boundary = boundary_from_content_type(content_type)
    except RangeResponseError:
        yield from finish(wire, 1 << 62)
        raise
    body = yield from _read_body(wire, limit, remote.url)
    parts = parse_byteranges(body, boundary)
    for part in parts:
        remote.pin(part.total if part.total is not None else remote.total, response.headers)
    remote.multipart_supported = True
    served: dict[tuple[int, int], bytes] = {}
    for span in wanted:
        try:
            served[span] = extract(parts, [span])[0]
        except MultipartError:
            continue  # not among the parts: fetched singly by the caller
    if len(served) < len(wanted):
        # lighttpd answers only the first 10 ranges of a longer list: remember the cap.
        logger.info("%s answered %d of %d ranges", remote.url, len(parts), len(wanted))
        remote.max_ranges = max(1, len(parts))
    return served


def _single_part(
    remote: RemoteState, wire: Wire, wanted: list[tuple[int, int]], limit: int
) -> Flow[dict[tuple[int, int], bytes]]:
    """One range back for many asked: use what it covers, fetch the rest singly."""
    headers = wire.response.headers
    value = headers.get("content-range")
    if value is None:
        yield from finish(wire, 1 << 62)
        raise ContentRangeError(f"{remote.url} sent a 206 without Content-Range", url=remote.url)
    content_range = parse_content_range(value)
    if content_range.start is None or content_range.stop is None:
        yield from finish(wire, 1 << 62)
        raise ContentRangeError(f"{remote.url}: unusable Content-Range {value!r}", url=remote.url)
    remote.pin(content_range.total if content_range.total is not None else remote.total, headers)
    if content_range.length > limit:
        yield from finish(wire, 1 << 62)
        remote.multipart_supported = False
        return {}
    data = yield from _read_body(wire, limit, remote.url)
    if len(data) != content_range.length:
        raise ContentRangeError(
            f"{remote.url}: body length disagrees with {value!r}", url=remote.url
        )
    start = content_range.start
    served = {
        (a, b): data[a - start : b - start]
        for a, b in wanted
        if start <= a and b <= content_range.stop
    }
    if len(served) < len(wanted):
        remote.multipart_supported = False
    return served
