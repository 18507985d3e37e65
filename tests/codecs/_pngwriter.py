"""A small PNG encoder for what Pillow will not write: every filter type on purpose,
Adam7 interlacing, 16-bit colour, sub-byte depths, IDAT split into many chunks.

Filtering here is the forward direction (written from the spec, independently of the
decoder under test); Pillow decodes the results as a second opinion.
"""

from __future__ import annotations

import random
import struct
import zlib

ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(chunk_type: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(chunk_type))
    return struct.pack(">L", len(data)) + chunk_type + data + struct.pack(">L", crc)


def pack_row(samples: list[int], bit_depth: int) -> bytes:
    if bit_depth == 16:
        return b"".join(value.to_bytes(2, "big") for value in samples)
    if bit_depth == 8:
        return bytes(samples)
    out = bytearray(-(-len(samples) * bit_depth // 8))
    for index, value in enumerate(samples):
        bit = index * bit_depth
        out[bit // 8] |= value << (8 - bit_depth - bit % 8)
    return bytes(out)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind: int, row: bytes, prior: bytes, step: int) -> bytes:
    out = bytearray(len(row))
    for i, value in enumerate(row):
        left = row[i - step] if i >= step else 0
        up = prior[i]
        upper_left = prior[i - step] if i >= step else 0
        predictor = (0, left, up, (left + up) // 2, _paeth(left, up, upper_left))[kind]
        out[i] = (value - predictor) & 0xFF
    return bytes([kind]) + bytes(out)


def filtered_image(rows: list[bytes], step: int, rng: random.Random) -> bytes:
    prior = bytes(len(rows[0])) if rows else b""
    out = bytearray()
    for row in rows:
        out += filter_row(rng.randrange(5), row, prior, step)
        prior = row
    return bytes(out)


def encode(
    samples: list[list[int]],  # rows of samples, channels interleaved
    *,
    width: int,
    colour_type: int,
    bit_depth: int,
    interlace: bool = False,
    palette: bytes | None = None,
    transparency: bytes | None = None,
    idat_size: int = 1 << 20,
    seed: int = 0,
    extra_chunks: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    rng = random.Random(seed)
    channels = CHANNELS[colour_type]
    step = max(1, channels * bit_depth // 8)
    height = len(samples)
    if interlace:
        stream = b""
        for x0, y0, dx, dy in ADAM7:
            rows = [
                pack_row(
                    [
                        s
                        for x in range(x0, width, dx)
                        for s in row[x * channels : (x + 1) * channels]
                    ],
                    bit_depth,
                )
                for row in samples[y0::dy]
            ]
            if rows and rows[0]:
                stream += filtered_image(rows, step, rng)
    else:
        stream = filtered_image([pack_row(row, bit_depth) for row in samples], step, rng)
    compressed = zlib.compress(stream, 9)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(
        b"IHDR", struct.pack(">2L5B", width, height, bit_depth, colour_type, 0, 0, int(interlace))
    )
    if palette is not None:
        out += chunk(b"PLTE", palette)
    if transparency is not None:
        out += chunk(b"tRNS", transparency)
    for start in range(0, len(compressed), idat_size):
        out += chunk(b"IDAT", compressed[start : start + idat_size])
    for chunk_type, data in extra_chunks:
        out += chunk(chunk_type, data)
    return out + chunk(b"IEND", b"")


def random_samples(
    width: int, height: int, colour_type: int, bit_depth: int, seed: int
) -> list[list[int]]:
    rng = random.Random(seed)
    top = (1 << bit_depth) - 1
    per_row = width * CHANNELS[colour_type]
    return [[rng.randint(0, top) for _ in range(per_row)] for _ in range(height)]
