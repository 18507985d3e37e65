"""Faults real servers cannot be made to show, injected by tests/conformance/faults.py.

Every test ends in exact bytes after recovery or in one of our exceptions, within a
bounded time (pytest-timeout marks; no wall-clock assertions), and with a bounded number
of requests: a broken server never keeps the library busy for ever.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import anyio
import httpx
import pytest

import range_streams as rs
from range_streams._net.clients import make_transport

from .faults import Fault, FaultServer

pytestmark = pytest.mark.timeout(20)

DATA = random.Random(4).randbytes(300_000)
OTHER = random.Random(5).randbytes(300_000)  # the same size: only validators tell
NO_WAIT = rs.RetryPolicy(attempts=2, backoff=0)


@pytest.fixture(scope="module")
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer().start()
    yield server
    server.stop()


@pytest.fixture
def srv(fault_server: FaultServer) -> FaultServer:
    fault_server.reset()
    fault_server.put("f.bin", DATA)
    return fault_server


def quick_client(read: float = 0.3) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(5.0, read=read))


# -- transient faults: resumed from where the body stopped, with If-Range -----------------------
@pytest.mark.parametrize("kind", ["close", "reset"])
def test_a_body_cut_off_is_resumed_with_if_range(srv: FaultServer, kind: str) -> None:
    srv.inject(Fault(kind, after=40_000))
    with rs.RangeStream(srv.url("f.bin"), retry=NO_WAIT) as stream:
        stream.add((1000, 201_000))
        assert stream.read() == DATA[1000:201_000]
    first, resume = srv.log
    assert first.range == "bytes=1000-200999" and "if-range" not in first.headers
    got = int(resume.range.removeprefix("bytes=").split("-")[0])  # type: ignore[union-attr]
    assert 1000 < got <= 41_000  # a reset may lose what was in flight, never more
    assert resume.range == f"bytes={got}-200999"
    assert resume.headers["if-range"] == '"v1"' and "if-match" not in resume.headers


def test_the_file_object_resumes_too(srv: FaultServer) -> None:
    srv.inject(Fault("close", after=10_000))
    with rs.open(srv.url("f.bin"), retry=NO_WAIT) as f:
        assert f.read() == DATA  # the length unknown: one open range, no probe first
    assert srv.ranges_sent == ["bytes=0-", f"bytes=10000-{len(DATA) - 1}"]


def test_async_resume(srv: FaultServer) -> None:
    srv.inject(Fault("reset", after=50_000))

    async def main() -> bytes:
        async with rs.AsyncRangeStream(
            srv.url("f.bin"), byte_range=(0, 200_000), retry=NO_WAIT
        ) as s:
            return await s.read()

    assert anyio.run(main) == DATA[:200_000]
    assert len(srv.log) == 2


@pytest.mark.timeout(10)
def test_a_stalled_body_times_out_and_is_resumed(srv: FaultServer) -> None:
    srv.inject(Fault("stall", after=20_000))
    with (
        quick_client() as client,
        rs.RangeStream(srv.url("f.bin"), client=client, retry=NO_WAIT) as stream,
    ):
        stream.add((0, 100_000))
        assert stream.read() == DATA[:100_000]
    assert srv.ranges_sent == ["bytes=0-99999", "bytes=20000-99999"]


@pytest.mark.timeout(10)
def test_a_body_that_always_stalls_exhausts_the_budget(srv: FaultServer) -> None:
    srv.always = Fault("stall", after=20_000)
    with (
        quick_client() as client,
        rs.RangeStream(srv.url("f.bin"), client=client, retry=NO_WAIT) as stream,
    ):
        stream.add((0, 100_000))
        with pytest.raises(rs.RetriesExhaustedError) as info:
            stream.read()
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert info.value.attempts == 3
    # Each resume got 20,000 more bytes: progress does not refill the budget.
    assert info.value.position == 60_000
    assert len(srv.log) == 3


def test_a_server_that_always_breaks_off_is_given_up_on(srv: FaultServer) -> None:
    srv.always = Fault("close", after=1000)
    with rs.RangeStream(srv.url("f.bin"), retry=rs.RetryPolicy(attempts=4, backoff=0)) as s:
        s.add((0, 100_000))
        assert s.read(500) == DATA[:500]  # what arrived is good
        with pytest.raises(rs.RetriesExhaustedError) as info:
            s.read()
    assert (info.value.attempts, info.value.position) == (5, 5000)
    assert len(srv.log) == 5


@pytest.mark.timeout(10)
def test_no_answer_at_all_is_a_read_timeout(srv: FaultServer) -> None:
    srv.inject(Fault("stall_head"))
    with (
        quick_client() as client,
        rs.RangeStream(srv.url("f.bin"), client=client, retry=NO_WAIT) as stream,
        pytest.raises(httpx.ReadTimeout),  # httpx's own error, passed through unchanged
    ):
        stream.add((0, 100))


def test_a_failed_resume_request_counts_against_the_budget(srv: FaultServer) -> None:
    # The body breaks off, then the first resume request gets no answer twice (the
    # connection drops): retried on a fresh connection, then counted as a failed attempt.
    srv.inject(Fault("close", after=30_000), Fault("drop"), Fault("drop"))
    with rs.RangeStream(srv.url("f.bin"), retry=rs.RetryPolicy(attempts=3, backoff=0)) as s:
        s.add((0, 100_000))
        assert s.read() == DATA[:100_000]
    assert srv.ranges_sent == ["bytes=0-99999"] + ["bytes=30000-99999"] * 3


def test_a_server_that_is_gone_for_good_exhausts_the_budget(srv: FaultServer) -> None:
    srv.inject(Fault("close", after=30_000))
    srv.always = Fault("drop")
    with rs.RangeStream(srv.url("f.bin"), retry=NO_WAIT) as s:
        s.add((0, 100_000))
        with pytest.raises(rs.RetriesExhaustedError) as info:
            s.read()
    assert info.value.position == 30_000
    assert isinstance(info.value.__cause__, httpx.TransportError)
    assert len(srv.log) <= 1 + 2 * 3  # each attempt: one request, retried once


# -- a connection left dirty by the previous answer -------------------------------------------
def test_a_stale_keep_alive_connection_is_retried_on_a_fresh_one(srv: FaultServer) -> None:
    """The server drops the connection just as our next request arrives on it."""
    srv.inject(None, Fault("drop"))
    with rs.RangeStream(srv.url("f.bin")) as stream:
        stream.add((0, 100))
        assert stream.read() == DATA[:100]
        stream.add((5000, 6000))
        assert stream.read() == DATA[5000:6000]
    assert srv.ranges_sent == ["bytes=0-99", "bytes=5000-5999", "bytes=5000-5999"]
    assert srv.log[1].client == srv.log[0].client != srv.log[2].client


def test_bytes_past_the_declared_end_never_reach_the_next_answer(srv: FaultServer) -> None:
    """RangeHTTPServer's fault, on a kept-alive connection: ``Content-Length: 1`` and then
    more bytes. The next request on that connection reads garbage: it must fail over to a
    fresh connection (or raise our error), never return those bytes."""
    srv.inject(Fault("trailing", garbage=DATA[1:5000]))
    with rs.RangeStream(srv.url("f.bin")) as stream:
        assert stream.total_bytes == len(DATA)
        stream.add((100_000, 100_100))
        assert stream.read() == DATA[100_000:100_100]
    assert srv.ranges_sent[0] == "bytes=0-0"
    assert srv.ranges_sent[-1] == "bytes=100000-100099"


# -- the file changed ---------------------------------------------------------------------------
def _replace_then(srv: FaultServer, read: str, **version: object) -> None:
    with rs.RangeStream(srv.url("f.bin")) as stream:
        stream.add((0, 1000))
        assert stream.read() == DATA[:1000]
        srv.replace("f.bin", OTHER, **version)  # type: ignore[arg-type]
        with pytest.raises(rs.RemoteFileChangedError):
            if read == "range":
                stream.add((5000, 6000))
                stream.read()
            else:
                stream.add((0, 100))  # registered already: no request...
                stream.add((200_000, 200_100))
                stream.read()


@pytest.mark.parametrize(
    ("honour", "version"),
    [
        (True, {}),  # If-Match answered with 412
        (False, {}),  # If-Match ignored: the new ETag gives it away
        (False, {"etag": None}),  # no ETag at all: Last-Modified differs
        (False, {"etag": '"v1"', "last_modified": None}),  # same ETag but the size...
    ],
    ids=["412", "etag", "last-modified", "size"],
)
def test_a_file_replaced_between_requests_is_never_mixed(
    srv: FaultServer, honour: bool, version: dict[str, object]
) -> None:
    srv.honour_if_match = honour
    if version.get("etag", "x") == '"v1"':
        srv.put("f.bin", DATA, etag=None, last_modified=None)  # nothing but the size
        with rs.RangeStream(srv.url("f.bin")) as stream:
            stream.add((0, 1000))
            assert stream.read() == DATA[:1000]
            srv.replace("f.bin", OTHER[:-1], etag=None, last_modified=None)
            with pytest.raises(rs.RemoteFileChangedError):
                stream.add((5000, 6000))
        return
    if version.get("etag", "x") is None:
        srv.put("f.bin", DATA, etag=None)
    _replace_then(srv, "range", **version)
    if honour:
        assert srv.log[-1].headers["if-match"] == '"v1"'


def test_a_file_replaced_before_a_multi_range_read(srv: FaultServer) -> None:
    srv.honour_if_match = False
    with rs.open(srv.url("f.bin")) as f:
        assert f.read(10) == DATA[:10]
        srv.replace("f.bin", OTHER)
        with pytest.raises(rs.RemoteFileChangedError):
            f.read_ranges([(50_000, 50_010), (250_000, 250_010)])
    assert "," in (srv.ranges_sent[-1] or "")


@pytest.mark.parametrize("honour_if_range", [True, False])
def test_a_file_replaced_during_a_resume_is_never_mixed(
    srv: FaultServer, honour_if_range: bool
) -> None:
    """If-Range is honoured (the server sends the new file whole: 200) or ignored (a 206 of
    the new version): either way its validators differ, and the read fails."""
    srv.honour_if_range = honour_if_range
    srv.inject(Fault("close", after=30_000, then=lambda: srv.replace("f.bin", OTHER)))
    with rs.RangeStream(srv.url("f.bin"), retry=NO_WAIT) as stream:
        stream.add((0, 100_000))
        assert stream.read(20_000) == DATA[:20_000]
        with pytest.raises(rs.RemoteFileChangedError):
            stream.read()
    assert srv.log[1].headers["if-range"] == '"v1"'


def test_a_date_validated_resume_also_compares_last_modified(srv: FaultServer) -> None:
    srv.put("f.bin", DATA, etag=None)
    srv.honour_if_range = False
    srv.inject(Fault("close", after=30_000, then=lambda: srv.replace("f.bin", OTHER, etag=None)))
    with rs.RangeStream(srv.url("f.bin"), retry=NO_WAIT) as stream:
        stream.add((0, 100_000))
        with pytest.raises(rs.RemoteFileChangedError):
            stream.read()
    assert srv.log[1].headers["if-range"] == srv.log[0].headers.get(
        "if-range", "Mon, 01 Jan 2024 00:00:00 GMT"
    )


def test_limitation_a_same_second_same_size_rewrite_is_invisible(srv: FaultServer) -> None:
    """Documents the limitation (docs/Servers.md): a server whose only validators are a
    seconds-resolution date (or an ETag made of mtime seconds and size) cannot tell two
    versions written in the same second apart, and neither can the library. The resumed
    read mixes them; only a checksum would tell."""
    srv.put("f.bin", DATA, etag=None)
    same = {"etag": None, "last_modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
    srv.inject(Fault("close", after=30_000, then=lambda: srv.replace("f.bin", OTHER, **same)))
    with rs.RangeStream(srv.url("f.bin"), retry=NO_WAIT) as stream:
        stream.add((0, 100_000))
        mixed = stream.read()
    assert mixed == DATA[:30_000] + OTHER[30_000:100_000]


# -- answers that cannot be trusted: refused, never read ---------------------------------------
def test_a_206_for_other_bytes_is_refused(srv: FaultServer) -> None:
    srv.inject(Fault(headers={"content-range": "bytes 1001-1100/300000"}))
    with rs.RangeStream(srv.url("f.bin"), retry=NO_WAIT) as stream:
        with pytest.raises(rs.ContentRangeError):
            stream.add((1000, 1100))
    assert len(srv.log) == 1  # not transient: not retried


def test_limitation_shifted_bytes_under_a_correct_header_are_not_detected(
    srv: FaultServer,
) -> None:
    """Documents the limitation (docs/Servers.md): a server that labels the wrong bytes
    with the right Content-Range cannot be caught without a checksum of the content. The
    library must not pretend otherwise: these bytes come back as sent."""
    srv.inject(Fault(shift=1))
    with rs.RangeStream(srv.url("f.bin")) as stream:
        stream.add((1000, 2000))
        got = stream.read()
    assert got == DATA[1001:2001] != DATA[1000:2000]


def test_garbage_multipart_is_a_multipart_error(srv: FaultServer) -> None:
    garbage = b"--fault-boundary\r\nContent-Range: bytes 0-9/300000\r\n\r\nshort"
    srv.inject(Fault("garbage", garbage=garbage))
    with rs.open(srv.url("f.bin")) as f, pytest.raises(rs.MultipartError):
        f.read_ranges([(0, 10), (200_000, 200_010)])


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"content-range": "bytes 0-99/" + "9" * 40}, rs.ContentRangeError),
        ({"content-range": "bytes 0-99/300000, " + "x" * 10_000}, rs.ContentRangeError),
        ({"content-range": "bytes " + "1" * 10_000 + "-99/300000"}, rs.ContentRangeError),
        # h11 refuses it before we see it: httpx's own error, passed through unchanged.
        ({"content-length": "9" * 30}, httpx.RemoteProtocolError),
        ({"content-range": None}, rs.ContentRangeError),
        ({"content-length": "50"}, rs.ContentRangeError),  # and 100 bytes follow
        ({"content-range": "bytes 0-99/*"}, rs.ContentRangeError),  # no length known yet
        ({"content-range": "bytes 0-99/50"}, rs.ContentRangeError),  # past its own total
        ({"content-encoding": "gzip"}, rs.ContentEncodingError),
        ({"content-type": "multipart/byteranges; boundary=x"}, rs.ContentRangeError),
    ],
    ids=[
        "huge-total",
        "10k-content-range",
        "10k-digits",
        "huge-content-length",
        "missing-content-range",
        "content-length-disagrees",
        "star-total-first",
        "end-past-total",
        "gzip-206",
        "multipart-for-one-range",
    ],
)
def test_a_206_with_untrustworthy_headers_is_refused(
    srv: FaultServer, headers: dict[str, str | None], error: type[Exception]
) -> None:
    # Written raw: h11 would refuse to send most of these.
    srv.always = Fault("raw", headers=headers)
    with rs.RangeStream(srv.url("f.bin"), retry=NO_WAIT) as stream:
        with pytest.raises(error) as info:
            stream.add((0, 100))
            stream.read()
    assert type(info.value) is error
    assert len(srv.log) == (2 if error is httpx.RemoteProtocolError else 1)  # sent again once


def test_huge_unrelated_headers_are_fine(srv: FaultServer) -> None:
    srv.inject(Fault(headers={"x-padding": "p" * 10_000, "etag": '"' + "e" * 10_000 + '"'}))
    with rs.RangeStream(srv.url("f.bin")) as stream:
        stream.add((0, 100))
        assert stream.read() == DATA[:100]


def test_a_star_total_is_fine_once_the_length_is_known(srv: FaultServer) -> None:
    srv.inject(None, Fault(headers={"content-range": "bytes 100-199/*"}))
    with rs.RangeStream(srv.url("f.bin")) as stream:
        assert stream.total_bytes == len(DATA)
        stream.add((100, 200))
        assert stream.read() == DATA[100:200]


def test_a_chunked_206_is_read_exactly(srv: FaultServer) -> None:
    srv.inject(Fault("chunked"))
    with rs.RangeStream(srv.url("f.bin")) as stream:
        stream.add((1000, 101_000))
        assert stream.read() == DATA[1000:101_000]


def test_a_chunked_206_running_long_is_refused(srv: FaultServer) -> None:
    srv.inject(Fault("chunked", extra=10))
    with rs.RangeStream(srv.url("f.bin"), retry=NO_WAIT) as stream:
        stream.add((1000, 101_000))
        with pytest.raises(rs.IncompleteBodyError):
            stream.read()


def test_a_200_to_a_resume_that_was_not_a_change(srv: FaultServer) -> None:
    """A server answering a resume with the whole (unchanged) file: no wrong byte."""
    srv.inject(Fault("close", after=30_000), Fault(headers={}))
    srv.honour_if_range = True
    with rs.RangeStream(srv.url("f.bin"), retry=NO_WAIT) as stream:
        stream.add((0, 100_000))
        srv.script[0].headers["content-range"] = None  # the resume: a 206 without header
        with pytest.raises(rs.ContentRangeError):
            stream.read()


@pytest.mark.timeout(10)
def test_a_redirect_loop_ends(srv: FaultServer) -> None:
    url = srv.url("f.bin").replace("/f/", "/loop/")
    with rs.RangeStream(url) as stream, pytest.raises(rs.RangeResponseError, match="redirects"):
        stream.add((0, 10))
    assert len(srv.log) == 11


def test_file_object_seek_and_read_after_faults(srv: FaultServer) -> None:
    """A mix through the file object: a reset, a stale connection, then exact reads."""
    srv.inject(Fault("reset", after=5000), None, Fault("drop"))
    with rs.open(srv.url("f.bin"), retry=NO_WAIT, strategy=rs.ExactReads()) as f:
        f.seek(10_000)
        assert f.read(50_000) == DATA[10_000:60_000]
        f.seek(-100, io.SEEK_END)
        assert f.read() == DATA[-100:]


@pytest.mark.parametrize("total_in_416", [True, False])
def test_a_416_for_bytes_that_existed_means_the_file_changed(
    srv: FaultServer, total_in_416: bool
) -> None:
    """A shrunk file: the 416 may say the new length (``*/N``) or not (RangeHTTPServer,
    Apache, lighttpd); either way bytes that existed are gone, which is a change."""
    srv.honour_if_match = False
    with rs.RangeStream(srv.url("f.bin")) as stream:
        stream.add((0, 100))
        assert stream.read() == DATA[:100]
        srv.replace("f.bin", OTHER[:1000])
        if not total_in_416:
            srv.inject(Fault(headers={"content-range": None}))
        with pytest.raises(rs.RemoteFileChangedError):
            stream.add((5000, 6000))


# -- readinto: bytes straight from the socket into the caller's buffer --------------------------
def _readinto_all(f: rs.RangeFile, size: int = 64 * 1024) -> bytes:
    buffer = bytearray(size)
    out = bytearray()
    while count := f.readinto(buffer):
        out += buffer[:count]
    return bytes(out)


@pytest.mark.parametrize("kind", ["close", "reset"])
def test_readinto_resumes_a_body_cut_off(srv: FaultServer, kind: str) -> None:
    srv.inject(None, Fault(kind, after=70_000))  # the length probe, then the body
    # Readahead: a 128 KiB first block, then a 256 KiB window that the fault cuts short.
    with rs.open(srv.url("f.bin"), retry=NO_WAIT, strategy=rs.Readahead()) as f:
        f.seek(0, io.SEEK_SET)
        f.read(10)  # a random read, then sequential ones: the direct path
        assert _readinto_all(f) == DATA[10:]
    resume = srv.log[-1]
    assert resume.headers["if-range"] == '"v1"'


@pytest.mark.timeout(10)
def test_readinto_resumes_a_stalled_body(srv: FaultServer) -> None:
    srv.inject(None, Fault("stall", after=150_000))
    client = httpx.Client(transport=make_transport(), timeout=httpx.Timeout(5.0, read=0.3))
    # Readahead: a 128 KiB first block, then a 256 KiB window that stalls part way.
    strategy = rs.Readahead()
    with client, rs.open(srv.url("f.bin"), client=client, retry=NO_WAIT, strategy=strategy) as f:
        f.read(1)
        assert _readinto_all(f, 100_000) == DATA[1:]
    assert srv.log[-1].headers["if-range"] == '"v1"'


def test_readinto_never_mixes_two_versions(srv: FaultServer) -> None:
    srv.honour_if_range = False
    srv.inject(None, Fault("close", after=60_000, then=lambda: srv.replace("f.bin", OTHER)))
    with rs.open(srv.url("f.bin"), retry=NO_WAIT) as f:
        buffer = bytearray(50_000)
        f.read(1)
        assert f.readinto(buffer) == 50_000 and bytes(buffer) == DATA[1:50_001]
        with pytest.raises(rs.RemoteFileChangedError):
            while f.readinto(buffer):
                pass
