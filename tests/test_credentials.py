"""A credential goes only to the origin it was given for.

The rules (``_core/origins.py``) as tables; then what two servers actually received when
one redirects to the other, for every way a caller gives credentials (client headers,
client ``auth=``, URL userinfo, ``ClientOptions.sensitive_headers``), through the sync
driver, the async one and ``fetch_many``, on a caller's client (httpx's ``send``) and on
the library's own (``DirectSend``, real sockets).
"""

from __future__ import annotations

import base64
import http.server
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest

import range_streams as rs
from range_streams._core.origins import (
    CREDENTIAL_HEADERS,
    may_carry_credentials,
    redirect_target,
    same_origin,
    split_userinfo,
)
from range_streams._core.protocol import RemoteState
from range_streams._flows.requests import learn_length
from range_streams._runtime.drivers import run_sync

DATA = bytes(range(256)) * 4096  # 1 MiB: reads far apart are separate requests
BASIC_UP = "Basic " + base64.b64encode(b"u:p").decode()

# -- the rules as tables ----------------------------------------------------------------

ORIGIN_CASES = [
    # origin, target, same origin, may carry credentials
    ("https://a.test/f", "https://a.test/g?x=1", True, True),
    ("https://a.test/f", "https://a.test:443/g", True, True),
    ("https://a.test/f", "https://A.TEST/g", True, True),
    ("https://a.test/f", "https://b.test/f", False, False),
    ("https://a.test/f", "https://a.test:8443/f", False, False),
    ("https://a.test/f", "http://a.test/f", False, False),  # a downgrade: clear text
    ("http://a.test/f", "https://a.test/f", False, True),  # an upgrade, as httpx allows
    ("http://a.test:8080/f", "https://a.test/f", False, False),
    ("http://a.test/f", "https://a.test:8443/f", False, False),
    ("http://a.test/f", "https://b.test/f", False, False),
    ("http://a.test/f", "http://a.test.evil/f", False, False),
    ("http://127.0.0.1:80/f", "http://127.0.0.1/g", True, True),
]


@pytest.mark.parametrize(("origin", "target", "same", "carry"), ORIGIN_CASES)
def test_origin_rules(origin: str, target: str, same: bool, carry: bool) -> None:
    assert same_origin(httpx.URL(origin), httpx.URL(target)) is same
    assert may_carry_credentials(httpx.URL(origin), httpx.URL(target)) is carry


REDIRECT_CASES = [
    ("http://a.test/d/f", "/x", "http://a.test/x"),
    ("http://a.test/d/f", "g", "http://a.test/d/g"),
    ("http://a.test/d/f", "//b.test/y", "http://b.test/y"),
    ("https://a.test/d/f", "http://b.test/y#frag", "http://b.test/y"),
    ("http://a.test/f", "  /padded  ", "http://a.test/padded"),
]


@pytest.mark.parametrize(("current", "location", "expected"), REDIRECT_CASES)
def test_redirect_targets(current: str, location: str, expected: str) -> None:
    assert redirect_target(current, location) == expected


@pytest.mark.parametrize(
    "location",
    [
        "http://[::1/x",
        "file:///etc/passwd",
        "ftp://a.test/f",
        "https:///x",
        "http://a.test:65536/x",
        "javascript:alert(1)",
    ],
)
def test_unusable_locations_are_redirect_errors(location: str) -> None:
    with pytest.raises(rs.RedirectError) as raised:
        redirect_target("http://u:secret@a.test/f", location)
    assert isinstance(raised.value, rs.RangeStreamError)
    assert "secret" not in str(raised.value)


USERINFO_CASES = [
    ("http://a.test/f", "http://a.test/f", None),
    ("http://u:p@a.test/f", "http://a.test/f", BASIC_UP),
    (
        "http://u%40x:p%3Aq@a.test/f",
        "http://a.test/f",
        "Basic " + base64.b64encode(b"u@x:p:q").decode(),
    ),
    ("http://a.test/f?email=x@y", "http://a.test/f?email=x@y", None),
]


@pytest.mark.parametrize(("url", "clean", "header"), USERINFO_CASES)
def test_userinfo_is_split_from_the_url(url: str, clean: str, header: str | None) -> None:
    assert split_userinfo(url) == (clean, header)
    remote = RemoteState(url)
    assert (remote.url, remote.basic_auth) == (clean, header)
    assert "p@" not in repr(remote)


# -- two origins behind a MockTransport -------------------------------------------------


@dataclass
class Origins:
    """``a.test`` serves a file or redirects to ``b.test`` (another origin); each request
    is logged with the headers it carried."""

    redirects: dict[str, str] = field(default_factory=dict)  # path on a.test -> Location
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        self.log.append((f"{url.scheme}://{url.netloc.decode()}{url.path}", dict(request.headers)))
        key = f"{url.scheme}://{url.netloc.decode()}{url.path}"
        if key in self.redirects:
            return httpx.Response(302, headers={"location": self.redirects[key]})
        match = re.fullmatch(r"bytes=(\d*)-(\d+)", request.headers.get("range", ""))
        assert match, request.headers.get("range")
        if match[1]:
            start, stop = int(match[1]), min(int(match[2]) + 1, len(DATA))
        else:  # a suffix
            start, stop = len(DATA) - int(match[2]), len(DATA)
        return httpx.Response(
            206,
            headers={"content-range": f"bytes {start}-{stop - 1}/{len(DATA)}", "etag": '"v"'},
            content=DATA[start:stop],
        )

    def carried(self, prefix: str, name: str) -> list[str | None]:
        return [headers.get(name) for url, headers in self.log if url.startswith(prefix)]


ClientMaker = Callable[[Origins], httpx.Client]
WAYS: dict[str, tuple[ClientMaker, str, str]] = {
    # way of giving credentials -> (client, URL prefix, header that must stay home)
    "client-header": (
        lambda o: httpx.Client(
            transport=httpx.MockTransport(o.handle), headers={"Authorization": "Bearer t"}
        ),
        "https://a.test",
        "authorization",
    ),
    "client-auth": (
        lambda o: httpx.Client(transport=httpx.MockTransport(o.handle), auth=("u", "p")),
        "https://a.test",
        "authorization",
    ),
    "url-userinfo": (
        lambda o: httpx.Client(transport=httpx.MockTransport(o.handle)),
        "https://u:p@a.test",
        "authorization",
    ),
    "cookie-header": (
        lambda o: httpx.Client(
            transport=httpx.MockTransport(o.handle), headers={"Cookie": "session=s"}
        ),
        "https://a.test",
        "cookie",
    ),
}


@pytest.mark.parametrize("way", sorted(WAYS))
@pytest.mark.parametrize(
    ("location", "home_after"),
    [
        ("https://b.test/real", False),  # another host
        ("https://a.test:8443/real", False),  # another port
        ("http://a.test/real", False),  # https -> http: never in clear text
        ("/real", True),  # the same origin
    ],
)
def test_a_redirect_takes_credentials_only_to_their_origin(
    way: str, location: str, home_after: bool
) -> None:
    make, prefix, header = WAYS[way]
    origins = Origins(redirects={"https://a.test/f": location})
    with make(origins) as client, rs.open(f"{prefix}/f", client=client) as f:
        assert f.read_at(0, 100) == DATA[:100]
        assert f.read_at(900_000, 900_100) == DATA[900_000:900_100]  # the remembered location
    first, *rest = [headers.get(header) for _, headers in origins.log]
    assert first is not None  # the origin got it
    assert len(rest) == 2
    assert all((value is not None) is home_after for value in rest), origins.log


def test_an_upgrade_to_https_on_the_same_host_keeps_credentials() -> None:
    origins = Origins(redirects={"http://a.test/f": "https://a.test/f2"})
    client = httpx.Client(transport=httpx.MockTransport(origins.handle), auth=("u", "p"))
    with client, rs.open("http://a.test/f", client=client) as f:
        f.read_at(0, 10)
    assert [h.get("authorization") for _, h in origins.log] == [BASIC_UP, BASIC_UP]


def test_a_chain_that_left_the_origin_never_takes_credentials_back() -> None:
    origins = Origins(
        redirects={
            "https://a.test/f": "https://b.test/hop",
            "https://b.test/hop": "https://a.test/final",
        }
    )
    client = httpx.Client(
        transport=httpx.MockTransport(origins.handle), headers={"Authorization": "Bearer t"}
    )
    with client, rs.open("https://a.test/f", client=client) as f:
        f.read_at(0, 10)
        # The remembered location is on the origin, but the other origin chose it: it is
        # asked without credentials (httpx, which starts from the URL each time, never
        # sends them there either).
        f.read_at(900_000, 900_010)
    assert [(u, h.get("authorization")) for u, h in origins.log] == [
        ("https://a.test/f", "Bearer t"),
        ("https://b.test/hop", None),
        ("https://a.test/final", None),
        ("https://a.test/final", None),
    ]


def test_a_location_found_through_another_origin_that_wants_credentials_is_not_given_them() -> None:
    origins = Origins(
        redirects={
            "https://a.test/f": "https://b.test/hop",
            "https://b.test/hop": "https://a.test/final",
        }
    )

    def refuse_unauthenticated(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/final" and "authorization" not in request.headers:
            origins.log.append((str(request.url), dict(request.headers)))
            return httpx.Response(401)
        return origins.handle(request)

    client = httpx.Client(transport=httpx.MockTransport(refuse_unauthenticated), auth=("u", "p"))
    with client, rs.open("https://a.test/f", client=client) as f:
        with pytest.raises(rs.HTTPStatusError, match="401"):
            f.read_at(0, 10)
    sent = [(u, h.get("authorization")) for u, h in origins.log]
    assert sent == [
        ("https://a.test/f", BASIC_UP),
        ("https://b.test/hop", None),
        ("https://a.test/final", None),
        ("https://a.test/f", BASIC_UP),  # once more from the URL, as for an expired location
        ("https://b.test/hop", None),
        ("https://a.test/final", None),
    ]


def test_sensitive_headers_of_our_client_stay_home(recorder: Recorder) -> None:
    other, other_seen = recorder(None)
    origin, origin_seen = recorder(f"{other}/real")
    with rs.make_client(headers={"X-Api-Key": "k"}, sensitive_headers={"X-Api-Key"}) as client:
        with rs.open(f"{origin}/f", client=client) as f:
            assert f.read_at(0, 10) == DATA[:10]
    assert [seen.get("x-api-key") for seen in origin_seen] == ["k"]
    assert [seen.get("x-api-key") for seen in other_seen] == [None]


def test_sensitive_headers_stay_home_too() -> None:
    origins = Origins(redirects={"https://a.test/f": "https://b.test/real"})
    client = httpx.Client(
        transport=httpx.MockTransport(origins.handle), headers={"X-Api-Key": "k", "X-Other": "o"}
    )
    remote = RemoteState("https://a.test/f", credential_headers=CREDENTIAL_HEADERS | {"x-api-key"})
    with client:
        assert run_sync(client, learn_length(remote)) == len(DATA)
    assert [(h.get("x-api-key"), h.get("x-other")) for _, h in origins.log] == [
        ("k", "o"),
        (None, "o"),
    ]


def test_follow_redirects_off_makes_a_redirect_an_error() -> None:
    origins = Origins(redirects={"https://a.test/f": "https://b.test/real"})
    remote = RemoteState("https://a.test/f", follow_redirects=False)
    with httpx.Client(transport=httpx.MockTransport(origins.handle)) as client:
        with pytest.raises(rs.RedirectError, match="follow_redirects"):
            run_sync(client, learn_length(remote))
    assert len(origins.log) == 1


def test_a_malformed_location_is_a_redirect_error() -> None:
    origins = Origins(redirects={"https://a.test/f": "http://[::1/x"})
    with httpx.Client(transport=httpx.MockTransport(origins.handle)) as client:
        with pytest.raises(rs.RedirectError), rs.open("https://u:pw@a.test/f", client=client) as f:
            f.read_at(0, 10)


def test_userinfo_never_shows_in_messages() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as client:
        f = rs.open("https://user:hunter2@a.test/f", client=client)
        with pytest.raises(rs.HTTPStatusError) as raised:
            f.read_at(0, 10)
        f.close()
    assert "hunter2" not in str(raised.value)
    assert "hunter2" not in f.url


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_redirects_take_no_credentials_away(backend: str) -> None:
    origins = Origins(redirects={"https://a.test/f": "https://b.test/real"})

    async def main() -> list[rs.FetchResult]:
        client = httpx.AsyncClient(
            transport=httpx.MockTransport(origins.handle), headers={"Authorization": "Bearer t"}
        )
        async with client:
            async with rs.open_async("https://a.test/f", client=client) as f:
                assert await f.read_at(0, 10) == DATA[:10]
            return await rs.fetch_many([("https://a.test/f", [(0, 10), (-5, None)])], client=client)

    results = anyio.run(main, backend=backend)
    assert results[0].error is None
    assert origins.carried("https://a.test", "authorization") == ["Bearer t", "Bearer t"]
    assert set(origins.carried("https://b.test", "authorization")) == {None}


# -- the library's own client, over real sockets ---------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]]
    location: str | None = None

    def do_GET(self) -> None:
        self.seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.location is not None and self.path == "/f":
            self.send_response(302)
            self.send_header("Location", self.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        assert match
        start, stop = int(match[1]), min(int(match[2]) + 1, len(DATA))
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(DATA)}")
        self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        self.wfile.write(DATA[start:stop])

    def log_message(self, *args: Any) -> None:
        pass


Recorder = Callable[[str | None], tuple[str, list[dict[str, str]]]]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """Starts servers on 127.0.0.1 (each its own origin) that log the headers of every
    request; one given a location redirects ``/f`` there."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(location: str | None) -> tuple[str, list[dict[str, str]]]:
        handler = type("Recorder", (_Recorder,), {"seen": [], "location": location})
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}", handler.seen

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    ("settings", "url_userinfo", "header"),
    [
        ({"headers": {"Authorization": "Bearer t"}}, False, "authorization"),
        ({"auth": ("u", "p")}, False, "authorization"),
        ({}, True, "authorization"),
        ({"headers": {"X-Api-Key": "k"}, "sensitive_headers": {"X-Api-Key"}}, False, "x-api-key"),
    ],
)
def test_our_own_client_keeps_credentials_home(
    recorder: Recorder, settings: dict[str, Any], url_userinfo: bool, header: str
) -> None:
    other, other_seen = recorder(None)
    origin, origin_seen = recorder(f"{other}/real")
    url = f"{origin}/f".replace("http://", "http://u:p@" if url_userinfo else "http://")
    options = rs.ClientOptions(**settings)
    with rs.make_client(options) as client:
        for _ in range(2):  # the second learns the length again, from a new state
            remote = RemoteState(url, credential_headers=options.credential_headers)
            assert run_sync(client, learn_length(remote)) == len(DATA)
    assert [seen.get(header) is not None for seen in origin_seen] == [True, True]
    assert [seen.get(header) for seen in other_seen] == [None, None]


def test_our_own_client_sends_url_userinfo_as_basic_auth(recorder: Recorder) -> None:
    base, seen = recorder(None)
    with rs.open(base.replace("http://", "http://u:p@") + "/data") as f:
        assert f.read_at(0, 10) == DATA[:10]
        assert f.url == f"{base}/data"
    assert [headers["authorization"] for headers in seen] == [BASIC_UP]
