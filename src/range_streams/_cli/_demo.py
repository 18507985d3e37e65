"""``demo``: serve a generated zip on 127.0.0.1 and run ``info``, ``ls`` and ``extract``
against it, printing every request each one made. Offline, deterministic, a second or two.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from .._serve import serve_directory
from ._common import Console, TraceLog

__all__ = ["demo", "make_sample_zip"]

SAMPLE_MEMBERS = 300
SHOWN_LINES = 12  # of each command's output (ls prints a line per member)
# A fixed mtime, so the server's ETag and Last-Modified are the same on every run.
SAMPLE_MTIME = 1_704_067_200  # 2024-01-01T00:00:00Z

Runner = Callable[[Sequence[str], Console, TraceLog], int]


def make_sample_zip(path: Path, members: int = SAMPLE_MEMBERS, seed: int = 1) -> None:
    """A deterministic archive: a few hundred members of mixed sizes, some compressed."""
    rng = random.Random(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(members):
            name = f"data/part-{index:04d}.{'txt' if index % 3 else 'bin'}"
            size = rng.randrange(100, 40_000)
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            if index % 3:
                words = " ".join(
                    rng.choice(("range", "byte", "stream", "zip")) for _ in range(size // 6)
                )
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, words)
            else:
                info.compress_type = zipfile.ZIP_STORED
                archive.writestr(info, rng.randbytes(size))
    os.utime(path, (SAMPLE_MTIME, SAMPLE_MTIME))


def _show(console: Console, text: str, tmp: str) -> None:
    lines = text.replace(tmp, "$TMP").splitlines()
    for line in lines[:SHOWN_LINES]:
        console.print(f"    {line}")
    if len(lines) > SHOWN_LINES:
        console.print(f"    ... ({len(lines) - SHOWN_LINES} more lines)")


def demo(console: Console, run: Runner) -> int:
    """``run(argv, console, trace)`` runs one command line (the CLI's own dispatcher)."""
    with tempfile.TemporaryDirectory(prefix="range-streams-demo-") as tmp:
        archive = Path(tmp) / "sample.zip"
        make_sample_zip(archive)
        size = archive.stat().st_size
        picked = ["data/part-0001.txt", "data/part-0150.bin", "data/part-0299.txt"]
        with serve_directory(tmp) as base:
            url = base + "sample.zip"
            console.print(f"Serving a {size:,}-byte zip of {SAMPLE_MEMBERS} members at {url}")
            steps = [["info", url], ["ls", url], ["extract", url, *picked, "-o", f"{tmp}/out"]]
            requests = body_bytes = 0
            for argv in steps:
                console.print(f"\n$ range-streams {' '.join(argv)}".replace(tmp, "$TMP"))
                output = io.StringIO()
                trace = TraceLog()
                code = run(argv, Console(out=output, err=output), trace)
                _show(console, output.getvalue(), tmp)
                if code != 0:
                    return code
                console.print(f"  {len(trace.records)} request(s):")
                for record in trace.records:
                    console.print(f"    {record.line().replace(url, 'sample.zip')}")
                requests += len(trace.records)
                body_bytes += sum(record.content_length or 0 for record in trace.records)
        with zipfile.ZipFile(archive) as local:
            same = all(
                local.read(name) == (Path(tmp) / "out" / name).read_bytes() for name in picked
            )
    if not same:
        console.warn("the extracted members differ from the archive's")
        return 1
    console.print(
        f"\nExtracted members match the archive. {requests} requests in all,"
        f" {body_bytes:,} body bytes of {size:,} ({100 * body_bytes / size:.1f}% of the file)."
    )
    return 0
