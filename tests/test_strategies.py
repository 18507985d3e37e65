"""Read strategies as pure tables: which span each read asks for, per strategy and per
file; a hypothesis comparison of ``Adaptive`` with a plain reference; and the state of
one file never leaking into another's requests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import range_streams as rs
from range_streams._core.strategies import ReadStrategy

from .fakes import FakeServer, payload

KIB = 1024
MIB = 1 << 20

# (position, size, file_size, sequential) -> the span planned, read after read.
Step = tuple[tuple[int, int, int | None, bool], tuple[int, int]]

TABLES: list[tuple[str, ReadStrategy, list[Step]]] = [
    (
        "exact",
        rs.ExactReads(),
        [
            ((100, 10, None, False), (100, 110)),
            ((110, 10, None, True), (110, 120)),
            ((5000, 0, None, False), (5000, 5001)),  # a read of nothing still asks a byte
            ((990, 50, 1000, False), (990, 1000)),  # clipped to the known size
        ],
    ),
    (
        "blocks",
        rs.BlockCache(block_size=4 * KIB),
        [
            ((100, 10, None, False), (0, 4 * KIB)),
            ((4000, 200, None, True), (0, 8 * KIB)),
            ((9000, 1, 10_000, False), (8 * KIB, 10_000)),
        ],
    ),
    (
        "readahead",
        rs.Readahead(block_size=16 * KIB, max_window=128 * KIB),
        [
            ((0, 100, None, False), (0, 16 * KIB)),
            ((16 * KIB, 100, None, True), (16 * KIB, 48 * KIB)),
            ((48 * KIB, 100, None, True), (48 * KIB, 112 * KIB)),
            ((112 * KIB, 100, None, True), (112 * KIB, 240 * KIB)),
            ((240 * KIB, 100, None, True), (240 * KIB, 368 * KIB)),  # max_window
            ((MIB, 100, None, False), (MIB, MIB + 16 * KIB)),  # a jump: one block again
            ((0, 200 * KIB, None, False), (0, 200 * KIB)),  # a big read: all of it
        ],
    ),
    (
        "adaptive",
        rs.Adaptive(),
        [
            ((500_000, 4096, None, False), (500_000, 504_096)),  # random: what it asks
            ((100_000, 4096, None, False), (100_000, 104_096)),
            ((7000, 1, None, False), (7000, 7000 + 4 * KIB)),  # min_read: tarfile's byte
            ((11_096, 512, None, True), (11_096, 11_096 + 32 * KIB)),  # runs grow 8-fold
            ((43_864, 512, None, True), (43_864, 43_864 + 256 * KIB)),
            ((306_008, 512, None, True), (306_008, 306_008 + 2 * MIB)),
            ((2_403_160, 2 * MIB, None, True), (2_403_160, 2_403_160 + 16 * MIB)),
            ((19_180_376, 10, None, True), (19_180_376, 19_180_376 + 64 * MIB)),  # max_window
            ((40 * MIB, 30, None, False), (40 * MIB, 40 * MIB + 4 * KIB)),  # a jump resets
            ((40 * MIB + 4 * KIB, 5 * MIB, None, True), (40 * MIB + 4 * KIB, 45 * MIB + 4 * KIB)),
            # Big exact reads in a row (h5py's chunks): the window counts reads, not bytes.
            ((60 * MIB, 400_000, None, False), (60 * MIB, 60 * MIB + 400_000)),
            ((60 * MIB + 400_000, 400_000, None, True), (60 * MIB + 400_000, 60 * MIB + 800_000)),
            ((0, 100, 50, False), (0, 50)),
        ],
    ),
    (
        "adaptive capped",
        rs.Adaptive(min_read=1 * KIB, growth=8, max_window=100 * KIB),
        [
            ((0, 10, None, False), (0, KIB)),
            ((KIB, 10, None, True), (KIB, 9 * KIB)),
            ((9 * KIB, 10, None, True), (9 * KIB, 73 * KIB)),
            ((73 * KIB, 10, None, True), (73 * KIB, 173 * KIB)),
            ((173 * KIB, 10, None, True), (173 * KIB, 273 * KIB)),
        ],
    ),
]


@pytest.mark.parametrize(("strategy", "steps"), [t[1:] for t in TABLES], ids=[t[0] for t in TABLES])
def test_plans(strategy: ReadStrategy, steps: list[Step]) -> None:
    planner = strategy.planner()
    for (position, size, file_size, sequential), expected in steps:
        assert planner.plan(position, size, file_size, sequential) == expected


def test_each_file_gets_its_own_planner() -> None:
    strategy = rs.Adaptive()
    a, b = strategy.planner(), strategy.planner()
    assert a is not b
    a.plan(0, 100, None, False)
    a.plan(4096, 100, None, True)
    b.plan(10 * MIB, 100, None, False)  # another file's random read ...
    assert a.plan(20 * KIB, 100, None, True) == (20 * KIB, 276 * KIB)  # ... left A's run alone


@pytest.mark.parametrize(
    ("strategy", "keep", "max_bytes", "drain_limit", "ahead_from"),
    [
        (rs.ExactReads(), False, None, 64 * KIB, 0),
        (rs.BlockCache(block_size=256 * KIB, max_bytes=MIB), True, MIB, 256 * KIB, 0),
        (rs.Readahead(block_size=8 * KIB), False, None, 64 * KIB, 8 * MIB),
        (rs.Adaptive(), False, None, 128 * KIB, 8 * MIB),
    ],
)
def test_what_the_file_reads_of_a_strategy(
    strategy: ReadStrategy, keep: bool, max_bytes: int | None, drain_limit: int, ahead_from: int
) -> None:
    assert (strategy.keep, strategy.max_bytes, strategy.drain_limit, strategy.ahead_from) == (
        keep,
        max_bytes,
        drain_limit,
        ahead_from,
    )
    assert strategy.ahead_min_wait >= 0
    hash(strategy)  # settings are frozen values, safe to share among files


@pytest.mark.parametrize(
    "make",
    [
        lambda: rs.Adaptive(min_read=0),
        lambda: rs.Adaptive(growth=1),
        lambda: rs.Adaptive(max_window=-5),
        lambda: rs.BlockCache(block_size=0),
        lambda: rs.BlockCache(max_bytes=0),
        lambda: rs.Readahead(block_size=True),
    ],
)
def test_bad_settings_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_the_default_strategy_is_adaptive() -> None:
    assert rs.FileOptions().strategy == rs.Adaptive()


reads = st.lists(
    st.tuples(st.integers(0, 1 << 40), st.integers(0, 1 << 26), st.booleans()), max_size=40
)


@given(
    reads,
    st.integers(1, 1 << 16),
    st.integers(2, 16),
    st.integers(1, 1 << 28),
    st.one_of(st.none(), st.integers(1, 1 << 41)),
)
def test_adaptive_matches_a_plain_reference(
    steps: list[tuple[int, int, bool]],
    min_read: int,
    growth: int,
    max_window: int,
    file_size: int | None,
) -> None:
    """A random read asks max(size, min_read) and starts a run with a window of
    min_read; each read of the run multiplies the window by growth (capped at
    max_window) and asks the window or what it needs, whichever is more; all clipped
    to the size when it is known, and always covering the read's first byte."""
    planner = rs.Adaptive(min_read=min_read, growth=growth, max_window=max_window).planner()
    window = 0
    for position, size, sequential in steps:
        window = min(window * growth, max_window) if sequential and window else min_read
        request = max(size, window, 1)
        stop = position + request if file_size is None else min(position + request, file_size)
        assert planner.plan(position, size, file_size, sequential) == (position, stop)


URL = "http://files.test/f.bin"


def test_files_sharing_options_keep_their_own_windows() -> None:
    """FileOptions shared by two files (as an fsspec filesystem shares them): a random
    read of file B between two sequential reads of file A leaves A's run growing."""
    data = payload(4 * MIB, seed=3)
    options = rs.FileOptions(strategy=rs.Adaptive())
    server_a, server_b = FakeServer(data), FakeServer(data)
    with (
        rs.RangeFile(URL, server_a.client(), options) as a,
        rs.RangeFile(URL, server_b.client(), options) as b,
    ):
        assert a.read(4096) == data[:4096]
        assert a.read(4096) == data[4096:8192]  # a run: 32 KiB from 4096
        b.seek(3 * MIB)
        assert b.read(100) == data[3 * MIB : 3 * MIB + 100]
        a.seek(4096 + 32 * KIB)
        assert a.read(10) == data[4096 + 32 * KIB : 4096 + 32 * KIB + 10]
    assert server_a.ranges_sent == ["bytes=0-4095", "bytes=4096-36863", "bytes=36864-299007"]
    assert server_b.ranges_sent == [f"bytes={3 * MIB}-{3 * MIB + 4095}"]
