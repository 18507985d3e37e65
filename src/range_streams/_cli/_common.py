"""What every command shares: the console, the traced httpx client, exit codes and errors."""

from __future__ import annotations

import contextlib
import enum
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn, Protocol

import httpx

from .._core.errors import (
    HTTPStatusError,
    InvalidRangeError,
    InvalidURLError,
    RangeNotSupportedError,
    RangeStreamError,
    RetriesExhaustedError,
)
from .._net.clients import make_client as make_library_client
from .._net.options import ClientOptions
from ..codecs import MemberNotFoundError

__all__ = [
    "Console",
    "ExitCode",
    "TraceLog",
    "TracedRequest",
    "UsageError",
    "exit_code_for",
    "make_client",
    "client_options",
    "message_for",
    "sigterm_as_interrupt",
]


class ExitCode(enum.IntEnum):
    """The codes ``range-streams`` exits with (documented in docs/cli.md)."""

    OK = 0
    ERROR = 1  # anything below does not cover: unreadable archive, untrustworthy response, ...
    USAGE = 2  # bad arguments: unknown option, bad URL, bad --range
    NETWORK = 3  # could not connect, timed out, or transient faults outlasted the retries
    HTTP_STATUS = 4  # the server answered with an error status (404, 403, 500, ...)
    NO_RANGES = 5  # the server does not support range requests
    NOT_FOUND = 6  # no such member in the archive
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


class UsageError(Exception):
    """A command line that cannot be carried out as given (exit code 2)."""


class BytesOut(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


@dataclass
class Console:
    """Where a command writes: text to ``out``, diagnostics to ``err``; ``out_bytes`` for
    ``cat``. Swapped for buffers by ``demo`` and the tests."""

    out: IO[str] = field(default_factory=lambda: sys.stdout)
    err: IO[str] = field(default_factory=lambda: sys.stderr)

    @property
    def out_bytes(self) -> BytesOut:
        buffer: BytesOut | None = getattr(self.out, "buffer", None)
        return buffer if buffer is not None else _TextAsBytes(self.out)

    def print(self, *parts: object) -> None:
        print(*parts, file=self.out)

    def warn(self, message: str) -> None:
        print(f"range-streams: {message}", file=self.err)


class _TextAsBytes:
    """Bytes written to a text stream that has no ``buffer`` (a StringIO in tests)."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text

    def write(self, data: bytes) -> int:
        self._text.write(data.decode("latin-1"))
        return len(data)

    def flush(self) -> None:
        self._text.flush()


@dataclass(frozen=True, slots=True)
class TracedRequest:
    method: str
    url: str
    range: str | None
    status: int
    headers: httpx.Headers

    @property
    def content_range(self) -> str | None:
        value: str | None = self.headers.get("content-range")
        return value

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.isascii() and value.isdigit() else None

    def line(self) -> str:
        """One line, as ``--trace`` prints it."""
        length = self.content_length
        return (
            f"{self.method} {self.url} Range: {self.range or '-'}"
            f" -> {self.status} Content-Range: {self.content_range or '-'}"
            f" ({'?' if length is None else f'{length:,}'} byte{'' if length == 1 else 's'})"
        )


class TraceLog:
    """An httpx response hook: records every response, and prints it when tracing.

    Bytes are the declared ``Content-Length`` (the hook runs when the headers arrive,
    before the body is read); for a range response that is the range's length.
    """

    def __init__(self, stream: IO[str] | None = None, prefix: str = "trace: ") -> None:
        self.stream = stream
        self.prefix = prefix
        self.records: list[TracedRequest] = []
        self._lock = threading.Lock()  # `get` answers on several threads

    def __call__(self, response: httpx.Response) -> None:
        request = response.request
        record = TracedRequest(
            method=request.method,
            url=str(request.url),
            range=request.headers.get("range"),
            status=response.status_code,
            headers=response.headers,
        )
        with self._lock:
            self.records.append(record)
            if self.stream is not None:
                print(self.prefix + record.line(), file=self.stream, flush=True)

    def last(self) -> TracedRequest | None:
        with self._lock:
            return self.records[-1] if self.records else None


def make_client(
    trace: TraceLog, connections: int = 10, options: ClientOptions | None = None
) -> httpx.Client:
    """The client every command passes in: the library's own (immune to nginx's
    sendfile/tcp_nopush 40 ms stall), built from the command line's request options
    (``-H``, ``--user``, ``--timeout``, ...), plus the trace hook."""
    limits = httpx.Limits(max_connections=max(connections, 10))
    client = make_library_client(options, limits=limits)
    client.event_hooks = {"response": [trace]}
    return client


def client_options(args: Any) -> ClientOptions:
    """The request options given on the command line."""
    headers: dict[str, str] = {}
    for line in getattr(args, "header", None) or []:
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or name != name.strip():
            raise UsageError(f"-H takes 'Name: value', not {line!r}")
        headers[name] = value.strip()
    auth = None
    user = getattr(args, "user", None)
    if user is not None:
        name, colon, password = user.partition(":")
        if not colon:
            raise UsageError(f"--user takes USER:PASSWORD, not {user!r}")
        auth = (name, password)
    settings: dict[str, Any] = {"headers": headers, "auth": auth}
    if getattr(args, "timeout", None) is not None:
        settings["timeout"] = args.timeout
    if getattr(args, "insecure", False):
        settings["verify"] = False
    elif getattr(args, "cacert", None) is not None:
        settings["verify"] = args.cacert
    if getattr(args, "no_redirects", False):
        settings["follow_redirects"] = False
    return ClientOptions(**settings)


# Most specific first: HTTPStatusError is both ours and httpx's; RetriesExhaustedError is
# a RangeStreamError whose cause is the network.
_CODES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], ExitCode], ...] = (
    ((UsageError, InvalidURLError, InvalidRangeError, httpx.InvalidURL), ExitCode.USAGE),
    (httpx.UnsupportedProtocol, ExitCode.USAGE),
    (MemberNotFoundError, ExitCode.NOT_FOUND),
    (RangeNotSupportedError, ExitCode.NO_RANGES),
    ((HTTPStatusError, httpx.HTTPStatusError), ExitCode.HTTP_STATUS),
    ((RetriesExhaustedError, httpx.TransportError), ExitCode.NETWORK),
    (KeyboardInterrupt, ExitCode.INTERRUPTED),
)


def exit_code_for(error: BaseException) -> ExitCode:
    for kinds, code in _CODES:
        if isinstance(error, kinds):
            return code
    return ExitCode.ERROR


def message_for(error: BaseException, url: str | None = None) -> str:
    """One line saying what went wrong, without a traceback."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, RangeNotSupportedError):
        return f"the server does not support range requests: {_one_line(error)}"
    if isinstance(error, httpx.TransportError) and not isinstance(error, httpx.UnsupportedProtocol):
        kind = type(error).__name__
        where = f" {url}" if url else ""
        return f"network error ({kind}) reaching{where}: {_one_line(error) or 'no detail'}"
    if isinstance(error, RangeStreamError | OSError | ValueError | UsageError):
        return _one_line(error) or type(error).__name__
    return f"{type(error).__name__}: {_one_line(error)}"


def _one_line(error: Any) -> str:
    return " ".join(str(error).split())


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM (``kill PID``) stops a long command the way Ctrl-C does:
    ``serve`` shuts down cleanly, ``get`` records how far each connection got."""

    def handler(signum: int, frame: Any) -> NoReturn:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (the demo runs commands in-process)
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
