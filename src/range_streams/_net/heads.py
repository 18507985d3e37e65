"""HTTP/1.1 message heads in the common, strict form, without h11's per-field machinery.

h11 validates and normalises every header of every message through a few regexes and
objects each, which is much of a small request's CPU. Nearly every
exchange the library makes is the same simple shape: a GET with a handful of headers,
answered by a 200/206 with one Content-Length. This module writes and reads exactly that
shape, with h11's grammar (RFC 9110/9112, as h11's ``_abnf`` spells it), and says
``None`` for anything else, which ``Exchange`` then hands to h11 whole: a request with a
body or framing headers, no or several Host headers, 1xx responses, obsolete line
folding, chunked or close-delimited bodies, more than one Content-Length, versions other
than 1.0/1.1, bare-LF line ends. So whatever is accepted here, h11 would accept and read
the same way (tests/test_heads.py checks the two against each other), and whatever is
odd keeps h11's handling and error messages.

Response heads come from the network, so reading one costs time linear in its bytes
whatever they are: lines are split and checked by C scans, never by a pattern that can
backtrack (which can spend seconds of CPU on one long invalid field line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "Head",
    "fields_say_close",
    "parse_fields",
    "parse_response_head",
    "says_close",
    "write_request_head",
]

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD_VCHAR = rb"[^\x00\s]"  # visible or obs-text, as h11 reads it
_FIELD_CONTENT = rb"%s+(?:[ \t]+%s+)*" % (_FIELD_VCHAR, _FIELD_VCHAR)

# NUL never occurs in a valid name or value, so joining them on NUL validates all of
# them with one regex call each (a value can then not smuggle a CRLF into the head),
# once the NULs are counted: one per field, or a field held one of its own. A value
# (h11's field-content, or empty) is bad if it holds CR, LF, FF or VT, or starts or
# ends with SP or HTAB; ``_BAD_VALUE`` finds any of these in the joined values.
_NAMES = re.compile(rb"(?:%s\x00)*" % _TOKEN)
_BAD_VALUE = re.compile(rb"[\r\n\f\v]|\x00[ \t]|[ \t]\x00")
_METHOD = re.compile(_TOKEN)
_TARGET = re.compile(rb"[\x21-\x7e]+")
_FRAMING = (b"content-length", b"transfer-encoding")

_DIGITS = b"0123456789"
_TOKEN_BYTES = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Not allowed in a field value or reason phrase (h11: anything but NUL and whitespace,
# with inner spaces and tabs); a CR or LF here is one not paired as a line end.
_NOT_IN_TEXT = b"\x00\r\n\x0c\x0b"


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each field the slow way
class Head:
    """A response's status line and headers (names as the server spelled them).

    ``fields``, for an all-ASCII head read here: lowercased names to values, repeated
    names joined with ", " (what httpx's ``Headers.get`` returns), so that the checks of
    every answer need not go through ``Headers`` again. ``None`` otherwise.
    """

    status_code: int
    reason: bytes
    http_version: bytes  # b"1.1"
    headers: list[tuple[bytes, bytes]]
    fields: dict[str, str] | None = field(default=None, compare=False)


def write_request_head(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
) -> bytes | None:
    """The head of a body-less request, Host first as h11 writes it; ``None`` if the
    request is not of the simple shape (h11 then writes it, or says what is wrong)."""
    names, values = zip(*headers, strict=True) if headers else ((), ())
    host = _host_index(names)
    # Values joined on NUL, with one in front: a value is valid when it holds no CR, LF,
    # FF, VT or NUL of its own (the count) and neither starts nor ends with SP or HTAB.
    joined = b"\x00%s\x00" % b"\x00".join(values)
    if (
        host is None
        or not _METHOD.fullmatch(method)
        or not _TARGET.fullmatch(target)
        or joined.count(0) != len(values) + 1
        or _BAD_VALUE.search(joined)
    ):
        return None
    if host:
        headers = [headers[host], *headers[:host], *headers[host + 1 :]]
    fields = b"\r\n".join(b"%s: %s" % pair for pair in headers)
    return b"%s %s HTTP/1.1\r\n%s\r\n\r\n" % (method, target, fields)


_HOST_INDEX: dict[tuple[bytes, ...], int | None] = {}


def _host_index(names: tuple[bytes, ...]) -> int | None:
    """Where Host is among ``names``, or ``None`` if they are not of the simple shape
    (an invalid name, no or several Host, a framing header). A client sends the same few
    sets of names over and over: the answers are kept."""
    known = _HOST_INDEX.get(names, -1)
    if known != -1:
        return known
    lowered = [name.lower() for name in names]
    joined = b"\x00".join(names) + b"\x00"
    valid = (
        lowered.count(b"host") == 1
        and not any(name in _FRAMING for name in lowered)
        # A NUL of a name's own would pass as a separator: count them.
        and joined.count(0) == len(names)
        and _NAMES.fullmatch(joined) is not None
    )
    index = lowered.index(b"host") if valid else None
    if len(_HOST_INDEX) >= 256:  # bounded: arbitrary names must not grow it forever
        _HOST_INDEX.clear()
    _HOST_INDEX[names] = index
    return index


def parse_response_head(block: bytes) -> tuple[Head, int | None] | None:
    """``block`` is a head up to the CRLF of its last header line (the blank line not
    included). The head and its Content-Length (``None``: none given), or ``None`` when
    the head is not of the simple shape.

    Linear in ``len(block)`` for every input: each byte is examined a bounded number of
    times by C scans (``split``, ``partition``, ``strip``, ``join``, ``translate``), never
    by a backtracking pattern (tests/test_heads.py counts the bytes each step is handed).
    """
    lines = split_lines(block)
    status = parse_status_line(lines[0])
    if status is None or lines[-1]:  # no status line, or not ending in CRLF
        return None
    version, code, reason = status
    if code < 200:  # 1xx (informational), or not a status at all: h11's
        return None
    parsed = parse_fields(lines[1:-1])
    if parsed is None:
        return None  # some line is not a valid field line
    names, values = parsed
    # Neither names nor values hold a NUL: joined on it, they are split apart in C.
    lowered = b"\x00".join(names).lower()
    names_lowered = lowered.split(b"\x00")
    if b"transfer-encoding" in names_lowered:
        return None
    length: int | None = None
    lengths = names_lowered.count(b"content-length")
    if lengths:
        value = values[names_lowered.index(b"content-length")]
        if lengths > 1 or not _is_length(value):
            return None
        length = int(value)
    fields = None
    if not names:
        fields = {}
    elif block.isascii():
        keys = lowered.decode("ascii").split("\x00")
        texts = b"\x00".join(values).decode("ascii").split("\x00")
        fields = dict(zip(keys, texts, strict=True))
        if len(fields) < len(keys):  # a repeated name: joined, as Headers.get joins
            fields = {}
            for key, text in zip(keys, texts, strict=True):
                fields[key] = f"{fields[key]}, {text}" if key in fields else text
    headers = list(zip(names, values, strict=True))
    return Head(code, reason, version, headers, fields), length


def split_lines(block: bytes) -> list[bytes]:
    """``block``'s lines, split at each CRLF (a stray CR or LF stays inside a line,
    where the checks below refuse it)."""
    return block.split(b"\r\n")


def parse_status_line(line: bytes) -> tuple[bytes, int, bytes] | None:
    """``(version, status, reason)`` of an ``HTTP/1.0`` or ``HTTP/1.1`` status line as
    h11 reads it (the reason may be absent; it holds no NUL, CR, LF, FF or VT), else
    None."""
    if line[:7] != b"HTTP/1." or line[8:9] != b" " or line[7:8] not in (b"0", b"1"):
        return None
    code = line[9:12]
    if len(code) != 3 or code.translate(None, _DIGITS) or line[12:13] not in (b"", b" "):
        return None
    reason = line[13:]
    if _has_any(reason, _NOT_IN_TEXT):
        return None
    return line[5:8], int(code), reason


def parse_fields(lines: list[bytes]) -> tuple[list[bytes], list[bytes]] | None:
    """The names and values of field lines as h11 reads them (each a token, a colon,
    optional blanks, a value of visible or obs-text bytes with inner blanks, optional
    blanks), else None. All the lines are checked together: a few C passes over their
    bytes, not a few calls per line."""
    if not lines:
        return [], []
    parts = [line.partition(b":") for line in lines]
    names = [name for name, _, _ in parts]
    values = [value.strip(b" \t") for _, _, value in parts]
    count = len(parts)
    joined_names = b"\x00".join(names)
    joined_values = b"\x00".join(values)
    if (
        not all(names)
        or not all(colon for _, colon, _ in parts)
        # A name is a token: deleting token bytes leaves only the separators.
        or joined_names.translate(None, _TOKEN_BYTES) != b"\x00" * (count - 1)
        # A value holds no NUL (but the separators), CR, LF, FF or VT.
        or len(joined_values.translate(None, _NOT_IN_TEXT)) != len(joined_values) - count + 1
    ):
        return None
    return names, values


def _has_any(data: bytes, chars: bytes) -> bool:
    """Whether ``data`` holds any byte of ``chars`` (one C pass: those bytes deleted,
    the length compared)."""
    return len(data.translate(None, chars)) != len(data)


def _is_length(value: bytes) -> bool:
    # h11 refuses Content-Lengths of more than 20 digits.
    return 0 < len(value) <= 20 and not value.translate(None, _DIGITS)


def says_close(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a Connection header lists ``close`` (h11's reading: any of them, any case)."""
    return any(
        name.lower() == b"connection"
        and b"close" in [token.strip() for token in value.lower().split(b",")]
        for name, value in headers
    )


def fields_say_close(fields: dict[str, str]) -> bool:
    """``says_close`` of a head's ``fields`` (repeated Connection headers joined by ", ")."""
    value = fields.get("connection")
    return value is not None and "close" in [token.strip() for token in value.lower().split(",")]
