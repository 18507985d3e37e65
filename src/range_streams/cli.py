"""Command line: ``range-streams demo`` (and ``python -m range_streams``)."""

from __future__ import annotations

import argparse
import random
import struct
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import httpx

from ._errors import RangeStreamError
from .stream import RangeStream

__all__ = ["main"]

EOCD = struct.Struct("<4s4H2LH")  # end of central directory record, 22 bytes


def make_sample_zip(path: Path, members: int = 300, seed: int = 1) -> None:
    """A deterministic archive: a few hundred members of mixed sizes, some compressed."""
    rng = random.Random(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(members):
            name = f"data/part-{index:04d}.{'txt' if index % 3 else 'bin'}"
            size = rng.randrange(100, 20_000)
            if index % 3:
                words = " ".join(
                    rng.choice(("range", "byte", "stream", "zip")) for _ in range(size // 6)
                )
                archive.writestr(name, words, compress_type=zipfile.ZIP_DEFLATED)
            else:
                archive.writestr(name, rng.randbytes(size), compress_type=zipfile.ZIP_STORED)


class RequestLog:
    """Prints each request as it completes: method, Range, status, Content-Range, bytes."""

    def __init__(self) -> None:
        self.count = 0
        self.body_bytes = 0

    def __call__(self, response: httpx.Response) -> None:
        self.count += 1
        length = int(response.headers.get("content-length", "0"))
        self.body_bytes += length
        print(
            f"  request {self.count}: {response.request.method}"
            f" Range: {response.request.headers.get('range', '-')}"
            f" -> {response.status_code}"
            f" Content-Range: {response.headers.get('content-range', '-')}"
            f" ({length:,} bytes)"
        )


def demo() -> int:
    from ._serve import serve_directory  # noqa: PLC0415 - needs the 'serve' extra

    with tempfile.TemporaryDirectory(prefix="range-streams-demo-") as tmp:
        archive = Path(tmp) / "sample.zip"
        make_sample_zip(archive)
        size = archive.stat().st_size
        with serve_directory(tmp) as base:
            url = base + "sample.zip"
            print(f"Serving a {size:,}-byte sample zip at {url}")
            log = RequestLog()
            with (
                httpx.Client(event_hooks={"response": [log]}) as client,
                RangeStream(url, client=client) as stream,
            ):
                print("Reading the end of central directory record with a suffix range:")
                stream.add((-22, None))
                fields = EOCD.unpack(stream.read())
                if fields[0] != b"PK\x05\x06":
                    print("no end of central directory record at the end", file=sys.stderr)
                    return 1
                entries, cd_size, cd_offset = fields[4], fields[5], fields[6]
                print(
                    f"  -> {entries} entries; central directory is {cd_size:,} bytes"
                    f" at offset {cd_offset:,}; the file is {stream.total_bytes:,} bytes"
                )
                print("Reading the central directory with one more range:")
                stream.add((cd_offset, cd_offset + cd_size))
                directory = stream.read()
                names = _names(directory, entries)
                print(f"  -> {len(names)} names, e.g. {', '.join(names[:3])}")
            print(
                f"{log.count} requests, {log.body_bytes:,} body bytes of {size:,}"
                f" ({100 * log.body_bytes / size:.1f}% of the file)"
            )
    return 0


def _names(directory: bytes, entries: int) -> list[str]:
    names, offset = [], 0
    for _ in range(entries):
        name_len, extra_len, comment_len = struct.unpack_from("<3H", directory, offset + 28)
        names.append(directory[offset + 46 : offset + 46 + name_len].decode("utf-8", "replace"))
        offset += 46 + name_len + extra_len + comment_len
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="range-streams", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("demo", help="serve a generated zip on 127.0.0.1 and read its directory")
    args = parser.parse_args(argv)
    try:
        if args.command in (None, "demo"):
            return demo()
    except (RangeStreamError, httpx.HTTPError, RuntimeError) as exc:
        print(f"range-streams: {exc}", file=sys.stderr)
        return 1
    parser.print_help()
    return 2
