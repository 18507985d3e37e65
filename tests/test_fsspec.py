"""The fsspec filesystem (``rs+http://``) on a real server, read by pyarrow: a parquet
footer costs one request, for the file's tail only; a column costs its own bytes only."""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import range_streams
from tests.servers.fixtures import MTIME
from tests.servers.launch import RunningServer

fsspec = pytest.importorskip("fsspec")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from range_streams.fsspec import RangeFileSystem  # noqa: E402 - needs fsspec

TAIL_READ = 64 * 1024 + 42  # RangeFile's first end-relative seek: EOCD-sized tail probe


@pytest.fixture(scope="module")
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory("uvicorn-starlette")


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
    path = docroot / "fsspec-data.parquet"
    pq.write_table(table, path, row_group_size=10_000, compression="none")
    path.chmod(0o644)
    os.utime(path, (MTIME, MTIME))
    return path.read_bytes()


class Recorder:
    """An httpx response hook: the Range header and status of every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str | None, int]] = []

    def __call__(self, response: httpx.Response) -> None:
        self.requests.append((response.request.headers.get("range"), response.status_code))


@pytest.fixture
def recorded() -> tuple[RangeFileSystem, Recorder]:
    recorder = Recorder()
    client = httpx.Client(event_hooks={"response": [recorder]})
    # skip_instance_cache: fsspec would otherwise hand back an earlier test's instance.
    return RangeFileSystem(client=client, skip_instance_cache=True), recorder


def test_registered_through_the_entry_point() -> None:
    assert fsspec.get_filesystem_class("rs+http") is RangeFileSystem
    assert fsspec.get_filesystem_class("rs+https") is RangeFileSystem


def test_parquet_footer_costs_one_tail_request(
    server: RunningServer, parquet: bytes, recorded: tuple[RangeFileSystem, Recorder]
) -> None:
    fs, recorder = recorded
    url = "rs+" + server.url("fsspec-data.parquet")
    server.clear_access_log()
    metadata = pq.read_metadata(url, filesystem=fs)
    local = pq.read_metadata(io.BytesIO(parquet))
    assert metadata.num_rows == local.num_rows == 80_000
    assert metadata.num_row_groups == 8
    assert metadata.schema.equals(local.schema)
    # One request: a suffix read of the last 64 KiB (what footer + metadata need here).
    assert recorder.requests == [(f"bytes=-{TAIL_READ}", 206)]
    records = server.access_records(
        lambda r: r.target.endswith("/fsspec-data.parquet"), min_count=1
    )
    assert [(r.range, r.status) for r in records] == recorder.requests


def test_one_column_fetches_only_its_chunks(
    server: RunningServer, parquet: bytes, recorded: tuple[RangeFileSystem, Recorder]
) -> None:
    fs, recorder = recorded
    url = "rs+" + server.url("fsspec-data.parquet")
    local = pq.ParquetFile(io.BytesIO(parquet))
    with fs.open(url) as file:
        assert isinstance(file, range_streams.RangeFile)
        remote = pq.ParquetFile(file)
        column = remote.read_row_group(3, columns=["value"])
    assert column.equals(local.read_row_group(3, columns=["value"]))
    chunk = local.metadata.row_group(3).column(1)
    start = chunk.data_page_offset
    if chunk.has_dictionary_page:
        start = min(start, chunk.dictionary_page_offset)
    stop = start + chunk.total_compressed_size
    # The tail read that found the footer, then one request from the chunk's first byte:
    # the whole chunk, with at most the read strategy's one 128 KiB block of slack.
    assert len(recorder.requests) == 2, recorder.requests
    assert recorder.requests[0] == (f"bytes=-{TAIL_READ}", 206)
    header, status = recorder.requests[1]
    assert status == 206 and header is not None
    first, last = (int(n) for n in header.removeprefix("bytes=").split("-"))
    assert first == start and stop <= last + 1 <= start + max(stop - start, 128 * 1024)


def test_fsspec_open_gives_a_range_file(server: RunningServer, parquet: bytes) -> None:
    with fsspec.open("rs+" + server.url("fsspec-data.parquet")) as file:
        assert isinstance(file, range_streams.RangeFile)
        assert file.size == len(parquet)
        file.seek(-4, io.SEEK_END)
        assert file.read() == b"PAR1" and file.tell() == len(parquet)
        file.seek(0)
        assert file.read(4) == b"PAR1"


def test_info_ls_cat_and_missing_files(
    server: RunningServer, parquet: bytes, recorded: tuple[RangeFileSystem, Recorder]
) -> None:
    fs, recorder = recorded
    url = "rs+" + server.url("fsspec-data.parquet")
    info = fs.info(url)
    assert info["size"] == len(parquet) and info["type"] == "file" and info["etag"]
    assert fs.info(url) == info and len(recorder.requests) == 1  # the second is free
    assert fs.ls(url, detail=False) == [server.url("fsspec-data.parquet")]
    assert fs.cat_file(url, -4) == parquet[-4:]
    assert fs.cat_file(url, 100, 200) == parquet[100:200]
    assert fs.isfile(url)
    missing = "rs+" + server.url("no-such.parquet")
    assert not fs.exists(missing)
    with pytest.raises(FileNotFoundError):
        fs.info(missing)
    with pytest.raises(ValueError, match="read-only"):
        fs.open(url, "wb")
