"""``range_streams.open`` as the built-in ``open``: buffered by default (fast lines, exact
random reads), raw with ``buffering=0``, text with ``"r"``; request options; pickling;
a missing file as ``FileNotFoundError``."""

from __future__ import annotations

import io
import os
import pickle
import random
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest

import range_streams as rs
from range_streams._cli._demo import make_sample_zip
from range_streams.codecs import ZipStream
from tests.servers.fixtures import MTIME
from tests.servers.launch import RunningServer

from .fakes import FakeServer, payload

URL = "http://files.test/f.bin"
DATA = payload(1 << 20, seed=19)
KB = 1024


def lines_file(count: int) -> bytes:
    rng = random.Random(3)
    return b"".join(
        b"%07d,%s,%.6f\n" % (i, rng.choice([b"alpha", b"beta", b"gamma"]), rng.random())
        for i in range(count)
    )


CSV = lines_file(40_000)  # ~920 KB


def spans_of(ranges: list[str | None]) -> list[tuple[int, int]]:
    spans = []
    for value in ranges:
        assert value is not None and value.startswith("bytes=")
        first, last = value.removeprefix("bytes=").split("-")
        spans.append((int(first), int(last) + 1))
    return spans


def fake_open(server: FakeServer, *args: object, **options: object) -> object:
    return rs.open(URL, *args, client=server.client(), **options)  # type: ignore[arg-type]


# -- modes and the objects they give -----------------------------------------------------------


def test_default_is_buffered_and_keeps_the_remote_calls() -> None:
    server = FakeServer(DATA)
    with fake_open(server) as f:
        assert isinstance(f, rs.BufferedRangeFile) and isinstance(f, io.BufferedIOBase)
        assert isinstance(f.raw, rs.RangeFile)
        assert f.url == URL and f.name == URL and f.mode == "rb"
        assert f.known_size is None
        assert f.read(10) == DATA[:10]
        assert f.peek(5)[:5] == DATA[10:15] and f.tell() == 10
        assert f.read_at(1000, 1010) == DATA[1000:1010] and f.tell() == 10
        assert f.read_ranges([(0, 4), (500_000, 500_004)]) == [DATA[:4], DATA[500_000:500_004]]
        assert f.size == len(DATA) and f.known_size == len(DATA)
        buffer = bytearray(20)
        assert f.readinto(buffer) == 20 and bytes(buffer) == DATA[10:30]
        assert f.seek(-5, io.SEEK_END) == len(DATA) - 5 and f.read() == DATA[-5:]


def test_buffering_zero_is_the_raw_file_and_n_sets_the_buffer() -> None:
    server = FakeServer(DATA)
    with fake_open(server, "rb", 0) as raw:
        assert type(raw) is rs.RangeFile
    with fake_open(server, "rb", 4096) as f:
        assert isinstance(f, rs.BufferedRangeFile) and f.buffer_size == 4096
    with pytest.warns(RuntimeWarning, match="line buffering"), fake_open(server, "rb", 1) as f:
        assert isinstance(f, rs.BufferedRangeFile)


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("rb", rs.BufferedRangeFile),
        ("br", rs.BufferedRangeFile),
        ("r", rs.TextRangeFile),
        ("rt", rs.TextRangeFile),
        ("tr", rs.TextRangeFile),
    ],
)
def test_modes(mode: str, kind: type) -> None:
    with fake_open(FakeServer(CSV), mode) as f:
        assert isinstance(f, kind)


@pytest.mark.parametrize(
    ("mode", "error", "match"),
    [
        ("w", ValueError, "read-only"),
        ("rb+", ValueError, "read-only"),
        ("a", ValueError, "read-only"),
        ("x", ValueError, "read-only"),
        ("rbt", ValueError, "text and binary"),
        ("rr", ValueError, "invalid mode"),
        ("b", ValueError, "invalid mode"),
        ("U", ValueError, "invalid mode"),
    ],
)
def test_bad_modes_are_refused(mode: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        rs.open(URL, mode)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("r", 0), {}, "unbuffered text"),
        (("rb",), {"encoding": "utf-8"}, "encoding"),
        (("rb",), {"newline": ""}, "newline"),
        (("rb",), {"errors": "strict"}, "errors"),
    ],
)
def test_text_arguments_need_text_mode(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rs.open(URL, *args, **kwargs)


def test_a_client_passed_positionally_says_to_pass_it_by_keyword() -> None:
    with httpx.Client() as client, pytest.raises(TypeError, match="client=") as info:
        rs.open(URL, "rb", client)  # type: ignore[arg-type]
    assert "buffering" in str(info.value)


# -- lines and random reads: what each costs ---------------------------------------------------


def test_lines_cost_what_reading_the_file_whole_costs() -> None:
    whole, lines = FakeServer(CSV), FakeServer(CSV)
    with fake_open(whole, buffering=0) as f:
        assert f.read() == CSV
    with fake_open(lines) as f:
        got = list(f)
    assert b"".join(got) == CSV and len(got) == 40_000
    # One request, as for the whole file: the refills are advised to the end (its length
    # unknown yet, past any end, which the answer cuts).
    assert whole.ranges_sent == ["bytes=0-"]
    assert lines.ranges_sent == [f"bytes=0-{(1 << 62) - 1}"]
    known = FakeServer(CSV)
    with fake_open(known) as f:
        assert f.size == len(CSV)
        f.seek(500_000)
        assert f.readline()  # after a seek: a block, as any read
        assert b"".join(f) == CSV[CSV.index(b"\n", 500_000) + 1 :]
    assert known.ranges_sent == [
        "bytes=0-0",
        f"bytes=500000-{500_000 + 128 * KB - 1}",
        f"bytes={500_000 + 128 * KB}-{len(CSV) - 1}",  # then the rest, bounded, in one
    ]


def test_text_lines_decode_and_translate_newlines() -> None:
    text = "première ligne\r\nzweite Zeile\rtroisième\n" * 3000
    raw = text.encode("utf-8")
    with fake_open(FakeServer(raw), "r") as f:
        assert f.readline() == "première ligne\n"  # universal newlines by default
        assert f.read() == text.replace("\r\n", "\n").replace("\r", "\n")[len("première ligne\n") :]
    with fake_open(FakeServer(raw), "r", newline="") as f:
        assert f.readline() == "première ligne\r\n"
    with fake_open(FakeServer(text.encode("latin-1")), "r", encoding="latin-1", newline="") as f:
        assert f.read(20) == text[:20]
    with fake_open(FakeServer(b"ok \xff\n"), "r") as f, pytest.raises(UnicodeDecodeError):
        f.read()
    with fake_open(FakeServer(b"ok \xff\n"), "r", errors="replace") as f:
        assert f.read() == "ok \ufffd\n"


@pytest.mark.parametrize(
    "strategy", [rs.ExactReads(), rs.Readahead(block_size=16 * KB)], ids=["exact", "readahead"]
)
def test_random_reads_pass_through_the_buffer_unchanged(strategy: rs.ReadStrategy) -> None:
    """200 random 4 KiB reads cost the same requests through the default object as
    through the raw file: the buffer does not turn them into buffer-sized reads."""
    offsets = random.Random(5).sample(range(len(DATA) - 4096), 200)
    sent = {}
    for buffering in (0, -1):
        server = FakeServer(DATA)
        with fake_open(server, buffering=buffering, strategy=type(strategy)(**vars(strategy))) as f:
            for offset in offsets:
                f.seek(offset)
                assert f.read(4096) == DATA[offset : offset + 4096]
        sent[buffering] = server.ranges_sent
    assert sent[-1] == sent[0]
    if isinstance(strategy, rs.ExactReads):  # never more than asked (the cache may hold some)
        assert sum(b - a for a, b in spans_of(sent[-1])) <= 200 * 4096
    # What a plain BufferedReader over the same raw file asks for instead.
    plain = FakeServer(DATA)
    with fake_open(plain, buffering=0, strategy=rs.ExactReads()) as raw:
        buffered = io.BufferedReader(raw, 128 * KB)
        for offset in offsets[:20]:
            buffered.seek(offset)
            buffered.read(4096)
    # (at least ten times what was asked, whatever the span cache serves of it)
    assert sum(b - a for a, b in spans_of(plain.ranges_sent)) > 10 * 20 * 4 * KB


def test_readinto_and_reads_larger_than_the_buffer() -> None:
    server = FakeServer(DATA)
    with fake_open(server, buffering=8192, strategy=rs.ExactReads()) as f:
        f.seek(100)
        big = bytearray(50_000)
        assert f.readinto(big) == 50_000 and bytes(big) == DATA[100:50_100]
        assert f.read(3) == DATA[50_100:50_103]
        small = bytearray(10)
        assert f.readinto1(small) == 10 and bytes(small) == DATA[50_103:50_113]
    assert sum(b - a for a, b in spans_of(server.ranges_sent)) == 50_013


@pytest.mark.parametrize("strategy", [rs.Adaptive(), rs.ExactReads()], ids=["adaptive", "exact"])
@pytest.mark.parametrize("how", ["read", "readinto"])
def test_a_read_bigger_than_the_buffer_is_one_request(strategy: rs.ReadStrategy, how: str) -> None:
    """BufferedReader reads a big ``read(n)`` in two raw reads (a multiple of its buffer
    straight into the caller's memory, then a buffer refill for the rest); the raw file
    hears of all ``n`` with the first, so it is one request of ``n`` bytes (pyarrow reads
    each parquet column chunk so)."""
    server = FakeServer(DATA)
    with fake_open(server, strategy=strategy) as f:  # the default 128 KiB buffer
        # each read a jump backwards, so that no read carries on from the one before
        for start, size in ((700_000, 300_000), (300_000, 2 * 128 * KB + 7), (10_000, 5000)):
            f.seek(start)
            if how == "read":
                assert f.read(size) == DATA[start : start + size]
            else:
                into = bytearray(size)
                assert f.readinto(into) == size and bytes(into) == DATA[start : start + size]
    assert spans_of(server.ranges_sent) == [
        (700_000, 1_000_000), (300_000, 300_000 + 2 * 128 * KB + 7), (10_000, 15_000)
    ]  # fmt: skip


def test_seek_takes_ints_only() -> None:
    with fake_open(FakeServer(DATA)) as f, pytest.raises(rs.InvalidRangeError):
        f.seek(1.5)  # type: ignore[arg-type]


# -- request options -----------------------------------------------------------------------------


def test_request_options_with_a_callers_client_are_refused() -> None:
    with httpx.Client() as client:
        with pytest.raises(TypeError, match="headers"):
            rs.open(URL, client=client, headers={"x": "1"})
        with pytest.raises(TypeError, match="auth, timeout"):
            rs.RangeStream(URL, client=client, auth=("a", "b"), timeout=3)
        # The rules the flows keep themselves apply to a caller's client too.
        with rs.open(URL, client=client, follow_redirects=False, buffering=0) as f:
            assert f._core.remote.follow_redirects is False
    with pytest.raises(TypeError, match=r"unknown option.*header.*headers.*strategy"):
        rs.open(URL, header={"x": "1"})


def test_sensitive_headers_join_the_credential_headers() -> None:
    with rs.open(URL, sensitive_headers={"X-Api-Key"}, buffering=0) as f:
        names = f._core.remote.credential_headers
    assert "x-api-key" in names and "authorization" in names and "cookie" in names
    stream = rs.RangeStream(URL, sensitive_headers={"X-Api-Key"})
    assert "x-api-key" in stream.remote.credential_headers
    stream.close()


def test_follow_redirects_false_reaches_the_flows() -> None:
    server = FakeServer(DATA, redirect_from="/f.bin")
    with fake_open(server, follow_redirects=False) as f, pytest.raises(rs.RedirectError):
        f.read(10)
    with fake_open(FakeServer(DATA, redirect_from="/f.bin")) as f:
        assert f.read(10) == DATA[:10]


@pytest.fixture(scope="module")
def logged(server_factory: Callable[..., RunningServer], docroot: Path) -> RunningServer:
    """nginx logging the X-Range-Streams-Test header of every request."""
    path = docroot / "open-lines.csv"
    path.write_bytes(CSV)
    path.chmod(0o644)
    os.utime(path, (MTIME, MTIME))
    return server_factory("nginx", "autoindex")


def test_headers_auth_and_timeout_reach_the_server(logged: RunningServer) -> None:
    url = logged.url("open-lines.csv")
    logged.clear_access_log()
    with rs.open(url, headers={"X-Range-Streams-Test": "open"}, timeout=5) as f:
        assert f.read(10) == CSV[:10]
    with rs.open(url, client_options=rs.ClientOptions(headers={"X-Range-Streams-Test": "co"})) as f:
        assert f.read(10) == CSV[:10]
    with rs.RangeStream(url, headers={"X-Range-Streams-Test": "stream"}) as stream:
        stream.add((0, 10))
        assert stream.read() == CSV[:10]
    records = logged.access_records(lambda r: r.target.endswith("open-lines.csv"), min_count=3)
    assert [r.header for r in records] == ["open", "co", "stream"]


def test_fetch_many_takes_request_options(logged: RunningServer) -> None:
    url = logged.url("open-lines.csv")
    logged.clear_access_log()

    async def main() -> list[rs.FetchResult]:
        return await rs.fetch_many(
            [(url, [(0, 10)]), (url, [(-5, None)])], headers={"X-Range-Streams-Test": "many"}
        )

    results = anyio.run(main)
    assert [r.data for r in results] == [[CSV[:10]], [CSV[-5:]]]
    records = logged.access_records(lambda r: r.target.endswith("open-lines.csv"), min_count=2)
    assert [r.header for r in records] == ["many", "many"]


def test_codec_streams_take_request_options(logged: RunningServer, docroot: Path) -> None:
    path = docroot / "open-codec.zip"
    make_sample_zip(path)
    path.chmod(0o644)
    url = logged.url("open-codec.zip")
    logged.clear_access_log()
    with ZipStream(url, headers={"X-Range-Streams-Test": "zip"}) as stream:
        assert stream.zipped_files
    records = logged.access_records(lambda r: r.target.endswith("open-codec.zip"), min_count=1)
    assert {r.header for r in records} == {"zip"}


# -- pickling ------------------------------------------------------------------------------------


@pytest.mark.parametrize("buffering", [0, -1])
def test_a_pickled_file_reopens_at_the_same_position_and_version(
    logged: RunningServer, buffering: int
) -> None:
    url = logged.url("open-lines.csv")
    with rs.open(url, buffering=buffering, headers={"X-Range-Streams-Test": "p"}) as f:
        f.seek(1000)
        assert f.read(10) == CSV[1000:1010]
        copy = pickle.loads(pickle.dumps(f))
    with copy:
        assert type(copy) is type(f)
        raw = copy if buffering == 0 else copy.raw
        assert copy.tell() == 1010 and raw.known_size == len(CSV)
        assert raw._core.remote.validators == f_validators(url)
        logged.clear_access_log()
        assert copy.read(10) == CSV[1010:1020]
        records = logged.access_records(lambda r: r.target.endswith("open-lines.csv"), min_count=1)
        assert records[0].header == "p"  # the copy made its client from the same options


def f_validators(url: str) -> object:
    with rs.open(url, buffering=0) as f:
        f.read(1)
        return f._core.remote.validators


def test_a_pickled_text_file_reopens_where_it_was(logged: RunningServer) -> None:
    url = logged.url("open-lines.csv")
    with rs.open(url, "r") as f:
        first = f.readline()
        copy = pickle.loads(pickle.dumps(f))
    with copy:
        assert isinstance(copy, rs.TextRangeFile)
        assert first == CSV.decode().splitlines(keepends=True)[0]
        assert copy.readline() == CSV.decode().splitlines(keepends=True)[1]


def test_a_pickled_copy_of_a_changed_file_refuses_the_new_version(
    logged: RunningServer, docroot: Path
) -> None:
    path = docroot / "open-changing.bin"
    path.write_bytes(DATA)
    path.chmod(0o644)
    os.utime(path, (MTIME, MTIME))
    with rs.open(logged.url("open-changing.bin"), buffering=0) as f:
        f.read(10)
        state = pickle.dumps(f)
    path.write_bytes(DATA[::-1])
    os.utime(path, (MTIME + 10, MTIME + 10))
    with pickle.loads(state) as copy, pytest.raises(rs.RemoteFileChangedError):
        copy.read(10)


def test_a_file_on_a_callers_client_does_not_pickle() -> None:
    with httpx.Client() as client, rs.open(URL, client=client) as f:
        with pytest.raises(TypeError, match="client you passed in"):
            pickle.dumps(f)
    with rs.open(URL) as closed:
        pass
    with pytest.raises(ValueError, match="closed"):
        pickle.dumps(closed)


# -- a missing file ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
def test_a_missing_file_is_file_not_found(status: int) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status))
    with httpx.Client(transport=transport) as client, rs.open(URL, client=client) as f:
        with pytest.raises(FileNotFoundError) as info:
            f.read(10)
    error = info.value
    assert isinstance(error, rs.NotFoundError) and isinstance(error, rs.HTTPStatusError)
    assert isinstance(error, httpx.HTTPStatusError) and error.response.status_code == status
    assert URL in str(error) and error.filename == URL
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is rs.NotFoundError and str(again) == str(error)
    assert again.response.status_code == status


def test_a_pickled_status_error_carries_no_credentials() -> None:
    request = httpx.Request("GET", URL, headers={"authorization": "Bearer secret"})
    error = rs.HTTPStatusError("403", request=request, response=httpx.Response(403))
    assert b"secret" not in pickle.dumps(error)


def test_async_stream_takes_request_options(logged: RunningServer) -> None:
    url = logged.url("open-lines.csv")
    logged.clear_access_log()

    async def main() -> bytes:
        async with rs.AsyncRangeStream(
            url, byte_range=(0, 10), headers={"X-Range-Streams-Test": "async"}
        ) as stream:
            return await stream.read()

    assert anyio.run(main) == CSV[:10]
    records = logged.access_records(lambda r: r.target.endswith("open-lines.csv"), min_count=1)
    assert [r.header for r in records] == ["async"]
