"""The credential rule through the library's other doors: ``fetch_many`` (asyncio and
trio), the fsspec filesystem, and the command line (``cat``, and ``get``'s segmented
and whole-file downloads). The file's origin A redirects to B, another origin; B must
never see the credential, and A must get it (so that a test cannot pass by sending none).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest

import range_streams as rs
from range_streams._cli import execute
from range_streams._cli._common import Console

from .clients import MODES, TIMEOUT, default_tls
from .server import FileHost, HostileServer, Reply, Request, redirect, routes

pytestmark = pytest.mark.timeout(30)

SECRET = "entry-secret-41"
BASIC = "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()
BEARER = f"Bearer {SECRET}"
DATA = bytes((i * 13) % 256 for i in range(300_000))
ASYNC_MODES = [mode for mode in MODES if mode != "sync"]


class Pair:
    """A (the origin; its /f redirects to B's /f) and B (another origin)."""

    def __init__(self, b_play: Callable[[Request], Reply] | None = None) -> None:
        self.b = HostileServer(b_play or FileHost(DATA))
        self.a = HostileServer(routes({"/f": lambda r: redirect(self.b.url("/f"))}))

    def url(self, userinfo: bool = False) -> str:
        url = self.a.url("/f")
        return url.replace("http://", f"http://user:{SECRET}@") if userinfo else url

    def stop(self) -> None:
        for server in (self.a, self.b):
            server.stop()
        assert not self.a.errors and not self.b.errors, self.a.errors + self.b.errors

    def assert_credential_stayed_at_a(self, value: str) -> None:
        assert self.a.requests, "nothing reached the origin"
        assert all(r.header("authorization") == value for r in self.a.requests)
        assert self.b.requests, "nothing reached the other origin"
        for request in self.b.requests:
            assert request.header("authorization") is None, request.raw
            assert SECRET.encode() not in request.raw
            assert BASIC.split()[1].encode() not in request.raw


@pytest.fixture
def pair() -> Iterator[Callable[..., Pair]]:
    made: list[Pair] = []

    def make(b_play: Callable[[Request], Reply] | None = None) -> Pair:
        made.append(Pair(b_play))
        return made[-1]

    yield make
    for each in made:
        each.stop()


# -- fetch_many ---------------------------------------------------------------------------------


CLIENTS: dict[str, tuple[Callable[[], httpx.AsyncClient], str, bool]] = {
    "caller-auth": (
        lambda: httpx.AsyncClient(auth=("user", SECRET), timeout=TIMEOUT, verify=default_tls()),
        BASIC,
        False,
    ),
    "caller-headers": (
        lambda: httpx.AsyncClient(
            headers={"Authorization": BEARER}, timeout=TIMEOUT, verify=default_tls()
        ),
        BEARER,
        False,
    ),
    "made-headers": (
        lambda: rs.make_async_client(headers={"Authorization": BEARER}, timeout=TIMEOUT),
        BEARER,
        False,
    ),
    "url-userinfo": (lambda: rs.make_async_client(timeout=TIMEOUT), BASIC, True),
}


@pytest.mark.parametrize("mode", ASYNC_MODES)
@pytest.mark.parametrize("client", CLIENTS)
def test_fetch_many(pair: Callable[..., Pair], client: str, mode: str) -> None:
    make, value, userinfo = CLIENTS[client]
    servers = pair()
    spans = [(0, 100), (5000, 5100), (200_000, 200_050)]

    async def main() -> list[rs.FetchResult]:
        async with make() as session:
            items = [(servers.url(userinfo), spans), (servers.url(userinfo), [(-10, None)])]
            return await rs.fetch_many(items, client=session, concurrency=2)

    results = anyio.run(main, backend=mode)
    assert [r.error for r in results] == [None, None]
    assert results[0].data == [DATA[a:b] for a, b in spans]
    assert results[1].data == [DATA[-10:]]
    servers.assert_credential_stayed_at_a(value)


# -- fsspec ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("userinfo", [False, True], ids=["client-headers", "url-userinfo"])
def test_fsspec(pair: Callable[..., Pair], userinfo: bool) -> None:
    fsspec_module = pytest.importorskip("range_streams.fsspec")
    servers = pair()
    headers = {} if userinfo else {"Authorization": BEARER}
    with rs.make_client(headers=headers, timeout=TIMEOUT, trust_env=False) as client:
        fs = fsspec_module.RangeFileSystem(client=client)
        url = "rs+" + servers.url(userinfo)
        assert fs.info(url)["size"] == len(DATA)
        assert fs.cat_file(url, 1000, 1100) == DATA[1000:1100]
        with fs.open(url) as remote:
            remote.seek(250_000)
            assert remote.read(10) == DATA[250_000:250_010]
    servers.assert_credential_stayed_at_a(BASIC if userinfo else BEARER)


# -- the command line ----------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, bytes, str]:
    out, err = io.TextIOWrapper(io.BytesIO()), io.StringIO()
    code = execute(list(argv), Console(out=out, err=err))
    out.flush()
    return code, out.buffer.getvalue(), err.getvalue()  # type: ignore[attr-defined]


def test_cli_cat(pair: Callable[..., Pair]) -> None:
    servers = pair()
    code, out, err = run_cli("cat", "--range", "1000:1100", servers.url(userinfo=True))
    assert (code, err) == (0, "")
    assert out == DATA[1000:1100]
    servers.assert_credential_stayed_at_a(BASIC)


def whole_file(request: Request) -> Reply:
    """A server that ignores Range: the whole file, every time."""
    return Reply(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(DATA) + DATA)


@pytest.mark.parametrize("other", ["ranges", "ignores-ranges"])
def test_cli_get(pair: Callable[..., Pair], tmp_path: Path, other: str) -> None:
    """A segmented download (B honours ranges), and the whole-file one (B ignores them):
    neither sends the URL's credential to B."""
    servers = pair(None if other == "ranges" else whole_file)
    target = tmp_path / "f.bin"
    code, _, err = run_cli("get", "-o", str(target), "-c", "2", servers.url(userinfo=True))
    assert (code, err) == (0, "")
    assert target.read_bytes() == DATA
    servers.assert_credential_stayed_at_a(BASIC)


def test_cli_get_whole_file_from_the_origin_with_userinfo(tmp_path: Path) -> None:
    """The origin itself ignores ranges and wants the URL's credential: the whole-file
    download must send it there too (it goes to the URL's own origin)."""

    def guarded(request: Request) -> Reply:
        if request.header("authorization") != BASIC:
            return Reply(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        return whole_file(request)

    server = HostileServer(guarded)
    try:
        target = tmp_path / "f.bin"
        url = server.url("/f").replace("http://", f"http://user:{SECRET}@")
        code, _, err = run_cli("get", "-o", str(target), url)
        assert (code, err) == (0, "")
        assert target.read_bytes() == DATA
    finally:
        server.stop()
    assert all(r.header("authorization") == BASIC for r in server.requests)
