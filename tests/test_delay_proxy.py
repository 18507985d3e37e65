"""benchmarks/delay_proxy.c, the benchmarks' latency proxy: bytes pass unchanged in both
directions (half-close and backpressure included), delays are at least what was asked
for, it survives a refused upstream and reports its lateness on SIGTERM.

Timings are asserted as lower bounds only: an upper bound on wall time would make the
suite flaky on a loaded machine (how late the proxy is, is what it prints on exit)."""

from __future__ import annotations

import contextlib
import hashlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _infra

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="delay_proxy uses epoll, timerfd, signalfd"
    ),
    pytest.mark.skipif(_infra.find_compiler() is None, reason="no C compiler (cc, gcc, clang)"),
]

TIMEOUT = 15.0  # per socket operation: a bug fails a test, it never hangs the suite
MIB = 1 << 20
Handler = Callable[[socket.socket], None]


@pytest.fixture(scope="module")
def binary() -> Path:
    return _infra.build_delay_proxy()  # a build failure fails the tests: it is a bug


@pytest.fixture
def upstream() -> Iterator[Callable[[Handler], int]]:
    """Starts a threaded server on 127.0.0.1 running `handler` per connection; its port."""
    listeners: list[socket.socket] = []

    def start(handler: Handler) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve_one(conn: socket.socket) -> None:
            with conn:
                conn.settimeout(TIMEOUT)
                with contextlib.suppress(OSError):
                    handler(conn)

        def accept_loop() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return  # closed at teardown
                threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

        threading.Thread(target=accept_loop, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    for listener in listeners:
        listener.close()


@contextlib.contextmanager
def proxy(binary: Path, upstream_port: int, rtt_ms: float) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [str(binary), "--upstream", f"127.0.0.1:{upstream_port}", "--rtt-ms", str(rtt_ms)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert len(line) == 2 and line[0] == "LISTENING", line
        proc.port = int(line[1])  # type: ignore[attr-defined]
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=TIMEOUT)


def connect(proc: subprocess.Popen[str]) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proc.port), timeout=TIMEOUT)  # type: ignore[attr-defined]


def recv_all(sock: socket.socket) -> bytes:
    out = bytearray()
    while chunk := sock.recv(1 << 20):
        out += chunk
    return bytes(out)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, f"EOF after {len(out)} of {n} bytes"
        out += chunk
    return bytes(out)


def pattern(n: int, seed: int = 0) -> bytes:
    """Bytes that differ at every offset mod 2**16, so a reordered chunk cannot match."""
    block = b"".join(i.to_bytes(4, "little") for i in range(seed, seed + 16384))
    return (block * (n // len(block) + 1))[:n]


def echo(conn: socket.socket) -> None:
    while data := conn.recv(1 << 20):
        conn.sendall(data)


def digest_after_eof(conn: socket.socket) -> None:
    """Replies only once the client's EOF has arrived: the reverse direction must still
    be open after the client's shutdown(SHUT_WR)."""
    data = recv_all(conn)
    conn.sendall(f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode())


def test_multi_megabyte_echo_both_directions(binary: Path, upstream) -> None:
    data = pattern(24 * MIB)
    with proxy(binary, upstream(echo), 10) as p, connect(p) as sock:

        def send() -> None:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        got = recv_all(sock)  # EOF only after the server saw ours and closed
        sender.join(TIMEOUT)
    assert len(got) == len(data)
    assert got == data


def test_half_close_reply_still_arrives(binary: Path, upstream) -> None:
    data = pattern(3 * MIB, seed=7)
    with proxy(binary, upstream(digest_after_eof), 10) as p, connect(p) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = recv_all(sock)
    assert reply == f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()


def test_backpressure_beyond_the_queue_limit(binary: Path, upstream) -> None:
    """More than the proxy's 64 MiB per direction, into a server that starts reading
    late: reading the client must pause and resume, and nothing may be lost."""
    data = pattern(96 * MIB, seed=3)

    def slow_digest(conn: socket.socket) -> None:
        time.sleep(1.0)
        digest_after_eof(conn)

    with proxy(binary, upstream(slow_digest), 0) as p, connect(p) as sock:
        sock.settimeout(30)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = recv_all(sock)
    assert reply == f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()


def test_round_trips_take_at_least_the_rtt(binary: Path, upstream) -> None:
    with proxy(binary, upstream(echo), 40) as p:
        start = time.perf_counter()
        with connect(p) as sock:
            sock.sendall(b"?")
            assert recv_exactly(sock, 1) == b"?"
            first = time.perf_counter() - start  # the handshake RTT + the request's
            warm = []
            for i in range(5):
                start = time.perf_counter()
                sock.sendall(bytes([i]) * 100)
                assert recv_exactly(sock, 100) == bytes([i]) * 100
                warm.append(time.perf_counter() - start)
    assert first >= 0.080, first
    assert min(warm) >= 0.040, warm


def test_sigterm_prints_the_lateness_summary(binary: Path, upstream) -> None:
    with proxy(binary, upstream(echo), 2) as p:
        with connect(p) as sock:
            for _ in range(3):
                sock.sendall(b"ping")
                assert recv_exactly(sock, 4) == b"ping"
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=TIMEOUT)
    assert p.returncode == 0, err
    match = re.search(
        r"delay_proxy: (\d+) chunks forwarded on (\d+) connections, lateness"
        r" p50 [\d.]+ ms p99 [\d.]+ ms max [\d.]+ ms",
        err,
    )
    assert match, err
    assert int(match[1]) >= 6  # 3 requests + 3 replies, at least one chunk each
    assert int(match[2]) == 1


def test_refused_upstream_closes_the_client_and_the_proxy_lives_on(binary: Path) -> None:
    dead_port = _infra.free_port()  # nothing listens there any more
    with proxy(binary, dead_port, 5) as p:
        for _ in range(3):
            with connect(p) as sock:
                with contextlib.suppress(ConnectionResetError):
                    sock.sendall(b"hello")
                    assert sock.recv(100) == b""
            assert p.poll() is None
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=TIMEOUT)
    assert p.returncode == 0, err
    assert "0 chunks forwarded on 3 connections" in err


def test_proxy_command_choices(monkeypatch: pytest.MonkeyPatch, binary: Path) -> None:
    monkeypatch.delenv("LATENCY_PROXY", raising=False)
    assert _infra.latency_proxy_command("c") == [str(binary)]
    assert _infra.proxy_label([str(binary)]) == "delay_proxy.c"
    python = _infra.latency_proxy_command("python")
    assert python == [sys.executable, str(_infra.PYTHON_PROXY)]
    assert _infra.proxy_label(python) == "latency_proxy.py"
    monkeypatch.setenv("LATENCY_PROXY", "/somewhere/proxy.py")
    assert _infra.latency_proxy_command("c") == [sys.executable, "/somewhere/proxy.py"]
    monkeypatch.setenv("LATENCY_PROXY", "/somewhere/proxy")
    assert _infra.latency_proxy_command("python") == ["/somewhere/proxy"]
