"""``range_streams.parquet`` on a real nginx: the footer in one suffix request, then every
needed column chunk in one concurrent batch (a request each, no multipart body), and
tables equal to pyarrow's own reading of the same file."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import range_streams as rs
from tests.servers.launch import RunningServer

pa = pytest.importorskip("pyarrow")
pc = pytest.importorskip("pyarrow.compute")
pq = pytest.importorskip("pyarrow.parquet")

import range_streams.parquet as rsp  # noqa: E402 - needs pyarrow

ROWS = 60_000
GROUP = 10_000
TAIL = 64 * 1024 + 42  # RangeFile's tail probe: a parquet footer's first read


@pytest.fixture(scope="module")
def nginx(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory("nginx")


def _write(docroot: Path, name: str, table: Any, **options: Any) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    data = buffer.getvalue()
    (docroot / name).write_bytes(data)
    (docroot / name).chmod(0o644)
    return data


@pytest.fixture(scope="module")
def files(docroot: Path) -> dict[str, bytes]:
    rng = random.Random(9)
    table = pa.table(
        {
            "id": pa.array(range(ROWS), pa.int64()),
            "value": pa.array([rng.random() for _ in range(ROWS)]),
            "label": pa.array([f"label-{rng.randrange(300)}" for _ in range(ROWS)]),
            "point": pa.array(
                [{"x": float(i), "y": -float(i)} for i in range(ROWS)],
                pa.struct([("x", pa.float64()), ("y", pa.float64())]),
            ),
        }
    )
    wide = pa.table({f"column_with_a_long_name_{i:04d}": pa.array([i, i + 1]) for i in range(1500)})
    made = {
        "t.parquet": _write(docroot, "t.parquet", table, row_group_size=GROUP),
        "wide.parquet": _write(docroot, "wide.parquet", wide),
    }
    broken = _write(docroot, "not.parquet", pa.table({"a": [1]}))[:-1] + b"X"
    (docroot / "not.parquet").write_bytes(broken)
    return made


def _spans(ranges: list[str]) -> list[tuple[int, int]]:
    """Every [start, stop) the Range headers asked for (multi-range ones split)."""
    out = []
    for value in ranges:
        for part in value.removeprefix("bytes=").split(","):
            first, last = part.split("-")
            out.append((int(first), int(last) + 1))
    return sorted(out)


def _records(server: RunningServer, name: str, count: int) -> list[str]:
    records = server.access_records(lambda r: r.target.endswith("/" + name), min_count=count)
    assert all(r.status == 206 for r in records), records
    return [r.range or "" for r in records]


def _chunks(data: bytes, column: int, groups: list[int]) -> list[tuple[int, int]]:
    meta = pq.read_metadata(io.BytesIO(data))
    out = []
    for index in groups:
        chunk = meta.row_group(index).column(column)
        start = chunk.data_page_offset
        if chunk.has_dictionary_page and chunk.dictionary_page_offset:
            start = min(start, chunk.dictionary_page_offset)
        out.append((start, start + chunk.total_compressed_size))
    return sorted(out)


def test_one_column_is_the_footer_then_its_chunks_side_by_side(
    nginx: RunningServer, files: dict[str, bytes]
) -> None:
    data = files["t.parquet"]
    nginx.clear_access_log()
    table = rsp.read_table(nginx.url("t.parquet"), columns=["value"])
    assert table.equals(pq.read_table(io.BytesIO(data), columns=["value"]))
    ranges = _records(nginx, "t.parquet", 2)
    assert ranges[0] == f"bytes=-{TAIL}"
    # Chunks of ~100 KB: one multi-range request (1 MiB or more: a request each, as
    # test_access_patterns shows for read_ranges and benchmarks/ for a 45 MB file).
    assert len(ranges) == 2 and _spans(ranges[1:]) == _chunks(data, 1, list(range(6)))


def test_a_filter_reads_only_the_row_groups_it_may_match(
    nginx: RunningServer, files: dict[str, bytes]
) -> None:
    data = files["t.parquet"]
    filters = [("id", ">=", 5 * GROUP + 10)]
    nginx.clear_access_log()
    table = rsp.read_table(nginx.url("t.parquet"), columns=["value"], filters=filters)
    assert table.equals(pq.read_table(io.BytesIO(data), columns=["value"], filters=filters))
    assert table.num_rows == GROUP - 10
    ranges = _records(nginx, "t.parquet", 2)
    # id and value of the last row group lie side by side: one request for both.
    ((first, _),) = _chunks(data, 0, [5])
    ((_, last),) = _chunks(data, 1, [5])
    assert ranges == [f"bytes=-{TAIL}", f"bytes={first}-{last - 1}"]


def test_an_expression_filter_and_nested_columns(
    nginx: RunningServer, files: dict[str, bytes]
) -> None:
    data = files["t.parquet"]
    expression = (pc.field("id") < 15_000) & (pc.field("label") == "label-7")
    with rsp.ParquetFile(nginx.url("t.parquet")) as parquet:
        assert parquet.row_groups(expression) == [0, 1]
        table = parquet.read(["point", "value"], filters=expression)
        assert parquet.last_fallback_reads == []  # id and label were in the batch
    expected = pq.read_table(io.BytesIO(data), columns=["point", "value"], filters=expression)
    assert table.equals(expected) and table.num_rows > 0


def test_the_footer_is_read_once_per_file(nginx: RunningServer, files: dict[str, bytes]) -> None:
    data = files["t.parquet"]
    nginx.clear_access_log()
    with rsp.ParquetFile(nginx.url("t.parquet")) as parquet:
        assert parquet.metadata.num_rows == ROWS and parquet.num_row_groups == 6
        first = parquet.read(["id"], row_groups=[2])
        second = parquet.read(["label"], row_groups=[0, 3])
    local = pq.ParquetFile(io.BytesIO(data))
    assert first.equals(local.read_row_groups([2], columns=["id"]))
    assert second.equals(local.read_row_groups([0, 3], columns=["label"]))
    ranges = _records(nginx, "t.parquet", 3)
    assert ranges[0] == f"bytes=-{TAIL}" and ranges.count(f"bytes=-{TAIL}") == 1
    assert len(ranges) == 3
    assert _spans(ranges[1:2]) == _chunks(data, 0, [2])
    assert _spans(ranges[2:]) == _chunks(data, 2, [0, 3])


def test_metadata_alone_and_a_footer_longer_than_the_first_read(
    nginx: RunningServer, files: dict[str, bytes]
) -> None:
    nginx.clear_access_log()
    assert rsp.read_metadata(nginx.url("t.parquet")).num_rows == ROWS
    assert _records(nginx, "t.parquet", 1) == [f"bytes=-{TAIL}"]

    wide = files["wide.parquet"]
    footer = int.from_bytes(wide[-8:-4], "little") + 8
    assert footer > TAIL
    nginx.clear_access_log()
    table = rsp.read_table(nginx.url("wide.parquet"), columns=["column_with_a_long_name_0042"])
    assert table.column(0).to_pylist() == [42, 43]
    ranges = _records(nginx, "wide.parquet", 3)
    size = len(wide)
    assert ranges[:2] == [f"bytes=-{TAIL}", f"bytes={size - footer}-{size - TAIL - 1}"]


def test_any_byte_source_and_an_open_file(nginx: RunningServer, files: dict[str, bytes]) -> None:
    data = files["t.parquet"]
    source = rs.BytesSource(data)
    table = rsp.read_table(source, columns=["id", "value"], row_groups=[1, 4])
    assert table.equals(pq.ParquetFile(io.BytesIO(data)).read_row_groups([1, 4], ["id", "value"]))
    assert [kind for kind, _ in source.calls] == ["read_tail", "read_ranges"]
    with rs.RangeFile(nginx.url("t.parquet")) as f:
        assert rsp.read_table(f, columns=["id"]).num_rows == ROWS
        assert not f.closed  # the caller's to close
    with pytest.raises(TypeError):
        rsp.ParquetFile(source, client=None, strategy=rs.ExactReads())


def test_errors(nginx: RunningServer, files: dict[str, bytes]) -> None:
    with pytest.raises(rsp.ParquetFormatError):
        rsp.read_metadata(nginx.url("not.parquet"))
    assert issubclass(rsp.ParquetFormatError, rs.RangeStreamError)
    with pytest.raises(KeyError, match="nope"):
        rsp.read_table(rs.BytesSource(files["t.parquet"]), columns=["nope"])
    with pytest.raises(rs.InvalidRangeError):
        rsp.read_table(rs.BytesSource(files["t.parquet"]), row_groups=[6])
    with pytest.raises(rs.HTTPStatusError):
        rsp.read_metadata(nginx.url("missing.parquet"))
