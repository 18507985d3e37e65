"""The codec streams with range-streams 1.x's attributes, over archives and images built
here and served by ``FakeServer``: every attribute checked against the bytes."""

from __future__ import annotations

import io
import tarfile
import zipfile

import httpx
import pytest
from ranges import Range

from range_streams._core.source import BytesSource
from range_streams.codecs import CondaStream, PngStream, TarStream, ZipStream
from range_streams.codecs.zip import ZipReader
from tests.codecs import _pngwriter as png
from tests.codecs._zipwriter import RawMember, build_zip
from tests.codecs.test_conda import NAME, PKG_FILES, build_conda
from tests.fakes import FakeServer

URL = "http://files.test/archive"


def served(data: bytes) -> tuple[FakeServer, httpx.Client]:
    server = FakeServer(data)
    return server, server.client()


# ---- zip ---------------------------------------------------------------------------------

TEXT = b"P\x00\x01\x02\x03\x04\x05\x06\x07\x08K"


def small_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("example_text_file.txt", TEXT)
    return buffer.getvalue()


def zip_with_local_extra() -> bytes:
    """The local header's extra field is longer than the directory's (as Info-ZIP
    writes): where data starts is only known from the local header."""
    members = [
        RawMember(b"first.bin", b"abcdef", b"abcdef", local_extra=b"\x55\x54\x05\x00" + b"x" * 5),
        RawMember(b"second.txt", b"second member", b"second member", local_extra=b"\0" * 40),
    ]
    return build_zip(members)


@pytest.mark.parametrize("make", [small_zip, zip_with_local_extra])
def test_zipped_files_have_1x_fields(make: object) -> None:
    data = make()  # type: ignore[operator]
    reference = zipfile.ZipFile(io.BytesIO(data))
    server, client = served(data)
    stream = ZipStream(URL, client)
    assert stream.filename_list == reference.namelist()
    for info, ref in zip(stream.zipped_files, reference.infolist(), strict=True):
        assert info.filename == ref.filename
        assert info.filename_length == len(ref.filename.encode())
        assert info.comment_length == len(ref.comment)
        assert info.compressed_size == ref.compress_size
        assert info.uncompressed_size == ref.file_size
        assert info.local_header_offset == ref.header_offset
        stored = data[info.file_range.start : info.file_range.end]
        assert stored == reference.read(ref.filename)  # stored members: the bytes themselves
    # Listing: the tail (holds this small archive); the local headers: from the same read.
    assert len(server.log) == 1


def test_zip_records_and_directory_bytes() -> None:
    data = small_zip()
    server, client = served(data)
    stream = ZipStream(URL, client)
    eocd = data.rindex(b"PK\x05\x06")
    start = data.index(b"PK\x01\x02")
    record = stream.data.CTRL_DIR_REC
    assert (record.entry_count, record.start_pos, record.size) == (1, start, eocd - start)
    assert stream.data.E_O_CTRL_DIR_REC.start_pos == eocd
    assert record.start_pos + record.size == stream.data.E_O_CTRL_DIR_REC.start_pos
    assert stream.get_central_dir_bytes() == data[start:eocd]
    stream.check_head_bytes()
    assert len(server.log) == 1  # all of it from the listing's one read
    # 1.x's test_zip_cd_meta: reading the directory's first bytes through add().
    stream.add(Range(start, start + 4))
    assert stream.active_range_response.read() == record.start_sig
    assert server.ranges_sent[1:] == [f"bytes={start}-{start + 3}"]
    assert record.get_size() == 46 and stream.data.LOC_F_H.start_sig == b"PK\x03\x04"


def test_member_ranges_are_registered_on_first_use_of_the_range_api() -> None:
    """1.x registered each member's data as a named range in the constructor; here they
    appear when the stream's range API is first used, without a request each."""
    data = zip_with_local_extra()
    server, client = served(data)
    stream = ZipStream(URL, client)
    assert stream.read("second.txt") == b"second member"  # by name: no ranges needed
    sent = len(server.log)
    names = {response.range_name for _, response in stream.ranges.items()}
    assert names == {"first.bin", "second.txt"}
    assert len(server.log) == sent  # the listing read held the local headers too
    assert stream.read() == b"second member"  # 1.x: the last member added was active
    by_name = stream.ranges_by_name
    assert by_name["first.bin"].read() == b"abcdef"


def test_no_scan_means_no_request_and_no_ranges() -> None:
    server, client = served(small_zip())
    stream = ZipStream(URL, client, scan_contents=False)
    assert server.log == []
    assert stream.list_ranges() == []
    assert stream.filename_list == ["example_text_file.txt"]


def test_a_zipinfo_without_its_local_header_says_so() -> None:
    info = ZipReader(BytesSource(small_zip())).infolist()[0]
    with pytest.raises(ValueError, match="local header"):
        _ = info.file_range


# ---- conda -------------------------------------------------------------------------------


def test_conda_stream_is_a_zip_stream() -> None:
    pytest.importorskip("zstandard")
    data = build_conda()
    _, client = served(data)
    stream = CondaStream(URL, client)
    assert isinstance(stream, ZipStream)
    assert sorted(stream.filename_list) == sorted(
        ["metadata.json", f"pkg-{NAME}.tar.zst", f"info-{NAME}.tar.zst"]
    )
    assert stream.meta_json.filename == "metadata.json"
    assert stream.info_tzst.filename == f"info-{NAME}.tar.zst"
    assert stream.pkg_tzst.filename == f"pkg-{NAME}.tar.zst"
    assert stream.pkg_tzst in stream.zipped_files
    stream.check_end_of_central_dir_rec()
    assert stream.data.CTRL_DIR_REC.entry_count == 3
    assert stream.index_json["name"] == "example"
    payload = stream.decompress_zipped_file(stream.pkg_tzst)
    assert isinstance(payload, tarfile.TarFile)
    assert payload.getnames() == list(PKG_FILES)
    assert payload.extractfile("lib/example.py").read() == PKG_FILES["lib/example.py"]  # type: ignore[union-attr]


def test_not_a_conda_package() -> None:
    _, client = served(small_zip())
    with pytest.raises(ValueError, match=r"Invalid \.conda archive"):
        CondaStream(URL, client)


# ---- tar ---------------------------------------------------------------------------------


def small_tar() -> tuple[bytes, dict[str, bytes]]:
    files = {
        "red_square_rgba_semitransparent.png": bytes(range(256)) * 20 + b"1234",  # 5124 B
        "example_text_file.txt": TEXT,
        "a/" + "long" * 40 + ".txt": b"a PAX name\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue(), files


def test_tarred_files_have_1x_fields() -> None:
    data, files = small_tar()
    reference = tarfile.open(fileobj=io.BytesIO(data))
    _, client = served(data)
    stream = TarStream(URL, client)
    assert stream.filename_list == list(files)
    infos = stream.tarred_files
    # 1.x's tar_test values: sizes, padded sizes (header + data + padding) and offsets.
    first, second = infos[0], infos[1]
    assert (first.size, first.padded_size, first.header_offset) == (5124, 6144, 0)
    assert (second.size, second.padded_size, second.header_offset) == (11, 1024, 6144)
    for info, ref in zip(infos, reference.getmembers(), strict=True):
        assert info.filename == ref.name and info.filename_length == len(ref.name)
        assert data[info.file_range.start : info.file_range.end] == files[info.filename]
        assert info.header_offset + info.padded_size in (
            *(i.header_offset for i in infos),
            ref.offset_data + -(-ref.size // 512) * 512,
        )


def test_tar_header_fields() -> None:
    data, _ = small_tar()
    server, client = served(data)
    stream = TarStream(URL, client, scan_headers=False)
    assert server.log == []
    assert stream.read_file_name(0) == "red_square_rgba_semitransparent.png"
    assert stream.read_file_size(0) == 5124
    assert stream.read_file_name(6144) == "example_text_file.txt"
    end = len(data) - 1024  # the two zero blocks that end a tar
    with pytest.raises(StopIteration, match="padding"):
        stream.read_file_name(end)
    assert stream.data.HEADER._H_PAD_SIZE == 512
    stream.check_header_recs()
    assert len(stream.tarred_files) == 3


def test_tar_member_ranges_on_first_use() -> None:
    data, files = small_tar()
    _, client = served(data)
    stream = TarStream(URL, client)
    named = {response.range_name: response for _, response in stream.ranges.items()}
    assert set(named) == set(files)
    assert named["example_text_file.txt"].read() == TEXT


# ---- png ---------------------------------------------------------------------------------


def rgba(alphas: list[int], depth: int = 8) -> bytes:
    """A 4x3 RGBA image whose alpha samples cycle through ``alphas``."""
    top = (1 << depth) - 1
    rows = [
        [v for x in range(4) for v in (x * 10 % top, y, 7, alphas[(y * 4 + x) % len(alphas)])]
        for y in range(3)
    ]
    return png.encode(rows, width=4, colour_type=6, bit_depth=depth, seed=3)


def grey_alpha(alphas: list[int]) -> bytes:
    rows = [[v for x in range(5) for v in (x, alphas[(y + x) % len(alphas)])] for y in range(2)]
    return png.encode(rows, width=5, colour_type=4, bit_depth=8, seed=4)


def palette(trns: bytes | None, depth: int = 8) -> bytes:
    rows = [[(x + y) % 4 for x in range(6)] for y in range(3)]
    return png.encode(
        rows, width=6, colour_type=3, bit_depth=depth,
        palette=bytes(range(12)), transparency=trns, seed=5,
    )  # fmt: skip


def rgb(trns: bytes | None) -> bytes:
    rows = [[v for x in range(3) for v in (x, y, 9)] for y in range(2)]
    return png.encode(rows, width=3, colour_type=2, bit_depth=8, transparency=trns, seed=6)


def grey(trns: bytes | None, depth: int) -> bytes:
    rows = [[(x + y) % (1 << depth) for x in range(7)] for y in range(2)]
    return png.encode(rows, width=7, colour_type=0, bit_depth=depth, transparency=trns, seed=7)


ALPHA_CASES = [
    ("RGBA opaque", rgba([255]), False, False),
    ("RGBA with a transparent pixel", rgba([255, 0]), False, True),
    ("RGBA semitransparent", rgba([255, 128]), True, True),
    ("RGBA 16-bit opaque", rgba([65535], depth=16), False, False),
    ("RGBA 16-bit semitransparent", rgba([65535, 300], depth=16), True, True),
    ("grey+alpha", grey_alpha([255, 255, 3]), True, True),
    ("palette, tRNS semitransparent", palette(b"\xff\x80"), True, True),
    ("palette, tRNS transparent", palette(b"\xff\xff\x00"), False, True),
    ("palette, tRNS past the indices used", palette(b"\xff" * 4 + b"\x00"), False, False),
    ("palette without tRNS", palette(None), False, False),
    ("palette 2-bit, tRNS", palette(b"\xff\x40", depth=2), True, True),
    ("RGB without tRNS", rgb(None), False, False),
    ("RGB, tRNS key present", rgb(b"\x00\x01\x00\x01\x00\x09"), False, True),
    ("RGB, tRNS key absent", rgb(b"\x00\x07\x00\x07\x00\x07"), False, False),
    ("grey 4-bit, tRNS key present", grey(b"\x00\x03", 4), False, True),
    ("grey 8-bit without tRNS", grey(None, 8), False, False),
]


@pytest.mark.parametrize(
    ("image", "semitransparent", "transparent"),
    [case[1:] for case in ALPHA_CASES],
    ids=[case[0] for case in ALPHA_CASES],
)
def test_any_semitransparent_idat(image: bytes, semitransparent: bool, transparent: bool) -> None:
    """1.x: whether any alpha is strictly between 0 and opaque (``nonzero=True``) or
    below opaque at all; here for every colour type, as the image expands to RGBA."""
    _, client = served(image)
    stream = PngStream(URL, client)
    assert stream.any_semitransparent_idat(nonzero=True) is semitransparent
    assert stream.any_semitransparent_idat(nonzero=False) is transparent


# Pillow as a second opinion, where it decodes alpha: not 16-bit RGBA (it drops to 8 bits),
# nor a sub-byte grey key (it scales the pixels to 8 bits, not the tRNS key).
PILLOW_CASES = [c for c in ALPHA_CASES if "16-bit" not in c[0] and "grey 4-bit" not in c[0]]


@pytest.mark.parametrize("case", PILLOW_CASES, ids=lambda c: c[0])
def test_alpha_agrees_with_pillow(case: tuple[str, bytes, bool, bool]) -> None:
    image = pytest.importorskip("PIL.Image")
    _, data, semi, transparent = case
    alphas = image.open(io.BytesIO(data)).convert("RGBA").getchannel("A").tobytes()
    assert any(0 < a < 255 for a in alphas) is semi
    assert any(a < 255 for a in alphas) is transparent


def test_png_1x_attributes() -> None:
    image = rgba([255, 128])
    server, client = served(image)
    stream = PngStream(URL, client, scan_ihdr=False)
    assert server.log == [] and stream.data.IHDR.width is None
    assert stream.single_request is True  # 1.x's default for PNG
    stream.scan_ihdr()
    header = stream.data.IHDR
    assert (header.width, header.height, header.bit_depth, header.colour_type) == (4, 3, 8, 6)
    assert (header.start_pos, header.end_pos, header.struct) == (16, 29, ">IIBBBBB")
    assert header.channel_count == 4 and stream.channel_count_as_direct == 4
    assert stream.alpha_as_direct is True and stream.bit_depth_as_direct == 8
    assert list(stream.chunks) == ["IHDR", "IDAT", "IEND"]
    ihdr = stream.chunks["IHDR"][0]
    assert (ihdr.start, ihdr.end, ihdr.length, ihdr.type) == (8, 33, 13, "IHDR")
    assert ihdr.data_range == Range(16, 29)
    assert stream.get_chunk_data(ihdr) == image[16:29]
    assert stream.has_chunk("IDAT") and not stream.has_chunk("tRNS")
    pixels = stream.get_idat_data()
    assert isinstance(pixels, list) and len(pixels) == 4 * 3 * 4
    assert bytes(pixels) == stream.reader.get_idat_data()
    assert stream.enumerate_chunks() == stream.chunks


def test_png_multi_idat() -> None:
    """1.x's multi-IDAT test: the pixels of an image split into many IDAT chunks."""
    rows = png.random_samples(40, 30, 6, 8, seed=9)
    image = png.encode(rows, width=40, colour_type=6, bit_depth=8, idat_size=64)
    _, client = served(image)
    stream = PngStream(URL, client)
    assert len(stream.chunks["IDAT"]) > 10
    assert stream.get_idat_data() == [v for row in rows for v in row]


def test_single_request_zip_reads_members_through_its_one_get() -> None:
    data = zip_with_local_extra()
    server, client = served(data)
    stream = ZipStream(URL, client, single_request=True)
    by_name = {response.range_name: response for _, response in stream.ranges.items()}
    assert by_name["first.bin"].read() == b"abcdef"
    assert by_name["second.txt"].read() == b"second member"
    assert server.ranges_sent[0].startswith("bytes=-")  # the listing
    assert server.ranges_sent[1:] == [f"bytes=0-{len(data) - 1}"]  # the one GET


def test_set_client_on_a_codec_stream_moves_its_reader_too() -> None:
    first, second = FakeServer(small_zip()), FakeServer(small_zip())
    stream = ZipStream(URL, first.client(), scan_contents=False)
    stream.set_client(second.client())
    assert stream.filename_list == ["example_text_file.txt"]
    assert first.log == [] and len(second.log) == 1
