"""Pure protocol rules: what to send for a span, and whether an answer can be trusted.

Everything here is a function of values (a span, a status, a header mapping, what is
already known about the remote file). The drivers move bytes; this module decides.

The rules, in short (RFC 9110 §14 and what real servers do):

* Every range request says ``Accept-Encoding: identity``: a server that compresses a
  206 (Apache, aiohttp) would otherwise hand back gzip bytes that decode into the wrong
  data without error. A 206 that is encoded anyway is refused.
* A 206 must start where asked, be as long as asked (or end at the file's end for an
  open range), and agree with every earlier response on the total and validators.
* A 200 to a ranged request is the whole file. Only when the span starts at 0 are its
  first bytes the ones asked for; anywhere else it is refused, never read as the slice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import (
    ContentEncodingError,
    ContentRangeError,
    InvalidRangeError,
    RangeNotSupportedError,
    RemoteFileChangedError,
)
from .origins import CREDENTIAL_HEADERS, split_userinfo
from .range_headers import ContentRange, Validators, parse_content_range, range_header
from .spans import Span, resolve_span

__all__ = [
    "FILE_FACTS",
    "Accepted",
    "RemoteState",
    "accept_partial",
    "accept_whole",
    "is_redirect",
    "length_from_unsatisfied",
    "request_headers",
    "whole_body_length",
]

SUFFIX_REFUSALS = frozenset({400, 416, 500, 501})
REDIRECTS = frozenset({301, 302, 303, 307, 308})


# The RemoteState fields that describe the file and its server rather than one request:
# what a reopened file, or a later open of the same URL, may start from.
FILE_FACTS = (
    "location",
    "location_trusted",
    "total",
    "validators",
    "suffix_supported",
    "multipart_supported",
    "max_ranges",
    "ranges_ignored",
)


@dataclass
class RemoteState:
    """What is known about one remote file; shared by every request for it.

    ``total`` and ``validators`` are pinned by the first response that tells them and
    never change afterwards: a later response that disagrees is another version.

    A URL's ``user:password@`` is taken out of ``url`` (so no message or log line shows
    it) into ``basic_auth``, sent as Basic auth to the URL's own origin only, as is
    every header named in ``credential_headers`` (see ``origins``).
    """

    url: str
    location: str | None = None  # where redirects led; requests go there directly
    # Whether the chain that led there stayed with the URL's origin: only then do
    # requests to ``location`` carry the credentials (``origins``).
    location_trusted: bool = False
    total: int | None = None
    validators: Validators | None = None
    suffix_supported: bool | None = None
    multipart_supported: bool | None = None
    max_ranges: int | None = None  # the most ranges one request got answered, if capped
    ranges_ignored: bool = False  # a ranged request was answered 200 with the whole file
    requests_sent: int = field(default=0, compare=False)
    chunk_size: int | None = field(default=None, compare=False)
    follow_redirects: bool = field(default=True, compare=False)
    credential_headers: frozenset[str] = field(default=CREDENTIAL_HEADERS, compare=False)
    basic_auth: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.url, userinfo = split_userinfo(self.url)
        if userinfo is not None:
            self.basic_auth = userinfo

    @property
    def target(self) -> str:
        return self.location or self.url

    def resolve(self, span: Span) -> tuple[int, int]:
        assert self.total is not None
        return resolve_span(span, self.total)

    def pin(self, total: int | None, headers: Mapping[str, str]) -> None:
        """Record the total and validators, or raise if they contradict earlier ones."""
        if total is None:
            return
        seen = Validators.from_headers(headers, total)
        if self.validators is None:
            self.total = total
            self.validators = seen
            return
        why = self.validators.mismatch(seen)
        if why is not None:
            raise RemoteFileChangedError(
                f"{self.url} changed while being read: {why}", url=self.url
            )


def request_headers(span: Span, remote: RemoteState, *, resume: bool = False) -> dict[str, str]:
    """Headers for one range request: Range, identity encoding, and a precondition."""
    headers = {"range": range_header(span), "accept-encoding": "identity"}
    if remote.validators is not None:
        headers.update(remote.validators.preconditions(resume=resume))
    return headers


def multi_range_headers(spans: list[Span], remote: RemoteState) -> dict[str, str]:
    headers = {"range": range_header(spans), "accept-encoding": "identity"}
    if remote.validators is not None:
        headers.update(remote.validators.preconditions())
    return headers


@dataclass(frozen=True, slots=True)
class Accepted:
    """A response that may be read: its body carries file bytes ``[start, stop)``."""

    start: int
    stop: int
    total: int | None
    skip: int = 0  # body bytes to discard before ``start`` (only ever 0 today)


def check_encoding(headers: Mapping[str, str], url: str) -> None:
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ContentEncodingError(
            f"{url} sent a {encoding}-encoded body for a range request: its bytes would not"
            " be the file's",
            url=url,
        )


def _declared_length(headers: Mapping[str, str], url: str) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    # ASCII digits only: str.isdigit() also takes '\xb2' (superscript two, one latin-1
    # byte), which int() refuses, and other scripts' digits, which no server means.
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise ContentRangeError(f"{url} sent an unusable Content-Length {value!r}", url=url)
    return int(value)


def accept_partial(
    span: Span, headers: Mapping[str, str], remote: RemoteState, *, clip: bool = False
) -> Accepted:
    """Check a 206 answer to a single-range request for ``span`` and pin what it tells.

    With ``clip``, a span reaching past the end (sent before the length was known) may
    come back cut at the end of the file; otherwise that is an error.
    """
    url = remote.url
    check_encoding(headers, url)
    if headers.get("content-type", "").lower().startswith("multipart/"):
        raise ContentRangeError(f"{url} answered one range with a multipart body", url=url)
    value = headers.get("content-range")
    if value is None:
        raise ContentRangeError(f"{url} sent a 206 without Content-Range", url=url)
    content_range = parse_content_range(value)
    if content_range.start is None or content_range.stop is None:
        raise ContentRangeError(f"{url} sent an unsatisfied Content-Range on a 206", url=url)
    total = content_range.total if content_range.total is not None else remote.total
    if total is None:
        raise ContentRangeError(
            f"{url} did not say the file's length (Content-Range {value!r})", url=url
        )
    if remote.total is not None and total != remote.total:
        raise RemoteFileChangedError(
            f"{url} changed while being read: size changed from {remote.total} to {total}",
            url=url,
        )
    if clip and span.stop is not None and span.stop > total > span.start >= 0:
        span = Span(span.start, total)
    expected_start, expected_stop = resolve_span(span, total)
    _check_span(content_range, expected_start, expected_stop, url)
    declared = _declared_length(headers, url)
    if declared is not None and declared != content_range.length:
        raise ContentRangeError(
            f"{url}: Content-Length {declared} disagrees with Content-Range {value!r}", url=url
        )
    remote.pin(total, headers)
    return Accepted(expected_start, expected_stop, total)


def _check_span(content_range: ContentRange, start: int, stop: int, url: str) -> None:
    if content_range.start != start or content_range.stop != stop:
        raise ContentRangeError(
            f"{url} sent bytes [{content_range.start}, {content_range.stop}) where"
            f" [{start}, {stop}) was asked for",
            url=url,
        )


def accept_whole(
    span: Span, headers: Mapping[str, str], remote: RemoteState, *, clip: bool = False
) -> Accepted:
    """Check a 200 answer to a ranged request: usable only if the span starts at 0.

    Its Content-Length is the file's length, which settles two more cases: a suffix at
    least as long as the file asked for the whole file (Tornado answers so; nginx,
    Apache, lighttpd and Werkzeug answer any range on an empty file so), and a span
    starting at or past the end asked for nothing that exists (empty when ``clip``).
    """
    url = remote.url
    check_encoding(headers, url)
    total = _declared_length(headers, url)
    if total is not None and span.is_suffix and -span.start >= total:
        span = Span(0, None)
    elif total is not None and span.start >= total and span.start > 0:
        _check_total(remote, total, url)
        remote.pin(total, headers)
        if clip:
            return Accepted(span.start, span.start, total)
        raise InvalidRangeError(f"{span} starts past the end of the {total}-byte file {url}")
    if span.start != 0:
        raise RangeNotSupportedError(
            f"{url} ignored the Range header and sent the whole file (status 200)", url=url
        )
    if total is None:
        # No length: the body may be used only up to what it turns out to hold, which the
        # reader checks; the total stays unknown.
        stop = span.stop if span.stop is not None and span.stop >= 0 else None
        if stop is None:
            raise RangeNotSupportedError(
                f"{url} ignored the Range header and did not say the file's length", url=url
            )
        return Accepted(0, stop, None)
    _check_total(remote, total, url)
    if clip and span.stop is not None and span.stop > total:
        span = Span(span.start, total)
    start, stop = resolve_span(span, total)
    remote.pin(total, headers)
    return Accepted(start, stop, total)


def whole_body_length(headers: Mapping[str, str], remote: RemoteState) -> int | None:
    """Check a 200 answer to a plain GET of the whole file: not encoded, and as long as
    any length already pinned. Its declared length (None: count the body to its end)."""
    url = remote.url
    check_encoding(headers, url)
    declared = _declared_length(headers, url)
    if declared is not None:
        _check_total(remote, declared, url)
    return declared


def _check_total(remote: RemoteState, total: int, url: str) -> None:
    if remote.total is not None and remote.total != total:
        raise RemoteFileChangedError(
            f"{url} changed while being read: size changed from {remote.total} to {total}",
            url=url,
        )


def length_from_unsatisfied(headers: Mapping[str, str]) -> int | None:
    """The total from a 416's ``Content-Range: bytes */N``, if it sent one."""
    value = headers.get("content-range")
    if value is None:
        return None
    try:
        parsed = parse_content_range(value)
    except ContentRangeError:
        return None
    return parsed.total if parsed.start is None else None


def is_redirect(status: int, headers: Mapping[str, str]) -> bool:
    return status in REDIRECTS and "location" in headers
