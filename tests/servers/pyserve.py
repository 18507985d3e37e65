# ruff: noqa: PLC0415  (each server imports only its own framework, in its own process)
"""Launcher for the Python HTTP servers, run as its own process by launch.py:

    python tests/servers/pyserve.py KIND --host 127.0.0.1 --port N --docroot DIR --access-log F

Each server serves DIR at /files/ and answers /redirect/<name> with a 302 to /files/<name>,
using the framework's own static-file machinery (that is what is under test). Each writes an
access log line per request: ``method<TAB>target<TAB>status<TAB>range-or-dash``.

Self-contained on purpose (run by path, not imported as part of the test package).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


class AccessLog:
    def __init__(self, path: str) -> None:
        self._fh = open(path, "a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def write(self, method: str, target: str, status: int, rng: str | None) -> None:
        line = f"{method}\t{target}\t{status}\t{rng or '-'}\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()


# ---------------------------------------------------------------------------------------------
def serve_starlette(host: str, port: int, docroot: Path, log: AccessLog) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def redirect(request: Any) -> RedirectResponse:
        return RedirectResponse(f"/files/{request.path_params['name']}", status_code=302)

    app = Starlette(
        routes=[
            Route("/redirect/{name:path}", redirect, methods=["GET", "HEAD"]),
            Mount("/files", app=StaticFiles(directory=docroot)),
        ]
    )

    async def logged(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status = 0

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            headers = dict(scope["headers"])
            rng = headers.get(b"range")
            target = scope["raw_path"].decode("latin-1")
            if scope.get("query_string"):
                target += "?" + scope["query_string"].decode("latin-1")
            log.write(scope["method"], target, status, rng.decode("latin-1") if rng else None)

    uvicorn.run(logged, host=host, port=port, log_level="warning", access_log=False)


# ---------------------------------------------------------------------------------------------
def serve_werkzeug(host: str, port: int, docroot: Path, log: AccessLog) -> None:
    from werkzeug.exceptions import HTTPException, NotFound
    from werkzeug.serving import WSGIRequestHandler, run_simple
    from werkzeug.utils import redirect, send_from_directory
    from werkzeug.wrappers import Request

    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Any:
        try:
            if request.path.startswith("/files/"):
                # conditional=True is the default: ETag, If-Range and Range handling.
                return send_from_directory(docroot, request.path[len("/files/") :], request.environ)
            if request.path.startswith("/redirect/"):
                return redirect("/files/" + request.path[len("/redirect/") :], code=302)
            raise NotFound()
        except HTTPException as exc:
            return exc

    class Handler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            log.write(
                self.command,
                self.path,
                int(getattr(code, "value", code)),
                self.headers.get("Range"),
            )

        def log(self, type: str, message: str, *args: Any) -> None:
            if type == "error":
                super().log(type, message, *args)

    run_simple(host, port, app, threaded=True, request_handler=Handler)


# ---------------------------------------------------------------------------------------------
def serve_aiohttp(host: str, port: int, docroot: Path, log: AccessLog) -> None:
    import logging

    from aiohttp import web
    from aiohttp.abc import AbstractAccessLogger

    class Logger(AbstractAccessLogger):
        def log(self, request: Any, response: Any, time: float) -> None:
            log.write(
                request.method, request.raw_path, response.status, request.headers.get("Range")
            )

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"/files/{request.match_info['name']}")

    app = web.Application()
    app.router.add_get("/redirect/{name:.*}", redirect)
    app.router.add_static("/files", docroot)
    logger = logging.getLogger("rs.access")
    logger.setLevel(logging.INFO)
    web.run_app(
        app,
        host=host,
        port=port,
        print=None,
        access_log=logger,
        access_log_class=Logger,
        handle_signals=True,
    )


# ---------------------------------------------------------------------------------------------
def serve_tornado(host: str, port: int, docroot: Path, log: AccessLog) -> None:
    import asyncio

    from tornado.web import Application, RedirectHandler, RequestHandler, StaticFileHandler

    def log_function(handler: RequestHandler) -> None:
        req = handler.request
        log.write(req.method or "", req.uri or "", handler.get_status(), req.headers.get("Range"))

    app = Application(
        [
            (r"/files/(.*)", StaticFileHandler, {"path": str(docroot)}),
            (r"/redirect/(.*)", RedirectHandler, {"url": "/files/{0}", "permanent": False}),
        ],
        log_function=log_function,
    )

    async def main() -> None:
        app.listen(port, address=host)
        await asyncio.Event().wait()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
def serve_twisted(host: str, port: int, docroot: Path, log: AccessLog) -> None:
    from twisted.internet import reactor
    from twisted.web import resource, server, static, util

    class Redirects(resource.Resource):
        def getChild(self, path: bytes, request: Any) -> resource.Resource:
            rest = b"/".join([path, *request.postpath])
            return util.Redirect(b"/files/" + rest)

    class Root(resource.Resource):
        pass

    root = Root()
    root.putChild(b"files", static.File(str(docroot)))
    root.putChild(b"redirect", Redirects())

    class Site(server.Site):
        def log(self, request: Any) -> None:
            rng = request.getHeader(b"range")
            log.write(
                request.method.decode("latin-1"),
                request.uri.decode("latin-1"),
                int(request.code),
                rng.decode("latin-1") if rng else None,
            )

    reactor.listenTCP(port, Site(root), interface=host)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
def _stdlib_handler(base: type, docroot: Path, log: AccessLog) -> type:
    """Serve docroot under /files/ and redirect /redirect/* with an http.server handler."""
    import urllib.parse

    class Handler(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(docroot), **kwargs)

        def _redirect(self) -> bool:
            path = urllib.parse.urlsplit(self.path).path
            if not path.startswith("/redirect/"):
                return False
            self.send_response(302)
            self.send_header("Location", "/files/" + path[len("/redirect/") :])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def do_GET(self) -> None:
            if not self._redirect():
                super().do_GET()

        def do_HEAD(self) -> None:
            if not self._redirect():
                super().do_HEAD()

        def translate_path(self, path: str) -> str:
            split = urllib.parse.urlsplit(path).path
            if not split.startswith("/files/"):
                return str(docroot / "\0nonexistent")
            return str(super().translate_path(path[len("/files") :]))

        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            log.write(
                self.command,
                self.path,
                int(getattr(code, "value", code)),
                self.headers.get("Range"),
            )

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _serve_stdlib(base: type, host: str, port: int, docroot: Path, log: AccessLog) -> None:
    from http.server import ThreadingHTTPServer

    httpd = ThreadingHTTPServer((host, port), _stdlib_handler(base, docroot, log))
    httpd.serve_forever()


def serve_rangehttpserver(host: str, port: int, docroot: Path, log: AccessLog) -> None:
    from RangeHTTPServer import RangeRequestHandler

    _serve_stdlib(RangeRequestHandler, host, port, docroot, log)


def serve_http_server(host: str, port: int, docroot: Path, log: AccessLog) -> None:
    from http.server import SimpleHTTPRequestHandler

    _serve_stdlib(SimpleHTTPRequestHandler, host, port, docroot, log)


SERVERS: dict[str, Callable[[str, int, Path, AccessLog], None]] = {
    "uvicorn-starlette": serve_starlette,
    "werkzeug": serve_werkzeug,
    "aiohttp": serve_aiohttp,
    "tornado": serve_tornado,
    "twisted": serve_twisted,
    "rangehttpserver": serve_rangehttpserver,
    "http.server": serve_http_server,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=sorted(SERVERS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--docroot", required=True)
    parser.add_argument("--access-log", default=os.devnull)
    args = parser.parse_args(argv)
    docroot = Path(args.docroot).resolve()
    SERVERS[args.kind](args.host, args.port, docroot, AccessLog(args.access_log))


if __name__ == "__main__":
    sys.exit(main())
