"""Benchmark harness: range-streams against raw httpx and curl, on a real local server.

    python benchmarks/run.py [--rtt-ms direct,0,20] [--quick] [--server auto|nginx|uvicorn]
                             [--proxy c|python]

One command: generates (or reuses) deterministic data in benchmarks/.data/, starts nginx
(uvicorn + Starlette StaticFiles when nginx is missing) on 127.0.0.1, and for each RTT starts
a latency-injecting proxy in front of it (benchmarks/delay_proxy.c, compiled on first use;
benchmarks/latency_proxy.py with --proxy python); "direct" = no proxy: the client talks to
nginx itself. Each task is run by each implementation with a fresh httpx.Client; wall time is
measured around the task and the number of requests and body bytes are read from the server's
access log between the task's start and end.

range-streams rows call the library's public API (range_streams.open, f.read_ranges,
range_streams.codecs.ZipReader / TarReader). Until an API exists its rows read
"unavailable: <reason>". See benchmarks/README.md for the columns and for measured numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib.metadata
import io
import json
import os
import platform
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
from _infra import (
    Server,
    exit_on_sigterm,
    find_nginx,
    latency_proxy_command,
    local_server,
    proxy_label,
)

HERE = Path(__file__).resolve().parent
UPSTREAM_VENV = HERE / ".venv-upstream"
UPSTREAM_RUNNER = HERE / "_upstream_tasks.py"
MIB = 1 << 20
RANDOM_READS = 200
RANDOM_READ_SIZE = 4096
SEQ_READ = MIB

UNAVAILABLE = (AttributeError, ImportError, NotImplementedError)


class Wrong(Exception):
    """The implementation returned a wrong result."""


class GaveUp(Exception):
    """The implementation ran past its time limit (only used for the 1.4.1 rows)."""


# ---------------------------------------------------------------------------------------------
# Context shared by the tasks


@dataclass
class Ctx:
    base: str  # base URL the clients use (proxy or server)
    arts: dict[str, datagen.Artifact]
    data_dir: Path
    block: bytes  # the big file's seeded 16 MiB block (to compute expected bytes)
    tar_names: list[str]
    offsets: list[int]
    big_tar_names: list[str] = field(default_factory=list)
    upstream_python: Path | None = None
    upstream_timeout: float = 30.0
    upstream_skip: str = ""
    row_client: httpx.Client | None = None  # a fresh one for every row, set by run_one

    @property
    def client(self) -> httpx.Client:
        assert self.row_client is not None
        return self.row_client

    def url(self, key: str) -> str:
        return f"{self.base}/{self.arts[key].name}"


def new_client() -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(120.0))


RS_OWN_CLIENT = True  # --rs-client given: range_streams.open(url, client=httpx.Client())


@contextlib.contextmanager
def rs_file(url: str, client: httpx.Client) -> Iterator[object]:
    import range_streams  # noqa: PLC0415 (the library under test may not import yet)

    f = range_streams.open(url) if RS_OWN_CLIENT else range_streams.open(url, client=client)
    try:
        yield f
    finally:
        close = getattr(f, "close", None)
        if close is not None:
            close()


def rs_codecs() -> object:
    import range_streams.codecs  # noqa: PLC0415

    return range_streams.codecs


# ---------------------------------------------------------------------------------------------
# Raw-httpx helpers for the naive baselines: one request per needed range, sequentially.


def get_range(client: httpx.Client, url: str, start: int, stop: int) -> bytes:
    """Bytes [start, stop) with one streamed range request."""
    buf = bytearray()
    with client.stream("GET", url, headers={"Range": f"bytes={start}-{stop - 1}"}) as r:
        if r.status_code != 206:
            raise Wrong(f"expected 206, got {r.status_code}")
        for chunk in r.iter_bytes():
            buf += chunk
    if len(buf) != stop - start:
        raise Wrong(f"range [{start},{stop}) returned {len(buf)} bytes")
    return bytes(buf)


def get_suffix(client: httpx.Client, url: str, length: int) -> tuple[bytes, int]:
    """The last `length` bytes and the total size (from Content-Range)."""
    with client.stream("GET", url, headers={"Range": f"bytes=-{length}"}) as r:
        if r.status_code != 206:
            raise Wrong(f"expected 206, got {r.status_code}")
        total = int(r.headers["content-range"].rpartition("/")[2])
        return r.read(), total


EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
CDH = struct.Struct("<4s6H3L5H2L")  # central directory file header
LFH = struct.Struct("<4s5H3L2H")  # local file header


def naive_central_directory(client: httpx.Client, url: str) -> bytes:
    tail, _ = get_suffix(client, url, EOCD.size)  # no archive comment: EOCD is the last 22
    if tail[:4] != b"PK\x05\x06":
        tail, _ = get_suffix(client, url, EOCD.size + 0xFFFF)
        tail = tail[tail.rindex(b"PK\x05\x06") :]
    _, _, _, _, _, cd_size, cd_offset, _ = EOCD.unpack_from(tail)
    return get_range(client, url, cd_offset, cd_offset + cd_size)


def parse_central_directory(cd: bytes) -> Iterator[tuple[str, int, int, int, int]]:
    """(name, method, compressed size, uncompressed size, local header offset) per entry."""
    pos = 0
    while pos + CDH.size <= len(cd) and cd[pos : pos + 4] == b"PK\x01\x02":
        f = CDH.unpack_from(cd, pos)
        method, csize, usize = f[4], f[8], f[9]
        nlen, xlen, clen, offset = f[10], f[11], f[12], f[16]
        name = cd[pos + CDH.size : pos + CDH.size + nlen].decode("utf-8", "replace")
        yield name, method, csize, usize, offset
        pos += CDH.size + nlen + xlen + clen


class CounterCheck:
    """Checks the big file's per-MiB 8-byte counters across arbitrarily sized chunks."""

    def __init__(self) -> None:
        self.pos = 0
        self.pending = b""  # first bytes of a counter split across chunks
        self.pending_at = -1

    def feed(self, chunk: bytes) -> None:
        start, end = self.pos, self.pos + len(chunk)
        if self.pending_at >= 0:
            self.pending += chunk[: 8 - len(self.pending)]
            if len(self.pending) == 8:
                self._check(self.pending_at, self.pending)
                self.pending_at = -1
        b = -(-start // MIB) * MIB
        while b < end:
            piece = chunk[b - start : b - start + 8]
            if len(piece) == 8:
                self._check(b, piece)
            else:
                self.pending, self.pending_at = piece, b
            b += MIB
        self.pos = end

    @staticmethod
    def _check(boundary: int, piece: bytes) -> None:
        if struct.unpack("<Q", piece)[0] != boundary // MIB:
            raise Wrong(f"wrong bytes at MiB {boundary // MIB}")

    def done(self, size: int) -> None:
        if self.pos != size:
            raise Wrong(f"read {self.pos} bytes, expected {size}")


# ---------------------------------------------------------------------------------------------
# Tasks. Each implementation returns a short description of what it produced (checked).


@dataclass
class Timed:
    """A result whose time was measured inside another process (upstream venv runner)."""

    detail: str
    seconds: float


@dataclass(frozen=True)
class Verify:
    """A task's result, checked by ``run_one`` once the clock has stopped: hashing the
    bytes a task returned is the harness's work, charged to no implementation."""

    check: Callable[[], str]


Impl = Callable[[Ctx], "str | Timed | Verify"]


def zip_list_whole(ctx: Ctx) -> str:
    c = ctx.client
    r = c.get(ctx.url("many_zip"))
    r.raise_for_status()
    n = len(zipfile.ZipFile(io.BytesIO(r.content)).infolist())
    return check_count(n, ctx.arts["many_zip"].meta["entries"])


def zip_list_naive(ctx: Ctx) -> str:
    c = ctx.client
    n = sum(1 for _ in parse_central_directory(naive_central_directory(c, ctx.url("many_zip"))))
    return check_count(n, ctx.arts["many_zip"].meta["entries"])


def zip_list_rs_zipfile(ctx: Ctx) -> str:
    c = ctx.client
    with rs_file(ctx.url("many_zip"), c) as f:
        n = len(zipfile.ZipFile(f).infolist())  # type: ignore[arg-type]
    return check_count(n, ctx.arts["many_zip"].meta["entries"])


def zip_list_rs_codec(ctx: Ctx) -> str:
    codecs = rs_codecs()
    c = ctx.client
    with rs_file(ctx.url("many_zip"), c) as f:
        n = len(codecs.ZipReader(f).infolist())  # type: ignore[attr-defined]
    return check_count(n, ctx.arts["many_zip"].meta["entries"])


def check_count(n: object, expected: object) -> str:
    if n != expected:
        raise Wrong(f"{n} entries, expected {expected}")
    return f"{n} entries"


def check_member(data: bytes, ctx: Ctx) -> Verify:
    def check() -> str:
        meta = ctx.arts["big_zip"].meta
        if hashlib.sha256(data).hexdigest() != meta["member_sha256"]:
            raise Wrong(f"member content differs ({len(data)} bytes)")
        return f"{len(data):,} bytes ok"

    return Verify(check)


def zip_extract_naive(ctx: Ctx) -> Verify:
    url = ctx.url("big_zip")
    member = str(ctx.arts["big_zip"].meta["member"])
    c = ctx.client
    entries = parse_central_directory(naive_central_directory(c, url))
    _, method, csize, _, offset = next(e for e in entries if e[0] == member)
    lfh = LFH.unpack(get_range(c, url, offset, offset + LFH.size))
    start = offset + LFH.size + lfh[9] + lfh[10]
    raw = get_range(c, url, start, start + csize)
    data = zlib.decompress(raw, -15) if method == zipfile.ZIP_DEFLATED else raw
    return check_member(data, ctx)


def zip_extract_whole(ctx: Ctx) -> Verify:
    member = str(ctx.arts["big_zip"].meta["member"])
    c = ctx.client
    with tempfile.TemporaryFile(dir=ctx.data_dir) as tmp:
        with c.stream("GET", ctx.url("big_zip")) as r:
            r.raise_for_status()
            for chunk in r.iter_bytes(MIB):
                tmp.write(chunk)
        tmp.seek(0)
        data = zipfile.ZipFile(tmp).read(member)
    return check_member(data, ctx)


def zip_extract_rs_zipfile(ctx: Ctx) -> Verify:
    member = str(ctx.arts["big_zip"].meta["member"])
    c = ctx.client
    with rs_file(ctx.url("big_zip"), c) as f:
        data = zipfile.ZipFile(f).read(member)  # type: ignore[arg-type]
    return check_member(data, ctx)


def zip_extract_rs_codec(ctx: Ctx) -> Verify:
    member = str(ctx.arts["big_zip"].meta["member"])
    codecs = rs_codecs()
    c = ctx.client
    with rs_file(ctx.url("big_zip"), c) as f:
        data = codecs.ZipReader(f).read(member)  # type: ignore[attr-defined]
    return check_member(data, ctx)


def check_random(chunks: list[bytes], ctx: Ctx) -> Verify:
    def check() -> str:
        want = hashlib.sha256()
        got = hashlib.sha256()
        for off, chunk in zip(ctx.offsets, chunks, strict=True):
            want.update(datagen.expected_big_file_bytes(ctx.block, off, off + RANDOM_READ_SIZE))
            got.update(chunk)
        if want.digest() != got.digest():
            raise Wrong("random reads returned wrong bytes")
        return f"{len(chunks)} x {RANDOM_READ_SIZE} B ok"

    return Verify(check)


def random_naive(ctx: Ctx) -> Verify:
    url = ctx.url("big_file")
    c = ctx.client
    chunks = [get_range(c, url, o, o + RANDOM_READ_SIZE) for o in ctx.offsets]
    return check_random(chunks, ctx)


def random_rs_seek(ctx: Ctx) -> Verify:
    chunks = []
    c = ctx.client
    with rs_file(ctx.url("big_file"), c) as f:
        for o in ctx.offsets:
            f.seek(o)  # type: ignore[attr-defined]
            chunks.append(f.read(RANDOM_READ_SIZE))  # type: ignore[attr-defined]
    return check_random(chunks, ctx)


def random_rs_raw(ctx: Ctx) -> Verify:
    """The raw file object (range_streams.RangeFile), whatever open() returns."""
    import range_streams  # noqa: PLC0415

    chunks = []
    client = None if RS_OWN_CLIENT else ctx.client
    with range_streams.RangeFile(ctx.url("big_file"), client) as f:
        for o in ctx.offsets:
            f.seek(o)
            chunks.append(f.read(RANDOM_READ_SIZE))
    return check_random(chunks, ctx)


def random_rs_read_ranges(ctx: Ctx) -> Verify:
    c = ctx.client
    with rs_file(ctx.url("big_file"), c) as f:
        spans = [(o, o + RANDOM_READ_SIZE) for o in ctx.offsets]
        chunks = f.read_ranges(spans)  # type: ignore[attr-defined]
    return check_random(list(chunks), ctx)


def seq_httpx_stream(ctx: Ctx) -> str:
    check = CounterCheck()
    c = ctx.client
    with c.stream("GET", ctx.url("big_file")) as r:
        r.raise_for_status()
        for chunk in r.iter_bytes(SEQ_READ):
            check.feed(chunk)
    check.done(ctx.arts["big_file"].size)
    return f"{check.pos:,} bytes ok"


def seq_curl(ctx: Ctx) -> str:
    curl = shutil.which("curl")
    if curl is None:
        raise NotImplementedError("curl is not installed")
    out = subprocess.run(
        [curl, "-s", "-o", os.devnull, "-w", "%{http_code} %{size_download}", ctx.url("big_file")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if out != ["200", str(ctx.arts["big_file"].size)]:
        raise Wrong(f"curl: {out}")
    return f"{int(out[1]):,} bytes"


def seq_rs_read(ctx: Ctx) -> str:
    check = CounterCheck()
    c = ctx.client
    with rs_file(ctx.url("big_file"), c) as f:
        while chunk := f.read(SEQ_READ):  # type: ignore[attr-defined]
            check.feed(chunk)
    check.done(ctx.arts["big_file"].size)
    return f"{check.pos:,} bytes ok"


def seq_rs_readinto(ctx: Ctx) -> str:
    """One reused 1 MiB buffer: with the library's own client the bytes go from the
    socket straight into it (no bytes object per read: what read() cannot avoid)."""
    check = CounterCheck()
    c = ctx.client
    buffer = bytearray(SEQ_READ)
    view = memoryview(buffer)
    with rs_file(ctx.url("big_file"), c) as f:
        while count := f.readinto(buffer):  # type: ignore[attr-defined]
            check.feed(view[:count])  # type: ignore[arg-type]
    check.done(ctx.arts["big_file"].size)
    return f"{check.pos:,} bytes ok"


MANY_URLS = 200
MANY_CONCURRENCY = 20


def many_items(ctx: Ctx) -> list[tuple[str, list[tuple[int, int]]]]:
    """One small range from each of 200 distinct URLs (the same file, different queries)."""
    url = ctx.url("big_file")
    return [(f"{url}?n={i}", [(o, o + RANDOM_READ_SIZE)]) for i, o in enumerate(ctx.offsets)]


def many_check(chunks: list[bytes], ctx: Ctx) -> Verify:
    return check_random(chunks, ctx)


def many_httpx_gather(ctx: Ctx) -> Verify:
    """Baseline: asyncio.gather of raw httpx range requests under a semaphore of 20."""
    items = many_items(ctx)

    async def main() -> list[bytes]:
        limit = asyncio.Semaphore(MANY_CONCURRENCY)
        async with httpx.AsyncClient(timeout=httpx.Timeout(120.0)) as client:

            async def one(url: str, start: int, stop: int) -> bytes:
                async with limit:
                    r = await client.get(url, headers={"Range": f"bytes={start}-{stop - 1}"})
                    if r.status_code != 206:
                        raise Wrong(f"expected 206, got {r.status_code}")
                    return r.content

            return list(await asyncio.gather(*(one(u, *spans[0]) for u, spans in items)))

    return many_check(asyncio.run(main()), ctx)


def many_raw_sockets(ctx: Ctx) -> Verify:
    """The rig's floor, not a library: 20 asyncio sockets opened at once, each sending
    prebuilt GETs from a shared list and reading each answer by its Content-Length (no
    header checks, no retries). What a client without any per-request work would take."""
    parsed = httpx.URL(ctx.base)
    host, port = parsed.host, parsed.port or 80
    items = many_items(ctx)
    requests = [
        (
            f"GET {httpx.URL(url).raw_path.decode()} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Range: bytes={start}-{stop - 1}\r\nAccept-Encoding: identity\r\n\r\n"
        ).encode()
        for url, [(start, stop)] in items
    ]
    chunks: list[bytes] = [b""] * len(requests)

    async def connection(loop: asyncio.AbstractEventLoop, todo: list[int]) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await loop.sock_connect(sock, (host, port))
            while todo:
                index = todo.pop()
                await loop.sock_sendall(sock, requests[index])
                data = b""
                while b"\r\n\r\n" not in data:
                    data += await loop.sock_recv(sock, 65536)
                head, _, body = data.partition(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 206"):
                    raise Wrong(f"expected 206, got {head[:40]!r}")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += await loop.sock_recv(sock, 65536)
                chunks[index] = body
        finally:
            sock.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        todo = list(reversed(range(len(requests))))  # popped from the end: input order
        await asyncio.gather(*(connection(loop, todo) for _ in range(MANY_CONCURRENCY)))

    asyncio.run(main())
    return many_check(chunks, ctx)


def many_rs_fetch_many(ctx: Ctx) -> Verify:
    import range_streams  # noqa: PLC0415

    results = asyncio.run(range_streams.fetch_many(many_items(ctx), concurrency=MANY_CONCURRENCY))
    for result in results:
        if result.error is not None:
            raise Wrong(f"{result.url}: {result.error}")
    return many_check([r.data[0] for r in results if r.data], ctx)


def check_names(names: list[str], ctx: Ctx) -> str:
    if list(names) != ctx.tar_names:
        raise Wrong(f"{len(names)} names, expected {len(ctx.tar_names)} (or different)")
    return f"{len(names)} members"


def tar_whole(ctx: Ctx) -> str:
    c = ctx.client
    r = c.get(ctx.url("tar"))
    r.raise_for_status()
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tf:
        names = tf.getnames()
    return check_names(names, ctx)


def tar_naive(ctx: Ctx) -> str:
    url = ctx.url("tar")
    size = ctx.arts["tar"].size
    names = []
    pos = 0
    c = ctx.client
    while pos + 512 <= size:
        header = get_range(c, url, pos, pos + 512)
        if header == bytes(512):
            break
        names.append(header[:100].rstrip(b"\0").decode())
        length = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
        pos += 512 + -(-length // 512) * 512
    return check_names(names, ctx)


def tar_rs_tarfile(ctx: Ctx) -> str:
    c = ctx.client
    with (
        rs_file(ctx.url("tar"), c) as f,
        tarfile.open(fileobj=f) as tf,  # type: ignore[call-overload]
    ):
        names = tf.getnames()
    return check_names(names, ctx)


def tar_rs_codec(ctx: Ctx) -> str:
    codecs = rs_codecs()
    c = ctx.client
    with rs_file(ctx.url("tar"), c) as f:
        names = codecs.TarReader(f).namelist()  # type: ignore[attr-defined]
    return check_names(list(names), ctx)


# ---------------------------------------------------------------------------------------------
# Listing big archives: a tar of ~1 MiB members, a PNG's chunk table


def check_big_names(names: list[str], ctx: Ctx) -> str:
    if list(names) != ctx.big_tar_names:
        raise Wrong(f"{len(names)} names, expected {len(ctx.big_tar_names)} (or different)")
    return f"{len(names)} members"


def big_tar_naive(ctx: Ctx) -> str:
    """Header hopping with raw httpx: one 512-byte range per header."""
    url = ctx.url("big_tar")
    size = ctx.arts["big_tar"].size
    names = []
    pos = 0
    while pos + 512 <= size:
        header = get_range(ctx.client, url, pos, pos + 512)
        if header == bytes(512):
            break
        names.append(header[:100].rstrip(b"\0").decode())
        length = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
        pos += 512 + -(-length // 512) * 512
    return check_big_names(names, ctx)


def big_tar_rs_tarfile(ctx: Ctx) -> str:
    with (
        rs_file(ctx.url("big_tar"), ctx.client) as f,
        tarfile.open(fileobj=f, mode="r:") as tf,  # type: ignore[call-overload]
    ):
        names = tf.getnames()
    return check_big_names(names, ctx)


def big_tar_rs_tarfile_auto(ctx: Ctx) -> str:
    """tarfile.open(fileobj=f): tries gzip, bz2 and xz magic before plain tar."""
    with (
        rs_file(ctx.url("big_tar"), ctx.client) as f,
        tarfile.open(fileobj=f) as tf,  # type: ignore[call-overload]
    ):
        names = tf.getnames()
    return check_big_names(names, ctx)


def big_tar_rs_codec(ctx: Ctx) -> str:
    codecs = rs_codecs()
    with rs_file(ctx.url("big_tar"), ctx.client) as f:
        names = codecs.TarReader(f).namelist()  # type: ignore[attr-defined]
    return check_big_names(list(names), ctx)


def check_chunks(count: int, ctx: Ctx) -> str:
    if count != ctx.arts["png"].meta["chunks"]:
        raise Wrong(f"{count} chunks, expected {ctx.arts['png'].meta['chunks']}")
    return f"{count} chunks"


def png_naive(ctx: Ctx) -> str:
    """Chunk hopping with raw httpx: one 8-byte range per chunk header."""
    url, size = ctx.url("png"), ctx.arts["png"].size
    if get_range(ctx.client, url, 0, 8) != b"\x89PNG\r\n\x1a\n":
        raise Wrong("no PNG signature")
    pos, count = 8, 0
    while pos < size:
        length, kind = struct.unpack(">L4s", get_range(ctx.client, url, pos, pos + 8))
        pos += 12 + length
        count += 1
        if kind == b"IEND":
            break
    return check_chunks(count, ctx)


def png_rs_codec(ctx: Ctx) -> str:
    codecs = rs_codecs()
    with rs_file(ctx.url("png"), ctx.client) as f:
        table = codecs.PngReader(f).chunk_table  # type: ignore[attr-defined]
    return check_chunks(len(table), ctx)


# ---------------------------------------------------------------------------------------------
# Parquet: polars, DuckDB httpfs and pyarrow over fsspec's http beside range-streams


def parquet_need() -> None:
    """Raise ImportError (an 'unavailable' row) without what the parquet rows need."""
    import pyarrow.parquet  # noqa: F401, PLC0415


def check_sum(got: object, ctx: Ctx, key: str) -> str:
    want = float(ctx.arts["parquet"].meta[key])  # type: ignore[arg-type]
    if not isinstance(got, float) or abs(got - want) > 1e-9 * abs(want):
        raise Wrong(f"sum {got!r}, expected {want!r}")
    return f"sum {got:.6f}"


def parquet_query(ctx: Ctx) -> tuple[str, int]:
    meta = ctx.arts["parquet"].meta
    return ctx.url("parquet"), int(meta["last_group_first_id"])  # type: ignore[call-overload]


POLARS_RUNNER = HERE / "_polars_task.py"


def polars_query(ctx: Ctx, query: str) -> tuple[object, float]:
    """The query's result and time, run in a fresh interpreter (``_polars_task.py``)."""
    import polars  # noqa: F401, PLC0415 (an 'unavailable' row without it)

    url, first_id = parquet_query(ctx)
    proc = subprocess.run(
        [sys.executable, str(POLARS_RUNNER)],
        input=json.dumps({"url": url, "query": query, "first_id": first_id}),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["result"], float(out["seconds"])


def pq_polars(ctx: Ctx, last: bool) -> Timed:
    got, seconds = polars_query(ctx, "last" if last else "sum")
    return Timed(check_sum(got, ctx, "last_group_value_sum" if last else "value_sum"), seconds)


def duckdb_connection() -> object:
    """A fresh in-memory DuckDB with the httpfs extension the PyPI package ships (loaded
    from its file: nothing is downloaded)."""
    import duckdb  # noqa: PLC0415
    import duckdb_extension_httpfs  # noqa: PLC0415

    package = Path(duckdb_extension_httpfs.__file__).parent
    found = sorted(package.glob(f"extensions/v{duckdb.__version__}/httpfs.duckdb_extension"))
    if not found:
        raise ImportError(f"duckdb-extension-httpfs has no build for duckdb {duckdb.__version__}")
    con = duckdb.connect()
    con.execute(f"LOAD '{found[0]}'")
    return con


def pq_duckdb(ctx: Ctx, last: bool) -> str:
    url, first_id = parquet_query(ctx)
    con = duckdb_connection()
    where = f" WHERE id >= {first_id}" if last else ""
    (got,) = con.execute(f"SELECT sum(value) FROM read_parquet('{url}'){where}").fetchone()  # type: ignore[attr-defined]
    return check_sum(got, ctx, "last_group_value_sum" if last else "value_sum")


def pq_pyarrow_fs(ctx: Ctx, last: bool, protocol: str) -> str:
    import fsspec  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    url, first_id = parquet_query(ctx)
    fs = fsspec.filesystem(protocol, skip_instance_cache=True)
    path = url if protocol == "http" else "rs+" + url
    filters = [("id", ">=", first_id)] if last else None
    table = pq.read_table(path, columns=["value"], filters=filters, filesystem=fs)
    got = pc.sum(table["value"]).as_py()
    return check_sum(got, ctx, "last_group_value_sum" if last else "value_sum")


def pq_pyarrow_open(ctx: Ctx, last: bool) -> str:
    import pyarrow.compute as pc  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    url, first_id = parquet_query(ctx)
    filters = [("id", ">=", first_id)] if last else None
    with rs_file(url, ctx.client) as f:
        table = pq.read_table(f, columns=["value"], filters=filters)
    got = pc.sum(table["value"]).as_py()
    return check_sum(got, ctx, "last_group_value_sum" if last else "value_sum")


def pq_rs_parquet(ctx: Ctx, last: bool) -> str:
    import pyarrow.compute as pc  # noqa: PLC0415

    import range_streams.parquet as rsp  # noqa: PLC0415

    url, first_id = parquet_query(ctx)
    filters = [("id", ">=", first_id)] if last else None
    client = None if RS_OWN_CLIENT else ctx.client
    table = rsp.read_table(url, columns=["value"], filters=filters, client=client)
    got = pc.sum(table["value"]).as_py()
    return check_sum(got, ctx, "last_group_value_sum" if last else "value_sum")


def check_rows(rows: object, ctx: Ctx) -> str:
    if rows != ctx.arts["parquet"].meta["rows"]:
        raise Wrong(f"{rows} rows in the footer")
    return f"{rows} rows"


def footer_polars(ctx: Ctx) -> Timed:
    rows, seconds = polars_query(ctx, "rows")
    return Timed(check_rows(rows, ctx), seconds)


def footer_duckdb(ctx: Ctx) -> str:
    con = duckdb_connection()
    url = parquet_query(ctx)[0]
    (rows,) = con.execute(f"SELECT count(*) FROM read_parquet('{url}')").fetchone()  # type: ignore[attr-defined]
    return check_rows(rows, ctx)


def footer_pyarrow_fs(ctx: Ctx, protocol: str) -> str:
    import fsspec  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    url = parquet_query(ctx)[0]
    fs = fsspec.filesystem(protocol, skip_instance_cache=True)
    path = url if protocol == "http" else "rs+" + url
    return check_rows(pq.read_metadata(path, filesystem=fs).num_rows, ctx)


def footer_pyarrow_open(ctx: Ctx) -> str:
    import pyarrow.parquet as pq  # noqa: PLC0415

    with rs_file(parquet_query(ctx)[0], ctx.client) as f:
        return check_rows(pq.read_metadata(f).num_rows, ctx)


def footer_rs_parquet(ctx: Ctx) -> str:
    import range_streams.parquet as rsp  # noqa: PLC0415

    client = None if RS_OWN_CLIENT else ctx.client
    return check_rows(rsp.read_metadata(parquet_query(ctx)[0], client=client).num_rows, ctx)


def parquet_impls(last: bool) -> list[tuple[str, Impl]]:
    def needs(impl: Callable[[Ctx], str | Timed]) -> Impl:
        def run(ctx: Ctx) -> str | Timed:
            if "parquet" not in ctx.arts:
                raise ImportError("no parquet data (datagen needs pyarrow and numpy)")
            return impl(ctx)

        return run

    return [
        ("polars scan_parquet(url), fresh process", needs(lambda c: pq_polars(c, last))),
        ("DuckDB httpfs read_parquet(url)", needs(lambda c: pq_duckdb(c, last))),
        ("pyarrow + fsspec http", needs(lambda c: pq_pyarrow_fs(c, last, "http"))),
        ("rs: pyarrow + fsspec rs+http", needs(lambda c: pq_pyarrow_fs(c, last, "rs+http"))),
        ("rs: pyarrow + open()", needs(lambda c: pq_pyarrow_open(c, last))),
        ("rs: range_streams.parquet.read_table", needs(lambda c: pq_rs_parquet(c, last))),
    ]


def footer_impls() -> list[tuple[str, Impl]]:
    def needs(impl: Callable[[Ctx], str | Timed]) -> Impl:
        def run(ctx: Ctx) -> str | Timed:
            if "parquet" not in ctx.arts:
                raise ImportError("no parquet data (datagen needs pyarrow and numpy)")
            return impl(ctx)

        return run

    return [
        ("polars count of rows, fresh process", needs(footer_polars)),
        ("DuckDB httpfs count(*)", needs(footer_duckdb)),
        ("pyarrow + fsspec http", needs(lambda c: footer_pyarrow_fs(c, "http"))),
        ("rs: pyarrow + fsspec rs+http", needs(lambda c: footer_pyarrow_fs(c, "rs+http"))),
        ("rs: pyarrow + open()", needs(footer_pyarrow_open)),
        ("rs: range_streams.parquet.read_metadata", needs(footer_rs_parquet)),
    ]


def run_upstream(ctx: Ctx, job: dict[str, object]) -> subprocess.CompletedProcess[str]:
    assert ctx.upstream_python is not None
    return subprocess.run(
        [str(ctx.upstream_python), str(UPSTREAM_RUNNER)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=False,
        timeout=ctx.upstream_timeout,
    )


def upstream(task: str) -> Impl:
    """range-streams 1.4.1 (previous release) run in benchmarks/.venv-upstream.

    The time reported is the one measured inside that interpreter around the task (its
    start-up and imports excluded); requests and bytes come from the access log as usual.
    """

    def run(ctx: Ctx) -> Timed:
        if ctx.upstream_python is None:
            raise NotImplementedError(ctx.upstream_skip)
        args = {
            "task": task,
            "urls": {k: ctx.url(k) for k in ctx.arts},
            "meta": {k: a.meta for k, a in ctx.arts.items()},
            "sizes": {k: a.size for k, a in ctx.arts.items()},
            "offsets": ctx.offsets,
            "read_size": RANDOM_READ_SIZE,
            "seq_read": SEQ_READ,
        }
        try:
            proc = run_upstream(ctx, args)
        except subprocess.TimeoutExpired:
            raise GaveUp(f"still running after {ctx.upstream_timeout:.0f} s") from None
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        if "unavailable" in res:
            raise NotImplementedError(res["unavailable"])
        result = res["result"]
        if task == "zip_list":
            check_count(result, ctx.arts["many_zip"].meta["entries"])
        elif task == "zip_extract":
            if result != ctx.arts["big_zip"].meta["member_sha256"]:
                raise Wrong("member content differs")
        elif task == "random":
            want = hashlib.sha256()
            for off in ctx.offsets:
                want.update(datagen.expected_big_file_bytes(ctx.block, off, off + RANDOM_READ_SIZE))
            if result != want.hexdigest():
                raise Wrong("random reads returned wrong bytes")
        elif task == "sequential":
            if result != ctx.arts["big_file"].size:
                raise Wrong(f"read {result} bytes")
        elif task == "tar_list" and result != len(ctx.tar_names):
            raise Wrong(f"{result} names")
        return Timed(str(res.get("detail", "")), float(res["seconds"]))

    return run


@dataclass
class Task:
    name: str
    impls: list[tuple[str, Impl]]
    reference: str  # implementation the ratio column divides by


TASKS = [
    Task(
        "list zip (many entries)",
        [
            ("httpx: naive ranges", zip_list_naive),
            ("httpx: whole file", zip_list_whole),
            ("rs: zipfile.ZipFile(open())", zip_list_rs_zipfile),
            ("rs: codecs.ZipReader", zip_list_rs_codec),
            ("rs 1.4.1: ZipStream", upstream("zip_list")),
        ],
        "httpx: naive ranges",
    ),
    Task(
        "extract 5 MiB member of big zip",
        [
            ("httpx: naive ranges", zip_extract_naive),
            ("httpx: whole file", zip_extract_whole),
            ("rs: zipfile.ZipFile(open())", zip_extract_rs_zipfile),
            ("rs: codecs.ZipReader", zip_extract_rs_codec),
            ("rs 1.4.1: ZipStream", upstream("zip_extract")),
        ],
        "httpx: naive ranges",
    ),
    Task(
        f"{RANDOM_READS} random 4 KiB reads of big file",
        [
            ("httpx: naive ranges", random_naive),
            ("rs: seek+read", random_rs_seek),
            ("rs: seek+read (RangeFile, raw)", random_rs_raw),
            ("rs: read_ranges", random_rs_read_ranges),
            ("rs 1.4.1: RangeStream", upstream("random")),
        ],
        "httpx: naive ranges",
    ),
    Task(
        "read big file sequentially (1 MiB reads)",
        [
            ("httpx: stream whole file", seq_httpx_stream),
            ("curl -s -o /dev/null", seq_curl),
            ("rs: read(1 MiB) loop", seq_rs_read),
            ("rs: readinto(1 MiB buffer) loop", seq_rs_readinto),
            ("rs 1.4.1: RangeStream", upstream("sequential")),
        ],
        "httpx: stream whole file",
    ),
    Task(
        f"fetch_many: {MANY_URLS} URLs x 1 range, concurrency {MANY_CONCURRENCY}",
        [
            ("httpx: asyncio.gather, semaphore 20", many_httpx_gather),
            ("raw asyncio sockets (the rig's floor)", many_raw_sockets),
            ("rs: fetch_many", many_rs_fetch_many),
        ],
        "httpx: asyncio.gather, semaphore 20",
    ),
    Task(
        "list tar (200 members)",
        [
            ("httpx: naive ranges", tar_naive),
            ("httpx: whole file", tar_whole),
            ("rs: tarfile.open(fileobj=open())", tar_rs_tarfile),
            ("rs: codecs.TarReader", tar_rs_codec),
            ("rs 1.4.1: TarStream", upstream("tar_list")),
        ],
        "httpx: naive ranges",
    ),
    Task(
        "list tar of ~1 MiB members",
        [
            ("httpx: naive ranges", big_tar_naive),
            ("rs: tarfile.open(fileobj=open(), mode='r:')", big_tar_rs_tarfile),
            ("rs: tarfile.open(fileobj=open())", big_tar_rs_tarfile_auto),
            ("rs: codecs.TarReader", big_tar_rs_codec),
        ],
        "httpx: naive ranges",
    ),
    Task(
        "PNG chunk table (16 MiB IDAT chunks)",
        [
            ("httpx: naive ranges", png_naive),
            ("rs: codecs.PngReader(open()).chunk_table", png_rs_codec),
        ],
        "httpx: naive ranges",
    ),
    Task(
        "parquet: sum(value), one column of 12 row groups",
        parquet_impls(False),
        "polars scan_parquet(url), fresh process",
    ),
    Task(
        "parquet: sum(value) where id in the last row group",
        parquet_impls(True),
        "polars scan_parquet(url), fresh process",
    ),
    Task(
        "parquet: the footer alone (row count)",
        footer_impls(),
        "polars count of rows, fresh process",
    ),
]


# ---------------------------------------------------------------------------------------------
# Running and reporting


@dataclass
class Row:
    task: str
    impl: str
    status: str  # "ok" or "unavailable: ..." / "error: ..." / "wrong: ..."
    seconds: float | None = None
    requests: int | None = None
    body_bytes: int | None = None
    detail: str = ""
    ratio: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def run_one(task: Task, name: str, impl: Impl, ctx: Ctx, server: Server) -> Row:
    mark = server.access_log.mark()
    # A fresh client (so fresh connections) per row, created outside the timed region:
    # building its SSL context costs ~25 ms that no task should be charged for.
    ctx.row_client = new_client()
    detail: str | Timed | Verify = ""
    t0 = time.perf_counter()
    try:
        detail = impl(ctx)
    except UNAVAILABLE as exc:  # the API under test does not exist (yet)
        return Row(task.name, name, f"unavailable: {type(exc).__name__}: {exc}")
    except Wrong as exc:
        status = f"wrong: {exc}"
    except GaveUp as exc:
        status = f"gave up: {exc}"
    except Exception as exc:  # report it and go on with the other rows
        status = f"error: {type(exc).__name__}: {exc}"
    else:
        status = "ok"
    finally:
        seconds = time.perf_counter() - t0
        ctx.client.close()
    if isinstance(detail, Timed):
        detail, seconds = detail.detail, detail.seconds
    if isinstance(detail, Verify):
        try:
            detail = detail.check() if status == "ok" else ""
        except Wrong as exc:
            detail, status = "", f"wrong: {exc}"
    server.access_log.settle(quiet=0.05)
    entries = server.access_log.since(mark)
    return Row(
        task.name,
        name,
        status,
        seconds,
        len(entries),
        sum(e.body_bytes for e in entries),
        detail,
    )


def run_repeated(task: Task, name: str, impl: Impl, ctx: Ctx, server: Server, repeat: int) -> Row:
    """The row with the median time of `repeat` runs (the first failure, if any)."""
    rows = []
    for _ in range(repeat):
        row = run_one(task, name, impl, ctx, server)
        if row.status != "ok":
            return row
        rows.append(row)
    rows.sort(key=lambda r: r.seconds or 0.0)
    return rows[len(rows) // 2]


def warm_imports(tasks: list[Task]) -> None:
    """Import what the parquet rows use before any clock starts (pyarrow, DuckDB and
    fsspec cost 0.1-0.5 s to import: the first row of each would pay it)."""
    if not any(t.name.startswith("parquet") for t in tasks):
        return
    for name in (
        "pyarrow.parquet",
        "pyarrow.dataset",
        "pyarrow.compute",
        "duckdb",
        "fsspec",
        "fsspec.implementations.http",
        "range_streams.parquet",
        "range_streams.fsspec",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n### {title}\n")
    print("| task | implementation | time (s) | requests | bytes sent | vs baseline |")
    print("|---|---|---:|---:|---:|---:|")
    last_task = None
    for r in rows:
        task = r.task if r.task != last_task else ""
        last_task = r.task
        if r.status == "ok":
            cells = [f"{r.seconds:.3f}", str(r.requests), human_bytes(r.body_bytes), r.ratio]
        else:
            note = r.status.replace("|", "/")
            if len(note) > 110:
                note = note[:107] + "..."
            cells = [note, "", "", ""]
            if r.seconds is not None and not r.status.startswith("unavailable"):
                cells[1:3] = [str(r.requests), human_bytes(r.body_bytes)]
        print(f"| {task} | {r.impl} | " + " | ".join(cells) + " |")
    sys.stdout.flush()


def add_ratios(rows: list[Row]) -> None:
    for task in TASKS:
        ref = next((r for r in rows if r.task == task.name and r.impl == task.reference), None)
        for r in rows:
            if r.task != task.name or r.status != "ok" or r.seconds is None:
                continue
            if ref is None or ref.status != "ok" or not ref.seconds:
                r.ratio = "-"
            else:
                r.ratio = f"{r.seconds / ref.seconds:.2f}x"


@dataclass
class Proxy:
    base: str  # the URL clients use
    label: str  # which instrument, for the table titles
    log: list[str] = field(default_factory=list)  # its stderr, filled in when it has exited


@contextlib.contextmanager
def latency_proxy(
    upstream_port: int, rtt_ms: float, command: list[str] | None = None
) -> Iterator[Proxy]:
    """The latency proxy (`command`, default: _infra.latency_proxy_command()) in front of
    127.0.0.1:upstream_port. Its stderr goes to a file, not a pipe nobody reads while it
    runs, and ends up in Proxy.log once it has been stopped (the C proxy's last line is
    its own lateness)."""
    argv = command if command is not None else latency_proxy_command()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [*argv, "--upstream", f"127.0.0.1:{upstream_port}", "--rtt-ms", str(rtt_ms)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        proxy = Proxy("", proxy_label(argv))
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().split()
            started = len(line) == 2 and line[0] == "LISTENING"
            if started:
                proxy.base = f"http://127.0.0.1:{line[1]}"
                yield proxy
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            assert proc.stdout is not None
            proc.stdout.close()
            err.seek(0)
            proxy.log[:] = [ln.strip() for ln in err if ln.strip()]
    if not started:
        raise RuntimeError(f"latency proxy did not start: {line} {' / '.join(proxy.log)}")


def measure_rtt(base: str, name: str, samples: int = 21) -> float:
    """The median time of a 1-byte range request on a kept-alive raw httpx connection:
    what one round trip through the proxy really costs, to read the table against."""
    times = []
    with httpx.Client() as client:
        client.get(f"{base}/{name}", headers={"Range": "bytes=0-0"})  # connect first
        for _ in range(samples):
            start = time.perf_counter()
            client.get(f"{base}/{name}", headers={"Range": "bytes=0-0"})
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def parse_rtts(text: str) -> list[str]:
    out = []
    for raw in text.split(","):
        item = raw.strip()
        if item != "direct":
            float(item)  # validates
        out.append(item)
    return out


def versions(server: Server) -> str:
    parts = [f"Python {platform.python_version()}", f"httpx {httpx.__version__}"]
    try:
        parts.append(f"range-streams {importlib.metadata.version('range-streams')}")
    except importlib.metadata.PackageNotFoundError:
        parts.append("range-streams not installed")
    if server.kind == "nginx":
        nginx = find_nginx()
        if nginx:
            out = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
            parts.append(out.stderr.strip().replace("nginx version: ", ""))
    else:
        parts.append(server.kind)
    git = subprocess.run(
        ["git", "-C", str(HERE), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    if git.returncode == 0:
        parts.append(f"repo {git.stdout.strip()}")
    return ", ".join(parts)


def main() -> int:
    exit_on_sigterm()
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--rtt-ms",
        default="direct,0,20",
        help="comma-separated round-trip times through the latency proxy; "
        "'direct' = straight to the server, no proxy (default: direct,0,20)",
    )
    ap.add_argument("--quick", action="store_true", help="small data: 64 MiB file, 2k-entry zip")
    ap.add_argument("--server", choices=["auto", "nginx", "uvicorn"], default="auto")
    ap.add_argument(
        "--rs-client",
        choices=["given", "own"],
        default="own",
        help="own: range_streams.open(url), the library's own client and transport"
        " (default); given: range_streams.open(url, client=httpx.Client()), httpx's"
        " transport",
    )
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs per row; the median-time run is shown"
    )
    ap.add_argument("--only", default="", help="run only tasks whose name contains this")
    ap.add_argument(
        "--upstream",
        choices=["auto", "yes", "no"],
        default="auto",
        help="rows for range-streams 1.4.1 from benchmarks/.venv-upstream "
        "(auto: when that venv exists and not --quick)",
    )
    ap.add_argument(
        "--upstream-timeout",
        type=float,
        default=30.0,
        help="seconds before a range-streams 1.4.1 row gives up (default 30)",
    )
    ap.add_argument(
        "--proxy",
        choices=["c", "python"],
        default="c",
        help="the latency proxy: c = benchmarks/delay_proxy.c, compiled on first use (default;"
        " falls back to python without a C compiler), python = benchmarks/latency_proxy.py;"
        " the LATENCY_PROXY environment variable overrides both",
    )
    ap.add_argument("--json", type=Path, help="also write all rows to this JSON file")
    args = ap.parse_args()
    rtts = parse_rtts(args.rtt_ms)
    global RS_OWN_CLIENT  # noqa: PLW0603 (one switch for every range-streams row)
    RS_OWN_CLIENT = args.rs_client == "own"

    t_gen = time.perf_counter()
    arts = datagen.generate(args.quick)
    data_dir = datagen.DATA_DIR
    print(
        f"data ({'quick' if args.quick else 'full'}) ready in {time.perf_counter() - t_gen:.1f}s:"
    )
    for key, art in arts.items():
        print(f"  {key:9} {art.name}  {human_bytes(art.size)}")

    block = datagen._block(int(arts["big_file"].meta["seed"]))  # type: ignore[arg-type]
    with tarfile.open(data_dir / arts["tar"].name) as tf:
        tar_names = tf.getnames()
    with tarfile.open(data_dir / arts["big_tar"].name) as tf:
        big_tar_names = tf.getnames()
    rnd = random.Random(7)
    offsets = [
        rnd.randrange(0, arts["big_file"].size - RANDOM_READ_SIZE) for _ in range(RANDOM_READS)
    ]
    venv_python = UPSTREAM_VENV / "bin" / "python"
    skip_upstream = args.upstream == "no" or (args.upstream == "auto" and args.quick)
    upstream_python = None if skip_upstream or not venv_python.exists() else venv_python
    upstream_skip = (
        "not run: --quick or --upstream no"
        if skip_upstream
        else "no benchmarks/.venv-upstream (see README)"
    )
    tasks = [t for t in TASKS if args.only.lower() in t.name.lower()]
    warm_imports(tasks)

    all_rows: dict[str, list[Row]] = {}
    baseline_failed = False
    with (
        tempfile.TemporaryDirectory(prefix="rs-bench-") as tmp,
        local_server(data_dir, Path(tmp) / "server", args.server) as server,
    ):
        print(f"server: {server.kind} on {server.base_url}; {versions(server)}")
        proxy_argv = None
        if any(rtt != "direct" for rtt in rtts):
            proxy_argv = latency_proxy_command(args.proxy)
            print(f"latency proxy: {proxy_label(proxy_argv)}: {' '.join(proxy_argv)}")
        for rtt in rtts:
            stack = contextlib.ExitStack()
            proxy = None
            with stack:
                if rtt == "direct":
                    base, title = server.base_url, "direct to the server (no proxy)"
                else:
                    proxy = stack.enter_context(latency_proxy(server.port, float(rtt), proxy_argv))
                    base = proxy.base
                    measured = measure_rtt(base, arts["big_file"].name)
                    title = (
                        f"through the latency proxy {proxy.label}, RTT {rtt} ms"
                        f" (measured: {measured * 1e3:.1f} ms per small request"
                        " on a warm connection, client and server included)"
                    )
                ctx = Ctx(
                    base,
                    arts,
                    data_dir,
                    block,
                    tar_names,
                    offsets,
                    big_tar_names,
                    upstream_python,
                    args.upstream_timeout,
                    upstream_skip,
                )
                rows = []
                for task in tasks:
                    for name, impl in task.impls:
                        row = run_repeated(task, name, impl, ctx, server, args.repeat)
                        rows.append(row)
                        if not name.startswith("rs") and row.status.startswith(("error", "wrong")):
                            baseline_failed = True
                add_ratios(rows)
                print_table(title, rows)
                all_rows[rtt] = rows
            if proxy is not None:  # stopped now: its stderr is complete
                print()
                for line in proxy.log or [f"({proxy.label} printed nothing on stderr)"]:
                    print(f"    proxy stderr: {line}")
                sys.stdout.flush()
    if args.json:
        args.json.write_text(
            json.dumps({k: [r.__dict__ for r in v] for k, v in all_rows.items()}, indent=1)
        )
    return 1 if baseline_failed else 0


if __name__ == "__main__":
    sys.exit(main())
