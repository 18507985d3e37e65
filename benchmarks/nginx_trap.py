"""Reproduce the nginx "44 ms range response" trap and measure client-side remedies.

    python benchmarks/nginx_trap.py [--repeat 30] [--trace]

Starts nginx (benchmarks/nginx/nginx.conf.template: Debian's `sendfile on; tcp_nopush on;`)
in the foreground from a temporary directory on 127.0.0.1, serves an 8 MiB seeded file, and
times single range requests of 16 KiB .. 1 MiB at seeded random (not page-aligned) offsets,
each client on one warmed-up keep-alive connection, median of --repeat requests per cell.

Why it happens and what to do: benchmarks/README.md ("The nginx 40 ms trap").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpcore
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _infra import exit_on_sigterm, find_nginx, nginx_server

from range_streams._net.clients import (
    TCP_QUICKACK,
    make_async_transport,
    make_transport,
)
from range_streams._net.clients import quickack as quickack_response_hook

KIB = 1024
SIZES_KIB = [16, 32, 48, 64, 80, 96, 100, 128, 256, 1024]
FILE_SIZE = 8 * 1024 * KIB
WARMUP = 5  # Linux enters delayed-ACK "ping-pong" mode after ~3 quick exchanges

Fetch = Callable[[int, int], int]  # (start, stop) -> body bytes received


def make_file(path: Path) -> None:
    rnd = random.Random(20240601)
    with path.open("wb") as fh:
        for _ in range(FILE_SIZE // (1024 * KIB)):
            fh.write(rnd.randbytes(1024 * KIB))


def offsets(size: int, n: int, aligned: bool, seed: int) -> list[int]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        off = rnd.randrange(0, FILE_SIZE - size)
        if aligned:
            off -= off % 4096
        elif off % 4096 == 0:
            off += 1
        out.append(off)
    return out


# ---------------------------------------------------------------------------------------------
# Clients. Each is a context manager yielding fetch(start, stop) on one keep-alive connection.


@contextlib.contextmanager
def httpx_client(url: str, **client_kwargs: object) -> Iterator[Fetch]:
    with httpx.Client(**client_kwargs) as client:  # type: ignore[arg-type]

        def fetch(start: int, stop: int) -> int:
            r = client.get(url, headers={"Range": f"bytes={start}-{stop - 1}"})
            r.raise_for_status()
            return len(r.content)

        yield fetch


@contextlib.contextmanager
def httpx_iter_raw(url: str, chunk: int) -> Iterator[Fetch]:
    with httpx.Client() as client:

        def fetch(start: int, stop: int) -> int:
            with client.stream("GET", url, headers={"Range": f"bytes={start}-{stop - 1}"}) as r:
                return sum(len(b) for b in r.iter_raw(chunk))

        yield fetch


@contextlib.contextmanager
def httpx_read_size(url: str, read_bytes: int) -> Iterator[Fetch]:
    """httpcore reads the socket in READ_NUM_BYTES (64 KiB) pieces; try other sizes."""
    conn_cls = httpcore._sync.http11.HTTP11Connection
    saved = conn_cls.READ_NUM_BYTES
    conn_cls.READ_NUM_BYTES = read_bytes
    try:
        with httpx_client(url) as fetch:
            yield fetch
    finally:
        conn_cls.READ_NUM_BYTES = saved


@contextlib.contextmanager
def rs_file(url: str) -> Iterator[Fetch]:
    """The file object with its default read strategy: a random read of n bytes is one
    request of n bytes (the span cache off, so no read is served from an earlier one)."""
    import range_streams  # noqa: PLC0415

    with range_streams.RangeFile(url, options=range_streams.FileOptions(cache_bytes=1)) as f:

        def fetch(start: int, stop: int) -> int:
            f.seek(start)
            return len(f.read(stop - start))

        yield fetch


def _recv_response(sock: socket.socket, recv_size: int, quickack: bool) -> int:
    buf = b""
    while b"\r\n\r\n" not in buf:
        if quickack:
            sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK or 12, 1)
        chunk = sock.recv(recv_size)
        if not chunk:
            raise ConnectionError("server closed")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    got = len(body)
    while got < length:
        if quickack:
            sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK or 12, 1)
        chunk = sock.recv(recv_size)
        if not chunk:
            raise ConnectionError("server closed")
        got += len(chunk)
    return got


@contextlib.contextmanager
def raw_socket(url: str, quickack: bool) -> Iterator[Fetch]:
    u = httpx.URL(url)
    sock = socket.create_connection((u.host, u.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:

        def fetch(start: int, stop: int) -> int:
            req = (
                f"GET {u.raw_path.decode()} HTTP/1.1\r\nHost: {u.host}:{u.port}\r\n"
                f"Range: bytes={start}-{stop - 1}\r\n\r\n"
            )
            sock.sendall(req.encode())
            return _recv_response(sock, 64 * KIB, quickack)

        yield fetch
    finally:
        sock.close()


def curl_times(url: str, spans: list[tuple[int, int]], keepalive: bool) -> list[float]:
    """time_total (ms) per transfer as curl reports it (excludes process start-up)."""
    curl = shutil.which("curl")
    assert curl
    if not keepalive:
        out = []
        for start, stop in spans:
            res = subprocess.run(
                [
                    curl,
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{time_total}",
                    "-r",
                    f"{start}-{stop - 1}",
                    url,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            out.append(float(res.stdout) * 1000)
        return out
    args = [curl]
    for i, (start, stop) in enumerate(spans):
        if i:
            args.append("--next")
        args += [
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{time_total}\\n",
            "-r",
            f"{start}-{stop - 1}",
            url,
        ]
    res = subprocess.run(args, check=True, capture_output=True, text=True)
    return [float(x) * 1000 for x in res.stdout.split()]


# ---------------------------------------------------------------------------------------------


STALL_MS = 20.0  # a request this slow waited for a delayed ACK


Cell = tuple[float, int, int]  # median ms, stalled requests, requests


def summarize(times: list[float]) -> Cell:
    return statistics.median(times), sum(t > STALL_MS for t in times), len(times)


def spans_for(size: int, repeat: int, aligned: bool) -> list[tuple[int, int]]:
    return [(o, o + size) for o in offsets(size, WARMUP + repeat, aligned, seed=size)]


def measure(
    make: Callable[[], contextlib.AbstractContextManager[Fetch]],
    size: int,
    repeat: int,
    aligned: bool = False,
) -> Cell:
    times = []
    with make() as fetch:
        for i, (start, stop) in enumerate(spans_for(size, repeat, aligned)):
            t0 = time.perf_counter()
            got = fetch(start, stop)
            dt = (time.perf_counter() - t0) * 1000
            if got != stop - start:
                raise RuntimeError(f"short body: {got} != {stop - start}")
            if i >= WARMUP:
                times.append(dt)
    return summarize(times)


def measure_async(url: str, size: int, repeat: int, remedy: bool) -> Cell:
    async def run() -> list[float]:
        transport = make_async_transport() if remedy else httpx.AsyncHTTPTransport()
        times = []
        async with httpx.AsyncClient(transport=transport) as client:
            for i, (start, stop) in enumerate(spans_for(size, repeat, False)):
                t0 = time.perf_counter()
                r = await client.get(url, headers={"Range": f"bytes={start}-{stop - 1}"})
                dt = (time.perf_counter() - t0) * 1000
                if len(r.content) != stop - start:
                    raise RuntimeError("short body")
                if i >= WARMUP:
                    times.append(dt)
        return times

    return summarize(asyncio.run(run()))


def measure_curl(url: str, size: int, repeat: int, keepalive: bool) -> Cell:
    return summarize(curl_times(url, spans_for(size, repeat, False), keepalive)[WARMUP:])


def fmt(cell: Cell) -> str:
    ms, stalls, n = cell
    text = f"{ms:.2f}" if ms < 10 else f"**{ms:.1f}**"
    return f"{text} ({stalls}/{n})" if stalls else text


def print_table(title: str, columns: list[str], rows: dict[int, list[Cell]]) -> None:
    print(f"\n### {title}\n")
    print(f"(median ms; (k/n) = k of n requests took over {STALL_MS:.0f} ms)\n")
    print("| size | " + " | ".join(columns) + " |")
    print("|---:|" + "---:|" * len(columns))
    for size, vals in rows.items():
        label = f"{size // KIB}K" if size < 1024 * KIB else f"{size // (1024 * KIB)}M"
        print(f"| {label} | " + " | ".join(fmt(v) for v in vals) + " |")
    sys.stdout.flush()


def trace(url: str, port: int, size: int) -> None:
    """Packet trace of requests on a warm keep-alive connection (needs tcpdump and root)."""
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        print("\n(--trace: tcpdump not installed; apt-get install tcpdump)")
        return
    proc = subprocess.Popen(
        [tcpdump, "-i", "lo", "-nn", "-ttt", "-l", f"tcp port {port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    time.sleep(1.0)
    spans = [(o, o + size) for o in offsets(size, 6, aligned=False, seed=7)]
    ms = []
    with httpx_client(url) as fetch:
        for start, stop in spans:  # back to back: the connection enters ping-pong mode
            t0 = time.perf_counter()
            fetch(start, stop)
            ms.append(f"{(time.perf_counter() - t0) * 1000:.1f}")
    time.sleep(0.3)
    proc.terminate()
    out, _ = proc.communicate(timeout=5)
    print(f"\n### Packet trace: six {size // KIB} KiB ranges on one new connection\n")
    print(f"request times (ms): {', '.join(ms)}; server port {port}\n")
    print("```")
    for line in out.splitlines():
        print(line.replace("127.0.0.1.", "").replace("options [nop,nop,", "["))
    print("```")


def main() -> int:
    exit_on_sigterm()
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=30, help="timed requests per cell (median)")
    ap.add_argument("--trace", action="store_true", help="also print a tcpdump of the stall")
    ap.add_argument("--main-only", action="store_true", help="only the main table")
    args = ap.parse_args()

    if find_nginx() is None:
        print("nginx is not installed: apt-get update && apt-get install nginx", file=sys.stderr)
        return 2
    if TCP_QUICKACK is None:
        print("note: this platform has no TCP_QUICKACK; remedy columns equal the default")

    with tempfile.TemporaryDirectory(prefix="nginx-trap-") as tmp:
        work = Path(tmp)
        root = work / "www"
        root.mkdir()
        make_file(root / "data.bin")
        with nginx_server(root, work / "nginx") as server:
            run(server.base_url + "/data.bin", args.repeat, args.main_only)
            if args.trace:
                trace(server.base_url + "/data.bin", server.port, 64 * KIB)
            server.access_log.settle()
            entries = server.access_log.since(0)
            last = entries[-1]
            print(
                f"\naccess log: {len(entries)} requests, statuses "
                f"{sorted({e.status for e in entries})}, "
                f"{sum(e.body_bytes for e in entries)} body bytes; last line: "
                f"{last.request} {last.status} {last.body_bytes} {last.range}"
            )
    return 0


def run(url: str, rep: int, main_only: bool) -> None:
    sizes = [s * KIB for s in SIZES_KIB]
    quick_opt = [(socket.IPPROTO_TCP, TCP_QUICKACK, 1)] if TCP_QUICKACK else []
    nodelay_opt = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

    def default() -> contextlib.AbstractContextManager[Fetch]:
        return httpx_client(url)

    def remedy() -> contextlib.AbstractContextManager[Fetch]:
        return httpx_client(url, transport=make_transport())

    print(f"nginx at {url}; {rep} timed requests per cell after {WARMUP} warm-up requests")
    print_table(
        "Range request latency: httpx default vs httpx + remedy vs curl",
        [
            "httpx default",
            "httpx + remedy",
            "rs file: seek+read",
            "curl (new conn each)",
            "curl (keep-alive)",
        ],
        {
            size: [
                measure(default, size, rep),
                measure(remedy, size, rep),
                measure(lambda: rs_file(url), size, rep),
                measure_curl(url, size, rep, keepalive=False),
                measure_curl(url, size, rep, keepalive=True),
            ]
            for size in sizes
        },
    )
    if main_only:
        return

    cand: list[tuple[str, Callable[[], contextlib.AbstractContextManager[Fetch]]]] = [
        ("default", default),
        (
            "TCP_NODELAY opt",
            lambda: httpx_client(url, transport=httpx.HTTPTransport(socket_options=nodelay_opt)),
        ),
        (
            "TCP_QUICKACK opt (connect)",
            lambda: httpx_client(url, transport=httpx.HTTPTransport(socket_options=quick_opt)),
        ),
        ("read 16K", lambda: httpx_read_size(url, 16 * KIB)),
        ("read 1M", lambda: httpx_read_size(url, 1024 * KIB)),
        ("iter_raw 8K", lambda: httpx_iter_raw(url, 8 * KIB)),
        (
            "QUICKACK per response",
            lambda: httpx_client(url, event_hooks={"response": [quickack_response_hook]}),
        ),
        ("QUICKACK per read", remedy),
        ("raw socket", lambda: raw_socket(url, quickack=False)),
        ("raw socket + QUICKACK", lambda: raw_socket(url, quickack=True)),
    ]
    print_table(
        "Candidate client-side remedies (httpx sync unless noted)",
        [name for name, _ in cand] + ["async default", "async + QUICKACK per read"],
        {
            size: [measure(make, size, rep) for _, make in cand]
            + [measure_async(url, size, rep, False), measure_async(url, size, rep, True)]
            for size in sizes
        },
    )
    print_table(
        "httpx default: 4 KiB-aligned vs unaligned range starts",
        ["aligned", "unaligned"],
        {
            size: [measure(default, size, rep, aligned=True), measure(default, size, rep)]
            for size in (32 * KIB, 64 * KIB, 96 * KIB, 128 * KIB)
        },
    )
    probe = (56, 60, 62, 63, 66, 70, 72, 90, 110, 120, 140, 160, 192, 200, 384, 512)
    print_table(
        "More sizes",
        ["httpx default", "httpx + remedy"],
        {s * KIB: [measure(default, s * KIB, rep), measure(remedy, s * KIB, rep)] for s in probe},
    )


if __name__ == "__main__":
    sys.exit(main())
