"""The async runtimes a test can run on: asyncio always, trio when this anyio can use it."""

from __future__ import annotations

import importlib.util
import socket

import anyio
import pytest


def trio_works() -> bool:
    """trio is in the test extra, and anyio needs a recent one: probe a real connection."""
    if importlib.util.find_spec("trio") is None:
        return False

    async def probe() -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            stream = await anyio.connect_tcp("127.0.0.1", listener.getsockname()[1])
            await stream.aclose()

    try:
        anyio.run(probe, backend="trio")
    except Exception:
        return False
    return True


TRIO = pytest.mark.skipif(not trio_works(), reason="needs a trio that this anyio supports")
BACKENDS = ["asyncio", pytest.param("trio", marks=TRIO)]
