"""CPU cost of range-streams per range request, over a raw httpx request.

    python benchmarks/cpu_overhead.py [--requests 2000]

Both sides talk to the same in-process httpx.MockTransport (no network), so the
difference is the library's own work: planning, headers, checks, the flow machinery.
"""

from __future__ import annotations

import argparse
import random
import time

import httpx

import range_streams as rs

SIZE = 1 << 20
DATA = random.Random(7).randbytes(SIZE)


def handler(request: httpx.Request) -> httpx.Response:
    first, last = request.headers["range"].removeprefix("bytes=").split("-")
    start, stop = int(first), int(last) + 1
    headers = {"content-range": f"bytes {start}-{stop - 1}/{SIZE}", "etag": '"v1"'}
    return httpx.Response(206, headers=headers, content=DATA[start:stop])


def per_request(action: object, n: int) -> float:
    began = time.perf_counter()
    for i in range(n):
        action(i)  # type: ignore[operator]
    return (time.perf_counter() - began) / n * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    n = parser.parse_args().requests
    client = httpx.Client(transport=httpx.MockTransport(handler))
    url = "http://bench.test/f.bin"

    def raw(i: int) -> None:
        headers = {"range": f"bytes={i * 400}-{i * 400 + 1023}", "accept-encoding": "identity"}
        with client.stream("GET", url, headers=headers) as response:
            response.read()

    stream = rs.RangeStream(url, client=client)

    def add_read(i: int) -> None:
        stream.add((i * 400, i * 400 + 1024))
        stream.read()

    f = rs.open(url, client=client, strategy=rs.ExactReads())

    def seek_read(i: int) -> None:
        f.seek((i * 7919 * 13) % (SIZE - 2048))
        f.read(1024)

    base = per_request(raw, n)
    print(f"raw httpx request:       {base:.3f} ms")
    for name, action in (("RangeStream.add+read", add_read), ("file seek+read", seek_read)):
        ms = per_request(action, n)
        print(f"{name + ':':24} {ms:.3f} ms  (+{ms - base:.3f} ms over raw httpx)")


if __name__ == "__main__":
    main()
