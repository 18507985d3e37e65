"""Progress bars for ``get``: tqdm when installed (the ``progress`` extra), else a plain
one-line bar; nothing at all when the stream is not a terminal (logs and pipes stay clean).
"""

from __future__ import annotations

import importlib
import shutil
import time
from typing import IO, Any, Protocol

__all__ = ["Bar", "progress_bar"]


class Bar(Protocol):
    def start(self, done: int, total: int) -> None: ...

    def update(self, done: int, total: int) -> None: ...

    def close(self) -> None: ...


class NoBar:
    def start(self, done: int, total: int) -> None:
        return None

    def update(self, done: int, total: int) -> None:
        return None

    def close(self) -> None:
        return None


class TqdmBar:
    def __init__(self, tqdm: Any, stream: IO[str], label: str) -> None:
        self._tqdm = tqdm
        self._stream = stream
        self._label = label
        self._bar: Any = None

    def start(self, done: int, total: int) -> None:
        size = shutil.get_terminal_size()
        self._bar = self._tqdm(
            total=total,
            initial=done,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=self._stream,
            desc=self._label,
            mininterval=0.1,
            # Not tqdm's own probe: a terminal that reports a 0x0 size (a fresh pty) would
            # get an invisible bar; shutil falls back to 80x24 then.
            ncols=size.columns,
            nrows=size.lines,
        )

    def update(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class SimpleBar:
    """``label  42% 1.2 MiB/2.9 MiB 3.1 MiB/s``, redrawn in place at most 10 times a second."""

    def __init__(self, stream: IO[str], label: str, width: int = 30) -> None:
        self._stream = stream
        self._label = label
        self._width = width
        self._begin = time.monotonic()
        self._first = 0
        self._last_draw = 0.0
        self._state = (0, 0)

    def start(self, done: int, total: int) -> None:
        self._begin, self._first = time.monotonic(), done
        self._draw(done, total)

    def update(self, done: int, total: int) -> None:
        self._state = (done, total)
        if time.monotonic() - self._last_draw >= 0.1 or done >= total:
            self._draw(done, total)

    def _draw(self, done: int, total: int) -> None:
        self._last_draw = time.monotonic()
        fraction = done / total if total else 1.0
        filled = int(fraction * self._width)
        speed = (done - self._first) / max(self._last_draw - self._begin, 1e-3)
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(
            f"\r{self._label} [{bar}] {fraction:4.0%} {_human(done)}/{_human(total)}"
            f" {_human(speed)}/s "
        )
        self._stream.flush()

    def close(self) -> None:
        if self._state[1]:
            self._draw(*self._state)  # the last update may have been throttled
        self._stream.write("\n")
        self._stream.flush()


def progress_bar(stream: IO[str], label: str, *, enabled: bool | None = None) -> Bar:
    """A bar on ``stream`` if it is a terminal (or ``enabled`` says so), else no bar."""
    if enabled is None:
        enabled = bool(getattr(stream, "isatty", lambda: False)())
    if not enabled:
        return NoBar()
    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:
        return SimpleBar(stream, label)
    return TqdmBar(tqdm, stream, label)
