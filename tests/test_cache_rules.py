"""The shared cache's pure rules as tables (keys, versions, blocks, the memory tier's LRU,
eviction targets), its settings (validation, pickling, the environment), and its disk
tier on its own: checksums, the bound, transactions, directories it refuses."""

from __future__ import annotations

import os
import pickle
import sqlite3
from pathlib import Path

import pytest

import range_streams
from range_streams import SharedCache
from range_streams._core.cache_blocks import (
    BlockLRU,
    Piece,
    aligned_run,
    blocks_wanted,
    eviction_target,
    runs,
    split,
)
from range_streams._core.cache_keys import (
    ANONYMOUS,
    credential_key,
    forbids_storing,
    url_key,
    version_key,
)
from range_streams._core.cache_stats import CacheStats, StatsCounter
from range_streams._core.range_headers import Validators
from range_streams._state.cache_disk import DATABASE, DiskTier, DiskUnusable, check_directory
from range_streams._state.cache_locks import BlockClaims
from range_streams._state.shared_cache import (
    CACHE_ENV,
    CACHE_SIZE_ENV,
    default_directory,
    parse_size,
    resolve_cache,
)

B = 100  # a block size small enough to reason about


# -- keys ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("validators", "cacheable"),
    [
        (Validators('"abc"', None, 10), True),  # a strong ETag
        (Validators(None, "Mon, 01 Jan 2024 00:00:00 GMT", 10), True),  # a date
        (Validators('W/"abc"', "Mon, 01 Jan 2024 00:00:00 GMT", 10), True),  # weak + date
        (Validators('W/"abc"', None, 10), False),  # weak alone: not byte-equal
        (Validators(None, None, 10), False),  # nothing to tell versions apart
        (Validators('"abc"', None, None), False),  # no size
        (None, False),
    ],
)
def test_which_versions_are_cacheable(validators: Validators | None, cacheable: bool) -> None:
    assert (version_key(validators) is not None) is cacheable


def test_versions_differ_in_every_validator() -> None:
    base = Validators('"a"', "Mon, 01 Jan 2024 00:00:00 GMT", 10)
    others = [
        Validators('"b"', base.last_modified, 10),
        Validators(base.etag, "Tue, 02 Jan 2024 00:00:00 GMT", 10),
        Validators(base.etag, base.last_modified, 11),
    ]
    keys = {version_key(v) for v in [base, *others]}
    assert len(keys) == 4
    assert version_key(base) == version_key(Validators('"a"', base.last_modified, 10))


def test_a_url_key_shows_nothing_of_the_url() -> None:
    url = "https://example.org/data.bin?X-Amz-Signature=s3cr3t"
    key = url_key(url)
    assert len(key) == 32 and "s3cr3t" not in key and "example" not in key
    assert key == url_key(url) != url_key(url.replace("s3cr3t", "other"))


@pytest.mark.parametrize(
    ("headers", "anonymous"),
    [
        ([("accept", "*/*"), ("range", "bytes=0-0")], True),
        ([("Authorization", "")], True),  # an empty value carries nothing
        ([("Authorization", "Bearer t1")], False),
        ([("cookie", "session=x")], False),
        ([("x-api-key", "k")], True),  # not named as a credential: see the next test
    ],
)
def test_credential_keys(headers: list[tuple[str, str]], anonymous: bool) -> None:
    names = frozenset({"authorization", "cookie"})
    assert (credential_key(b"secret", headers, names) == ANONYMOUS) is anonymous


def test_credential_keys_are_keyed_and_tell_credentials_apart() -> None:
    names = frozenset({"authorization", "x-api-key"})
    one = credential_key(b"k1", [("authorization", "Basic dXNlcjpwYXNz")], names)
    assert one == credential_key(b"k1", [("Authorization", "Basic dXNlcjpwYXNz")], names)
    assert one != credential_key(b"k2", [("authorization", "Basic dXNlcjpwYXNz")], names)
    assert one != credential_key(b"k1", [("authorization", "Basic b3RoZXI6cGFzcw==")], names)
    assert "dXNlcjpwYXNz" not in one
    assert credential_key(b"k1", [("x-api-key", "a")], names) != credential_key(
        b"k1", [("x-api-key", "b")], names
    )


@pytest.mark.parametrize(
    ("value", "forbidden"),
    [
        (None, False),
        ("max-age=60", False),
        ("private", False),  # a private cache (one user's directory) may keep it
        ("no-store", True),
        ("public, No-Store", True),
        ("no-cache", False),  # "revalidate first": every session does
    ],
)
def test_no_store_is_honoured(value: str | None, forbidden: bool) -> None:
    headers = {} if value is None else {"cache-control": value}
    assert forbids_storing(headers) is forbidden


# -- blocks --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        (0, 250, [(0, 0, 100), (1, 100, 200), (2, 200, 250)]),
        (150, 100, [(1, 150, 200), (2, 200, 250)]),  # a tail probe: mid-block first
        (200, 100, [(2, 200, 300)]),
        (5, 3, [(0, 5, 8)]),
        (0, 0, []),
    ],
)
def test_split_at_block_boundaries(
    start: int, length: int, expected: list[tuple[int, int, int]]
) -> None:
    data = bytes(range(256)) * 2
    pieces = split(start, data[start : start + length], B)
    assert [(p.index, p.start, p.stop) for p in pieces] == expected
    assert b"".join(p.data for p in pieces) == data[start : start + length]


@pytest.mark.parametrize(
    ("piece", "total", "complete"),
    [
        (Piece(0, 0, bytes(100)), 1000, True),
        (Piece(1, 150, bytes(50)), 1000, False),  # starts mid-block
        (Piece(1, 100, bytes(50)), 1000, False),  # ends mid-block, not at the end
        (Piece(9, 900, bytes(50)), 950, True),  # the last block, shorter
    ],
)
def test_complete_pieces(piece: Piece, total: int, complete: bool) -> None:
    assert piece.complete(B, total) is complete


@pytest.mark.parametrize(
    ("position", "planned", "size", "total", "max_run", "expected"),
    [
        (150, (150, 250), 10, None, 10_000, (100, 200)),  # a window from the block's start
        (150, (150, 160), 100, None, 10_000, (100, 300)),  # at least the read itself
        (100, (100, 900), 10, None, 10_000, (100, 900)),  # a sequential window
        (100, (100, 900), 10, None, 350, (100, 400)),  # capped, whole blocks
        (100, (100, 900), 10, None, 50, (100, 200)),  # never less than one block
        (150, (150, 900), 10, 420, 10_000, (100, 420)),  # ended at the file's end
        (0, (0, 1), 1, None, 10_000, (0, 100)),
    ],
)
def test_aligned_runs(
    position: int,
    planned: tuple[int, int],
    size: int,
    total: int | None,
    max_run: int,
    expected: tuple[int, int],
) -> None:
    assert aligned_run(position, planned, size, B, total, max_run) == expected


def test_blocks_wanted_and_runs() -> None:
    wanted = blocks_wanted([(10, 20), (50, 60), (95, 205), (400, 400), (410, 420)], B)
    assert wanted == {0: (10, 100), 1: (100, 200), 2: (200, 205), 4: (410, 420)}
    assert runs(sorted(wanted)) == [(0, 3), (4, 5)]
    assert runs([]) == []


@pytest.mark.parametrize(
    ("used", "limit", "free"),
    [(0, 100, 0), (100, 100, 0), (101, 100, 11), (300, 100, 210), (10, 1, 10)],
)
def test_eviction_goes_below_the_bound(used: int, limit: int, free: int) -> None:
    assert eviction_target(used, limit) == free


def test_memory_tier_is_a_bounded_lru() -> None:
    lru = BlockLRU(250)
    for index in range(3):
        assert lru.put(("f", "v1", index), Piece(index, index * 100, bytes(100))) == (
            0 if index < 2 else 100
        )
    assert lru.get(("f", "v1", 0)) is None and lru.nbytes == 200  # the oldest went
    assert lru.get(("f", "v1", 1)) is not None  # now the most recent
    lru.put(("g", "v1", 0), Piece(0, 0, bytes(100)))
    assert lru.get(("f", "v1", 2)) is None and lru.get(("f", "v1", 1)) is not None
    assert lru.put(("f", "v1", 9), Piece(9, 900, bytes(251))) == 0 and len(lru) == 2
    lru.put(("f", "v2", 5), Piece(5, 500, bytes(10)))
    lru.forget("f", keep_version="v2")
    assert lru.get(("f", "v1", 1)) is None and lru.get(("f", "v2", 5)) is not None
    assert lru.get(("g", "v1", 0)) is not None


def test_counters_count_into_their_parents() -> None:
    parent = StatsCounter()
    child = StatsCounter(parent)
    child.add(hits=2, memory_hits=2, bytes_saved=300)
    child.add(misses=1, bytes_fetched=100)
    assert child.snapshot() == parent.snapshot() == CacheStats(2, 2, 0, 1, 300, 100)
    assert "2 hits (2 memory, 0 disk), 1 miss, 300 bytes saved" in child.snapshot().summary()
    parent.reset()
    assert parent.snapshot() == CacheStats() and child.snapshot().hits == 2


# -- settings ------------------------------------------------------------------------------
def test_settings_are_plain_values(tmp_path: Path) -> None:
    cache = SharedCache(tmp_path / "c", max_bytes=1 << 20)
    assert cache.directory == str(tmp_path / "c")  # a PathLike is kept as text
    copy = pickle.loads(pickle.dumps(cache))
    assert copy == cache and hash(copy) == hash(cache)
    assert SharedCache(None).path is None
    assert SharedCache().directory == default_directory()
    assert range_streams.SharedCache is SharedCache


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_bytes": 0}, ValueError),
        ({"memory_bytes": -1}, ValueError),
        ({"block_size": 1.5}, TypeError),
        ({"block_size": True}, TypeError),
        ({"small_file_bytes": "1M"}, TypeError),
        ({"directory": 42}, TypeError),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error, match="SharedCache"):
        SharedCache(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "size"),
    [("4096", 4096), ("64K", 64 << 10), ("500M", 500 << 20), ("2G", 2 << 30), ("1.5GiB", 3 << 29)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_a_bad_size_is_refused() -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_choosing_a_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert resolve_cache(None) is None
    assert resolve_cache(False) is None
    assert resolve_cache(True) == SharedCache()
    assert resolve_cache(str(tmp_path)) == SharedCache(str(tmp_path))
    assert resolve_cache(tmp_path) == SharedCache(str(tmp_path))
    given = SharedCache(None)
    assert resolve_cache(given) is given
    with pytest.raises(TypeError, match="cache must be"):
        resolve_cache(3)  # type: ignore[arg-type]
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert resolve_cache(None) == SharedCache(str(tmp_path))
    assert resolve_cache(False) is None  # the caller's no wins
    monkeypatch.setenv(CACHE_SIZE_ENV, "2M")
    assert resolve_cache(None) == SharedCache(str(tmp_path), max_bytes=2 << 20)
    monkeypatch.setenv(CACHE_ENV, "memory")
    assert resolve_cache(None) == SharedCache(None, max_bytes=2 << 20)
    for off in ("", "off", "0", "false"):
        monkeypatch.setenv(CACHE_ENV, off)
        assert resolve_cache(None) is None


# -- the disk tier on its own ----------------------------------------------------------------
def _pieces(count: int, size: int = B) -> list[tuple[Piece, bool]]:
    return [(Piece(i, i * size, bytes([i % 256]) * size), True) for i in range(count)]


def test_disk_blocks_round_trip_and_a_part_never_replaces_a_whole(tmp_path: Path) -> None:
    disk = DiskTier(tmp_path, 10_000, B)
    disk.put("f", "v", _pieces(3))
    assert disk.get("f", "v", 1) == (Piece(1, 100, bytes([1]) * 100), False)
    assert disk.get("f", "other", 1) == (None, False)
    disk.put("f", "v", [(Piece(1, 150, b"x" * 50), False)])  # a part: kept only if none
    assert disk.get("f", "v", 1)[0] == Piece(1, 100, bytes([1]) * 100)
    assert disk.complete("f", "v", 0, 5, 300) == {0, 1, 2}
    assert disk.has("f", "v", 2) and not disk.has("f", "v", 3)
    assert (tmp_path / DATABASE).stat().st_mode & 0o777 == 0o600


def test_disk_checksums_catch_changed_bytes(tmp_path: Path) -> None:
    disk = DiskTier(tmp_path, 10_000, B)
    disk.put("f", "v", _pieces(2))
    with sqlite3.connect(tmp_path / DATABASE) as db:  # bytes changed behind its back
        db.execute("UPDATE blocks SET data = ? WHERE idx = 1", (b"\x01" * 99 + b"\x02",))
    assert disk.get("f", "v", 1) == (None, True)
    assert disk.get("f", "v", 1) == (None, False)  # dropped, not served
    assert disk.get("f", "v", 0)[0] is not None
    with sqlite3.connect(tmp_path / DATABASE) as db:  # the right bytes, placed elsewhere
        db.execute("UPDATE blocks SET start = 50 WHERE idx = 0")
    assert disk.get("f", "v", 0) == (None, True)


def test_disk_bound_evicts_least_recently_used(tmp_path: Path) -> None:
    disk = DiskTier(tmp_path, 1000, B)
    disk.put("old", "v", _pieces(6))
    disk.put("new", "v", _pieces(6))  # 1,200 bytes: past the bound
    usage = disk.usage()
    assert usage["bytes"] <= 900 and usage["blocks"] == 9
    assert disk.complete("new", "v", 0, 6, 600) == set(range(6))
    assert disk.complete("old", "v", 0, 6, 600) == {3, 4, 5}


def test_disk_refuses_directories_others_can_write(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(DiskUnusable, match="writable by every user"):
        check_directory(shared)
    plain = tmp_path / "not-a-dir"
    plain.write_text("x")
    with pytest.raises(DiskUnusable):
        check_directory(plain)
    made = tmp_path / "made" / "here"
    check_directory(made)
    assert made.stat().st_mode & 0o777 == 0o700


def test_an_unusable_directory_means_memory_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "open"
    shared.mkdir()
    shared.chmod(0o777)
    cache = SharedCache(shared)
    info = cache.info()
    assert "writable by every user" in info["disk"]["error"]
    assert "not used" in caplog.text and not (shared / DATABASE).exists()


def test_a_database_of_another_schema_is_refused_then_cleared(tmp_path: Path) -> None:
    DiskTier(tmp_path, 10_000, B).close()
    with sqlite3.connect(tmp_path / DATABASE) as db:
        db.execute("UPDATE settings SET value = 99 WHERE name = 'schema'")
    with pytest.raises(DiskUnusable, match="another version"):
        DiskTier(tmp_path, 10_000, B)
    cache = SharedCache(tmp_path)
    assert "another version" in cache.info()["disk"]["error"]
    cache.clear()  # the files go, and the cache starts afresh
    assert cache.info()["disk"]["blocks"] == 0


def test_a_directory_keeps_its_block_size(tmp_path: Path) -> None:
    DiskTier(tmp_path, 10_000, 4096).close()
    assert DiskTier(tmp_path, 10_000, 8192).block_size == 4096


def test_claims_hold_within_and_across_holders(tmp_path: Path) -> None:
    claims = BlockClaims(tmp_path)
    assert claims.claim_run("u", [0, 1, 2]) == [0, 1, 2]
    assert not claims.claim("u", 1) and claims.claim_run("u", [1, 3]) == []
    assert claims.claim_run("u", [3, 4, 1, 5]) == [3, 4]  # a prefix
    claims.release("u", [1])
    assert claims.free("u", 1) and not claims.free("u", 0)
    assert os.path.exists(tmp_path / "range-streams-cache.lock")
