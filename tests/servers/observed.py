"""Probe a running server's range-request behaviour with plain httpx, as facts for the library.

:func:`observe` sends a fixed set of requests (single, open, suffix, past-end, multi-range,
HEAD, redirect, gzip, If-Range, ...) and returns a JSON-able dict; :func:`render_table`
summarizes many of those as a text table. Values that change from run to run (dates, ETag
values, ports, multipart boundaries) are reduced to their shape so the saved JSON is stable.

    python -m tests.servers.observed [docs/servers-observed.json]   # from the repo root
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import socket
import subprocess
import sys
import zlib
from collections.abc import Iterable
from email.message import Message
from pathlib import Path
from typing import Any

import httpx

from .fixtures import docroot_bytes
from .launch import HOST, RunningServer

OBSERVED_JSON = Path(__file__).resolve().parents[2] / "docs" / "servers-observed.json"

IDENTITY = {"Accept-Encoding": "identity"}
KEEP_HEADERS = (
    "content-type",
    "content-range",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "accept-ranges",
    "vary",
)

# name -> (method, docroot file, request headers); Accept-Encoding is identity unless given.
PROBES: dict[str, tuple[str, str, dict[str, str]]] = {
    "full": ("GET", "sample.bin", {}),
    "single": ("GET", "sample.bin", {"Range": "bytes=0-99"}),
    "first_byte": ("GET", "sample.bin", {"Range": "bytes=0-0"}),
    "open": ("GET", "sample.bin", {"Range": "bytes=1048000-"}),
    "suffix": ("GET", "sample.bin", {"Range": "bytes=-100"}),
    "suffix_longer_than_file": ("GET", "small.bin", {"Range": "bytes=-200"}),
    "end_past_eof": ("GET", "sample.bin", {"Range": "bytes=1048500-2000000"}),
    "past_end": ("GET", "sample.bin", {"Range": "bytes=2000000-2000099"}),
    "empty_file": ("GET", "empty.bin", {"Range": "bytes=0-99"}),
    "empty_file_suffix": ("GET", "empty.bin", {"Range": "bytes=-10"}),
    "malformed": ("GET", "small.bin", {"Range": "bytes=abc"}),
    "inverted": ("GET", "small.bin", {"Range": "bytes=50-10"}),
    "other_unit": ("GET", "small.bin", {"Range": "items=0-9"}),
    "multi": ("GET", "sample.bin", {"Range": "bytes=0-9,20-29"}),
    "multi_reversed": ("GET", "sample.bin", {"Range": "bytes=20-29,0-9"}),
    "multi_close": ("GET", "sample.bin", {"Range": "bytes=0-9,12-19,22-29"}),
    "multi_overlap": ("GET", "sample.bin", {"Range": "bytes=0-50,25-75"}),
    "multi_one_unsatisfiable": ("GET", "sample.bin", {"Range": "bytes=0-9,2000000-2000009"}),
    "head": ("HEAD", "sample.bin", {}),
    "head_range": ("HEAD", "sample.bin", {"Range": "bytes=0-99"}),
    "gzip_text_full": ("GET", "text.txt", {"Accept-Encoding": "gzip"}),
    "gzip_text_range": ("GET", "text.txt", {"Accept-Encoding": "gzip", "Range": "bytes=0-99"}),
    "gzip_bin_range": ("GET", "sample.bin", {"Accept-Encoding": "gzip", "Range": "bytes=0-99"}),
}


def _shape_boundary(boundary: str) -> str:
    if re.fullmatch(r"[0-9]+", boundary):
        kind = "digits"
    elif re.fullmatch(r"[0-9a-f]+", boundary):
        kind = "hex"
    elif re.fullmatch(r"[0-9A-Za-z]+", boundary):
        kind = "alnum"
    else:
        kind = "mixed"
    return f"{kind}x{len(boundary)}"


def _content_range(value: str | None) -> tuple[int, int, int | None] | None:
    if not value:
        return None
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value)
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), int(m.group(2)), total


def _classify(body: bytes, content: bytes, content_range: str | None) -> str:
    """What a (decoded-or-not) body is, relative to the file."""
    if not body:
        return "empty"
    cr = _content_range(content_range)
    if cr is not None and body == content[cr[0] : cr[1] + 1]:
        return "matches Content-Range"
    if body == content:
        return "full file"
    if content.startswith(body):
        return "prefix of file"
    try:
        inflated = zlib.decompressobj(wbits=47).decompress(body)
    except zlib.error:
        inflated = None
    if inflated is not None and content.startswith(inflated):
        if cr is not None:
            return "slice of gzipped representation"
        return "gzipped file" if inflated == content else "gzip of a prefix"
    return "other"


def _parse_multipart(body: bytes, content_type: str, content: bytes) -> dict[str, Any]:
    msg = Message()
    msg["content-type"] = content_type
    boundary = msg.get_param("boundary")
    raw_ct_params = content_type.split(";", 1)[1] if ";" in content_type else ""
    info: dict[str, Any] = {
        "boundary_quoted": bool(re.search(r'boundary\s*=\s*"', raw_ct_params)),
        "boundary_shape": _shape_boundary(boundary) if isinstance(boundary, str) else None,
    }
    if not isinstance(boundary, str):
        info["error"] = "no boundary"
        return info
    delim = b"--" + boundary.encode("latin-1")
    first = body.find(delim)
    if first < 0:
        info["error"] = "boundary not found in body"
        return info
    info["preamble"] = body[:first].decode("latin-1")
    parts = []
    pos = first
    closed = False
    while True:
        pos += len(delim)
        if body.startswith(b"--", pos):
            closed = True
            info["epilogue"] = body[pos + 2 :].decode("latin-1")
            break
        head_end = body.find(b"\r\n\r\n", pos)
        nxt = body.find(b"\r\n" + delim, head_end + 4 if head_end >= 0 else pos)
        if head_end < 0 or nxt < 0:
            info["error"] = "truncated part"
            break
        header_lines = body[pos:head_end].decode("latin-1").strip("\r\n").split("\r\n")
        headers = {}
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        part_body = body[head_end + 4 : nxt]
        cr = headers.get("content-range")
        parts.append(
            {
                "content_range": cr,
                "content_type": headers.get("content-type"),
                "header_names": sorted(headers),
                "body": _classify(part_body, content, cr),
            }
        )
        pos = nxt + 2
    info["closed"] = closed
    info["parts"] = parts
    return info


def _normalize_location(location: str | None, server: RunningServer) -> str | None:
    if location is None:
        return None
    return location.replace(server.origin, "{origin}")


def _etag_shape(etag: str | None) -> str | None:
    if etag is None:
        return None
    return "weak" if etag.startswith("W/") else "strong"


def _send(
    client: httpx.Client,
    method: str,
    url: str,
    headers: dict[str, str],
) -> tuple[httpx.Response, bytes]:
    merged = {**IDENTITY, **headers}
    with client.stream(method, url, headers=merged) as resp:
        raw = b"".join(resp.iter_raw())
    return resp, raw


def summarize(resp: httpx.Response, raw: bytes, content: bytes, method: str) -> dict[str, Any]:
    out: dict[str, Any] = {"status": resp.status_code, "http_version": resp.http_version}
    for name in KEEP_HEADERS:
        value = resp.headers.get(name)
        if value is not None:
            out[name.replace("-", "_")] = value
    ctype = resp.headers.get("content-type", "")
    if "boundary=" in ctype:
        out["content_type"] = re.sub(r"boundary=.*", "boundary=...", ctype)
    out["body_length"] = len(raw)
    if method == "HEAD":
        return out
    if ctype.lower().startswith("multipart/"):
        out["multipart"] = _parse_multipart(raw, ctype, content)
    else:
        out["body"] = _classify(raw, content, resp.headers.get("content-range"))
    return out


def _wire(server: RunningServer, path: str, rng: str) -> dict[str, Any]:
    """A GET over a raw socket with ``Connection: close``: does the server send exactly
    Content-Length bytes? (httpx would stop reading at Content-Length and hide extra bytes.)"""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
        f"Range: {rng}\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    chunks = []
    with socket.create_connection((HOST, server.port), 10) as sock:
        sock.sendall(request)
        while data := sock.recv(65536):
            chunks.append(data)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return {
        "status": int(lines[0].split()[1]),
        "content_length": headers.get("content-length"),
        "bytes_after_headers": len(body),
        "chunked": "chunked" in headers.get("transfer-encoding", ""),
    }


def package_version(server: RunningServer) -> str | None:
    """The installed version of the server's package (dpkg for Debian, pip metadata else)."""
    spec = server.spec
    if spec.kind == "debian":
        if shutil.which("dpkg-query") is None:
            return None
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", spec.name],
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.strip() or None
    dist = {"uvicorn-starlette": "starlette", "http.server": None}.get(spec.name, spec.name)
    if dist is None:
        return sys.version.split()[0]
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def observe(server: RunningServer) -> dict[str, Any]:
    """Run every probe against ``server``; return the JSON-able observations."""
    result: dict[str, Any] = {
        "server": server.id,
        "name": server.name,
        "variant": server.variant,
        "description": server.spec.description,
        "version": package_version(server),
        "expected_ranges": server.spec.ranges,
        "expected_multirange": server.spec.multirange,
    }
    probes: dict[str, Any] = {}
    validators: dict[str, str | None] = {}
    with httpx.Client(trust_env=False, timeout=15.0) as client:
        for key, (method, name, headers) in PROBES.items():
            resp, raw = _send(client, method, server.url(name), headers)
            probes[key] = summarize(resp, raw, docroot_bytes(name), method)
            if key == "full":
                result["server_header"] = resp.headers.get("server")
                validators["etag"] = resp.headers.get("etag")
                validators["date"] = resp.headers.get("last-modified")
                result["etag"] = _etag_shape(validators["etag"])
                result["last_modified"] = validators["date"] is not None
        # If-Range with the validators the server gave out.
        sample = docroot_bytes("sample.bin")
        if_range = {
            "if_range_etag": validators["etag"],
            "if_range_date": validators["date"],
            "if_range_mismatch": '"not-the-etag"',
        }
        for key, validator in if_range.items():
            if validator is None:
                probes[key] = None
                continue
            resp, raw = _send(
                client,
                "GET",
                server.url("sample.bin"),
                {"Range": "bytes=0-99", "If-Range": validator},
            )
            probes[key] = summarize(resp, raw, sample, "GET")
        # Redirect, not followed then followed, with a Range header.
        resp, raw = _send(client, "GET", server.redirect_url("sample.bin"), {"Range": "bytes=0-99"})
        probes["redirect"] = {
            "status": resp.status_code,
            "location": _normalize_location(resp.headers.get("location"), server),
        }
        followed = client.get(
            server.redirect_url("sample.bin"),
            headers={**IDENTITY, "Range": "bytes=0-99"},
            follow_redirects=True,
        )
        probes["redirect_followed"] = summarize(followed, followed.content, sample, "GET")
        probes["redirect_followed"]["hops"] = len(followed.history)
    probes["wire_first_byte"] = _wire(server, "/files/sample.bin", "bytes=0-0")
    result["probes"] = probes
    result["summary"] = summarize_probes(probes)
    return result


# ---------------------------------------------------------------------------------------------
def _brief(p: dict[str, Any] | None) -> str:
    """One response in a few words: status, and what the body was when interesting."""
    if p is None:
        return "n/a"
    status = p["status"]
    if "multipart" in p:
        mp = p["multipart"]
        return f"{status} multipart x{len(mp.get('parts', []))}"
    body = p.get("body")
    if status == 206:
        return f"{status}" if body == "matches Content-Range" else f"{status} ({body})"
    if status == 200:
        return "200 full" if body == "full file" else f"200 ({body})"
    return str(status)


def _multi_desc(p: dict[str, Any]) -> str:
    if "multipart" not in p:
        return _brief(p)
    mp = p["multipart"]
    ranges = [part["content_range"] for part in mp.get("parts", [])]
    q = "quoted" if mp.get("boundary_quoted") else "unquoted"
    ok = all(part["body"] == "matches Content-Range" for part in mp.get("parts", []))
    pre = " +CRLF preamble" if mp.get("preamble") else ""
    return f"206 multipart {q} {mp.get('boundary_shape')}{pre}, {len(ranges)} parts" + (
        "" if ok else " (BAD BODY)"
    )


def _order(p: dict[str, Any]) -> str:
    if "multipart" not in p:
        return _brief(p)
    starts = [
        _content_range(part["content_range"])[0]  # type: ignore[index]
        for part in p["multipart"].get("parts", [])
        if _content_range(part["content_range"])
    ]
    if starts == [20, 0]:
        return "as requested"
    if starts == [0, 20]:
        return "sorted"
    return f"{starts}"


def _gzip_desc(p: dict[str, Any]) -> str:
    enc = p.get("content_encoding") or "identity"
    return f"{p['status']} {enc}" + (f" ({p['body']})" if p.get("body") else "")


def _wire_desc(p: dict[str, Any]) -> str:
    if p["chunked"]:
        return f"{p['status']} chunked"
    sent, declared = p["bytes_after_headers"], p["content_length"]
    if declared is not None and int(declared) == sent:
        return f"{p['status']} exact"
    return f"{p['status']} CL={declared} but {sent} bytes sent"


def summarize_probes(probes: dict[str, Any]) -> dict[str, str]:
    head = probes["head"]
    head_range = probes["head_range"]
    single = probes["single"]
    redirect = probes["redirect"]
    loc = redirect.get("location") or ""
    return {
        "single": _brief(single),
        "0-0": _brief(probes["first_byte"]),
        "open": _brief(probes["open"]),
        "suffix": _brief(probes["suffix"]),
        "suffix>size": _brief(probes["suffix_longer_than_file"]),
        "end>EOF": _brief(probes["end_past_eof"]),
        "past end": _brief(probes["past_end"]),
        "empty file": _brief(probes["empty_file"]),
        "malformed": _brief(probes["malformed"]),
        "multi": _multi_desc(probes["multi"]),
        "multi order": _order(probes["multi_reversed"]),
        "3 close": _brief(probes["multi_close"]),
        "overlap": _brief(probes["multi_overlap"]),
        "HEAD": f"{head['status']} CL={head.get('content_length')}",
        "HEAD+Range": f"{head_range['status']} CL={head_range.get('content_length')}",
        "redirect": f"{redirect['status']} {'absolute' if loc.startswith('{origin}') else loc}",
        "gzip text full": _gzip_desc(probes["gzip_text_full"]),
        "gzip text range": _gzip_desc(probes["gzip_text_range"]),
        "gzip bin range": _gzip_desc(probes["gzip_bin_range"]),
        "If-Range etag": _brief(probes["if_range_etag"]),
        "If-Range date": _brief(probes["if_range_date"]),
        "If-Range wrong": _brief(probes["if_range_mismatch"]),
        "0-0 on wire": _wire_desc(probes["wire_first_byte"]),
        "chunked 206": "yes" if "chunked" in single.get("transfer_encoding", "") else "no",
        "Accept-Ranges": probes["full"].get("accept_ranges", "-"),
    }


def render_table(observations: Iterable[dict[str, Any]]) -> str:
    """A transposed text table: one row per behaviour, one column per server."""
    obs = list(observations)
    if not obs:
        return "(no observations)"
    rows: list[list[str]] = [["", *(o["server"] for o in obs)]]
    rows.append(["ETag/Last-Modified", *(f"{o['etag']}/{o['last_modified']}" for o in obs)])
    for key in obs[0]["summary"]:
        rows.append([key, *(o["summary"][key] for o in obs)])
    # One block per server is easier to read than a 17-column table.
    lines = []
    for col in range(1, len(rows[0])):
        lines.append(f"== {rows[0][col]}")
        width = max(len(r[0]) for r in rows[1:])
        lines.extend(f"   {r[0]:<{width}}  {r[col]}" for r in rows[1:])
    return "\n".join(lines)


def load(path: Path = OBSERVED_JSON) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    return list(data["servers"])


if __name__ == "__main__":
    print(render_table(load(Path(sys.argv[1]) if len(sys.argv) > 1 else OBSERVED_JSON)))
