"""HTTPS through range-streams' own transports (sync sockets and anyio TLS streams),
against a real uvicorn server with a certificate from a throwaway CA (trustme)."""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import range_streams as rs
from range_streams._net import shared, sync_transport

trustme = pytest.importorskip("trustme")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

DATA = os.urandom(300_000)


@pytest.fixture(scope="module")
def ca() -> object:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_base(ca: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.routing import Mount  # noqa: PLC0415
    from starlette.staticfiles import StaticFiles  # noqa: PLC0415

    root = tmp_path_factory.mktemp("tls")
    (root / "data.bin").write_bytes(DATA)
    cert = ca.issue_cert("localhost")  # type: ignore[attr-defined]
    key_file, cert_file = root / "key.pem", root / "cert.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    app = Starlette(routes=[Mount("/", app=StaticFiles(directory=str(root)))])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        ssl_keyfile=str(key_file),
        ssl_certfile=str(cert_file),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:  # a liveness bound only
            pytest.fail("TLS server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"https://localhost:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def trusting(ca: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ssl.SSLContext:
    """Clients made from now on trust the throwaway CA: through SSL_CERT_FILE, which a
    client reads when it is made, as httpx's do."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))  # type: ignore[attr-defined]
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return ssl.create_default_context(cafile=str(bundle))


def test_sync_ranges_over_https(https_base: str, trusting: ssl.SSLContext) -> None:
    with rs.open(f"{https_base}/data.bin") as f:
        assert f.read_ranges([(0, 10), (100_000, 100_100), (-5, None)]) == [
            DATA[:10],
            DATA[100_000:100_100],
            DATA[-5:],
        ]
        f.seek(1000)
        assert f.read(200_000) == DATA[1000:201_000]


def test_sync_connection_kept_alive_over_https(https_base: str, trusting: ssl.SSLContext) -> None:
    transport = sync_transport.WireTransport(httpx.Limits())
    connects = 0
    original = sync_transport._Socket.connect

    def counting(origin: shared.Origin, timeout: float | None, tls: Any) -> sync_transport._Socket:
        nonlocal connects
        connects += 1
        return original(origin, timeout, tls)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sync_transport._Socket, "connect", staticmethod(counting))
        with httpx.Client(transport=transport) as client:
            for start in (0, 5000, 250_000):
                response = client.get(
                    f"{https_base}/data.bin", headers={"Range": f"bytes={start}-{start + 99}"}
                )
                assert response.status_code == 206
                assert response.content == DATA[start : start + 100]
    assert connects == 1


def test_async_fetch_many_over_https(https_base: str, trusting: ssl.SSLContext) -> None:
    items = [(f"{https_base}/data.bin", [(i * 1000, i * 1000 + 10)]) for i in range(30)]

    async def main() -> list[rs.FetchResult]:
        return await rs.fetch_many(items, concurrency=5)

    results = anyio.run(main)
    assert [r.error for r in results] == [None] * 30
    assert [r.data for r in results] == [[DATA[i * 1000 : i * 1000 + 10]] for i in range(30)]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_untrusted_certificate_is_a_connect_error(https_base: str, mode: str) -> None:
    """Without the test CA the default context must refuse the server, never read it."""
    url = f"{https_base}/data.bin"
    if mode == "sync":
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            rs.make_client().get(url)
        return

    async def main() -> None:
        async with rs.make_async_client() as client:
            await client.get(url)

    with pytest.raises(httpx.ConnectError):
        anyio.run(main)


def test_hostname_is_checked(https_base: str, trusting: ssl.SSLContext, ca: object) -> None:
    """The certificate names localhost, not 127.0.0.1: the same server by IP is refused."""
    port = https_base.rsplit(":", 1)[1]
    with pytest.raises(httpx.ConnectError, match="IP address mismatch"):
        rs.make_client().get(f"https://127.0.0.1:{port}/data.bin")
