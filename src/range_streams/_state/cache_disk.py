"""The shared cache's disk tier: blocks and file metadata in one SQLite database.

SQLite (the standard library's ``sqlite3``) is the storage engine: every store is one
transaction, so a process killed mid-write leaves the blocks it had committed and none
of the rest (the write-ahead log is rolled back on the next open); several processes
read at once and take turns to write (WAL mode, a busy timeout). Each block is kept
with a BLAKE2b checksum, checked on every read: a block whose bytes changed on disk is
dropped and fetched again, never served (the checksum covers where the bytes belong
too: a flipped offset is caught like a flipped byte). Blocks are evicted least recently used first
once their bytes pass the bound, and the file gives the space back (incremental vacuum).

The directory must belong to the user and not be writable by others: whoever can write
it could hand this user any bytes for any URL. One that fails the check is not used
(with a warning), as pip does with its cache. The database file is made private
(0600): it holds the bytes of whatever was read, private files included.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._core.cache_blocks import Piece, eviction_target
from .._core.cache_keys import FileMeta, block_digest

__all__ = ["DATABASE", "DiskTier", "DiskUnusable", "Stored", "check_directory"]

logger = logging.getLogger("range_streams")

DATABASE = "range-streams-cache.sqlite3"
SCHEMA = 1
BUSY_TIMEOUT = 30.0  # seconds a write waits for another process's transaction
TOUCH_EVERY = 5.0  # a block's last use is written at most this often (reads stay reads)

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
    key TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    credentials TEXT NOT NULL,
    version TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    size INTEGER NOT NULL,
    origin TEXT NOT NULL,
    location TEXT,
    learned_at REAL NOT NULL,
    suffix_supported INTEGER,
    multipart_supported INTEGER,
    max_ranges INTEGER
);
CREATE INDEX IF NOT EXISTS files_by_url ON files (url);
CREATE TABLE IF NOT EXISTS blocks (
    file TEXT NOT NULL,
    version TEXT NOT NULL,
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    digest BLOB NOT NULL,
    used REAL NOT NULL,
    PRIMARY KEY (file, version, idx)
);
CREATE INDEX IF NOT EXISTS blocks_by_use ON blocks (used);
"""

_META_COLUMNS = (
    "url, credentials, version, etag, last_modified, size, origin, location, learned_at,"
    " suffix_supported, multipart_supported, max_ranges"
)


_PUT_META = f"INSERT OR REPLACE INTO files (key, {_META_COLUMNS}) VALUES ({', '.join('?' * 13)})"


class DiskUnusable(Exception):
    """The directory or its database cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What a store did: pieces written, bytes evicted to stay under the bound."""

    written: int
    evicted_bytes: int


def check_directory(path: Path) -> None:
    """Create ``path`` (private) if needed; raise ``DiskUnusable`` when another user owns
    it or anyone else may write into it."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError as exc:
        raise DiskUnusable(f"cannot use {path} as a cache directory: {exc}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise DiskUnusable(f"{path} is not a directory")
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows: ACLs, not modes; the user's profile is private already
        return
    if info.st_uid != getuid():
        raise DiskUnusable(f"{path} belongs to another user (uid {info.st_uid})")
    if info.st_mode & stat.S_IWOTH:
        raise DiskUnusable(f"{path} is writable by every user")


def _meta(row: tuple[Any, ...]) -> FileMeta:
    return FileMeta(
        url=row[0],
        credentials=row[1],
        version=row[2],
        etag=row[3],
        last_modified=row[4],
        size=row[5],
        origin=row[6],
        location=row[7],
        learned_at=row[8],
        suffix_supported=None if row[9] is None else bool(row[9]),
        multipart_supported=None if row[10] is None else bool(row[10]),
        max_ranges=row[11],
    )


class DiskTier:
    """The database in one cache directory, opened by one process. Thread-safe (one
    connection, used under a lock)."""

    def __init__(self, directory: Path, max_bytes: int, block_size: int) -> None:
        check_directory(directory)
        self.directory = directory
        self.path = directory / DATABASE
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise DiskUnusable(f"cannot open {self.path}: {exc}") from exc
        try:
            self._prepare(block_size)
        except sqlite3.Error as exc:
            self._db.close()
            raise DiskUnusable(f"cannot use {self.path}: {exc}") from exc

    def _prepare(self, block_size: int) -> None:
        with contextlib.suppress(OSError):  # made by us just now, or already ours
            os.chmod(self.path, 0o600)
        db = self._db
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes on a new database
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        with self._transaction():
            for statement in _SCHEMA_SQL.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO settings VALUES ('schema', ?), ('secret', ?),"
                " ('block_size', ?)",
                (SCHEMA, secrets.token_bytes(32), block_size),
            )
            found = dict(db.execute("SELECT name, value FROM settings").fetchall())
        if found["schema"] != SCHEMA:
            raise DiskUnusable(
                f"{self.path} was made by another version of range-streams (schema"
                f" {found['schema']}); clear it with `range-streams cache clear`"
            )
        self.secret: bytes = found["secret"]
        self.block_size: int = found["block_size"]
        if self.block_size != block_size:
            logger.info(
                "%s keeps %d-byte blocks; using that instead of %d",
                self.directory,
                self.block_size,
                block_size,
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (the write lock taken at once, waited for up to
        ``BUSY_TIMEOUT``); rolled back if anything in it fails."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- metadata ------------------------------------------------------------------------
    def meta(self, key: str) -> FileMeta | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_META_COLUMNS} FROM files WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else _meta(row)

    def candidates(self, url: str) -> list[FileMeta]:
        """Every file kept for a URL (one per set of credentials), latest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_META_COLUMNS} FROM files WHERE url = ? ORDER BY learned_at DESC",
                (url,),
            ).fetchall()
        return [_meta(row) for row in rows]

    def put_meta(self, meta: FileMeta) -> None:
        """Keep ``meta``; the file's blocks of any other version are dropped with it."""
        values = (
            meta.key,
            meta.url,
            meta.credentials,
            meta.version,
            meta.etag,
            meta.last_modified,
            meta.size,
            meta.origin,
            meta.location,
            meta.learned_at,
            meta.suffix_supported,
            meta.multipart_supported,
            meta.max_ranges,
        )
        with self._lock, self._transaction() as db:
            db.execute(
                "DELETE FROM blocks WHERE file = ? AND version != ?", (meta.key, meta.version)
            )
            db.execute(_PUT_META, values)

    # -- blocks --------------------------------------------------------------------------
    def get(self, file: str, version: str, index: int) -> tuple[Piece | None, bool]:
        """The piece kept for a block, and whether one was dropped as corrupt."""
        with self._lock:
            row = self._db.execute(
                "SELECT rowid, start, size, data, digest, used FROM blocks"
                " WHERE file = ? AND version = ? AND idx = ?",
                (file, version, index),
            ).fetchone()
            if row is None:
                return None, False
            rowid, start, size, data, digest, used = row
            if len(data) != size or block_digest(file, version, index, start, data) != digest:
                logger.warning(
                    "%s: block %d of a cached file failed its checksum; fetching it again",
                    self.directory,
                    index,
                )
                with self._transaction() as db:
                    db.execute("DELETE FROM blocks WHERE rowid = ?", (rowid,))
                return None, True
            now = time.time()
            if now - used > TOUCH_EVERY:
                with contextlib.suppress(sqlite3.OperationalError):  # busy: next time
                    self._db.execute("UPDATE blocks SET used = ? WHERE rowid = ?", (now, rowid))
        return Piece(index, start, bytes(data)), False

    def has(self, file: str, version: str, index: int) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM blocks WHERE file = ? AND version = ? AND idx = ?",
                (file, version, index),
            ).fetchone()
        return row is not None

    def complete(self, file: str, version: str, first: int, stop: int, total: int) -> set[int]:
        """Which of blocks ``[first, stop)`` are kept whole."""
        block = self.block_size
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, start, size FROM blocks WHERE file = ? AND version = ?"
                " AND idx >= ? AND idx < ?",
                (file, version, first, stop),
            ).fetchall()
        return {
            index
            for index, start, size in rows
            if start == index * block and start + size == min(start + block, total)
        }

    def put(self, file: str, version: str, pieces: list[tuple[Piece, bool]]) -> Stored:
        """Keep ``pieces`` (each with whether it is a whole block) in one transaction: a
        whole block replaces what was kept for it, a part is kept only where nothing
        was. Then evict, least recently used first, if the bound is passed."""
        now = time.time()
        rows = [
            (
                file,
                version,
                p.index,
                p.start,
                len(p.data),
                p.data,
                block_digest(file, version, p.index, p.start, p.data),
                now,
            )
            for p, _ in pieces
        ]
        whole = [row for row, (_, complete) in zip(rows, pieces, strict=True) if complete]
        parts = [row for row, (_, complete) in zip(rows, pieces, strict=True) if not complete]
        evicted = 0
        with self._lock:
            with self._transaction() as db:
                sql = "INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                db.executemany("INSERT OR REPLACE " + sql, whole)
                db.executemany("INSERT OR IGNORE " + sql, parts)
                evicted = self._evict(db)
            if evicted:
                with contextlib.suppress(sqlite3.OperationalError):
                    self._db.executescript("PRAGMA incremental_vacuum;")  # every freed page
        return Stored(len(rows), evicted)

    def _evict(self, db: sqlite3.Connection) -> int:
        (used,) = db.execute("SELECT total(size) FROM blocks").fetchone()
        target = eviction_target(int(used), self.max_bytes)
        freed = 0
        while freed < target:
            victims = db.execute(
                "SELECT rowid, size FROM blocks ORDER BY used LIMIT 256"
            ).fetchall()
            if not victims:
                break
            chosen = []
            for rowid, size in victims:
                chosen.append((rowid,))
                freed += size
                if freed >= target:
                    break
            db.executemany("DELETE FROM blocks WHERE rowid = ?", chosen)
        if freed:
            # Files none of whose blocks are left go too: their metadata alone is
            # worth one request at most, and the table stays bounded.
            db.execute("DELETE FROM files WHERE key NOT IN (SELECT DISTINCT file FROM blocks)")
        return freed

    # -- the whole cache -----------------------------------------------------------------
    def usage(self) -> dict[str, Any]:
        with self._lock:
            (files,) = self._db.execute("SELECT count(*) FROM files").fetchone()
            blocks, used = self._db.execute("SELECT count(*), total(size) FROM blocks").fetchone()
            per_origin = self._db.execute(
                "SELECT origin, count(DISTINCT f.key), total(b.size) FROM files f"
                " LEFT JOIN blocks b ON b.file = f.key GROUP BY origin ORDER BY origin"
            ).fetchall()
        try:
            on_disk = sum(
                p.stat().st_size for p in self.directory.iterdir() if p.name.startswith(DATABASE)
            )
        except OSError:
            on_disk = 0
        return {
            "files": files,
            "origins": [
                {"origin": origin, "files": count, "bytes": int(size)}
                for origin, count, size in per_origin
            ],
            "blocks": blocks,
            "bytes": int(used),
            "file_bytes": on_disk,
            "block_size": self.block_size,
            "max_bytes": self.max_bytes,
        }

    def clear(self) -> None:
        with self._lock:
            with self._transaction() as db:
                db.execute("DELETE FROM blocks")
                db.execute("DELETE FROM files")
            with contextlib.suppress(sqlite3.OperationalError):
                self._db.executescript("PRAGMA incremental_vacuum;")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()
