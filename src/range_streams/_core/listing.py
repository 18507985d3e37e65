"""Directory index pages: whether an answer is one, and which URLs it lists.

An HTTP "directory" is a page of links (nginx's and Apache's autoindex, a bucket's
HTML listing, a hand-written index). A page is taken for a listing when it says it is
HTML, or says nothing and starts like markup; anything else is a file. The URLs it
lists are its links that lead below the page's own URL, resolved the way a browser
resolves them, with the links every index page carries that list nothing (the parent
``../``, sort-order queries ``?C=N;O=D``, fragments) left out.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

__all__ = ["is_listing", "listed_urls", "markup_start"]

_HREF = re.compile(r"""<a\s(?:[^>]*?\s)?href\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
# Bare URLs in the text (``simple_links``), as fsspec's http filesystem also reads them.
_BARE = re.compile(r"""https?://[-a-zA-Z0-9@:%_+.~#?&/=]+""")
_HTML_TYPES = ("text/html", "application/xhtml+xml")


_MARKS = re.compile(rb"<(?:!doctype\s+html|html[\s>]|a\s[^>]*href\s*=)", re.IGNORECASE)


def markup_start(prefix: bytes) -> bool:
    """Whether a body starting with ``prefix`` looks like HTML: it starts with a tag
    (after a BOM, whitespace), or its first KiB holds ``<html``, a doctype or a link."""
    text = prefix.lstrip(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"<") or _MARKS.search(prefix[:1024]) is not None


def is_listing(content_type: str | None, prefix: bytes) -> bool:
    """Whether an answer with this Content-Type (None: absent) and first bytes is a page
    of links rather than a file."""
    if content_type is not None:
        return content_type.split(";", 1)[0].strip().lower() in _HTML_TYPES
    return markup_start(prefix)


def listed_urls(text: str, page_url: str, simple_links: bool = True) -> list[str]:
    """The URLs below ``page_url`` that the page links to, sorted, each once.

    A relative link is resolved against the page's URL taken as a directory (so a page
    at ``/data`` listing ``a.csv`` lists ``/data/a.csv``, as fsspec's http filesystem
    reads it). Links that end in ``/`` name directories.
    """
    directory = page_url if page_url.endswith("/") else page_url + "/"
    found: set[str] = set()
    links = [double or single for double, single in _HREF.findall(text)]
    if simple_links:
        links += _BARE.findall(text)
    for found_link in links:
        link = found_link.strip()
        if not link or link.startswith(("?", "#")) or link in (".", "./", "..", "../"):
            continue
        url = urljoin(directory, link)
        parts = urlsplit(url)
        if parts.fragment or parts.query or parts.scheme not in ("http", "https"):
            continue
        if _below(url, directory):
            found.add(url)
    return sorted(found)


def _below(url: str, directory: str) -> bool:
    """Whether ``url`` is under ``directory`` (http and https count as the same)."""
    plain = url.replace("https://", "http://", 1)
    base = directory.replace("https://", "http://", 1)
    return plain.startswith(base) and len(plain) > len(base)
