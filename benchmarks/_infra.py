"""Local servers and their access logs, shared by run.py and nginx_trap.py.

Everything listens on 127.0.0.1 only, on a port picked at random, and is stopped by the
context manager that started it (by its own process id; nothing else is touched).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NGINX_TEMPLATE = HERE / "nginx" / "nginx.conf.template"
ASGI_SERVER = HERE / "_asgi_server.py"
DELAY_PROXY_SOURCE = HERE / "delay_proxy.c"
PYTHON_PROXY = HERE / "latency_proxy.py"
BUILD_DIR = HERE / ".build"  # git-ignored cache of compiled helpers


def exit_on_sigterm() -> None:
    """Turn SIGTERM (``timeout``, a CI runner, ``kill``) into SystemExit, so the ``with``
    blocks that started nginx and the latency proxy stop them: by default Python dies at
    once, and both were left running with nobody to stop them."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


@contextlib.contextmanager
def revision_src(revision: str | None, work: Path) -> Iterator[Path | None]:
    """The ``src`` folder of ``revision``, checked out under ``work`` in a temporary git
    worktree that is removed afterwards (None for no revision)."""
    if revision is None:
        yield None
        return
    repo, tree = HERE.parent, work / "revision"
    subprocess.run(
        ["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), revision],
        check=True,
        capture_output=True,
    )
    try:
        yield tree / "src"
    finally:
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
            check=False,
            capture_output=True,
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def find_compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


def build_delay_proxy() -> Path:
    """benchmarks/delay_proxy.c compiled into BUILD_DIR under a name that hashes the
    source (so an edit rebuilds it and a rebuild is never needed otherwise). Raises
    RuntimeError when there is no C compiler or the build fails."""
    source = DELAY_PROXY_SOURCE.read_bytes()
    binary = BUILD_DIR / f"delay_proxy-{hashlib.sha256(source).hexdigest()[:12]}"
    if os.access(binary, os.X_OK):
        return binary
    compiler = find_compiler()
    if compiler is None:
        raise RuntimeError("no C compiler found (cc, gcc, clang; or set CC)")
    BUILD_DIR.mkdir(exist_ok=True)
    # Built under a private name and renamed, so concurrent builds never run a half-written file.
    tmp = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
    cmd = [compiler, "-std=c11", "-O2", "-Wall", "-Wextra", "-o", str(tmp), str(DELAY_PROXY_SOURCE)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr.strip()}")
        os.replace(tmp, binary)
    finally:
        tmp.unlink(missing_ok=True)
    for stale in BUILD_DIR.glob("delay_proxy-*"):  # builds of earlier sources
        if stale != binary and not stale.name.endswith(".tmp"):
            stale.unlink(missing_ok=True)
    return binary


def latency_proxy_command(kind: str = "c") -> list[str]:
    """The argv prefix of the latency proxy to run (it takes --upstream and --rtt-ms).

    kind "c": benchmarks/delay_proxy.c, built on first use, falling back to the Python
    proxy when it cannot be built; "python": benchmarks/latency_proxy.py. The LATENCY_PROXY
    environment variable overrides both: a .py file is run with this interpreter, anything
    else as an executable. Says on stderr which proxy it picked and why."""
    override = os.environ.get("LATENCY_PROXY")
    if override:
        argv = [sys.executable, override] if override.endswith(".py") else [override]
        reason = "LATENCY_PROXY is set"
    elif kind == "python":
        argv, reason = [sys.executable, str(PYTHON_PROXY)], "asked for"
    elif kind == "c":
        try:
            argv, reason = [str(build_delay_proxy())], "compiled from delay_proxy.c"
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            argv = [sys.executable, str(PYTHON_PROXY)]
            reason = f"fallback, the C proxy could not be built: {exc}"
    else:
        raise ValueError(f"unknown proxy kind {kind!r} (c or python)")
    print(f"latency proxy: {' '.join(argv)} ({reason})", file=sys.stderr)
    return argv


def proxy_label(argv: list[str]) -> str:
    """A short name for table titles: which instrument produced the latency."""
    name = Path(argv[-1] if argv[0] == sys.executable else argv[0]).name
    return DELAY_PROXY_SOURCE.name if name.startswith("delay_proxy-") else name


def find_nginx() -> str | None:
    for cand in (shutil.which("nginx"), "/usr/sbin/nginx", "/usr/local/sbin/nginx"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


@dataclass(frozen=True)
class LogEntry:
    request: str
    status: int
    body_bytes: int
    range: str


class AccessLog:
    """Reads the tab-separated access log (request, status, body bytes, Range) by offset."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def settle(self, quiet: float = 0.15, limit: float = 3.0) -> None:
        """Wait until the server has stopped appending (it logs after the last byte)."""
        deadline = time.monotonic() + limit
        last = self.mark()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.mark()
            if now == last:
                return
            last = now

    def since(self, mark: int) -> list[LogEntry]:
        with self.path.open("rb") as fh:
            fh.seek(mark)
            data = fh.read()
        out = []
        for raw in data.decode("latin-1").splitlines():
            parts = raw.split("\t")
            if len(parts) != 4:
                continue
            request, status, nbytes, rng = parts
            out.append(LogEntry(request, int(status), int(nbytes) if nbytes.isdigit() else 0, rng))
        return out


@dataclass
class Server:
    kind: str
    port: int
    access_log: AccessLog
    proc: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        # SIGTERM: fast shutdown for nginx (master stops its workers) and for uvicorn.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def render_nginx_conf(work: Path, root: Path, port: int, access_log: Path) -> str:
    text = NGINX_TEMPLATE.read_text()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Started as root, nginx would run its workers as "nobody", who may not be able to
        # read a private temp dir; keep them as the invoking user (loopback-only server).
        text = "user root;\n" + text
    for token, value in {
        "@WORK@": str(work),
        "@ROOT@": str(root),
        "@PORT@": str(port),
        "@ACCESS_LOG@": str(access_log),
    }.items():
        text = text.replace(token, value)
    return text


@contextlib.contextmanager
def nginx_server(root: Path, work: Path) -> Iterator[Server]:
    binary = find_nginx()
    if binary is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = work / "access.log"
    log_path.write_bytes(b"")
    conf = work / "nginx.conf"
    conf.write_text(render_nginx_conf(work, root.resolve(), port, log_path))
    stderr = (work / "nginx.stderr").open("wb")
    proc = subprocess.Popen(
        [binary, "-p", str(work), "-c", str(conf), "-e", "stderr"],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        wait_for_port(port, proc)
        yield Server("nginx", port, AccessLog(log_path), proc)
    finally:
        _stop(proc)
        stderr.close()


@contextlib.contextmanager
def uvicorn_server(root: Path, work: Path) -> Iterator[Server]:
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = work / "access.log"
    log_path.write_bytes(b"")
    stderr = (work / "uvicorn.stderr").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(ASGI_SERVER), str(root.resolve()), str(port), str(log_path)],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        wait_for_port(port, proc, timeout=20)
        yield Server("uvicorn+starlette", port, AccessLog(log_path), proc)
    finally:
        _stop(proc)
        stderr.close()


def local_server(
    root: Path, work: Path, prefer: str = "auto"
) -> contextlib.AbstractContextManager[Server]:
    """nginx when installed (or asked for), else uvicorn + Starlette StaticFiles."""
    if prefer == "nginx" or (prefer == "auto" and find_nginx() is not None):
        return nginx_server(root, work)
    return uvicorn_server(root, work)
