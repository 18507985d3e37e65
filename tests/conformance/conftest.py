"""The matrix collector: one JSON record per (server, case), written at session end.

``docs/servers-matrix.json`` is written only when ``RANGE_STREAMS_WRITE_MATRIX=1``, so a
plain test run never touches the docs; ``scripts/servers_table.py`` renders it. A plain run
checks the docs instead: a case whose result differs from the recorded one fails the
session (at the fixture's teardown), so the published matrix cannot go stale.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MATRIX_JSON = Path(__file__).resolve().parents[2] / "docs" / "servers-matrix.json"


class Matrix:
    """Outcomes of the matrix cases, keyed by server id then case name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: dict[str, dict[str, dict[str, Any]]] = {}

    def record(self, server: str, case: str, outcome: dict[str, Any]) -> None:
        with self._lock:
            self.records.setdefault(server, {})[case] = outcome

    def as_json(self) -> dict[str, Any]:
        return {
            "about": (
                "What range-streams does on each real server, per case; written by"
                " tests/conformance/test_matrix.py with RANGE_STREAMS_WRITE_MATRIX=1 and"
                " rendered into docs/Servers.md by scripts/servers_table.py."
            ),
            "servers": {
                server: dict(sorted(cases.items()))
                for server, cases in sorted(self.records.items())
            },
        }


@pytest.fixture(scope="session")
def matrix() -> Iterator[Matrix]:
    collected = Matrix()
    yield collected
    if not collected.records:
        return
    if os.environ.get("RANGE_STREAMS_WRITE_MATRIX") == "1":
        MATRIX_JSON.write_text(json.dumps(collected.as_json(), indent=1) + "\n")
        return
    assert not stale_results(collected.records, json.loads(MATRIX_JSON.read_text())), (
        f"{MATRIX_JSON.name} is stale: rerun tests/conformance with"
        " RANGE_STREAMS_WRITE_MATRIX=1, then python scripts/servers_table.py"
    )


# Cases whose recorded result may differ from run to run, and why: not compared.
TIMING_DEPENDENT = {
    "file truncated mid-read": (
        "how a server answers the resume depends on how much of the old file it had sent"
        " (or buffered) when the file shrank"
    ),
}


def stale_results(
    records: dict[str, dict[str, dict[str, Any]]], published: dict[str, Any]
) -> list[str]:
    """``server / case`` for each recorded outcome whose result the published matrix
    does not have (``TIMING_DEPENDENT`` cases left out)."""
    servers = published.get("servers", {})
    return [
        f"{server} / {case}"
        for server, cases in records.items()
        for case, outcome in cases.items()
        if case not in TIMING_DEPENDENT
        and servers.get(server, {}).get(case, {}).get("result") != outcome.get("result")
    ]
