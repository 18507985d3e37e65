"""range-streams 1.x's modules and top-level names: ``request``, ``response``,
``http_utils``, ``range_utils``, ``overlaps``, ``async_utils``, and the 1.x import paths
of the codec streams. Helper functions are tables from 1.x's docstrings and tests."""

from __future__ import annotations

import importlib

import pytest
from ranges import Range, RangeDict

import range_streams as rs
from range_streams import http_utils, overlaps, range_utils

from ._support import URL, serve

# ---- range_utils -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rng", "termini", "length"),
    [(Range(0, 3), (0, 2), 2), (Range(1, 4), (1, 3), 2), (Range(5, 6), (5, 5), 0)],
)
def test_termini_and_1x_length(rng: Range, termini: tuple[int, int], length: int) -> None:
    """1.x's range_len is last terminus minus first: one less than the byte count."""
    assert range_utils.range_termini(rng) == termini
    assert (range_utils.range_min(rng), range_utils.range_max(rng)) == termini
    assert range_utils.range_len(rng) == length


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (range_utils.range_termini, "Empty range has no termini"),
        (range_utils.range_min, "Empty range has no minimum"),
        (range_utils.range_max, "Empty range has no maximum"),
    ],
)
def test_empty_range_has_no_termini(func: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        func(Range(0, 0))  # type: ignore[operator]


@pytest.mark.parametrize(("given", "expected"), [((1, 3), Range(1, 3)), (Range(1, 3), Range(1, 3))])
def test_validate_range(given: object, expected: Range) -> None:
    assert range_utils.validate_range(given) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (Range(1.5, 4.5), TypeError, "Ranges must be discrete"),
        ((1, 2.5), TypeError, "must be a Range from the python-ranges package"),
        ((1, 2, 3), TypeError, "must be a Range from the python-ranges package"),
        ([0, 3], TypeError, "must be a Range from the python-ranges package"),
    ],
)
def test_validate_range_refuses(given: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        range_utils.validate_range(given)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Range is empty"):
        range_utils.validate_range(Range(0, 0), allow_empty=False)


@pytest.mark.parametrize(
    ("first", "last", "span"),
    [
        (Range(0, 2), Range(9, 10), Range(0, 10)),
        (Range(3, 5), Range(4, 6), Range(3, 6)),
        (Range(9, 10), Range(0, 2), Range(0, 10)),
        (Range(4, 6), Range(3, 5), Range(3, 6)),
    ],
)
def test_range_span(first: Range, last: Range, span: Range) -> None:
    assert range_utils.range_span([first, last]) == span


def test_registration_order_helpers() -> None:
    with serve().client() as client:
        stream = rs.RangeStream(URL, client=client)
        assert range_utils.most_recent_range(stream) is None
        for pair in [(8, 10), (0, 2)]:
            stream.add(pair)
        assert range_utils.ranges_in_reg_order(stream.ranges) == [Range(8, 10), Range(0, 2)]
        assert range_utils.most_recent_range(stream) == Range(0, 2)
        stream.read(1)
        assert range_utils.most_recent_range(stream, internal=False) == Range(1, 2)
        requested = range_utils.response_ranges_in_reg_order(stream.ranges)
        assert requested == [Range(8, 10), Range(0, 2)]
    assert range_utils.ALWAYS_SET_TOLD is True


# ---- http_utils --------------------------------------------------------------------------


@pytest.mark.parametrize(("stop", "spec"), [(0, "0-"), (1, "0-0"), (2, "0-1"), (11, "0-10")])
def test_range_header(stop: int, spec: str) -> None:
    assert http_utils.byte_range_from_range_obj(Range(0, stop)) == spec
    assert http_utils.range_header(Range(0, stop)) == {"range": f"bytes={spec}"}


@pytest.mark.parametrize("key", ["content-length", "Content-Length", "CONTENT-LENGTH"])
def test_detect_header_value(key: str) -> None:
    assert http_utils.detect_header_value({"Content-Length": "5"}, key) == "5"
    assert http_utils.detect_header_value({"content-length": "5"}, key) == "5"
    with pytest.raises(KeyError, match="HEAD was missing 'content-length' header"):
        http_utils.detect_header_value({}, "content-length", source="HEAD")


def test_partial_content_status_error_is_in_the_error_tree() -> None:
    assert http_utils.PartialContentStatusError is rs.PartialContentStatusError
    assert issubclass(rs.PartialContentStatusError, rs.RangeResponseError)
    for finer in (rs.HTTPStatusError, rs.RangeNotSatisfiableError, rs.RangeNotSupportedError):
        assert issubclass(finer, rs.PartialContentStatusError)


# ---- overlaps ----------------------------------------------------------------------------


def test_get_range_containing() -> None:
    ranges = RangeDict([(Range(3, 7), "a"), (Range(0, 1), "b")])
    assert overlaps.get_range_containing(ranges, 4) == Range(3, 7)
    with pytest.raises(ValueError, match="No range containing position 8 in rng_dict="):
        overlaps.get_range_containing(ranges, 8)


@pytest.mark.parametrize(
    ("rng", "whence"), [(Range(2, 5), 0), (Range(4, 5), 1), (Range(5, 9), 2), (Range(8, 9), None)]
)
def test_overlap_whence_on_a_rangedict(rng: Range, whence: int | None) -> None:
    assert overlaps.overlap_whence(RangeDict({Range(3, 7): "a"}), rng) == whence


# ---- the package -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["request", "response", "http_utils", "range_utils", "overlaps", "async_utils", "stream"],
)
def test_1x_modules_are_attributes_of_the_package(name: str) -> None:
    module = getattr(rs, name)
    assert module is importlib.import_module(f"range_streams.{name}")
    assert name in rs.__all__ and name in dir(rs)


def test_1x_top_level_classes() -> None:
    assert rs.RangeRequest is importlib.import_module("range_streams.request").RangeRequest
    assert rs.AsyncFetcher is importlib.import_module("range_streams.async_utils").AsyncFetcher
    assert rs.RangeResponse is importlib.import_module("range_streams.response").RangeResponse
    assert rs.RangeStream is importlib.import_module("range_streams.stream").RangeStream
    assert rs._EXAMPLE_URL.endswith("example_text_file.txt")
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        rs.nothing  # noqa: B018


def test_star_import_gives_1x_names() -> None:
    namespace: dict[str, object] = {}
    exec("from range_streams import *", namespace)
    for name in ("range_utils", "http_utils", "RangeStream", "AsyncFetcher", "codecs"):
        assert name in namespace


@pytest.mark.parametrize(
    ("module", "name"),
    [("zip", "ZipStream"), ("tar", "TarStream"), ("png", "PngStream"), ("conda", "CondaStream")],
)
def test_1x_codec_import_paths(module: str, name: str) -> None:
    path = importlib.import_module(f"range_streams.codecs.{module}")
    assert getattr(path, name) is getattr(rs.codecs, name)
    with pytest.raises(AttributeError):
        path.NoSuchStream  # noqa: B018
