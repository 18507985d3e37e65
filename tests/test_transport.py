"""The clients range-streams creates use its own transports (``_net/sync_transport``,
``_net/async_transport``), which re-arm TCP_QUICKACK before every read (the nginx
sendfile/tcp_nopush 40 ms stall; timings are in benchmarks/, not asserted here)."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest

import range_streams as rs
from range_streams._net import async_transport, clients, shared, sync_transport


class RecordingSocket:
    """A real connected socket that records setsockopt calls."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.options: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.options.append((level, option, value))
        self._sock.setsockopt(level, option, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@pytest.mark.skipif(shared.TCP_QUICKACK is None, reason="TCP_QUICKACK is Linux only")
def test_quickack_rearmed_before_every_read() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        recorded = RecordingSocket(client)
        wrapped = sync_transport._Socket(recorded)  # type: ignore[arg-type]
        for _ in range(3):
            peer.sendall(b"x")
            assert wrapped.recv(10, 5.0) == b"x"
        quickacks = [o for o in recorded.options if o[1] == shared.TCP_QUICKACK]
        assert len(quickacks) == 3  # before each read
        peer.close()
        wrapped.close()


def test_made_clients_use_our_transports() -> None:
    with rs.make_client() as client:
        assert isinstance(client._transport, sync_transport.WireTransport)  # type: ignore[attr-defined]
    with rs.RangeStream("http://127.0.0.1:9/x") as stream:
        assert isinstance(stream.client._transport, sync_transport.WireTransport)  # type: ignore[attr-defined]
    assert isinstance(rs.make_async_client()._transport, async_transport.AsyncWireTransport)  # type: ignore[attr-defined]
    assert isinstance(clients.make_transport(), sync_transport.WireTransport)


@pytest.mark.skipif(shared.TCP_QUICKACK is None, reason="TCP_QUICKACK is Linux only")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_connections_are_armed_too(server_factory, monkeypatch, backend) -> None:  # type: ignore[no-untyped-def]
    """Under asyncio the socket is a TransportSocket, not a socket.socket: still armed.
    Under trio the connection is an anyio stream: armed too."""
    results: list[bool] = []
    original = async_transport.arm_quickack

    def record(sock: Any) -> bool:
        results.append(original(sock))
        return results[-1]

    monkeypatch.setattr(async_transport, "arm_quickack", record)
    url = server_factory("uvicorn-starlette").url("small.bin")

    async def main() -> bytes:
        async with rs.make_async_client() as client:
            return (await client.get(url)).content

    assert anyio.run(main, backend=backend)
    assert results and all(results)
