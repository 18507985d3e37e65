"""A process that read parquet through ``rs+http`` exits cleanly, every time.

pyarrow lets go of the filesystem it wrapped (its ``FSSpecHandler``) from one of its C++
threads, often just after ``read_table`` has returned; if the interpreter is finalizing
by then, that thread is ended inside C++ and the process aborts (SIGABRT, exit 134,
``terminate called without an active exception``) unless ``range_streams._exit`` waits
for it. The script runs 20 times here; each must exit 0.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.servers.fixtures import MTIME
from tests.servers.launch import RunningServer

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("fsspec")

RUNS = 20
SCRIPT = """
import sys
import fsspec
import pyarrow.parquet as pq

table = pq.read_table(
    sys.argv[1],
    columns=["value", "id"],
    filters=[("id", ">=", 150_000)],
    filesystem=fsspec.filesystem("rs+http"),
)
assert table.num_rows == 50_000, table.num_rows
print("ok")
"""


@pytest.fixture(scope="module")
def url(server_factory: Callable[..., RunningServer], docroot: Path) -> str:
    rng = random.Random(5)
    rows = 200_000
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "value": pa.array([rng.random() for _ in range(rows)]),
            "label": pa.array([f"label-{rng.randrange(5000)}" for _ in range(rows)]),
        }
    )
    path = docroot / "exit.parquet"
    pq.write_table(table, path, row_group_size=20_000)
    path.chmod(0o644)
    os.utime(path, (MTIME, MTIME))
    return "rs+" + server_factory("nginx").url("exit.parquet")


def test_reading_parquet_then_exiting_never_aborts(url: str, tmp_path: Path) -> None:
    script = tmp_path / "read.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def run(_: int) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, str(script), url],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        return done.returncode, (done.stdout + done.stderr)[-500:]

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(run, range(RUNS)))
    failed = [(code, tail) for code, tail in outcomes if code != 0]
    assert not failed, f"{len(failed)} of {RUNS} runs failed: {failed[:2]}"
    assert all(tail.strip().endswith("ok") for _, tail in outcomes)


HELD = """
import threading, time
import fsspec
import pyarrow.fs

handler = pyarrow.fs.FSSpecHandler(fsspec.filesystem("rs+http"))
filesystem = pyarrow.fs.PyFileSystem(handler)
del handler


def let_go(held):
    time.sleep(0.3)
    held.clear()  # the last reference to the handler goes, in another thread
    print("released", flush=True)


threading.Thread(target=let_go, args=([filesystem],), daemon=True).start()
del filesystem
print("main done", flush=True)
"""


def test_shutdown_waits_for_pyarrow_to_let_go_of_the_filesystem(tmp_path: Path) -> None:
    """The mechanism, deterministically: another thread holds pyarrow's wrapper of our
    filesystem past the end of the script; shutdown waits until it lets go (the daemon
    thread would otherwise be stopped first, and "released" never printed)."""
    script = tmp_path / "held.py"
    script.write_text(HELD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.split() == ["main", "done", "released"]


LATE_READER = """
import sys, threading, time
import range_streams

def read_late(url):
    time.sleep(0.3)  # the main thread has finished by now
    with range_streams.open(url) as f:
        f.seek(-8, 2)
        print(len(f.read()), flush=True)

threading.Thread(target=read_late, args=(sys.argv[1],)).start()
print("main done", flush=True)
"""


def test_a_programs_own_threads_read_to_their_end(url: str, tmp_path: Path) -> None:
    """Shutdown waits for non-daemon threads before refusing I/O: they are the program's."""
    script = tmp_path / "late.py"
    script.write_text(LATE_READER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(script), url.removeprefix("rs+")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.split() == ["main", "done", "8"]
