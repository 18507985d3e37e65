"""A TCP proxy on 127.0.0.1 that adds round-trip latency without throttling bandwidth.

    python benchmarks/latency_proxy.py --upstream 127.0.0.1:8080 --rtt-ms 20 [--port 0]

Prints ``LISTENING <port>`` on stdout once it accepts connections.

Model: every chunk read from one side is forwarded to the other side RTT/2 after it was
read, in order; reading continues while earlier chunks wait, so a stream's throughput is
not reduced (the delay is a pipeline, not a stop-and-wait). A new connection costs one
RTT before its first byte is forwarded (the TCP handshake a real link would need).
Every connection has its own tasks, so concurrent connections never wait for each other.

Timer calibration: asyncio sleeps through epoll, whose timeout has millisecond
resolution rounded up, so every delayed hop arrived ~0.5-1 ms late and a "20 ms" round
trip measured ~22 ms. At start-up the proxy measures the median lateness of its own
sleeps and shortens each wait by it (printed on stderr), so the round trip a client
measures is the one asked for; run.py prints the round trip it measures.

Delayed ACKs: the proxy terminates TCP, so nginx's peer is the proxy, not the client. The
proxy re-arms TCP_QUICKACK after each read from the server and sets TCP_NODELAY on both
sides, so it adds no delayed-ACK/Nagle stall of its own (see README: the nginx trap is
measured directly against nginx by nginx_trap.py and by run.py --rtt-ms direct).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import socket
import sys

CHUNK = 256 * 1024
QUEUE_CHUNKS = 256  # at most 64 MiB buffered per direction
TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _tune(writer: asyncio.StreamWriter) -> socket.socket | None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _quickack(sock: socket.socket | None) -> None:
    if sock is not None and TCP_QUICKACK is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, TCP_QUICKACK, 1)


async def pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    ack_sock: socket.socket | None,
) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(QUEUE_CHUNKS)

    async def sender() -> None:
        while (item := await queue.get()) is not None:
            due, data = item
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()

    task = asyncio.create_task(sender())
    try:
        while True:
            data = await reader.read(CHUNK)
            _quickack(ack_sock)
            if not data:
                break
            await queue.put((loop.time() + delay, data))
            if task.done():
                break
    except (ConnectionError, OSError):
        pass
    finally:
        if not task.done():
            await queue.put(None)
        with contextlib.suppress(ConnectionError, OSError):
            await task


async def handle(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    host: str,
    port: int,
    rtt: float,
    late: float,
) -> None:
    _tune(client_w)
    try:
        if rtt > 0:
            await asyncio.sleep(max(0.0, rtt - late))  # the handshake a real link would cost
        server_r, server_w = await asyncio.open_connection(host, port)
    except OSError:
        client_w.close()
        return
    server_sock = _tune(server_w)
    try:
        await asyncio.gather(
            pump(client_r, server_w, max(0.0, rtt / 2 - late), None),
            pump(server_r, client_w, max(0.0, rtt / 2 - late), server_sock),
        )
    finally:
        for w in (client_w, server_w):
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()


async def lateness(target: float, samples: int = 40) -> float:
    """The median amount by which a sleep of about ``target`` overshoots here. The
    targets vary by up to 1 ms, as real waits do: epoll rounds each timeout up to a
    whole millisecond, which is most of the lateness."""
    if target <= 0:
        return 0.0
    loop = asyncio.get_running_loop()
    rng = random.Random(0)
    late = []
    for _ in range(samples):
        wait = max(0.0, target - rng.random() * 1e-3)
        start = loop.time()
        await asyncio.sleep(wait)
        late.append(loop.time() - start - wait)
    late.sort()
    return max(0.0, late[len(late) // 2])


async def serve(upstream: str, rtt_ms: float, port: int) -> None:
    host, _, up_port = upstream.rpartition(":")
    rtt = rtt_ms / 1000.0
    late = await lateness(rtt / 2)
    print(f"latency_proxy: sleeps late by {late * 1e3:.2f} ms; waits shortened", file=sys.stderr)

    async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await handle(r, w, host, int(up_port), rtt, late)

    server = await asyncio.start_server(on_client, "127.0.0.1", port, backlog=256)
    bound = server.sockets[0].getsockname()[1]
    print(f"LISTENING {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--upstream", required=True, help="host:port of the real server")
    ap.add_argument("--rtt-ms", type=float, default=0.0, help="round-trip time to add")
    ap.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1")
    args = ap.parse_args()
    if not args.upstream.startswith(("127.", "localhost:")):
        sys.exit("latency_proxy: upstream must be on the loopback interface")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.upstream, args.rtt_ms, args.port))


if __name__ == "__main__":
    main()
