"""A fault-injection range server: an ASGI app run by uvicorn in a thread on 127.0.0.1.

Only for what real servers cannot be made to do. The app serves in-memory files at
``/f/<name>`` with ETag/Last-Modified, single, suffix, open and multi-range requests, and
honours (or, when told, ignores) If-Match, If-Unmodified-Since and If-Range. A test
scripts its misbehaviour with :meth:`FaultServer.inject` (the next requests) or
:attr:`FaultServer.always` (every request):

``close``      send ``after`` body bytes, then close the connection (FIN)
``reset``      send ``after`` body bytes, then reset it (RST, SO_LINGER 0)
``stall``      send ``after`` body bytes, then send nothing for ``seconds``
``stall_head`` send nothing at all for ``seconds``
``drop``       close the connection without answering (a stale keep-alive connection)
``trailing``   a complete answer, then ``garbage`` written after it on the same
               connection (RangeHTTPServer's ``Content-Length: 1`` + whole file, kept alive)
``headers``    replace/add response headers (``headers``; a None value removes one)
``shift``      the body is the file's bytes ``shift`` further on (the header is right)
``garbage``    the body is ``garbage`` (e.g. a broken multipart body)
``chunked``    no Content-Length: the body goes chunked, ``extra`` bytes too many
``raw``        the answer written straight to the socket, bypassing h11's checks (for
               headers h11 refuses to send), then the connection closed
``then``       a callable run once the response is done (e.g. replace the file)

Every request is logged (method, path, headers, client address) in :attr:`log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HOST = "127.0.0.1"
CHUNK = 16 * 1024
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


@dataclass
class Version:
    data: bytes
    etag: str | None
    last_modified: str | None


@dataclass
class Fault:
    kind: str = "none"
    after: int = 0
    seconds: float = 30.0
    headers: dict[str, str | None] = field(default_factory=dict)
    shift: int = 0
    garbage: bytes = b""
    extra: int = 0
    then: Callable[[], None] | None = None


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    client: tuple[str, int]

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


# uvicorn hides the transport from the app; this protocol publishes it by client address,
# so a fault can reset or write past a response on the very connection it arrived on.
_TRANSPORTS: dict[tuple[str, int], asyncio.Transport] = {}


class _Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        if peer is not None:
            _TRANSPORTS[(peer[0], peer[1])] = transport

    def connection_lost(self, exc: Exception | None) -> None:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        if peer is not None:
            _TRANSPORTS.pop((peer[0], peer[1]), None)
        super().connection_lost(exc)


class FaultServer:
    def __init__(self) -> None:
        self.files: dict[str, Version] = {}
        self.log: list[Logged] = []
        self.script: deque[Fault | None] = deque()
        self.always: Fault | None = None
        self.honour_if_match = True
        self.honour_if_range = True
        self.multipart = True
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- test-facing ---------------------------------------------------------------------------
    def reset(self) -> None:
        self.files.clear()
        self.log.clear()
        self.script.clear()
        self.always = None
        self.honour_if_match = self.honour_if_range = self.multipart = True

    def put(
        self,
        name: str,
        data: bytes,
        etag: str | None = '"v1"',
        last_modified: str | None = LAST_MODIFIED,
    ) -> str:
        self.files[name] = Version(data, etag, last_modified)
        return self.url(name)

    def replace(
        self,
        name: str,
        data: bytes,
        etag: str | None = '"v2"',
        last_modified: str | None = "Tue, 02 Jan 2024 00:00:00 GMT",
    ) -> None:
        self.files[name] = Version(data, etag, last_modified)

    def inject(self, *faults: Fault | None) -> None:
        """Misbehave on the next requests, one fault each (None: answer normally)."""
        self.script.extend(faults)

    def url(self, name: str) -> str:
        return f"http://{HOST}:{self.port}/f/{name}"

    @property
    def ranges_sent(self) -> list[str | None]:
        return [entry.range for entry in self.log]

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FaultServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=_Protocol,  # type: ignore[arg-type]
            interface="asgi3",
            lifespan="off",
            log_level="critical",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fault server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    # -- the app --------------------------------------------------------------------------------
    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = (scope["client"][0], scope["client"][1])
        path = scope["path"]
        self.log.append(Logged(scope["method"], path, headers, client))
        fault = self.script.popleft() if self.script else self.always
        fault = fault or Fault()
        transport = _TRANSPORTS.get(client)
        try:
            await self._answer(scope, send, path, headers, fault, transport)
        finally:
            if fault.then is not None:
                fault.then()

    async def _answer(
        self,
        scope: Scope,
        send: Send,
        path: str,
        headers: dict[str, str],
        fault: Fault,
        transport: asyncio.Transport | None,
    ) -> None:
        if fault.kind == "drop":
            assert transport is not None
            transport.close()
            return
        if fault.kind == "stall_head":
            await self._stall(fault.seconds, transport)
            return
        if path.startswith("/loop/"):
            await _respond(send, 302, {"location": path}, b"")
            return
        version = self.files.get(path.removeprefix("/f/"))
        if version is None:
            await _respond(send, 404, {"content-length": "9"}, b"not found")
            return
        status, out, body = self._select(version, headers)
        if fault.shift:
            start = _start_of(out.get("content-range"))
            body = version.data[start + fault.shift : start + fault.shift + len(body)]
        if fault.kind == "garbage":
            body = fault.garbage
            out["content-length"] = str(len(body))
        for name, value in fault.headers.items():
            if value is None:
                out.pop(name, None)
            else:
                out[name] = value
        if fault.kind == "chunked":
            out.pop("content-length", None)
            body += bytes(fault.extra)
        if fault.kind == "raw":
            assert transport is not None
            await self._raw(transport, status, out, body)
            return
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out.items()],
            }
        )
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        if fault.kind in ("close", "reset", "stall"):
            body = body[: fault.after]
        for i in range(0, len(body), CHUNK):
            await send(
                {"type": "http.response.body", "body": body[i : i + CHUNK], "more_body": True}
            )
        if fault.kind == "close":
            await asyncio.sleep(0.02)  # let the bytes leave before the FIN
            return  # uvicorn closes a connection whose response was left incomplete
        if fault.kind == "reset":
            await asyncio.sleep(0.02)
            assert transport is not None
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            return
        if fault.kind == "stall":
            await self._stall(fault.seconds, transport)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if fault.kind == "trailing":
            assert transport is not None
            transport.write(fault.garbage)  # past the declared end, on a kept-alive connection

    async def _raw(
        self, transport: asyncio.Transport, status: int, out: dict[str, str], body: bytes
    ) -> None:
        """Headers h11 would refuse to send (absurd lengths), written straight to the socket."""
        head = f"HTTP/1.1 {status} Whatever\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out.items())
        transport.write((head + "connection: close\r\n\r\n").encode("latin-1") + body)
        transport.close()
        await asyncio.sleep(0.05)  # uvicorn sees the disconnect: it adds no 500 of its own

    async def _stall(self, seconds: float, transport: asyncio.Transport | None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping:
            if transport is not None and transport.is_closing():
                return
            await asyncio.sleep(0.02)
        if transport is not None:
            transport.close()

    def _select(
        self, version: Version, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        data = version.data
        out: dict[str, str] = {"content-type": "application/octet-stream"}
        if version.etag is not None:
            out["etag"] = version.etag
        if version.last_modified is not None:
            out["last-modified"] = version.last_modified
        if self.honour_if_match:
            if_match = headers.get("if-match")
            if if_match is not None and if_match not in (version.etag, "*"):
                return _plain(412, out)
            since = headers.get("if-unmodified-since")
            if since is not None and since != version.last_modified:
                return _plain(412, out)
        spec = headers.get("range")
        if_range = headers.get("if-range")
        if (
            self.honour_if_range
            and if_range is not None
            and if_range not in (version.etag, version.last_modified)
        ):
            spec = None  # RFC 9110: a failed If-Range means the whole file
        if spec is None or not spec.startswith("bytes="):
            out["content-length"] = str(len(data))
            return 200, out, data
        spans = [_parse_spec(s, len(data)) for s in spec[len("bytes=") :].split(",")]
        satisfiable = [s for s in spans if s is not None]
        if not satisfiable:
            out["content-range"] = f"bytes */{len(data)}"
            return _plain(416, out)
        if len(spans) == 1:
            start, stop = satisfiable[0]
            out["content-range"] = f"bytes {start}-{stop - 1}/{len(data)}"
            out["content-length"] = str(stop - start)
            return 206, out, data[start:stop]
        if not self.multipart:
            return _plain(416, out)
        boundary = "fault-boundary"
        body = bytearray()
        for start, stop in satisfiable:
            body += (
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Range: bytes {start}-{stop - 1}/{len(data)}\r\n\r\n"
            ).encode("latin-1")
            body += data[start:stop]
        body += f"\r\n--{boundary}--\r\n".encode("latin-1")
        out["content-type"] = f"multipart/byteranges; boundary={boundary}"
        out["content-length"] = str(len(body))
        return 206, out, bytes(body)


def _plain(status: int, out: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    out["content-length"] = "0"
    out.pop("content-type", None)
    return status, out, b""


def _parse_spec(spec: str, size: int) -> tuple[int, int] | None:
    first, _, last = spec.strip().partition("-")
    if first == "":
        start, stop = max(size - int(last), 0), size
    else:
        start = int(first)
        stop = min(int(last) + 1, size) if last else size
    return (start, stop) if start < size and start < stop else None


def _start_of(content_range: str | None) -> int:
    if content_range is None or not content_range.startswith("bytes ") or "*" in content_range:
        return 0
    return int(content_range[len("bytes ") :].split("-", 1)[0])


async def _respond(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    if "content-length" not in headers:
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def running() -> Any:
    server = FaultServer().start()
    try:
        yield server
    finally:
        server.stop()
