"""The shared cache against fsspec's blockcache and simplecache, cold and warm.

    python benchmarks/cache_bench.py [--rtt-ms direct,20] [--quick] [--repeat N]
                                     [--server auto|nginx|uvicorn] [--json FILE]

Two tasks, each read by every implementation with the same server (nginx when installed)
and, for each RTT, the same latency proxy as benchmarks/run.py:

* parquet: one column of one row group of a 16-row-group parquet file (pyarrow reading
  through an fsspec filesystem: the footer, then the column chunk);
* zip: listing a many-entry zip (``zipfile.ZipFile(f).infolist()``).

Rows: ``rs: no cache`` (range-streams' fsspec filesystem as it is), ``rs: cache, cold``
(an empty cache directory), ``rs: cache, warm (memory)`` (the same ``SharedCache`` again
in this process), ``rs: cache, warm (disk)`` (a cache with a 1-byte memory tier: every
block from the directory, as a new process sees it); ``fsspec http: no cache``;
``fsspec blockcache`` and ``fsspec simplecache`` over fsspec's HTTP filesystem, cold (an
empty ``cache_storage``) then warm (a new filesystem instance on the same storage). A
cold row gets a fresh directory each time it runs. Requests and bytes come from the
server's access log between a row's start and end, as in run.py.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import random
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
import run
from _infra import exit_on_sigterm, latency_proxy_command, local_server, proxy_label

PARQUET_ROW_GROUPS = 16
PARQUET_ROWS_PER_GROUP = 100_000
ROW_GROUP = 11  # the row group read
COLUMN = "value"


def parquet_file(data_dir: Path, quick: bool) -> Path:
    """A deterministic parquet file (cached under a name that hashes its parameters)."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    rows = PARQUET_ROWS_PER_GROUP // (10 if quick else 1)
    key = hashlib.sha256(f"v1-{PARQUET_ROW_GROUPS}-{rows}".encode()).hexdigest()[:12]
    path = data_dir / f"table-{PARQUET_ROW_GROUPS}x{rows}-{key}.parquet"
    if path.exists():
        return path
    rng = random.Random(11)
    total = PARQUET_ROW_GROUPS * rows
    table = pa.table(
        {
            "id": pa.array(range(total), pa.int64()),
            COLUMN: pa.array([rng.random() for _ in range(total)]),
            "label": pa.array([f"label-{rng.randrange(50_000)}" for _ in range(total)]),
            "flag": pa.array([rng.random() < 0.5 for _ in range(total)]),
        }
    )
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, row_group_size=rows, compression="none")
    tmp.replace(path)
    return path


@dataclass
class Files:
    parquet: str  # URL path names under the server's root
    zip: str
    column_sum: float  # of COLUMN in ROW_GROUP: what a right answer holds
    entries: int


@dataclass
class Ctx:
    base: str
    files: Files
    scratch: Path
    caches: dict[str, Any]  # the warm rows' caches, made by their cold rows

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def fresh_dir(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.scratch))


# -- the filesystems -------------------------------------------------------------------------
def rs_fs(cache: object = False) -> Any:
    from range_streams.fsspec import RangeFileSystem  # noqa: PLC0415

    return RangeFileSystem(cache=cache, skip_instance_cache=True)


def http_fs() -> Any:
    import fsspec  # noqa: PLC0415

    return fsspec.filesystem("http", skip_instance_cache=True)


def cached_fs(kind: str, storage: Path) -> Any:
    import fsspec  # noqa: PLC0415

    return fsspec.filesystem(
        kind, target_protocol="http", cache_storage=str(storage), skip_instance_cache=True
    )


Opener = Callable[[Ctx], tuple[Any, str]]  # a filesystem, and the URL prefix it wants


def rs_plain(ctx: Ctx) -> tuple[Any, str]:
    return rs_fs(False), "rs+"


def rs_cold(ctx: Ctx) -> tuple[Any, str]:
    import range_streams  # noqa: PLC0415

    directory = ctx.fresh_dir()
    ctx.caches["rs"] = range_streams.SharedCache(directory)
    ctx.caches["rs-disk"] = range_streams.SharedCache(directory, memory_bytes=1)
    ctx.caches["rs"].stats()  # the directory's database made now: a cache in use, empty
    return rs_fs(ctx.caches["rs"]), "rs+"


def rs_warm_memory(ctx: Ctx) -> tuple[Any, str]:
    return rs_fs(ctx.caches["rs"]), "rs+"


def rs_warm_disk(ctx: Ctx) -> tuple[Any, str]:
    return rs_fs(ctx.caches["rs-disk"]), "rs+"


def fsspec_plain(ctx: Ctx) -> tuple[Any, str]:
    return http_fs(), ""


def fsspec_cold(kind: str) -> Opener:
    def opener(ctx: Ctx) -> tuple[Any, str]:
        ctx.caches[kind] = ctx.fresh_dir()
        return cached_fs(kind, ctx.caches[kind]), ""

    return opener


def fsspec_warm(kind: str) -> Opener:
    def opener(ctx: Ctx) -> tuple[Any, str]:
        return cached_fs(kind, ctx.caches[kind]), ""

    return opener


IMPLEMENTATIONS: list[tuple[str, Opener]] = [
    ("rs: no cache", rs_plain),
    ("rs: cache, cold", rs_cold),
    ("rs: cache, warm (memory)", rs_warm_memory),
    ("rs: cache, warm (disk)", rs_warm_disk),
    ("fsspec http: no cache", fsspec_plain),
    ("fsspec blockcache: cold", fsspec_cold("blockcache")),
    ("fsspec blockcache: warm", fsspec_warm("blockcache")),
    ("fsspec simplecache: cold", fsspec_cold("simplecache")),
    ("fsspec simplecache: warm", fsspec_warm("simplecache")),
]


# -- the tasks -------------------------------------------------------------------------------
def read_column(ctx: Ctx, fs: Any, prefix: str) -> str:
    import pyarrow.parquet as pq  # noqa: PLC0415

    with fs.open(prefix + ctx.url(ctx.files.parquet), "rb") as file:
        table = pq.ParquetFile(file).read_row_group(ROW_GROUP, columns=[COLUMN])
    total = float(sum(table.column(0).to_pylist()))
    if abs(total - ctx.files.column_sum) > 1e-6:
        raise run.Wrong(f"column sum {total}, expected {ctx.files.column_sum}")
    return f"{table.num_rows:,} values ok"


def list_zip(ctx: Ctx, fs: Any, prefix: str) -> str:
    with fs.open(prefix + ctx.url(ctx.files.zip), "rb") as file:
        count = len(zipfile.ZipFile(file).infolist())
    return run.check_count(count, ctx.files.entries)


TASKS: list[tuple[str, Callable[[Ctx, Any, str], str]]] = [
    (f"parquet: column {COLUMN!r} of row group {ROW_GROUP}", read_column),
    ("zip: list all entries", list_zip),
]


def measure(
    task: str,
    name: str,
    work: Callable[[Ctx, Any, str], str],
    opener: Opener,
    ctx: Ctx,
    server: Any,
    repeat: int,
) -> run.Row:
    """The row with the median time of ``repeat`` runs (the first failure, if any). The
    filesystem (and its cache directory) is made before the clock starts, as run.py
    makes its clients."""
    rows = []
    for _ in range(repeat):
        fs, prefix = opener(ctx)
        mark = server.access_log.mark()
        started = time.perf_counter()
        try:
            detail, status = work(ctx, fs, prefix), "ok"
        except run.Wrong as exc:
            detail, status = "", f"wrong: {exc}"
        except Exception as exc:  # reported, and the other rows go on
            detail, status = "", f"error: {type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - started
        server.access_log.settle(quiet=0.05)
        entries = server.access_log.since(mark)
        row = run.Row(
            task, name, status, seconds, len(entries), sum(e.body_bytes for e in entries), detail
        )
        if status != "ok":
            return row
        rows.append(row)
    rows.sort(key=lambda r: r.seconds or 0.0)
    return rows[len(rows) // 2]


def run_tasks(ctx: Ctx, server: Any, repeat: int) -> list[run.Row]:
    for _, work in TASKS:  # imports and first-use costs (pyarrow, aiohttp) charged to nobody
        for opener in (rs_plain, fsspec_plain):
            work(ctx, *opener(ctx))
    rows = []
    for task, work in TASKS:
        for name, opener in IMPLEMENTATIONS:
            # A cold row runs its repeats on fresh directories; the warm rows after it
            # use the directory of its last run.
            rows.append(measure(task, name, work, opener, ctx, server, repeat))
        reference = next(r for r in rows if r.task == task and r.impl == "rs: no cache")
        for row in rows:
            if row.task == task and row.status == "ok" and reference.seconds:
                row.ratio = f"{(row.seconds or 0.0) / reference.seconds:.2f}x"
    return rows


@contextlib.contextmanager
def maybe_proxy(rtt: str, port: int, argv: list[str] | None) -> Iterator[tuple[str, str]]:
    if rtt == "direct":
        yield f"http://127.0.0.1:{port}", "direct to the server (no proxy)"
        return
    with run.latency_proxy(port, float(rtt), argv) as proxy:
        measured = run.measure_rtt(proxy.base, "ping.bin")
        yield (
            proxy.base,
            (
                f"through the latency proxy {proxy.label}, RTT {rtt} ms (measured: "
                f"{measured * 1e3:.1f} ms per small request on a warm connection)"
            ),
        )


def main() -> int:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rtt-ms", default="direct,20")
    parser.add_argument("--quick", action="store_true", help="a 10x smaller parquet and zip")
    parser.add_argument("--server", choices=["auto", "nginx", "uvicorn"], default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rtts = run.parse_rtts(args.rtt_ms)

    data_dir = datagen.DATA_DIR
    data_dir.mkdir(parents=True, exist_ok=True)
    zip_art = datagen.many_zip(datagen.QUICK if args.quick else datagen.FULL, data_dir)
    parquet = parquet_file(data_dir, args.quick)
    (data_dir / "ping.bin").write_bytes(b"x" * 1024)
    import pyarrow.parquet as pq  # noqa: PLC0415

    local = pq.ParquetFile(io.BytesIO(parquet.read_bytes()))
    column = local.read_row_group(ROW_GROUP, columns=[COLUMN]).column(0)
    entries = zip_art.meta["entries"]
    assert isinstance(entries, int)
    files = Files(parquet.name, zip_art.name, float(sum(column.to_pylist())), entries)
    print(
        f"parquet {parquet.name} {run.human_bytes(parquet.stat().st_size)};"
        f" zip {zip_art.name} {run.human_bytes(zip_art.size)}"
    )

    all_rows: dict[str, list[run.Row]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="rs-cache-bench-") as tmp,
        local_server(data_dir, Path(tmp) / "server", args.server) as server,
    ):
        print(f"server: {server.kind} on {server.base_url}; {run.versions(server)}")
        argv = None
        if any(rtt != "direct" for rtt in rtts):
            argv = latency_proxy_command()
            print(f"latency proxy: {proxy_label(argv)}")
        for rtt in rtts:
            with maybe_proxy(rtt, server.port, argv) as (base, title):
                scratch = Path(tmp) / f"caches-{rtt}"
                scratch.mkdir()
                ctx = Ctx(base, files, scratch, {})
                rows = run_tasks(ctx, server, args.repeat)
                run.print_table(title, rows)
                all_rows[rtt] = rows
    if args.json:
        args.json.write_text(json.dumps({k: [r.__dict__ for r in v] for k, v in all_rows.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
