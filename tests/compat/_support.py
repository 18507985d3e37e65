"""What the 1.x compatibility tests share: 1.x's example file, served by ``FakeServer``."""

from __future__ import annotations

from ranges import Range

from tests.fakes import FakeServer

# range-streams 1.x's example data: its docs and tests read this 11-byte file.
URL = "https://raw.githubusercontent.com/lmmx/range-streams/master/data/example_text_file.txt"
DATA = b"P\x00\x01\x02\x03\x04\x05\x06\x07\x08K"


def serve(data: bytes = DATA) -> FakeServer:
    return FakeServer(data)


def windows(stream: object) -> list[tuple[int, int]]:
    """The stream's unread ranges as pairs, in ascending order."""
    return [(r.start, r.end) for r in stream.list_ranges()]  # type: ignore[attr-defined]


def as_range(pair: tuple[int, int]) -> Range:
    return Range(*pair)
