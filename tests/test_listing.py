"""Pure rules of the fsspec side, as tables: index pages (is it one, what it lists), fsspec's
option spellings, and what the filesystem remembers of a URL."""

from __future__ import annotations

import time

import pytest

import range_streams as rs
from range_streams._core.listing import is_listing, listed_urls, markup_start
from range_streams._core.protocol import RemoteState
from range_streams._core.range_headers import Validators
from range_streams._fsspec_support import Known, client_kwargs_settings, strategy_for
from range_streams._state.file_core import FileOptions

PAGE = "http://h/data/"


@pytest.mark.parametrize(
    ("content_type", "prefix", "listing"),
    [
        ("text/html", b"", True),
        ("text/html; charset=utf-8", b"PK\x03\x04", True),
        ("application/xhtml+xml", b"", True),
        ("application/octet-stream", b"<html>", False),
        ("text/plain", b"<a href='x'>", False),
        (None, b"  \n<!DOCTYPE html>", True),
        (None, b"\xef\xbb\xbf<html>", True),
        (None, b"\\n<html><body>", True),  # a listing saved with a literal "\n" first
        (None, b"some text <a href='x'>x</a>", True),
        (None, b"PAR1\x00\x00", False),
        (None, b"id,value\n1,<b>\n", False),
        (None, b"", False),
    ],
)
def test_what_is_a_listing(content_type: str | None, prefix: bytes, listing: bool) -> None:
    assert is_listing(content_type, prefix) is listing


def test_markup_start_looks_at_the_first_kib_only() -> None:
    assert not markup_start(b"x" * 2000 + b"<html>")


@pytest.mark.parametrize(
    ("page", "html", "found"),
    [
        # nginx autoindex: relative names, a parent link
        (
            PAGE,
            '<a href="../">../</a><a href="a.csv">a.csv</a><a href="sub/">sub/</a>',
            [PAGE + "a.csv", PAGE + "sub/"],
        ),
        # Apache: sort links and the parent are not entries
        (
            PAGE,
            '<a href="?C=N;O=D">Name</a><a href="/">Parent</a><a href="b.nc">b</a>',
            [PAGE + "b.nc"],
        ),
        # absolute paths and full URLs below the page; others left out
        (
            PAGE,
            "<A HREF='/data/x.bin'>x</A><a href='http://h/other/y'>y</a>"
            "<a href='https://h/data/z'>z</a><a href='ftp://h/data/w'>w</a>",
            [PAGE + "x.bin", "https://h/data/z"],
        ),
        # a page without a trailing slash lists below it, as fsspec's http filesystem does
        ("http://h/index", '<a href="realfile">f</a>', ["http://h/index/realfile"]),
        # fragments, queries, duplicates
        (
            PAGE,
            '<a href="a#top">a</a><a href="c?x=1">c</a><a href="d">d</a><a href="d">d</a>',
            [PAGE + "d"],
        ),
        # bare URLs in the text (simple_links)
        (PAGE, "see http://h/data/e.txt and http://elsewhere/f", [PAGE + "e.txt"]),
        # attributes before href, spaces around =
        (PAGE, '<a class="x" href = "g.zip">g</a>', [PAGE + "g.zip"]),
    ],
)
def test_listed_urls(page: str, html: str, found: list[str]) -> None:
    assert listed_urls(html, page) == sorted(found)


def test_simple_links_off_takes_anchors_only() -> None:
    assert listed_urls("http://h/data/e.txt <a href='f'>f</a>", PAGE, simple_links=False) == [
        PAGE + "f"
    ]


@pytest.mark.parametrize(
    ("given", "wanted"),
    [
        ({"headers": {"a": "1"}}, {"headers": {"a": "1"}}),
        ({"auth": ("u", "p")}, {"auth": ("u", "p")}),
        ({"timeout": 3}, {"timeout": 3}),
        ({"trust_env": False}, {"trust_env": False}),
        ({"verify": False}, {"verify": False}),
    ],
)
def test_client_kwargs(given: dict, wanted: dict) -> None:
    assert client_kwargs_settings(given) == wanted


def test_client_kwargs_named_tuples_and_timeouts() -> None:
    class BasicAuth(tuple):  # aiohttp's shape: (login, password, encoding)
        login = property(lambda self: self[0])
        password = property(lambda self: self[1])

    class ClientTimeout:
        total = 9.0

    settings = client_kwargs_settings(
        {"auth": BasicAuth(("u", "p", "latin1")), "timeout": ClientTimeout()}
    )
    assert settings == {"auth": ("u", "p"), "timeout": 9.0}
    with pytest.raises(TypeError, match="connector"):
        client_kwargs_settings({"connector": None})


@pytest.mark.parametrize(
    ("cache_type", "block_size", "expected"),
    [
        (None, None, rs.Adaptive()),
        (None, 1000, rs.Readahead(1000)),
        ("readahead", None, rs.Readahead()),
        ("bytes", 2000, rs.Readahead(2000)),
        ("blockcache", None, rs.BlockCache()),
        ("background", 3000, rs.BlockCache(3000)),
        ("none", 5, rs.ExactReads()),
        ("parts", None, rs.Readahead()),
    ],
)
def test_strategy_for(cache_type: str | None, block_size: int | None, expected: object) -> None:
    assert strategy_for(FileOptions(), block_size, cache_type) == expected


def test_strategy_for_keeps_the_given_strategy_and_refuses_the_unknown() -> None:
    mine = rs.Readahead(4096)
    options = FileOptions(strategy=mine)
    # Strategies are settings (each file plans with its own planner): shared as given.
    assert strategy_for(options, None, None) is mine
    for refused in ("mmap", "first", "all", "x"):
        with pytest.raises(ValueError, match="cache_type"):
            strategy_for(options, None, refused)


def test_known_seeds_what_was_learned_until_it_expires() -> None:
    known = Known(seconds=0.2)
    learned = RemoteState("http://h/f")
    learned.total, learned.location = 100, "http://cdn/f"
    learned.validators = Validators(etag='"v1"', last_modified=None, size=100)
    known.learn(learned, (36, b"x" * 64))
    fresh = RemoteState("http://h/f")
    assert known.seed(fresh) == (36, b"x" * 64)
    assert (fresh.total, fresh.location, fresh.validators) == (
        100,
        "http://cdn/f",
        learned.validators,
    )
    known.learn(learned)  # the same facts again: the tail is kept
    assert known.seed(RemoteState("http://h/f")) == (36, b"x" * 64)
    time.sleep(0.25)
    assert known.seed(RemoteState("http://h/f")) is None


def test_known_keeps_tails_for_the_latest_few_only() -> None:
    known = Known(seconds=60)
    for n in range(12):
        remote = RemoteState(f"http://h/{n}")
        remote.total = 10
        known.learn(remote, (0, b"0123456789"))
    tails = [known.seed(RemoteState(f"http://h/{n}")) for n in range(12)]
    assert tails[:4] == [None] * 4 and all(t is not None for t in tails[4:])
