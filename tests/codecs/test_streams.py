"""The URL-level codec streams against a real server: bytes and request counts."""

from __future__ import annotations

import io
import json
import random
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from range_streams.codecs import CondaStream, PngStream, TarStream, ZipStream
from tests.servers.launch import RunningServer

from .test_conda import build_conda


class Counter:
    def __init__(self) -> None:
        self.ranges: list[str | None] = []

    def __call__(self, request: httpx.Request) -> None:
        self.ranges.append(request.headers.get("range"))


@pytest.fixture(scope="module")
def server(server_factory) -> RunningServer:  # type: ignore[no-untyped-def]
    return server_factory("nginx")


@pytest.fixture(scope="module")
def files(docroot: Path) -> dict[str, bytes]:
    rng = random.Random(9)
    made: dict[str, bytes] = {}
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w") as archive:
        for index in range(20_000):
            archive.writestr(f"entries/file-{index:05d}.txt", b"x" * (index % 7))
    made["20k.zip"] = big.getvalue()
    work = docroot / "_zipwork"
    work.mkdir(exist_ok=True)
    (work / "notes.txt").write_bytes(b"Info-ZIP writes UT and ux extra fields\n" * 50)
    (work / "blob.bin").write_bytes(rng.randbytes(5000))
    if shutil.which("zip"):
        subprocess.run(
            ["zip", "-q", "-X-", "infozip.zip", "notes.txt", "blob.bin"], cwd=work, check=True
        )
        made["infozip.zip"] = (work / "infozip.zip").read_bytes()
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for index in range(200):
            data = rng.randbytes(rng.randrange(0, 3000))
            info = tarfile.TarInfo(f"dir/{'n' * 120}-{index}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    made["members.tar"] = tar.getvalue()
    made["pkg.conda"] = build_conda()
    image = pytest.importorskip("PIL.Image")
    png = io.BytesIO()
    image.new("LA", (31, 17), (120, 33)).save(png, format="PNG")
    made["pic.png"] = png.getvalue()
    for name, data in made.items():
        (docroot / name).write_bytes(data)
        (docroot / name).chmod(0o644)
    return made


def test_zipstream_lists_20k_entries_in_two_requests(
    server: RunningServer, files: dict[str, bytes]
) -> None:
    counter = Counter()
    with httpx.Client(event_hooks={"request": [counter]}) as client:
        stream = ZipStream(server.url("20k.zip"), client=client)
        assert len(stream.filename_list) == 20_000
        assert len(counter.ranges) == 2
        assert counter.ranges[0] is not None and counter.ranges[0].startswith("bytes=-")
        assert stream.read("entries/file-00006.txt") == b"x" * 6
        stream.close()


def test_zipstream_honours_local_extra_fields(
    server: RunningServer, files: dict[str, bytes]
) -> None:
    if "infozip.zip" not in files:
        pytest.skip("the zip tool is not installed: apt-get install zip")
    reference = zipfile.ZipFile(io.BytesIO(files["infozip.zip"]))
    with ZipStream(server.url("infozip.zip")) as stream:
        for name in ("notes.txt", "blob.bin"):
            assert stream.read(name) == reference.read(name)
        by_name = stream.ranges_by_name
        raw = by_name["blob.bin"].read()
        info = reference.getinfo("blob.bin")
        assert len(raw) == info.compress_size
        assert by_name["blob.bin"].range_name == "blob.bin"


def test_tarstream(server: RunningServer, files: dict[str, bytes]) -> None:
    reference = tarfile.open(fileobj=io.BytesIO(files["members.tar"]))
    with TarStream(server.url("members.tar")) as stream:
        assert stream.filename_list == reference.getnames()
        name = reference.getnames()[123]
        assert stream.read(name) == reference.extractfile(name).read()  # type: ignore[union-attr]


def test_condastream_never_reads_the_payload(
    server: RunningServer, files: dict[str, bytes]
) -> None:
    counter = Counter()
    with (
        httpx.Client(event_hooks={"request": [counter]}) as client,
        CondaStream(server.url("pkg.conda"), client=client) as stream,
    ):
        index = stream.index_json
        assert isinstance(index, dict) and index
        assert isinstance(stream.paths_json, dict)
        assert len(counter.ranges) <= 2
    assert json.dumps(index)


def test_pngstream_matches_pillow(server: RunningServer, files: dict[str, bytes]) -> None:
    image = pytest.importorskip("PIL.Image")
    reference = image.open(io.BytesIO(files["pic.png"]))
    with PngStream(server.url("pic.png")) as stream:
        header = stream.data.IHDR
        assert (header.width, header.height) == reference.size
        assert stream.alpha_as_direct is True
        assert stream.channel_count_as_direct == 2
        pixels = stream.get_idat_data()  # 1.x's form: a list of ints, one per byte
        assert isinstance(pixels, list)
        assert bytes(pixels) == stream.reader.get_idat_data() == reference.tobytes()
        assert "IHDR" in stream.chunks
