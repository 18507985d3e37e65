"""Memory stays bounded: 1 GiB streamed through a range never sits in memory.

Run in a subprocess so the peak RSS measured is this read's alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import resource, httpx, anyio
    import range_streams as rs

    GIB, BLOCK = 1 << 30, 1 << 20
    block = bytes(range(256)) * (BLOCK // 256)

    class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __init__(self, n):
            self.n = n
        def __iter__(self):
            left = self.n
            while left:
                piece = block[: min(left, BLOCK)]
                left -= len(piece)
                yield piece
        async def __aiter__(self):
            for piece in self:
                yield piece

    def handler(request):
        first, last = request.headers["range"].removeprefix("bytes=").split("-")
        start = int(first); stop = int(last) + 1 if last else GIB
        headers = {
            "content-range": f"bytes {start}-{stop - 1}/{GIB}",
            "content-length": str(stop - start),
        }
        assert start % BLOCK == 0
        return httpx.Response(206, headers=headers, stream=Body(stop - start))

    transport = httpx.MockTransport(handler)
    total = 0
    url = "http://m.test/big"
    with httpx.Client(transport=transport) as client, rs.open(url, client=client) as f:
        while chunk := f.read(BLOCK):
            total += len(chunk)
    assert total == GIB, total
    with httpx.Client(transport=transport) as client, rs.RangeStream(url, client=client) as s:
        s.add((0, GIB))
        total = 0
        while chunk := s.read(BLOCK):
            total += len(chunk)
    assert total == GIB, total

    async def main():
        async with httpx.AsyncClient(transport=transport) as client:
            stream = rs.AsyncRangeStream("http://m.test/big", client=client)
            n = 0
            async for chunk in stream.aiter_bytes((0, GIB // 4), chunk_size=BLOCK):
                n += len(chunk)
            await stream.aclose()
            return n
    assert anyio.run(main) == GIB // 4
    # VmHWM is this process's own peak; ru_maxrss can inherit the parent's across exec.
    try:
        with open("/proc/self/status") as status:
            peak = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(peak // 1024)
    """
)


def test_streaming_a_gibibyte_keeps_rss_under_64_mb() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], check=False, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.strip())
    assert 0 < peak_mb < 64, f"peak RSS {peak_mb} MB"
