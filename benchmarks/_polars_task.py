"""One polars query in a fresh interpreter, so it opens fresh connections as every other
row of the harness does (polars keeps a connection pool for the life of the process:
a second query in one process skips the handshakes). Reads a JSON job on stdin, prints
``{"seconds": ..., "result": ...}``; the time is the query's alone (imports excluded).

    echo '{"url": "...", "query": "sum|last|rows", "first_id": 2750000}' | python _polars_task.py
"""

from __future__ import annotations

import json
import sys
import time

import polars as pl


def main() -> None:
    job = json.loads(sys.stdin.read())
    url, query = job["url"], job["query"]
    start = time.perf_counter()
    frame = pl.scan_parquet(url)
    if query == "rows":
        result = frame.select(pl.len()).collect().item()
    else:
        if query == "last":
            frame = frame.filter(pl.col("id") >= job["first_id"])
        result = frame.select(pl.col("value").sum()).collect().item()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "result": result}))


if __name__ == "__main__":
    main()
