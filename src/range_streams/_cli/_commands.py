"""``info``, ``ls``, ``cat``, ``extract`` and ``serve``: each a function of its parsed
arguments, a ``Console`` and the ``TraceLog`` hooked into the client it creates."""

from __future__ import annotations

import argparse
import io
import json
import re
import time
from pathlib import Path
from typing import Any

from .._core.errors import RangeNotSupportedError, RangeStreamError
from .._flows.batch import BatchPolicy
from .._serve import ServedRequest, serve_directory
from .._state.file_core import FileOptions
from .._state.settings import remote_options
from .._state.shared_cache import SharedCache
from ..codecs.zip import ZIP_TAIL_PROBE
from ..file import RangeFile
from ._archive import LS_SCHEMA_VERSION, Archive, detect
from ._common import Console, TraceLog, UsageError, make_client, sigterm_as_interrupt
from ._extract import extract

__all__ = ["cat", "extract_command", "info", "ls", "parse_slice", "serve"]

CAT_CHUNK = 1 << 20


def _dump(console: Console, payload: dict[str, Any]) -> None:
    console.print(json.dumps(payload, indent=2))


# -- info ----------------------------------------------------------------------------------
def probe(file: RangeFile, trace: TraceLog) -> dict[str, Any]:
    """What the server does with ranges, learned by asking: a 1-byte suffix range (ranges,
    suffixes, size, validators), then two 1-byte ranges in one request (multi-range)."""
    remote = file._core.remote
    ranges: bool | None = None
    try:
        if file.read_tail(1):
            ranges = True
    except RangeNotSupportedError:
        ranges = False
    size = remote.total
    last = trace.last()
    headers = last.headers if last is not None else {}
    if size is None and last is not None:
        size = last.content_length  # a 200 (no ranges) says the size in Content-Length
    multi: bool | None = None
    if ranges and size is not None and size >= 3:
        try:
            before = len(trace.records)
            file.read_ranges([(0, 1), (2, 3)])  # max_gap=0: never merged into one range
            multi = remote.multipart_supported
            if multi is None and len(trace.records) == before + 1:
                multi = True  # one answer held both (lighttpd merges them into one range)
        except RangeStreamError:
            multi = False  # an answer we cannot parse is no support worth relying on
    validators = remote.validators
    return {
        "url": file.url,
        "size": size,
        "etag": validators.etag if validators else headers.get("etag"),
        "last_modified": validators.last_modified if validators else headers.get("last-modified"),
        "content_type": headers.get("content-type"),
        "server": headers.get("server"),
        "accept_ranges": headers.get("accept-ranges"),
        "ranges": ranges,
        "suffix_ranges": remote.suffix_supported if ranges else ranges,
        "multi_range": multi if ranges else ranges,
        "requests": len(trace.records),
    }


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def info(args: argparse.Namespace, console: Console, trace: TraceLog) -> int:
    # Never through a cache: what the server does is the question.
    options = FileOptions(
        tail_probe=1, batch=BatchPolicy(max_gap=0), require_ranges=True, cache=False
    )
    with (
        make_client(trace, options=args.client_options) as client,
        _file(args, client, options) as file,
    ):
        report = probe(file, trace)
    if args.json:
        _dump(console, {"schema_version": 1, **report})
        return 0
    size = report["size"]
    rows = [
        ("URL", report["url"]),
        ("Size", "unknown" if size is None else f"{size:,} bytes"),
        ("ETag", report["etag"] or "-"),
        ("Last-Modified", report["last_modified"] or "-"),
        ("Content-Type", report["content_type"] or "-"),
        ("Server", report["server"] or "-"),
        ("Ranges", _yes_no(report["ranges"])),
        ("Suffix ranges", _yes_no(report["suffix_ranges"])),
        ("Multi-range", _yes_no(report["multi_range"])),
        ("Requests", str(report["requests"])),
    ]
    for label, value in rows:
        console.print(f"{label + ':':<15}{value}")
    return 0


# -- ls ------------------------------------------------------------------------------------
def _cache(args: argparse.Namespace) -> SharedCache | bool:
    """The shared cache ``execute`` chose for the command (``--cache``), or none."""
    return getattr(args, "shared_cache", None) or False


def _file(args: argparse.Namespace, client: Any, options: FileOptions | None = None) -> RangeFile:
    """The file at ``args.url`` on the command's client, which was made from the
    command line's request options (the flows obey their redirect rules themselves)."""
    return RangeFile(args.url, client, options, client_options=remote_options(args.client_options))


def _open_archive(args: argparse.Namespace, client: Any) -> tuple[RangeFile, Archive]:
    # The tail read that finds a zip's directory is the zip reader's whole budget when the
    # directory fits: make it the one suffix read that also learns the size.
    file = _file(
        args,
        client,
        FileOptions(tail_probe=ZIP_TAIL_PROBE, require_ranges=True, cache=_cache(args)),
    )
    try:
        return file, detect(file)
    except BaseException:
        file.close()
        raise


def ls(args: argparse.Namespace, console: Console, trace: TraceLog) -> int:
    with make_client(trace, options=args.client_options) as client:
        file, archive = _open_archive(args, client)
        with file:
            members = archive.members()
            image = archive.image()
            size = file.size
    if args.json:
        _dump(
            console,
            {
                "schema_version": LS_SCHEMA_VERSION,
                "url": args.url,
                "format": archive.format,
                "size": size,
                "package": archive.package(),
                "image": image,
                "members": [member.to_json() for member in members],
                "requests": len(trace.records),
            },
        )
        return 0
    what = "chunks" if archive.format == "png" else "members"
    summary = f"{archive.format}: {len(members)} {what}, {size:,} bytes"
    if image is not None:
        summary += f"; {image['width']}x{image['height']}, bit depth {image['bit_depth']}"
    if archive.package():
        summary += f"; package {archive.package()}"
    console.print(summary)
    console.print(f"{'size':>12}  {'compressed':>12}  {'offset':>12}  {'type':<8}  name")
    for m in members:
        packed = "-" if m.compressed_size is None else f"{m.compressed_size:,}"
        console.print(f"{m.size:>12,}  {packed:>12}  {m.offset:>12,}  {m.type:<8}  {m.name}")
    return 0


# -- extract -------------------------------------------------------------------------------
def extract_command(args: argparse.Namespace, console: Console, trace: TraceLog) -> int:
    root = Path(args.output)
    with make_client(trace, options=args.client_options) as client:
        file, archive = _open_archive(args, client)
        with file:
            extract(archive, args.members, root, console)
    return 0


# -- cat -----------------------------------------------------------------------------------
def parse_slice(text: str) -> tuple[int | None, int | None]:
    """``A:B`` as Python slices read it: either end may be missing or negative."""
    match = re.fullmatch(r"\s*([-+]?\d+)?\s*:\s*([-+]?\d+)?\s*", text)
    if match is None:
        raise UsageError(
            f"--range takes START:STOP like a Python slice (0:100, -22:, :-1), not {text!r}"
        )
    start, stop = (None if group is None else int(group) for group in match.groups())
    return start, stop


def cat(args: argparse.Namespace, console: Console, trace: TraceLog) -> int:
    start, stop = parse_slice(args.range) if args.range else (None, None)
    out = console.out_bytes
    # A server without ranges is exit code 5 here, not a whole download behind a slice.
    options = FileOptions(require_ranges=True, cache=_cache(args))
    with (
        make_client(trace, options=args.client_options) as client,
        _file(args, client, options) as file,
    ):
        if (start or 0) < 0 or (stop is not None and stop < 0):
            # One suffix read learns the size and keeps the file's last 64 KiB: a short
            # tail such as -22: is served from it with no second request.
            total = file.seek(0, io.SEEK_END)
            start, stop, _ = slice(start, stop).indices(total)
        start = start or 0
        if stop is not None and stop <= start:
            return 0
        file.seek(start)
        remaining = None if stop is None else stop - start
        while remaining is None or remaining > 0:
            chunk = file.read(CAT_CHUNK if remaining is None else min(CAT_CHUNK, remaining))
            if not chunk:
                break
            out.write(chunk)
            if remaining is not None:
                remaining -= len(chunk)
        out.flush()
    return 0


# -- serve ---------------------------------------------------------------------------------
def _served_line(request: ServedRequest) -> str:
    length = "?" if request.content_length is None else f"{request.content_length:,}"
    return (
        f"{request.method} {request.path} Range: {request.range or '-'} -> {request.status}"
        f" Content-Range: {request.content_range or '-'} ({length} bytes)"
    )


def serve(args: argparse.Namespace, console: Console, trace: TraceLog) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"not a directory: {directory}")

    def on_request(request: ServedRequest) -> None:
        print(trace.prefix + _served_line(request), file=console.err, flush=True)

    hook = on_request if trace.stream is not None else None
    with serve_directory(directory, args.host, args.port, on_request=hook) as base:
        console.print(f"Serving {directory.resolve()} at {base} (Ctrl-C to stop)")
        console.out.flush()
        try:
            with sigterm_as_interrupt():
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopped")
    return 0
