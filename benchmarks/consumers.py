"""Data consumers through range-streams, beside fsspec's http filesystem, in one run.

    python benchmarks/consumers.py [--rtt-ms direct,20] [--repeat 3] [--server auto|nginx|uvicorn]

Three tasks, on a real nginx (uvicorn + Starlette when nginx is missing) with the latency
proxy of run.py in front for each RTT but "direct":

* lines of a 5 MB CSV: ``for line in range_streams.open(url)`` beside reading the file
  whole with ``range_streams.open(url).read()`` (the target: lines within 1.5x of that),
  beside the same loop over the bytes in memory (the consumer's own cost, no I/O) and
  beside iterating ``fsspec.open("http://...")``;
* a zarr array of 100 chunks read whole (``array[:]``) through ``fs.get_mapper(url)`` of
  ``rs+http`` and of fsspec's ``http``;
* one parquet column (``pyarrow.parquet.read_table(columns=[...])``) with ``filesystem=``
  ``rs+http`` and ``http``.

Every row runs on a fresh filesystem (no instance cache) and fresh connections; requests
and body bytes come from the server's access log between the row's start and end, time
is wall time around it (run.py's conventions and table). Data is generated once into
benchmarks/.data/consumers/ (deterministic).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run
from _infra import exit_on_sigterm, local_server

DATA = Path(__file__).resolve().parent / ".data" / "consumers"
CSV_ROWS = 180_000  # ~5 MB
CHUNK = 100  # zarr: a 1000 x 1000 float32 array in 10 x 10 = 100 chunks of 40 KB


@dataclass
class Files:
    csv: bytes
    grid: object  # numpy array, the zarr array's content
    column: list[float]


def generate() -> Files:
    """The CSV, the zarr store and the parquet file, written once (deterministic)."""
    import numpy as np  # noqa: PLC0415 - the consumers are optional for run.py's users
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(11)
    csv = DATA / "lines.csv"
    if not csv.exists():
        rows = [
            f"{i},{rng.random():.9f},{rng.choice(['alpha', 'beta', 'gamma'])}-{i % 9973}\n"
            for i in range(CSV_ROWS)
        ]
        csv.write_text("id,value,label\n" + "".join(rows))
    grid = np.arange(1000 * 1000, dtype="f4").reshape(1000, 1000)
    store = DATA / "grid.zarr"
    if not store.exists():
        import zarr  # noqa: PLC0415

        array = zarr.open_array(
            str(store), mode="w", shape=grid.shape, chunks=(CHUNK, CHUNK), dtype="f4"
        )
        array[:] = grid
    parquet = DATA / "table.parquet"
    values = [random.Random(12).random() for _ in range(400_000)]
    if not parquet.exists():
        table = pa.table(
            {
                "id": pa.array(range(len(values)), pa.int64()),
                "value": pa.array(values),
                "label": pa.array([f"label-{i % 5000}" for i in range(len(values))]),
            }
        )
        pq.write_table(table, parquet, row_group_size=50_000)
    for path in [DATA, *DATA.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return Files(csv.read_bytes(), grid, values)


Impl = Callable[[str, Files], str]


def _fs(protocol: str) -> object:
    import fsspec  # noqa: PLC0415

    return fsspec.filesystem(protocol, skip_instance_cache=True)


def csv_rs_lines(base: str, files: Files) -> str:
    import range_streams  # noqa: PLC0415

    count = 0
    with range_streams.open(f"{base}/lines.csv") as f:
        for _ in f:
            count += 1
    return run.check_count(count, CSV_ROWS + 1)


def csv_rs_whole(base: str, files: Files) -> str:
    import range_streams  # noqa: PLC0415

    with range_streams.open(f"{base}/lines.csv") as f:
        data = f.read()
    if data != files.csv:
        raise run.Wrong("not the file's bytes")
    return f"{len(data):,} bytes"


def csv_rs_text(base: str, files: Files) -> str:
    import range_streams  # noqa: PLC0415

    with range_streams.open(f"{base}/lines.csv", "r", encoding="ascii") as f:
        count = sum(1 for _ in f)
    return run.check_count(count, CSV_ROWS + 1)


def csv_floor(base: str, files: Files) -> str:
    """The consumer's own cost: the same loop over the bytes already in memory."""
    count = 0
    for _ in io.BufferedReader(io.BytesIO(files.csv), 128 * 1024):
        count += 1
    return run.check_count(count, CSV_ROWS + 1)


def csv_fsspec_lines(base: str, files: Files) -> str:
    import fsspec  # noqa: PLC0415

    count = 0
    with fsspec.open(f"{base}/lines.csv", "rb") as f:
        for _ in f:
            count += 1
    return run.check_count(count, CSV_ROWS + 1)


def zarr_read(protocol: str) -> Impl:
    def impl(base: str, files: Files) -> str:
        import numpy as np  # noqa: PLC0415
        import zarr  # noqa: PLC0415

        fs = _fs(protocol)
        url = f"{base}/grid.zarr"
        array = zarr.open_array(fs.get_mapper(url), mode="r")  # type: ignore[attr-defined]
        got = array[:]
        if not np.array_equal(got, files.grid):
            raise run.Wrong("not the array's values")
        return f"{array.nchunks} chunks"

    return impl


def parquet_column(protocol: str) -> Impl:
    def impl(base: str, files: Files) -> str:
        import pyarrow.parquet as pq  # noqa: PLC0415

        fs = _fs(protocol)
        prefix = "rs+" if protocol == "rs+http" else ""
        table = pq.read_table(f"{prefix}{base}/table.parquet", columns=["value"], filesystem=fs)
        if table.column("value").to_pylist() != files.column:
            raise run.Wrong("not the column's values")
        return f"{table.num_rows:,} rows"

    return impl


TASKS: list[tuple[str, list[tuple[str, Impl]], str]] = [
    (
        f"lines of a {CSV_ROWS:,}-row CSV (~5 MB)",
        [
            ("rs: open(url).read() (whole)", csv_rs_whole),
            ("rs: for line in open(url)", csv_rs_lines),
            ("rs: for line in open(url, 'r')", csv_rs_text),
            ("floor: for line in BufferedReader(BytesIO(bytes))", csv_floor),
            ("fsspec http: for line in fsspec.open(url)", csv_fsspec_lines),
        ],
        "rs: open(url).read() (whole)",
    ),
    (
        "zarr array of 100 chunks, read whole",
        [("rs+http: get_mapper", zarr_read("rs+http")), ("http: get_mapper", zarr_read("http"))],
        "http: get_mapper",
    ),
    (
        "parquet: one column of 8 row groups",
        [
            ("rs+http: read_table", parquet_column("rs+http")),
            ("http: read_table", parquet_column("http")),
        ],
        "http: read_table",
    ),
]


def run_row(task: str, name: str, impl: Impl, base: str, files: Files, server: object) -> run.Row:
    log = server.access_log  # type: ignore[attr-defined]
    mark = log.mark()
    t0 = time.perf_counter()
    try:
        detail = impl(base, files)
        status = "ok"
    except run.Wrong as exc:
        detail, status = "", f"wrong: {exc}"
    except ImportError as exc:
        return run.Row(task, name, f"unavailable: {exc}")
    except Exception as exc:  # reported, and the other rows go on
        detail, status = "", f"error: {type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - t0
    log.settle(quiet=0.05)
    entries = log.since(mark)
    return run.Row(
        task, name, status, seconds, len(entries), sum(e.body_bytes for e in entries), detail
    )


def main() -> int:
    exit_on_sigterm()
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rtt-ms", default="direct,20", help="as run.py's (default: direct,20)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the median is shown")
    ap.add_argument("--server", choices=["auto", "nginx", "uvicorn"], default="auto")
    args = ap.parse_args()
    files = generate()
    import tempfile  # noqa: PLC0415

    with (
        tempfile.TemporaryDirectory(prefix="rs-consumers-") as work,
        local_server(DATA, Path(work), args.server) as server,
    ):
        print(f"server: {server.kind} on {server.base_url}; {run.versions(server)}")
        for rtt in run.parse_rtts(args.rtt_ms):
            if rtt == "direct":
                rows = table(server.base_url, files, server, args.repeat)
                title = "direct (no proxy)"
            else:
                with run.latency_proxy(server.port, float(rtt)) as proxy:
                    measured = run.measure_rtt(proxy.base, "lines.csv")
                    rows = table(proxy.base, files, server, args.repeat)
                    title = f"RTT {rtt} ms ({proxy.label}; measured {measured * 1000:.1f} ms)"
            run.print_table(title, rows)
    return 0


def table(base: str, files: Files, server: object, repeat: int) -> list[run.Row]:
    rows = []
    for task, impls, reference in TASKS:
        task_rows = []
        for name, impl in impls:
            tries = [run_row(task, name, impl, base, files, server) for _ in range(repeat)]
            failed = next((r for r in tries if r.status != "ok"), None)
            tries.sort(key=lambda r: r.seconds or 0.0)
            task_rows.append(failed or tries[len(tries) // 2])
        ref = next(r for r in task_rows if r.impl == reference)
        for row in task_rows:
            if row.status == "ok" and ref.status == "ok" and ref.seconds:
                row.ratio = f"{(row.seconds or 0.0) / ref.seconds:.2f}x"
        rows.extend(task_rows)
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
