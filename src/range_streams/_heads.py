"""HTTP/1.1 message heads in the common, strict form, without h11's per-field machinery.

h11 validates and normalises every header of every message through a few regexes and
objects each; for ``fetch_many`` that was a sixth of the client's CPU. Nearly every
exchange the library makes is the same simple shape: a GET with a handful of headers,
answered by a 200/206 with one Content-Length. This module writes and reads exactly that
shape, with h11's grammar (RFC 9110/9112, as h11's ``_abnf`` spells it), and says
``None`` for anything else, which ``Exchange`` then hands to h11 whole: a request with a
body or framing headers, no or several Host headers, 1xx responses, obsolete line
folding, chunked or close-delimited bodies, more than one Content-Length, versions other
than 1.0/1.1, bare-LF line ends. So whatever is accepted here, h11 would accept and read
the same way (tests/test_http11.py checks the two against each other), and whatever is
odd keeps h11's handling and error messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Head", "parse_response_head", "says_close", "write_request_head"]

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD_VCHAR = rb"[^\x00\s]"  # visible or obs-text, as h11 reads it
_FIELD_CONTENT = rb"%s+(?:[ \t]+%s+)*" % (_FIELD_VCHAR, _FIELD_VCHAR)

# NUL never occurs in a valid name or value, so joining them on NUL validates all of
# them with one regex call each (a value can then not smuggle a CRLF into the head),
# once the NULs are counted: one per field, or a field held one of its own.
_NAMES = re.compile(rb"(?:%s\x00)*" % _TOKEN)
_VALUES = re.compile(rb"(?:(?:%s)?\x00)*" % _FIELD_CONTENT)
_METHOD = re.compile(_TOKEN)
_TARGET = re.compile(rb"[\x21-\x7e]+")
_FRAMING = (b"content-length", b"transfer-encoding")

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ((?:[ \t]|%s)*))?" % _FIELD_VCHAR)
_FIELD_LINES = re.compile(rb"(?:%s:[ \t]*(?:%s)?[ \t]*\r\n)*" % (_TOKEN, _FIELD_CONTENT))
# Once the lines are known good, these pick them apart in C: (name, value) pairs, and
# the framing headers, which are rare enough to look for separately.
_FIELD = re.compile(rb"(%s):[ \t]*((?:%s)?)[ \t]*\r\n" % (_TOKEN, _FIELD_CONTENT))
_LENGTHS = re.compile(rb"^content-length:[ \t]*((?:%s)?)[ \t]*\r$" % _FIELD_CONTENT, re.I | re.M)
_CHUNKED = re.compile(rb"^transfer-encoding:", re.I | re.M)
_DIGITS = re.compile(rb"[0-9]{1,20}")  # h11 refuses longer Content-Lengths


@dataclass(frozen=True, slots=True)
class Head:
    """A response's status line and headers (names as the server spelled them)."""

    status_code: int
    reason: bytes
    http_version: bytes  # b"1.1"
    headers: list[tuple[bytes, bytes]]


def write_request_head(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
) -> bytes | None:
    """The head of a body-less request, Host first as h11 writes it; ``None`` if the
    request is not of the simple shape (h11 then writes it, or says what is wrong)."""
    names = [name for name, _ in headers]
    lowered = [name.lower() for name in names]
    joined_names = b"\x00".join(names) + b"\x00"
    joined_values = b"\x00".join(value for _, value in headers) + b"\x00"
    if (
        lowered.count(b"host") != 1
        or any(name in _FRAMING for name in lowered)
        or not _METHOD.fullmatch(method)
        or not _TARGET.fullmatch(target)
        # A NUL of a name's or value's own would pass as a separator: count them.
        or joined_names.count(0) != len(headers)
        or joined_values.count(0) != len(headers)
        or not _NAMES.fullmatch(joined_names)
        or not _VALUES.fullmatch(joined_values)
    ):
        return None
    host = lowered.index(b"host")
    lines = [b"%s %s HTTP/1.1\r\n%s: %s\r\n" % (method, target, *headers[host])]
    lines.extend(b"%s: %s\r\n" % pair for i, pair in enumerate(headers) if i != host)
    lines.append(b"\r\n")
    return b"".join(lines)


def parse_response_head(block: bytes) -> tuple[Head, int | None] | None:
    """``block`` is a head up to the CRLF of its last header line (the blank line not
    included). The head and its Content-Length (``None``: none given), or ``None`` when
    the head is not of the simple shape."""
    line_end = block.find(b"\r\n")
    status = _STATUS_LINE.fullmatch(block, 0, line_end) if line_end >= 0 else None
    if status is None or status[2][:1] == b"1":  # 1xx: informational, h11's
        return None
    fields = block[line_end + 2 :]
    if not _FIELD_LINES.fullmatch(fields) or _CHUNKED.search(fields):
        return None
    lengths = _LENGTHS.findall(fields)
    if len(lengths) > 1 or (lengths and not _DIGITS.fullmatch(lengths[0])):
        return None
    length = int(lengths[0]) if lengths else None
    head = Head(int(status[2]), status[3] or b"", b"1." + status[1], _FIELD.findall(fields))
    return head, length


def says_close(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a Connection header lists ``close`` (h11's reading: any of them, any case)."""
    return any(
        name.lower() == b"connection"
        and b"close" in [token.strip() for token in value.lower().split(b",")]
        for name, value in headers
    )
