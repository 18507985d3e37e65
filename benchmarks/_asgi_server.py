"""Fallback benchmark server when nginx is missing: uvicorn + Starlette StaticFiles.

Usage: python _asgi_server.py ROOT PORT ACCESS_LOG

Writes the same tab-separated access log as the nginx template: request line, status,
body bytes sent, Range header. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from starlette.staticfiles import StaticFiles


def build_app(root: str, log_path: str) -> Any:
    static = StaticFiles(directory=root)
    log = open(log_path, "a", buffering=1, encoding="latin-1")  # noqa: SIM115 (lives with the app)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await static(scope, receive, send)
            return
        status = 0
        sent = 0

        async def counting_send(message: dict[str, Any]) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await static(scope, receive, counting_send)
        finally:
            path = scope.get("raw_path") or scope["path"].encode()
            query = scope.get("query_string") or b""
            target = path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
            headers = dict(scope.get("headers") or [])
            rng = headers.get(b"range", b"").decode("latin-1") or "-"
            line = f"{scope['method']} {target} HTTP/{scope['http_version']}"
            log.write(f"{line}\t{status}\t{sent}\t{rng}\n")

    return app


def main() -> None:
    root, port, log_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    uvicorn.run(
        build_app(root, log_path),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
