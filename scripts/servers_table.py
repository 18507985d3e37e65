#!/usr/bin/env python3
# ruff: noqa: E501  (markdown table rows are kept on one line each)
"""Render docs/Servers.md: per case, what each real server does and what range-streams does.

Inputs (both committed):

- docs/servers-observed.json: raw probes of each server with plain httpx
  (tests/servers/observed.py);
- docs/servers-matrix.json: the outcome of each conformance case through the library's
  public API (tests/conformance/test_matrix.py, written with RANGE_STREAMS_WRITE_MATRIX=1).

    RANGE_STREAMS_WRITE_MATRIX=1 python -m pytest tests/conformance/test_matrix.py
    python scripts/servers_table.py            # writes docs/Servers.md
    python scripts/servers_table.py --check    # exit 1 if docs/Servers.md is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OBSERVED = ROOT / "docs" / "servers-observed.json"
MATRIX = ROOT / "docs" / "servers-matrix.json"
OUTPUT = ROOT / "docs" / "Servers.md"

# case -> (what it checks, the observed summary keys that describe the server's side)
CASES: dict[str, tuple[str, list[str]]] = {
    "single range": (
        "`bytes=1000-1999` through `RangeStream.add` and the file object (`ExactReads`).",
        ["single"],
    ),
    "open range": (
        "`bytes=1048000-`: the rest of the file; its answer tells the length.",
        ["open"],
    ),
    "suffix range": (
        "`bytes=-100` (`RangeStream.add((-100, None))`) and the file object's end-relative"
        " seek (one suffix request of 64 KiB + 42). Refused suffixes fall back to"
        " `bytes=0-0` + an absolute range, remembered per file.",
        ["suffix"],
    ),
    "suffix longer than the file": (
        "`bytes=-200` on the 100-byte small.bin: the whole file, however it is answered.",
        ["suffix>size"],
    ),
    "range past the end": (
        "`bytes=2000000-2000099` of a 1 MiB file before the length is known (the server"
        " says), after it is known (refused locally, nothing sent), and through the file"
        " object (`b''`, as a local file).",
        ["past end", "end>EOF"],
    ),
    "empty file": (
        "empty.bin: size 0, `read()`/`read_tail()`/`read_ranges([(0, 0)])` give `b''`,"
        " suffix ranges give nothing (Caddy answers `bytes=-10` with"
        " `206 Content-Range: bytes 0--1/0`).",
        ["empty file", "@empty_file_suffix"],
    ),
    "invalid ranges rejected locally": (
        "Inverted, float, bool, str and malformed ranges, negative seeks, a non-http URL:"
        " `InvalidRangeError`/`InvalidURLError` before anything is sent (the access log"
        " holds only a later sentinel request).",
        ["malformed"],
    ),
    "multi-range (read_ranges)": (
        "`read_ranges` of 5 spans (two overlapping) in 4 groups, then 2 more spans: one"
        " multi-range request, or, where refused, concurrent single ranges (remembered).",
        ["multi", "multi order"],
    ),
    "close ranges (lighttpd merges)": (
        "`read_ranges` of `0-9,20-29,40-49` with `max_gap=0`: lighttpd answers one merged"
        " range, which is cut up.",
        ["3 close"],
    ),
    "many ranges (>50, split)": (
        "80 far-apart spans: at most 50 ranges per request (`BatchPolicy.max_ranges`).",
        ["multi"],
    ),
    "length without HEAD": (
        "`RangeStream.total_bytes` and `RangeFile.size`: `GET bytes=0-0`, never HEAD.",
        ["0-0 on wire", "HEAD"],
    ),
    "200 to a ranged request": (
        "A server that ignores Range: reads from offset 0 stream through its 200;"
        " elsewhere `RangeNotSupportedError`, never the wrong slice.",
        ["single", "Accept-Ranges"],
    ),
    "gzip server, text file": (
        "text.txt: a range, `read_ranges` and the whole file, with `Accept-Encoding:"
        " identity` on every request (asserted) and never a `ContentEncodingError`. The"
        " server column is what it does when asked for gzip.",
        ["gzip text range"],
    ),
    "redirect": (
        "`/redirect/<name>` answers 302: the Range is sent again to the target, and later"
        " requests go there directly (the server's log shows one 302 only).",
        ["redirect"],
    ),
    "If-Range resume": (
        "A backward seek past the kept history (`BodyLimits(history=1024)`): the resume"
        " carries `If-Range` (the strong ETag, else Last-Modified), never `If-Match`.",
        ["If-Range etag", "If-Range date", "If-Range wrong"],
    ),
    "file rewritten (same size)": (
        "Validators pinned by the first answer; the file rewritten with the same size in"
        " the same second, then in a later one.",
        ["@validators"],
    ),
    "file truncated mid-read": (
        "An 8 MiB range read while the file is truncated to 2 MiB (client read timeout"
        " 1 s, `RetryPolicy(attempts=2)`): only the old version's bytes, then an error. The"
        " server column is read off the first fault the library met.",
        ["@truncation"],
    ),
    "async": (
        "`AsyncRangeStream` and `open_async` (seek from the end, `read_ranges`).",
        ["single"],
    ),
}

INTRO = """\
# Real servers: what they do, and what range-streams does

Generated by `scripts/servers_table.py` from
[servers-observed.json](servers-observed.json) (each server probed with plain httpx,
`tests/servers/observed.py`) and [servers-matrix.json](servers-matrix.json) (each case run
through the library's public API, `tests/conformance/test_matrix.py`). Every case asserts
the exact bytes (or one of the library's own exceptions where no right answer exists) and,
where it means something, the requests in the server's access log. Regenerate with:

```sh
RANGE_STREAMS_WRITE_MATRIX=1 python -m pytest tests/conformance/test_matrix.py
python scripts/servers_table.py
```

"Requests" are the server's own access-log lines for the case: method, `Range`, status
(in the order logged; concurrent ones in any order).
"""

VALIDATORS = """\
## Validators: one version of the file, or an error

* **Pinned from the first answer.** The first response that tells the file's length also
  fixes its validators: the ETag if it is strong, else Last-Modified, and always the size
  (from `Content-Range` or a 200's `Content-Length`). Every later answer is compared with
  them: a different size, ETag or Last-Modified (where both sides have one; some servers
  drop ETag on 206s) raises `RemoteFileChangedError`. Weak ETags are never used as
  preconditions (RFC 9110 forbids them there).
* **Later requests carry `If-Match`** (the strong ETag), or `If-Unmodified-Since` (the
  date) when there is no ETag, so a server that checks answers a changed file with a
  cheap 412, which is `RemoteFileChangedError` too. A server that ignores the precondition
  is caught by the comparison above.
* **Resumes carry `If-Range`** (a broken body, or a backward seek past the kept history):
  a server that checks sends the whole new file (200), whose validators differ; one that
  ignores it (aiohttp, Tornado, Twisted, RangeHTTPServer: "If-Range wrong" above) sends a
  206 of the new version, whose validators differ too. Either way: an error, never a mix.
* **A 416 for bytes the pinned length had** means the file shrank, also
  `RemoteFileChangedError` (RangeHTTPServer, Apache and lighttpd send no `*/N` to say so).
* **The limit: validators only as fine as the server makes them.** nginx's ETag is the
  mtime in *seconds* and the size (hex), Caddy's the same in base 36, lighttpd's inode,
  mtime in seconds and size; Twisted, RangeHTTPServer and http.server send no ETag, and
  Last-Modified has one-second resolution. Tornado's ETag is a hash of the content, but
  computed once per path and cached for the life of the process: it never changes, so
  only its Last-Modified (seconds) tells versions apart. On all of these a rewrite **in
  the same second with the same size** leaves every validator unchanged, and nothing
  (neither the server's preconditions nor the library's comparison) can tell the versions
  apart: a read spanning the rewrite returns bytes of both
  (`test_limitation_a_same_second_same_size_rewrite_is_invisible`, and the "file
  rewritten" case above). Apache (mtime in microseconds), aiohttp (nanoseconds),
  Werkzeug (float mtime) and Starlette (a hash of the float mtime and size) tell them
  apart.
* **lighttpd's stat cache** serves a rewritten file's new bytes under the *old* size and
  validators for up to a second (`server.stat-cache-engine`): nothing can tell until it
  expires. Where that matters, set `server.stat-cache-engine = "disable"`.
* Only a checksum of the content closes these gaps; range-streams has none of its own.
  Formats that carry one (a zip member's CRC-32, PNG chunk CRCs) are checked by their
  readers; otherwise compare a digest you trust.
"""

LIMITS = """\
## What no client can detect (documented by tests)

* **Wrong bytes under a right header.** A server that labels the bytes of `[1001, 2001)` as
  `Content-Range: bytes 1000-1999/N` cannot be caught without a checksum: the library
  returns what was sent
  (`test_limitation_shifted_bytes_under_a_correct_header_are_not_detected`). Everything
  the header can show is checked: start, length, total, encoding, versions.
* **A same-second, same-size rewrite** on servers with second-resolution validators (above).
* **Bytes past a declared end on a kept-alive connection** are read by h11 as the start of
  the next answer on that connection. Garbage fails to parse there, and the request is sent
  again on a fresh connection
  (`test_bytes_past_the_declared_end_never_reach_the_next_answer`); bytes that happen to
  form a well-formed 206 for the next request would be taken as it. RangeHTTPServer, the
  one server that over-sends (the whole file after `Content-Length: 1` for `bytes=0-0`),
  speaks HTTP/1.0 and closes the connection after every answer, so it cannot happen there.
"""

FAULTS = """\
## Faults real servers cannot be made to show

`tests/conformance/test_faults.py` runs them against `tests/conformance/faults.py`, an ASGI
app served by uvicorn in a thread; each ends in exact bytes or one of the library's errors,
with a bounded number of requests (pytest-timeout marks, no wall-clock assertions):

| fault | range-streams does |
|---|---|
| body cut short, then FIN / RST | resumed from the byte it got, `bytes=<got>-<end>` + `If-Range`: exact bytes |
| body stalls (client read timeout) | `ReadTimeout`, resumed: exact bytes |
| it happens every time | `RetriesExhaustedError` after `RetryPolicy.attempts` resumes, with `.position` (how far reading got; progress does not refill the budget) |
| no answer at all (stalled headers) | httpx's `ReadTimeout`, passed through |
| stale keep-alive connection (dropped as the request arrives) | sent once more on a fresh connection: exact bytes |
| garbage after a complete answer on a kept-alive connection | the next request on it fails to parse, is sent again: exact bytes |
| resume request fails (server gone, connection dropped) | counts against the retry budget: exact bytes, or `RetriesExhaustedError` |
| file replaced between requests (412 / ETag / Last-Modified / size) | `RemoteFileChangedError`, never a mix |
| file replaced during a resume, If-Range honoured (200) or ignored (206) | `RemoteFileChangedError` |
| file shrank: 416 with or without `*/N` | `RemoteFileChangedError` |
| `Content-Range` start differs from the request | `ContentRangeError`, not retried |
| shifted bytes, correct header | not detectable (documented above) |
| garbage multipart body | `MultipartError` |
| 40-digit total, 10 kB `Content-Range`, 10 kB of digits, end past total | `ContentRangeError` |
| 30-digit `Content-Length` | h11 refuses it: httpx's `RemoteProtocolError` (sent again once) |
| 206 without `Content-Range`; `Content-Length` disagreeing with it | `ContentRangeError` |
| `bytes 0-99/*` on the first answer (no length yet) | `ContentRangeError`; once the length is known, accepted |
| gzip-encoded 206; multipart answer to one range | `ContentEncodingError`; `ContentRangeError` |
| 10 kB unrelated header, 10 kB ETag | fine: exact bytes |
| chunked 206 (no real server sends one) | exact bytes; a chunked body running long is `IncompleteBodyError` |
| redirect loop | `RangeResponseError` after 10 hops |

`tests/conformance/test_fuzz.py` (hypothesis) feeds arbitrary input to
`parse_content_range`, `coerce_span`/`resolve_span`/`range_header`, `parse_byteranges`/
`extract`, `accept_partial`/`accept_whole`, the validators, the `_coalesce` planner, and
`open_span`/`Body`/`learn_length` driven over arbitrary statuses, headers and bodies: the
answer is a value or a `RangeStreamError`, never another exception.
"""

FIXED = """\
## What this matrix found in the library (fixed)

* Caddy's `206 Content-Range: bytes 0--1/0` (a suffix range of an empty file) was
  refused as malformed: an empty file could not be read from Caddy.
* A 200 carrying the whole file in answer to a suffix at least as long as the file was
  refused (`RangeNotSupportedError`), though it is exactly the answer: empty files on
  nginx, Apache, lighttpd, Werkzeug and http.server; Tornado's answer to a long suffix.
* A range past the end answered with the whole file (servers without ranges) raised
  `RangeNotSupportedError`; now `InvalidRangeError`, and `b''` from the file object.
* A request whose pooled connection was stale, or dirty with bytes past an earlier
  answer's end, raised httpx's `RemoteProtocolError`; now sent once more.
* A resume request that failed escaped as a raw httpx error from the middle of a read;
  now it costs a retry attempt.
* A 416 without `*/N` to a resume of a shrunk file said `RangeNotSatisfiableError`; now
  `RemoteFileChangedError`.
* (Fuzzing) `Content-Length: ²` passed `str.isdigit()` and raised `ValueError`.

Still open (outside the modules this work may change):

* lighttpd answers only the **first 10 ranges** of a longer multi-range request (a 206 with
  10 parts); `read_ranges` then raises `MultipartError` instead of fetching the rest.
  Workaround: `BatchPolicy(max_ranges=10)`.
* On a server without ranges, sequential reads through the file object past its first
  read-ahead window ask for the next window, which is answered with the whole file again
  and refused (`RangeNotSupportedError`); `f.read()` of the whole file works.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _short_range(value: str) -> str:
    if value.count(",") >= 4:
        head = ",".join(value.split(",")[:2])
        return f"{head},… ({value.count(',') + 1} ranges)"
    return value


def _requests(lines: list[str]) -> str:
    shown = [_short_range(line) for line in lines]
    if len(shown) > 6:
        shown = [*shown[:4], f"… {len(lines)} requests in all"]
    return "<br>".join(f"`{_cell(line)}`" for line in shown) or "—"


def _truncation(result: str) -> str:
    first = result.split("→", maxsplit=1)[0]
    if "ReadTimeout, resumed" in first:
        return "stalls at the new end (only the client's read timeout ends it)"
    if "RemoteProtocolError, resumed" in first:
        return "closes the connection at the new end"
    return "—"


def _observed(server: dict[str, Any], keys: list[str], result: str = "") -> str:
    summary = server["summary"]
    probes = server["probes"]
    parts = []
    for key in keys:
        if key == "@empty_file_suffix":
            probe = probes["empty_file_suffix"]
            cr = f" `{probe['content_range']}`" if probe.get("content_range") else ""
            parts.append(f"bytes=-10: {probe['status']}{cr}")
        elif key == "@truncation":
            parts.append(_truncation(result))
        elif key == "@validators":
            etag = server.get("etag") or "no"
            modified = "Last-Modified" if server.get("last_modified") else "no Last-Modified"
            parts.append(f"{etag} ETag, {modified}")
        elif key in summary:
            label = "" if len(keys) == 1 else f"{key}: "
            parts.append(f"{label}{summary[key]}")
    return _cell("; ".join(parts)) or "—"


def render(observed: dict[str, Any], matrix: dict[str, Any]) -> str:
    servers = {s["server"]: s for s in observed["servers"]}
    results = matrix["servers"]
    order = [s["server"] for s in observed["servers"] if s["server"] in results]
    out = [INTRO, "## Servers\n"]
    out.append("| server | what | version | ETag | Last-Modified | ranges | multi-range |")
    out.append("|---|---|---|---|---|---|---|")
    for sid in order:
        s = servers[sid]
        out.append(
            f"| {sid} | {_cell(s['description'])} | {_cell(str(s.get('version', '')))} "
            f"| {s.get('etag') or '—'} | {'yes' if s.get('last_modified') else '—'} "
            f"| {s['summary'].get('single', '')} | {_cell(s['summary'].get('multi', ''))} |"
        )
    out.append("")
    out.append("## Cases\n")
    for case in CASES:
        anchor = case.lower().replace(" ", "-")
        for ch in "()>,":
            anchor = anchor.replace(ch, "")
        out.append(f"- [{case}](#{anchor})")
    out.append("")
    for case, (what, keys) in CASES.items():
        out.append(f"### {case}\n")
        out.append(what + "\n")
        out.append("| server | the server does | range-streams does | requests |")
        out.append("|---|---|---|---|")
        for sid in order:
            record = results[sid].get(case)
            if record is None:
                continue
            out.append(
                f"| {sid} | {_observed(servers[sid], keys, record['result'])} "
                f"| {_cell(record['result'])} "
                f"| {_requests(record.get('requests', []))} |"
            )
        out.append("")
    out.extend([VALIDATORS, LIMITS, FAULTS, FIXED])
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="fail if the output is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render(json.loads(OBSERVED.read_text()), json.loads(MATRIX.read_text()))
    if args.check:
        if not args.output.exists() or args.output.read_text() != text:
            print(f"{args.output} is stale: run scripts/servers_table.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
