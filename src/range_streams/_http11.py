"""HTTP/1.1 framing for range-streams' own transport, without I/O.

``Exchange`` is one request and its response on one connection. h11 writes the request
and parses the status line and headers (and any chunked or close-delimited body); a body
with a Content-Length — every 206 we ask for — is counted here instead, so its bytes go
from the socket to the caller in the pieces the kernel hands over. Parsing every 64 KiB
event through h11 and httpcore cost more CPU than the bytes themselves (issue 3).

The drivers in ``_wire.py`` only move bytes: they send ``outgoing``, feed what they read
to ``receive_head`` until it returns the head, then alternate ``buffered``/``want``/
``receive`` until ``done``, and put the connection back in the pool if ``reusable``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import h11
import httpx

__all__ = ["Exchange", "Recv", "RecvInto", "SendAll", "Steps", "incomplete_body", "no_response"]

HEAD_READ = 64 * 1024  # bytes asked of the socket while the head is incomplete
QUICKACK_BYTES = 256 * 1024  # body bytes during which every read re-arms TCP_QUICKACK
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class SendAll:
    """Write all of ``data``."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Recv:
    """Read at most ``size`` bytes (``b""``: the peer closed); ``arm``: TCP_QUICKACK first."""

    size: int
    arm: bool = True


@dataclass(frozen=True, slots=True)
class RecvInto:
    """Read into ``view``: the count (0: the peer closed)."""

    view: memoryview
    arm: bool = True


# What the sync and async connections share: a generator that yields the socket
# operations it needs and receives their results, so each driver is a loop of a few lines.
Steps = Generator[SendAll | Recv | RecvInto, Any, Any]


def no_response() -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError("Server disconnected without sending a response.")


def incomplete_body(received: int, expected: int) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(
        "peer closed connection without sending complete message body:"
        f" received {received} bytes, expected {expected}"
    )


class Exchange:
    """One request/response pair; feed it bytes, it says what they mean."""

    def __init__(
        self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        self.method = method
        self._h11 = h11.Connection(h11.CLIENT)
        try:
            outgoing = self._h11.send(h11.Request(method=method, target=target, headers=headers))
            if body:
                outgoing += self._h11.send(h11.Data(data=body)) or b""
            outgoing += self._h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc
        assert outgoing is not None
        self.outgoing: bytes = outgoing
        self.head: h11.Response | None = None
        self.done = False
        self.reusable = False
        self.received_any = False  # a byte of the response arrived (retrying is unsafe)
        self._length: int | None = None  # Content-Length framing: counted here
        self._remaining = 0
        self._pending = b""  # body bytes that came with the head
        self._keep_alive = False

    # -- the head -------------------------------------------------------------------

    def receive_head(self, data: bytes) -> h11.Response | None:
        """Feed bytes read while the head is incomplete (``b""`` = the peer closed)."""
        self.received_any = self.received_any or bool(data)
        try:
            self._h11.receive_data(data)
            while True:
                event = self._h11.next_event()
                if event is h11.NEED_DATA:
                    if not data:
                        raise no_response()
                    return None
                if isinstance(event, h11.InformationalResponse):
                    continue
                if isinstance(event, h11.Response):
                    self._start_body(event)
                    return event
                raise no_response()  # ConnectionClosed before a response
        except h11.RemoteProtocolError as exc:
            if not self.received_any:
                raise no_response() from exc
            raise httpx.RemoteProtocolError(str(exc)) from exc

    def _start_body(self, head: h11.Response) -> None:
        self.head = head
        # h11 moves our side to MUST_CLOSE when either message said "close" or HTTP/1.0.
        self._keep_alive = self._h11.our_state is h11.DONE
        if self.method == b"HEAD" or head.status_code in _NO_BODY_STATUSES:
            pending, _ = self._h11.trailing_data
            self._finish(clean=not pending)
            return
        length = _content_length(head)
        if length is not None:
            self._length = self._remaining = length
            self._pending, _ = self._h11.trailing_data
            if length == 0:
                self._finish(clean=not self._pending)

    def _finish(self, *, clean: bool) -> None:
        self.done = True
        self.reusable = clean and self._keep_alive

    # -- the steps both drivers run ------------------------------------------------------

    def head_steps(self) -> Steps:
        """Send the request, read until the head is in."""
        yield SendAll(self.outgoing)
        while self.receive_head((yield Recv(HEAD_READ))) is None:
            pass

    def read_steps(self, max_bytes: int) -> Steps:
        """At most ``max_bytes`` of the body (``b""`` at its end)."""
        piece = self.buffered(max_bytes)
        while not piece and not self.done:
            piece = self.receive((yield Recv(self.want(max_bytes), self.early)))
        return piece

    def readinto_steps(self, view: memoryview) -> Steps:
        """Body bytes into ``view`` (a counted body), filled whole where the body allows:
        one call per caller's read. The count, 0 at the end."""
        if self.done:
            return 0
        pending = self.buffered(len(view))
        if pending:
            view[: len(pending)] = pending
            return len(pending)
        want, size = self.want(len(view)), 0
        while size < want:
            got = yield RecvInto(view[size:want], self.early)
            self.received(got)
            size += got
        return size

    # -- the body ---------------------------------------------------------------------

    def buffered(self, max_bytes: int) -> bytes:
        """Body bytes available without reading the socket (``b""`` if none)."""
        if self.done:
            return b""
        if self._length is None:
            return self._h11_events(b"", feed=False)
        if not self._pending:
            return b""
        size = min(max_bytes, self._remaining)
        piece = self._pending if len(self._pending) <= size else self._pending[:size]
        self._pending = self._pending[len(piece) :]
        self._count(len(piece))
        return piece

    def want(self, max_bytes: int) -> int:
        """How many bytes to ask the socket for: never past a counted body's end."""
        if self._length is None:
            return HEAD_READ
        return min(max_bytes, self._remaining)

    def receive(self, data: bytes) -> bytes:
        """Body bytes out of ``data`` just read (``b""`` = the peer closed)."""
        if self._length is None:
            return self._h11_events(data, feed=True)
        if not data:
            raise incomplete_body(self._length - self._remaining, self._length)
        if len(data) > self._remaining:  # only if the driver asked for more than ``want``
            self._pending, data = data[self._remaining :], data[: self._remaining]
        self._count(len(data))
        return data

    @property
    def early(self) -> bool:
        """Still in the first QUICKACK_BYTES of the body: where nginx's tail can wait for
        a delayed ACK (the nginx trap, see ``_transport``). Past them the reader's ACKs go
        out at once anyway, and re-arming TCP_QUICKACK per read only costs (an ACK per
        segment: ~20% of a 1 GiB read's time on loopback)."""
        return self._length is None or self._length - self._remaining < QUICKACK_BYTES

    @property
    def counted(self) -> bool:
        """A Content-Length body: its bytes may be read straight into a caller's buffer."""
        return self._length is not None

    def received(self, size: int) -> None:
        """``size`` body bytes were read straight into a caller's buffer (0 = the peer
        closed). Only for a counted body, asked for at most ``want`` bytes."""
        assert self._length is not None and size <= self._remaining
        if size == 0:
            raise incomplete_body(self._length - self._remaining, self._length)
        self._count(size)

    def _count(self, size: int) -> None:
        self._remaining -= size
        if self._remaining == 0:
            # Bytes beyond the body mean the next response would start mid-stream.
            self._finish(clean=not self._pending)

    def _h11_events(self, data: bytes, *, feed: bool) -> bytes:
        pieces: list[bytes] = []
        try:
            if feed:
                self._h11.receive_data(data)
            while True:
                event = self._h11.next_event()
                if isinstance(event, h11.Data):
                    pieces.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    closed = feed and not data
                    self._finish(
                        clean=not closed
                        and self._h11.their_state is h11.DONE
                        and not self._h11.trailing_data[0]
                    )
                    break
                elif event is h11.NEED_DATA:
                    if feed and not data:  # the peer closed mid-body
                        raise httpx.RemoteProtocolError(
                            "peer closed connection without sending complete message body"
                        )
                    break
                else:  # ConnectionClosed after a close-delimited body ended
                    self._finish(clean=False)
                    break
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc
        return b"".join(pieces)


def _content_length(head: h11.Response) -> int | None:
    """The Content-Length h11 validated, unless Transfer-Encoding overrides it."""
    length: int | None = None
    for name, value in head.headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value)
    return length
