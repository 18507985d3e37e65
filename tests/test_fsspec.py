"""The fsspec filesystem (``rs+http://``) on real servers: what each call costs in requests,
listings of index pages, missing files, request options, pickling, read strategies."""

from __future__ import annotations

import asyncio
import io
import os
import pickle
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import range_streams as rs
from tests.servers.fixtures import MTIME
from tests.servers.launch import AccessRecord, RunningServer

fsspec = pytest.importorskip("fsspec")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from range_streams.fsspec import RangeFileSystem  # noqa: E402 - needs fsspec

TAIL_READ = 64 * 1024 + 42  # RangeFile's first end-relative seek: EOCD-sized tail probe
DATA = random.Random(17).randbytes(300_000)
HEADER = {"X-Range-Streams-Test": "fs"}


def put(docroot: Path, name: str, data: bytes) -> None:
    path = docroot / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    path.write_bytes(data)
    path.chmod(0o644)
    os.utime(path, (MTIME, MTIME))


@pytest.fixture(scope="module")
def server(server_factory: Callable[..., RunningServer], docroot: Path) -> RunningServer:
    """nginx with directory listings, logging the X-Range-Streams-Test header."""
    put(docroot, "fs/data.bin", DATA)
    put(docroot, "fs/dir/a.csv", b"a,b\n1,2\n")
    put(docroot, "fs/dir/b.csv", b"a,b\n3,4\n")
    put(docroot, "fs/dir/sub/c.txt", b"c")
    return server_factory("nginx", "autoindex")


@pytest.fixture(scope="module")
def parquet(docroot: Path) -> bytes:
    """~1.6 MB, 8 row groups: far bigger than the 64 KiB tail read."""
    rng = random.Random(5)
    rows = 80_000
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "value": pa.array([rng.random() for _ in range(rows)]),
            "label": pa.array([f"label-{rng.randrange(5000)}" for _ in range(rows)]),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=10_000, compression="none")
    put(docroot, "fsspec-data.parquet", sink.getvalue())
    return sink.getvalue()


def new_fs(**options: object) -> RangeFileSystem:
    # skip_instance_cache: fsspec would otherwise hand back an earlier test's instance.
    return fsspec.filesystem("rs+http", skip_instance_cache=True, **options)  # type: ignore[no-any-return]


def log(server: RunningServer, name: str, count: int) -> list[AccessRecord]:
    return server.access_records(lambda r: r.target.endswith(name), min_count=count)


def ranges(server: RunningServer, name: str, count: int) -> list[str | None]:
    return [r.range for r in log(server, name, count)]


def test_registered_through_the_entry_point() -> None:
    for protocol in ("rs+http", "rs+https", "rshttp", "rshttps"):
        assert fsspec.get_filesystem_class(protocol) is RangeFileSystem
    assert RangeFileSystem._strip_protocol("rshttps://h/x") == "https://h/x"
    assert RangeFileSystem._strip_protocol("rs+http://h/x") == "http://h/x"


# -- what reads cost ----------------------------------------------------------------------------


def test_parquet_footer_costs_one_tail_request(server: RunningServer, parquet: bytes) -> None:
    fs = new_fs()
    url = "rs+" + server.url("fsspec-data.parquet")
    server.clear_access_log()
    metadata = pq.read_metadata(url, filesystem=fs)
    local = pq.read_metadata(io.BytesIO(parquet))
    assert metadata.num_rows == local.num_rows == 80_000
    assert metadata.num_row_groups == 8
    assert metadata.schema.equals(local.schema)
    assert ranges(server, "fsspec-data.parquet", 1) == [f"bytes=-{TAIL_READ}"]
    # read_table opens the file again: the footer is still not read a second time.
    server.clear_access_log()
    table = pq.read_table(url, filesystem=fs, columns=["id"])
    assert table.column("id").to_pylist() == list(range(80_000))
    sent = ranges(server, "fsspec-data.parquet", 1)
    assert f"bytes=-{TAIL_READ}" not in sent and all(
        r and not r.startswith("bytes=-") for r in sent
    )


def test_one_column_fetches_only_its_chunks(server: RunningServer, parquet: bytes) -> None:
    fs = new_fs()
    url = "rs+" + server.url("fsspec-data.parquet")
    local = pq.ParquetFile(io.BytesIO(parquet))
    server.clear_access_log()
    with fs.open(url) as file:
        assert isinstance(file, rs.BufferedRangeFile)
        remote = pq.ParquetFile(file)
        column = remote.read_row_group(3, columns=["value"])
    assert column.equals(local.read_row_group(3, columns=["value"]))
    chunk = local.metadata.row_group(3).column(1)
    start = chunk.data_page_offset
    if chunk.has_dictionary_page:
        start = min(start, chunk.dictionary_page_offset)
    stop = start + chunk.total_compressed_size
    sent = ranges(server, "fsspec-data.parquet", 2)
    assert len(sent) == 2 and sent[0] == f"bytes=-{TAIL_READ}"
    assert sent[1] is not None
    first, last = (int(n) for n in sent[1].removeprefix("bytes=").split("-"))
    assert first == start and stop <= last + 1 <= start + max(stop - start, 128 * 1024)


SLICES = [
    (None, None),
    (100, 200),
    (100, None),
    (-10, None),
    (-10, -2),
    (5, -3),
    (-50, 299_990),
    (299_990, 400_000),  # past the end: cut, as in a slice
]


@pytest.mark.parametrize(("start", "end"), SLICES)
def test_cat_file_is_one_request_for_any_slice(
    server: RunningServer, start: int | None, end: int | None
) -> None:
    fs = new_fs()
    server.clear_access_log()
    assert fs.cat_file("rs+" + server.url("fs/data.bin"), start, end) == DATA[start:end]
    assert len(log(server, "fs/data.bin", 1)) == 1


@pytest.mark.parametrize(("start", "end"), [(400_000, None), (10, 10), (-3, -5), (-5, 0)])
def test_empty_slices(server: RunningServer, start: int, end: int | None) -> None:
    assert new_fs().cat_file("rs+" + server.url("fs/data.bin"), start, end) == b""


def test_cat_ranges_batches_each_file(server: RunningServer) -> None:
    fs = new_fs()
    url = "rs+" + server.url("fs/data.bin")
    other = "rs+" + server.url("fs/dir/a.csv")
    starts = list(range(0, 290_000, 5000))  # 58 ranges of one file, 4.9 KB apart
    paths = [url] * len(starts) + [other, other]
    ends = [s + 100 for s in starts] + [2, None]
    server.clear_access_log()
    got = fs.cat_ranges(paths, [*starts, 0, -4], ends)
    assert got[: len(starts)] == [DATA[s : s + 100] for s in starts]
    assert got[len(starts) :] == [b"a,", b"1,2\n"]
    # Gaps under BatchPolicy.max_gap are read through: one request for all 58.
    assert len(log(server, "fs/data.bin", 1)) == 1
    # The tail first (its answer tells the length), then the rest: no length probe.
    assert ranges(server, "fs/dir/a.csv", 2) == ["bytes=-4", "bytes=0-1"]
    server.clear_access_log()
    assert fs.cat_ranges([url] * len(starts), starts, [s + 100 for s in starts], max_gap=0) == [
        DATA[s : s + 100] for s in starts
    ]
    # Not coalesced: two multi-range requests (at most 50 ranges each), none per range.
    multi = ranges(server, "fs/data.bin", 2)
    assert len(multi) == 2 and all(r is not None and r.count(",") >= 7 for r in multi)


def test_cat_ranges_errors_per_file(server: RunningServer) -> None:
    fs = new_fs()
    url, missing = "rs+" + server.url("fs/data.bin"), "rs+" + server.url("fs/nothing.bin")
    got = fs.cat_ranges([url, missing], [0, 0], [4, 4])
    assert got[0] == DATA[:4] and isinstance(got[1], FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        fs.cat_ranges([url, missing], [0, 0], [4, 4], on_error="raise")


def test_info_then_opens_pay_nothing_more(server: RunningServer) -> None:
    fs = new_fs()
    url = "rs+" + server.url("fs/data.bin")
    server.clear_access_log()
    info = fs.info(url)
    assert info["size"] == len(DATA) and info["type"] == "file" and info["etag"]
    assert fs.info(url) == info
    for _ in range(2):
        with fs.open(url) as f:
            f.seek(-TAIL_READ, io.SEEK_END)
            assert f.read() == DATA[-TAIL_READ:]
    assert ranges(server, "fs/data.bin", 1) == [f"bytes=-{TAIL_READ}"]
    assert fs.size(url) == len(DATA) and fs.isfile(url) and fs.exists(url)


def test_redirects_are_paid_once(server: RunningServer) -> None:
    fs = new_fs()
    url = "rs+" + server.redirect_url("fs/data.bin")
    server.clear_access_log()
    assert fs.info(url)["url"] == server.url("fs/data.bin")
    assert fs.cat_file(url, 0, 10) == DATA[:10]
    with fs.open(url) as f:
        f.seek(1000)
        assert f.read(10) == DATA[1000:1010]
    assert len(log(server, "/redirect/fs/data.bin", 1)) == 1
    assert len(log(server, "/files/fs/data.bin", 3)) == 3


# -- listings -----------------------------------------------------------------------------------


def test_a_directory_lists_what_its_index_page_links_to(server: RunningServer) -> None:
    fs = new_fs()
    base = server.url("fs/dir/")
    assert fs.ls("rs+" + base, detail=False) == [base + "a.csv", base + "b.csv", base + "sub/"]
    entries = {e["name"]: e["type"] for e in fs.ls(base)}
    assert entries[base + "sub/"] == "directory" and entries[base + "a.csv"] == "file"
    assert fs.isdir(base) and not fs.isdir(base + "a.csv") and not fs.isdir(base + "no/")
    assert fs.glob(base + "*.csv") == [base + "a.csv", base + "b.csv"]
    assert fs.find(base) == [base + "a.csv", base + "b.csv", base + "sub/c.txt"]
    assert fs.ls(base + "a.csv", detail=False) == [base + "a.csv"]  # a file lists as itself
    assert fs.cat(base + "*.csv") == {base + "a.csv": b"a,b\n1,2\n", base + "b.csv": b"a,b\n3,4\n"}


def test_listings_cache(server: RunningServer) -> None:
    fs = new_fs(use_listings_cache=True, listings_expiry_time=60)
    base = server.url("fs/dir/")
    server.clear_access_log()
    assert fs.ls(base, detail=False) == fs.ls(base, detail=False)
    assert len(log(server, "fs/dir/", 1)) == 1


# -- missing files ------------------------------------------------------------------------------


def test_a_missing_file_is_missing_everywhere(server: RunningServer) -> None:
    fs = new_fs()
    missing = "rs+" + server.url("fs/no-such.bin")
    assert not fs.exists(missing)
    for call in (
        lambda: fs.info(missing),
        lambda: fs.cat_file(missing),
        lambda: fs.cat(missing),
        lambda: fs.open(missing).read(),
        lambda: fs.ls(missing),
    ):
        with pytest.raises(FileNotFoundError) as info:
            call()
        assert isinstance(info.value, rs.NotFoundError)
    mapper = fs.get_mapper("rs+" + server.url("fs"))
    assert mapper["data.bin"] == DATA
    with pytest.raises(KeyError):
        mapper["no-such.bin"]
    assert "no-such.bin" not in mapper


def test_a_server_without_ranges_still_serves_slices(
    server_factory: Callable[..., RunningServer], docroot: Path
) -> None:
    plain = server_factory("nginx", "max_ranges_0")
    put(docroot, "fs/plain.bin", DATA)
    fs = new_fs()
    url = "rs+" + plain.url("fs/plain.bin")
    assert fs.cat_file(url, 1000, 1010) == DATA[1000:1010]
    assert fs.cat_ranges([url, url], [0, -5], [3, None]) == [DATA[:3], DATA[-5:]]
    with fs.open(url) as f:
        f.seek(200_000)
        assert f.read(10) == DATA[200_000:200_010]
    with new_fs(require_ranges=True).open(url) as f, pytest.raises(rs.RangeNotSupportedError):
        f.seek(200_000)
        f.read(10)


# -- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"headers": HEADER},
        {"client_kwargs": {"headers": HEADER}},
        {"client_options": rs.ClientOptions(headers=HEADER)},
    ],
    ids=["headers", "client_kwargs", "client_options"],
)
def test_request_options_reach_the_server(server: RunningServer, options: dict) -> None:
    fs = new_fs(**options)
    url = "rs+" + server.url("fs/data.bin")
    server.clear_access_log()
    assert fs.cat_file(url, 0, 5) == DATA[:5]  # async client
    with fs.open(url) as f:  # sync client
        assert f.read(5) == DATA[:5]
    assert [r.header for r in log(server, "fs/data.bin", 2)] == ["fs", "fs"]


def test_storage_options_through_pandas(server: RunningServer, parquet: bytes) -> None:
    pd = pytest.importorskip("pandas")
    server.clear_access_log()
    frame = pd.read_parquet(
        "rs+" + server.url("fsspec-data.parquet"),
        columns=["id"],
        storage_options={"headers": {"X-Range-Streams-Test": "pandas"}},
    )
    assert list(frame["id"][:3]) == [0, 1, 2]
    assert {r.header for r in log(server, "fsspec-data.parquet", 2)} == {"pandas"}


def test_client_kwargs_as_fsspec_http_spells_them() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # aiohttp 4 drops BasicAuth
        auth = aiohttp.BasicAuth("u", "p")
    fs = new_fs(client_kwargs={"auth": auth, "timeout": aiohttp.ClientTimeout(total=7)})
    assert fs.client_options.auth == ("u", "p")
    assert fs.client_options.timeout == 7.0
    with pytest.raises(TypeError, match="connector"):
        new_fs(client_kwargs={"connector": object()})


def test_unknown_options_are_refused() -> None:
    with pytest.raises(TypeError, match="use_foobar"):
        new_fs(use_foobar=True)
    with pytest.raises(TypeError, match="headers"):
        RangeFileSystem(client=httpx.Client(), headers=HEADER, skip_instance_cache=True)


@pytest.mark.parametrize(
    ("cache_type", "block_size", "kind"),
    [
        (None, None, rs.Adaptive),
        (None, 4096, rs.Readahead),
        ("none", None, rs.ExactReads),
        ("readahead", 8192, rs.Readahead),
        ("bytes", None, rs.Readahead),
        ("blockcache", 65536, rs.BlockCache),
    ],
)
def test_block_size_and_cache_type_pick_a_strategy(
    server: RunningServer, cache_type: str | None, block_size: int | None, kind: type
) -> None:
    fs = new_fs()
    options = {} if cache_type is None else {"cache_type": cache_type}
    with fs.open("rs+" + server.url("fs/data.bin"), block_size=block_size, **options) as f:
        strategy = f.raw.options.strategy
        assert type(strategy) is kind
        if block_size and kind is not rs.ExactReads:
            assert strategy.block_size == block_size
        assert f.read(10) == DATA[:10]


@pytest.mark.parametrize("cache_type", ["mmap", "first", "all", "nonsense"])
def test_cache_types_without_a_strategy_are_refused(server: RunningServer, cache_type: str) -> None:
    with pytest.raises(ValueError, match="cache_type"):
        new_fs().open("rs+" + server.url("fs/data.bin"), cache_type=cache_type)
    with pytest.raises(ValueError, match="cache_type"):
        new_fs(cache_type=cache_type)


def test_the_filesystem_and_its_files_pickle(server: RunningServer) -> None:
    fs = new_fs(headers={"X-Range-Streams-Test": "pickled"})
    url = "rs+" + server.url("fs/data.bin")
    copy = pickle.loads(pickle.dumps(fs))
    server.clear_access_log()
    assert copy.cat_file(url, 0, 3) == DATA[:3]
    with fs.open(url) as f:
        f.seek(100)
        f.read(10)
        again = pickle.loads(pickle.dumps(f))
    with again:
        assert again.tell() == 110 and again.read(5) == DATA[110:115]
    assert {r.header for r in log(server, "fs/data.bin", 3)} == {"pickled"}
    with httpx.Client() as client:
        live = RangeFileSystem(client=client, skip_instance_cache=True)
        with pytest.raises(TypeError, match="live client"):
            pickle.dumps(live)


def test_open_async_and_the_async_api(server: RunningServer) -> None:
    url = "rs+" + server.url("fs/data.bin")

    async def main() -> tuple[bytes, bytes, dict]:
        fs = RangeFileSystem(asynchronous=True, skip_instance_cache=True)
        session = await fs.set_session()
        file = await fs.open_async(url)
        async with file as f:
            head = await f.read(10)
            rest = await f.read()
        info = await fs._info(url)
        sliced = await fs._cat_file(url, -5)
        await session.close()
        return head + rest, sliced, info

    whole, sliced, info = asyncio.run(main())
    assert whole == DATA and sliced == DATA[-5:] and info["size"] == len(DATA)


def test_a_callers_sync_client(server: RunningServer) -> None:
    seen: list[str | None] = []
    client = httpx.Client(event_hooks={"request": [lambda r: seen.append(r.headers.get("range"))]})
    fs = RangeFileSystem(client=client, skip_instance_cache=True)
    url = "rs+" + server.url("fs/data.bin")
    assert fs.cat_file(url, 10, 20) == DATA[10:20]
    with fs.open(url) as f:
        assert f.read(3) == DATA[:3]
    assert seen[0] == "bytes=10-19" and len(seen) == 2
    client.close()


def test_fsspecs_reference_filesystem_reads_through_it(server: RunningServer) -> None:
    """kerchunk's references, as fsspec's ReferenceFileSystem reads them, over rs+http."""
    url = server.url("fs/data.bin")
    for target, options in [
        ("rs+" + url, {"remote_protocol": "rs+http"}),  # references that name rs+http
        (url, {"fs": {"http": new_fs()}}),  # existing http references, read by this fs
    ]:
        refs = {"version": 1, "refs": {"a": [target, 100, 10], "b": [target, 200_000, 5]}}
        refs["refs"]["c"] = "inline"
        fs = fsspec.filesystem("reference", fo=refs, skip_instance_cache=True, **options)
        assert fs.cat("a") == DATA[100:110] and fs.cat("b") == DATA[200_000:200_005]
        assert fs.cat("c") == b"inline"
        assert fs.cat(["a", "b"]) == {"a": DATA[100:110], "b": DATA[200_000:200_005]}
