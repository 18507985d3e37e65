"""fetch_many's wall time, this working tree against a git revision, alternated.

    python benchmarks/fetch_many_ab.py --base REV [--head REV] [--rounds 6] [--runs 5]
                                       [--rtt-ms 20]

Starts nginx and the latency proxy once, then for ``--rounds`` rounds runs a child
process per tree (the revision's ``src`` from a temporary worktree, then this tree's, or
``--head``'s),
each timing ``--runs`` batches of ``fetch_many`` over 200 URLs x one 4 KiB range at
concurrency 20 after one unmeasured batch. Prints each tree's min, quartiles and median.

Why: on this shared VM the same code moves by several ms from one minute to the next,
more than the changes being compared. Alternating the two trees against one server and
proxy puts both under the same weather; 30 batches each separate ~1 ms differences.
(``instructions.py`` counts CPU work; this measures what a caller waits for.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datagen
import run
from _infra import exit_on_sigterm, latency_proxy_command, nginx_server, revision_src

CHILD = """
import asyncio, json, sys, time
import range_streams
url, runs = sys.argv[1], int(sys.argv[2])
items = [(f"{url}?n={i}", [(i * 4096, i * 4096 + 4096)]) for i in range(200)]
times = []
for _ in range(runs + 1):
    started = time.perf_counter()
    results = asyncio.run(range_streams.fetch_many(items, concurrency=20))
    times.append(time.perf_counter() - started)
    bad = [r for r in results if r.error is not None]
    if bad:
        raise SystemExit(f"{bad[0].url}: {bad[0].error!r}")
print(json.dumps(times[1:]))
"""


def batch_times(src: Path, url: str, runs: int) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(runs)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the batch run failed:\n{done.stderr[-2000:]}")
    return [float(t) for t in json.loads(done.stdout)]


def summary(times: list[float]) -> str:
    ms = sorted(t * 1e3 for t in times)
    quarter = len(ms) // 4
    return (
        f"n={len(ms)} min {ms[0]:.1f} p25 {ms[quarter]:.1f} median"
        f" {statistics.median(ms):.1f} p75 {ms[-1 - quarter]:.1f} ms"
    )


def main() -> None:
    exit_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", required=True, help="the git revision to compare with")
    ap.add_argument("--head", help="a git revision to measure instead of the working tree")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runs", type=int, default=5, help="batches per child process")
    ap.add_argument("--rtt-ms", type=float, default=20.0)
    args = ap.parse_args()
    data_dir = run.HERE / ".data"
    art = datagen.generate(True, data_dir)["big_file"]
    with (
        tempfile.TemporaryDirectory() as base_work,
        tempfile.TemporaryDirectory() as work,
        revision_src(args.base, Path(base_work)) as base,
        revision_src(args.head, Path(work)) as head,
    ):
        assert base is not None
        trees = {args.base: base, args.head or "working tree": head or run.HERE.parent / "src"}
        times: dict[str, list[float]] = {label: [] for label in trees}
        with nginx_server(data_dir, Path(work)) as server:
            port = int(server.base_url.rsplit(":", 1)[1])
            with run.latency_proxy(port, args.rtt_ms, latency_proxy_command()) as proxy:
                url = f"{proxy.base}/{art.name}"
                for _ in range(args.rounds):
                    for label, src in trees.items():
                        times[label] += batch_times(src, url, args.runs)
            print(f"fetch_many, 200 URLs x 1 range, concurrency 20, {proxy.label} {args.rtt_ms} ms")
            for label, measured in times.items():
                print(f"  {label}: {summary(measured)}")
            for line in proxy.log:
                print(f"  proxy stderr: {line}")


if __name__ == "__main__":
    main()
