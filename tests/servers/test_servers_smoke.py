"""Every server x variant starts, serves the docroot, and answers a range the way its spec says.

Plain httpx on purpose: these check the servers (and the fixtures), not range_streams.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from .fixtures import docroot_bytes
from .launch import Launch, RunningServer, ServerSpec, ServerStartError, get_spec

IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture(scope="module")
def client() -> httpx.Client:
    with httpx.Client(trust_env=False, timeout=15.0) as c:
        yield c  # type: ignore[misc]


def test_first_100_bytes(
    any_server: RunningServer, client: httpx.Client, record_property: pytest.RecordProperty
) -> None:
    sample = docroot_bytes("sample.bin")
    resp = client.get(any_server.url("sample.bin"), headers={**IDENTITY, "Range": "bytes=0-99"})
    record_property("status", resp.status_code)
    for name in ("content-range", "content-length", "accept-ranges", "etag", "server"):
        record_property(name, resp.headers.get(name))

    if any_server.spec.ranges:
        assert resp.status_code == 206, resp.headers
        assert resp.headers["content-range"] == f"bytes 0-99/{len(sample)}"
        assert resp.content == sample[:100]
    else:
        assert resp.status_code == 200, resp.headers
        assert "content-range" not in resp.headers
        assert resp.content == sample


def test_whole_small_file(any_server: RunningServer, client: httpx.Client) -> None:
    resp = client.get(any_server.url("small.bin"), headers=IDENTITY)
    assert resp.status_code == 200
    assert resp.content == docroot_bytes("small.bin")


def test_missing_file_is_404(any_server: RunningServer, client: httpx.Client) -> None:
    resp = client.get(any_server.url("no-such-file.bin"), headers=IDENTITY)
    assert resp.status_code == 404


def test_redirect(any_server: RunningServer, client: httpx.Client) -> None:
    url = any_server.redirect_url("small.bin")
    resp = client.get(url, headers=IDENTITY)
    assert resp.status_code == 302
    location = resp.headers["location"]
    assert location in ("/files/small.bin", any_server.url("small.bin"))
    followed = client.get(url, headers=IDENTITY, follow_redirects=True)
    assert followed.status_code == 200
    assert str(followed.url) == any_server.url("small.bin")
    assert followed.content == docroot_bytes("small.bin")


def test_access_log_records_range(any_server: RunningServer, client: httpx.Client) -> None:
    any_server.clear_access_log()
    client.get(any_server.url("small.bin"), headers={**IDENTITY, "Range": "bytes=10-19"})
    # Servers log after answering: a line of an earlier test's request may land after the
    # clear, so look for this request's record by its Range header.
    records = any_server.access_records(
        lambda r: r.range == "bytes=10-19", min_count=1, timeout=5.0
    )
    assert [(r.method, r.target, r.range) for r in records] == [
        ("GET", "/files/small.bin", "bytes=10-19")
    ]
    assert records[0].status == (206 if any_server.spec.ranges else 200)


def test_server_is_stopped_by_pid(docroot: Path) -> None:
    """start() as a context manager stops the process and removes its work dir."""
    with get_spec("http.server").start(docroot) as server:
        pid, workdir = server.pid, server.workdir
        assert server.process.poll() is None
        assert workdir.is_dir()
    assert server.process.poll() is not None
    assert not workdir.exists()
    assert pid > 0


def test_server_factory_reuses_the_running_server(
    server_factory: Callable[..., RunningServer],
) -> None:
    first = server_factory("http.server")
    assert server_factory("http.server") is first
    assert first.base_url == f"http://127.0.0.1:{first.port}/files/"
    assert (first.name, first.variant) == ("http.server", "default")


def test_range_server_open_range(range_server: RunningServer, client: httpx.Client) -> None:
    sample = docroot_bytes("sample.bin")
    resp = client.get(
        range_server.url("sample.bin"), headers={**IDENTITY, "Range": "bytes=1048000-"}
    )
    assert resp.status_code == 206
    assert resp.headers["content-range"] == f"bytes 1048000-{len(sample) - 1}/{len(sample)}"
    assert resp.content == sample[1048000:]


def test_start_failure_reports_stderr(docroot: Path) -> None:
    def build(work: Path, root: Path, port: int) -> Launch:
        code = "import sys; sys.stderr.write('config is broken\\n'); sys.exit(3)"
        return Launch([sys.executable, "-c", code])

    spec = ServerSpec("broken", "default", "python", "sys", "n/a", build)
    with pytest.raises(ServerStartError) as info, spec.start(docroot):
        pass
    message = str(info.value)
    assert "exited with status 3" in message
    assert "config is broken" in message
