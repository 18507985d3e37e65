"""The cost of reading hostile response heads: ours (``Exchange``, the path every response
of our transport takes) beside h11 (httpx's), for heads of 1, 10 and 100 KiB.

Each head is fed whole and then in 1 KiB pieces, as a server may send it; the figure is
the best of ``--repeat`` runs (CPU time of this process). A parser that backtracks grows
with the square of the size: 40 KB of one invalid field line once cost 11 s here.

    python benchmarks/head_parse.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import h11

from range_streams._net.exchange import Exchange

HOST = [(b"Host", b"example.test")]


def heads(size: int) -> dict[str, bytes]:
    status = b"HTTP/1.1 206 Partial Content\r\n"
    end = b"Content-Length: 0\r\n\r\n"
    return {
        "valid, many fields": status
        + b"".join(b"X-F%06d: value %d\r\n" % (i, i) for i in range(size // 24))
        + end,
        "valid, one long value": status + b"X-Long: " + b"v" * size + b"\r\n" + end,
        "invalid: no colon": status + b"a" * size + b"\r\n" + end,
        "invalid: NUL at the end": status + b"X-Bad: " + b"v" * size + b"\x00\r\n" + end,
        "invalid: words, then VT": status + b"X-Bad: " + b"a " * (size // 2) + b"\x0b\r\n" + end,
        "bare LF lines": (status + b"X-F: v\r\n" * (size // 8)).replace(b"\r\n", b"\n")
        + b"Content-Length: 0\n\n",
    }


def ours(head: bytes, piece: int) -> None:
    exchange = Exchange(b"GET", b"/", HOST, b"", max_head=1 << 30)
    try:
        for at in range(0, len(head), piece):
            if exchange.receive_head(head[at : at + piece]) is not None:
                return
    except Exception:  # refused: what we measure is how long it took to say so
        return


def theirs(head: bytes, piece: int) -> None:
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 30)
    connection.send(h11.Request(method="GET", target="/", headers=HOST))
    connection.send(h11.EndOfMessage())
    try:
        for at in range(0, len(head), piece):
            connection.receive_data(head[at : at + piece])
            if connection.next_event() is not h11.NEED_DATA:
                return
    except h11.RemoteProtocolError:
        return


def best(run: Callable[[bytes, int], None], head: bytes, piece: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run(head, piece)
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| head | size | pieces | ours (ms) | h11 (ms) |")
    print("|---|---|---|---|---|")
    for size in (1024, 10 * 1024, 100 * 1024):
        for name, head in heads(size).items():
            for piece, label in ((len(head), "whole"), (1024, "1 KiB")):
                mine = best(ours, head, piece, args.repeat) * 1000
                h11s = best(theirs, head, piece, args.repeat) * 1000
                print(f"| {name} | {len(head):,} | {label} | {mine:.3f} | {h11s:.3f} |")


if __name__ == "__main__":
    main()
