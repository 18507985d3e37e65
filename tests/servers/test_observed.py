"""Observe what each server does with range requests; facts for the library's conformance work.

Always checks a few invariants. With ``RANGE_STREAMS_WRITE_OBSERVED=1`` it also saves the raw
observations to docs/servers-observed.json and prints the table at the end of the session
(``RANGE_STREAMS_SHOW_OBSERVED=1`` prints without saving).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from .launch import SPECS, RunningServer
from .observed import OBSERVED_JSON, observe, render_table


@pytest.fixture(scope="session")
def observations(request: pytest.FixtureRequest) -> Iterator[dict[str, dict[str, Any]]]:
    collected: dict[str, dict[str, Any]] = {}
    yield collected
    if not collected:
        return
    order = [spec.id for spec in SPECS]
    ordered = [collected[sid] for sid in order if sid in collected]
    write = os.environ.get("RANGE_STREAMS_WRITE_OBSERVED") == "1"
    show = write or os.environ.get("RANGE_STREAMS_SHOW_OBSERVED") == "1"
    if write:
        missing = [sid for sid in order if sid not in collected]
        payload = {
            "about": (
                "What real HTTP servers do with range requests, observed by "
                "tests/servers/test_observed.py (see tests/servers/observed.py for the probes)."
            ),
            "servers_not_observed": missing,
            "servers": ordered,
        }
        OBSERVED_JSON.parent.mkdir(parents=True, exist_ok=True)
        OBSERVED_JSON.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    if show:
        capman = request.config.pluginmanager.getplugin("capturemanager")
        with capman.global_and_fixture_disabled():
            print("\n" + render_table(ordered))
            if write:
                print(f"observations written to {OBSERVED_JSON}")


def test_observe(any_server: RunningServer, observations: dict[str, dict[str, Any]]) -> None:
    obs = observe(any_server)
    observations[any_server.id] = obs
    probes = obs["probes"]
    spec = any_server.spec

    # The spec's claims hold.
    assert (probes["single"]["status"] == 206) == spec.ranges
    assert (probes["suffix"]["status"] == 206) == (spec.ranges and spec.suffix_ranges)
    multi = probes["multi"]
    if spec.multirange:
        assert multi["status"] == 206
        if "multipart" in multi:
            parts = multi["multipart"]["parts"]
            assert [p["content_range"] for p in parts] == [
                "bytes 0-9/1048576",
                "bytes 20-29/1048576",
            ]
            assert all(p["body"] == "matches Content-Range" for p in parts)
        else:  # coalesced into one range covering both
            assert multi["content_range"] == "bytes 0-29/1048576"
            assert multi["body"] == "matches Content-Range"
    else:
        assert "multipart" not in multi

    # Whatever a server answers, a 206 body matches its Content-Range and a 200 is the file.
    # (Empty files are odd: Caddy answers bytes=-10 with 206 and "Content-Range: bytes 0--1/0".)
    for key, probe in probes.items():
        if not isinstance(probe, dict) or "body" not in probe:
            continue
        if probe.get("content_encoding") or key.startswith("empty_file"):
            continue
        if probe["status"] == 206:
            assert probe["body"] == "matches Content-Range", (key, probe)
        elif probe["status"] == 200:
            assert probe["body"] == "full file", (key, probe)
