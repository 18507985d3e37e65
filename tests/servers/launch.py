"""Start real HTTP servers on 127.0.0.1 serving a docroot, for end-to-end tests.

Every server is a separate foreground process started from a minimal config written into a
fresh work dir, on a random free port, and stopped by PID (SIGTERM, then SIGKILL to its process
group after a timeout). Every server serves the docroot at ``/files/`` and redirects
``/redirect/<name>`` to ``/files/<name>`` with a 302.

    from tests.servers.launch import get_spec
    with get_spec("nginx").start(docroot) as server:
        httpx.get(server.url("sample.bin"), headers={"Range": "bytes=0-99"})

Every server also writes an access log that :meth:`RunningServer.access_records` parses into
``(method, target, status, range)`` records, so tests can count the requests a client made.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0

PYSERVE = Path(__file__).with_name("pyserve.py")

__all__ = [
    "HOST",
    "SPECS",
    "AccessRecord",
    "RunningServer",
    "ServerSpec",
    "ServerStartError",
    "free_port",
    "get_spec",
    "installed_specs",
]


class ServerStartError(RuntimeError):
    """A server did not come up; the message carries its command line and stderr."""


@dataclass(frozen=True)
class AccessRecord:
    method: str
    target: str
    status: int
    range: str | None
    header: str | None = None  # X-Range-Streams-Test, where the server logs it


@dataclass(frozen=True)
class Launch:
    """What to run: argv, extra environment, and where the server writes its access log."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    access_log: Path | None = None
    access_log_format: str = "tsv"  # "tsv": method\ttarget\tstatus\trange; "caddy": JSON lines


# A config builder gets (workdir, docroot, port) and writes whatever config the server needs.
Builder = Callable[[Path, Path, int], Launch]


@dataclass(frozen=True)
class ServerSpec:
    """One server x variant that tests can start.

    ``ranges``: whether the server honours a single ``Range`` header (206), as expected by the
    smoke tests. ``multirange``: whether it answers ``bytes=0-9,20-29`` with a 206 holding both
    ranges (multipart, or one coalesced range as lighttpd does); others answer 200 or 416.
    ``suffix_ranges``: whether ``bytes=-N`` works too (RangeHTTPServer answers it with 400).
    """

    name: str
    variant: str
    kind: str  # "debian" or "python"
    requirement: str  # executable (debian) or importable module (python) that must exist
    install_hint: str
    build: Builder
    ranges: bool = True
    multirange: bool = True
    suffix_ranges: bool = True
    redirect: bool = True
    description: str = ""

    @property
    def id(self) -> str:
        return self.name if self.variant == "default" else f"{self.name}-{self.variant}"

    def executable(self) -> str | None:
        if self.kind != "debian":
            return sys.executable
        found = shutil.which(self.requirement)
        if found is None:
            # Debian's nginx/apache2/lighttpd live in /usr/sbin, not always on a user's PATH.
            candidate = Path("/usr/sbin") / self.requirement
            if candidate.exists() and os.access(candidate, os.X_OK):
                found = str(candidate)
        return found

    def is_installed(self) -> bool:
        if self.kind == "debian":
            return self.executable() is not None
        return all(importlib.util.find_spec(mod) is not None for mod in self.requirement.split(","))

    @property
    def skip_reason(self) -> str:
        return f"{self.name} not installed: {self.install_hint}"

    @contextlib.contextmanager
    def start(self, docroot: str | os.PathLike[str]) -> Iterator[RunningServer]:
        server = self.launch(docroot)
        try:
            yield server
        finally:
            server.stop()

    def launch(self, docroot: str | os.PathLike[str]) -> RunningServer:
        """Start the server and wait until it accepts connections; caller must ``stop()`` it."""
        if not self.is_installed():
            raise ServerStartError(self.skip_reason)
        docroot = Path(docroot).resolve()
        if self.name in _DROPS_PRIVILEGES and _is_root():
            _check_world_readable(docroot)
        last_error: ServerStartError | None = None
        # A free port can be taken between probing and binding: retry on a new port.
        for _attempt in range(3):
            workdir = Path(tempfile.mkdtemp(prefix=f"rs-{self.id}-"))
            # Worker processes run as nobody for nginx/apache as root: they must read the
            # config dir's files (logs are opened by the master before dropping privileges).
            workdir.chmod(0o755)
            port = free_port()
            server = RunningServer._spawn(self, docroot, workdir, port)
            try:
                server._wait_ready()
            except ServerStartError as exc:
                server.stop()
                last_error = exc
                if not server.port_was_taken():
                    break
                continue
            return server
        assert last_error is not None
        raise last_error


# Run as root, these serve files from worker processes running as nobody.
_DROPS_PRIVILEGES = ("nginx", "apache2")


def _check_world_readable(docroot: Path) -> None:
    """Fail clearly (rather than with 403s) when nobody cannot read the docroot, e.g. when it
    is under pytest's tmp_path (mode 0o700)."""
    for directory in (docroot, *docroot.parents):
        mode = directory.stat().st_mode
        if not mode & 0o001:
            raise ServerStartError(
                f"{directory} is not searchable by other users, so nginx/apache workers "
                f"(user nobody) cannot read {docroot}; use a world-readable docroot, e.g. "
                "tests.servers.fixtures.make_docroot(tempfile.mkdtemp())"
            )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class RunningServer:
    """A started server; ``base_url`` ends with ``/files/``."""

    def __init__(
        self,
        spec: ServerSpec,
        docroot: Path,
        workdir: Path,
        port: int,
        launch: Launch,
        process: subprocess.Popen[bytes],
    ) -> None:
        self.spec = spec
        self.docroot = docroot
        self.workdir = workdir
        self.port = port
        self.process = process
        self.launch_info = launch
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"

    @classmethod
    def _spawn(cls, spec: ServerSpec, docroot: Path, workdir: Path, port: int) -> RunningServer:
        launch = spec.build(workdir, docroot, port)
        env = {**os.environ, **launch.env}
        with (
            open(workdir / "stdout.log", "wb") as out,
            open(workdir / "stderr.log", "wb") as err,
        ):
            process = subprocess.Popen(
                launch.argv,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # own process group: stop() can reap worker children
            )
        return cls(spec, docroot, workdir, port, launch, process)

    # -- identity -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def variant(self) -> str:
        return self.spec.variant

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/files/"

    @property
    def access_log(self) -> Path | None:
        return self.launch_info.access_log

    def url(self, name: str) -> str:
        return self.base_url + name

    def redirect_url(self, name: str) -> str:
        """A URL answering 302 with ``Location`` pointing at ``url(name)``."""
        if not self.spec.redirect:
            raise NotImplementedError(f"{self.id} has no redirecting location")
        return f"{self.origin}/redirect/{name}"

    def __repr__(self) -> str:
        return f"<RunningServer {self.id} pid={self.pid} {self.base_url}>"

    # -- logs ---------------------------------------------------------------------------------
    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def access_records(
        self,
        where: Callable[[AccessRecord], bool] | None = None,
        *,
        min_count: int = 0,
        timeout: float = 2.0,
    ) -> list[AccessRecord]:
        """Parse the access log (since the last ``clear_access_log()``), keeping the records
        ``where`` accepts. Servers write a line just after the response is sent: with
        ``min_count``, poll up to ``timeout`` seconds until that many records are there."""
        if self.access_log is None:
            return []
        deadline = time.monotonic() + timeout
        while True:
            records = [r for r in self._read_access_log() if where is None or where(r)]
            if len(records) >= min_count or time.monotonic() >= deadline:
                return records
            time.sleep(0.02)

    def clear_access_log(self) -> None:
        """Forget the records written so far (the file stays: servers keep it open). A request
        answered just before may still be logged after this: filter with ``where``."""
        self._access_offset = self._access_log_size()

    _access_offset: int = 0

    def _access_log_size(self) -> int:
        try:
            return self.access_log.stat().st_size if self.access_log else 0
        except OSError:
            return 0

    def _read_access_log(self) -> list[AccessRecord]:
        assert self.access_log is not None
        try:
            with open(self.access_log, "rb") as fh:
                fh.seek(self._access_offset)
                data = fh.read()
        except OSError:
            return []
        lines = data.decode("utf-8", "replace").splitlines()
        if data and not data.endswith(b"\n"):
            lines = lines[:-1]  # a line being written
        parse = _parse_caddy if self.launch_info.access_log_format == "caddy" else _parse_tsv
        return [rec for line in lines if line.strip() if (rec := parse(line)) is not None]

    # -- lifecycle ----------------------------------------------------------------------------
    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._fail(f"exited with status {self.process.returncode} before listening")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            # Someone else may own the port (taken between probing and binding): only ready
            # if our process is still running.
            time.sleep(0.05)
            if self.process.poll() is None:
                return
        self._fail(f"did not accept connections on port {self.port} within {READY_TIMEOUT:.0f}s")

    def _fail(self, what: str) -> None:
        argv = " ".join(self.launch_info.argv)
        raise ServerStartError(
            f"{self.id} {what}\n  command: {argv}\n"
            f"  workdir: {self.workdir} (kept with RANGE_STREAMS_KEEP_SERVER_DIRS=1)\n"
            f"  stderr:\n{_indent(self.stderr_text()[-4000:])}"
        )

    def port_was_taken(self) -> bool:
        text = self.stderr_text().lower()
        return "address already in use" in text or "errno 98" in text

    def terminate(self) -> None:
        """Send SIGTERM without waiting (``stop()`` waits, and kills after a timeout)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        proc = self.process
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        # Workers (apache children, nginx workers) that outlived their parent.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if os.environ.get("RANGE_STREAMS_KEEP_SERVER_DIRS") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in (text.rstrip() or "(empty)").splitlines())


def _parse_tsv(line: str) -> AccessRecord | None:
    parts = line.split("\t")
    if len(parts) < 4:
        return None
    method, target, status, rng = parts[:4]
    header = parts[4].strip() if len(parts) > 4 else None
    if header in ("", "-"):
        header = None
    rng = rng.strip()
    if rng in ("", "-"):
        rng = None
    elif len(rng) >= 2 and rng[0] == rng[-1] == '"':
        rng = rng[1:-1] or None
    try:
        return AccessRecord(method, target, int(status), rng, header)
    except ValueError:
        return None


def _parse_caddy(line: str) -> AccessRecord | None:
    try:
        entry = json.loads(line)
        request = entry["request"]
        ranges = request.get("headers", {}).get("Range") or []
        return AccessRecord(
            request["method"], request["uri"], int(entry["status"]), ", ".join(ranges) or None
        )
    except (ValueError, KeyError, TypeError):
        return None


# =============================================================================================
# Debian servers
# =============================================================================================
def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _nginx(extra_http: str = "", extra_location: str = "", log_header: bool = False) -> Builder:
    def build(work: Path, docroot: Path, port: int) -> Launch:
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (work / sub).mkdir()
        user = "user nobody nogroup;" if _is_root() else ""
        header = "\\t$http_x_range_streams_test" if log_header else ""
        conf = f"""\
{user}
daemon off;
master_process on;
worker_processes 1;
pid {work}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format rs "$request_method\\t$request_uri\\t$status\\t$http_range{header}";
    access_log {work}/access.log rs;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    sendfile on;
    keepalive_timeout 30;
{_indent_block(extra_http, 4)}
    server {{
        listen {HOST}:{port};
        server_name localhost;
        location /files/ {{
            alias {docroot}/;
{_indent_block(extra_location, 12)}
        }}
        location ~ ^/redirect/(.*)$ {{
            return 302 /files/$1;
        }}
    }}
}}
"""
        (work / "nginx.conf").write_text(conf)
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        return Launch(
            [exe, "-p", f"{work}/", "-c", f"{work}/nginx.conf", "-e", "stderr"],
            access_log=work / "access.log",
        )

    return build


def _indent_block(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.strip().splitlines())


APACHE_MODULES = ("mpm_event", "authz_core", "mime", "filter", "deflate", "alias", "headers")


def _apache(extra: str = "") -> Builder:
    def build(work: Path, docroot: Path, port: int) -> Launch:
        loads = "\n".join(
            f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so" for m in APACHE_MODULES
        )
        user = "User nobody\nGroup nogroup" if _is_root() else ""
        conf = f"""\
ServerRoot "{work}"
ServerName localhost
PidFile "{work}/httpd.pid"
DefaultRuntimeDir "{work}"
Listen {HOST}:{port}
{loads}
{user}
ErrorLog /dev/stderr
LogLevel warn
LogFormat "%m\\t%U%q\\t%>s\\t%{{Range}}i" rs
CustomLog "{work}/access.log" rs
TypesConfig /etc/mime.types
Mutex file:{work} default
KeepAlive On
StartServers 1
ServerLimit 2
ThreadsPerChild 25
MaxRequestWorkers 50
<Directory />
    AllowOverride None
    Require all denied
</Directory>
Alias /files/ "{docroot}/"
<Directory "{docroot}">
    Require all granted
</Directory>
RedirectMatch 302 ^/redirect/(.*)$ /files/$1
# Debian's default mods-enabled/deflate.conf: compress text types only.
AddOutputFilterByType DEFLATE text/html text/plain text/xml text/css text/javascript
AddOutputFilterByType DEFLATE application/javascript application/json application/xml
{extra}
"""
        (work / "httpd.conf").write_text(conf)
        exe = shutil.which("apache2") or "/usr/sbin/apache2"
        return Launch(
            [exe, "-f", f"{work}/httpd.conf", "-DFOREGROUND"],
            # Debian's stock config reads these; ours does not, but keep them pointing into
            # the work dir so nothing falls back to /var/run/apache2.
            env={
                "APACHE_RUN_DIR": str(work),
                "APACHE_LOCK_DIR": str(work),
                "APACHE_LOG_DIR": str(work),
                "APACHE_PID_FILE": f"{work}/httpd.pid",
            },
            access_log=work / "access.log",
        )

    return build


def _lighttpd(extra: str = "") -> Builder:
    def build(work: Path, docroot: Path, port: int) -> Launch:
        conf = f"""\
server.modules = ("mod_alias", "mod_redirect", "mod_accesslog")
server.document-root = "{work}/empty-root"
server.bind = "{HOST}"
server.port = {port}
server.pid-file = "{work}/lighttpd.pid"
server.errorlog = "/dev/stderr"
server.upload-dirs = ("{work}")
accesslog.filename = "|exec /bin/cat >> {work}/access.log"
accesslog.format = "%m\t%U%q\t%s\t%{{Range}}i"
mimetype.assign = (
    ".bin" => "application/octet-stream",
    ".txt" => "text/plain",
    "" => "application/octet-stream",
)
alias.url = ("/files/" => "{docroot}/")
url.redirect = ("^/redirect/(.*)$" => "/files/$1")
url.redirect-code = 302
{extra}
"""
        (work / "empty-root").mkdir()
        (work / "lighttpd.conf").write_text(conf)
        exe = shutil.which("lighttpd") or "/usr/sbin/lighttpd"
        return Launch(
            [exe, "-D", "-f", f"{work}/lighttpd.conf"],
            access_log=work / "access.log",
        )

    return build


def _caddy(extra_site: str = "") -> Builder:
    def build(work: Path, docroot: Path, port: int) -> Launch:
        conf = f"""\
{{
    admin off
    auto_https off
}}
http://{HOST}:{port} {{
    bind {HOST}
    log {{
        output file {work}/access.log
        format json
    }}
{_indent_block(extra_site, 4)}
    handle_path /files/* {{
        root * {docroot}
        file_server
    }}
    handle_path /redirect/* {{
        redir * /files{{path}} 302
    }}
}}
"""
        (work / "Caddyfile").write_text(conf)
        for sub in ("home", "data", "config"):
            (work / sub).mkdir()
        exe = shutil.which("caddy") or "/usr/bin/caddy"
        return Launch(
            [exe, "run", "--config", f"{work}/Caddyfile", "--adapter", "caddyfile"],
            env={
                "HOME": f"{work}/home",
                "XDG_DATA_HOME": f"{work}/data",
                "XDG_CONFIG_HOME": f"{work}/config",
            },
            access_log=work / "access.log",
            access_log_format="caddy",
        )

    return build


# =============================================================================================
# Python servers: tests/servers/pyserve.py run as a separate process
# =============================================================================================
def _python(kind: str) -> Builder:
    def build(work: Path, docroot: Path, port: int) -> Launch:
        access = work / "access.log"
        return Launch(
            [
                sys.executable,
                str(PYSERVE),
                kind,
                "--host",
                HOST,
                "--port",
                str(port),
                "--docroot",
                str(docroot),
                "--access-log",
                str(access),
            ],
            env={"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
            access_log=access,
        )

    return build


def _deb(name: str, variant: str, build: Builder, **kw: object) -> ServerSpec:
    binary = {"apache2": "apache2"}.get(name, name)
    return ServerSpec(
        name=name,
        variant=variant,
        kind="debian",
        requirement=binary,
        install_hint=f"apt-get install {name} (or scripts/install-servers.sh)",
        build=build,
        **kw,  # type: ignore[arg-type]
    )


def _py(name: str, modules: str, pip: str, **kw: object) -> ServerSpec:
    return ServerSpec(
        name=name,
        variant="default",
        kind="python",
        requirement=modules,
        install_hint=f"pip install {pip} (or scripts/install-servers.sh)",
        build=_python(name),
        **kw,  # type: ignore[arg-type]
    )


NGINX_GZIP = """\
gzip on;
gzip_min_length 0;
gzip_comp_level 1;
gzip_types application/octet-stream text/plain text/css application/json;
"""

SPECS: tuple[ServerSpec, ...] = (
    _deb("nginx", "default", _nginx(), description="nginx, Debian defaults"),
    _deb(
        "nginx",
        "max_ranges_1",
        _nginx(extra_location="max_ranges 1;"),
        multirange=False,
        description="nginx max_ranges 1: single ranges only",
    ),
    _deb(
        "nginx",
        "max_ranges_0",
        _nginx(extra_location="max_ranges 0;"),
        ranges=False,
        multirange=False,
        description="nginx max_ranges 0: ranges disabled",
    ),
    _deb("nginx", "gzip", _nginx(extra_http=NGINX_GZIP), description="nginx gzip on"),
    _deb("apache2", "default", _apache(), description="Apache 2.4 event MPM"),
    _deb(
        "apache2",
        "max_ranges_none",
        _apache("MaxRanges none"),
        ranges=False,
        multirange=False,
        description="Apache MaxRanges none: ranges disabled",
    ),
    _deb("lighttpd", "default", _lighttpd(), description="lighttpd"),
    _deb(
        "lighttpd",
        "range_disabled",
        _lighttpd('server.range-requests = "disable"'),
        ranges=False,
        multirange=False,
        description='lighttpd server.range-requests = "disable"',
    ),
    _deb("caddy", "default", _caddy(), description="Caddy file_server"),
    _deb("caddy", "gzip", _caddy("encode gzip"), description="Caddy encode gzip"),
    _py(
        "uvicorn-starlette",
        "uvicorn,starlette",
        "uvicorn starlette",
        description="uvicorn + Starlette StaticFiles",
    ),
    _py(
        "werkzeug",
        "werkzeug",
        "werkzeug",
        multirange=False,
        description="Werkzeug send_from_directory",
    ),
    _py("aiohttp", "aiohttp", "aiohttp", multirange=False, description="aiohttp web.static"),
    _py(
        "tornado",
        "tornado",
        "tornado",
        multirange=False,
        description="Tornado StaticFileHandler",
    ),
    _py("twisted", "twisted", "twisted", description="twisted.web.static.File"),
    _py(
        "rangehttpserver",
        "RangeHTTPServer",
        "rangehttpserver",
        multirange=False,
        suffix_ranges=False,
        description="RangeHTTPServer.RangeRequestHandler",
    ),
    _py(
        "http.server",
        "http.server",
        "(stdlib)",
        ranges=False,
        multirange=False,
        description="CPython http.server: no range support",
    ),
)


# Servers for particular tests, outside the conformance matrix (any_server).
EXTRA_SPECS: tuple[ServerSpec, ...] = (
    _deb(
        "nginx",
        "autoindex",
        _nginx(extra_location="autoindex on;", log_header=True),
        description="nginx with directory listings, logging X-Range-Streams-Test",
    ),
)


def get_spec(name: str, variant: str = "default") -> ServerSpec:
    for spec in SPECS + EXTRA_SPECS:
        if spec.name == name and spec.variant == variant:
            return spec
        if spec.id == name and variant == "default":
            return spec
    known = ", ".join(s.id for s in SPECS)
    raise KeyError(f"no server {name!r} variant {variant!r}; known: {known}")


def installed_specs() -> list[ServerSpec]:
    return [spec for spec in SPECS if spec.is_installed()]
