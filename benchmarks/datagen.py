"""Deterministic benchmark data in benchmarks/.data/, cached by content parameters.

Each artifact's file name carries a hash of the parameters that define its bytes (and of
GENERATOR_VERSION), so a cached file is reused only when it would be regenerated identically.
Files are written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written artifact behind. Nothing here holds more than 16 MiB in memory.

    python benchmarks/datagen.py [--quick]     # generate (or reuse) and print the manifest
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

GENERATOR_VERSION = 1
DATA_DIR = Path(__file__).resolve().parent / ".data"
MIB = 1 << 20
BLOCK = 16 * MIB  # the seeded block that big files repeat, with a counter per MiB
FIXED_DATE = (2024, 1, 1, 0, 0, 0)
FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z


@dataclass(frozen=True)
class Params:
    many_entries: int  # entries in the "many" zip
    big_zip_fillers: int  # 5 MiB stored members before and after the target, each side
    big_file_mib: int
    tar_members: int
    big_tar_members: int  # members of ~1 MiB in the large-member tar
    png_mib: int  # pixel bytes of the big PNG, in 16 MiB IDAT chunks


FULL = Params(
    many_entries=20_000,
    big_zip_fillers=29,
    big_file_mib=1024,
    tar_members=200,
    big_tar_members=200,
    png_mib=55,
)
QUICK = Params(
    many_entries=2_000,
    big_zip_fillers=3,
    big_file_mib=64,
    tar_members=200,
    big_tar_members=20,
    png_mib=8,
)

TARGET_NAME = "middle/target.bin"
TARGET_SIZE = 5 * MIB


@dataclass
class Artifact:
    name: str  # file name under DATA_DIR (and URL path)
    size: int
    meta: dict[str, object] = field(default_factory=dict)


def _key(kind: str, **params: object) -> str:
    blob = json.dumps({"v": GENERATOR_VERSION, "kind": kind, **params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _block(seed: int) -> bytes:
    return random.Random(seed).randbytes(BLOCK)


def mib_chunks(seed: int, n_mib: int, block: bytes | None = None) -> Iterator[bytes]:
    """n_mib distinct MiB chunks: a slice of a seeded 16 MiB block, first 8 bytes = index."""
    block = block if block is not None else _block(seed)
    per_block = BLOCK // MIB
    for i in range(n_mib):
        off = (i % per_block) * MIB
        chunk = bytearray(block[off : off + MIB])
        chunk[0:8] = struct.pack("<Q", i)
        yield bytes(chunk)


def expected_big_file_bytes(block: bytes, start: int, stop: int) -> bytes:
    """The bytes [start, stop) of the big file, computed without reading it."""
    # Only the bytes asked for are copied: the benchmarks check every read with this,
    # inside the timed region, and copying the whole MiB per 4 KiB read cost ~40 ms
    # per 200 reads, charged to every implementation alike.
    out = bytearray()
    pos = start
    while pos < stop:
        i, within = divmod(pos, MIB)
        take = min(stop - pos, MIB - within)
        off = (i % (BLOCK // MIB)) * MIB
        piece = bytearray(block[off + within : off + within + take])
        if within < 8:  # each MiB starts with its index
            stamp = struct.pack("<Q", i)[within : within + take]
            piece[: len(stamp)] = stamp
        out += piece
        pos += take
    return bytes(out)


def _atomic(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


# ---------------------------------------------------------------------------------------------


def big_file(p: Params, data_dir: Path) -> Artifact:
    seed = 1
    name = f"big-{p.big_file_mib}MiB-{_key('big', mib=p.big_file_mib, seed=seed)}.bin"
    path = data_dir / name
    size = p.big_file_mib * MIB
    if not (path.exists() and path.stat().st_size == size):
        tmp = _atomic(path)
        with tmp.open("wb") as fh:
            for chunk in mib_chunks(seed, p.big_file_mib):
                fh.write(chunk)
        tmp.replace(path)
    return Artifact(name, size, {"seed": seed})


def _zipinfo(name: str, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    return info


def many_zip(p: Params, data_dir: Path) -> Artifact:
    n = p.many_entries
    name = f"many-{n}-{_key('many', n=n)}.zip"
    path = data_dir / name
    if not path.exists():
        rnd = random.Random(2)
        tmp = _atomic(path)
        with zipfile.ZipFile(tmp, "w") as zf:
            for i in range(n):
                body = rnd.randbytes(rnd.randrange(16, 256))
                # every 4th entry deflated (text-like), the rest stored
                if i % 4 == 0:
                    body = (f"entry {i}\n" * 8).encode() + body
                    zf.writestr(
                        _zipinfo(f"dir{i // 500:03d}/file{i:06d}.txt", zipfile.ZIP_DEFLATED), body
                    )
                else:
                    zf.writestr(
                        _zipinfo(f"dir{i // 500:03d}/file{i:06d}.bin", zipfile.ZIP_STORED), body
                    )
        tmp.replace(path)
    return Artifact(name, path.stat().st_size, {"entries": n})


def _target_payload() -> bytes:
    """5 MiB of compressible, seeded text-like bytes for the deflated target member."""
    rnd = random.Random(3)
    words = [rnd.randbytes(rnd.randrange(3, 9)).hex().encode() for _ in range(4096)]
    out = bytearray()
    while len(out) < TARGET_SIZE:
        out += b" ".join(rnd.choices(words, k=64)) + b"\n"
    return bytes(out[:TARGET_SIZE])


def big_zip(p: Params, data_dir: Path) -> Artifact:
    k = p.big_zip_fillers
    name = f"bigzip-{k}-{_key('bigzip', fillers=k)}.zip"
    path = data_dir / name
    target = _target_payload()
    digest = hashlib.sha256(target).hexdigest()
    if not path.exists():
        block = _block(4)
        chunks = mib_chunks(4, 2 * k * 5, block)
        tmp = _atomic(path)
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            for i in range(2 * k + 1):
                if i == k:
                    zf.writestr(_zipinfo(TARGET_NAME, zipfile.ZIP_DEFLATED), target)
                    continue
                with zf.open(_zipinfo(f"filler/{i:03d}.bin", zipfile.ZIP_STORED), "w") as member:
                    for _ in range(5):
                        member.write(next(chunks))
        tmp.replace(path)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(TARGET_NAME)
    return Artifact(
        name,
        path.stat().st_size,
        {
            "member": TARGET_NAME,
            "member_size": TARGET_SIZE,
            "member_sha256": digest,
            "member_offset": info.header_offset,
            "members": 2 * k + 1,
        },
    )


def tar_file(p: Params, data_dir: Path) -> Artifact:
    n = p.tar_members
    name = f"members-{n}-{_key('tar', n=n)}.tar"
    path = data_dir / name
    if not path.exists():
        rnd = random.Random(5)
        tmp = _atomic(path)
        with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tf:
            for i in range(n):
                body = rnd.randbytes(rnd.randrange(512, 64 * 1024))
                info = tarfile.TarInfo(f"tree/part{i // 50}/member{i:04d}.dat")
                info.size = len(body)
                info.mtime = FIXED_MTIME
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tf.addfile(info, _BytesReader(body))
        tmp.replace(path)
    return Artifact(name, path.stat().st_size, {"members": n})


def big_tar(p: Params, data_dir: Path) -> Artifact:
    """Members of 0.75-1.25 MiB (about 1 MiB each): a listing hops from header to header."""
    n = p.big_tar_members
    name = f"bigmembers-{n}-{_key('bigtar', n=n)}.tar"
    path = data_dir / name
    if not path.exists():
        rnd = random.Random(6)
        block = _block(6)
        tmp = _atomic(path)
        with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tf:
            for i in range(n):
                size = rnd.randrange(3 * MIB // 4, 5 * MIB // 4)
                start = rnd.randrange(0, BLOCK - size)
                info = tarfile.TarInfo(f"big/part{i // 50}/member{i:04d}.bin")
                info.size = size
                info.mtime = FIXED_MTIME
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tf.addfile(info, _BytesReader(block[start : start + size]))
        tmp.replace(path)
    return Artifact(name, path.stat().st_size, {"members": n})


PNG_IDAT = 16 * MIB  # bytes of compressed data per IDAT chunk: a few big chunks


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">L", len(data)) + kind + data + struct.pack(">L", crc)


def big_png(p: Params, data_dir: Path) -> Artifact:
    """An RGB image of seeded noise (it does not compress) whose image data is stored in
    16 MiB IDAT chunks, with a few text chunks before and after: what a chunk table
    listing sees in a big scan or render."""
    width = 4096
    height = p.png_mib * MIB // (3 * width)
    name = f"big-{width}x{height}-{_key('png', w=width, h=height, idat=PNG_IDAT)}.png"
    path = data_dir / name
    chunks = 0
    if not path.exists():
        rnd = random.Random(7)
        tmp = _atomic(path)
        compressor = zlib.compressobj(1)
        pending = bytearray()
        with tmp.open("wb") as fh:
            fh.write(b"\x89PNG\r\n\x1a\n")
            fh.write(_png_chunk(b"IHDR", struct.pack(">2L5B", width, height, 8, 2, 0, 0, 0)))
            fh.write(_png_chunk(b"tEXt", b"Software\0range-streams benchmarks/datagen.py"))
            for _ in range(height):
                pending += compressor.compress(b"\0" + rnd.randbytes(3 * width))
                while len(pending) >= PNG_IDAT:
                    fh.write(_png_chunk(b"IDAT", bytes(pending[:PNG_IDAT])))
                    del pending[:PNG_IDAT]
            pending += compressor.flush()
            fh.write(_png_chunk(b"IDAT", bytes(pending)))
            fh.write(_png_chunk(b"tEXt", b"Comment\0written after the image data"))
            fh.write(_png_chunk(b"IEND", b""))
        tmp.replace(path)
    with path.open("rb") as fh:
        position = 8
        size = path.stat().st_size
        while position < size:
            fh.seek(position)
            length = struct.unpack(">L", fh.read(4))[0]
            position += 12 + length
            chunks += 1
    return Artifact(name, path.stat().st_size, {"chunks": chunks, "width": width, "height": height})


PARQUET_ROWS = 3_000_000
PARQUET_ROW_GROUP = 250_000


def parquet_file(data_dir: Path) -> Artifact | None:
    """3 million rows in 12 row groups (pyarrow's defaults: snappy, dictionary pages):
    ``id`` int64 0..n-1, ``value`` a seeded uniform float64, ``label`` one of 256
    strings; 45.6 MB, of which the ``value`` chunks are 27.3 MB. None without pyarrow
    and numpy (the parquet rows then say so)."""
    try:
        import numpy as np  # noqa: PLC0415 (optional: only the parquet task needs them)
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.compute as pc  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError:
        return None
    rows, group = PARQUET_ROWS, PARQUET_ROW_GROUP
    name = f"table-{rows}-{_key('parquet', rows=rows, group=group, pyarrow=pa.__version__)}.parquet"
    path = data_dir / name
    if not path.exists():
        rng = np.random.default_rng(3)
        labels = pa.array([f"cat-{k:03d}" for k in range(256)])
        codes = pa.array(rng.integers(0, 256, rows).astype(np.int32))
        table = pa.table(
            {
                "id": pa.array(np.arange(rows, dtype=np.int64)),
                "value": pa.array(rng.random(rows)),
                "label": pa.DictionaryArray.from_arrays(codes, labels).cast(pa.string()),
            }
        )
        tmp = _atomic(path)
        pq.write_table(table, tmp, row_group_size=group)
        tmp.replace(path)
    meta = pq.read_metadata(path)
    value = pc.sum(pq.read_table(path, columns=["value"])["value"]).as_py()
    last = meta.row_group(meta.num_row_groups - 1).column(0).statistics.min
    tail = pq.read_table(path, columns=["value"], filters=[("id", ">=", last)])
    return Artifact(
        name,
        path.stat().st_size,
        {
            "row_groups": meta.num_row_groups,
            "rows": meta.num_rows,
            "value_sum": value,
            "last_group_first_id": last,
            "last_group_value_sum": pc.sum(tail["value"]).as_py(),
            "footer_bytes": meta.serialized_size + 8,
        },
    )


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        out = self._data[self._pos : end]
        self._pos += len(out)
        return out


def generate(quick: bool, data_dir: Path = DATA_DIR) -> dict[str, Artifact]:
    p = QUICK if quick else FULL
    data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "many_zip": many_zip(p, data_dir),
        "big_zip": big_zip(p, data_dir),
        "big_file": big_file(p, data_dir),
        "tar": tar_file(p, data_dir),
        "big_tar": big_tar(p, data_dir),
        "png": big_png(p, data_dir),
        **({"parquet": parquet} if (parquet := parquet_file(data_dir)) is not None else {}),
    }


def crc_of_file(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        while chunk := fh.read(MIB):
            crc = zlib.crc32(chunk, crc)
    return crc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    for key, art in generate(args.quick).items():
        print(f"{key:9} {art.name:40} {art.size:>12,} {art.meta}")


if __name__ == "__main__":
    main()
