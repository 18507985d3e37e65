"""Sync code that is async code without its awaits, checked the way httpcore checks its
generated sync code: each async definition in ``PAIRS`` is rewritten token by token
(``unasync``: ``async def`` -> ``def``, ``await x`` -> ``x``, ``AsyncX`` -> ``X`` and the
names in ``RENAMES``) and must then be its sync twin, docstrings and comments aside.

Why two copies rather than one: these are the I/O loops of the transport and the
drivers (the hottest code of the library), where the only difference is ``await``;
a shared generator stepped by both would cost a call per step. What is the same and
needs no ``await`` is shared code instead (``pool.PoolTransport``, ``pool.Slots``,
``backends._OnTransportBody``). ``NOT_TWINS`` lists the definitions whose names pair up
but whose bodies differ on purpose, with the reason; a new pair must go in one list or
the other (``test_every_pair_is_listed``).
"""

from __future__ import annotations

import ast
import difflib
import inspect
import io
import re
import tokenize
from collections.abc import Callable
from types import ModuleType

import anyio
import httpx
import pytest

import range_streams as rs
from range_streams._flows.commands import Close, Flow, Receive, Send, Wire
from range_streams._net import async_transport, sync_transport
from range_streams._runtime import backends, drivers
from range_streams._runtime.drivers import Primed, prime, run_sync
from tests.servers.fixtures import docroot_bytes
from tests.servers.launch import RunningServer

SAMPLE = docroot_bytes("sample.bin")

# Names an async definition uses whose sync twin is not the name without "Async".
RENAMES = {
    "AsyncWire": "SyncWire",
    "AsyncByteStream": "SyncByteStream",
    "_AsyncConnection": "_Socket",
    "_connect": "_Socket.connect",
    "_adrive": "_drive",
    "_aonce": "_once",
    "_aclose_all": "_close_all",
    "_run_async": "_run_sync",
    "_execute_async": "_execute_sync",
    "run_async": "run_sync",
    "handle_async_request": "handle_request",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "anext": "next",
    "aclose": "close",
    "aread": "read",
    "aiter_raw": "iter_raw",
}

# Where twins live: the async definitions' module and the sync ones'.
MODULES: dict[str, tuple[ModuleType, ModuleType]] = {
    "_net": (async_transport, sync_transport),
    "backends": (backends, backends),
    "drivers": (drivers, drivers),
}

# (where, async name): each must unasync to its sync twin.
PAIRS = [
    ("_net", "_adrive"),
    ("_net", "AsyncWireTransport"),
    ("_net", "AsyncTransportBody"),
    ("backends", "AsyncWire"),
    ("backends", "AsyncStreamWire"),
    ("backends", "AsyncTransportWire"),
    ("backends", "AsyncBackend"),
    ("backends", "AsyncHttpxBackend"),
    ("backends", "_aonce"),
    ("drivers", "run_async"),
    ("drivers", "_run_async"),
]

# Async definitions whose names pair with a sync one but which differ on purpose.
NOT_TWINS = {
    ("_net", "_Slots"): "a semaphore for tasks vs one for threads (only `wait` is theirs)",
    ("_net", "_connect"): "picks the loop's sockets or an anyio stream; sync has one kind",
    ("drivers", "_aclose_all"): "closes shielded from cancellation; threads need no shield",
    ("drivers", "_execute_async"): "Spawn/Gather/Sleep on tasks vs on threads",
}

_CAMEL_ASYNC = re.compile(r"Async(?=[A-Z])")
_WORD = re.compile(r"\w+")


def sync_name(name: str) -> str:
    """The sync twin of an async name: the table's, else ``AsyncX`` -> ``X``."""
    if name in RENAMES:
        return RENAMES[name]
    return _CAMEL_ASYNC.sub("", name, count=1) if name.startswith("Async") else name


def unasync(source: str) -> str:
    """``source`` with its async tokens made sync: ``async`` before ``def``/``with``/``for``
    and ``await`` dropped, every name (and every word of a string: a forward reference
    such as ``"AsyncWireTransport"``) renamed by ``sync_name``."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    out: list[tuple[int, str]] = []
    for index, token in enumerate(tokens):
        kind, text = token.type, token.string
        if kind == tokenize.NAME:
            following = tokens[index + 1].string if index + 1 < len(tokens) else ""
            if text == "await" or (text == "async" and following in ("def", "with", "for")):
                continue
            text = sync_name(text)
        elif kind == tokenize.STRING:
            text = _WORD.sub(lambda word: sync_name(word[0]), text)
        out.append((kind, text))
    return tokenize.untokenize(out)


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _normal(source: str) -> str:
    """``source`` as its syntax tree says it: no comments, docstrings or layout."""
    return ast.unparse(_without_docstrings(ast.parse(source)))


def twin_difference(async_source: str, sync_source: str) -> str | None:
    """None when ``sync_source`` is ``async_source`` unasynced, else a diff saying how
    the sync code drifted (``-``: what the async code says it should be)."""
    expected, actual = _normal(unasync(async_source)), _normal(sync_source)
    if expected == actual:
        return None
    diff = difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "async, unasynced", "sync", lineterm=""
    )
    return "\n".join(diff)


def _source(module: ModuleType, name: str) -> str:
    return inspect.getsource(getattr(module, name))


def _twin(name: str) -> str:
    """The sync twin's name of an async definition or method (``Class.method``)."""
    return ".".join(sync_name(part) for part in name.split("."))


@pytest.mark.parametrize(("where", "name"), PAIRS, ids=[name for _, name in PAIRS])
def test_sync_is_the_async_code_unasynced(where: str, name: str) -> None:
    async_module, sync_module = MODULES[where]
    twin = _twin(name)
    difference = twin_difference(_source(async_module, name), _source(sync_module, twin))
    assert difference is None, f"{sync_module.__name__}.{twin} drifted from {name}:\n{difference}"


def _top_level(module: ModuleType) -> dict[str, ast.AST]:
    """The module's own definitions, and the methods of its classes (``Class.method``)."""
    found: dict[str, ast.AST] = {}
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = node
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found[f"{node.name}.{item.name}"] = item
    return found


def _is_async(node: ast.AST) -> bool:
    return isinstance(node, ast.AsyncFunctionDef) or (
        isinstance(node, ast.ClassDef) and any(isinstance(n, ast.Await) for n in ast.walk(node))
    )


def test_every_pair_is_listed() -> None:
    """Any async definition (or class holding awaits) whose sync name also exists is a
    twin: it must be checked (``PAIRS``, itself or its class) or say why not."""
    listed = set(PAIRS) | set(NOT_TWINS)
    unlisted = []
    for where, (async_module, sync_module) in MODULES.items():
        sync_side = _top_level(sync_module)
        for name, node in _top_level(async_module).items():
            twin = _twin(name)
            if twin == name or twin not in sync_side or not _is_async(node):
                continue
            owner = name.partition(".")[0]
            if (where, name) not in listed and (where, owner) not in listed:
                unlisted.append(f"{where}: {name} ~ {twin}")
    assert not unlisted, "twins neither checked nor excused:\n" + "\n".join(unlisted)


def test_listed_names_exist() -> None:
    """A stale entry would excuse nothing and check nothing."""
    for where, name in [*PAIRS, *NOT_TWINS]:
        async_module, sync_module = MODULES[where]
        assert name in _top_level(async_module), name
        assert _twin(name) in _top_level(sync_module), name


# -- the check itself fails on drift -------------------------------------------------------

FAKE_ASYNC = '''
class AsyncFetcher(AsyncBase):
    """Fetches."""

    async def fetch(self, stream: AsyncStream) -> bytes:
        data = await stream.aread()  # all of it
        if not data:
            await stream.aclose()
        return data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while piece := await self.fetch(self.stream):
            yield piece
'''

FAKE_SYNC = '''
class Fetcher(Base):
    def fetch(self, stream: Stream) -> bytes:
        """Fetches, synchronously."""
        data = stream.read()
        if not data:
            stream.close()
        return data

    def __iter__(self) -> Iterator[bytes]:
        while piece := self.fetch(self.stream):
            yield piece
'''


def test_a_faithful_fake_pair_passes() -> None:
    assert twin_difference(FAKE_ASYNC, FAKE_SYNC) is None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("            stream.close()\n", "            pass\n"),  # a call lost
        ("        if not data:", "        if data:"),  # a condition flipped
        ("        return data\n", "        return data[:1]\n"),  # a value changed
        ("stream.read()", "stream.read(1)"),  # an argument added
        ("Iterator[bytes]", "Iterator[str]"),  # an annotation changed
        ("            yield piece\n", "            yield piece\n            yield piece\n"),
    ],
)
def test_a_one_line_drift_in_the_fake_pair_fails(old: str, new: str) -> None:
    drifted = FAKE_SYNC.replace(old, new, 1)
    assert drifted != FAKE_SYNC
    assert twin_difference(FAKE_ASYNC, drifted) is not None


def test_a_one_line_drift_on_the_async_side_fails() -> None:
    drifted = FAKE_ASYNC.replace("await stream.aclose()", "await stream.aclose(1)")
    assert twin_difference(drifted, FAKE_SYNC) is not None


@pytest.mark.parametrize(("where", "name"), PAIRS, ids=[name for _, name in PAIRS])
def test_a_one_line_drift_in_a_real_pair_fails(where: str, name: str) -> None:
    """The last line of each real sync twin written twice: caught."""
    async_module, sync_module = MODULES[where]
    lines = _source(sync_module, _twin(name)).splitlines(keepends=True)
    for at in range(len(lines) - 1, 0, -1):
        drifted = "".join([*lines[: at + 1], lines[at], *lines[at + 1 :]])
        try:
            ast.parse(drifted)
        except SyntaxError:
            continue  # a line inside a bracket: try the one before
        if _normal(drifted) != _normal("".join(lines)):
            break
    else:
        pytest.fail(f"no line of {name}'s twin could be doubled")
    assert twin_difference(_source(async_module, name), drifted) is not None


def test_unasync_renames_names_and_forward_references() -> None:
    source = 'async def f() -> "AsyncWireTransport":\n    return await _adrive(AsyncWire)\n'
    expected = 'def f() -> "WireTransport":\n    return _drive(SyncWire)\n'
    assert _normal(unasync(source)) == _normal(expected)


# -- what the shared code now does the same on both sides -----------------------------------


@pytest.mark.parametrize("slots_kind", [sync_transport._Slots, async_transport._Slots])
@pytest.mark.parametrize("limit", [None, 0])
def test_no_connection_limit_never_waits(slots_kind: type, limit: int | None) -> None:
    """``max_connections`` None or 0 means no limit, for threads and tasks alike."""
    slots = slots_kind(limit)
    assert all(slots.take_now() for _ in range(1000))
    slots.free()
    assert slots.semaphore is None


def test_sync_slots_count() -> None:
    slots = sync_transport._Slots(2)
    assert [slots.take_now() for _ in range(3)] == [True, True, False]
    slots.free()
    assert slots.take_now()
    with pytest.raises(httpx.PoolTimeout):
        slots.wait(0)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_slots_count(backend: str) -> None:
    async def main() -> None:
        slots = async_transport._Slots(2)
        assert [slots.take_now() for _ in range(3)] == [True, True, False]
        slots.free()
        assert slots.take_now()
        with pytest.raises(httpx.PoolTimeout):
            await slots.wait(0)

    anyio.run(main, backend=backend)


def _first_bytes(url: str) -> Flow[bytes]:
    wire: Wire = yield Send("GET", url, {"range": "bytes=0-9"})
    data: bytes = yield Receive(wire, 10)
    yield Close(wire)
    return data


def _ends_at_once() -> Flow[int]:
    return 7
    yield  # a generator all the same


def test_the_sync_driver_runs_a_primed_flow(
    server_factory: Callable[..., RunningServer],
) -> None:
    """The driver loops are one text, so a primed flow (``prime``, ``fetch_many``'s)
    runs on the sync driver too, its prepared request the one that goes out."""
    url = server_factory("uvicorn-starlette").url("sample.bin")
    with rs.make_client() as client:
        primed = prime(client, _first_bytes(url))
        assert isinstance(primed, Primed) and isinstance(primed.command, Send)
        assert primed.request is not None and primed.request.request.url == url
        assert run_sync(client, primed) == SAMPLE[:10]
        done = prime(client, _ends_at_once())
        assert done.command is None and run_sync(client, done) == 7
