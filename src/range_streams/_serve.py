"""A local range-capable file server (uvicorn + Starlette StaticFiles), for demos and tests.

Optional: needs the ``serve`` extra. Starlette's StaticFiles answers single ranges,
multipart/byteranges, ETag/If-Range and 416 correctly, which makes it a good default.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["serve_directory"]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_directory(
    directory: str | Path, host: str = "127.0.0.1", port: int = 0, *, log: bool = False
) -> Iterator[str]:
    """Serve ``directory`` on ``host:port`` in a background thread; yields the base URL."""
    try:
        import uvicorn  # noqa: PLC0415 - optional extra, imported only when serving
        from starlette.applications import Starlette  # noqa: PLC0415
        from starlette.routing import Mount  # noqa: PLC0415
        from starlette.staticfiles import StaticFiles  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError(
            "serving needs the 'serve' extra: pip install 'range-streams[serve]'"
        ) from exc
    app = Starlette(routes=[Mount("/", app=StaticFiles(directory=str(directory)))])
    port = port or _free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="info" if log else "warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="range-streams-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the local server on {host}:{port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
