"""A real range server on 127.0.0.1 that answers late, for the tests of fetch_many's
scheduling (test_ahead, test_per_host, test_as_completed): each test subclasses
``RangeHandler`` to choose the delay and to record what arrived, and ``serving`` runs it.
Also ``PrimeLog``: every flow fetch_many primed (to check they all end closed, and in
what order items were started), and ``SendLog``: every request the client handed to the
network, recorded on the client's side, so a test knows what was sent once the batch
has returned, without waiting to see what a server receives."""

from __future__ import annotations

import contextlib
import http.server
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from range_streams._runtime import backends as _backends
from range_streams._state import item_queue as _item_queue

DATA = bytes(range(256)) * 64


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``bytes=a-b`` of ``DATA`` after ``delay()`` seconds; ``arrived()`` runs
    as a request comes in, ``answered()`` once its head is written (before the body, so
    the client cannot have the answer yet)."""

    protocol_version = "HTTP/1.1"

    def delay(self) -> float:
        return 0.0

    def arrived(self) -> None:
        pass

    def answered(self) -> None:
        pass

    def do_GET(self) -> None:
        self.arrived()
        time.sleep(self.delay())
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        assert match is not None, self.headers.get("Range")
        start, stop = int(match[1]), int(match[2]) + 1
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(DATA)}")
        self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        self.answered()
        with contextlib.suppress(ConnectionError):  # a cancelled batch has hung up
            self.wfile.write(DATA[start:stop])

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[RangeHandler]) -> Iterator[str]:
    """``handler`` on a threading server; yields the URL of its file."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/file.bin"
    finally:
        httpd.shutdown()
        httpd.server_close()


class PrimeLog(list[Any]):
    """Every ``Primed`` flow fetch_many makes, in order (monkeypatches the prime call)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__()
        prime = _item_queue.prime

        def logged_prime(client: Any, flow: Any) -> Any:
            self.append(prime(client, flow))
            return self[-1]

        monkeypatch.setattr(_item_queue, "prime", logged_prime)

    @property
    def all_closed(self) -> bool:
        return all(primed.flow.gi_frame is None for primed in self)

    @property
    def urls(self) -> list[str]:
        """The URL of each primed item's first request, in the order items were started."""
        return [primed.command.url for primed in self if primed.command is not None]


class SendLog(list[str]):
    """The URL of every request the async backend sent, in the order it sent them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__()
        send = _backends.AsyncHttpxBackend.send

        async def logged_send(backend: Any, command: Any, prepared: Any = None) -> Any:
            self.append(command.url)
            return await send(backend, command, prepared)

        monkeypatch.setattr(_backends.AsyncHttpxBackend, "send", logged_send)
