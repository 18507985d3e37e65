"""Where fetch_many's time goes: per-connection timing of 200 one-range requests.

    python benchmarks/fetch_many_trace.py [--rtt-ms 20] [--runs 3] [--concurrency 20]
                                          [--proxy c|python]

Starts nginx (benchmarks/_infra.py) and the latency proxy (the C one unless --proxy python;
see run.py), then runs
``range_streams.fetch_many`` over 200 URLs of the 64 MiB benchmark file, logging every
send and receive of the library's asyncio sockets. Per run it prints the total, when the
first request went out, the median and worst request latency, and the median and worst
gap between a connection receiving a response and sending its next request (the client's
own turnaround, the part the library controls). Instrumentation only wraps methods of
``range_streams._net.async_transport._LoopSocket`` for the run; nothing else is changed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
import run
from _infra import exit_on_sigterm, latency_proxy_command, nginx_server

import range_streams
from range_streams._net import async_transport

Event = tuple[float, int, str]


def instrument(log: list[Event]) -> None:
    send, recv = async_transport._LoopSocket.send, async_transport._LoopSocket.recv

    async def logged_send(self: Any, data: bytes, timeout: float | None, *more: Any) -> None:
        log.append((time.perf_counter(), id(self), "send"))
        await send(self, data, timeout, *more)

    async def logged_recv(self: Any, size: int, timeout: float | None, *more: Any) -> bytes:
        data = await recv(self, size, timeout, *more)
        log.append((time.perf_counter(), id(self), "recv"))
        return data

    async_transport._LoopSocket.send = logged_send  # type: ignore[method-assign]
    async_transport._LoopSocket.recv = logged_recv  # type: ignore[method-assign]


def summarize(log: list[Event], started: float, total: float) -> str:
    by_connection: dict[int, list[tuple[float, str]]] = {}
    for moment, connection, kind in log:
        by_connection.setdefault(connection, []).append((moment, kind))
    gaps, latencies = [], []
    for events in by_connection.values():
        sent = received = None
        for moment, kind in events:
            if kind == "send":
                if received is not None:
                    gaps.append(moment - received)
                sent = moment
            else:
                if sent is not None:
                    latencies.append(moment - sent)
                    sent = None
                received = moment
    first = min(moment for moment, _, _ in log) - started
    ms = 1e3
    return (
        f"total {total:.3f} s, {len(by_connection)} connections, first request at"
        f" {first * ms:.1f} ms; latency median {statistics.median(latencies) * ms:.1f} ms,"
        f" worst {max(latencies) * ms:.1f} ms; turnaround median"
        f" {statistics.median(gaps) * ms:.2f} ms, worst {max(gaps) * ms:.2f} ms"
    )


def main() -> None:
    exit_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rtt-ms", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--proxy", choices=["c", "python"], default="c")
    args = ap.parse_args()
    data_dir = run.HERE / ".data"
    art = datagen.generate(True, data_dir)["big_file"]
    log: list[Event] = []
    instrument(log)
    with tempfile.TemporaryDirectory() as work, nginx_server(data_dir, Path(work)) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        command = latency_proxy_command(args.proxy)
        with run.latency_proxy(port, args.rtt_ms, command) as proxy:
            url = f"{proxy.base}/{art.name}"
            rtt = run.measure_rtt(proxy.base, art.name)
            print(f"{proxy.label}: measured RTT {rtt * 1e3:.1f} ms")
            items = [(f"{url}?n={i}", [(i * 4096, i * 4096 + 4096)]) for i in range(200)]
            for _ in range(args.runs):
                log.clear()
                started = time.perf_counter()
                asyncio.run(range_streams.fetch_many(items, concurrency=args.concurrency))
                print(summarize(log, started, time.perf_counter() - started))
        for line in proxy.log:
            print(f"proxy stderr: {line}")


if __name__ == "__main__":
    main()
