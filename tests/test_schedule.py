"""HostQueue, fetch_many's per-host scheduler: pure tables, and random operation
sequences checked against a plain scan of the waiting list."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from range_streams._core.schedule import HostQueue


def play(limit: int | None, script: str) -> list[str]:
    """Run ``script`` (space-separated: ``+A3`` adds item 3 of host A, ``+-3`` item 3
    under no host, ``t`` takes, ``dA`` marks one of A's done) and return what each
    ``t`` took: ``A3``, or ``-`` for nothing."""
    queue: HostQueue[str] = HostQueue(limit)
    taken = []
    for op in script.split():
        if op.startswith("+"):
            host = None if op[1] == "-" else op[1]
            queue.add(int(op[2:]), host, op[1:])
        elif op == "t":
            taken.append(queue.take() or "-")
        else:
            queue.done(None if op[1] == "-" else op[1])
    return taken


@pytest.mark.parametrize(
    ("limit", "script", "taken"),
    [
        # no limit: input order, whatever the hosts
        (None, "+A0 +A1 +B2 t t t t", ["A0", "A1", "B2", "-"]),
        # limit 1: A is busy with A0, so B2 goes first; A1 waits for A0 to finish
        (1, "+A0 +A1 +B2 +A3 +B4 t t t", ["A0", "B2", "-"]),
        (1, "+A0 +A1 +B2 +A3 +B4 t t dA t t dB t dA t", ["A0", "B2", "A1", "-", "B4", "A3"]),
        # limit 2: the earliest item of a host with room, across hosts
        (2, "+A0 +A1 +A2 +B3 +A4 t t t t t", ["A0", "A1", "B3", "-", "-"]),
        (2, "+A0 +A1 +A2 +B3 +A4 t t t dA t t", ["A0", "A1", "B3", "A2", "-"]),
        # items under no host (a URL that failed its check) never wait
        (1, "+A0 +A1 +-2 t t t", ["A0", "-2", "-"]),
        # a host freed twice while its first item waits: that item is taken once
        (2, "+A0 +A1 t t +A2 +A3 dA dA t t t", ["A0", "A1", "A2", "A3", "-"]),
        # an item taken straight from the input (started) counts against its host
        (1, "+A5 t", ["A5"]),
    ],
)
def test_order(limit: int | None, script: str, taken: list[str]) -> None:
    assert play(limit, script) == taken


def test_started_counts_against_the_host() -> None:
    queue: HostQueue[str] = HostQueue(1)
    queue.started("A")
    assert not queue.has_room("A") and queue.has_room("B") and queue.has_room(None)
    queue.add(0, "A", "a0")
    assert queue.take() is None
    queue.done("A")
    assert queue.take() == "a0"


def test_drain_returns_every_waiting_item() -> None:
    queue: HostQueue[str] = HostQueue(1)
    for index, host in enumerate("AABB"):
        queue.add(index, host, f"{host}{index}")
    assert queue.take() == "A0"
    assert sorted(queue.drain()) == ["A1", "B2", "B3"]
    assert len(queue) == 0 and queue.take() is None


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        HostQueue(limit)


class Reference:
    """The obvious O(n) scheduler: scan the waiting list in input order."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.waiting: list[tuple[int, str | None]] = []
        self.running: dict[str, int] = {}

    def room(self, host: str | None) -> bool:
        return self.limit is None or host is None or self.running.get(host, 0) < self.limit

    def take(self) -> tuple[int, str | None] | None:
        for position, (index, host) in enumerate(self.waiting):
            if self.room(host):
                del self.waiting[position]
                if host is not None:
                    self.running[host] = self.running.get(host, 0) + 1
                return index, host
        return None


@settings(max_examples=300, deadline=None)
@given(
    limit=st.one_of(st.none(), st.integers(1, 3)),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.sampled_from(["A", "B", "C", None])),
            st.just(("take", None)),
            st.tuples(st.just("done"), st.sampled_from(["A", "B", "C"])),
        ),
        max_size=60,
    ),
)
def test_matches_a_plain_scan(limit: int | None, ops: list[tuple[str, str | None]]) -> None:
    queue: HostQueue[tuple[int, str | None]] = HostQueue(limit)
    reference = Reference(limit)
    added = 0
    for op, host in ops:
        if op == "add":
            queue.add(added, host, (added, host))
            reference.waiting.append((added, host))
            added += 1
        elif op == "take":
            assert queue.take() == reference.take()
        elif host is not None and reference.running.get(host, 0) and limit is not None:
            queue.done(host)
            reference.running[host] -= 1
        assert len(queue) == len(reference.waiting)
        for key, count in reference.running.items():
            assert limit is None or count <= limit, key
    # Finishing everything that runs lets every waiting item through, in order.
    for key in list(reference.running):
        while reference.running[key]:
            queue.done(key)
            reference.running[key] -= 1
    while (expected := reference.take()) is not None:
        assert queue.take() == expected
        if expected[1] is not None:
            queue.done(expected[1])
            reference.running[expected[1]] -= 1
    assert queue.take() is None
