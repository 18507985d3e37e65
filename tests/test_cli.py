"""The ``range-streams`` command line against a real server (uvicorn + Starlette, in its
own process, whose access log says what was asked for): output, ``--json`` schemas, exit
codes, ``--trace``, and ``get``'s resume after a kill, restart on a changed file and
progress bar on a terminal only."""

from __future__ import annotations

import io
import json
import os
import pty
import random
import re
import select
import signal
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from range_streams._cli import execute
from range_streams._cli._common import Console, TraceLog
from range_streams._cli._demo import make_sample_zip
from range_streams._cli._extract import UnsafePathError, safe_target
from range_streams._state.download import part_paths
from tests.servers.fixtures import MTIME, docroot_bytes
from tests.servers.launch import RunningServer

SAMPLE = docroot_bytes("sample.bin")
TRACE_LINE = re.compile(
    r"^trace: GET http://\S+ Range: (bytes=\S+|-) -> \d{3}"
    r" Content-Range: .+ \(([\d,]+|\?) bytes?\)$"
)
INFO_KEYS = {
    "schema_version",
    "url",
    "size",
    "etag",
    "last_modified",
    "content_type",
    "server",
    "accept_ranges",
    "ranges",
    "suffix_ranges",
    "multi_range",
    "requests",
}
LS_KEYS = {"schema_version", "url", "format", "size", "package", "image", "members", "requests"}
MEMBER_KEYS = {"name", "type", "size", "compressed_size", "offset"}


# -- fixtures ------------------------------------------------------------------------------
def _put(docroot: Path, name: str, data: bytes, mtime: int = MTIME) -> Path:
    path = docroot / name
    path.write_bytes(data)
    path.chmod(0o644)
    os.utime(path, (mtime, mtime))
    return path


def _tar_bytes() -> bytes:
    rng = random.Random(7)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for index in range(12):
            data = rng.randbytes(rng.randrange(10, 40_000))
            info = tarfile.TarInfo(f"dir/file-{index:02d}.bin")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("dir/link")
        link.type, link.linkname = tarfile.SYMTYPE, "file-01.bin"
        archive.addfile(link)
    return buffer.getvalue()


def _png_bytes() -> bytes:
    from PIL import Image  # noqa: PLC0415

    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), (10, 20, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def _noise_png_bytes() -> bytes:
    """A PNG of ~800 KB (noise does not compress), in IDAT chunks of 64 KiB."""
    from PIL import Image  # noqa: PLC0415

    buffer = io.BytesIO()
    Image.frombytes("RGB", (512, 512), random.Random(3).randbytes(512 * 512 * 3)).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


def _conda_bytes() -> bytes:
    import zstandard  # noqa: PLC0415

    def zstd_tar(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return zstandard.ZstdCompressor().compress(buffer.getvalue())

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        archive.writestr("pkg-demo-1.0-0.tar.zst", zstd_tar({"lib/demo.py": b"x = 1\n"}))
        archive.writestr("info-demo-1.0-0.tar.zst", zstd_tar({"info/index.json": b"{}"}))
    return buffer.getvalue()


def _evil_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fine.txt", "fine")
        archive.writestr("../../escape.txt", "escaped")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory("uvicorn-starlette")


@pytest.fixture(scope="module")
def files(docroot: Path) -> dict[str, bytes]:
    """Files this module adds to the shared docroot (names prefixed ``cli-``)."""
    sample_zip = docroot / "cli-sample.zip"
    make_sample_zip(sample_zip)
    contents = {
        "cli-sample.zip": sample_zip.read_bytes(),
        "cli-sample.tar": _tar_bytes(),
        "cli-sample.png": _png_bytes(),
        "cli-noise.png": _noise_png_bytes(),
        "cli-sample.conda": _conda_bytes(),
        "cli-evil.zip": _evil_zip(),
        "cli-get.bin": random.Random(11).randbytes(2 << 20),
    }
    for name, data in contents.items():
        _put(docroot, name, data)
    return contents


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing a command writes by default lands in the repo


class Result:
    def __init__(self, code: int, out: bytes, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def text(self) -> str:
        return self.out.decode()

    def json(self) -> dict[str, object]:
        return json.loads(self.out)


def run(*argv: str, trace: TraceLog | None = None) -> Result:
    """The CLI in-process, as ``main`` runs it, with stdout and stderr captured; ``trace``
    records every request the command's client made."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.StringIO()
    code = execute(list(argv), Console(out=out, err=err), trace)
    out.flush()
    return Result(code, out.buffer.getvalue(), err.getvalue())


def cli(*argv: str) -> subprocess.CompletedProcess[bytes]:
    """The CLI through ``python -m range_streams``, as a user runs it."""
    command = [sys.executable, "-m", "range_streams", *argv]
    return subprocess.run(command, capture_output=True, timeout=60, check=False)


def assert_one_line_error(result: Result) -> None:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("range-streams: error: "), result.err
    assert "Traceback" not in result.err


# -- help, info ----------------------------------------------------------------------------
def test_entry_point_help_lists_commands_and_exit_codes() -> None:
    done = cli("--help")
    assert done.returncode == 0
    help_text = done.stdout.decode()
    for command in ("info", "ls", "cat", "extract", "get", "serve", "demo"):
        assert command in help_text
    assert "exit codes" in help_text
    assert cli().returncode == 2  # no command: usage


def test_info_reports_what_the_server_supports(server: RunningServer, files: dict) -> None:
    url = server.url("cli-sample.zip")
    result = run("info", "--json", url)
    assert result.code == 0, result.err
    report = result.json()
    assert set(report) == INFO_KEYS
    assert report["size"] == len(files["cli-sample.zip"])
    assert report["ranges"] is report["suffix_ranges"] is report["multi_range"] is True
    assert report["server"] == "uvicorn"
    assert report["etag"] and report["last_modified"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    assert report["requests"] == 2  # a 1-byte suffix range, then two 1-byte ranges at once

    text = run("info", url)
    assert (
        "Multi-range:   yes" in text.text and f"{len(files['cli-sample.zip']):,} bytes" in text.text
    )


def test_info_and_cat_on_a_server_without_ranges(
    server_factory: Callable[..., RunningServer],
) -> None:
    plain = server_factory("http.server")
    report = run("info", "--json", plain.url("sample.bin")).json()
    assert report["ranges"] is False and report["size"] == len(SAMPLE)
    result = run("cat", "--range", "500000:500010", plain.url("sample.bin"))
    assert result.code == 5
    assert_one_line_error(result)
    assert "does not support range requests" in result.err


def test_info_on_every_server(any_server: RunningServer) -> None:
    """What ``info`` reports agrees with what each real server is known to do."""
    result = run("info", "--json", any_server.url("sample.bin"))
    assert result.code == 0, result.err
    report, spec = result.json(), any_server.spec
    assert report["size"] == len(SAMPLE) and report["ranges"] is spec.ranges
    if spec.ranges:
        assert report["suffix_ranges"] is spec.suffix_ranges
        assert report["multi_range"] is spec.multirange


# -- ls ------------------------------------------------------------------------------------
def test_ls_zip_json_schema_in_one_request(server: RunningServer, files: dict) -> None:
    result = run("ls", "--json", server.url("cli-sample.zip"))
    assert result.code == 0, result.err
    listing = result.json()
    assert set(listing) == LS_KEYS
    assert listing["format"] == "zip" and listing["requests"] == 1
    members = listing["members"]
    assert isinstance(members, list) and all(set(m) == MEMBER_KEYS for m in members)
    with zipfile.ZipFile(io.BytesIO(files["cli-sample.zip"])) as archive:
        expected = [(i.filename, i.file_size, i.compress_size) for i in archive.infolist()]
    assert [(m["name"], m["size"], m["compressed_size"]) for m in members] == expected


def test_ls_of_a_png_reads_its_head_once(server: RunningServer, files: dict) -> None:
    # Detection reads what the PNG reader reads first, so the chunk table starts from it.
    trace = TraceLog()
    listing = run("ls", "--json", server.url("cli-noise.png"), trace=trace).json()
    assert listing["format"] == "png" and listing["members"][0]["name"] == "IHDR"
    ranges = [r.range.removeprefix("bytes=") for r in trace.records if r.range]
    starts = [int(spec.split("-")[0]) for spec in ranges if not spec.startswith("-")]
    assert starts.count(0) == 1
    assert not [start for start in starts if 0 < start < 64 * 1024]


@pytest.mark.parametrize(
    ("name", "kind", "first"),
    [
        ("cli-sample.tar", "tar", "dir/file-00.bin"),
        ("cli-sample.png", "png", "IHDR"),
        ("cli-sample.conda", "conda", "metadata.json"),
    ],
)
def test_ls_detects_the_format_from_the_bytes(
    server: RunningServer, files: dict, name: str, kind: str, first: str
) -> None:
    listing = run("ls", "--json", server.url(name)).json()
    assert listing["format"] == kind
    members = listing["members"]
    assert isinstance(members, list) and members[0]["name"] == first
    if kind == "png":
        assert listing["image"] == {
            "width": 32,
            "height": 16,
            "bit_depth": 8,
            "colour_type": 2,
            "interlaced": False,
        }
        assert [m["name"] for m in members] == ["IHDR", "IDAT", "IEND"]
    if kind == "conda":
        assert listing["package"] == "demo-1.0-0"
    if kind == "tar":
        assert members[-1] == {
            "name": "dir/link",
            "type": "symlink",
            "size": 0,
            "compressed_size": None,
            "offset": members[-1]["offset"],
        }
    text = run("ls", server.url(name))
    assert text.code == 0 and text.text.startswith(f"{kind}: ")


def test_ls_unknown_format_and_missing_file(server: RunningServer) -> None:
    unknown = run("ls", server.url("sample.bin"))
    assert unknown.code == 1
    assert_one_line_error(unknown)
    assert "no known signature" in unknown.err
    missing = run("ls", server.url("no-such-file.zip"))
    assert missing.code == 4
    assert_one_line_error(missing)
    assert "404" in missing.err


# -- cat -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text", ["0:100", "-22:", ":-1000", "1000:2000", "5:3", "900000:", ":", "-5:-1", "-99999999:10"]
)
def test_cat_slices_like_python(server: RunningServer, text: str) -> None:
    result = run("cat", f"--range={text}", server.url("sample.bin"))
    assert result.code == 0, result.err
    start, stop = (int(part) if part else None for part in text.split(":"))
    assert result.out == SAMPLE[start:stop]


def test_cat_suffix_costs_one_request(server: RunningServer) -> None:
    result = run("--trace", "cat", "--range=-22:", server.url("sample.bin"))
    assert result.out == SAMPLE[-22:]
    lines = result.err.splitlines()
    assert len(lines) == 1 and TRACE_LINE.match(lines[0]) and "Range: bytes=-" in lines[0]


def test_cat_bad_range_and_bad_url() -> None:
    for argv in (["cat", "--range", "1-2", "http://127.0.0.1:9/x"], ["cat", "ftp://x/y"]):
        result = run(*argv)
        assert result.code == 2
        assert_one_line_error(result)


def test_network_error(tmp_path: Path) -> None:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run("info", f"http://127.0.0.1:{port}/x.zip")
    assert result.code == 3
    assert_one_line_error(result)
    assert "network error" in result.err


# -- extract -------------------------------------------------------------------------------
def test_extract_batches_members_and_traces(
    server: RunningServer, files: dict, tmp_path: Path
) -> None:
    names = ["data/part-0001.txt", "data/part-0099.bin", "data/part-0150.bin"]
    result = run("extract", server.url("cli-sample.zip"), *names, "-o", "out", "--trace")
    assert result.code == 0, result.err
    with zipfile.ZipFile(io.BytesIO(files["cli-sample.zip"])) as archive:
        for name in names:
            assert (tmp_path / "out" / name).read_bytes() == archive.read(name)
    assert sorted(result.text.split()) == sorted(str(Path("out", name)) for name in names)
    lines = result.err.splitlines()
    assert all(TRACE_LINE.match(line) for line in lines), lines
    # The directory (one suffix read), then the three members in one multi-range request.
    assert len(lines) == 2 and lines[1].count(",") >= 2


def test_extract_tar_skips_symlinks(server: RunningServer, files: dict, tmp_path: Path) -> None:
    result = run("extract", server.url("cli-sample.tar"), "-o", "out")
    assert result.code == 0, result.err
    with tarfile.open(fileobj=io.BytesIO(files["cli-sample.tar"])) as archive:
        for member in archive.getmembers():
            if member.isfile():
                data = archive.extractfile(member).read()
                assert (tmp_path / "out" / member.name).read_bytes() == data
    assert not (tmp_path / "out" / "dir" / "link").exists()
    assert "skipped 'dir/link'" in result.err


def test_extract_missing_member(server: RunningServer, files: dict, tmp_path: Path) -> None:
    result = run("extract", server.url("cli-sample.zip"), "data/part-0001.txt", "nope", "-o", "o")
    assert result.code == 6
    assert_one_line_error(result)
    assert "'nope'" in result.err
    assert not (tmp_path / "o").exists()  # every name is checked before anything is written


def test_extract_refuses_paths_outside_the_directory(
    server: RunningServer, files: dict, tmp_path: Path
) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    result = run("extract", server.url("cli-evil.zip"), "-o", "deep/er")
    assert result.code == 1
    assert_one_line_error(result)
    assert "refusing to extract '../../escape.txt'" in result.err
    assert list(tmp_path.rglob("*.txt")) == []


def test_safe_target(tmp_path: Path) -> None:
    assert safe_target(tmp_path, "a/./b.txt") == tmp_path / "a" / "b.txt"
    (tmp_path / "link").symlink_to("/tmp")
    for name in ("/etc/passwd", "../x", "a/../../x", "C:/x", "a\\..\\..\\x", "link/x", "", "/"):
        with pytest.raises(UnsafePathError):
            safe_target(tmp_path, name)


# -- get -----------------------------------------------------------------------------------
def _segment_spans(trace: TraceLog) -> list[tuple[int, int]]:
    """The spans a ``get`` fetched (its client's hook, not the server's log: a request
    of the killed run may still be logged after it died)."""
    spans = []
    for record in trace.records:
        if record.range is None or record.range == "bytes=0-0":
            continue  # the size probe
        first, last = record.range.removeprefix("bytes=").split("-")
        spans.append((int(first), int(last) + 1))
    return sorted(spans)


def _wait_for_progress(state: Path, size: int, timeout: float = 15) -> list[list[int]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            completed = json.loads(state.read_text())["completed"]
        except (OSError, ValueError):
            completed = []
        done = sum(stop - start for start, stop in completed)
        if 128 * 1024 <= done < size:
            return completed
        time.sleep(0.02)
    raise AssertionError(f"{state} never showed partial progress")


def test_get_resumes_after_a_kill(server: RunningServer, files: dict, tmp_path: Path) -> None:
    url, data = server.url("cli-get.bin"), files["cli-get.bin"]
    target = tmp_path / "got.bin"
    part, state = part_paths(target)
    slow = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "range_streams",
            "get",
            url,
            "-o",
            str(target),
            "--segment-size",
            "64K",
            "--connections",
            "2",
            "--limit-rate",
            "1M",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_progress(state, len(data))
    finally:
        slow.kill()  # SIGKILL: no chance to tidy up, the record must already be right
        slow.wait()
    completed = [tuple(span) for span in json.loads(state.read_text())["completed"]]
    assert part.exists() and not target.exists()

    trace = TraceLog()
    result = run("get", url, "-o", str(target), trace=trace)
    assert result.code == 0 and result.err == "", result.err  # quiet off a terminal
    assert target.read_bytes() == data
    assert not part.exists() and not state.exists()
    done = sum(stop - start for start, stop in completed)
    spans = _segment_spans(trace)
    assert sum(stop - start for start, stop in spans) == len(data) - done
    for start, stop in spans:  # nothing already recorded was fetched again
        assert all(stop <= a or start >= b for a, b in completed), (spans, completed)


def test_get_stopped_by_sigterm_keeps_its_record(
    server: RunningServer, files: dict, tmp_path: Path
) -> None:
    url, data = server.url("cli-get.bin"), files["cli-get.bin"]
    target = tmp_path / "term.bin"
    part, state = part_paths(target)
    slow = subprocess.Popen(
        [
            *(sys.executable, "-m", "range_streams", "get", url, "-o", str(target)),
            *("--segment-size", "256K", "--limit-rate", "1M"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_progress(state, len(data))
        slow.terminate()
        _, err = slow.communicate(timeout=20)
    finally:
        if slow.poll() is None:
            slow.kill()
    assert slow.returncode == 130 and err == b"range-streams: error: interrupted\n"
    assert part.exists() and json.loads(state.read_text())["completed"]
    assert run("get", url, "-o", str(target)).code == 0
    assert target.read_bytes() == data


@pytest.mark.parametrize("name", ["empty.bin", "small.bin"])
def test_get_tiny_files(server: RunningServer, name: str, tmp_path: Path) -> None:
    result = run("get", server.url(name), "-o", str(tmp_path), "-c", "8")
    assert result.code == 0, result.err
    assert (tmp_path / name).read_bytes() == docroot_bytes(name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no .part left behind


def test_get_from_a_server_without_ranges(
    server_factory: Callable[..., RunningServer], tmp_path: Path
) -> None:
    """No segments and no resume without ranges, but the file still arrives, whole; a
    leftover partial download is thrown away with a warning, never stitched in."""
    plain = server_factory("http.server")
    plain.clear_access_log()
    target = tmp_path / "sample.bin"
    _fake_partial(target, plain.url("sample.bin"), SAMPLE, "x", "y")
    result = run("get", plain.url("sample.bin"), "-o", str(target), "-c", "4")
    assert result.code == 0, result.err
    assert "ignores range requests" in result.err
    assert target.read_bytes() == SAMPLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.bin"]
    records = plain.access_records(lambda r: r.target.endswith("sample.bin"), min_count=2)
    assert len(records) == 2  # the length probe (answered whole), then one plain GET


def _validators(url: str) -> tuple[str, str]:
    report = run("info", "--json", url).json()
    return str(report["etag"]), str(report["last_modified"])


def _fake_partial(target: Path, url: str, data: bytes, etag: str, modified: str) -> None:
    """What a killed ``get`` leaves: the first half on disk, and a record saying so."""
    part, state = part_paths(target)
    half = len(data) // 2
    part.write_bytes(data[:half] + bytes(len(data) - half))
    record = {
        "format": 1,
        "url": url,
        "size": len(data),
        "etag": etag,
        "last_modified": modified,
        "completed": [[0, half]],
    }
    state.write_text(json.dumps(record))


def test_get_resumes_from_the_record(server: RunningServer, docroot: Path, tmp_path: Path) -> None:
    data = random.Random(12).randbytes(300_000)
    _put(docroot, "cli-resume.bin", data)
    url, target = server.url("cli-resume.bin"), tmp_path / "r.bin"
    _fake_partial(target, url, data, *_validators(url))
    trace = TraceLog()
    result = run("get", url, "-o", str(target), "--progress", trace=trace)
    assert result.code == 0, result.err
    assert target.read_bytes() == data
    assert _segment_spans(trace) == [(len(data) // 2, len(data))]
    assert "150,000 of them from an earlier run" in result.err


def test_get_restarts_when_the_remote_file_changed(
    server: RunningServer, docroot: Path, tmp_path: Path
) -> None:
    old = random.Random(13).randbytes(300_000)
    _put(docroot, "cli-change.bin", old)
    url, target = server.url("cli-change.bin"), tmp_path / "c.bin"
    _fake_partial(target, url, old, *_validators(url))
    new = random.Random(14).randbytes(300_000)  # same size: only the validators tell
    _put(docroot, "cli-change.bin", new, mtime=MTIME + 3600)
    result = run("get", url, "-o", str(target))
    assert result.code == 0, result.err
    assert "starting over: the remote ETag changed" in result.err
    assert target.read_bytes() == new


def test_get_progress_bar_only_on_a_terminal(server: RunningServer, files: dict) -> None:
    url = server.url("cli-get.bin")
    quiet = cli("get", url, "-o", "plain.bin")
    assert quiet.returncode == 0 and quiet.stderr == b"" and quiet.stdout == b""

    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "range_streams", "get", url, "-o", "tty.bin"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    os.close(master)
    assert process.wait(timeout=30) == 0
    assert b"100%" in shown and b"saved tty.bin" in shown, shown
    assert Path("tty.bin").read_bytes() == Path("plain.bin").read_bytes() == files["cli-get.bin"]


def test_plain_progress_bar_without_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib  # noqa: PLC0415

    from range_streams._cli import _progress  # noqa: PLC0415

    real = importlib.import_module

    def no_tqdm(name: str, *args: object) -> object:
        if name == "tqdm":
            raise ImportError("no tqdm here")
        return real(name, *args)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(importlib, "import_module", no_tqdm)
    screen = Terminal()
    bar = _progress.progress_bar(screen, "file.bin")
    assert isinstance(bar, _progress.SimpleBar)
    bar.start(0, 4 << 20)
    bar.update(4 << 20, 4 << 20)
    bar.close()
    assert "100% 4.0 MiB/4.0 MiB" in screen.getvalue() and screen.getvalue().endswith("\n")
    assert isinstance(_progress.progress_bar(io.StringIO(), "x"), _progress.NoBar)


# -- serve, demo ---------------------------------------------------------------------------
def _readline(stream: io.BufferedReader, timeout: float = 20) -> bytes:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no output in time"
    return stream.readline()


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    (tmp_path / "served.bin").write_bytes(SAMPLE)
    (tmp_path / "big.bin").write_bytes(bytes(32 << 20))  # more than socket buffers hold
    # A background job of a non-interactive shell (CI scripts, `cmd &`) starts with SIGINT
    # ignored, and a child inherits that: the server would never see the test's Ctrl-C.
    process = subprocess.Popen(
        [sys.executable, "-m", "range_streams", "serve", str(tmp_path), "--port", "0", "--trace"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    try:
        assert process.stdout is not None
        line = _readline(process.stdout).decode()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        yield process, match[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_until_interrupted(serving: tuple[subprocess.Popen[bytes], str]) -> None:
    process, base = serving
    result = run("cat", "--range", "100:200", base + "served.bin")
    assert result.out == SAMPLE[100:200]
    assert process.stderr is not None
    line = _readline(process.stderr).decode()
    assert "Range: bytes=100-" in line and "-> 206" in line
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 0 and b"stopped" in out


def test_serve_stops_while_a_client_holds_a_response_open(
    serving: tuple[subprocess.Popen[bytes], str],
) -> None:
    # A client that asked for the rest of a file and stopped reading: Ctrl-C still stops
    # the server's thread (the response is cut), rather than waiting for the client.
    process, base = serving
    port = int(base.rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=100-\r\n\r\n")
        assert client.recv(12).startswith(b"HTTP/1.1 206")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and b"stopped" in out
    assert b"did not stop" not in err, err


def test_serve_missing_directory() -> None:
    result = run("serve", "no/such/dir")
    assert result.code == 2
    assert_one_line_error(result)


def test_demo_runs_offline() -> None:
    result = run("demo")  # speed is the benchmarks' business; here, what it does
    assert result.code == 0, result.err
    text = result.text
    for command in ("$ range-streams info", "$ range-streams ls", "$ range-streams extract"):
        assert command in text
    assert "Extracted members match the archive" in text
    assert "1 request(s):" in text  # ls: the whole directory in one suffix read


def test_request_options_reach_the_server(server_factory: Callable[..., RunningServer]) -> None:
    logged = server_factory("nginx", "autoindex")
    url = logged.url("sample.bin")
    logged.clear_access_log()
    result = run("-H", "X-Range-Streams-Test: cli", "cat", "--range", "0:10", url)
    assert result.code == 0 and result.out == SAMPLE[:10]
    result = run("info", "--json", "--header", "X-Range-Streams-Test: info", "--timeout", "5", url)
    assert result.code == 0
    records = logged.access_records(lambda r: r.target.endswith("sample.bin"), min_count=3)
    assert [r.header for r in records] == ["cli", "info", "info"]


@pytest.mark.parametrize(
    "argv",
    [("-H", "no-colon"), ("-H", " Spaced: x"), ("-u", "no-password")],
    ids=["header", "header-name", "user"],
)
def test_bad_request_options_are_usage_errors(argv: tuple[str, ...]) -> None:
    result = run(*argv, "cat", "http://127.0.0.1:1/x")
    assert result.code == 2
    assert_one_line_error(result)


def test_no_redirects_makes_a_redirect_an_error(server: RunningServer) -> None:
    result = run("--no-redirects", "cat", "--range", "0:10", server.redirect_url("sample.bin"))
    assert result.code == 1 and "follow_redirects is off" in result.err
