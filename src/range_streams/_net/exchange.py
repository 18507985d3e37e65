"""HTTP/1.1 framing for range-streams' own transport, without I/O.

``Exchange`` is one request and its response on one connection. A body-less request
and a response head of the common strict shape are written and read by ``heads``;
anything else (a request body, 1xx, obsolete folding, a head framing its body by chunks
or by the connection's close) goes to h11 from its first byte, and h11 then reads that
body too. A body with a Content-Length (every 206 we ask for) is counted here, so its
bytes go from the socket to the caller in the pieces the kernel hands over, rather than
through an h11 event per 64 KiB.

Its work is stated as steps (``head_steps``, ``read_steps``, ``readinto_steps``): a
generator yields ``SocketSendAll``/``SocketRecv``/``SocketRecvInto`` (socket operations,
not the flows' ``Send``/``Receive`` commands) and receives their results, and each
transport runs the steps on its connection with a loop of a few lines (``_drive`` in
``sync_transport``, ``_adrive`` in ``async_transport``). ``done`` and ``reusable`` say
when the response has ended and whether its connection may serve another.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import h11
import httpx

from .heads import (
    Head,
    fields_say_close,
    parse_response_head,
    says_close,
    write_request_head,
)

__all__ = [
    "MAX_HEAD",
    "Exchange",
    "SocketRecv",
    "SocketRecvInto",
    "SocketSendAll",
    "Steps",
    "head_too_long",
    "incomplete_body",
    "no_response",
]

HEAD_READ = 64 * 1024  # bytes asked of the socket while the head is incomplete
# The most bytes a response head may take (status line to blank line, 1xx heads before
# it included): httpcore's limit. Configurable per client (ClientOptions.max_head_bytes).
MAX_HEAD = 100 * 1024
_BLANK_LINE = re.compile(rb"\n\r?\n")  # where a head ends, as h11 finds it
QUICKACK_BYTES = 256 * 1024  # body bytes during which every read re-arms TCP_QUICKACK
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class SocketSendAll:
    """Write all of ``data``."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SocketRecv:
    """Read at most ``size`` bytes (``b""``: the peer closed); ``arm``: TCP_QUICKACK first;
    ``owed``: the peer owes at least ``size`` more bytes (a counted body), so the socket
    may wait for all of them before waking the reader (``SO_RCVLOWAT``)."""

    size: int
    arm: bool = True
    owed: bool = False


@dataclass(frozen=True, slots=True)
class SocketRecvInto:
    """Read into ``view``: the count (0: the peer closed); ``owed`` as for ``SocketRecv``."""

    view: memoryview
    arm: bool = True
    owed: bool = False


R = TypeVar("R")
# What the sync and async connections share: a generator that yields the socket
# operations it needs and receives their results, so each driver is a loop of a few lines.
Steps = Generator[SocketSendAll | SocketRecv | SocketRecvInto, Any, R]


def head_too_long(limit: int) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"the response head is longer than {limit} bytes")


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
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        max_head: int = MAX_HEAD,
    ) -> None:
        self.method = method
        self.max_head = max_head
        self._request = (method, target, headers, body)
        outgoing = None if body else write_request_head(method, target, headers)
        self._h11: h11.Connection | None = None
        if outgoing is None:  # not the simple shape: h11 writes it (or says what is wrong)
            self._h11, outgoing = _h11_client(method, target, headers, body, max_head=max_head)
        self.outgoing: bytes = outgoing
        self.head: Head | None = None
        self.done = False
        self.reusable = False
        self.received_any = False  # a byte of the response arrived (retrying is unsafe)
        self._length: int | None = None  # Content-Length framing: counted here
        self._remaining = 0
        self._pending = b""  # body bytes that came with the head
        self._keep_alive = False
        self._head_bytes = bytearray()  # the head so far, while it is read here
        self._searched = 0  # where the search for its end resumes
        self._head_via_h11 = False
        self._h11_head_bytes = 0  # bytes handed to h11 before its final head

    # -- the head -------------------------------------------------------------------

    def receive_head(self, data: bytes) -> Head | None:
        """Feed bytes read while the head is incomplete (``b""`` = the peer closed).

        The head's end is found here for every response, as h11 finds it (a blank line,
        CRLF or bare LF), so its size limit is one number whatever the segmentation: a
        head longer than ``max_head`` bytes is refused, however it arrived. A complete
        head of the strict shape (CRLF lines, one Content-Length or none) is read by
        ``heads``; any other goes to h11 whole, from its first byte.
        """
        self.received_any = self.received_any or bool(data)
        if self._head_via_h11:
            return self._h11_head(data, closed=not data)
        buffer = self._head_bytes
        buffer += data
        match = _BLANK_LINE.search(buffer, self._searched)
        if match is None:
            if len(buffer) > self.max_head:
                raise head_too_long(self.max_head)
            if data:
                self._searched = max(0, len(buffer) - 2)
                return None
            return self._to_h11(buffer, closed=True)  # closed mid-head: h11 says how
        end = match.end()
        if end > self.max_head:
            raise head_too_long(self.max_head)
        head_bytes = buffer[:end]
        strict = head_bytes.endswith(b"\r\n\r\n") and head_bytes.count(b"\n") == (
            head_bytes.count(b"\r\n")
        )
        parsed = parse_response_head(bytes(buffer[: end - 2])) if strict else None
        if parsed is not None and (parsed[1] is not None or self._bodiless(parsed[0])):
            head, length = parsed  # a counted body or none: no close-delimited framing
            self._start_body(head, length, bytes(buffer[end:]), self._fast_keep_alive(head))
            return head
        return self._to_h11(buffer, closed=not data)

    def _to_h11(self, buffer: bytearray, *, closed: bool) -> Head | None:
        """Anything but the strict shape is h11's to read, from the first byte on."""
        self._head_via_h11 = True
        if self._h11 is None:
            self._h11, _ = _h11_client(*self._request, max_head=self.max_head)
        self._head_bytes = bytearray()
        return self._h11_head(bytes(buffer), closed=closed)

    def _fast_keep_alive(self, head: Head) -> bool:
        # h11's rule: both sides HTTP/1.1 and neither says "Connection: close".
        if head.fields is not None:
            closing = fields_say_close(head.fields)
        else:
            closing = says_close(head.headers)
        return head.http_version == b"1.1" and not closing and not says_close(self._request[2])

    def _h11_head(self, data: bytes, *, closed: bool) -> Head | None:
        assert self._h11 is not None
        self._h11_head_bytes += len(data)
        try:
            if data:
                self._h11.receive_data(data)
            if closed:
                self._h11.receive_data(b"")
            while True:
                event = self._h11.next_event()
                if event is h11.NEED_DATA:
                    if closed:
                        raise no_response()
                    if self._h11_head_bytes > self.max_head:  # heads (1xx included) so far
                        raise head_too_long(self.max_head)
                    return None
                if isinstance(event, h11.InformationalResponse):
                    continue
                if isinstance(event, h11.Response):
                    pending, _ = self._h11.trailing_data
                    if self._h11_head_bytes - len(pending) > self.max_head:
                        raise head_too_long(self.max_head)
                    head = Head(
                        event.status_code,
                        event.reason,
                        event.http_version,
                        list(event.headers.raw_items()),
                    )
                    # h11 moves our side to MUST_CLOSE when either message said "close".
                    keep_alive = self._h11.our_state is h11.DONE
                    self._start_body(head, _content_length(event), pending, keep_alive)
                    return head
                raise no_response()  # ConnectionClosed before a response
        except h11.RemoteProtocolError as exc:
            if not self.received_any:
                raise no_response() from exc
            raise httpx.RemoteProtocolError(str(exc)) from exc

    def _start_body(self, head: Head, length: int | None, pending: bytes, keep_alive: bool) -> None:
        self.head = head
        self._keep_alive = keep_alive
        if self._bodiless(head):
            self._finish(clean=not pending)
            return
        if length is not None:
            self._length = self._remaining = length
            self._pending = pending
            if length == 0:
                self._finish(clean=not pending)

    def _bodiless(self, head: Head) -> bool:
        return self.method == b"HEAD" or head.status_code in _NO_BODY_STATUSES

    def _finish(self, *, clean: bool) -> None:
        self.done = True
        self.reusable = clean and self._keep_alive

    # -- the steps both drivers run ------------------------------------------------------

    def head_steps(self) -> Steps[None]:
        """Send the request, read until the head is in."""
        yield SocketSendAll(self.outgoing)
        while self.receive_head((yield SocketRecv(HEAD_READ))) is None:
            pass

    def read_steps(self, max_bytes: int) -> Steps[bytes]:
        """At most ``max_bytes`` of the body (``b""`` at its end)."""
        piece = self.buffered(max_bytes)
        while not piece and not self.done:
            owed = self._length is not None
            piece = self.receive((yield SocketRecv(self.want(max_bytes), self.early, owed)))
        return piece

    def readinto_steps(self, view: memoryview) -> Steps[int]:
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
            got = yield SocketRecvInto(view[size:want], self.early, True)
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
        a delayed ACK (the nginx trap, see ``clients``). Past them the reader's ACKs go
        out at once anyway, and re-arming TCP_QUICKACK per read only costs: an ACK per
        segment slows a long sequential read down by a fifth on loopback."""
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
        assert self._h11 is not None  # bodies read here are only those h11 framed
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


def _h11_client(
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    *,
    max_head: int,
) -> tuple[h11.Connection, bytes]:
    """An h11 client connection that has sent the request, and the request's bytes.
    Its limit on an incomplete event (a head, a chunk header) is ``max_head``, as
    httpcore sets h11's to its own 100 KiB."""
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head)
    try:
        outgoing = connection.send(h11.Request(method=method, target=target, headers=headers))
        if body:
            outgoing += connection.send(h11.Data(data=body)) or b""
        outgoing += connection.send(h11.EndOfMessage()) or b""
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc)) from exc
    assert outgoing is not None
    return connection, outgoing


def _content_length(head: h11.Response) -> int | None:
    """The Content-Length h11 validated, unless Transfer-Encoding overrides it."""
    length: int | None = None
    for name, value in head.headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value)
    return length
