"""Sync and async twins: the rule of docs/Design.md ("Sync and async twins"), enforced.

For each public sync/async pair (the ``twins`` fixture, ``FUNCTION_PAIRS``) the check
lists both sides' public names (``dir()``, not starting with ``_``, plus the protocol
dunders of ``PROTOCOL``), classifies each (``kind_of``), maps sync names to async ones
(``RENAMES``) and compares kinds and parameters. Any difference fails unless ``ALLOWED``
lists it with its reason; an ``ALLOWED`` entry that no longer matches a difference fails
too. The check cannot see I/O: a plain method whose twin is a coroutine passes, whether
or not the name does I/O; that half of the rule is kept by review and by the behaviour
tests below.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from ranges import Range

import range_streams as rs
from range_streams.fsspec import RangeFileSystem

from .fakes import FakeServer, payload

URL = "http://files.test/data/sample.bin"
DATA = payload(10_000)

# ---- the check ----------------------------------------------------------------------------

#: Dunder methods that are part of a public protocol, compared like public names.
PROTOCOL = frozenset(
    {
        "__init__",
        "__enter__",
        "__exit__",
        "__aenter__",
        "__aexit__",
        "__iter__",
        "__next__",
        "__aiter__",
        "__anext__",
        "__len__",
        "__contains__",
        "__getitem__",
    }
)

#: A sync name whose async twin is spelled otherwise. A sync-side name spelled the async
#: way (1.x's ``RangeStream.aclose``) and an async-side name spelled the sync way
#: (``AsyncRangeFile.close``) have no twin: they count as names on one side only.
RENAMES = {
    "__enter__": "__aenter__",
    "__exit__": "__aexit__",
    "__iter__": "__aiter__",
    "__next__": "__anext__",
    "close": "aclose",
    "iter_bytes": "aiter_bytes",
}

#: (sync kind, async kind) pairs the rule allows. The same kind: a name that needs no I/O
#: (or a coroutine on both sides). A plain method and a coroutine method: a name that may
#: do I/O. A generator and an async generator: iteration.
TWIN_KINDS = frozenset(
    {(kind, kind) for kind in ("property", "method", "coroutine", "attribute")}
    | {("method", "coroutine"), ("generator", "async generator")}
)


def kind_of(raw: object) -> str:
    """What a name is, as found without running anything (``inspect.getattr_static``)."""
    if isinstance(raw, (classmethod, staticmethod)):
        raw = raw.__func__
    if isinstance(raw, (property, functools.cached_property)) or inspect.isgetsetdescriptor(raw):
        return "property"
    if inspect.iscoroutinefunction(raw):
        return "coroutine"
    if inspect.isasyncgenfunction(raw):
        return "async generator"
    if inspect.isgeneratorfunction(raw):
        return "generator"
    if inspect.isroutine(raw):
        return "method"
    return "attribute"


@dataclass(frozen=True)
class Param:
    kind: str  # inspect.Parameter kind, e.g. "KEYWORD_ONLY"
    position: int | None  # index among the positional parameters; None for keywords
    default: str | None  # repr of the default; None for none


def parameters(raw: object) -> dict[str, Param] | None:
    """A callable's parameters, by name (None if it has no signature to read)."""
    if isinstance(raw, (classmethod, staticmethod)):
        raw = raw.__func__
    try:
        signature = inspect.signature(raw)
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    result = {}
    for index, p in enumerate(signature.parameters.values()):
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        result[p.name] = Param(p.kind.name, index if p.kind in positional else None, default)
    return result


@dataclass(frozen=True)
class Difference:
    """One way a pair differs. ``where`` is ``Owner.name``, ``Owner.name(param)`` or, for
    a function pair, ``function(param)``; ``what`` is ``only here`` (the name or
    parameter has no twin), ``kind`` or ``param``. ``(where, what)`` is its key in ``ALLOWED``."""

    where: str
    what: str
    detail: str = field(compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.where, self.what)


def public_names(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_") or name in PROTOCOL}


def compare_parameters(
    sync: object, asyn: object, sync_where: str, async_where: str
) -> list[Difference]:
    """Parameters present on one side only, or differing in kind, position or default.
    A method written in C without a signature (io's ``__exit__``) is not compared."""
    ours, theirs = parameters(sync), parameters(asyn)
    if ours is None or theirs is None:
        return []
    found = []
    for name in sorted(ours.keys() | theirs.keys()):
        if name not in theirs:
            found.append(
                Difference(
                    f"{sync_where}({name})", "only here", f"not a parameter of {async_where}"
                )
            )
        elif name not in ours:
            found.append(
                Difference(
                    f"{async_where}({name})", "only here", f"not a parameter of {sync_where}"
                )
            )
        elif ours[name] != theirs[name]:
            detail = f"{sync_where}: {ours[name]}, {async_where}: {theirs[name]}"
            found.append(Difference(f"{sync_where}({name})", "param", detail))
    return found


def compare_objects(
    sync: object, asyn: object, sync_label: str, async_label: str
) -> list[Difference]:
    """Every difference between the public names of ``sync`` and ``asyn`` (classes or
    instances: an instance adds the attributes its constructor sets)."""
    sync_names, async_names = public_names(sync), public_names(asyn)
    async_spellings = set(RENAMES.values())
    found: list[Difference] = []
    matched: set[str] = set()
    for name in sorted(sync_names):
        twin = None if name in async_spellings else RENAMES.get(name, name)
        if twin is None:
            detail = f"an async spelling on the sync side: no twin on {async_label}"
            found.append(Difference(f"{sync_label}.{name}", "only here", detail))
            continue
        if twin not in async_names:
            detail = f"no twin {async_label}.{twin}"
            found.append(Difference(f"{sync_label}.{name}", "only here", detail))
            continue
        matched.add(twin)
        raw_sync = inspect.getattr_static(sync, name)
        raw_async = inspect.getattr_static(asyn, twin)
        kinds = (kind_of(raw_sync), kind_of(raw_async))
        if kinds not in TWIN_KINDS:
            detail = f"{sync_label}.{name} is a {kinds[0]}, {async_label}.{twin} a {kinds[1]}"
            found.append(Difference(f"{sync_label}.{name}", "kind", detail))
        elif kinds[0] not in ("property", "attribute"):
            found += compare_parameters(
                raw_sync, raw_async, f"{sync_label}.{name}", f"{async_label}.{twin}"
            )
    for name in sorted(async_names - matched):
        found.append(Difference(f"{async_label}.{name}", "only here", f"no twin on {sync_label}"))
    return found


def compare_functions(
    sync: Callable[..., Any], asyn: Callable[..., Any], sync_label: str, async_label: str
) -> list[Difference]:
    """A pair of functions: the same kind by the rule, and the same parameters."""
    kinds = (kind_of(sync), kind_of(asyn))
    if kinds not in TWIN_KINDS:
        detail = f"{sync_label} is a {kinds[0]}, {async_label} a {kinds[1]}"
        return [Difference(sync_label, "kind", detail)]
    return compare_parameters(sync, asyn, sync_label, async_label)


def problems(
    found: list[Difference], allowed: Mapping[tuple[str, str], str], labels: tuple[str, str]
) -> list[str]:
    """What fails: each difference ``allowed`` does not list, and each entry of
    ``allowed`` about this pair (its ``where`` starts with one of ``labels``) that
    matches no difference (stale)."""
    keys = {d.key for d in found}
    unlisted = [f"{d.where} [{d.what}]: {d.detail}" for d in found if d.key not in allowed]
    stale = [
        f"{where} [{what}]: listed in ALLOWED, but no longer a difference"
        for (where, what) in allowed
        if _owner(where) in labels and (where, what) not in keys
    ]
    return unlisted + stale


def _owner(where: str) -> str:
    return where.split("(", maxsplit=1)[0].split(".", maxsplit=1)[0]


# ---- the pairs and their allowed differences ------------------------------------------------

_1X = (
    "range-streams 1.x's RangeStream API (StreamCompat): 1.x had only the sync stream,"
    " AsyncRangeStream is new in 2 and has 2's spelling only"
)
_1X_ASYNC = (
    "1.x's async method, for the in-memory streams AsyncFetcher hands its callback"
    " (TypeError elsewhere); the async stream's own is the coroutine twin of the sync name"
)
_1X_POSITION = (
    "RangeStream keeps 1.x's positional order, with force_async sixth; AsyncRangeStream"
    " has no force_async and takes this parameter by keyword only, so that no positional"
    " call means one thing on one twin and another on the other"
)
_IO = (
    "io.RawIOBase's protocol (RangeFile is an io object that zipfile, tarfile, pyarrow"
    " and open()'s buffered and text layers take as is); AsyncRangeFile is not an io"
    " object, and has no line or write API"
)
_OPEN_LAYERS = (
    "open mirrors builtins.open: buffering and text layers exist for sync files only;"
    " open_async opens binary and unbuffered (an AsyncRangeFile)"
)

ALLOWED: dict[tuple[str, str], str] = {
    # -- RangeStream / AsyncRangeStream
    ("RangeStream.total_bytes", "kind"): (
        "1.x: a property that may send a request (GET bytes=0-0); the async twin is the"
        " coroutine method total_bytes()"
    ),
    ("RangeStream.total_range", "kind"): (
        "1.x: a property that may send a request (as total_bytes); the async twin is the"
        " coroutine method total_range()"
    ),
    ("RangeStream.__init__(force_async)", "only here"): (
        "1.x's experimental async mode: True raises a TypeError naming AsyncRangeStream"
    ),
    ("RangeStream.__init__(chunk_size)", "param"): _1X_POSITION,
    ("RangeStream.__init__(raise_response)", "param"): _1X_POSITION,
    ("RangeStream.add_async", "only here"): _1X_ASYNC,
    ("RangeStream.aclose", "only here"): _1X_ASYNC,
    ("RangeStream.make_async_fetcher", "only here"): (
        "1.x's AsyncFetcher shortcut: fetched bytes read through sync streams"
    ),
    **{
        (f"RangeStream.{name}", "only here"): _1X
        for name in (
            "add_window",
            "burn_range",
            "check_is_subrange",
            "check_range_integrity",
            "check_response_length",
            "client_is_async",
            "compute_external_ranges",
            "ext2int",
            "freely_requestable",
            "get_monostream",
            "handle_overlap",
            "overlap_whence",
            "register_range",
            "send_head_request",
            "send_request",
            "set_active_range",
            "set_client",
            "sync_client",
        )
    },
    # -- RangeResponse / AsyncRangeResponse
    ("RangeResponse.aclose", "only here"): _1X_ASYNC,
    # -- RangeFile / AsyncRangeFile
    ("RangeFile.size", "kind"): (
        "the ByteSource protocol's size is a property (codecs read source.size), and may"
        " send a request; the async twin is the coroutine method size()"
    ),
    ("AsyncRangeFile.close", "only here"): (
        "fsspec's async files are closed with `await f.close()`; aclose is the twin of"
        " RangeFile.close"
    ),
    **{
        (f"RangeFile.{name}", "only here"): _IO
        for name in (
            "__iter__",
            "__next__",
            "fileno",
            "flush",
            "isatty",
            "read1",
            "readable",
            "readall",
            "readline",
            "readlines",
            "seekable",
            "truncate",
            "writable",
            "write",
            "writelines",
        )
    },
    # -- open / open_async
    **{
        (f"open({name})", "only here"): _OPEN_LAYERS
        for name in ("mode", "buffering", "encoding", "errors", "newline")
    },
    ("open(client)", "param"): (
        "keyword-only in open, whose positional places are builtins.open's; open_async"
        " takes it second, as AsyncRangeFile does"
    ),
}

FUNCTION_PAIRS = [
    (rs.open, rs.open_async),
    (rs.make_client, rs.make_async_client),
]

#: Exports with no twin by design (checked: an export named like a twin must be paired).
NO_TWIN = {
    "fetch_many": "async only: many files at once is concurrent I/O on one event loop",
    "as_completed": "async only, as fetch_many (AsCompleted is its async iterator)",
}


@pytest.fixture(scope="module")
def twins() -> Iterator[list[tuple[object, object]]]:
    """An instance of each public pair, made through the public API (no I/O except the
    one range each response pair is read from, on an in-process fake server)."""
    server = FakeServer(DATA)
    client, aclient = server.client(), server.async_client()
    stream = rs.RangeStream(URL, client=client)
    astream = rs.AsyncRangeStream(URL, client=aclient)
    response = stream.add((0, 10))
    aresponse = anyio.run(astream.add, (0, 10))
    file = rs.RangeFile(URL, client=client)
    afile = rs.AsyncRangeFile(URL, client=aclient)
    yield [(stream, astream), (response, aresponse), (file, afile)]
    file.close()
    stream.close()

    async def aclose() -> None:
        await afile.aclose()
        await astream.aclose()
        await aclient.aclose()

    anyio.run(aclose)
    client.close()


def test_each_pair_differs_only_as_allowed(twins: list[tuple[object, object]]) -> None:
    failures = []
    for sync, asyn in twins:
        labels = (type(sync).__name__, type(asyn).__name__)
        failures += problems(compare_objects(sync, asyn, *labels), ALLOWED, labels)
    for sync_fn, async_fn in FUNCTION_PAIRS:
        labels = (sync_fn.__name__, async_fn.__name__)
        failures += problems(compare_functions(sync_fn, async_fn, *labels), ALLOWED, labels)
    assert not failures, "\n".join(failures)


def test_every_allowed_entry_belongs_to_a_pair(twins: list[tuple[object, object]]) -> None:
    labels = {type(obj).__name__ for pair in twins for obj in pair}
    labels |= {fn.__name__ for pair in FUNCTION_PAIRS for fn in pair}
    assert {_owner(where) for where, _ in ALLOWED} <= labels
    assert all(reason for reason in ALLOWED.values())


def test_every_exported_twin_is_checked(twins: list[tuple[object, object]]) -> None:
    """An export spelled as an async twin (``Async*``, ``*_async``, ``make_async_*``)
    has its sync twin exported and is in a checked pair; no export is left unchecked
    because nobody added its pair here."""
    checked = {type(obj).__name__ for pair in twins for obj in pair}
    checked |= {fn.__name__ for pair in FUNCTION_PAIRS for fn in pair}
    exported = set(rs.__all__)
    for name in exported:
        sync_name = (
            name.removeprefix("Async")
            if name.startswith("Async")
            else name.removesuffix("_async")
            if name.endswith("_async")
            else name.replace("make_async_", "make_", 1)
        )
        if sync_name != name and sync_name in exported:
            assert {name, sync_name} <= checked, f"{sync_name}/{name} is not in the parity check"
    assert set(NO_TWIN) <= exported


# ---- the check fails on a drift it was not told about ---------------------------------------


class SyncFake:
    def __init__(self, url: str, client: object = None) -> None:
        self.url = url

    @property
    def size(self) -> int:
        return 0

    def read(self, size: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass

    def peek(self) -> bytes:
        return b""

    def __enter__(self) -> SyncFake:
        return self


class AsyncFake:
    def __init__(self, url: str, client: object = None, timeout: float = 5.0) -> None:
        self.url = url

    async def size(self) -> int:
        return 0

    async def read(self, size: int = 0) -> bytes:
        return b""

    async def aclose(self) -> None:
        pass

    async def __aenter__(self) -> AsyncFake:
        return self


def test_a_drift_nobody_listed_fails() -> None:
    found = compare_objects(SyncFake("u"), AsyncFake("u"), "SyncFake", "AsyncFake")
    assert {d.key for d in found} == {
        ("SyncFake.peek", "only here"),  # a name on one side only
        ("SyncFake.size", "kind"),  # a property whose twin is a coroutine
        ("SyncFake.read(size)", "param"),  # a default that differs
        ("AsyncFake.__init__(timeout)", "only here"),  # a parameter on one side only
    }
    labels = ("SyncFake", "AsyncFake")
    allowed = {
        ("SyncFake.peek", "only here"): "a reason",
        ("SyncFake.size", "kind"): "a reason",
        ("SyncFake.read(size)", "param"): "a reason",
    }
    assert problems(found, allowed, labels) == [
        "AsyncFake.__init__(timeout) [only here]: not a parameter of SyncFake.__init__"
    ]
    stale = {**allowed, ("AsyncFake.__init__(timeout)", "only here"): "a reason"}
    stale[("SyncFake.gone", "only here")] = "a name that was since removed"
    assert problems(found, stale, labels) == [
        "SyncFake.gone [only here]: listed in ALLOWED, but no longer a difference"
    ]


def test_an_async_spelling_on_the_sync_side_has_no_twin() -> None:
    class Sync:
        def close(self) -> None:
            pass

        async def aclose(self) -> None:  # 1.x-style: the async name on the sync class
            pass

    class Async:
        async def aclose(self) -> None:
            pass

        def close(self) -> None:  # the sync spelling on the async class
            pass

    found = compare_objects(Sync(), Async(), "Sync", "Async")
    assert {d.key for d in found} == {("Sync.aclose", "only here"), ("Async.close", "only here")}


def test_function_pairs_are_checked() -> None:
    def fetch(url: str, *, timeout: float = 5.0) -> bytes:
        return b""

    async def afetch(url: str, timeout: float = 5.0) -> bytes:
        return b""

    def make(url: str) -> object:
        return object()

    async def amake(url: str) -> object:  # no I/O needed, yet a coroutine
        return object()

    assert [d.key for d in compare_functions(fetch, afetch, "fetch", "afetch")] == [
        ("fetch(timeout)", "param")
    ]

    def gen(url: str) -> Iterator[bytes]:
        yield b""

    assert compare_functions(make, amake, "make", "amake") == []  # may do I/O: allowed
    assert [d.key for d in compare_functions(gen, amake, "gen", "amake")] == [("gen", "kind")]


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (property(lambda self: 0), "property"),
        (functools.cached_property(lambda self: 0), "property"),
        (type.__dict__["__name__"], "property"),  # a getset descriptor, as io's closed
        (lambda: 0, "method"),
        (len, "method"),
        (classmethod(lambda cls: 0), "method"),
        (SyncFake.read, "method"),
        (AsyncFake.read, "coroutine"),
        (rs.RangeStream.iter_bytes, "generator"),
        (rs.AsyncRangeStream.aiter_bytes, "async generator"),
        (3, "attribute"),
        (httpx.Client, "attribute"),
    ],
)
def test_kind_of(raw: object, kind: str) -> None:
    assert kind_of(raw) == kind


# ---- what the twins added for each other return -----------------------------------------------


def test_stream_twins_answer_alike() -> None:
    """The same steps on both streams: the same answers and the same requests."""

    def sync_side(server: FakeServer) -> list[object]:
        with server.client() as client, rs.RangeStream(URL, client=client) as stream:
            seen: list[object] = [stream.known_total_bytes, stream.isempty(), stream.spanning_range]
            stream.add((300, 400))
            stream.add((100, 200))
            stream.read(30)
            seen += [stream.known_total_bytes, stream.isempty(), stream.spanning_range]
            seen += [stream.total_range, stream.list_ranges()]
            stream.read()
            stream.add((300, 400))  # registered and unread: no request
            stream.read()
            seen += [stream.isempty(), stream.spanning_range]
            return seen

    async def async_side(server: FakeServer) -> list[object]:
        async with (
            server.async_client() as client,
            rs.AsyncRangeStream(URL, client=client) as stream,
        ):
            seen: list[object] = [stream.known_total_bytes, stream.isempty(), stream.spanning_range]
            await stream.add((300, 400))
            await stream.add((100, 200))
            await stream.read(30)
            seen += [stream.known_total_bytes, stream.isempty(), stream.spanning_range]
            seen += [await stream.total_range(), stream.list_ranges()]
            await stream.read()
            await stream.add((300, 400))  # registered and unread: no request
            await stream.read()
            seen += [stream.isempty(), stream.spanning_range]
            return seen

    sync_server, async_server = FakeServer(DATA), FakeServer(DATA)
    expected = [None, True, Range(0, 0)]
    expected += [len(DATA), False, Range(130, 400), Range(0, len(DATA))]
    expected += [[Range(130, 200), Range(300, 400)], True, Range(0, 0)]
    assert sync_side(sync_server) == expected
    assert anyio.run(async_side, async_server) == expected
    # total_range was known from the ranges' answers: no request for the length
    assert sync_server.ranges_sent == async_server.ranges_sent == ["bytes=300-399", "bytes=100-199"]


@pytest.mark.parametrize("side", ["sync", "async"])
def test_total_range_learns_the_length_once(side: str) -> None:
    server = FakeServer(DATA)
    if side == "sync":
        with server.client() as client, rs.RangeStream(URL, client=client) as stream:
            found = [stream.total_range, stream.total_range, stream.known_total_bytes]
    else:

        async def main() -> list[object]:
            async with (
                server.async_client() as client,
                rs.AsyncRangeStream(URL, client=client) as s,
            ):
                return [await s.total_range(), await s.total_range(), s.known_total_bytes]

        found = anyio.run(main)
    assert found == [Range(0, len(DATA)), Range(0, len(DATA)), len(DATA)]
    assert server.ranges_sent == ["bytes=0-0"]


def test_async_views_do_no_io_and_sync_views_send_the_first_range() -> None:
    """``RangeStream.isempty()`` sends the constructor's range first (1.x's meaning); the
    async twin answers from known state, and sees the range once ``async with`` sent it."""
    sync_server, async_server = FakeServer(DATA), FakeServer(DATA)
    with sync_server.client() as client:
        stream = rs.RangeStream(URL, client=client, byte_range=(5, 50))
        assert (stream.isempty(), stream.spanning_range) == (False, Range(5, 50))
        assert sync_server.ranges_sent == ["bytes=5-49"]
        stream.close()

    async def main() -> list[object]:
        async with async_server.async_client() as client:
            stream = rs.AsyncRangeStream(URL, client=client, byte_range=(5, 50))
            seen: list[object] = [stream.isempty(), stream.spanning_range, len(async_server.log)]
            async with stream:
                seen += [stream.isempty(), stream.spanning_range, stream.known_total_bytes]
            return seen

    assert anyio.run(main) == [True, Range(0, 0), 0, False, Range(5, 50), len(DATA)]
    assert async_server.ranges_sent == ["bytes=5-49"]


def test_stream_iter_bytes_is_aiter_bytes_twin() -> None:
    """Chunks of one range, in one request, leaving the active range where it was."""
    sync_server, async_server = FakeServer(DATA), FakeServer(DATA)
    with sync_server.client() as client, rs.RangeStream(URL, client=client) as stream:
        stream.add((0, 10))
        chunks = list(stream.iter_bytes((100, 350), chunk_size=100))
        sync_seen = [chunks, stream.read(), list(stream.iter_bytes((0, 0)))]

    async def main() -> list[object]:
        async with (
            async_server.async_client() as client,
            rs.AsyncRangeStream(URL, client=client) as s,
        ):
            await s.add((0, 10))
            chunks = [c async for c in s.aiter_bytes((100, 350), chunk_size=100)]
            return [chunks, await s.read(), [c async for c in s.aiter_bytes((0, 0))]]

    expected = [[DATA[100:200], DATA[200:300], DATA[300:350]], DATA[:10], []]
    assert sync_seen == anyio.run(main) == expected
    assert sync_server.ranges_sent == async_server.ranges_sent == ["bytes=0-9", "bytes=100-349"]


@pytest.mark.parametrize(
    ("start", "stop", "chunk_size"),
    [
        (0, None, 4096),
        (1000, 5000, 1500),
        (9990, None, 4),
        (9990, 20_000, 64),
        (50, 50, 8),
        (60, 50, 8),
    ],
)
def test_file_iter_bytes_is_aiter_bytes_twin(start: int, stop: int | None, chunk_size: int) -> None:
    sync_server, async_server = FakeServer(DATA), FakeServer(DATA)
    with sync_server.client() as client, rs.RangeFile(URL, client=client) as f:
        chunks = list(f.iter_bytes(start, stop, chunk_size))
        sync_seen = [chunks, f.tell()]

    async def main() -> list[object]:
        async with (
            async_server.async_client() as client,
            rs.AsyncRangeFile(URL, client=client) as f,
        ):
            return [[c async for c in f.aiter_bytes(start, stop, chunk_size)], f.tell()]

    wanted = DATA[start:stop]
    assert b"".join(chunks) == wanted
    assert all(0 < len(c) <= chunk_size for c in chunks)
    assert sync_seen == anyio.run(main)
    assert sync_seen[1] == (start + len(wanted) if wanted else start)
    assert sync_server.ranges_sent == async_server.ranges_sent


def test_async_file_says_what_it_is_as_the_sync_one_does() -> None:
    options = rs.ClientOptions(headers={"x-parity": "1"})
    file_options = rs.FileOptions()
    sync = rs.RangeFile(URL, None, file_options, client_options=options)
    asyn = rs.AsyncRangeFile(URL, None, file_options, client_options=options)
    try:
        described = [
            (f.name, f.mode, f.options, f.client_options, f.known_size) for f in (sync, asyn)
        ]
        assert described[0] == described[1] == (URL, "rb", file_options, options, None)
    finally:
        sync.close()
        anyio.run(asyn.aclose)


def test_an_fsspec_async_file_has_the_filesystems_client_options() -> None:
    server = FakeServer(DATA)

    async def main() -> tuple[rs.ClientOptions, bytes]:
        async with server.async_client() as client:
            fs = RangeFileSystem(
                async_client=client,
                asynchronous=True,
                skip_instance_cache=True,
                follow_redirects=False,
            )
            async with await fs.open_async("rs+" + URL) as f:
                return f.client_options, await f.read(4)

    options, head = anyio.run(main)
    assert options.follow_redirects is False and head == DATA[:4]


def test_no_positional_call_means_two_things_on_the_stream_twins() -> None:
    # RangeStream's sixth positional is 1.x's force_async; the async stream refuses a
    # sixth positional rather than read it as chunk_size.
    with pytest.raises(TypeError, match="positional"):
        rs.AsyncRangeStream(URL, None, (0, 10), 0, False, 1024)  # type: ignore[call-arg]
    stream = rs.AsyncRangeStream(URL, None, (0, 10), 0, False, chunk_size=1024)
    assert stream.chunk_size == 1024
    anyio.run(stream.aclose)
