"""Fetch what a URL answers when listed: a page of links, or the headers of a file.

One plain GET (no ``Range``: index pages are generated and ignore it anyway). A file's
body is never read: the answer is closed once its headers, or its first chunk when it
says no Content-Type, show it is not a page of links. A page is read up to ``limit``
bytes; a longer one is an error, not a truncated listing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._core.errors import RangeResponseError
from .._core.listing import is_listing
from .._core.protocol import RemoteState, check_encoding
from .commands import Flow, Receive
from .requests import DRAIN_LIMIT, finish, headers_of, send, status_error

__all__ = ["Page", "fetch_page"]

PAGE_LIMIT = 32 << 20  # an index page longer than this is refused


@dataclass(frozen=True, slots=True)
class Page:
    """What a URL answered: ``text`` is the page when it is a listing, else None (a
    file, whose ``size`` is its Content-Length when it said one)."""

    text: str | None
    size: int | None
    content_type: str | None


def fetch_page(remote: RemoteState, limit: int = PAGE_LIMIT) -> Flow[Page]:
    wire = yield from send(remote, {"accept-encoding": "identity"})
    if wire.response.status_code != 200:
        yield from finish(wire, DRAIN_LIMIT + 1)
        raise status_error(wire, remote, "a listing")
    headers = headers_of(wire)
    content_type = headers.get("content-type")
    length = headers.get("content-length", "")
    size = int(length) if length.isascii() and length.isdigit() else None
    first = b""
    if content_type is None:
        first = yield Receive(wire)  # says nothing: look at what it starts with
    if not is_listing(content_type, first):
        yield from finish(wire, DRAIN_LIMIT + 1)  # a file: its body is not wanted
        return Page(None, size, content_type)
    try:
        check_encoding(headers, remote.url)
    except Exception:
        yield from finish(wire, DRAIN_LIMIT + 1)
        raise
    chunks = [first]
    received = len(first)
    while chunk := (yield Receive(wire)):
        received += len(chunk)
        if received > limit:
            yield from finish(wire, DRAIN_LIMIT + 1)
            raise RangeResponseError(
                f"{remote.url}: the index page is larger than {limit} bytes", url=remote.url
            )
        chunks.append(chunk)
    yield from finish(wire, 0)
    charset = _charset(content_type) or "utf-8"
    try:
        text = b"".join(chunks).decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        text = b"".join(chunks).decode("utf-8", errors="replace")
    return Page(text, received, content_type)


def _charset(content_type: str | None) -> str | None:
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None
