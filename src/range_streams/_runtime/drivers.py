"""The two drivers: they run a flow's commands on a backend, one sync, one async.

A driver steps the flow (the result of each command is sent back in, an error thrown back
in at the ``yield``, so retries and fallbacks are the flow's) and dispatches each command:
``Send`` to the backend (``backends``), ``Receive``/``ReceiveInto``/``Close`` to the wire
the flow names, ``Sleep``/``Gather``/``Spawn``/``Join``/``Discard`` to the concurrency
each side has (threads for the sync driver, tasks for the async one). They hold no
protocol decisions. When a flow is interrupted (cancellation, KeyboardInterrupt) the
driver closes every response the flow opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import anyio
import httpx

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
)
from .._net.async_transport import asyncio_running
from .backends import AsyncHttpxBackend, AsyncWire, HttpxBackend, Prepared, SyncWire

__all__ = ["Primed", "prime", "run_async", "run_sync"]

T = TypeVar("T")

# A Receive of any size (``size=0``): at most this much in one read.
ANY_SIZE = 1 << 20

# Threads for spawned flows (a request kept in flight ahead of a sequential reader).
_AHEAD = ThreadPoolExecutor(max_workers=32, thread_name_prefix="range-streams-ahead")


@dataclass(slots=True)
class Primed(Generic[T]):
    """A flow advanced to its first command before it is run, with that command's
    request already built when it is a ``Send`` our transport takes directly: the part
    of starting a flow that needs no I/O, done ahead while the event loop would wait
    (``fetch_many``). ``command`` is None when the flow ended at once, with ``value``."""

    flow: Flow[T]
    command: Command | None
    value: Any = None
    request: Prepared | None = None


def prime(client: httpx.Client | httpx.AsyncClient, flow: Flow[T]) -> Primed[T]:
    """Advance ``flow`` to its first command; the flow's own errors propagate. Either
    driver runs the result (``run_sync`` on a ``Client``'s, ``run_async`` on an
    ``AsyncClient``'s)."""
    try:
        command = flow.send(None)
    except StopIteration as stop:
        return Primed(flow, None, stop.value)
    if not isinstance(command, Send):
        return Primed(flow, command)
    if isinstance(client, httpx.AsyncClient):
        return Primed(flow, command, request=AsyncHttpxBackend(client).prepare(command))
    return Primed(flow, command, request=HttpxBackend(client).prepare(command))


# -- sync ---------------------------------------------------------------------------------


def run_sync(
    client: httpx.Client, flow: Flow[T] | Primed[T], opened: list[SyncWire] | None = None
) -> T:
    """Run ``flow`` (or a primed one) to its end on ``client``; ``opened`` collects the
    wires it opened."""
    return _run_sync(HttpxBackend(client), flow, [] if opened is None else opened)


def _run_sync(backend: HttpxBackend, flow: Flow[T] | Primed[T], opened: list[SyncWire]) -> T:
    # The stepping is written out here rather than shared with the async driver's: it
    # runs once per command, the hottest loop of the library. tests/test_twins.py checks
    # that this is ``_run_async`` without its awaits, so the two cannot drift.
    prepared: Prepared | None = None
    command: Command | None = None
    if isinstance(flow, Primed):
        if flow.command is None:
            return cast(T, flow.value)
        command, prepared, flow = flow.command, flow.request, flow.flow
    result: Any = None
    error: Exception | None = None
    while True:
        if command is None:
            try:
                command = flow.throw(error) if error is not None else flow.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        error = None
        try:
            result = _execute_sync(backend, command, opened, prepared)
        except Exception as exc:  # handed to the flow, which decides
            result, error = None, exc
        except BaseException:
            # Interrupted (KeyboardInterrupt, ...): the flow never resumes, so close what
            # it opened rather than leave connections half read.
            _close_all(opened)
            flow.close()
            raise
        command = prepared = None


def _close_all(wires: list[SyncWire]) -> None:
    for wire in wires:
        if not wire.closed:
            wire.close()


def _execute_sync(
    backend: HttpxBackend,
    command: Command,
    opened: list[SyncWire],
    prepared: Prepared | None = None,
) -> Any:
    # A wire a command names was made by this driver's backend: a SyncWire.
    if isinstance(command, Receive):
        wire: Any = command.wire
        return wire.read(command.size or ANY_SIZE)
    if isinstance(command, ReceiveInto):
        wire = command.wire
        return wire.readinto(command.view)
    if isinstance(command, Send):
        wire = backend.send(command, prepared)
        opened.append(wire)
        return wire
    if isinstance(command, Close):
        wire = command.wire
        wire.close()
        return None
    if isinstance(command, Spawn):
        spawned = Spawned(command.flow)
        spawned.job = _AHEAD.submit(_run_sync, backend, command.flow, spawned.opened)
        return spawned
    if isinstance(command, Join):
        try:
            return command.spawned.job.result()
        finally:
            opened.extend(command.spawned.opened)  # ours now: closed if we are interrupted
    if isinstance(command, Discard):
        job, wires = command.spawned.job, command.spawned.opened
        if command.wait and not job.cancel():
            with contextlib.suppress(Exception):  # its outcome is not wanted
                job.result()
        # Otherwise not waited for: the wires are closed whenever the flow is answered.
        job.add_done_callback(lambda _: _close_all(wires))
        return None
    if isinstance(command, Gather):
        if len(command.flows) == 1:  # nothing to overlap: no thread
            return [_run_sync(backend, command.flows[0], [])]
        # httpx.Client's pool is thread-safe; each flow runs whole on one thread.
        with ThreadPoolExecutor(max_workers=max(1, command.limit)) as pool:
            futures = [pool.submit(_run_sync, backend, flow, []) for flow in command.flows]
        return [future.result() for future in futures]
    assert isinstance(command, Sleep)
    time.sleep(command.seconds)
    return None


# -- async --------------------------------------------------------------------------------


async def run_async(
    client: httpx.AsyncClient, flow: Flow[T] | Primed[T], opened: list[AsyncWire] | None = None
) -> T:
    """Run ``flow`` (or a primed one) to its end on ``client``; ``opened`` collects the
    wires it opened."""
    return await _run_async(AsyncHttpxBackend(client), flow, [] if opened is None else opened)


async def _run_async(
    backend: AsyncHttpxBackend, flow: Flow[T] | Primed[T], opened: list[AsyncWire]
) -> T:
    prepared: Prepared | None = None
    command: Command | None = None
    if isinstance(flow, Primed):
        if flow.command is None:
            return cast(T, flow.value)
        command, prepared, flow = flow.command, flow.request, flow.flow
    result: Any = None
    error: Exception | None = None
    while True:
        if command is None:
            try:
                command = flow.throw(error) if error is not None else flow.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        error = None
        try:
            result = await _execute_async(backend, command, opened, prepared)
        except Exception as exc:
            result, error = None, exc
        except BaseException:
            # Cancelled: close what this flow opened (shielded, so the close itself is not
            # cancelled), leaving no response open behind a cancelled task.
            await _aclose_all(opened)
            flow.close()
            raise
        command = prepared = None


async def _aclose_all(wires: list[AsyncWire]) -> None:
    with anyio.CancelScope(shield=True):
        for wire in wires:
            if not wire.closed:
                await wire.close()


async def _execute_async(
    backend: AsyncHttpxBackend,
    command: Command,
    opened: list[AsyncWire],
    prepared: Prepared | None = None,
) -> Any:
    # A wire a command names was made by this driver's backend: an AsyncWire.
    if isinstance(command, ReceiveInto):
        wire: Any = command.wire
        return await wire.readinto(command.view)
    if isinstance(command, Receive):
        wire = command.wire
        return await wire.read(command.size or ANY_SIZE)
    if isinstance(command, Send):
        wire = await backend.send(command, prepared)
        opened.append(wire)
        return wire
    if isinstance(command, Close):
        wire = command.wire
        await wire.close()
        return None
    if isinstance(command, Spawn):
        spawned = Spawned(command.flow)
        if asyncio_running():  # under trio the flow runs when joined: nothing ahead
            job = _run_async(backend, command.flow, spawned.opened)
            spawned.job = asyncio.ensure_future(job)
        return spawned
    if isinstance(command, Join):
        spawned = command.spawned
        try:
            if spawned.job is None:
                return await _run_async(backend, spawned.flow, spawned.opened)
            return await spawned.job
        finally:
            opened.extend(spawned.opened)
    if isinstance(command, Discard):
        await _discard(command.spawned, command.wait)
        return None
    if isinstance(command, Gather):
        return await _gather(lambda flow: _run_async(backend, flow, []), command)
    assert isinstance(command, Sleep)
    await anyio.sleep(command.seconds)
    return None


async def _gather(run: Callable[[Flow[Any]], Any], command: Gather) -> list[Any]:
    if len(command.flows) == 1:  # nothing to overlap: no task group
        return [await run(command.flows[0])]
    results: list[Any] = [None] * len(command.flows)
    limiter = anyio.CapacityLimiter(max(1, command.limit))
    errors: list[Exception] = []

    async def one(index: int, flow: Flow[Any]) -> None:
        async with limiter:
            try:
                results[index] = await run(flow)
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
        job.cancel()  # _run_async closes what it opened, shielded
        if wait:
            with anyio.CancelScope(shield=True), contextlib.suppress(BaseException):
                await job
    else:
        if not job.cancelled():
            job.exception()  # retrieved: an unwanted failure is not reported as lost
        await _aclose_all(spawned.opened)
