"""Small, server-free tests for what the conformance matrix found wrong in the library.

Each names the real server whose answer it stands for; the matrix (test_matrix.py) checks
the same behaviour end to end.
"""

from __future__ import annotations

import pytest

import range_streams as rs
from range_streams._headers import ContentRange, parse_content_range
from range_streams._protocol import RemoteState, accept_partial
from range_streams._ranges import Span

URL = "http://files.test/f.bin"


def test_caddy_empty_file_suffix_content_range_parses() -> None:
    # Caddy answers ``bytes=-10`` on an empty file with ``206 Content-Range: bytes 0--1/0``.
    assert parse_content_range("bytes 0--1/0") == ContentRange(0, 0, 0)
    for nonsense in ("bytes 0--1/5", "bytes 1--1/0", "bytes 0--2/0", "bytes --1/0"):
        with pytest.raises(rs.ContentRangeError):
            parse_content_range(nonsense)


def test_caddy_empty_file_suffix_is_accepted_as_nothing() -> None:
    remote = RemoteState(URL)
    accepted = accept_partial(
        Span(-10, None), {"content-range": "bytes 0--1/0", "content-length": "0"}, remote
    )
    assert (accepted.start, accepted.stop, remote.total) == (0, 0, 0)
