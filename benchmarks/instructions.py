"""Instructions per fetch_many batch, counted by valgrind: a CPU measure that host steal
and frequency changes cannot move.

    python benchmarks/instructions.py [--base REV] [--batches 3] [--urls 200]

Starts nginx (benchmarks/_infra.py) on the benchmark file and runs, under
``valgrind --tool=callgrind``, a Python process that calls
``range_streams.fetch_many`` over ``--urls`` URLs x one 4 KiB range at concurrency 20,
once and then ``1 + --batches`` times; the difference divided by ``--batches`` is one
batch's instructions, without the interpreter's start-up and imports. With ``--base``
the same is counted for that git revision (checked out in a temporary worktree) beside
the working tree, both at once on two cores.

Why: on a shared VM the wall-clock CPU of one batch moved by +-20% from one minute to the
next, more than most changes being compared. Under valgrind the client runs ~50x slower,
so it finds every answer already waiting: the count covers the work per request, not the
waits on the event loop (use fetch_many_trace.py for those).
Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
from _infra import exit_on_sigterm, nginx_server, revision_src

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

DRIVER = """
import asyncio, sys
import range_streams
base, batches, urls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
items = [(f"{base}?n={i}", [(i * 4096, i * 4096 + 4096)]) for i in range(urls)]
for _ in range(batches):
    results = asyncio.run(range_streams.fetch_many(items, concurrency=20))
    bad = [r for r in results if r.error is not None]
    if bad:
        raise SystemExit(f"{bad[0].url}: {bad[0].error!r}")
"""


def count(src: Path, url: str, batches: int, urls: int) -> int:
    """Instructions callgrind counts for one process running ``batches`` batches."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            DRIVER,
            url,
            str(batches),
            str(urls),
        ]
        env = dict(os.environ, PYTHONPATH=str(src))
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"valgrind run failed:\n{done.stderr[-2000:]}")
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit("callgrind wrote no instruction total")


def per_batch(src: Path, url: str, batches: int, urls: int, pool: ThreadPoolExecutor) -> float:
    one = pool.submit(count, src, url, 1, urls)
    more = pool.submit(count, src, url, 1 + batches, urls)
    return (more.result() - one.result()) / batches


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--base", help="a git revision to count beside the working tree")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--urls", type=int, default=200)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    data_dir = HERE / ".data"
    art = datagen.generate(True, data_dir)["big_file"]
    trees = {"working tree": REPO / "src"}
    with tempfile.TemporaryDirectory() as work, revision_src(args.base, Path(work)) as base:
        if base is not None:
            trees = {args.base: base, **trees}
        with nginx_server(data_dir, Path(work)) as server, ThreadPoolExecutor(2) as pool:
            url = f"{server.base_url}/{art.name}"
            jobs = {
                label: per_batch(src, url, args.batches, args.urls, pool)
                for label, src in trees.items()
            }
    print(f"fetch_many, {args.urls} URLs x 1 range of 4 KiB, concurrency 20, nginx; callgrind")
    for label, instructions in jobs.items():
        print(
            f"  {label}: {instructions / 1e6:.1f} M instructions per batch"
            f" ({instructions / args.urls / 1e3:.0f} k per URL)"
        )


if __name__ == "__main__":
    main()
