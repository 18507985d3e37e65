from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image

from range_streams._core.source import BytesSource
from range_streams.codecs import ArchiveFormatError, ChecksumError, CodecError, PngReader

from ._pngwriter import CHANNELS, chunk, encode, pack_row, random_samples

DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
CASES = [(colour, depth) for colour, depths in DEPTHS.items() for depth in depths]


def pillow_image(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    rng = random.Random(seed)
    if mode == "I;16":
        image = Image.new("I;16", size)
        image.putdata([rng.randrange(65536) for _ in range(size[0] * size[1])])
        return image
    image = Image.frombytes(mode, size, rng.randbytes(len(Image.new(mode, size).tobytes())))
    if mode == "P":
        image.putpalette(rng.randbytes(768))
    return image


def saved(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1"])
def test_pillow_images_match_pillows_pixels(mode: str) -> None:
    data = saved(pillow_image(mode, (41, 29), seed=len(mode)))
    reader = PngReader(BytesSource(data))
    with Image.open(io.BytesIO(data)) as reference:
        assert reader.get_idat_data() == reference.tobytes()
        assert (reader.width, reader.height) == reference.size


def test_pillow_16_bit_greyscale() -> None:
    image = pillow_image("I;16", (23, 17), seed=3)
    reader = PngReader(BytesSource(saved(image)))
    assert (reader.ihdr.bit_depth, reader.ihdr.colour_type) == (16, 0)
    pixels = reader.get_idat_data()
    ours = [int.from_bytes(pixels[i : i + 2], "big") for i in range(0, len(pixels), 2)]
    raw = image.tobytes()  # I;16 is little-endian in memory
    assert ours == [int.from_bytes(raw[i : i + 2], "little") for i in range(0, len(raw), 2)]


def test_pillow_palette_with_transparency() -> None:
    image = pillow_image("P", (30, 20), seed=4)
    image.info["transparency"] = bytes(range(0, 256, 16))  # alphas of the first entries
    data = saved(image, transparency=bytes(range(0, 256, 16)))
    reader = PngReader(BytesSource(data))
    assert reader.ihdr.colour_type == 3
    assert reader.transparency == bytes(range(0, 256, 16))
    assert reader.palette is not None and len(reader.palette) == 256
    colours = image.getpalette() or []
    assert reader.palette[:2] == [tuple(colours[0:3]), tuple(colours[3:6])]
    assert reader.alpha_as_direct
    assert reader.channel_count_as_direct == 4
    assert reader.bit_depth_as_direct == 8
    with Image.open(io.BytesIO(data)) as reference:
        assert reader.get_idat_data() == reference.tobytes()


def test_direct_colour_properties() -> None:
    expectations = {"RGB": (False, 3), "RGBA": (True, 4), "L": (False, 1), "LA": (True, 2)}
    for mode, (alpha, channels) in expectations.items():
        reader = PngReader(BytesSource(saved(pillow_image(mode, (4, 4), seed=0))))
        assert (reader.alpha_as_direct, reader.channel_count_as_direct) == (alpha, channels)
        assert reader.palette is None and reader.transparency is None
    grey_with_key = saved(pillow_image("L", (4, 4), seed=0), transparency=7)
    assert PngReader(BytesSource(grey_with_key)).channel_count_as_direct == 2


@pytest.mark.parametrize("interlace", [False, True], ids=["progressive", "adam7"])
@pytest.mark.parametrize(("colour_type", "bit_depth"), CASES)
def test_every_filter_depth_and_colour_type(
    colour_type: int, bit_depth: int, interlace: bool
) -> None:
    for width, height in ((1, 1), (3, 2), (13, 11), (33, 9)):
        samples = random_samples(width, height, colour_type, bit_depth, seed=width * height)
        palette = bytes(range(256)) * 3 if colour_type == 3 else None
        data = encode(
            samples, width=width, colour_type=colour_type, bit_depth=bit_depth,
            interlace=interlace, palette=palette, idat_size=97, seed=bit_depth,
        )  # fmt: skip
        reader = PngReader(BytesSource(data))
        expected = b"".join(pack_row(row, bit_depth) for row in samples)
        assert reader.get_idat_data() == expected, (width, height)
        assert reader.row_stride * height == len(expected)
        if bit_depth == 8 and colour_type != 3:
            with Image.open(io.BytesIO(data)) as reference:  # a second opinion
                assert reference.tobytes() == expected


def test_a_small_png_costs_one_request() -> None:
    data = saved(pillow_image("RGBA", (40, 40), seed=1))
    source = BytesSource(data)
    reader = PngReader(source)
    reader.get_idat_data()
    assert reader.chunk_table[-1].type == "IEND"
    assert source.calls == [("read_at", (0, len(data)))]


@pytest.mark.parametrize("idat_size", [8192, 100_000], ids=["many-small-idat", "big-idat"])
def test_large_png_reads_metadata_once_and_pixels_in_one_more_request(idat_size: int) -> None:
    width, height = 300, 200
    samples = random_samples(width, height, 2, 8, seed=9)
    text = (b"tEXt", b"Comment\x00after the image data")
    data = encode(
        samples, width=width, colour_type=2, bit_depth=8, idat_size=idat_size, extra_chunks=(text,)
    )
    assert len(data) > 2 * 64 * 1024
    source = BytesSource(data)
    reader = PngReader(source)
    assert not reader.alpha_as_direct and reader.palette is None  # no further reads
    assert source.calls == [("read_at", (0, 64 * 1024))]
    assert reader.get_idat_data() == b"".join(bytes(row) for row in samples)
    assert len(source.calls) == 2  # the rest of the file, in one 1 MiB read-ahead block
    assert reader.has_chunk("tEXt")
    idat_lengths = [c.length for c in reader.chunk_table if c.type == "IDAT"]
    assert max(idat_lengths) == idat_size
    assert len(source.calls) == 2


def test_chunk_table_and_crcs() -> None:
    data = saved(pillow_image("RGB", (5, 5), seed=2))
    reader = PngReader(BytesSource(data))
    table = reader.chunk_table
    assert table[0].type == "IHDR" and table[0].offset == 8 and table[0].length == 13
    for entry in table:
        assert reader.get_chunk_data(entry) == data[entry.data_offset : entry.end - 4]
    assert set(reader.chunks) >= {"IHDR", "IDAT", "IEND"}


def test_errors() -> None:
    good = saved(pillow_image("RGB", (8, 8), seed=5))
    with pytest.raises(ArchiveFormatError, match="signature"):
        PngReader(BytesSource(b"GIF89a" + bytes(100)))
    idat = PngReader(BytesSource(good)).chunk_table[1]
    damaged = bytearray(good)
    damaged[idat.data_offset + 3] ^= 1
    with pytest.raises(ChecksumError):
        PngReader(BytesSource(bytes(damaged))).get_idat_data()
    signature, ihdr = good[:8], chunk(b"IHDR", struct.pack(">2L5B", 4, 4, 3, 2, 0, 0, 0))
    with pytest.raises(ArchiveFormatError, match="bit depth"):
        PngReader(BytesSource(signature + ihdr))
    no_idat = signature + good[8:33] + chunk(b"IEND", b"")
    with pytest.raises(ArchiveFormatError, match="no IDAT"):
        PngReader(BytesSource(no_idat)).get_idat_data()
    bad_filter = encode([[1, 2, 3]], width=1, colour_type=2, bit_depth=8)
    stream = zlib.compress(b"\x09\x01\x02\x03")
    bad_filter = bad_filter[:33] + chunk(b"IDAT", stream) + chunk(b"IEND", b"")
    with pytest.raises(ArchiveFormatError, match="filter type 9"):
        PngReader(BytesSource(bad_filter)).get_idat_data()
    short = bad_filter[:33] + chunk(b"IDAT", zlib.compress(b"\x00\x01")) + chunk(b"IEND", b"")
    with pytest.raises(ArchiveFormatError, match="needs 4"):
        PngReader(BytesSource(short)).get_idat_data()


PNG = encode(
    random_samples(9, 7, 6, 8, seed=1), width=9, colour_type=6, bit_depth=8, idat_size=40,
    extra_chunks=((b"tEXt", b"k\x00v"),),
)  # fmt: skip
PIXELS = PngReader(BytesSource(PNG)).get_idat_data()


def read_pixels(data: bytes) -> bytes | None:
    try:
        return PngReader(BytesSource(data)).get_idat_data()
    except CodecError:
        return None


def test_truncation_and_byte_flips_give_errors_or_the_right_pixels() -> None:
    for cut in range(len(PNG)):
        assert read_pixels(PNG[:cut]) in (None, PIXELS)
    for position in range(len(PNG)):
        for mask in (0x01, 0x80):
            damaged = bytearray(PNG)
            damaged[position] ^= mask
            assert read_pixels(bytes(damaged)) in (None, PIXELS)
    assert CHANNELS[6] == 4
