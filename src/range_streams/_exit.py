"""A clean interpreter exit while other libraries' native threads still hold our files.

pyarrow reads a Python file object from its own C++ I/O threads, and releases the last
reference to it from one of them, often just after ``read_table`` has returned. That
release closes the file, and closing does socket I/O, which lets go of the GIL. If the
main thread reaches interpreter shutdown meanwhile, the C++ thread cannot take the GIL
back: CPython ends it with ``pthread_exit``, which unwinds through C++ frames that must
not throw, and the process dies with ``terminate called without an active exception``
(SIGABRT, exit code 134) after the script's work is done.

So: every blocking operation of a sync file is counted while it runs (``guard``). At
exit (an ``atexit`` handler: after the program's own threads are joined, before the
interpreter starts to finalize), ``_on_exit`` waits (bounded)
while pyarrow still holds one of our filesystems (``wait_for``, registered by the fsspec
module), then marks the process as exiting and waits (bounded) for the operations under
way in other threads to end.
From then on an operation raises ``StreamClosedError`` at once, and a close does no
I/O: what it would have closed is kept (``keep``) until the process ends, when the OS
reclaims the sockets; nothing is released from a foreign thread in the meantime.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ._core.errors import StreamClosedError

__all__ = ["exiting", "guard", "keep", "wait_for"]

_WAIT = 10.0  # at most this long for operations under way in other threads
# ... and this long for what other libraries' threads hold: pyarrow lets go within
# milliseconds of its call returning; a wrapper a program keeps to the end (a global
# PyFileSystem) is let go by the main thread later, and costs this wait at exit.
_PENDING_WAIT = 2.0


class _State:
    def __init__(self) -> None:
        self.lock = threading.Condition(threading.Lock())
        self.running = 0  # blocking operations under way, in any thread
        self.exiting = False
        self.kept: list[Any] = []
        self.pending: list[Callable[[], bool]] = []


_state = _State()


def exiting() -> bool:
    """Whether the interpreter has started to shut down (no more I/O from here on)."""
    return _state.exiting


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Count a blocking file operation while it runs; refuse one once exiting."""
    with _state.lock:
        if _state.exiting:
            raise StreamClosedError("the interpreter is shutting down: no more I/O")
        _state.running += 1
    try:
        yield
    finally:
        with _state.lock:
            _state.running -= 1
            if _state.running == 0:
                _state.lock.notify_all()


def keep(*objects: Any) -> None:
    """Hold ``objects`` (responses, clients) until the process ends, unclosed."""
    _state.kept.extend(objects)


def wait_for(pending: Callable[[], bool]) -> None:
    """At shutdown, wait (bounded) while ``pending()`` is true: something another
    library's native thread still holds and will let go of (see fsspec.py)."""
    _state.pending.append(pending)


def _on_exit() -> None:
    # First what other libraries' threads still hold: they may still read, so I/O is
    # still allowed while they finish.
    deadline = time.monotonic() + _PENDING_WAIT
    while time.monotonic() < deadline and any(pending() for pending in _state.pending):
        time.sleep(0.005)
    deadline = time.monotonic() + _WAIT
    with _state.lock:
        _state.exiting = True
        while _state.running and (left := deadline - time.monotonic()) > 0:
            _state.lock.wait(left)


# An atexit handler: it runs once the main thread is done and every non-daemon thread has
# been joined (so a program's own threads still read to their end), and before the
# interpreter starts to finalize, when daemon and other libraries' native threads may
# still run.
atexit.register(_on_exit)
