"""Interrupted mid-answer: the connection is closed at once, on every runtime.

The server sends part of an answer (half a head, or a head and half its body), then
interrupts the client and waits to see whether the client hangs up. Sync: a real SIGINT
to the main thread, where the client waits in ``recv`` (``KeyboardInterrupt``: any
``BaseException``). Async: the task is cancelled there, under asyncio and trio. A
connection left open instead shows as the server's read timing out (``WAIT``).
httpcore closes its connection in both cases; so must ours.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Any

import anyio
import anyio.to_thread
import pytest

import range_streams as rs

from .clients import MODES, TIMEOUT
from .server import WAIT, Reply, Request, serving

pytestmark = pytest.mark.timeout(30)

PARTS = {
    "head": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Half: ",
    "body": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
}


def interrupting(where: str, interrupt: Any) -> Any:
    """Sends ``PARTS[where]``, then interrupts the client: at once mid-head; mid-body a
    little later, so that the client has most likely read the head and waits for the
    rest of the body (wherever the interrupt lands, the connection must be closed)."""

    def after() -> None:
        if where == "body":
            time.sleep(0.05)
        interrupt()

    def play(request: Request) -> Reply:
        return Reply(PARTS[where], then="stall", after=after)

    return play


def read_all(client: Any, url: str) -> bytes:
    with client.stream("GET", url) as response:
        return response.read()  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("where", PARTS)
def test_interrupted_exchange_closes_the_connection(where: str, mode: str) -> None:
    if mode == "sync":
        if threading.current_thread() is not threading.main_thread():
            pytest.skip("a signal interrupts the main thread only")
        main = threading.main_thread().ident
        assert main is not None

        def interrupt() -> None:
            signal.pthread_kill(main, signal.SIGINT)

        # Python's own handler, even where SIGINT came in ignored (a background job of
        # a non-interactive shell starts with it ignored): the signal must raise.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        with contextlib.ExitStack() as restore:
            restore.callback(signal.signal, signal.SIGINT, previous)
            server = restore.enter_context(serving(interrupting(where, interrupt)))
            client = restore.enter_context(rs.make_client(timeout=TIMEOUT, trust_env=False))
            with pytest.raises(KeyboardInterrupt) as caught:
                read_all(client, server.url())
            # While the exception lives (as it does up to a handler, or in a REPL's
            # sys.last_traceback), its frames hold the socket: only an explicit close
            # lets the server see the client hang up.
            assert server.wait_stalls(1) == [True], "the socket was left open"
            del caught
        return

    sent = threading.Event()

    async def main_task() -> None:
        async with rs.make_async_client(timeout=TIMEOUT, trust_env=False) as client:
            async with anyio.create_task_group() as tasks:

                async def request() -> None:
                    async with client.stream("GET", server.url()) as response:
                        await response.aread()

                tasks.start_soon(request)
                assert await anyio.to_thread.run_sync(sent.wait, WAIT)
                tasks.cancel_scope.cancel()
            # Still inside the client: the cancelled exchange alone must have closed it.
            assert await anyio.to_thread.run_sync(server.wait_stalls, 1) == [True]

    with serving(interrupting(where, sent.set)) as server:
        anyio.run(main_task, backend=mode)
