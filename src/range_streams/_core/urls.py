"""URLs, parsed once: checking a URL and sending a request to it share one parse.

Parsing a URL string with httpx costs more than the rest of checking it, so the parse is
kept: a URL checked when an item is taken is not parsed again when its request is built.
"""

from __future__ import annotations

import contextlib

import httpx

from .errors import InvalidURLError

__all__ = ["check_url", "parse_url"]

_PARSED: dict[str, httpx.URL] = {}
_LIMIT = 4096  # a batch's worth; the oldest entries go first


def parse_url(text: str) -> httpx.URL:
    """``httpx.URL(text)``, remembered."""
    url = _PARSED.get(text)
    if url is None:
        url = httpx.URL(text)
        _remember(text, url)
    return url


def _remember(text: str, url: httpx.URL) -> None:
    if len(_PARSED) >= _LIMIT:
        # Dicts keep insertion order: the first key is the oldest. Another thread may
        # be at the same work: losing that race costs nothing.
        with contextlib.suppress(KeyError, RuntimeError, StopIteration):
            del _PARSED[next(iter(_PARSED))]
    _PARSED[text] = url


def check_url(url: str | httpx.URL) -> str:
    """The absolute http(s) URL ``url`` names, normalised, or ``InvalidURLError``."""
    try:
        parsed = url if isinstance(url, httpx.URL) else parse_url(str(url))
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidURLError(f"not a usable URL: {url!r} ({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidURLError(f"not an absolute http(s) URL: {url!r}")
    if parsed.port is not None and not 0 < parsed.port <= 65535:
        raise InvalidURLError(f"port {parsed.port} is not a TCP port: {url!r}")
    text = str(parsed)
    if text not in _PARSED:  # the request will be built from the normalised text
        _remember(text, parsed)
    return text
