"""Pure header logic: build Range and precondition headers, parse Content-Range.

Nothing here knows about sockets or httpx; it maps strings to values and back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .errors import ContentRangeError, InvalidRangeError
from .spans import Span

__all__ = [
    "ContentRange",
    "Validators",
    "header_map",
    "parse_content_range",
    "range_header",
]

# RFC 9110 §14.4: Content-Range = range-unit SP ( range-resp / unsatisfied-range ).
# Servers differ in case and spacing, so both are tolerated; the numbers are not.
_SATISFIED = re.compile(r"^\s*bytes\s+(\d+)\s*-\s*(\d+)\s*/\s*(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED = re.compile(r"^\s*bytes\s+\*\s*/\s*(\d+)\s*$", re.IGNORECASE)
# Caddy answers a suffix range on an empty file with ``206 Content-Range: bytes 0--1/0``:
# last = first - 1, i.e. no bytes of a 0-byte file. Taken as exactly that, and only that.
_EMPTY_FILE = re.compile(r"^\s*bytes\s+0\s*-\s*-1\s*/\s*0\s*$", re.IGNORECASE)
# Long enough for any real file (2**63 has 19 digits); longer is an absurd header.
_MAX_DIGITS = 20


def _range_spec(span: Span) -> str:
    if span.is_suffix:
        return f"-{-span.start}"
    if span.start < 0 or (span.stop is not None and span.stop < 0):
        raise InvalidRangeError(f"{span} must be resolved against the length before sending")
    if span.stop is None:
        return f"{span.start}-"
    if span.stop <= span.start:
        raise InvalidRangeError(f"{span} is empty: there is no byte to ask for")
    return f"{span.start}-{span.stop - 1}"


def range_header(spans: Span | Sequence[Span]) -> str:
    """The ``Range`` header value for one or more spans (no spaces after commas)."""
    if isinstance(spans, Span):
        spans = [spans]
    if not spans:
        raise InvalidRangeError("a Range header needs at least one span")
    return "bytes=" + ",".join(_range_spec(span) for span in spans)


@dataclass(frozen=True, slots=True)
class ContentRange:
    """A parsed ``Content-Range``: ``[start, stop)`` of ``total`` (None when ``*``).

    For an unsatisfied range (``bytes */N``) ``start`` and ``stop`` are None.
    """

    start: int | None
    stop: int | None
    total: int | None

    @property
    def length(self) -> int:
        if self.start is None or self.stop is None:
            return 0
        return self.stop - self.start


def parse_content_range(value: str) -> ContentRange:
    """Parse a Content-Range header value, or raise ``ContentRangeError``.

    The one satisfied form with no bytes is Caddy's ``bytes 0--1/0`` for an empty file,
    parsed as ``ContentRange(0, 0, 0)``.
    """
    if len(value) > 200:
        raise ContentRangeError(f"Content-Range header is absurdly long ({len(value)} chars)")
    if match := _UNSATISFIED.match(value):
        digits = match.group(1)
        if len(digits) > _MAX_DIGITS:
            raise ContentRangeError(f"Content-Range total is absurd: {value!r}")
        return ContentRange(None, None, int(digits))
    if _EMPTY_FILE.match(value):
        return ContentRange(0, 0, 0)
    match = _SATISFIED.match(value)
    if match is None:
        raise ContentRangeError(f"malformed Content-Range: {value!r}")
    first_s, last_s, total_s = match.groups()
    if max(len(first_s), len(last_s), len(total_s)) > _MAX_DIGITS:
        raise ContentRangeError(f"Content-Range numbers are absurd: {value!r}")
    first, last = int(first_s), int(last_s)
    total = None if total_s == "*" else int(total_s)
    if last < first:
        raise ContentRangeError(f"Content-Range ends before it starts: {value!r}")
    if total is not None and last >= total:
        raise ContentRangeError(f"Content-Range reaches past its own total: {value!r}")
    return ContentRange(first, last + 1, total)


@dataclass(frozen=True, slots=True)
class Validators:
    """What identifies one version of the remote file: ETag, Last-Modified and size."""

    etag: str | None
    last_modified: str | None
    size: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], size: int | None) -> Validators:
        return cls(headers.get("etag"), headers.get("last-modified"), size)

    @property
    def strong_etag(self) -> str | None:
        if self.etag is None or self.etag.startswith("W/"):
            return None
        return self.etag

    def preconditions(self, *, resume: bool = False) -> dict[str, str]:
        """Headers that make the server refuse to mix versions.

        A fresh request carries ``If-Match`` (a strong ETag), so a changed file costs a
        cheap 412. A resume of a partly read body carries ``If-Range`` instead, with the
        strong ETag or, lacking one, the date: a changed file then answers 200, which the
        response checks catch. Weak ETags are never used: RFC 9110 forbids them in both.
        """
        strong = self.strong_etag
        if resume:
            if strong is not None:
                return {"if-range": strong}
            if self.last_modified is not None and self.etag is None:
                return {"if-range": self.last_modified}
            return {}
        if strong is not None:
            return {"if-match": strong}
        if self.last_modified is not None:
            return {"if-unmodified-since": self.last_modified}
        return {}

    def mismatch(self, other: Validators) -> str | None:
        """Why ``other`` is a different version of the file, or None if it may be the same.

        A value that is absent on either side cannot be compared and is not held against
        the response (some servers drop ETag on 206s); a value present on both must match.
        """
        if self.size is not None and other.size is not None and self.size != other.size:
            return f"size changed from {self.size} to {other.size}"
        if self.etag is not None and other.etag is not None and self.etag != other.etag:
            return f"ETag changed from {self.etag} to {other.etag}"
        if (
            self.last_modified is not None
            and other.last_modified is not None
            and self.last_modified != other.last_modified
        ):
            return f"Last-Modified changed from {self.last_modified} to {other.last_modified}"
        return None


def header_map(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Response headers as a dict of lowercased names (``multi_items()`` of httpx's
    ``Headers``), repeated ones joined with ", " as ``Headers.get`` joins them. Checking
    a 206 looks up eight headers; ``Headers.get`` scans the whole list for each."""
    found: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        found[key] = f"{found[key]}, {value}" if key in found else value
    return found
