"""``pruning_level``: 0, 1, 2 or a ``PruningLevel``, wherever a level is given (the
constructor of every stream class, the attribute), meaning what 1.x documented:
0 replants overlapped ranges, 1 burns them, 2 raises. Anything else raises where it is
given, and leaves the level as it was."""

from __future__ import annotations

import pytest

import range_streams as rs
from range_streams import PruningLevel
from range_streams.codecs import CondaStream, PngStream, TarStream, ZipStream

from ._support import DATA, URL, serve, windows

R, B, S = PruningLevel.replant, PruningLevel.burn, PruningLevel.strict
GIVEN = [(0, R), (1, B), (2, S), (R, R), (B, B), (S, S)]
BAD = [
    (-1, ValueError),
    (3, ValueError),
    (True, TypeError),  # a bool is an int to Python, never a level here
    (1.0, TypeError),
    ("2", TypeError),
    ("strict", TypeError),
    (None, TypeError),
]


@pytest.mark.parametrize(("given", "member"), GIVEN)
def test_constructor_takes_ints_and_members(given: object, member: PruningLevel) -> None:
    with serve().client() as client:
        stream = rs.RangeStream(URL, client=client, pruning_level=given)  # type: ignore[arg-type]
        assert stream.pruning_level is member
        assert stream.pruning_level == int(member)  # 1.x compared with ints


@pytest.mark.parametrize(("given", "member"), GIVEN)
def test_positional_level_is_the_fourth_argument(given: object, member: PruningLevel) -> None:
    with serve().client() as client:
        stream = rs.RangeStream(URL, client, (0, 0), given)  # type: ignore[arg-type]
        assert stream.pruning_level is member


@pytest.mark.parametrize(("given", "member"), GIVEN)
def test_attribute_takes_ints_and_members(given: object, member: PruningLevel) -> None:
    with serve().client() as client:
        stream = rs.RangeStream(URL, client=client)
        stream.pruning_level = given  # type: ignore[assignment]
        assert stream.pruning_level is member


@pytest.mark.parametrize("cls", [ZipStream, TarStream, CondaStream, PngStream])
@pytest.mark.parametrize(("given", "member"), GIVEN[:3])
def test_codec_streams_take_the_level(cls: type, given: int, member: PruningLevel) -> None:
    # Nothing is listed or read: the level is checked before any request.
    server = serve()
    with server.client() as client:
        kwargs = {"scan_headers": False} if cls is TarStream else {"scan_contents": False}
        if cls is PngStream:
            kwargs = {"scan_ihdr": False}
        stream = cls(URL, client, pruning_level=given, **kwargs)
        assert stream.pruning_level is member
        assert server.log == []


@pytest.mark.parametrize(("bad", "error"), BAD)
def test_a_bad_level_raises_where_it_is_given(bad: object, error: type[Exception]) -> None:
    with serve().client() as client:
        with pytest.raises(error, match=r"(?i)pruning.level"):
            rs.RangeStream(URL, client=client, pruning_level=bad)  # type: ignore[arg-type]
        stream = rs.RangeStream(URL, client=client, pruning_level=1)
        with pytest.raises(error, match=r"(?i)pruning.level"):
            stream.pruning_level = bad  # type: ignore[assignment]
        assert stream.pruning_level is B  # unchanged


def test_an_out_of_range_level_names_the_valid_ones() -> None:
    with serve().client() as client:
        stream = rs.RangeStream(URL, client=client)
        with pytest.raises(ValueError, match=r"Pruning level must be 0, 1, or 2"):
            stream.pruning_level = 7


@pytest.mark.parametrize("given", [2, S])
def test_strict_set_after_construction_refuses_the_overlap(given: object) -> None:
    """The issue's silent wrong result: with the int 2 set on the attribute, [3, 7) then
    [2, 5) must raise, not replant (which lost the new range)."""
    server = serve()
    with server.client() as client:
        stream = rs.RangeStream(URL, client=client, byte_range=(3, 7))
        stream.pruning_level = given  # type: ignore[assignment]
        with pytest.raises(rs.OverlapError, match="strict pruning policy"):
            stream.add((2, 5))
        assert windows(stream) == [(3, 7)]
        assert stream.read() == DATA[3:7]
        assert server.ranges_sent == ["bytes=3-6"]  # nothing sent for the refused range


@pytest.mark.parametrize(("given", "expected"), [(0, [(2, 5), (5, 7)]), (1, [(2, 5)])])
def test_level_set_after_construction_applies_to_the_next_add(
    given: int, expected: list[tuple[int, int]]
) -> None:
    with serve().client() as client:
        stream = rs.RangeStream(URL, client=client, byte_range=(3, 7), pruning_level=2)
        stream.pruning_level = given
        stream.add((2, 5))
        assert windows(stream) == expected
        for start, stop in expected:
            assert stream.ranges[start].read() == DATA[start:stop]


def test_async_stream_takes_the_same_levels() -> None:
    stream = rs.AsyncRangeStream(URL, client=serve().async_client(), pruning_level=2)
    assert stream.pruning_level is S
    stream.pruning_level = 0
    assert stream.pruning_level is R
    with pytest.raises(ValueError, match="Pruning level"):
        stream.pruning_level = -1
