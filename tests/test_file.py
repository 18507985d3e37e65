"""The file object: request counts per strategy (MockTransport), stdlib readers and
read_ranges against real servers, and a hypothesis comparison with the plain bytes."""

from __future__ import annotations

import gc
import io
import random
import sys
import tarfile
import zipfile
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import range_streams as rs
from tests.servers.fixtures import docroot_bytes
from tests.servers.launch import RunningServer

from .fakes import FakeServer, payload

URL = "http://files.test/f.bin"
DATA = payload(1 << 20, seed=11)
KB = 1024


def open_fake(server: FakeServer, **options: object) -> rs.RangeFile:
    return rs.RangeFile(URL, server.client(), rs.FileOptions(**options))  # type: ignore[arg-type]


def test_is_a_standard_binary_file() -> None:
    server = FakeServer(DATA)
    with open_fake(server) as f:
        assert isinstance(f, io.RawIOBase)
        assert f.readable() and f.seekable() and not f.writable()
        buffer = bytearray(100)
        assert f.readinto(buffer) == 100 and bytes(buffer) == DATA[:100]
        assert f.seek(-10, io.SEEK_END) == len(DATA) - 10
        assert f.read() == DATA[-10:]
        assert f.read(5) == b""
        assert f.seek(-5, io.SEEK_CUR) == len(DATA) - 5
        assert f.tell() == len(DATA) - 5
        with pytest.raises(rs.InvalidRangeError):
            f.seek(-1)
    assert f.closed
    with pytest.raises(ValueError):
        f.read(1)


def test_end_relative_seek_learns_size_with_the_tail_probe() -> None:
    server = FakeServer(DATA)
    with open_fake(server) as f:
        f.seek(-22, io.SEEK_END)
        f.read(22)
        f.seek(-40_000, io.SEEK_END)
        f.read(30_000)
    assert server.ranges_sent == [f"bytes=-{64 * KB + 42}"]


def test_random_reads_exact_strategy_one_request_each() -> None:
    server = FakeServer(DATA)
    # Apart from one another: bytes read before are served from the kept recent bytes.
    offsets = [o * 8192 + 7 for o in random.Random(1).sample(range(len(DATA) // 8192 - 1), 20)]
    with open_fake(server, strategy=rs.ExactReads()) as f:
        for offset in offsets:
            f.seek(offset)
            assert f.read(4096) == DATA[offset : offset + 4096]
    assert server.ranges_sent == [f"bytes={o}-{o + 4095}" for o in offsets]


def test_readahead_random_reads_cost_one_block_each() -> None:
    server = FakeServer(DATA)
    with open_fake(server, strategy=rs.Readahead(block_size=16 * KB)) as f:
        for offset in (500_000, 100_000, 900_000):
            f.seek(offset)
            assert f.read(100) == DATA[offset : offset + 100]
    assert server.ranges_sent == [
        "bytes=500000-516383",
        "bytes=100000-116383",
        "bytes=900000-916383",
    ]


def test_readahead_sequential_windows_double() -> None:
    server = FakeServer(DATA)
    with open_fake(server, strategy=rs.Readahead(block_size=16 * KB, max_window=128 * KB)) as f:
        chunks = []
        while chunk := f.read(10_000):
            chunks.append(chunk)
    assert b"".join(chunks) == DATA
    sizes = []
    for sent in server.ranges_sent:
        assert sent is not None
        first, last = sent.removeprefix("bytes=").split("-")
        sizes.append(int(last) - int(first) + 1)
    assert sizes[:4] == [16 * KB, 32 * KB, 64 * KB, 128 * KB]
    assert set(sizes[4:-1]) <= {128 * KB}
    assert len(server.ranges_sent) < 16


def test_block_cache_serves_rereads_without_requests() -> None:
    server = FakeServer(DATA)
    with open_fake(server, strategy=rs.BlockCache(block_size=8 * KB, max_bytes=64 * KB)) as f:
        for offset in (10, 100, 8000, 9000, 10):
            f.seek(offset)
            assert f.read(300) == DATA[offset : offset + 300]
    assert server.ranges_sent == ["bytes=0-8191", "bytes=8192-16383"]


@pytest.mark.parametrize(("max_bytes", "refetched"), [(16 * KB, True), (32 * KB, False)])
def test_block_cache_holds_at_most_max_bytes(max_bytes: int, refetched: bool) -> None:
    """Three 8 KiB blocks, then the first again: a 16 KiB cap has evicted it (one more
    request), a 32 KiB cap still holds it; FileOptions.cache_bytes does not apply."""
    server = FakeServer(DATA)
    strategy = rs.BlockCache(block_size=8 * KB, max_bytes=max_bytes)
    with open_fake(server, strategy=strategy, cache_bytes=1 << 30) as f:
        for offset in (0, 8 * KB, 16 * KB, 100):
            f.seek(offset)
            assert f.read(200) == DATA[offset : offset + 200]
        assert f._core.cache.nbytes <= max_bytes
    blocks = ["bytes=0-8191", "bytes=8192-16383", "bytes=16384-24575"]
    assert server.ranges_sent == blocks + (["bytes=0-8191"] if refetched else [])


def test_block_cache_without_max_bytes_uses_the_files_cache_bytes() -> None:
    server = FakeServer(DATA)
    with open_fake(server, strategy=rs.BlockCache(block_size=8 * KB), cache_bytes=16 * KB) as f:
        for offset in (0, 8 * KB, 16 * KB, 100):
            f.seek(offset)
            f.read(200)
    assert len(server.ranges_sent) == 4  # the first block was evicted by the 16 KiB cap


def test_a_look_back_at_a_released_response_costs_nothing() -> None:
    """tarfile.open(fileobj=f) tries gzip, bz2 and xz magic from the start, each reading
    further than the last, before plain tar: the bytes of a response let go of are kept
    for such a look back."""
    server = FakeServer(DATA)
    with open_fake(server) as f:
        assert f.read(10) == DATA[:10]
        f.seek(0)
        assert f.read(8192) == DATA[:8192]  # runs past the first response
        f.seek(0)
        assert f.read(8192) == DATA[:8192]
        f.seek(0)
        assert f.read(512) == DATA[:512]
    assert server.ranges_sent == ["bytes=0-4095", "bytes=4096-8191"]


def test_tarfile_backstep_pattern_costs_nothing_extra() -> None:
    """tarfile seeks one byte back and re-reads it (served from the history), then reads
    the next header a short hop ahead (served from the same response's bytes)."""
    server = FakeServer(DATA)
    with open_fake(server) as f:
        f.seek(1000)
        f.read(512)
        f.seek(1511)
        assert f.read(1) == DATA[1511:1512]
        f.seek(3000)
        assert f.read(512) == DATA[3000:3512]
    assert server.ranges_sent == ["bytes=1000-5095"]  # one 4 KiB read: Adaptive.min_read


def test_server_without_ranges_beyond_the_start() -> None:
    server = FakeServer(DATA, ranges=False)
    with open_fake(server) as f:
        assert f.read(10) == DATA[:10]  # a 200 is the file's first bytes
        f.seek(5000)
        assert f.read(10) == DATA[5000:5010]  # still on that body, skipped on the wire
        f.seek(500_000)
        # Past what the body can skip to: the 200 to that range is refused as a slice,
        # and the file is read whole once (a plain GET), every read served from it.
        assert f.read(10) == DATA[500_000:500_010]
        assert f.read_ranges([(0, 5), (900_000, 900_010)]) == [DATA[:5], DATA[900_000:900_010]]
        f.seek(-3, io.SEEK_END)
        assert f.read() == DATA[-3:]
    assert server.ranges_sent == ["bytes=0-4095", "bytes=500000-504095", None]


def test_server_without_ranges_and_require_ranges() -> None:
    server = FakeServer(DATA, ranges=False)
    with open_fake(server, require_ranges=True) as f:
        assert f.read(10) == DATA[:10]
        f.seek(500_000)
        with pytest.raises(rs.RangeNotSupportedError):
            f.read(10)


@pytest.mark.parametrize("answer", [416, 200, 400])
def test_read_ranges_falls_back_to_single_ranges_and_remembers(answer: int) -> None:
    server = FakeServer(DATA, multi_status=answer)
    spans = [(0, 10), (400_000, 400_100), (800_000, 800_010)]
    with open_fake(server) as f:
        assert f.read_ranges(spans) == [DATA[a:b] for a, b in spans]
        assert f.read_ranges(spans[:2]) == [DATA[a:b] for a, b in spans[:2]]
    multi = [r for r in server.ranges_sent if r and "," in r]
    assert multi == ["bytes=0-9,400000-400099,800000-800009"]  # asked once, then remembered
    assert sorted(r for r in server.ranges_sent if r and "," not in r) == sorted(
        [
            "bytes=0-9",
            "bytes=400000-400099",
            "bytes=800000-800009",
            "bytes=0-9",
            "bytes=400000-400099",
        ]
    )


def test_read_ranges_coalesces_near_spans() -> None:
    server = FakeServer(DATA)
    with open_fake(server, batch=rs.BatchPolicy(max_gap=1000)) as f:
        assert f.read_ranges([(100, 110), (500, 510), (90, 95)]) == [
            DATA[100:110],
            DATA[500:510],
            DATA[90:95],
        ]
    assert server.ranges_sent == ["bytes=90-509"]


@pytest.fixture(scope="module")
def uvicorn_server(server_factory) -> RunningServer:  # type: ignore[no-untyped-def]
    return server_factory("uvicorn-starlette")


@pytest.fixture(scope="module")
def archives(docroot: Path) -> dict[str, bytes]:
    """A zip with many entries and a tar, written into the servers' docroot."""
    rng = random.Random(5)
    zip_buffer = io.BytesIO()
    with zipfile.ZipFile(zip_buffer, "w") as archive:
        for index in range(3000):
            archive.writestr(f"d/{index:05d}.txt", rng.randbytes(rng.randrange(1, 300)))
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for index in range(40):
            data = rng.randbytes(rng.randrange(1, 4000))
            info = tarfile.TarInfo(f"t/{'long-' * 30}{index}.bin")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    made = {"many.zip": zip_buffer.getvalue(), "pax.tar": tar_buffer.getvalue()}
    for name, data in made.items():
        (docroot / name).write_bytes(data)
        (docroot / name).chmod(0o644)
    return made


def test_zipfile_listing_costs_two_requests(
    uvicorn_server: RunningServer, archives: dict[str, bytes]
) -> None:
    with rs.open(uvicorn_server.url("many.zip")) as f:
        archive = zipfile.ZipFile(f)
        assert len(archive.infolist()) == 3000
        assert f.requests_sent == 2
        expected = zipfile.ZipFile(io.BytesIO(archives["many.zip"]))
        assert archive.read("d/01234.txt") == expected.read("d/01234.txt")


def test_tarfile_on_the_file_object(
    uvicorn_server: RunningServer, archives: dict[str, bytes]
) -> None:
    with rs.open(uvicorn_server.url("pax.tar")) as f, tarfile.open(fileobj=f) as archive:
        names = archive.getnames()
        expected = tarfile.open(fileobj=io.BytesIO(archives["pax.tar"]))
        assert names == expected.getnames()
        member = archive.extractfile(names[7])
        assert member is not None
        assert member.read() == expected.extractfile(names[7]).read()  # type: ignore[union-attr]


def test_tar_codec_lists_a_small_tar_with_one_request(
    uvicorn_server: RunningServer, archives: dict[str, bytes]
) -> None:
    """No separate request to learn the size: the first response tells it and holds all
    of a small archive (the listing then reads members from the same response's bytes)."""
    from range_streams.codecs import TarReader  # noqa: PLC0415

    with rs.open(uvicorn_server.url("pax.tar")) as f:
        reader = TarReader(f)
        expected = tarfile.open(fileobj=io.BytesIO(archives["pax.tar"]))
        assert reader.namelist() == expected.getnames()
        assert f.requests_sent == 1
        assert f.known_size == len(archives["pax.tar"])


def test_read_at_needs_no_length_first(
    uvicorn_server: RunningServer, archives: dict[str, bytes]
) -> None:
    data = archives["pax.tar"]
    with rs.open(uvicorn_server.url("pax.tar")) as f:
        assert f.known_size is None
        assert f.read_at(100, 200) == data[100:200]
        assert f.requests_sent == 1
        with pytest.raises(rs.InvalidRangeError):
            f.read_at(len(data) - 5, len(data) + 5)
    with rs.open(uvicorn_server.url("pax.tar")) as f, pytest.raises(rs.InvalidRangeError):
        f.read_at(len(data) + 10, len(data) + 20)  # wholly past the end, size unknown


def test_pillow_on_the_file_object(uvicorn_server: RunningServer, docroot: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    image = image_module.new("RGB", (64, 48), (10, 200, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    (docroot / "pic.png").write_bytes(buffer.getvalue())
    (docroot / "pic.png").chmod(0o644)
    with rs.open(uvicorn_server.url("pic.png")) as f:
        opened = image_module.open(f)
        assert opened.size == (64, 48)
        assert opened.getpixel((3, 3)) == (10, 200, 30)


SAMPLE = docroot_bytes("sample.bin")


def test_read_ranges_on_every_server(any_server: RunningServer) -> None:
    """Exact bytes from every server, whatever its multi-range dialect (or none)."""
    spans = [(0, 10), (20, 30), (500_000, 500_100), (10_000, 10_004), (1_048_000, 1_048_576)]
    try:
        with rs.open(any_server.url("sample.bin")) as f:
            got = f.read_ranges(spans)
    except rs.RangeNotSupportedError:
        assert not any_server.spec.ranges
        return
    assert got == [SAMPLE[a:b] for a, b in spans]


def test_read_ranges_many_spans_are_batched(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("nginx")
    rng = random.Random(3)
    spans = [(o, o + 100) for o in rng.sample(range(0, len(SAMPLE) - 100, 12_000), 80)]
    with rs.open(server.url("sample.bin")) as f:
        got = f.read_ranges(spans)
        assert got == [SAMPLE[a:b] for a, b in spans]
        assert f.requests_sent == 2  # 80 ranges: two requests of at most 50


def test_async_file(uvicorn_server: RunningServer) -> None:
    async def main() -> tuple[bytes, bytes, list[bytes], bytes]:
        async with rs.open_async(uvicorn_server.url("sample.bin")) as f:
            await f.seek(-100, io.SEEK_END)
            tail = await f.read()
            await f.seek(10)
            head = await f.read(20)
            ranges = await f.read_ranges([(0, 5), (600_000, 600_010)])
            streamed = b"".join([c async for c in f.aiter_bytes(1000, 300_000, chunk_size=65536)])
            return tail, head, ranges, streamed

    tail, head, ranges, streamed = anyio.run(main)
    assert tail == SAMPLE[-100:] and head == SAMPLE[10:30]
    assert ranges == [SAMPLE[:5], SAMPLE[600_000:600_010]]
    assert streamed == SAMPLE[1000:300_000]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("seek"), st.integers(-(1 << 20), 1 << 20), st.sampled_from([0, 1, 2])),
        st.tuples(st.just("read"), st.integers(-1, 70_000)),
        st.tuples(st.just("readinto"), st.integers(0, 70_000)),
        st.tuples(
            st.just("ranges"),
            st.lists(st.tuples(st.integers(0, (1 << 20) - 1), st.integers(0, 9000)), max_size=6),
        ),
    ),
    max_size=15,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operations,
    st.sampled_from(["adaptive", "readahead", "exact", "blocks"]),
    st.integers(500, 70_000),
)
def test_random_file_operations_match_the_bytes(ops: list[tuple], kind: str, chunk: int) -> None:
    strategy = {
        "adaptive": rs.Adaptive(min_read=KB, max_window=64 * KB),
        "readahead": rs.Readahead(block_size=8 * KB, max_window=64 * KB),
        "exact": rs.ExactReads(),
        "blocks": rs.BlockCache(block_size=4 * KB, max_bytes=32 * KB),
    }[kind]
    server = FakeServer(DATA, chunk=chunk)
    reference = io.BytesIO(DATA)
    with open_fake(
        server, strategy=strategy, limits=rs.BodyLimits(history=8 * KB, skip=4 * KB)
    ) as f:
        for op, *args in ops:
            if op == "seek":
                offset, whence = args
                base = (0, reference.tell(), len(DATA))[whence]
                if base + offset < 0:  # as a real file (FileIO) does, not BytesIO's clamp
                    with pytest.raises(rs.InvalidRangeError):
                        f.seek(offset, whence)
                    continue
                assert f.seek(offset, whence) == reference.seek(offset, whence)
            elif op == "read":
                assert f.read(args[0]) == reference.read(args[0])
            elif op == "readinto":
                mine, theirs = bytearray(args[0]), bytearray(args[0])
                assert f.readinto(mine) == reference.readinto(theirs)
                assert mine == theirs
            else:
                spans = [(a, min(a + n, len(DATA))) for a, n in args[0]]
                assert [bytes(x) for x in _ranges(f, spans)] == [DATA[a:b] for a, b in spans]
            assert f.tell() == reference.tell()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("seek"), st.integers(0, len(SAMPLE) + 10)),
            st.tuples(st.just("seek-back"), st.integers(1, 200_000)),
            st.tuples(st.just("read"), st.integers(0, 300_000)),
            st.tuples(st.just("readinto"), st.integers(0, 300_000)),
        ),
        max_size=20,
    ),
    st.sampled_from([8 * KB, 128 * KB]),
)
def test_readinto_straight_from_the_socket_matches_the_bytes(
    uvicorn_server: RunningServer, ops: list[tuple[str, int]], block: int
) -> None:
    """Our own transport: sequential readinto goes from the socket into the buffer; mixed
    with reads, seeks (short backward ones from the kept tail) it stays exact."""
    reference = io.BytesIO(SAMPLE)
    strategy = rs.Readahead(block_size=block, max_window=512 * KB)
    with rs.open(uvicorn_server.url("sample.bin"), strategy=strategy) as f:
        for op, n in ops:
            if op == "seek":
                assert f.seek(n) == reference.seek(n)
            elif op == "seek-back":
                target = max(reference.tell() - n, 0)
                assert f.seek(target) == reference.seek(target)
            elif op == "read":
                assert f.read(n) == reference.read(n)
            else:
                mine, theirs = bytearray(n), bytearray(n)
                assert f.readinto(mine) == reference.readinto(theirs)
                assert mine == theirs
            assert f.tell() == reference.tell()


def test_sequential_readinto_uses_the_direct_path(
    uvicorn_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from range_streams._flows import body as _body  # noqa: PLC0415

    direct = 0
    original = _body.Body._pull_into

    def counting(self: _body.Body, view: memoryview):  # type: ignore[no-untyped-def]
        nonlocal direct
        direct += 1
        return (yield from original(self, view))

    monkeypatch.setattr(_body.Body, "_pull_into", counting)
    buffer = bytearray(100_000)
    out = bytearray()
    with rs.open(uvicorn_server.url("sample.bin")) as f:
        f.read(1)
        while count := f.readinto(buffer):
            out += buffer[:count]
        f.seek(-10, io.SEEK_CUR)  # inside the kept tail: no request
        sent = f.requests_sent
        assert f.read(10) == SAMPLE[-10:]
        assert f.requests_sent == sent
    assert bytes(out) == SAMPLE[1:]
    assert direct > 0


def _ranges(f: rs.RangeFile, spans: list[tuple[int, int]]) -> list[bytes]:
    # The fake server does not speak multi-range: force the single-range path.
    f._core.remote.multipart_supported = False
    return f.read_ranges(spans)


def test_async_readinto_matches_the_bytes(uvicorn_server: RunningServer) -> None:
    async def main() -> bytes:
        buffer = bytearray(70_000)
        out = bytearray()
        async with rs.open_async(uvicorn_server.url("sample.bin")) as f:
            await f.seek(5)
            while count := await f.readinto(buffer):
                out += buffer[:count]
        return bytes(out)

    assert anyio.run(main) == SAMPLE[5:]


@pytest.mark.parametrize("url", ["ftp://example.test/f", "not a url", ""])
def test_a_file_that_failed_to_open_is_finalized_quietly(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """io closes every RawIOBase when it is freed, even one whose __init__ raised: that
    close must not fail (Python 3.13's pytest reports it as an error)."""
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    def fail() -> None:
        with pytest.raises(rs.InvalidURLError):
            rs.RangeFile(url)

    fail()
    gc.collect()
    assert unraisable == []  # (Python < 3.13 does not report a finalizer's close error)
    half = rs.RangeFile.__new__(rs.RangeFile)  # what that finalizer closes
    half.close()
    assert half.closed
