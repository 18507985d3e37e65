"""Run one benchmark task with range-streams 1.4.1 (the previous PyPI release).

Executed by run.py with benchmarks/.venv-upstream/bin/python, never imported: the 1.4.1 API
(RangeStream / ZipStream / TarStream) is unrelated to the 2.x API under development. Reads a
JSON job on stdin, prints one JSON line: {"result": ..., "seconds": ..., "detail": ...}.

Each task uses 1.4.1 the way its documentation suggests, choosing the cheapest documented
option: ZipStream/TarStream with the per-member range registration turned off
(scan_contents/scan_headers=False), single_request=True for the linear read.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import zlib

import httpx

try:
    from range_streams import RangeStream
    from range_streams.codecs import TarStream, ZipStream
except ImportError as exc:  # pragma: no cover
    print(json.dumps({"unavailable": f"range-streams 1.4.1 not importable: {exc}"}))
    sys.exit(0)


def zip_list(job: dict, client: httpx.Client) -> tuple[object, str]:
    s = ZipStream(job["urls"]["many_zip"], client=client, scan_contents=False)
    names = s.filename_list
    return len(names), f"{len(names)} entries"


def zip_extract(job: dict, client: httpx.Client) -> tuple[object, str]:
    member = job["meta"]["big_zip"]["member"]
    s = ZipStream(job["urls"]["big_zip"], client=client, scan_contents=False)
    s.check_central_dir_rec()
    info = next(z for z in s.zipped_files if z.filename == member)
    s.add(info.file_range)
    raw = s.active_range_response.read()
    # the local header's extra field is not skipped by 1.4.1's file_range; ours has none
    data = zlib.decompress(raw, -15) if info.compress_type == 8 else raw
    return lambda: hashlib.sha256(data).hexdigest(), f"{len(data):,} bytes"


def random_reads(job: dict, client: httpx.Client) -> tuple[object, str]:
    n = job["read_size"]
    s = RangeStream(job["urls"]["big_file"], client=client)
    chunks = []
    for off in job["offsets"]:
        s.add((off, off + n))
        chunks.append(s.active_range_response.read())
    return lambda: hashlib.sha256(b"".join(chunks)).hexdigest(), f"{len(job['offsets'])} reads"


def sequential(job: dict, client: httpx.Client) -> tuple[object, str]:
    size, step = job["sizes"]["big_file"], job["seq_read"]
    s = RangeStream(job["urls"]["big_file"], client=client, single_request=True)
    total = 0
    for start in range(0, size, step):
        s.add((start, min(start + step, size)))
        total += len(s.active_range_response.read())
    return total, f"{total:,} bytes"


def tar_list(job: dict, client: httpx.Client) -> tuple[object, str]:
    s = TarStream(job["urls"]["tar"], client=client, scan_headers=False)
    names = s.filename_list
    return len(names), f"{len(names)} members"


TASKS = {
    "zip_list": zip_list,
    "zip_extract": zip_extract,
    "random": random_reads,
    "sequential": sequential,
    "tar_list": tar_list,
}


def main() -> None:
    job = json.loads(sys.stdin.read())
    client = httpx.Client(timeout=120.0)
    t0 = time.perf_counter()
    result, detail = TASKS[job["task"]](job, client)
    seconds = time.perf_counter() - t0
    client.close()
    if callable(result):  # the check's hashing, after the clock stopped (as run.py does)
        result = result()
    print(json.dumps({"result": result, "seconds": seconds, "detail": detail}))


if __name__ == "__main__":
    main()
