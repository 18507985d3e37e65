"""Big reads of a counted body wait for all their bytes (SO_RCVLOWAT) and take them with
one ``recv``; heads and small reads wake at the first byte."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

import range_streams as rs
from range_streams._net import sync_transport
from tests.servers.launch import RunningServer

MIB = 1 << 20


@pytest.fixture(scope="module")
def big(docroot: Path) -> bytes:
    data = bytes(range(256)) * (6 * MIB // 256)
    (docroot / "six.bin").write_bytes(data)
    (docroot / "six.bin").chmod(0o644)
    return data


def test_big_reads_wait_for_their_bytes(
    server_factory: Callable[..., RunningServer], big: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    nginx = server_factory("nginx")
    set_to: list[int] = []
    original = socket.socket.setsockopt

    class Recording(socket.socket):
        def setsockopt(self, level: int, name: int, value: object, *rest: object) -> None:  # type: ignore[override]
            if (level, name) == (socket.SOL_SOCKET, socket.SO_RCVLOWAT):
                set_to.append(int(value))  # type: ignore[call-overload]
            original(self, level, name, value, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(sync_transport.socket, "create_connection", _recording(Recording))
    with rs.RangeFile(nginx.url("six.bin")) as f:
        pieces = [f.read(MIB) for _ in range(6)]
        f.seek(10)
        assert f.read(100) == big[10:110]  # a small read: woken at the first byte
    assert b"".join(pieces) == big
    assert MIB in set_to  # the 1 MiB reads of the sequential windows
    assert set_to[-1] == 1  # and back to 1 for the next head and the small read
    assert all(a != b for a, b in itertools.pairwise(set_to))  # only changes


def _recording(cls: type[socket.socket]) -> Callable[..., socket.socket]:
    connect = socket.create_connection

    def create_connection(address: tuple[str, int], timeout: float | None = None) -> socket.socket:
        plain = connect(address, timeout)
        sock = cls(plain.family, plain.type, plain.proto, fileno=plain.detach())
        sock.settimeout(timeout)
        return sock

    return create_connection
