"""The flows that open ranges: send a request (following redirects), learn the file's
length, open one span and check its answer. Their commands are in ``commands``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from .._core.errors import (
    HTTPStatusError,
    NotFoundError,
    RangeNotSatisfiableError,
    RangeResponseError,
    RedirectError,
    RemoteFileChangedError,
)
from .._core.origins import may_carry_credentials, redirect_target
from .._core.protocol import (
    SUFFIX_REFUSALS,
    Accepted,
    RemoteState,
    accept_partial,
    accept_whole,
    is_redirect,
    length_from_unsatisfied,
    request_headers,
)
from .._core.spans import Span
from .._core.urls import parse_url
from .commands import Close, Flow, Receive, Send, Wire

__all__ = ["Opened", "finish", "learn_length", "open_span", "send", "status_error"]

logger = logging.getLogger("range_streams")

MAX_REDIRECTS = 10
# A body this small is read to its end before closing, so the connection is reused.
DRAIN_LIMIT = 64 * 1024
# Failures of a request before any answer that mean "this connection", not "this server".
RESEND = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


@dataclass(frozen=True, slots=True)
class Opened:
    """A response ready to be read for file bytes ``[start, stop)``.

    ``wire`` is None when there is nothing to read (an empty span). ``wire_stop`` is
    where the body on the wire ends, which passes ``stop`` only for a whole-file 200.
    """

    wire: Wire | None
    start: int
    stop: int
    wire_stop: int


def send(remote: RemoteState, headers: dict[str, str], method: str = "GET") -> Flow[Wire]:
    """Send to the file's current location, following redirects with the same headers.

    Redirects are followed here rather than by httpx so that a client passed in without
    ``follow_redirects`` still works, and so that the final location is remembered: later
    requests go straight there. A 401 or 403 from a remembered location (an expired
    presigned URL) sends the request once more from the original URL. A request that failed before
    any answer came (``RESEND``: a stale or dirty pooled connection) is sent once more.

    Credentials go to the URL's own origin only (``origins``): a request to anywhere
    else, or any later hop of a chain that left the origin, is sent without them, and so
    is every later request to a location that such a chain found (the other origin chose
    it: httpx, which starts from the URL each time, never sends them there either).
    """
    url = remote.target
    trusted = url == remote.url or remote.location_trusted
    retried_from_origin = False
    resent = False
    hops = 0
    while True:
        try:
            wire: Wire = yield _request(remote, method, url, headers, trusted)
        except RESEND as exc:
            # No answer at all: most likely the pooled connection's fault (closed by the
            # server as the request went out, or left dirty by an answer that ran past its
            # Content-Length). Sent once more, on a fresh connection: httpcore drops the
            # broken one. A GET is idempotent; a second failure is the server's.
            if resent:
                raise
            resent = True
            logger.info("%s %s failed before any answer (%r); sent again", method, url, exc)
            continue
        remote.requests_sent += 1
        response = wire.response
        if logger.isEnabledFor(logging.DEBUG):  # the arguments cost a header lookup
            logger.debug(
                "%s %s range=%s -> %s content-range=%s",
                method,
                url,
                headers.get("range"),
                response.status_code,
                response.headers.get("content-range"),
            )
        if is_redirect(response.status_code, response.headers):
            yield Close(wire)
            hops += 1
            if not remote.follow_redirects:
                raise RedirectError(
                    f"{remote.url} answered {response.status_code} (a redirect) and"
                    " follow_redirects is off",
                    url=remote.url,
                )
            if hops > MAX_REDIRECTS:
                raise RedirectError(f"more than {MAX_REDIRECTS} redirects from {remote.url}")
            url = redirect_target(url, response.headers["location"])
            trusted = trusted and _trusted(remote.url, url)
            continue
        if response.status_code in (401, 403) and url != remote.url and not retried_from_origin:
            # An expired presigned location, or one reached through another origin that
            # must be asked without credentials: start again from the URL.
            yield Close(wire)
            retried_from_origin = True
            remote.location = None
            url = remote.url
            trusted = True
            continue
        remote.location = None if url == remote.url else url
        remote.location_trusted = trusted
        return wire


def _trusted(origin: str, url: str) -> bool:
    return may_carry_credentials(parse_url(origin), parse_url(url))


def _request(
    remote: RemoteState, method: str, url: str, headers: dict[str, str], trusted: bool
) -> Send:
    """The ``Send`` for one hop: with the URL's own credentials where ``trusted``, else
    with every credential header (the client's too) and the client's auth left out."""
    if not trusted:
        return Send(method, url, headers, remote.chunk_size, strip=remote.credential_headers)
    if remote.basic_auth is not None:
        headers = {**headers, "authorization": remote.basic_auth}
    return Send(method, url, headers, remote.chunk_size)


def finish(wire: Wire, remaining: int, drain: int = DRAIN_LIMIT) -> Flow[None]:
    """Close a wire, first reading its ``remaining`` bytes when there are at most
    ``drain`` of them, so its connection is reused (a draining that fails only drops it).

    No ``finally`` with a ``yield`` here or in callers: a flow closed by the garbage
    collector must not try to do I/O on its way out.
    """
    if wire.closed:
        return
    if 0 <= remaining <= drain:
        drained = 0
        try:
            while drained <= remaining and (chunk := (yield Receive(wire))):
                drained += len(chunk)
        except Exception:
            logger.debug("draining %s failed; its connection is dropped", remote_of(wire))
    yield Close(wire)


def headers_of(wire: Wire) -> dict[str, str]:
    """The response's headers, lowercased names to values (repeated names joined)."""
    return wire.fields


def remote_of(wire: Wire) -> str:
    return str(wire.response.request.url)


def status_error(wire: Wire, remote: RemoteState, what: str) -> RangeResponseError:
    response = wire.response
    status = response.status_code
    if status == 412:
        return RemoteFileChangedError(
            f"{remote.url} changed while being read (412 Precondition Failed)", url=remote.url
        )
    message = f"{status} {response.reason_phrase} for {what} of {remote.url}"
    if status == 416:
        total = length_from_unsatisfied(response.headers)
        if total is not None:
            message += f" (the file has {total} bytes)"
        return RangeNotSatisfiableError(message, request=response.request, response=response)
    if status in (404, 410):
        return NotFoundError(message, request=response.request, response=response)
    return HTTPStatusError(message, request=response.request, response=response)


def learn_length(remote: RemoteState) -> Flow[int]:
    """Learn the file's length with ``GET bytes=0-0``.

    Not HEAD: presigned URLs refuse it (403), some servers answer 405, and a server
    that compresses reports the compressed length. A one-byte GET works everywhere and
    pins the validators too. A 416 to ``bytes=0-0`` can only mean an empty file.
    """
    if remote.total is not None:
        return remote.total
    span = Span(0, 1)
    wire = yield from send(remote, request_headers(span, remote))
    status = wire.response.status_code
    headers = headers_of(wire)
    remaining = 0
    try:
        if status == 206:
            accept_partial(span, headers, remote)
            remaining = 1
        elif status == 200:
            accepted = accept_whole(Span(0, None), headers, remote)
            remaining = accepted.stop
            remote.ranges_ignored = True
        elif status == 416:
            total = length_from_unsatisfied(headers)
            remote.pin(0 if total is None else total, headers)
        else:
            raise status_error(wire, remote, "the length probe")
    except Exception:
        yield from finish(wire, DRAIN_LIMIT + 1)
        raise
    yield from finish(wire, remaining)
    assert remote.total is not None
    return remote.total


def open_span(
    remote: RemoteState, span: Span, *, resume: bool = False, clip: bool = False
) -> Flow[Opened]:
    """Send one range request for ``span`` and check its answer; the body is not read.

    Spans that need the length (negative stops, or suffixes the server refused before)
    first learn it. A suffix refused now (400/416/500/501: PyPI, RangeHTTPServer) is
    remembered and retried as an absolute range.
    """
    if span.needs_length or (span.is_suffix and remote.suffix_supported is False):
        yield from learn_length(remote)
    if remote.total is not None:
        if clip and span.stop is not None and span.stop > remote.total:
            span = Span(span.start, remote.total)
        if not span.is_absolute:
            span = Span(*remote.resolve(span))
    if span.is_absolute and span.stop == span.start:
        return Opened(None, span.start, span.start, span.start)
    wire = yield from send(remote, request_headers(span, remote, resume=resume))
    status = wire.response.status_code
    headers = headers_of(wire)
    opened: Opened | None = None
    try:
        if status == 206:
            accepted = accept_partial(span, headers, remote, clip=clip)
            if span.is_suffix:
                remote.suffix_supported = True
            opened = Opened(wire, accepted.start, accepted.stop, accepted.stop)
        elif status == 200:
            accepted = _accept_whole(span, headers, remote, resume, clip)
            opened = Opened(wire, accepted.start, accepted.stop, accepted.total or accepted.stop)
    except Exception:
        yield from finish(wire, DRAIN_LIMIT + 1)
        raise
    if opened is not None:
        if opened.start < opened.stop:
            return opened
        # Nothing to read (an empty file, or past the end of a whole-file 200): the wire is
        # closed here rather than left to whoever holds the empty span.
        yield from finish(wire, opened.wire_stop if status == 200 else 0)
        return Opened(None, opened.start, opened.start, opened.start)
    yield from finish(wire, DRAIN_LIMIT + 1)
    if span.is_suffix and status in SUFFIX_REFUSALS:
        return (yield from _retry_suffix(remote, span, status, headers))
    if status == 416:
        total = length_from_unsatisfied(headers)
        if total is not None:
            remote.pin(total, headers)  # a new length: RemoteFileChangedError
        if remote.total is not None and 0 <= span.start < remote.total:
            # Bytes this file had are gone, and the 416 did not say the new length
            # (RangeHTTPServer, Apache, lighttpd): the file shrank while being read.
            raise RemoteFileChangedError(
                f"{remote.url} changed while being read: bytes from {span.start} of its"
                f" {remote.total} are no longer there (416)",
                url=remote.url,
            )
    raise status_error(wire, remote, f"range {wire.response.request.headers.get('range')}")


def _accept_whole(
    span: Span, headers: Any, remote: RemoteState, resume: bool, clip: bool
) -> Accepted:
    if resume and remote.validators is not None:
        # If-Range answered 200: the file changed under us (or If-Range is unsupported,
        # and then the validators below tell which).
        remote.pin(_content_length(headers), headers)
    return accept_whole(span, headers, remote, clip=clip)


def _content_length(headers: Any) -> int | None:
    # Only a plain length is pinned here; accept_whole refuses anything else.
    value = headers.get("content-length")
    if value is None or not (value.isascii() and value.strip().isdigit()):
        return None
    return int(value)


def _retry_suffix(remote: RemoteState, span: Span, status: int, headers: Any) -> Flow[Opened]:
    total = length_from_unsatisfied(headers) if status == 416 else None
    if total == 0:
        remote.pin(0, headers)  # suffix of an empty file: nothing to read
        return Opened(None, 0, 0, 0)
    logger.info("%s refused suffix range (%s); using absolute ranges", remote.url, status)
    remote.suffix_supported = False
    if total is not None:
        remote.pin(total, headers)
    return (yield from open_span(remote, span))
