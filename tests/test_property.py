"""Hypothesis: random add/seek/read sequences against the plain bytes — never a wrong byte."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import range_streams as rs

from .fakes import FakeServer, payload
from .test_stream import Model

SIZE = 3000
DATA = payload(SIZE, seed=3)
URL = "http://files.test/p.bin"

offsets = st.integers(-SIZE, SIZE)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, SIZE - 1), st.integers(1, SIZE)),
        st.tuples(st.just("suffix"), st.integers(1, SIZE + 10)),
        st.tuples(st.just("read"), st.integers(-1, 700)),
        st.tuples(st.just("seek"), st.integers(0, SIZE)),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops,
    st.sampled_from([0, 1]),
    st.sampled_from([(0, 0), (64, 16), (1 << 20, 256 * 1024)]),
    st.integers(1, 900),
    st.sampled_from([None, 150]),
)
def test_random_sequences_match_the_bytes(
    sequence: list[tuple], level: int, limits: tuple[int, int], chunk: int, fail_after: int | None
) -> None:
    server = FakeServer(DATA, chunk=chunk, fail_after=fail_after, failures=2)
    model = Model(level, DATA)
    retry = rs.RetryPolicy(attempts=2, backoff=0)
    with (
        server.client() as client,
        rs.RangeStream(
            URL, client=client, pruning_level=level, limits=rs.BodyLimits(*limits), retry=retry
        ) as stream,
    ):
        for op, *args in sequence:
            if op == "add":
                start = args[0]
                stop = min(SIZE, start + args[1])
                stream.add((start, stop))
                model.add((start, stop))
            elif op == "suffix":
                stream.add((-args[0], None))
                model.add((-args[0], None))
            elif stream._active is None:
                continue
            elif op == "seek":
                stream.seek(args[0])
                model.seek(args[0])
            else:
                response = stream.active_range_response
                position = response.start + response.tell()
                data = stream.read(args[0])
                wanted = (
                    response.stop - position
                    if args[0] < 0
                    else min(args[0], response.stop - position)
                )
                assert data == DATA[position : position + max(wanted, 0)]
                assert data == model.read(args[0])
            assert stream.list_ranges() == model.unread()
