"""The shared cache end to end, against a real server (uvicorn + Starlette in its own
process; its access log says what was asked for) and real readers (pyarrow through the
fsspec filesystem, readers in other processes, Dask workers): a file read twice is paid
once, a changed file is fetched again and never mixed, concurrent readers fetch each
block once, and neither a killed writer nor flipped bytes on disk ever yield a wrong
byte. Files this module adds to the shared docroot are named ``cache-*``."""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import json
import os
import pickle
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import range_streams
from range_streams import RemoteFileChangedError, SharedCache
from range_streams._cli import execute
from range_streams._cli._common import Console
from range_streams._core.cache_keys import block_digest
from range_streams._state.cache_disk import DATABASE
from range_streams._state.shared_cache import CACHE_ENV
from tests.servers.fixtures import MTIME
from tests.servers.launch import AccessRecord, RunningServer

BLOCK = 128 * 1024
READER = Path(__file__).with_name("cache_reader.py")
TAIL_READ = 64 * 1024 + 42  # a file's first end-relative seek


@pytest.fixture(scope="module")
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory("uvicorn-starlette")


def _put(docroot: Path, name: str, data: bytes, mtime: int = MTIME) -> str:
    path = docroot / name
    path.write_bytes(data)
    path.chmod(0o644)
    os.utime(path, (mtime, mtime))
    return name


class Recorder:
    """An httpx response hook: the Range header and status of every request (and, in
    ``paths``, the path each went to)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str | None, int]] = []
        self.paths: list[str] = []

    def __call__(self, response: httpx.Response) -> None:
        self.requests.append((response.request.headers.get("range"), response.status_code))
        self.paths.append(response.request.url.path)


def _client(recorder: Recorder, **kwargs: object) -> httpx.Client:
    return httpx.Client(event_hooks={"response": [recorder]}, **kwargs)  # type: ignore[arg-type]


def _read(
    url: str, cache: SharedCache, spans: list[tuple[int, int]], **kwargs: object
) -> tuple[list[bytes], Recorder, range_streams.CacheStats]:
    """Each span read with seek + read through a new file on a recorded client."""
    recorder = Recorder()
    with (
        _client(recorder, **kwargs) as client,
        range_streams.open(url, client=client, cache=cache) as f,
    ):
        found = []
        for start, stop in spans:
            f.seek(start)
            found.append(f.read(stop - start))
        stats = f.cache_stats
    assert stats is not None
    return found, recorder, stats


def _fresh_log(server: RunningServer) -> None:
    """Forget the access log so far, once every earlier request is in it: the server
    writes a line after its answer, so a line can come after the client is done. A
    request made now, and logged, comes after all of those."""
    marker = f"cache-marker-{random.random()}"
    httpx.get(server.url(marker))
    server.access_records(lambda r: marker in r.target, min_count=1)
    server.clear_access_log()


def _intervals(records: list[AccessRecord]) -> list[tuple[int, int]]:
    """The byte intervals the records asked for (``bytes=0-0`` revalidations left out)."""
    found = []
    for record in records:
        assert record.range is not None and record.range.startswith("bytes=")
        if record.range == "bytes=0-0":
            continue
        for part in record.range.removeprefix("bytes=").split(","):
            first, last = part.split("-")
            found.append((int(first), int(last) + 1))
    return sorted(found)


def _run_reader(url: str, cache: Path, *args: str, check: bool = True) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, str(READER), url, str(cache), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    return {"returncode": proc.returncode, "stderr": proc.stderr}


# -- a second read pays only the revalidation ---------------------------------------------------
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
fsspec = pytest.importorskip("fsspec")

from range_streams.fsspec import RangeFileSystem  # noqa: E402 - needs fsspec


@pytest.fixture(scope="module")
def parquet(docroot: Path) -> bytes:
    """~1.6 MB, 8 row groups of 10,000 rows (as tests/test_fsspec.py's)."""
    rng = random.Random(5)
    rows = 80_000
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "value": pa.array([rng.random() for _ in range(rows)]),
            "label": pa.array([f"label-{rng.randrange(5000)}" for _ in range(rows)]),
        }
    )
    path = docroot / "cache-data.parquet"
    pq.write_table(table, path, row_group_size=10_000, compression="none")
    path.chmod(0o644)
    os.utime(path, (MTIME, MTIME))
    return path.read_bytes()


def _column(fs: RangeFileSystem, url: str) -> object:
    with fs.open(url) as file:
        return pq.ParquetFile(file).read_row_group(3, columns=["value"])


def test_a_second_open_of_a_parquet_column_sends_only_the_revalidation(
    server: RunningServer, parquet: bytes, tmp_path: Path
) -> None:
    cache = SharedCache(tmp_path / "cache")
    url = "rs+" + server.url("cache-data.parquet")
    expected = pq.ParquetFile(io.BytesIO(parquet)).read_row_group(3, columns=["value"])
    cold = Recorder()
    fs = RangeFileSystem(client=_client(cold), cache=cache, skip_instance_cache=True)
    assert _column(fs, url).equals(expected)  # type: ignore[attr-defined]
    # The footer's tail read, then the column's whole blocks in one request.
    assert cold.requests[0] == (f"bytes=-{TAIL_READ}", 206) and len(cold.requests) == 2
    first, last = (int(n) for n in cold.requests[1][0].removeprefix("bytes=").split("-"))
    assert first % BLOCK == 0 and ((last + 1) % BLOCK == 0 or last + 1 == len(parquet)), (
        cold.requests,
        len(parquet),
    )

    warm = Recorder()
    fs = RangeFileSystem(client=_client(warm), cache=cache, skip_instance_cache=True)
    assert _column(fs, url).equals(expected)  # type: ignore[attr-defined]
    assert warm.requests == [("bytes=0-0", 206)]
    assert cache.stats().revalidations == 1 and cache.stats().misses > 0

    # Another process: its memory holds nothing, the directory everything.
    _fresh_log(server)
    # Everything closed before the interpreter exits: pyarrow aborts ("terminate called
    # without an active exception") when a ParquetFile is left to the exit's cleanup.
    script = "\n".join(
        [
            "import pyarrow.parquet as pq, range_streams",
            "from range_streams.fsspec import RangeFileSystem",
            f"cache = range_streams.SharedCache({str(tmp_path / 'cache')!r})",
            "fs = RangeFileSystem(cache=cache)",
            f"with fs.open({url!r}) as f, pq.ParquetFile(f) as parquet:",
            "    column = parquet.read_row_group(3, columns=['value']).column(0)",
            "    print(len(column), f.requests_sent, f.cache_stats.disk_hits)",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out[-2] == "1" and int(out[-1]) > 0
    records = server.access_records(lambda r: r.target.endswith("cache-data.parquet"), min_count=1)
    assert [(r.range, r.status) for r in records] == [("bytes=0-0", 206)]


def test_pyarrow_reads_a_whole_table_warm_from_the_cache(
    server: RunningServer, parquet: bytes, tmp_path: Path
) -> None:
    cache = SharedCache(tmp_path / "cache")
    url = "rs+" + server.url("cache-data.parquet")
    local = pq.read_table(io.BytesIO(parquet), columns=["id", "label"])

    class Counted(RangeFileSystem):  # type: ignore[misc]
        opened = 0

        def _core(self, url: str, *args: Any, **kwargs: Any) -> Any:
            self.opened += 1  # a file object: info()'s probe, or one pyarrow opens
            return super()._core(url, *args, **kwargs)

    for warm in (False, True):
        recorder = Recorder()
        fs = Counted(client=_client(recorder), cache=cache, skip_instance_cache=True)
        assert pq.read_table(url, filesystem=fs, columns=["id", "label"]).equals(local)
        if warm:  # each file object revalidated, and nothing else was sent
            assert fs.opened >= 1 and recorder.requests == [("bytes=0-0", 206)] * fs.opened


# -- versions ------------------------------------------------------------------------------------
def test_a_file_replaced_between_runs_is_fetched_again_never_mixed(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    old = random.Random(1).randbytes(5 * BLOCK + 1000)
    new = random.Random(2).randbytes(len(old))  # the same size: only the validators tell
    name = _put(docroot, "cache-replaced.bin", old)
    url = server.url(name)
    cache = SharedCache(tmp_path / "cache")
    spans = [(0, 1000), (3 * BLOCK + 5, 4 * BLOCK + 10), (len(old) - 50, len(old))]
    found, _, _ = _read(url, cache, spans)
    assert found == [old[a:b] for a, b in spans]

    _put(docroot, name, new, mtime=MTIME + 3600)
    found, recorder, stats = _read(url, cache, spans)
    assert found == [new[a:b] for a, b in spans]
    assert stats.invalidations == 1 and stats.hits == 0
    assert recorder.requests[0] == ("bytes=0-0", 206)  # the revalidation saw the new version
    assert len(recorder.requests) > 1  # ... and the blocks came again
    usage = cache.info()["disk"]
    assert usage["files"] == 1 and usage["bytes"] == stats.bytes_fetched  # the old ones went

    found, recorder, stats = _read(url, cache, spans)  # the new version is cached now
    assert found == [new[a:b] for a, b in spans] and recorder.requests == [("bytes=0-0", 206)]


def test_a_file_changed_during_a_session_is_an_error(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    old = random.Random(3).randbytes(4 * BLOCK)
    name = _put(docroot, "cache-changing.bin", old)
    url = server.url(name)
    cache = SharedCache(tmp_path / "cache")
    _read(url, cache, [(0, 10)])
    with range_streams.open(url, cache=cache) as f:
        assert f.read(10) == old[:10]  # from the cache, after the revalidation
        _put(docroot, name, random.Random(4).randbytes(len(old)), mtime=MTIME + 60)
        f.seek(3 * BLOCK)
        with pytest.raises(RemoteFileChangedError):
            f.read(10)


# -- concurrent readers ----------------------------------------------------------------------------
def test_two_processes_fetch_each_block_once(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    data = random.Random(5).randbytes(24 * BLOCK + 777)
    name = _put(docroot, "cache-shared.bin", data)
    url = server.url(name)
    cache = tmp_path / "cache"
    _fresh_log(server)
    args = [
        sys.executable,
        str(READER),
        url,
        str(cache),
        "--chunk",
        "40000",
        "--barrier",
        str(tmp_path / "barrier"),
    ]
    readers = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [json.loads(reader.communicate(timeout=120)[0]) for reader in readers]
    assert all(reader.returncode == 0 for reader in readers)
    assert {out["sha256"] for out in outputs} == {hashlib.sha256(data).hexdigest()}
    sent = sum(out["requests"] for out in outputs)
    records = server.access_records(lambda r: r.target.endswith(name), min_count=sent)
    assert len(records) == sent
    intervals = _intervals(records)
    for (_, stop), (start, _) in itertools.pairwise(intervals):
        assert stop <= start, f"a byte was fetched twice: {intervals}"
    assert sum(stop - start for start, stop in intervals) == len(data)
    stats = [out["stats"] for out in outputs]
    assert sum(s["misses"] for s in stats) == 25  # every block, once


def test_threads_of_one_process_fetch_each_block_once(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    data = random.Random(6).randbytes(16 * BLOCK)
    name = _put(docroot, "cache-threads.bin", data)
    url = server.url(name)
    cache = SharedCache(tmp_path / "cache")
    barrier = threading.Barrier(3)
    results: list[bytes] = []
    recorders = [Recorder() for _ in range(3)]

    def read(recorder: Recorder) -> None:
        with _client(recorder) as client, range_streams.open(url, client=client, cache=cache) as f:
            barrier.wait()
            results.append(f.read())

    threads = [threading.Thread(target=read, args=(r,)) for r in recorders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [data] * 3
    ranges = [r for rec in recorders for r, _ in rec.requests if r != "bytes=0-0"]
    records = [AccessRecord("GET", name, 206, r) for r in ranges]
    intervals = _intervals(records)
    for (_, stop), (start, _) in itertools.pairwise(intervals):
        assert stop <= start, f"a byte was fetched twice: {intervals}"
    assert cache.stats().misses == 16


# -- the bound, a killed writer, flipped bytes -----------------------------------------------------
def test_a_cache_filled_past_its_bound_evicts_the_least_recently_used(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    data = random.Random(7).randbytes(20 * BLOCK)
    name = _put(docroot, "cache-bounded.bin", data)
    url = server.url(name)
    bound = 6 * BLOCK
    cache = SharedCache(tmp_path / "cache", max_bytes=bound, memory_bytes=BLOCK)
    found, _, stats = _read(url, cache, [(i * BLOCK, (i + 1) * BLOCK) for i in range(20)])
    assert b"".join(found) == data
    usage = cache.info()["disk"]
    assert usage["bytes"] <= bound and stats.evicted_bytes >= len(data) - bound
    # The latest blocks stayed; the first ones went.
    _, recorder, stats = _read(url, cache, [(19 * BLOCK, 20 * BLOCK), (0, 10)])
    assert recorder.requests[0] == ("bytes=0-0", 206)
    assert stats.hits == 1 and stats.misses == 1 and len(recorder.requests) == 2


def test_a_writer_killed_mid_write_leaves_a_cache_that_reads_correctly(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    data = random.Random(8).randbytes(40 * BLOCK + 123)
    name = _put(docroot, "cache-killed.bin", data)
    url = server.url(name)
    cache = tmp_path / "cache"
    # Reads of 1 MiB: the read-ahead windows grow, so the stores are several blocks each;
    # the third store dies inside its transaction, its blocks inserted, not committed.
    died = _run_reader(
        url, str(cache), "--chunk", str(1 << 20), "--kill-at-store", "3", check=False
    )
    assert died["returncode"] == -signal.SIGKILL
    with sqlite3.connect(cache / DATABASE) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = db.execute("SELECT file, version, idx, start, size, data, digest FROM blocks")
        rows = rows.fetchall()
    assert rows, "the stores before the kill were committed"
    for file, version, index, start, size, block, digest in rows:
        assert block_digest(file, version, index, start, block) == digest
        assert len(block) == size
        assert block == data[start : start + size] and start // BLOCK == index
    kept = len(rows)
    out = _run_reader(url, str(cache), "--chunk", str(1 << 20))
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    stats = out["stats"]
    assert stats["disk_hits"] == kept and stats["misses"] == 41 - kept


def test_flipped_bytes_on_disk_are_caught_and_fetched_again(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    data = random.Random(9).randbytes(8 * BLOCK)
    name = _put(docroot, "cache-flipped.bin", data)
    url = server.url(name)
    cache = tmp_path / "cache"
    _run_reader(url, str(cache))
    with sqlite3.connect(cache / DATABASE) as db:  # everything into the database file
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = bytearray((cache / DATABASE).read_bytes())
    at = raw.find(data[5 * BLOCK + 1000 : 5 * BLOCK + 1064])
    assert at > 0 and raw.find(data[5 * BLOCK + 1000 : 5 * BLOCK + 1064], at + 1) == -1
    raw[at + 10] ^= 0x01  # one bit, in block 5
    (cache / DATABASE).write_bytes(bytes(raw))
    _fresh_log(server)
    out = _run_reader(url, str(cache))
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    assert out["stats"]["corrupt"] == 1 and out["stats"]["misses"] == 1
    records = server.access_records(lambda r: r.target.endswith(name), min_count=2)
    assert [r.range for r in records] == ["bytes=0-0", f"bytes={5 * BLOCK}-{6 * BLOCK - 1}"]


# -- credentials, secrets, what is never cached -------------------------------------------------
def test_blocks_are_served_only_to_the_credentials_that_fetched_them(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    data = random.Random(10).randbytes(3 * BLOCK)
    name = _put(docroot, "cache-private.bin", data)
    url = server.url(name) + "?signature=very-secret-signature"
    cache = SharedCache(tmp_path / "cache")
    spans = [(0, 100), (2 * BLOCK, 2 * BLOCK + 100)]

    def read_as(token: str | None) -> list[tuple[str | None, int]]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        found, recorder, _ = _read(url, cache, spans, headers=headers)
        assert found == [data[a:b] for a, b in spans]
        return recorder.requests

    assert len(read_as("token-A")) == 2  # two blocks, fetched
    assert read_as("token-A") == [("bytes=0-0", 206)]  # same credentials: cached
    whole = [("bytes=0-0", 206), (f"bytes=0-{len(data) - 1}", 206)]  # a small file: whole
    assert read_as("token-B") == whole  # others: revalidated, then fetched for them
    assert read_as(None) == whole  # none: the same
    assert read_as(None) == [("bytes=0-0", 206)]
    with sqlite3.connect(tmp_path / "cache" / DATABASE) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = (tmp_path / "cache" / DATABASE).read_bytes()
    for secret in (b"very-secret-signature", b"token-A", b"token-B", name.encode()):
        assert secret not in stored


def _mock_server(
    data: bytes, headers: dict[str, str]
) -> tuple[httpx.MockTransport, list[str | None]]:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        value = request.headers.get("range")
        seen.append(value)
        assert value is not None
        first, last = value.removeprefix("bytes=").split("-")
        start = len(data) - int(last) if not first else int(first)
        stop = len(data) if not first or not last else min(int(last) + 1, len(data))
        return httpx.Response(
            206,
            headers={"content-range": f"bytes {start}-{stop - 1}/{len(data)}", **headers},
            content=data[start:stop],
        )

    return httpx.MockTransport(handle), seen


def test_a_server_that_ignores_ranges_is_read_as_without_a_cache(
    server_factory: Callable[..., RunningServer], docroot: Path, tmp_path: Path
) -> None:
    plain = server_factory("http.server")  # answers every GET with 200 and the whole file
    data = random.Random(19).randbytes(5 * BLOCK + 99)
    url = plain.url(_put(docroot, "cache-no-ranges.bin", data))
    cache = SharedCache(tmp_path / "cache")
    for _ in range(2):
        recorder = Recorder()
        with (
            _client(recorder) as client,
            range_streams.open(url, client=client, cache=cache) as f,
        ):
            chunks = []
            while chunk := f.read(40_000):  # past the first block: the same 200 streams on
                chunks.append(chunk)
            stats = f.cache_stats
        assert b"".join(chunks) == data
        assert [status for _, status in recorder.requests] == [200]
        assert stats is not None and stats.hits == 0
    assert cache.info()["disk"]["files"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},  # nothing tells versions apart
        {"etag": 'W/"weak"'},  # "semantically equal" is not byte-equal
        {"etag": '"v1"', "cache-control": "no-store"},
    ],
    ids=["no-validators", "weak-etag", "no-store"],
)
def test_what_cannot_be_told_apart_or_may_not_be_stored_is_not_cached(
    headers: dict[str, str], tmp_path: Path
) -> None:
    data = random.Random(11).randbytes(2 * BLOCK)
    transport, seen = _mock_server(data, headers)
    cache = SharedCache(tmp_path / "cache")
    for _ in range(2):
        seen.clear()
        with (
            httpx.Client(transport=transport) as client,
            range_streams.open("https://example.org/f.bin", client=client, cache=cache) as f,
        ):
            f.seek(BLOCK + 5)
            assert f.read(100) == data[BLOCK + 5 : BLOCK + 105]
        assert len(seen) == 1  # the read itself each time: nothing served from the cache
    assert cache.info()["disk"]["files"] == 0


def test_a_strong_etag_is_cached_on_a_mock_server_too(tmp_path: Path) -> None:
    data = random.Random(12).randbytes(2 * BLOCK)
    transport, seen = _mock_server(data, {"etag": '"v1"', "cache-control": "private"})
    cache = SharedCache(tmp_path / "cache")
    for expected in ([f"bytes={BLOCK}-{2 * BLOCK - 1}"], ["bytes=0-0"]):
        seen.clear()
        with (
            httpx.Client(transport=transport) as client,
            range_streams.open("https://example.org/f.bin", client=client, cache=cache) as f,
        ):
            f.seek(BLOCK + 5)
            assert f.read(100) == data[BLOCK + 5 : BLOCK + 105]
        assert seen == expected


# -- every way in ---------------------------------------------------------------------------------
def test_fetch_many_reads_through_the_cache(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    blobs = {f"cache-many-{i}.bin": random.Random(20 + i).randbytes(3 * BLOCK) for i in range(3)}
    for name, data in blobs.items():
        _put(docroot, name, data)
    items = [(server.url(name), [(-22, None), (100, 200)]) for name in blobs]
    cache = SharedCache(tmp_path / "cache")
    for round_ in range(2):
        results = asyncio.run(range_streams.fetch_many(items, cache=cache))
        for result, data in zip(results, blobs.values(), strict=True):
            assert result.ok, result.error
            assert result.data == [data[-22:], data[100:200]]
            if round_:
                assert result.requests == 1  # the revalidation only
    assert cache.stats().revalidations == 3


def test_read_ranges_through_the_cache(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    data = random.Random(18).randbytes(20 * BLOCK)
    url = server.url(_put(docroot, "cache-ranges.bin", data))
    cache = SharedCache(tmp_path / "cache")
    spans = [(10, 20), (BLOCK - 5, BLOCK + 5), (7 * BLOCK + 1, 9 * BLOCK - 1), (-30, None)]
    expected = [data[10:20], data[BLOCK - 5 : BLOCK + 5], data[7 * BLOCK + 1 : 9 * BLOCK - 1]]
    expected.append(data[-30:])
    sent = []
    for _ in range(2):
        recorder = Recorder()
        with (
            _client(recorder) as client,
            range_streams.open(url, client=client, cache=cache) as f,
        ):
            assert f.read_ranges(spans) == expected  # type: ignore[arg-type]
        sent.append(recorder.requests)
    # Cold: the size (the spans count from the end), then the missing whole blocks in one
    # multi-range request; warm: that first request was all (it revalidated).
    assert sent[0][0] == ("bytes=0-0", 206) and len(sent[0]) == 2
    assert sent[0][1][0] == (
        f"bytes=0-{2 * BLOCK - 1},{7 * BLOCK}-{9 * BLOCK - 1},{19 * BLOCK}-{20 * BLOCK - 1}"
    )
    assert sent[1] == [("bytes=0-0", 206)]


def test_range_streams_read_through_the_cache(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    data = random.Random(13).randbytes(3 * BLOCK)
    url = server.url(_put(docroot, "cache-stream.bin", data))
    cache = SharedCache(tmp_path / "cache")
    cold = [("bytes=-22", 206), (f"bytes=0-{len(data) - 1}", 206)]  # the tail; a small file
    for expected in (cold, [("bytes=0-0", 206)]):
        recorder = Recorder()
        with (
            _client(recorder) as client,
            range_streams.RangeStream(url, client=client, cache=cache) as stream,
        ):
            stream.add((-22, None))
            assert stream.read() == data[-22:]
            stream.add((1000, 2000))
            assert stream.read() == data[1000:2000]
            assert stream.total_bytes == len(data)
        assert recorder.requests == expected


def test_async_files_read_through_the_cache(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    data = random.Random(14).randbytes(3 * BLOCK)
    url = server.url(_put(docroot, "cache-async.bin", data))
    cache = SharedCache(tmp_path / "cache")

    async def main() -> list[int]:
        sent = []
        for _ in range(2):
            async with range_streams.open_async(url, cache=cache) as f:
                await f.seek(BLOCK - 10)
                assert await f.read(30) == data[BLOCK - 10 : BLOCK + 20]
                assert await f.read_ranges([(5, 9), (-4, None)]) == [data[5:9], data[-4:]]
                sent.append(f.requests_sent)
        return sent

    assert asyncio.run(main())[1] == 1


def test_a_memory_only_cache_serves_this_process(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    data = random.Random(15).randbytes(2 * BLOCK)
    url = server.url(_put(docroot, "cache-memory.bin", data))
    cache = SharedCache(None)
    _read(url, cache, [(0, 10)])
    found, recorder, stats = _read(url, cache, [(0, 10)])
    assert found == [data[:10]] and recorder.requests == [("bytes=0-0", 206)]
    assert stats.memory_hits == 1 and cache.info()["directory"] is None
    assert cache.stats().memory_hits == 1
    cache.reset_stats()
    assert cache.stats() == range_streams.CacheStats()
    cache.clear()
    _, recorder, _ = _read(url, cache, [(0, 10)])
    assert recorder.requests == [(f"bytes=0-{BLOCK - 1}", 206)]  # forgotten: a block again


def test_a_redirect_seen_anonymously_is_reused(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    data = random.Random(16).randbytes(BLOCK)
    name = _put(docroot, "cache-moved.bin", data)
    cache = SharedCache(tmp_path / "cache")
    _, recorder, _ = _read(server.redirect_url(name), cache, [(0, 10)])
    assert recorder.paths == [f"/redirect/{name}", f"/files/{name}"]
    found, recorder, _ = _read(server.redirect_url(name), cache, [(0, 10)])
    assert found == [data[:10]] and recorder.requests == [("bytes=0-0", 206)]
    assert recorder.paths == [f"/files/{name}"]  # straight there


def test_a_kept_redirect_that_fails_is_followed_afresh(tmp_path: Path) -> None:
    data = random.Random(17).randbytes(BLOCK)
    transport, _ = _mock_server(data, {"etag": '"v1"'})
    mirrors = {"/a": "/mirror-1/f.bin"}  # where the origin sends readers now
    visited: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        visited.append(request.url.path)
        if request.url.path == "/a":
            return httpx.Response(302, headers={"location": mirrors["/a"]})
        if request.url.path != mirrors["/a"]:
            return httpx.Response(404)  # a mirror that is gone
        return transport.handle_request(request)

    cache = SharedCache(tmp_path / "cache")

    def read() -> bytes:
        with (
            httpx.Client(transport=httpx.MockTransport(handle)) as client,
            range_streams.open("https://example.org/a", client=client, cache=cache) as f,
        ):
            return f.read(10)

    assert read() == data[:10] and visited == ["/a", "/mirror-1/f.bin"]
    visited.clear()
    assert read() == data[:10] and visited == ["/mirror-1/f.bin"]  # straight to the mirror
    mirrors["/a"] = "/mirror-2/f.bin"
    visited.clear()
    assert read() == data[:10]
    assert visited == ["/mirror-1/f.bin", "/a", "/mirror-2/f.bin"]


def test_the_environment_variable_turns_the_cache_on(
    server: RunningServer, docroot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.url(_put(docroot, "cache-env.bin", b"x" * 1000))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env-cache"))
    with range_streams.open(url) as f:
        assert f.read(5) == b"xxxxx" and f.cache_stats is not None
    with range_streams.open(url, cache=False) as f:
        assert f.read(5) == b"xxxxx" and f.cache_stats is None
    assert SharedCache(str(tmp_path / "env-cache")).info()["disk"]["files"] == 1


def test_fsspec_open_takes_the_cache_as_a_storage_option(
    server: RunningServer, parquet: bytes, tmp_path: Path
) -> None:
    url = "rs+" + server.url("cache-data.parquet")
    for _ in range(2):
        with fsspec.open(url, cache=str(tmp_path / "cache"), skip_instance_cache=True) as f:
            assert f.read(4) == parquet[:4]
            stats = f.cache_stats
    assert stats is not None and stats.hits == 1 and f.requests_sent == 1


def test_the_filesystem_pickles_with_its_cache(tmp_path: Path) -> None:
    cache = SharedCache(tmp_path / "cache")
    fs = RangeFileSystem(cache=cache, skip_instance_cache=True)
    copy = pickle.loads(pickle.dumps(fs))
    assert copy.options.cache == cache


def test_dask_workers_share_the_directory(
    server: RunningServer, parquet: bytes, tmp_path: Path
) -> None:
    dask = pytest.importorskip("dask")
    cache = SharedCache(tmp_path / "cache")
    url = "rs+" + server.url("cache-data.parquet")
    fs = RangeFileSystem(cache=cache)

    def column(group: int) -> float:
        with fs.open(url) as file:
            table = pq.ParquetFile(file).read_row_group(group, columns=["value"])
        return float(sum(table.column(0).to_pylist()))

    local = pq.ParquetFile(io.BytesIO(parquet))
    expected = [
        sum(local.read_row_group(g, columns=["value"]).column(0).to_pylist()) for g in range(8)
    ]
    tasks = [dask.delayed(column)(group) for group in range(8)]
    assert list(dask.compute(*tasks, scheduler="processes", num_workers=2)) == expected
    _fresh_log(server)
    assert list(dask.compute(*tasks, scheduler="processes", num_workers=2)) == expected
    records = server.access_records(lambda r: r.target.endswith("cache-data.parquet"), min_count=8)
    assert [r.range for r in records] == ["bytes=0-0"] * 8  # one revalidation per task


# -- the command line ----------------------------------------------------------------------------
def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = execute(argv, Console(out, err), None)
    return code, out.getvalue(), err.getvalue()


def test_the_cli_lists_a_zip_twice_for_one_revalidation(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    import zipfile  # noqa: PLC0415

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(50):
            archive.writestr(f"m{index:02d}.txt", random.Random(index).randbytes(3000))
    url = server.url(_put(docroot, "cache-cli.zip", buffer.getvalue()))
    directory = str(tmp_path / "cli-cache")
    code, cold_out, cold_err = _cli(["--cache", directory, "ls", "--trace", url])
    assert code == 0 and "cache: 0 hits" in cold_err
    code, warm_out, warm_err = _cli(["ls", "--cache", directory, "--trace", url])
    assert code == 0 and warm_out == cold_out
    requests = [line for line in warm_err.splitlines() if line.startswith("trace: GET")]
    assert len(requests) == 1 and "Range: bytes=0-0" in requests[0]
    # This process's memory had them (a new process would read them from disk).
    assert "trace: cache: 2 hits (2 memory, 0 disk), 0 misses" in warm_err
    code, out, _ = _cli(["cache", "info", "--json", "--cache", directory])
    report = json.loads(out)
    assert code == 0 and report["disk"]["files"] == 1 and report["disk"]["blocks"] == 2
    code, out, _ = _cli(["cache", "clear", "--cache", directory])
    assert code == 0 and out.startswith(f"cleared {directory}")
    code, out, _ = _cli(["cache", "info", "--cache", directory])
    assert code == 0 and "Files:     0" in out
    code, _, err = _cli(["--no-cache", "ls", "--trace", url])
    assert code == 0 and "cache:" not in err


def test_cli_cache_choices_are_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    monkeypatch.setenv("RANGE_STREAMS_CACHE_SIZE", "lots")
    code, _, err = _cli(["ls", "https://example.org/x.zip"])
    assert code == 2 and "not a size" in err
    monkeypatch.setenv(CACHE_ENV, "memory")
    monkeypatch.delenv("RANGE_STREAMS_CACHE_SIZE")
    code, _, err = _cli(["cache", "info"])
    assert code == 2 and "--cache DIR" in err
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the default directory
    code, out, _ = _cli(["cache", "info", "--json"])
    assert code == 0 and json.loads(out)["directory"] == str(tmp_path / "xdg" / "range-streams")
    shared = tmp_path / "everyone"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    code, _, err = _cli(["cache", "clear", "--cache", str(shared)])
    assert code == 2 and "writable by every user" in err
