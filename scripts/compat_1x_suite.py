"""Run range-streams 1.x's own test suite, offline, against a range_streams of your choice.

    python scripts/compat_1x_suite.py CHECKOUT [--src DIR] [--python PY] [-- PYTEST_ARGS]

CHECKOUT is a git clone of github.com/lmmx/range-streams (1.4.1's tests). ``--src`` puts a
source tree first on ``PYTHONPATH`` (default: this repository's ``src``); ``--python`` runs
another interpreter (a venv with range-streams 1.4.1 installed, to check the harness: 175
of 175 pass there).

1.x's tests download from raw.githubusercontent.com, github.com and upload.wikimedia.org.
Here the same files lie under the same paths in a temporary docroot served by nginx with
TLS on 127.0.1.16:443 (a certificate from a throwaway ``trustme`` CA, trusted through
``SSL_CERT_FILE``), and a conftest makes those three host names resolve there, so URLs,
names and hosts are exactly what the tests expect. What is taken from where:

- the tests and data/ at upstream commit ``c0ea117^``: the lint pass at ``c0ea117`` added a
  newline to ``example_text_file.txt`` (the tests expect 11 bytes) and dropped the imports
  that shared ``range_stream_core_test``'s fixtures with the other modules (43 errors);
- the Wikimedia thumbnail is not in the repository: a stand-in with what the test checks
  (480x480 RGBA, every pixel opaque, split into many IDAT chunks; filter type 0).

Needs root (port 443), nginx, git, and trustme and pytest-timeout in the interpreter.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCAL = "127.0.1.16"
HOSTS = ("raw.githubusercontent.com", "github.com", "upload.wikimedia.org")
TESTS_AT = "c0ea117^"
DATA_PATHS = ("lmmx/range-streams/master/data", "lmmx/range-streams/raw/master/data")
WIKIMEDIA = (
    "wikipedia/commons/thumb/e/e9/Georges_September_19_1998_1745Z.png/"
    "480px-Georges_September_19_1998_1745Z.png"
)

CONFTEST = f'''"""Written by scripts/compat_1x_suite.py: the hosts resolve to the local nginx."""
import os
import socket

os.environ["SSL_CERT_FILE"] = {{ca!r}}
_getaddrinfo = socket.getaddrinfo


def _local(host, port, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    return _getaddrinfo({LOCAL!r} if name in {HOSTS!r} else host, port, *args, **kwargs)


socket.getaddrinfo = _local
'''

NGINX = """worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log {work}/access.log;
  client_body_temp_path {work}/tmp;
  types {{ image/png png; text/plain txt; application/zip zip; application/x-tar tar; }}
  default_type application/octet-stream;
  server {{
    listen {local}:443 ssl;
    ssl_certificate {work}/cert.pem;
    ssl_certificate_key {work}/key.pem;
    root {work}/www;
  }}
}}
"""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def stand_in_png() -> bytes:
    rng = random.Random(1998)
    rows = []
    for y in range(480):
        row = bytearray([0])
        for x in range(480):
            row += bytes([rng.randrange(256), (x + y) & 255, (x * y) & 255, 255])
        rows.append(bytes(row))
    compressed = zlib.compress(b"".join(rows), 9)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 480, 480, 8, 6, 0, 0, 0))
    for start in range(0, len(compressed), 8192):
        out += _chunk(b"IDAT", compressed[start : start + 8192])
    return out + _chunk(b"IEND", b"")


def lay_out(checkout: Path, work: Path) -> Path:
    """The tests in ``work/suite/tests``, the files in ``work/www``; returns the suite."""
    archive = subprocess.run(
        ["git", "-C", str(checkout), "archive", TESTS_AT, "tests", "data"],
        check=True,
        capture_output=True,
    ).stdout
    upstream = work / "upstream"
    upstream.mkdir()
    subprocess.run(["tar", "-x", "-C", str(upstream)], input=archive, check=True)
    for prefix in DATA_PATHS:
        shutil.copytree(upstream / "data", work / "www" / prefix)
    image = work / "www" / WIKIMEDIA
    image.parent.mkdir(parents=True)
    image.write_bytes(stand_in_png())
    suite = work / "suite"
    shutil.copytree(upstream / "tests", suite / "tests")
    (suite / "tests" / "conftest.py").write_text(CONFTEST.format(ca=str(work / "ca.pem")))
    return suite


def certificates(work: Path) -> None:
    import trustme  # noqa: PLC0415 (a test dependency, only this tool needs it)

    ca = trustme.CA()
    cert = ca.issue_cert(*HOSTS)
    ca.cert_pem.write_to_path(str(work / "ca.pem"))
    cert.private_key_pem.write_to_path(str(work / "key.pem"))
    with (work / "cert.pem").open("wb") as out:
        for pem in cert.cert_chain_pems:
            out.write(pem.bytes())


def start_nginx(work: Path) -> subprocess.Popen[bytes]:
    (work / "tmp").mkdir()
    config = work / "nginx.conf"
    config.write_text(NGINX.format(work=work, local=LOCAL))
    nginx = subprocess.Popen(["nginx", "-c", str(config), "-p", str(work)])
    deadline = time.monotonic() + 10
    while not (work / "nginx.pid").exists():
        if nginx.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"nginx did not start: {(work / 'error.log').read_text()}")
        time.sleep(0.05)
    return nginx


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--src", type=Path, default=REPO / "src")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rs-1x-suite-") as temp:
        work = Path(temp)
        work.chmod(0o755)  # nginx's workers run unprivileged
        suite = lay_out(args.checkout.resolve(), work)
        certificates(work)
        nginx = start_nginx(work)
        try:
            env = {**os.environ, "PYTHONPATH": str(args.src.resolve())}
            command = [
                args.python, "-m", "pytest", "tests", "-p", "no:cacheprovider",
                "--continue-on-collection-errors", "-q", "-rfE", "--timeout", "120",
                *args.pytest_args,
            ]  # fmt: skip
            return subprocess.run(command, cwd=suite, env=env, check=False).returncode
        finally:
            nginx.send_signal(signal.SIGTERM)
            nginx.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
