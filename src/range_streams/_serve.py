"""A local range-capable file server (uvicorn + Starlette StaticFiles), for demos and tests.

Optional: needs the ``serve`` extra. Starlette's StaticFiles answers single ranges,
multipart/byteranges, ETag/If-Range and 416 correctly, which makes it a good default.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ServedRequest", "serve_directory"]


logger = logging.getLogger("range_streams")


@dataclass(frozen=True, slots=True)
class ServedRequest:
    """One request the server answered, as ``serve --trace`` prints it."""

    method: str
    path: str
    range: str | None
    status: int
    content_range: str | None
    content_length: int | None


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _logged(app: Any, on_request: Callable[[ServedRequest], None]) -> Any:
    """Wrap an ASGI app to report each request with the headers that matter for ranges
    (uvicorn's own access log has neither Range nor Content-Range)."""

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        seen: dict[str, Any] = {"status": 0, "headers": {}}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                seen["headers"] = {k.lower(): v for k, v in message.get("headers", [])}
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            request_range = dict(scope["headers"]).get(b"range")
            headers = seen["headers"]
            length = headers.get(b"content-length")
            on_request(
                ServedRequest(
                    method=scope["method"],
                    path=scope["path"],
                    range=request_range.decode("latin-1") if request_range else None,
                    status=seen["status"],
                    content_range=(
                        headers[b"content-range"].decode("latin-1")
                        if b"content-range" in headers
                        else None
                    ),
                    content_length=int(length)
                    if length and length.isascii() and length.isdigit()
                    else None,
                )
            )

    return wrapper


@contextlib.contextmanager
def serve_directory(
    directory: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    log: bool = False,
    on_request: Callable[[ServedRequest], None] | None = None,
) -> Iterator[str]:
    """Serve ``directory`` on ``host:port`` in a background thread; yields the base URL.

    ``port=0`` picks a free port. ``on_request`` is called (on the server's thread) with a
    ``ServedRequest`` for every request answered.
    """
    try:
        import uvicorn  # noqa: PLC0415 - optional extra, imported only when serving
        from starlette.applications import Starlette  # noqa: PLC0415
        from starlette.routing import Mount  # noqa: PLC0415
        from starlette.staticfiles import StaticFiles  # noqa: PLC0415
    except ImportError as exc:
        raise RuntimeError(
            "serving needs the 'serve' extra: pip install 'range-streams[serve]'"
        ) from exc
    if not Path(directory).is_dir():
        raise NotADirectoryError(f"not a directory: {directory}")
    app: Any = Starlette(routes=[Mount("/", app=StaticFiles(directory=str(directory)))])
    if on_request is not None:
        app = _logged(app, on_request)
    port = port or _free_port(host)
    # On stop, a response still being sent (a client that asked for ``bytes=100-`` and
    # stopped reading) is cut after a second instead of holding the shutdown open.
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info" if log else "warning", access_log=log,
        timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="range-streams-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the local server on {host}:{port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            logger.warning("the local server on %s:%d did not stop within 10 s", host, port)
