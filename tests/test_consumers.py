"""Real consumers on a real nginx, through range-streams: pandas and pyarrow (columns,
row groups, CSV lines), zarr v2 and v3 stores with a missing chunk, xarray, Dask on a
process cluster with a filesystem carrying a header, h5py. The server's log shows what
each cost and that the header arrived."""

from __future__ import annotations

import io
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import range_streams as rs
from tests.servers.fixtures import MTIME
from tests.servers.launch import AccessRecord, RunningServer

fsspec = pytest.importorskip("fsspec")
np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import range_streams.fsspec  # noqa: E402 - registers rshttp in a stale install too

ROWS = 60_000


def readable(root: Path) -> None:
    """What the servers' workers (nobody) need, and validators that do not move."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
        os.utime(path, (MTIME, MTIME))


@pytest.fixture(scope="module")
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory("nginx", "autoindex")


@pytest.fixture(scope="module")
def table(docroot: Path) -> object:
    rng = random.Random(8)
    data = pa.table(
        {
            "id": pa.array(range(ROWS), pa.int64()),
            "value": pa.array([rng.random() for _ in range(ROWS)]),
            "label": pa.array([f"label-{rng.randrange(900)}" for _ in range(ROWS)]),
        }
    )
    folder = docroot / "consumers"
    folder.mkdir(exist_ok=True)
    pq.write_table(data, folder / "t.parquet", row_group_size=10_000)
    pd.DataFrame(data.to_pandas()).to_csv(folder / "t.csv", index=False)
    readable(folder)
    return data


def records(server: RunningServer, name: str, count: int = 1) -> list[AccessRecord]:
    return server.access_records(lambda r: name in r.target, min_count=count)


def test_pandas_and_pyarrow_columns_and_row_groups(server: RunningServer, table: object) -> None:
    url = "rs+" + server.url("consumers/t.parquet")
    server.clear_access_log()
    frame = pd.read_parquet(url, columns=["value"])
    assert frame["value"].tolist() == table.column("value").to_pylist()  # type: ignore[attr-defined]
    first = records(server, "t.parquet")
    assert first[0].range == f"bytes=-{64 * 1024 + 42}"  # the footer: one tail read
    fs = fsspec.filesystem("rs+http")
    with fs.open(url) as f:
        group = pq.ParquetFile(f).read_row_group(4, columns=["id", "label"])
    assert group.column("id").to_pylist() == list(range(40_000, 50_000))
    filtered = pq.read_table(url, filesystem=fs, filters=[("id", ">=", 55_000)], columns=["id"])
    assert filtered.column("id").to_pylist() == list(range(55_000, ROWS))


def test_csv_lines_and_text(server: RunningServer, table: object, docroot: Path) -> None:
    url = server.url("consumers/t.csv")
    local = (docroot / "consumers" / "t.csv").read_bytes()
    server.clear_access_log()
    with rs.open(url) as f:
        lines = list(f)
    assert b"".join(lines) == local and len(lines) == ROWS + 1
    sent = records(server, "t.csv")
    assert [(r.range, r.status) for r in sent] == [(f"bytes=0-{(1 << 62) - 1}", 206)]  # one
    with rs.open(url, "r", encoding="ascii") as text:
        assert text.readline() == "id,value,label\n"
        assert sum(1 for _ in text) == ROWS
    frame = pd.read_csv("rs+" + url)
    assert frame["id"].tolist() == list(range(ROWS))


def _length(value: str | None) -> int:
    assert value is not None
    first, last = value.removeprefix("bytes=").split("-")
    return int(last) if not first else int(last) - int(first) + 1  # a suffix, or a span


@pytest.fixture(scope="module")
def stores(docroot: Path) -> dict[int, Path]:
    """The same dataset as zarr v2 and v3, each missing one chunk (read as fill value)."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("zarr")
    made = {}
    for fmt, missing in ((2, "temp/0.0"), (3, "temp/c/0/0")):
        path = docroot / "consumers" / f"store{fmt}.zarr"
        shutil.rmtree(path, ignore_errors=True)
        grid = np.arange(10_000, dtype="f4").reshape(100, 100)
        dataset = xr.Dataset({"temp": (("y", "x"), grid)})
        dataset.to_zarr(
            path, zarr_format=fmt, encoding={"temp": {"chunks": (10, 10)}}, consolidated=True
        )
        (path / missing).unlink()
        readable(path.parent)
        made[fmt] = path
    return made


@pytest.mark.parametrize("fmt", [2, 3])
def test_zarr_store_with_a_missing_chunk(
    server: RunningServer, stores: dict[int, Path], fmt: int
) -> None:
    zarr = pytest.importorskip("zarr")
    fs = fsspec.filesystem("rs+http")
    url = server.url(f"consumers/store{fmt}.zarr")
    server.clear_access_log()
    array = zarr.open_array(fs.get_mapper(url + "/temp"), mode="r")
    block = array[:20, :20]
    assert np.isnan(block[:10, :10]).all()  # the missing chunk: its fill value
    assert block[15, 15] == 1515 and block[5, 15] == 515
    sent = records(server, f"store{fmt}.zarr", 4)
    chunks = [r for r in sent if r.status in (200, 206, 404) and "/temp/" in r.target]
    assert any(r.status == 404 for r in chunks)  # asked once, answered missing, no error


@pytest.mark.parametrize("fmt", [2, 3])
def test_xarray_open_zarr(server: RunningServer, stores: dict[int, Path], fmt: int) -> None:
    xr = pytest.importorskip("xarray")
    url = server.url(f"consumers/store{fmt}.zarr")
    fs = fsspec.filesystem("rs+http")
    through_mapper = xr.open_zarr(fs.get_mapper(url))
    assert float(through_mapper.temp[50, 50]) == 5050
    assert np.isnan(float(through_mapper.temp[0, 0]))
    # xarray's URL pattern refuses "+" in a scheme: the alias without it.
    headers = {"X-Range-Streams-Test": "xr"}
    through_alias = xr.open_zarr("rs" + url, storage_options={"headers": headers})
    server.clear_access_log()
    assert float(through_alias.temp[99, 99]) == 9999
    assert {r.header for r in records(server, f"store{fmt}.zarr")} == {"xr"}


def test_dask_on_a_process_cluster_with_headers(server: RunningServer, table: object) -> None:
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    fs = fsspec.filesystem("rs+http", headers={"X-Range-Streams-Test": "dask"})
    url = "rs+" + server.url("consumers/t.parquet")
    server.clear_access_log()
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        frame = dd.read_parquet(url, columns=["id"], filesystem=fs)
        total = frame["id"].sum().compute()
        pids = {w.pid for w in cluster.workers.values()}
    assert total == sum(range(ROWS)) and os.getpid() not in pids
    sent = records(server, "t.parquet", 2)
    assert {r.header for r in sent} == {"dask"}  # from the workers too: the fs was pickled


def test_h5py_reads_a_dataset_slice(server: RunningServer, docroot: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = docroot / "consumers" / "grid.h5"
    path.parent.mkdir(exist_ok=True)
    grid = np.arange(1_000_000, dtype="f8").reshape(1000, 1000)
    with h5py.File(path, "w") as out:
        out.create_dataset("grid", data=grid, chunks=(100, 100))
    readable(path.parent)
    server.clear_access_log()
    with rs.open(server.url("consumers/grid.h5")) as f, h5py.File(f, "r") as h5:
        assert (h5["grid"][500:510, 700:705] == grid[500:510, 700:705]).all()
    sent = records(server, "grid.h5")
    fetched = sum(_length(r.range) for r in sent)
    assert fetched < path.stat().st_size // 4  # a slice costs its chunk, not the file


def test_a_dask_style_round_trip_of_an_open_file(server: RunningServer, table: object) -> None:
    import pickle  # noqa: PLC0415

    fs = fsspec.filesystem("rs+http", headers={"X-Range-Streams-Test": "pickle"})
    with fs.open("rs+" + server.url("consumers/t.parquet")) as f:
        f.seek(-4, io.SEEK_END)
        copy = pickle.loads(pickle.dumps((fs, f)))
    fs2, f2 = copy
    with f2:
        assert f2.read() == b"PAR1"
    assert fs2.cat_file("rs+" + server.url("consumers/t.parquet"), 0, 4) == b"PAR1"
