"""Undoing PNG's scanline filters, and Adam7 interlacing, in pure Python.

Input is the decompressed IDAT stream: for each row, a filter-type byte then the
filtered row. Output is the reconstructed rows back to back without filter bytes, each
``row_stride(width, bits_per_pixel)`` bytes, samples packed as PNG packs them (sub-byte
depths most significant bits first, 16-bit samples big-endian).
"""

from __future__ import annotations

from .._errors import ArchiveFormatError

__all__ = ["ADAM7_PASSES", "deinterlace", "image_data_size", "row_stride", "unfilter"]

#: (x start, y start, x step, y step) of each of Adam7's seven passes.
ADAM7_PASSES = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def row_stride(width: int, bits_per_pixel: int) -> int:
    return (width * bits_per_pixel + 7) // 8


def _pass_sizes(width: int, height: int) -> list[tuple[int, int, int, int, int, int]]:
    """Each non-empty pass as (x0, y0, dx, dy, pass width, pass height)."""
    passes = []
    for x0, y0, dx, dy in ADAM7_PASSES:
        pass_width, pass_height = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pass_width > 0 and pass_height > 0:
            passes.append((x0, y0, dx, dy, pass_width, pass_height))
    return passes


def image_data_size(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> int:
    """How many bytes the decompressed IDAT stream must hold (filter bytes included)."""
    if not interlaced:
        return height * (1 + row_stride(width, bits_per_pixel))
    return sum(
        pass_height * (1 + row_stride(pass_width, bits_per_pixel))
        for *_, pass_width, pass_height in _pass_sizes(width, height)
    )


def _add_bytewise(left: bytes | bytearray, right: bytes | bytearray) -> bytearray:
    """Byte-by-byte addition mod 256 of two equal-length rows, on big integers: the
    carry out of each byte's low 7 bits is kept, the top bits are xor-ed, so no carry
    crosses a byte boundary. One C-speed pass instead of a Python loop per byte."""
    size = len(left)
    ones = ((1 << 8 * size) - 1) // 0xFF  # 0x0101...01
    low, high = ones * 0x7F, ones * 0x80
    a, b = int.from_bytes(left, "big"), int.from_bytes(right, "big")
    total = ((a & low) + (b & low)) ^ ((a ^ b) & high)
    return bytearray(total.to_bytes(size, "big"))


def unfilter(data: bytes | memoryview, width: int, height: int, bits_per_pixel: int) -> bytearray:
    """Reconstruct a non-interlaced image (or one Adam7 pass) from its filtered rows."""
    stride = row_stride(width, bits_per_pixel)
    step = max(1, bits_per_pixel // 8)  # the filters' "corresponding byte to the left"
    out = bytearray(height * stride)
    prior = bytearray(stride)
    position = 0
    for y in range(height):
        filter_type = data[position]
        row = bytearray(data[position + 1 : position + 1 + stride])
        position += 1 + stride
        if filter_type == 1:  # Sub
            for i in range(step, stride):
                row[i] = (row[i] + row[i - step]) & 0xFF
        elif filter_type == 2:  # Up
            row = _add_bytewise(row, prior)
        elif filter_type == 3:  # Average
            for i in range(step):
                row[i] = (row[i] + (prior[i] >> 1)) & 0xFF
            for i in range(step, stride):
                row[i] = (row[i] + ((row[i - step] + prior[i]) >> 1)) & 0xFF
        elif filter_type == 4:  # Paeth
            _unpaeth(row, prior, step)
        elif filter_type != 0:
            raise ArchiveFormatError(f"unknown PNG filter type {filter_type} in row {y}")
        out[y * stride : (y + 1) * stride] = row
        prior = row
    return out


def _unpaeth(row: bytearray, prior: bytearray, step: int) -> None:
    for i in range(min(step, len(row))):  # left and upper-left are zero: predicts "up"
        row[i] = (row[i] + prior[i]) & 0xFF
    for i in range(step, len(row)):
        a, b, c = row[i - step], prior[i], prior[i - step]
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        if pa <= pb and pa <= pc:
            predictor = a
        elif pb <= pc:
            predictor = b
        else:
            predictor = c
        row[i] = (row[i] + predictor) & 0xFF


def deinterlace(data: bytes, width: int, height: int, bits_per_pixel: int) -> bytearray:
    """Reconstruct an Adam7-interlaced image: unfilter each pass, then place its pixels."""
    stride = row_stride(width, bits_per_pixel)
    out = bytearray(height * stride)
    view = memoryview(data)
    position = 0
    for x0, y0, dx, dy, pass_width, pass_height in _pass_sizes(width, height):
        pass_stride = row_stride(pass_width, bits_per_pixel)
        size = pass_height * (1 + pass_stride)
        pixels = unfilter(view[position : position + size], pass_width, pass_height, bits_per_pixel)
        position += size
        for pass_y in range(pass_height):
            row_start = (y0 + pass_y * dy) * stride
            pass_row = pixels[pass_y * pass_stride : (pass_y + 1) * pass_stride]
            if bits_per_pixel >= 8:
                _place_whole_bytes(out, row_start, stride, pass_row, x0, dx, bits_per_pixel // 8)
            else:
                _place_bits(out, row_start, pass_row, x0, dx, pass_width, bits_per_pixel)
    return out


def _place_whole_bytes(
    out: bytearray, row_start: int, stride: int, pass_row: bytearray, x0: int, dx: int, size: int
) -> None:
    # One extended-slice assignment per byte of the pixel: every dx-th pixel's k-th byte.
    for k in range(size):
        out[row_start + x0 * size + k : row_start + stride : dx * size] = pass_row[k::size]


def _place_bits(
    out: bytearray, row_start: int, pass_row: bytearray, x0: int, dx: int, count: int, bits: int
) -> None:
    mask = (1 << bits) - 1
    for index in range(count):
        source_bit = index * bits
        value = (pass_row[source_bit // 8] >> (8 - bits - source_bit % 8)) & mask
        target_bit = (x0 + index * dx) * bits
        out[row_start + target_bit // 8] |= value << (8 - bits - target_bit % 8)
