"""range-streams 1.x's ``RangeStream`` API, as its docstrings describe it."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest
from ranges import Range

import range_streams as rs
from range_streams import RangeStream

from ._support import DATA, URL, serve, windows


def stream_of(*pairs: tuple[int, int], level: int = 0) -> tuple[RangeStream, object]:
    server = serve()
    stream = RangeStream(URL, client=server.client(), pruning_level=level)
    for pair in pairs:
        stream.add(pair)
    return stream, server


# ---- the constructor ---------------------------------------------------------------------


def test_constructor_arguments_keep_1x_positions() -> None:
    """url, client, byte_range, pruning_level, single_request, force_async, chunk_size,
    raise_response: a 1.x call passing them by position means the same."""
    server = serve()
    with server.client() as client:
        stream = RangeStream(URL, client, Range(1, 4), 1, False, False, 2, False)
        assert (stream.pruning_level, stream.single_request) == (1, False)
        assert (stream.chunk_size, stream.raise_response) == (2, False)
        assert stream.read() == DATA[1:4]


@pytest.mark.parametrize(
    "kwargs", [{"force_async": True}, {"client": "async"}], ids=["force_async", "AsyncClient"]
)
def test_async_streams_are_asyncrangestream(kwargs: dict[str, object]) -> None:
    if kwargs.get("client") == "async":
        kwargs = {"client": httpx.AsyncClient()}
    with pytest.raises(TypeError, match="AsyncRangeStream"):
        RangeStream(URL, **kwargs)  # type: ignore[arg-type]


def test_no_request_until_first_use_then_1x_state() -> None:
    """1.x sent a HEAD (or the range) in the constructor; the same state is there on
    first use, learned with one GET."""
    server = serve()
    stream = RangeStream(URL, client=server.client())
    assert server.log == []
    assert stream.total_bytes == 11 and stream.total_range == Range(0, 11)
    assert server.ranges_sent == ["bytes=0-0"]
    assert stream.isempty() and stream.spanning_range == Range(0, 0)
    assert stream._active_range is None


def test_active_range_of_the_constructor_range() -> None:
    stream, _ = stream_of()
    stream = RangeStream(URL, client=serve().client(), byte_range=Range(0, 5))
    assert stream._active_range == Range(0, 5)
    assert stream.read(2) == DATA[:2] and stream.tell() == 2


# ---- the active range --------------------------------------------------------------------


def test_no_active_range_message() -> None:
    stream, _ = stream_of()
    for use in (lambda: stream.active_range_response, stream.tell, stream.read):
        with pytest.raises(ValueError, match=r"Cannot get active range response.*no active range"):
            use()


def test_set_active_range_switches_and_reports_a_missing_range() -> None:
    stream, _ = stream_of((0, 2), (4, 6))
    assert stream._active_range == Range(4, 6)
    stream.set_active_range(Range(0, 2))
    assert stream._active_range == Range(0, 2)
    assert stream.read() == DATA[0:2]
    stream.set_active_range(123)  # as 1.x: accepted, reported on use
    assert stream._active_range == 123
    with pytest.raises(ValueError, match=r"Cannot get active range response.*_active_range=123"):
        _ = stream.active_range_response
    stream.add((8, 9))
    assert stream._active_range == Range(8, 9)


def test_add_without_activating() -> None:
    stream, _ = stream_of()
    stream.add(Range(0, 1), activate=False)
    stream.add(Range(4, 6), activate=False)
    assert stream._active_range is None


# ---- overlap inspection and handling -----------------------------------------------------


@pytest.mark.parametrize(
    ("rng", "whence"),
    [((2, 5), 0), ((4, 6), 1), ((3, 7), 1), ((5, 9), 2), ((0, 3), None), ((8, 10), None)],
)
def test_overlap_whence(rng: tuple[int, int], whence: int | None) -> None:
    """0 at the head of a registered range, 1 inside it, 2 at its tail (io.SEEK_*)."""
    stream, _ = stream_of((3, 7))
    assert stream.overlap_whence(Range(*rng)) == whence
    assert rs.overlaps.overlap_whence(stream.ranges, Range(*rng)) == whence


def test_overlap_whence_internal_counts_read_bytes() -> None:
    stream, _ = stream_of((3, 7))
    stream.read(2)
    assert stream.overlap_whence(Range(2, 4)) is None  # only read bytes: no overlap
    assert stream.overlap_whence(Range(2, 4), internal=True) == 0


@pytest.mark.parametrize(
    ("level", "expected"), [(0, [(2, 3), (6, 9)]), (1, [(6, 9)])], ids=["replant", "burn"]
)
def test_handle_overlap_makes_room_without_registering(
    level: int, expected: list[tuple[int, int]]
) -> None:
    stream, _ = stream_of((2, 4), (6, 9), level=level)
    stream.handle_overlap(Range(3, 5))
    assert windows(stream) == expected
    assert stream.overlap_whence(Range(3, 5)) is None


def test_handle_overlap_errors() -> None:
    stream, _ = stream_of((3, 7))
    with pytest.raises(ValueError, match="range is empty"):
        stream.handle_overlap(Range(0, 0))
    with pytest.raises(ValueError, match="not detected at termini"):
        stream.handle_overlap(Range(8, 10))
    stream.pruning_level = 2
    with pytest.raises(rs.OverlapError, match="strict pruning policy"):
        stream.handle_overlap(Range(4, 5))
    assert windows(stream) == [(3, 7)]


def test_burn_range_and_ext2int() -> None:
    stream, _ = stream_of((4, 8), (0, 2))
    stream.read(1)  # the active range, [0, 2), is now [1, 2) outside
    assert stream.ext2int(Range(1, 2)) == Range(0, 2)
    with pytest.raises(ValueError, match="non-existent key"):
        stream.ext2int(Range(0, 2))
    stream.set_active_range(Range(4, 8))
    stream.burn_range(Range(1, 2))
    assert windows(stream) == [(4, 8)]
    assert stream._active_range == Range(4, 8)  # the most recently registered left


def test_check_range_integrity() -> None:
    stream, _ = stream_of((0, 11))
    assert stream.check_range_integrity() is None
    stream._ranges.add(rng=Range(4, 6), value=123)  # splits the handed-out RangeDict's key
    with pytest.raises(ValueError, match="Each RangeSet must contain 1 Range"):
        stream.check_range_integrity()
    assert windows(stream) == [(0, 11)]  # the stream itself is unchanged


def test_register_range() -> None:
    server = serve()
    stream = RangeStream(URL, client=server.client(), byte_range=(0, 11))
    request = stream.send_request(Range(4, 6))
    response = rs.RangeResponse(stream, range_request=request)
    stream.register_range(Range(4, 6), response)
    assert windows(stream) == [(4, 6)]  # inside [0, 11): that range was burnt
    assert stream.read() == DATA[4:6]
    with pytest.raises(ValueError, match="not a sub-range"):
        stream.register_range(Range(5, 15), response)
    with pytest.raises(TypeError, match="registers a RangeResponse"):
        stream.register_range(Range(1, 2), 123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Stream length must be set"):
        RangeStream.register_range(self=RangeStream, rng=Range(0, 1), value=123)  # type: ignore[arg-type]


# ---- requests ----------------------------------------------------------------------------


def test_send_request_reads_the_streams_version() -> None:
    server = serve()
    stream = RangeStream(URL, client=server.client(), byte_range=(0, 1))
    stream.read()
    request = stream.send_request(Range(2, 5))
    assert b"".join(request.iter_raw()) == DATA[2:5]
    assert server.log[-1].if_match == '"v1"'  # the version pinned by the stream


def test_send_head_request_is_deprecated_and_sends_no_head() -> None:
    server = serve()
    stream = RangeStream(URL, client=server.client())
    with pytest.warns(DeprecationWarning, match="total_bytes"):
        stream.send_head_request()
    assert stream.total_bytes == 11
    assert [(s.method, s.range) for s in server.log] == [("GET", "bytes=0-0")]


def test_check_response_length() -> None:
    stream, _ = stream_of()
    assert stream.check_response_length({"Content-Length": "11"}, req="HEAD") == 11
    with pytest.raises(KeyError, match="HEAD request response was missing 'content-length'"):
        stream.check_response_length({}, req="HEAD")


def test_get_monostream() -> None:
    server = serve()
    mono = RangeStream(URL, client=server.client(), single_request=True)
    mono.get_monostream()
    assert server.ranges_sent == ["bytes=0-"] and mono.total_bytes == 11
    plain = RangeStream(URL, client=server.client())
    plain.get_monostream()
    assert windows(plain) == [(0, 11)] and plain._active_range is None


# ---- single request ----------------------------------------------------------------------


@pytest.mark.parametrize("learn", ["total_bytes", "total_range", "nothing"])
def test_single_request_with_the_length_known(learn: str) -> None:
    """1.x: add(total_range) on a single-request stream; it crashed here when the length
    was already known."""
    server = serve()
    stream = RangeStream(URL, client=server.client(), single_request=True)
    if learn != "nothing":
        getattr(stream, learn)
    stream.add(stream.total_range)
    assert stream.read() == DATA
    stream.add(Range(1, 3))
    assert stream.active_range_response.is_windowed is True
    assert stream.read(1) == DATA[1:2] and stream.active_range_response.told == 1
    # One GET of the whole file (open-ended, or to its end once the length is known).
    assert [s for s in server.ranges_sent if s != "bytes=0-0"] in (["bytes=0-"], ["bytes=0-10"])


def test_add_window_is_for_single_request_streams() -> None:
    server = serve()
    mono = RangeStream(URL, client=server.client(), single_request=True)
    mono.add_window(Range(4, 6))
    assert mono.read() == DATA[4:6]
    plain = RangeStream(URL, client=server.client())
    with pytest.raises(ValueError, match="single_request=True"):
        plain.add_window(Range(4, 6))


# ---- the rest ----------------------------------------------------------------------------


def test_small_1x_properties() -> None:
    stream, _ = stream_of((0, 3))
    assert stream.freely_requestable is True and stream.client_is_async is False
    assert stream.sync_client is stream.client
    assert stream.__ranges_repr__() == "[0, 3)"
    assert repr(stream) == (
        "RangeStream \u2836 [0, 3) @@ 'example_text_file.txt' from raw.githubusercontent.com"
    )
    assert stream.compute_external_ranges()[0] is stream.active_range_response
    stream.check_is_subrange(Range(0, 11))
    with pytest.raises(ValueError, match="not a sub-range"):
        stream.check_is_subrange(Range(5, 15))
    assert stream.seek(1, io.SEEK_SET) == 1 and stream.read() == DATA[1:3]


def test_is_closed_when_every_response_is() -> None:
    """1.x: a stream is closed when all its responses are."""
    stream, _ = stream_of((0, 1))
    assert stream.is_closed is False
    stream.active_range_response.close()
    assert stream.is_closed is True
    stream.add((4, 6))
    assert stream.is_closed is False
    stream.close()
    assert stream.is_closed is True


def test_set_client() -> None:
    server = serve()
    stream = RangeStream(URL)
    own = stream.client
    stream.set_client(server.client())
    assert own.is_closed  # the one the stream made itself
    stream.add((0, 2))
    assert stream.read() == DATA[:2]
    with pytest.raises(TypeError, match="AsyncRangeStream"):
        stream.set_client(None, force_async=True)


@pytest.mark.parametrize("name", ["set_length", "simulate_request", "get_async_monostream"])
def test_removed_methods_name_their_replacement(name: str) -> None:
    stream, _ = stream_of()
    with pytest.raises(AttributeError, match=f"RangeStream.{name} is not in range-streams 2: .+"):
        getattr(stream, name)
    assert not hasattr(stream, name)


@pytest.mark.parametrize("method", ["add_async", "aclose"])
def test_async_methods_refuse_to_block_the_loop(method: str) -> None:
    stream, _ = stream_of()
    with pytest.raises(TypeError, match="AsyncRangeStream"):
        asyncio.run(getattr(stream, method)())


def test_make_async_fetcher() -> None:
    fetcher = RangeStream.make_async_fetcher(urls=[URL], show_progress_bar=False)
    assert isinstance(fetcher, rs.AsyncFetcher) and fetcher.stream_cls is RangeStream
