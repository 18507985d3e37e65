"""``get``: a segmented, resumable download (the engine is ``range_streams._state.download``)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from .._state.download import download
from .._state.settings import remote_options
from ._common import Console, TraceLog, UsageError, make_client, sigterm_as_interrupt
from ._progress import progress_bar

__all__ = ["get", "parse_size"]

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """``65536``, ``64K``, ``1.5M``, ``2G`` (binary units) as a number of bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*", text.lower())
    if match is None or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"not a positive size: {text!r} (e.g. 65536, 64K, 4M)")
    return max(int(float(match[1]) * _UNITS[match[2]]), 1)


def _default_target(url: str) -> Path:
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    if not name or name in (".", ".."):
        raise UsageError(f"cannot name a file after {url}: give one with -o FILE")
    return Path(name)


def get(args: argparse.Namespace, console: Console, trace: TraceLog) -> int:
    target = Path(args.output) if args.output else _default_target(args.url)
    if target.is_dir():
        target = target / _default_target(args.url)
    bar = progress_bar(console.err, target.name, enabled=args.progress)
    try:
        with (
            sigterm_as_interrupt(),
            make_client(trace, args.connections, args.client_options) as client,
        ):
            result = download(
                args.url,
                target,
                client=client,
                connections=args.connections,
                segment_size=args.segment_size,
                progress=bar.update,
                on_start=bar.start,
                on_restart=lambda why: console.warn(f"starting over: {why}"),
                rate_limit=args.limit_rate,
                client_options=remote_options(args.client_options),
            )
    finally:
        bar.close()
    if args.progress or (args.progress is None and console.err.isatty()):
        resumed = f", {result.resumed:,} of them from an earlier run" if result.resumed else ""
        print(f"saved {result.path} ({result.size:,} bytes{resumed})", file=console.err)
    return 0
