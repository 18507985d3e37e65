"""The clients range-streams creates re-arm TCP_QUICKACK before every read (the nginx
sendfile/tcp_nopush 40 ms stall; timings are in benchmarks/, not asserted here)."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest

import range_streams as rs
from range_streams import _transport


class FakeSocket(socket.socket):
    def __init__(self) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.options: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, option: int, value: Any, *args: Any) -> None:  # type: ignore[override]
        self.options.append((level, option, value))


class FakeStream:
    def __init__(self) -> None:
        self.sock = FakeSocket()
        self.reads = 0

    def get_extra_info(self, info: str) -> Any:
        return self.sock if info == "socket" else None

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.reads += 1
        return b"x"


@pytest.mark.skipif(_transport.TCP_QUICKACK is None, reason="TCP_QUICKACK is Linux only")
def test_quickack_rearmed_before_every_read() -> None:
    inner = FakeStream()
    stream = _transport._QuickAckStream(inner)  # type: ignore[arg-type]
    for _ in range(3):
        stream.read(65536)
    quickacks = [o for o in inner.sock.options if o[1] == _transport.TCP_QUICKACK]
    assert len(quickacks) == 1 + 3  # at connect, then before each read
    inner.sock.close()


def test_made_clients_use_the_quickack_backend() -> None:
    with rs.make_client() as client:
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool._network_backend, _transport._QuickAckBackend)
    with rs.RangeStream("http://127.0.0.1:9/x") as stream:
        assert isinstance(
            stream.client._transport._pool._network_backend, _transport._QuickAckBackend
        )  # type: ignore[attr-defined]


@pytest.mark.skipif(_transport.TCP_QUICKACK is None, reason="TCP_QUICKACK is Linux only")
def test_async_connections_are_armed_too(server_factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Under asyncio the socket is a TransportSocket, not a socket.socket: still armed."""
    streams: list[Any] = []
    original = _transport._AsyncQuickAckStream.__init__

    def record(self: Any, stream: Any) -> None:
        original(self, stream)
        streams.append(self)

    monkeypatch.setattr(_transport._AsyncQuickAckStream, "__init__", record)
    url = server_factory("uvicorn-starlette").url("small.bin")

    async def main() -> bytes:
        async with rs.make_async_client() as client:
            return (await client.get(url)).content

    assert anyio.run(main)
    assert streams and all(s._sock is not None for s in streams)
    assert all(s.get_extra_info("is_readable") in (True, False) for s in streams)
