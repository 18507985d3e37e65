"""Python bytecodes the library executes per operation: a CPU measure that a busy machine
does not move (wall-clock figures here are noisy), for comparing two trees.

    python benchmarks/bytecodes.py                      # the range_streams on sys.path
    PYTHONPATH=/path/to/other/src python benchmarks/bytecodes.py

Counts, over an in-process ``httpx.MockTransport`` (no network):

- ``RangeStream.add`` + ``read`` of 1 KiB ranges that overlap the previous one (as
  ``cpu_overhead.py`` does): every opcode, and those in range_streams' own code;
- ``RangeStream.add`` of a disjoint range with n ranges registered, for n = 1,000 and
  10,000: the registry is a sorted list searched with ``bisect``, so this should not grow;
- ``ZipReader`` listing a 500-entry zip from memory, per entry.
"""

from __future__ import annotations

import io
import random
import sys
import zipfile
from collections.abc import Callable
from types import FrameType
from typing import Any

import httpx

import range_streams as rs
from range_streams._core.source import BytesSource
from range_streams.codecs import ZipReader

SIZE = 1 << 20
DATA = random.Random(7).randbytes(SIZE)
URL = "http://bench.test/f.bin"


def handler(request: httpx.Request) -> httpx.Response:
    first, last = request.headers["range"].removeprefix("bytes=").split("-")
    start, stop = int(first), int(last) + 1
    headers = {"content-range": f"bytes {start}-{stop - 1}/{SIZE}", "etag": '"v1"'}
    return httpx.Response(206, headers=headers, content=DATA[start:stop])


def count(action: Callable[[], Any]) -> tuple[int, int]:
    """(all opcodes, opcodes in range_streams) executed by ``action()``."""
    total = own = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal total, own
        frame.f_trace_opcodes = True
        if event == "opcode":
            total += 1
            own += "range_streams" in frame.f_code.co_filename
        return tracer

    sys.settrace(tracer)
    try:
        action()
    finally:
        sys.settrace(None)
    return total, own


def main() -> None:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    stream = rs.RangeStream(URL, client=client)
    for i in range(20):  # warm up: the length is learned, the connection made
        stream.add((i * 400, i * 400 + 1024))
        stream.read()

    def add_read() -> None:
        for i in range(20, 70):
            stream.add((i * 400, i * 400 + 1024))
            stream.read()

    total, own = count(add_read)
    print(f"add+read (overlapping):   {total / 50:8.0f} opcodes ({own / 50:.0f} in range_streams)")

    for n in (1_000, 10_000):
        many = rs.RangeStream(URL, client=client)
        starts = list(range(0, 4 * n, 4))
        random.Random(n).shuffle(starts)
        for start in starts:
            many._run(many._add_lazy(start, start + 2, ""))  # registered, nothing sent

        def add_disjoint(many: rs.RangeStream = many, n: int = n) -> None:
            for k in range(20):
                many.add((4 * n + 8 * k + 1, 4 * n + 8 * k + 3))

        total, _ = count(add_disjoint)
        print(f"add with {n:>6} registered: {total / 20:8.0f} opcodes")

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        for index in range(500):
            writer.writestr(f"entries/file-{index:05d}.txt", b"x" * (index % 7))
    data = archive.getvalue()
    total, _ = count(lambda: ZipReader(BytesSource(data)).namelist())
    print(f"zip listing, per entry:   {total / 500:8.1f} opcodes")


if __name__ == "__main__":
    main()
