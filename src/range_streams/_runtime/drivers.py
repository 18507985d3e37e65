"""The two thin drivers: they run a flow's commands with a sync or an async httpx client.

They are the only code that performs I/O, and they hold no decisions: everything they
do is "execute the command, hand back the result or the exception".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
import httpx

from .._core.errors import RedirectError
from .._core.origins import split_userinfo
from .._core.urls import parse_url
from .._flows.commands import (
    Close,
    Command,
    Discard,
    Flow,
    Gather,
    Join,
    Receive,
    ReceiveInto,
    Send,
    Sleep,
    Spawn,
    Spawned,
    Wire,
)
from .._net.async_transport import asyncio_running as _asyncio_running
from .._net.clients import DirectSend, quickack
from .._net.shared import BODY_EXTENSION, FIELDS_EXTENSION

__all__ = ["Primed", "prime", "run_async", "run_sync"]

T = TypeVar("T")


# An unsized Receive (any chunk) on our own transport: what the socket has, up to this.
# Cheaper than a trip through httpx's iterator, which a drain of an ended body also paid.
ANY_SIZE = 1 << 20

# Threads for spawned flows (a request kept in flight ahead of a sequential reader).
_AHEAD = ThreadPoolExecutor(max_workers=32, thread_name_prefix="range-streams-ahead")


def run_sync(client: httpx.Client, flow: Flow[T], opened: list[Wire] | None = None) -> T:
    """Run ``flow`` to its end; ``opened`` collects the wires it opened."""
    result: Any = None
    error: BaseException | None = None
    opened = [] if opened is None else opened
    while True:
        try:
            command = flow.throw(error) if error is not None else flow.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        error = None
        try:
            result = _execute_sync(client, command, opened)
        except Exception as exc:  # handed to the flow, which decides
            result, error = None, exc
        except BaseException:
            # Interrupted (KeyboardInterrupt, ...): the flow never resumes, so close what
            # it opened rather than leave connections half read.
            _abandon_sync(flow, opened)
            raise
        if isinstance(result, Wire):
            opened.append(result)


def _abandon_sync(flow: Flow[Any], opened: list[Wire]) -> None:
    _close_all(opened)
    flow.close()


def _close_all(wires: list[Wire]) -> None:
    for wire in wires:
        if not wire.closed:
            wire.closed = True
            wire.response.close()


def _execute_sync(client: httpx.Client, command: Command, opened: list[Wire]) -> Any:
    if isinstance(command, Receive):
        if command.wire.read is not None:
            return command.wire.read(command.size or ANY_SIZE)
        return next(command.wire.chunks, b"")  # type: ignore[arg-type]
    if isinstance(command, ReceiveInto):
        assert command.wire.readinto is not None
        return command.wire.readinto(command.view)
    if isinstance(command, Send):
        request, direct = _request(client, command)
        started = time.perf_counter()
        if direct is None:
            with _httpx_redirect_errors(command):
                response = client.send(
                    request, stream=True, follow_redirects=False, auth=_auth(command)
                )
        else:
            response = direct.transport.handle_request(request)
            direct.answered(request, response, started)
        waited = time.perf_counter() - started
        quickack(response)  # a no-op on our own clients' sockets, which re-arm per read
        if _preloaded(response):
            return Wire(response, iter((response.content,)), waited=waited)
        return _wire(response, response.iter_raw(command.chunk_size), command, waited, direct)
    if isinstance(command, Close):
        command.wire.closed = True
        command.wire.response.close()
        return None
    if isinstance(command, Spawn):
        spawned = Spawned(command.flow)
        spawned.job = _AHEAD.submit(run_sync, client, command.flow, spawned.opened)
        return spawned
    if isinstance(command, Join):
        try:
            return command.spawned.job.result()
        finally:
            opened.extend(command.spawned.opened)  # ours now: closed if we are interrupted
    if isinstance(command, Discard):
        job = command.spawned.job
        if command.wait and not job.cancel():
            with contextlib.suppress(Exception):  # its outcome is not wanted
                job.result()
        # Otherwise not waited for: the wires are closed whenever the flow is answered.
        job.add_done_callback(lambda _: _close_all(command.spawned.opened))
        return None
    if isinstance(command, Gather):
        if len(command.flows) == 1:  # nothing to overlap: no thread
            return [run_sync(client, command.flows[0])]
        # httpx.Client's pool is thread-safe; each flow runs whole on one thread.
        with ThreadPoolExecutor(max_workers=max(1, command.limit)) as pool:
            futures = [pool.submit(run_sync, client, flow) for flow in command.flows]
        return [future.result() for future in futures]
    assert isinstance(command, Sleep)
    time.sleep(command.seconds)
    return None


@dataclass(slots=True)
class Primed(Generic[T]):
    """A flow advanced to its first command before it is run, with that command's
    request already built when it is a ``Send`` our transport takes directly: the part
    of starting a flow that needs no I/O, done ahead while the event loop would wait
    (``fetch_many``). ``command`` is None when the flow ended at once, with ``value``."""

    flow: Flow[T]
    command: Command | None
    value: Any = None
    request: _Prebuilt | None = None


@dataclass(frozen=True, slots=True)
class _Prebuilt:
    """A request built ahead, with what of the client it was built from: it is sent
    only if those are unchanged and the client still takes requests directly (a cookie
    may have arrived meanwhile, which ``DirectSend.of`` sees)."""

    request: httpx.Request
    client_headers: list[tuple[bytes, bytes]]
    timeout: httpx.Timeout

    def fits(self, client: httpx.Client | httpx.AsyncClient) -> bool:
        return client.timeout is self.timeout and client.headers.raw == self.client_headers


def prime(client: httpx.Client | httpx.AsyncClient, flow: Flow[T]) -> Primed[T]:
    """Advance ``flow`` to its first command; the flow's own errors propagate."""
    try:
        command = flow.send(None)
    except StopIteration as stop:
        return Primed(flow, None, stop.value)
    primed = Primed(flow, command)
    if isinstance(command, Send) and (direct := DirectSend.of(client)) is not None:
        try:
            url = parse_url(command.url)
            request = direct.request(command.method, url, command.headers, command.strip)
        except Exception:  # raised again when it is sent, where the flow handles it
            return primed
        primed.request = _Prebuilt(request, client.headers.raw, client.timeout)
    return primed


async def run_async(
    client: httpx.AsyncClient, flow: Flow[T] | Primed[T], opened: list[Wire] | None = None
) -> T:
    """Run ``flow`` to its end; ``opened`` collects the wires it opened."""
    result: Any = None
    error: BaseException | None = None
    opened = [] if opened is None else opened
    first: Command | None = None
    prebuilt: _Prebuilt | None = None
    if isinstance(flow, Primed):
        if flow.command is None:
            return flow.value  # type: ignore[no-any-return]
        first, prebuilt, flow = flow.command, flow.request, flow.flow
    while True:
        if first is not None:
            command, first = first, None
        else:
            try:
                command = flow.throw(error) if error is not None else flow.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        error = None
        try:
            result = await _execute_async(client, command, opened, prebuilt)
        except Exception as exc:
            result, error = None, exc
        except BaseException:
            # Cancelled: close what this flow opened (shielded, so the close itself is not
            # cancelled), leaving no response open behind a cancelled task.
            with anyio.CancelScope(shield=True):
                for wire in opened:
                    if not wire.closed:
                        wire.closed = True
                        await wire.response.aclose()
            flow.close()
            raise
        prebuilt = None
        if isinstance(result, Wire):
            opened.append(result)


async def _execute_async(
    client: httpx.AsyncClient,
    command: Command,
    opened: list[Wire],
    prebuilt: _Prebuilt | None = None,
) -> Any:
    if isinstance(command, ReceiveInto):
        assert command.wire.readinto is not None
        return await command.wire.readinto(command.view)
    if isinstance(command, Receive):
        if command.wire.read is not None:
            return await command.wire.read(command.size or ANY_SIZE)
        try:
            return await command.wire.chunks.__anext__()  # type: ignore[union-attr]
        except StopAsyncIteration:
            return b""
    if isinstance(command, Send):
        request, direct = _request(client, command, prebuilt)
        started = time.perf_counter()
        if direct is None:
            with _httpx_redirect_errors(command):
                response = await client.send(
                    request, stream=True, follow_redirects=False, auth=_auth(command)
                )
        else:
            response = await direct.transport.handle_async_request(request)
            direct.answered(request, response, started)
        waited = time.perf_counter() - started
        quickack(response)
        if _preloaded(response):
            return Wire(response, _aiter_once(response.content), waited=waited)
        return _wire(response, response.aiter_raw(command.chunk_size), command, waited, direct)
    if isinstance(command, Close):
        command.wire.closed = True
        await command.wire.response.aclose()
        return None
    if isinstance(command, Spawn):
        spawned = Spawned(command.flow)
        if _asyncio_running():  # under trio the flow runs when joined: nothing ahead
            spawned.job = asyncio.ensure_future(run_async(client, command.flow, spawned.opened))
        return spawned
    if isinstance(command, Join):
        spawned = command.spawned
        try:
            if spawned.job is None:
                return await run_async(client, spawned.flow, spawned.opened)
            return await spawned.job
        finally:
            opened.extend(spawned.opened)
    if isinstance(command, Discard):
        await _discard(command.spawned, command.wait)
        return None
    if isinstance(command, Gather):
        return await _gather(client, command)
    assert isinstance(command, Sleep)
    await anyio.sleep(command.seconds)
    return None


async def _gather(client: httpx.AsyncClient, command: Gather) -> list[Any]:
    if len(command.flows) == 1:  # nothing to overlap: no task group
        return [await run_async(client, command.flows[0])]
    results: list[Any] = [None] * len(command.flows)
    limiter = anyio.CapacityLimiter(max(1, command.limit))

    errors: list[Exception] = []

    async def one(index: int, flow: Flow[Any]) -> None:
        async with limiter:
            try:
                results[index] = await run_async(client, flow)
            except Exception as exc:  # raised plainly below, as the sync driver does
                errors.append(exc)

    async with anyio.create_task_group() as group:
        for index, flow in enumerate(command.flows):
            group.start_soon(one, index, flow)
    if errors:
        raise errors[0]
    return results


async def _discard(spawned: Spawned, wait: bool) -> None:
    job = spawned.job
    if job is None:
        spawned.flow.close()
    elif not job.done():
        job.cancel()  # run_async closes what it opened, shielded
        if wait:
            with anyio.CancelScope(shield=True), contextlib.suppress(BaseException):
                await job
    else:
        if not job.cancelled():
            job.exception()  # retrieved: an unwanted failure is not reported as lost
        with anyio.CancelScope(shield=True):
            for wire in spawned.opened:
                if not wire.closed:
                    wire.closed = True
                    await wire.response.aclose()


def _request(
    client: httpx.Client | httpx.AsyncClient, command: Send, prebuilt: _Prebuilt | None = None
) -> tuple[httpx.Request, DirectSend | None]:
    """The request to send, and whether it may go straight to our transport."""
    direct = DirectSend.of(client)
    if direct is None:
        request = client.build_request(
            command.method, parse_url(command.url), headers=command.headers
        )
        for name in command.strip:  # the client's defaults included
            request.headers.pop(name, None)
        return request, None
    if prebuilt is not None and prebuilt.fits(client):
        return prebuilt.request, direct
    url = parse_url(command.url)
    return direct.request(command.method, url, command.headers, command.strip), direct


@contextlib.contextmanager
def _httpx_redirect_errors(command: Send) -> Iterator[None]:
    """httpx's ``send`` parses a redirect's Location itself (for ``next_request``), even
    when not following it, and raises RemoteProtocolError for a malformed one: that is
    the library's RedirectError, as it is on our own clients' path."""
    try:
        yield
    except httpx.RemoteProtocolError as exc:
        if not str(exc).startswith("Invalid URL in location header"):
            raise
        url = split_userinfo(command.url)[0]
        raise RedirectError(f"{url} redirected to an unusable Location: {exc}", url=url) from exc


def _auth(command: Send) -> Any:
    """The ``auth`` for ``client.send``: none at all for a request that must carry no
    credentials (``Send.strip``), else the client's own."""
    return None if command.strip else httpx.USE_CLIENT_DEFAULT


def _wire(
    response: httpx.Response,
    chunks: Any,
    command: Send,
    waited: float,
    direct: DirectSend | None,
) -> Wire:
    # The transport's field map only when nothing (an event hook) came between.
    fields = response.extensions.get(FIELDS_EXTENSION) if direct is not None else None
    reader, filler = _reader(response, command), _filler(response, command)
    return Wire(response, chunks, reader, waited, filler, fields)


def _reader(response: httpx.Response, command: Send) -> Any:
    """Our own transports' sized read, unless the caller asked for fixed-size chunks."""
    body = response.extensions.get(BODY_EXTENSION)
    return body.read if body is not None and command.chunk_size is None else None


def _filler(response: httpx.Response, command: Send) -> Any:
    """Our own transports' readinto, for a counted body read without fixed-size chunks."""
    body = response.extensions.get(BODY_EXTENSION)
    if body is None or command.chunk_size is not None or not body.counted:
        return None
    return body.readinto


def _preloaded(response: httpx.Response) -> bool:
    # Transports that build responses from bytes (MockTransport, respx) hand over a body
    # httpx already read; streaming it again would raise StreamConsumed.
    return response.is_stream_consumed and hasattr(response, "_content")


async def _aiter_once(data: bytes) -> AsyncIterator[bytes]:
    yield data
