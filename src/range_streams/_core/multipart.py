"""Parse ``multipart/byteranges`` bodies (RFC 9110 §14.6), without any I/O.

A request for several ranges comes back as one body holding one part per range. Real
servers do not agree on the details, so the parser is lenient where the meaning is still
unambiguous and strict where it is not:

* The boundary may be quoted (Twisted) or bare; header names come in any case (Apache
  and Twisted send ``Content-range``); parts may carry extra headers, come in any order,
  or cover more than was asked (lighttpd merges nearby ranges).
* CRLFs around delimiters are optional: Starlette and Caddy omit the one before the first
  delimiter, Starlette the one after the close delimiter, and bare LF line ends are
  accepted too.
* A part's length comes from its ``Content-Range``, never from searching for the next
  boundary: binary data may contain the boundary string, and a body that is shorter than
  declared, or whose data is not followed by a delimiter, is an error rather than a guess.

Every failure is a ``MultipartError`` or ``ContentRangeError``, so callers can rely on one
exception tree whatever bytes the network delivered. Parsing is linear in the body size.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ContentRangeError, InvalidRangeError, MultipartError
from .range_headers import parse_content_range

__all__ = ["Part", "boundary_from_content_type", "extract", "parse_byteranges"]

# RFC 2046 caps boundaries at 70 characters; some room for sloppy servers, but a limit,
# because the boundary is compared at every delimiter.
_MAX_BOUNDARY = 200
# A part's headers are a couple of short lines; anything far bigger is not a real server.
_MAX_HEADER_BLOCK = 8 * 1024
# After a delimiter: optional transport padding (RFC 2046 §5.1.1), then a line end.
_DELIMITER_LINE_END = re.compile(rb"[ \t]*\r?\n")
_MEDIA_TYPE = "multipart/byteranges"
# One ``; name=value`` parameter; the value is a quoted-string or a bare token.
_PARAMETER = re.compile(r';\s*([^\s;=]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;"]*))')
_QUOTED_PAIR = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a multipart body: the file's bytes ``[start, stop)`` of ``total``.

    ``data`` is ``bytes`` (a copy of the part's slice of the body), so a part does not
    keep the whole response alive; ``extract`` hands it out uncopied when it is exactly
    what was wanted, so the common case still copies each byte once.
    """

    start: int
    stop: int
    total: int | None
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop or len(self.data) != self.stop - self.start:
            raise MultipartError(
                f"part [{self.start}, {self.stop}) cannot hold {len(self.data)} bytes"
            )


def boundary_from_content_type(value: str) -> str:
    """The boundary of a ``multipart/byteranges`` Content-Type, or ``MultipartError``."""
    media_type = value.split(";", 1)[0].strip().lower()
    if media_type != _MEDIA_TYPE:
        raise MultipartError(f"expected {_MEDIA_TYPE}, got Content-Type {value!r}")
    boundaries = {
        _QUOTED_PAIR.sub(r"\1", quoted) if quoted else bare
        for name, quoted, bare in _PARAMETER.findall(value)
        if name.lower() == "boundary"
    }
    if len(boundaries) != 1:
        reason = "no" if not boundaries else "conflicting"
        raise MultipartError(f"{reason} boundary in Content-Type {value!r}")
    boundary = boundaries.pop()
    _encode_boundary(boundary)
    return boundary


def _encode_boundary(boundary: str) -> bytes:
    if not 0 < len(boundary) <= _MAX_BOUNDARY:
        raise MultipartError(f"multipart boundary must be 1-{_MAX_BOUNDARY} characters")
    if "\r" in boundary or "\n" in boundary:
        raise MultipartError(f"multipart boundary {boundary!r} contains a line break")
    try:
        return boundary.encode("latin-1")
    except UnicodeEncodeError:
        raise MultipartError(f"multipart boundary {boundary!r} is not latin-1") from None


def parse_byteranges(body: bytes, boundary: str) -> list[Part]:
    """The parts of a ``multipart/byteranges`` body, in the order the server sent them.

    The preamble and epilogue are ignored. Raises ``MultipartError`` (or
    ``ContentRangeError`` for a bad part ``Content-Range``) if the body is malformed,
    truncated, has no parts, or its parts disagree on the file's total length.
    """
    if not isinstance(body, bytes):
        body = bytes(body)  # a bytearray would make the parts' data mutable
    delimiter = b"--" + _encode_boundary(boundary)
    pos, closed = _first_delimiter(body, delimiter)
    parts: list[Part] = []
    while not closed:
        part, at = _read_part(body, pos, delimiter)
        parts.append(part)
        after = _delimiter_end(body, at, delimiter)
        if after is None:
            raise MultipartError(f"malformed boundary delimiter after part {_span(part)}")
        pos, closed = after
    if not parts:
        raise MultipartError("multipart body has no parts")
    _check_totals(parts)
    return parts


def _span(part: Part) -> str:
    return f"[{part.start}, {part.stop})"


def _delimiter_end(body: bytes, at: int, delimiter: bytes) -> tuple[int, bool] | None:
    """Where the delimiter line at ``at`` ends, and whether it closes the body.

    None if ``at`` holds no delimiter, or one followed by other text (a longer boundary
    that merely starts with ours).
    """
    if not body.startswith(delimiter, at):
        return None
    pos = at + len(delimiter)
    if body.startswith(b"--", pos):
        return pos + 2, True
    line_end = _DELIMITER_LINE_END.match(body, pos)
    return None if line_end is None else (line_end.end(), False)


def _first_delimiter(body: bytes, delimiter: bytes) -> tuple[int, bool]:
    # The preamble may contain anything except a delimiter at the start of a line; the
    # start of the body counts as a line start, since Starlette and Caddy begin there.
    # One regex search rather than a loop over candidates keeps a hostile preamble full
    # of near-miss delimiters cheap.
    first = re.compile(
        rb"^" + re.escape(delimiter) + rb"(?:(--)|" + _DELIMITER_LINE_END.pattern + rb")",
        re.MULTILINE,
    ).search(body)
    if first is None:
        raise MultipartError("multipart body contains no boundary delimiter")
    return first.end(), first.group(1) is not None


def _read_part(body: bytes, pos: int, delimiter: bytes) -> tuple[Part, int]:
    """The part whose headers start at ``pos``, and where its next delimiter starts."""
    (start, stop, total), pos = _read_part_range(body, pos)
    end = pos + stop - start
    if end > len(body):
        raise MultipartError(
            f"part [{start}, {stop}) declares {stop - start} bytes "
            f"but the body has {len(body) - pos} left"
        )
    part = Part(start, stop, total, body[pos:end])
    return part, _next_delimiter(body, end, delimiter, part)


def _read_part_range(body: bytes, pos: int) -> tuple[tuple[int, int, int | None], int]:
    """The ``(start, stop, total)`` of the part headers at ``pos``, and where its data starts."""
    content_range: str | None = None
    limit = min(len(body), pos + _MAX_HEADER_BLOCK)
    while True:
        newline = body.find(b"\n", pos, limit)
        if newline < 0:
            if limit < len(body):
                raise MultipartError(f"part headers exceed {_MAX_HEADER_BLOCK} bytes")
            raise MultipartError("multipart body ends inside part headers")
        line = body[pos:newline].removesuffix(b"\r")
        pos = newline + 1
        if not line:
            break
        name, colon, value = line.partition(b":")
        if not colon:
            raise MultipartError(f"malformed part header line {line[:80]!r}")
        if name.strip().lower() != b"content-range":
            continue
        if content_range is not None:
            raise MultipartError("a part has more than one Content-Range")
        content_range = value.decode("latin-1")
    return _satisfied_range(content_range), pos


def _satisfied_range(value: str | None) -> tuple[int, int, int | None]:
    if value is None:
        raise MultipartError("a part has no Content-Range, so its bytes cannot be placed")
    parsed = parse_content_range(value)
    if parsed.start is None or parsed.stop is None:
        raise ContentRangeError(f"a part has an unsatisfied Content-Range: {value!r}")
    return parsed.start, parsed.stop, parsed.total


def _next_delimiter(body: bytes, at: int, delimiter: bytes, part: Part) -> int:
    # The CRLF before a delimiter belongs to the delimiter, but some servers drop it.
    for line_end in (b"\r\n", b"\n", b""):
        if body.startswith(line_end, at) and body.startswith(delimiter, at + len(line_end)):
            return at + len(line_end)
    if at == len(body):
        raise MultipartError(f"multipart body ends after part {_span(part)} without a delimiter")
    raise MultipartError(
        f"part {_span(part)} is not followed by a boundary delimiter: its Content-Range "
        "does not match its length"
    )


def _check_totals(parts: Sequence[Part]) -> None:
    totals = {part.total for part in parts if part.total is not None}
    if len(totals) > 1:
        raise MultipartError(f"parts disagree on the file's total length: {sorted(totals)}")


def extract(parts: Sequence[Part], wanted: Sequence[tuple[int, int]]) -> list[bytes]:
    """The bytes of each wanted ``[start, stop)``, in the order asked.

    A span may lie inside a bigger part or straddle adjacent (or overlapping) parts.
    Raises ``MultipartError`` naming the first missing bytes if the parts do not cover a
    span, and ``InvalidRangeError`` for a negative or inverted span.
    """
    index = _PartIndex(parts)
    return [index.cut(start, stop) for start, stop in wanted]


def _is_offset(value: object) -> bool:
    # bool is an int subclass, and True as an offset is always a mistake.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _PartIndex:
    """Parts sorted by start, with a running maximum of their stops.

    The running maximum finds a covering part in O(log n) even when parts nest or
    overlap, where the latest-starting part before an offset may end before it.
    """

    def __init__(self, parts: Sequence[Part]) -> None:
        self._parts = sorted(parts, key=lambda part: part.start)
        self._starts = [part.start for part in self._parts]
        self._furthest: list[Part] = []
        for part in self._parts:
            if not self._furthest or part.stop > self._furthest[-1].stop:
                self._furthest.append(part)
            else:
                self._furthest.append(self._furthest[-1])

    def cut(self, start: int, stop: int) -> bytes:
        if not (_is_offset(start) and _is_offset(stop) and start <= stop):
            raise InvalidRangeError(f"cannot extract [{start}, {stop}): negative or inverted")
        pieces: list[memoryview] = []
        pos = start
        while pos < stop:
            part = self._covering(pos, start, stop)
            end = min(stop, part.stop)
            if not pieces and end == stop:
                # One part serves it all; a slice of a whole part is the part itself
                # (bytes are immutable), so the common exact-match case copies nothing.
                return part.data[pos - part.start : end - part.start]
            pieces.append(memoryview(part.data)[pos - part.start : end - part.start])
            pos = end
        return b"".join(pieces)

    def _covering(self, pos: int, start: int, stop: int) -> Part:
        i = bisect.bisect_right(self._starts, pos) - 1
        if i >= 0 and self._furthest[i].stop > pos:
            return self._furthest[i]
        gap_end = stop if i + 1 == len(self._starts) else min(stop, self._starts[i + 1])
        raise MultipartError(
            f"the response lacks bytes [{pos}, {gap_end}) of the wanted [{start}, {stop})"
        )
