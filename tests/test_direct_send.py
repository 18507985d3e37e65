"""``DirectSend``: the clients range-streams makes hand requests straight to its transport,
and what goes over the wire is byte for byte what ``client.send`` would have sent."""

from __future__ import annotations

import datetime
import http.server
import re
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

import range_streams as rs
from range_streams._flows.commands import Close, Flow, Send, Wire
from range_streams._net import clients
from range_streams._net.clients import DirectSend
from range_streams._runtime.drivers import run_async, run_sync

DATA = bytes(range(256)) * 4


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    heads: list[list[tuple[str, str]]]
    set_cookie = False

    def do_GET(self) -> None:
        self.heads.append([(self.requestline, ""), *self.headers.items()])
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        start, stop = (int(match[1]), int(match[2]) + 1) if match else (0, len(DATA))
        stop = min(stop, len(DATA))
        body = DATA[start:stop]
        self.send_response(206 if match else 200)
        if match:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(DATA)}")
        if self.set_cookie:
            self.send_header("Set-Cookie", "session=abc; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[Handler]]]:
    handler = type("RecordingHandler", (Handler,), {"heads": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/file.bin", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


HEADER_CASES = [
    {"range": "bytes=0-9"},
    {"Range": "bytes=0-9", "Accept-Encoding": "identity"},
    {"accept": "application/octet-stream", "if-range": '"etag"'},
    {"USER-AGENT": "mine", "X-Extra": "1"},
    {"Host": "elsewhere.test", "range": "bytes=0-9"},
    {"x-bytes": "caf\u00e9"},
]


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "POST", "PUT", "get"])
@pytest.mark.parametrize("client_headers", [None, {"host": "from-client.test", "X-A": "1"}])
@pytest.mark.parametrize("headers", HEADER_CASES)
def test_request_is_what_build_request_makes(
    headers: dict[str, str], client_headers: dict[str, str] | None, method: str
) -> None:
    with rs.make_client() as client:
        if client_headers:
            client.headers.update(client_headers)
        direct = DirectSend.of(client)
        assert direct is not None
        url = httpx.URL("http://example.test:8080/a/b?c=d")
        if not all(value.isascii() for value in headers.values()):
            with pytest.raises(UnicodeEncodeError):  # httpx's own refusal, either way
                client.build_request(method, url, headers=headers)
            with pytest.raises(UnicodeEncodeError):
                direct.request(method, url, headers)
            return
        ours = direct.request(method, url, headers)
        theirs = client.build_request(method, url, headers=headers)
        assert ours.headers.raw == theirs.headers.raw
        assert ours.headers.encoding == theirs.headers.encoding
        assert ours.url == theirs.url and ours.method == theirs.method
        assert ours.extensions == theirs.extensions
        assert ours.content == theirs.content == b""
        assert list(ours.stream) == list(theirs.stream)  # type: ignore[arg-type]


def _hook(_: Any) -> None:
    pass


@pytest.mark.parametrize(
    "change",
    ["foreign", "auth", "hook", "cookie", "params", "closed", "proxy"],
)
def test_any_layer_with_work_means_the_regular_path(
    change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if change == "proxy":
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    client = httpx.Client() if change == "foreign" else rs.make_client()
    if change == "auth":
        client.auth = ("user", "secret")
    elif change == "hook":
        client.event_hooks = {"request": [_hook], "response": []}
    elif change == "cookie":
        client.cookies.set("a", "b")
    elif change == "params":
        client.params = httpx.QueryParams({"a": "b"})
    elif change == "closed":
        client.close()
    assert DirectSend.of(client) is None
    client.close()


def _one_request(url: str, headers: dict[str, str]) -> Flow[Wire]:
    wire: Wire = yield Send("GET", url, headers)
    yield Close(wire)
    return wire


def test_wire_bytes_match_the_regular_path(server: tuple[str, type[Handler]]) -> None:
    url, handler = server
    with rs.make_client() as client:
        run_sync(client, _one_request(url, {"range": "bytes=0-9"}))
        client.event_hooks = {"request": [_hook], "response": []}  # the regular path now
        assert DirectSend.of(client) is None
        run_sync(client, _one_request(url, {"range": "bytes=0-9"}))
    direct, regular = handler.heads
    assert direct == regular


def test_elapsed_and_cookies_as_send_sets_them(server: tuple[str, type[Handler]]) -> None:
    url, handler = server
    handler.set_cookie = True
    with rs.make_client() as client:
        wire = run_sync(client, _one_request(url, {"range": "bytes=0-9"}))
        took = wire.response.elapsed  # httpx raises if it was never set
        assert isinstance(took, datetime.timedelta)
        assert wire.response.request.headers["range"] == "bytes=0-9"
        assert client.cookies.get("session") == "abc"
        assert DirectSend.of(client) is None  # a cookie to send: httpx's path sends it
        run_sync(client, _one_request(url, {"range": "bytes=0-9"}))
    assert ("Cookie", "session=abc") in handler.heads[1]
    assert not any(name == "Cookie" for name, _ in handler.heads[0])


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_direct_send(server: tuple[str, type[Handler]], backend: str) -> None:
    url, handler = server

    async def main() -> list[bytes]:
        async with rs.make_async_client() as client:
            assert DirectSend.of(client) is not None
            wire = await run_async(client, _one_request(url, {"range": "bytes=5-9"}))
            assert wire.response.status_code == 206
            took = wire.response.elapsed  # httpx raises if it was never set
            assert isinstance(took, datetime.timedelta)
            results = await rs.fetch_many([(url, [(0, 4), (100, 104)])], client=client)
            assert results[0].data is not None
            return results[0].data

    assert anyio.run(main, backend=backend) == [DATA[0:4], DATA[100:104]]
    assert all(name != "Cookie" for head in handler.heads for name, _ in head)


# -- proxies from the environment ------------------------------------------------------

PROXY_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARS + [name.lower() for name in PROXY_VARS]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {}),
        ({"HTTP_PROXY": "proxy:3128"}, {"http://": "http://proxy:3128"}),
        (
            {"ALL_PROXY": "socks5://p:1080", "NO_PROXY": "example.com, 10.0.0.1,::1,localhost"},
            {
                "all://": "socks5://p:1080",
                "all://*example.com": None,
                "all://10.0.0.1": None,
                "all://[::1]": None,
                "all://localhost": None,
            },
        ),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "a.test,*"}, {}),
    ],
)
def test_environment_proxies_read_as_httpx_reads_them(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], expected: dict[str, str | None]
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert clients.environment_proxies() == expected


def test_made_clients_go_through_the_environments_proxy(
    server: tuple[str, type[Handler]], clean_env: pytest.MonkeyPatch
) -> None:
    url, handler = server
    proxy = url.rsplit("/", 1)[0]
    clean_env.setenv("HTTP_PROXY", proxy)
    with rs.open("http://files.example.invalid/file.bin") as f:
        assert f.read(4) == DATA[:4]
    assert handler.heads[0][0][0].startswith("GET http://files.example.invalid/file.bin ")
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    with rs.open(url) as f:
        assert f.read(4) == DATA[:4]
    assert handler.heads[1][0][0].startswith("GET /file.bin ")
