"""multipart/byteranges parsing against the dialects real servers send, and fuzzing.

The bodies are written out by hand in each server's own layout (CRLF placement, header
case, boundary style), so a regression in any dialect shows up as that server's name.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from range_streams._core.errors import (
    ContentRangeError,
    InvalidRangeError,
    MultipartError,
    RangeStreamError,
)
from range_streams._core.multipart import (
    Part,
    boundary_from_content_type,
    extract,
    parse_byteranges,
)

FILE = b"The quick brown fox jumps over the lazy dog"  # 43 bytes
assert FILE[0:3] == b"The" and FILE[4:9] == b"quick" and FILE[40:43] == b"dog"

FAST = settings(max_examples=200, deadline=None)


# --- Content-Type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "boundary"),
    [
        ("multipart/byteranges; boundary=00000000000000000001", "00000000000000000001"),
        ("multipart/byteranges;boundary=abc", "abc"),
        ('multipart/byteranges; boundary="17f2a0c1d3e4"', "17f2a0c1d3e4"),  # Twisted
        ("Multipart/ByteRanges; BOUNDARY=abc", "abc"),
        ("  multipart/byteranges ;  boundary = abc  ", "abc"),
        ("multipart/byteranges; charset=utf-8; boundary=abc; x=y", "abc"),
        ('multipart/byteranges; boundary="a b;c=d"', "a b;c=d"),
        ('multipart/byteranges; boundary="a\\"b"', 'a"b'),
        ('multipart/byteranges; x="boundary=no"; boundary=yes', "yes"),
    ],
)
def test_boundary_from_content_type(value: str, boundary: str) -> None:
    assert boundary_from_content_type(value) == boundary


@pytest.mark.parametrize(
    "value",
    [
        "text/plain; boundary=abc",
        "multipart/mixed; boundary=abc",
        "multipart/byteranges",
        "multipart/byteranges; charset=utf-8",
        'multipart/byteranges; boundary=""',
        "multipart/byteranges; boundary=",
        "multipart/byteranges; boundary=a; boundary=b",
        "multipart/byteranges; boundary=" + "x" * 201,
        "",
    ],
)
def test_boundary_from_content_type_rejects(value: str) -> None:
    with pytest.raises(MultipartError):
        boundary_from_content_type(value)


# --- dialects -------------------------------------------------------------------------------

NGINX = (
    b"\r\n--00000000000000000001\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Range: bytes 0-2/43\r\n"
    b"\r\n"
    b"The"
    b"\r\n--00000000000000000001\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Range: bytes 40-42/43\r\n"
    b"\r\n"
    b"dog"
    b"\r\n--00000000000000000001--\r\n"
)
APACHE = (
    b"\r\n--5f0a1b2c3d4e5f60\r\n"
    b"Content-type: text/plain\r\n"
    b"Content-range: bytes 0-2/43\r\n"
    b"\r\n"
    b"The"
    b"\r\n--5f0a1b2c3d4e5f60\r\n"
    b"Content-type: text/plain\r\n"
    b"Content-range: bytes 40-42/43\r\n"
    b"\r\n"
    b"dog"
    b"\r\n--5f0a1b2c3d4e5f60--\r\n"
)
# Starlette: no CRLF before the first delimiter, none after the close delimiter.
STARLETTE = (
    b"--a1b2c3d4e5f6a7b8c9d0e1f2a3\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Range: bytes 0-2/43\r\n"
    b"\r\n"
    b"The\r\n"
    b"--a1b2c3d4e5f6a7b8c9d0e1f2a3\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Range: bytes 40-42/43\r\n"
    b"\r\n"
    b"dog\r\n"
    b"--a1b2c3d4e5f6a7b8c9d0e1f2a3--"
)
# Caddy (Go's mime/multipart): no leading CRLF, headers sorted, Content-Range first.
CADDY = (
    b"--3d6b6a416f9b5\r\n"
    b"Content-Range: bytes 0-2/43\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"The"
    b"\r\n--3d6b6a416f9b5\r\n"
    b"Content-Range: bytes 40-42/43\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"dog"
    b"\r\n--3d6b6a416f9b5--\r\n"
)
# Twisted quotes the boundary in Content-Type and spells the headers Content-type/-range.
TWISTED = (
    b"\r\n--17f2a0c1d3e4\r\n"
    b"Content-type: text/plain\r\n"
    b"Content-range: bytes 0-2/43\r\n"
    b"\r\n"
    b"The"
    b"\r\n--17f2a0c1d3e4\r\n"
    b"Content-type: text/plain\r\n"
    b"Content-range: bytes 40-42/43\r\n"
    b"\r\n"
    b"dog"
    b"\r\n--17f2a0c1d3e4--\r\n"
)
# lighttpd merged 0-2 and 4-8 into one part covering 0-8.
LIGHTTPD = (
    b"\r\n--fkj49sn38dcn3\r\n"
    b"Content-Range: bytes 0-8/43\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"The quick"
    b"\r\n--fkj49sn38dcn3\r\n"
    b"Content-Range: bytes 40-42/43\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"dog"
    b"\r\n--fkj49sn38dcn3--\r\n"
)
REORDERED = (
    b"\r\n--b\r\nContent-Range: bytes 40-42/43\r\n\r\ndog"
    b"\r\n--b\r\nContent-Range: bytes 4-8/43\r\n\r\nquick"
    b"\r\n--b\r\nContent-Range: bytes 0-2/43\r\n\r\nThe"
    b"\r\n--b--\r\n"
)
PREAMBLE_EPILOGUE = (
    b"This is the preamble; it mentions --b but not at a line start.\r\n"
    b"--bb\r\n"  # a longer boundary that merely starts with ours
    b"--b\r\nContent-Range: bytes 0-2/43\r\n\r\nThe"
    b"\r\n--b\r\nContent-Range: bytes 40-42/43\r\n\r\ndog"
    b"\r\n--b--\r\nThis is the epilogue.\r\n--b\r\nContent-Range: bytes 4-8/43\r\n\r\nquick"
)
LF_ONLY_NO_CRLF_BEFORE_DELIMITERS = (
    b"--b\nCONTENT-RANGE: bytes 0-2/43\n\nThe--b\ncontent-range: bytes 40-42/43\n\ndog--b--"
)
TRANSPORT_PADDING = (
    b"--b \t\r\nContent-Range: bytes 0-2/43\r\n\r\nThe\r\n--b  \r\n"
    b"Content-Range: bytes 40-42/43\r\n\r\ndog\r\n--b--\r\n"
)
UNKNOWN_TOTAL = (
    b"--b\r\nContent-Range: bytes 0-2/*\r\n\r\nThe\r\n"
    b"--b\r\nContent-Range: bytes 40-42/*\r\n\r\ndog\r\n--b--\r\n"
)
ADJACENT = (
    b"--b\r\nContent-Range: bytes 0-2/43\r\n\r\nThe\r\n"
    b"--b\r\nContent-Range: bytes 3-8/43\r\n\r\n quick\r\n"
    b"--b\r\nContent-Range: bytes 40-42/43\r\n\r\ndog\r\n--b--\r\n"
)


@pytest.mark.parametrize(
    ("body", "boundary", "spans"),
    [
        pytest.param(NGINX, "00000000000000000001", [(0, 3), (40, 43)], id="nginx"),
        pytest.param(APACHE, "5f0a1b2c3d4e5f60", [(0, 3), (40, 43)], id="apache"),
        pytest.param(STARLETTE, "a1b2c3d4e5f6a7b8c9d0e1f2a3", [(0, 3), (40, 43)], id="starlette"),
        pytest.param(CADDY, "3d6b6a416f9b5", [(0, 3), (40, 43)], id="caddy"),
        pytest.param(TWISTED, "17f2a0c1d3e4", [(0, 3), (40, 43)], id="twisted"),
        pytest.param(LIGHTTPD, "fkj49sn38dcn3", [(0, 9), (40, 43)], id="lighttpd-merged"),
        pytest.param(REORDERED, "b", [(40, 43), (4, 9), (0, 3)], id="reordered"),
        pytest.param(PREAMBLE_EPILOGUE, "b", [(0, 3), (40, 43)], id="preamble-epilogue"),
        pytest.param(LF_ONLY_NO_CRLF_BEFORE_DELIMITERS, "b", [(0, 3), (40, 43)], id="bare-lf"),
        pytest.param(TRANSPORT_PADDING, "b", [(0, 3), (40, 43)], id="transport-padding"),
        pytest.param(UNKNOWN_TOTAL, "b", [(0, 3), (40, 43)], id="unknown-total"),
        pytest.param(ADJACENT, "b", [(0, 3), (3, 9), (40, 43)], id="adjacent"),
    ],
)
def test_dialects(body: bytes, boundary: str, spans: list[tuple[int, int]]) -> None:
    parts = parse_byteranges(body, boundary)
    assert [(p.start, p.stop) for p in parts] == spans
    assert all(p.data == FILE[p.start : p.stop] for p in parts)
    assert {p.total for p in parts} <= {43, None}


@pytest.mark.parametrize(
    ("body", "boundary"),
    [
        (NGINX, "00000000000000000001"),
        (APACHE, "5f0a1b2c3d4e5f60"),
        (STARLETTE, "a1b2c3d4e5f6a7b8c9d0e1f2a3"),
        (CADDY, "3d6b6a416f9b5"),
        (TWISTED, "17f2a0c1d3e4"),
    ],
)
def test_extract_what_was_asked(body: bytes, boundary: str) -> None:
    parts = parse_byteranges(body, boundary)
    assert extract(parts, [(40, 43), (0, 3), (1, 2), (0, 0)]) == [b"dog", b"The", b"h", b""]


def test_extract_from_merged_superset() -> None:
    parts = parse_byteranges(LIGHTTPD, "fkj49sn38dcn3")
    assert extract(parts, [(0, 3), (4, 9), (41, 42)]) == [b"The", b"quick", b"o"]


def test_extract_joins_adjacent_parts() -> None:
    parts = parse_byteranges(ADJACENT, "b")
    assert extract(parts, [(1, 6), (0, 9)]) == [b"he qu", b"The quick"]


def test_extract_from_overlapping_and_nested_parts() -> None:
    parts = [
        Part(0, 20, 43, FILE[0:20]),
        Part(5, 10, 43, FILE[5:10]),
        Part(15, 30, 43, FILE[15:30]),
    ]
    assert extract(parts, [(6, 25), (12, 18), (0, 30)]) == [FILE[6:25], FILE[12:18], FILE[0:30]]


def test_extract_exact_part_is_not_copied() -> None:
    parts = parse_byteranges(NGINX, "00000000000000000001")
    assert extract(parts, [(0, 3)])[0] is parts[0].data


def test_boundary_inside_binary_data() -> None:
    data = b"\x00\r\n--xyz\r\nContent-Range: bytes 0-1/2\r\n\r\n\xff\r\n--xyz--\r\n\x01"
    body = (
        b"--xyz\r\nContent-Range: bytes 100-%d/1000\r\n\r\n" % (99 + len(data))
        + data
        + b"\r\n--xyz\r\nContent-Range: bytes 500-501/1000\r\n\r\n--\r\n--xyz--\r\n"
    )
    parts = parse_byteranges(body, "xyz")
    assert [(p.start, p.stop, p.data) for p in parts] == [
        (100, 100 + len(data), data),
        (500, 502, b"--"),
    ]


def test_accepts_bytearray_and_copies_it() -> None:
    body = bytearray(NGINX)
    parts = parse_byteranges(body, "00000000000000000001")  # type: ignore[arg-type]
    body[:] = b"x" * len(body)
    assert [p.data for p in parts] == [b"The", b"dog"]
    assert all(type(p.data) is bytes for p in parts)


# --- errors ---------------------------------------------------------------------------------

GOOD_PART = b"--b\r\nContent-Range: bytes 0-2/43\r\n\r\nThe\r\n"


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        pytest.param(b"", MultipartError, "no boundary", id="empty"),
        pytest.param(b"hello world", MultipartError, "no boundary", id="no-delimiter"),
        pytest.param(b"--b--\r\n", MultipartError, "no parts", id="no-parts"),
        pytest.param(b"x--b\r\n", MultipartError, "no boundary", id="delimiter-mid-line"),
        pytest.param(
            b"--b\r\nContent-Type: text/plain\r\n\r\nThe\r\n--b--",
            MultipartError,
            "no Content-Range",
            id="no-content-range",
        ),
        pytest.param(
            b"--b\r\nContent-Range: bytes 0-4/43\r\n\r\nThe",
            MultipartError,
            "declares 5 bytes",
            id="short-body",
        ),
        pytest.param(
            b"--b\r\nContent-Range: bytes 0-2/43\r\n\r\nThe",
            MultipartError,
            "ends after part",
            id="no-close-delimiter",
        ),
        pytest.param(
            b"--b\r\nContent-Range: bytes 0-2/43\r\n\r\nThe \r\n--b--",
            MultipartError,
            "not followed by a boundary",
            id="length-mismatch",
        ),
        pytest.param(
            GOOD_PART + b"--bX\r\nContent-Range: bytes 4-8/43\r\n\r\nquick\r\n--b--",
            MultipartError,
            "malformed boundary delimiter",
            id="garbage-after-delimiter",
        ),
        pytest.param(
            GOOD_PART + b"--b\r\nContent-Range: bytes 4-8/44\r\n\r\nquick\r\n--b--",
            MultipartError,
            "disagree",
            id="inconsistent-totals",
        ),
        pytest.param(
            b"--b\r\nX-Pad: "
            + b"x" * 9000
            + b"\r\nContent-Range: bytes 0-2/43\r\n\r\nThe\r\n--b--",
            MultipartError,
            "exceed",
            id="huge-header-block",
        ),
        pytest.param(
            b"--b\r\nContent-Range: bytes 0-2/43\r\n",
            MultipartError,
            "ends inside part headers",
            id="headers-never-end",
        ),
        pytest.param(
            b"--b\r\nContent-Range bytes 0-2/43\r\n\r\nThe\r\n--b--",
            MultipartError,
            "malformed part header",
            id="header-without-colon",
        ),
        pytest.param(
            b"--b\r\nContent-Range: bytes 0-2/43\r\ncontent-range: bytes 0-2/43\r\n"
            b"\r\nThe\r\n--b--",
            MultipartError,
            "more than one",
            id="two-content-ranges",
        ),
        pytest.param(
            b"--b\r\nContent-Range: bytes 0-" + b"9" * 30 + b"/43\r\n\r\nThe\r\n--b--",
            ContentRangeError,
            "absurd",
            id="number-too-long",
        ),
        pytest.param(
            b"--b\r\nContent-Range: bytes 2-0/43\r\n\r\nThe\r\n--b--",
            ContentRangeError,
            "ends before it starts",
            id="inverted-range",
        ),
        pytest.param(
            b"--b\r\nContent-Range: bytes */43\r\n\r\nThe\r\n--b--",
            ContentRangeError,
            "unsatisfied",
            id="unsatisfied-range",
        ),
        pytest.param(
            b"--b\r\nContent-Range: items 0-2/43\r\n\r\nThe\r\n--b--",
            ContentRangeError,
            "malformed",
            id="wrong-unit",
        ),
    ],
)
def test_parse_errors(body: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_byteranges(body, "b")


@pytest.mark.parametrize("boundary", ["", "x" * 201, "a\r\nb", "\u2603"])
def test_bad_boundary(boundary: str) -> None:
    with pytest.raises(MultipartError, match="boundary"):
        parse_byteranges(NGINX, boundary)


def test_extract_names_the_missing_span() -> None:
    parts = parse_byteranges(NGINX, "00000000000000000001")
    with pytest.raises(MultipartError, match=re.escape("[3, 40) of the wanted [0, 43)")):
        extract(parts, [(0, 43)])
    with pytest.raises(MultipartError, match=re.escape("[43, 50) of the wanted [41, 50)")):
        extract(parts, [(41, 50)])
    with pytest.raises(MultipartError, match=re.escape("[5, 7) of the wanted [5, 7)")):
        extract(parts, [(5, 7)])


@pytest.mark.parametrize("wanted", [(-1, 3), (3, 2), (True, 3), (0, 1.5)])
def test_extract_rejects_bad_spans(wanted: tuple[int, int]) -> None:
    parts = parse_byteranges(NGINX, "00000000000000000001")
    with pytest.raises(InvalidRangeError):
        extract(parts, [wanted])


def test_part_checks_its_length() -> None:
    with pytest.raises(MultipartError):
        Part(0, 3, None, b"ab")
    with pytest.raises(MultipartError):
        Part(3, 3, None, b"")


def test_parse_is_linear_in_body_size() -> None:
    # 20,000 one-byte parts: a quadratic parser (re-slicing or concatenating the body)
    # would take minutes; this takes well under a second.
    data = bytes(range(256)) * 80
    body = b"".join(
        b"--b\r\nContent-Range: bytes %d-%d/%d\r\n\r\n%c\r\n" % (i, i, len(data), data[i])
        for i in range(len(data))
    )
    parts = parse_byteranges(body + b"--b--", "b")
    assert b"".join(extract(parts, [(0, len(data))])) == data


# --- properties -----------------------------------------------------------------------------

BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"


@st.composite
def served_bodies(draw: st.DrawFn) -> tuple[bytes, str, bytes, list[tuple[int, int]]]:
    """A server's answer in a random dialect: (body, Content-Type, file data, wanted)."""
    data = draw(st.binary(min_size=1, max_size=300))
    size = len(data)
    wanted = []
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, size - 1))
        wanted.append((start, draw(st.integers(start + 1, size))))
    # The server may serve a superset of each span (lighttpd merges), in any order.
    served = []
    for start, stop in wanted:
        served.append(
            (start - draw(st.integers(0, start)), stop + draw(st.integers(0, size - stop)))
        )
    served = draw(st.permutations(served))
    boundary = draw(st.text(alphabet=BCHARS, min_size=1, max_size=70))
    newline = draw(st.sampled_from([b"\r\n", b"\n"]))
    total = draw(st.sampled_from([b"%d" % size, b"*"]))
    name = draw(
        st.sampled_from(["Content-Range", "content-range", "CONTENT-RANGE", "Content-range"])
    )

    delimiter = b"--" + boundary.encode()
    chunks = []
    if draw(st.booleans()):
        chunks.append(b"preamble text" + newline)
    elif draw(st.booleans()):
        chunks.append(newline)  # canonical leading CRLF; otherwise the Starlette/Caddy start
    for i, (start, stop) in enumerate(served):
        if i and draw(st.booleans()):
            chunks.append(newline)  # the CRLF before a delimiter is optional in practice
        headers = [b"%s: bytes %d-%d/%s" % (name.encode(), start, stop - 1, total)]
        if draw(st.booleans()):
            headers.insert(draw(st.integers(0, 1)), b"Content-Type: application/octet-stream")
        chunks += [delimiter, newline, newline.join(headers), newline, newline, data[start:stop]]
    if draw(st.booleans()):
        chunks.append(newline)
    chunks += [delimiter, b"--"]
    if draw(st.booleans()):
        chunks.append(newline + draw(st.sampled_from([b"", b"epilogue", delimiter + newline])))
    quoted = draw(st.booleans()) or any(c in boundary for c in "'()+,/:=?")
    param = f'"{boundary}"' if quoted else boundary
    content_type = f"multipart/byteranges; boundary={param}"
    return b"".join(chunks), content_type, data, wanted


@FAST
@given(served_bodies())
def test_extract_round_trips_any_dialect(
    served: tuple[bytes, str, bytes, list[tuple[int, int]]],
) -> None:
    body, content_type, data, wanted = served
    parts = parse_byteranges(body, boundary_from_content_type(content_type))
    assert all(p.data == data[p.start : p.stop] for p in parts)
    assert extract(parts, wanted) == [data[start:stop] for start, stop in wanted]


def _parse_or_our_error(body: bytes, boundary: str) -> None:
    try:
        parts = parse_byteranges(body, boundary)
    except RangeStreamError:
        return
    assert parts and all(isinstance(p, Part) for p in parts)


@FAST
@given(st.binary(max_size=400), st.text(max_size=12))
def test_fuzz_arbitrary_bytes(body: bytes, boundary: str) -> None:
    _parse_or_our_error(body, boundary)


@FAST
@given(
    st.sampled_from(
        [
            (NGINX, "00000000000000000001"),
            (STARLETTE, "a1b2c3d4e5f6a7b8c9d0e1f2a3"),
            (LIGHTTPD, "fkj49sn38dcn3"),
            (PREAMBLE_EPILOGUE, "b"),
            (ADJACENT, "b"),
        ]
    ),
    st.data(),
)
def test_fuzz_mutated_bodies(sample: tuple[bytes, str], data: st.DataObject) -> None:
    # Random bytes rarely look like multipart; mutating real bodies reaches the deep paths.
    body, boundary = sample
    mutable = bytearray(body)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(mutable)))
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if kind == "flip" and at < len(mutable):
            mutable[at] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del mutable[at : at + data.draw(st.integers(1, 8))]
        elif kind == "insert":
            mutable[at:at] = data.draw(st.sampled_from([b"\r\n", b"-", b"9", b":", b"--b", b"/"]))
        else:
            del mutable[at:]
    wanted = data.draw(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=3))
    try:
        extracted = extract(parse_byteranges(bytes(mutable), boundary), wanted)
    except RangeStreamError:
        return
    assert [len(chunk) for chunk in extracted] == [stop - start for start, stop in wanted]


def test_hostile_preamble_is_cheap() -> None:
    # Each line starts with a longer boundary that begins with ours: every one is a
    # candidate that must be rejected, which a per-candidate Python loop would make slow.
    preamble = b"--bX\r\n" * 200_000
    parts = parse_byteranges(preamble + GOOD_PART + b"--b--", "b")
    assert [(p.start, p.stop, p.data) for p in parts] == [(0, 3, b"The")]
