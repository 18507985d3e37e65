"""The two sides of every comparison: httpx's default client, and ours on each runtime.

``Outcome`` is what a client made of one answer: accepted (status, headers, body) or
refused (the exception's class). The reference is ``httpx.Client`` (httpcore and h11,
as shipped). Ours is the client ``range_streams.make_client()`` makes (our HTTP/1.1
transport) in the ``sync`` mode, or ``make_async_client()`` under ``asyncio`` or
``trio``: through ``client.get`` for framing (``transport_gets``), or through the
library's own paths, ``range_streams.open`` / ``open_async`` and ``read``
(``library_reads``). Every client gets the same short timeouts and no environment (no
proxy variables, no SSL_CERT_FILE): only what the test passes.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx
import pytest

import range_streams as rs
from tests.runtimes import TRIO

__all__ = [
    "MODES",
    "TIMEOUT",
    "ClientFactory",
    "Known",
    "Outcome",
    "Summary",
    "default_tls",
    "in_mode",
    "library_reads",
    "reference_gets",
    "reference_ranges",
    "summary",
    "transport_gets",
]

T = TypeVar("T")

# Short enough that a hang costs seconds, long enough that a loaded machine never hits
# it on a green run (every answer here is on loopback and complete within milliseconds).
TIMEOUT = httpx.Timeout(2.0)


# Our client on each runtime: the sync one, the async one under asyncio and under trio.
MODES = ["sync", "asyncio", pytest.param("trio", marks=TRIO)]


@dataclass(frozen=True)
class Outcome:
    """What a client made of an answer. ``error`` is the exception's class name when
    the answer was refused; ``status``, ``headers`` and ``body`` otherwise (a library
    read has no status or headers: only the bytes it returned)."""

    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:  # a body of 100 KB must not flood the assertion message
        if self.error is not None:
            return f"Outcome(refused: {self.error})"
        body = self.body if len(self.body) <= 48 else self.body[:48] + b"..."
        return f"Outcome({self.status}, {len(self.headers)} headers, {len(self.body)} B {body!r})"


def _accepted(response: httpx.Response) -> Outcome:
    return Outcome(response.status_code, tuple(response.headers.multi_items()), response.content)


def _refused(exc: BaseException) -> Outcome:
    return Outcome(error=type(exc).__name__)


@functools.cache
def default_tls() -> ssl.SSLContext:
    """The context ``httpx.Client()`` makes for itself (certifi's CAs), made once:
    loading the bundle costs ~50 ms, which every reference run would otherwise pay."""
    return httpx.create_ssl_context()


def reference_gets(urls: Sequence[str], **client: Any) -> tuple[Outcome, ...]:
    """``GET`` each URL in turn on one ``httpx.Client`` (httpx's defaults, plus
    ``client``): the reference every case is compared with."""
    client.setdefault("timeout", TIMEOUT)
    client.setdefault("trust_env", False)
    client.setdefault("verify", default_tls())
    outcomes = []
    with httpx.Client(**client) as reference:
        for url in urls:
            try:
                outcomes.append(_accepted(reference.get(url)))
            except Exception as exc:
                outcomes.append(_refused(exc))
    return tuple(outcomes)


def reference_ranges(
    url: str, spans: Sequence[tuple[int, int]], **client: Any
) -> tuple[Outcome, ...]:
    """What httpx's default client (plus ``client``) gets for ``Range: bytes=`` each of
    ``spans`` of ``url``: the body of a 206, else the status (``"HTTP 200"``) or the
    exception's class as a refusal. An error ends the reads, as in ``library_reads``."""
    client.setdefault("timeout", TIMEOUT)
    client.setdefault("trust_env", False)
    client.setdefault("verify", default_tls())
    outcomes: list[Outcome] = []
    with httpx.Client(**client) as reference:
        for start, stop in spans:
            try:
                response = reference.get(url, headers={"Range": f"bytes={start}-{stop - 1}"})
            except Exception as exc:
                outcomes.append(_refused(exc))
                break
            if response.status_code != 206:
                outcomes.append(Outcome(error=f"HTTP {response.status_code}"))
                break
            outcomes.append(Outcome(body=response.content))
    return tuple(outcomes)


def in_mode(mode: str, sync: Callable[[], T], run_async: Callable[[], Awaitable[T]]) -> T:
    """``sync()`` in the sync mode, else ``run_async()`` under that anyio backend."""
    if mode == "sync":
        return sync()
    return anyio.run(run_async, backend=mode)


def transport_gets(mode: str, urls: Sequence[str], **options: Any) -> tuple[Outcome, ...]:
    """``GET`` each URL in turn on one client that ``make_client`` (or, async,
    ``make_async_client``) made with ``options``: our transport, no flow on top."""
    options.setdefault("timeout", TIMEOUT)
    options.setdefault("trust_env", False)

    def sync() -> tuple[Outcome, ...]:
        outcomes = []
        with rs.make_client(**options) as client:
            for url in urls:
                try:
                    outcomes.append(_accepted(client.get(url)))
                except Exception as exc:
                    outcomes.append(_refused(exc))
        return tuple(outcomes)

    async def run_async() -> tuple[Outcome, ...]:
        outcomes = []
        async with rs.make_async_client(**options) as client:
            for url in urls:
                try:
                    outcomes.append(_accepted(await client.get(url)))
                except Exception as exc:
                    outcomes.append(_refused(exc))
        return tuple(outcomes)

    return in_mode(mode, sync, run_async)


# Makes the client a library read runs on: given True, an async one.
ClientFactory = Callable[[bool], "httpx.Client | httpx.AsyncClient"]


def library_reads(
    mode: str,
    url: str,
    client: ClientFactory,
    spans: Sequence[tuple[int, int]],
    **file_options: Any,
) -> tuple[Outcome, ...]:
    """Read each ``[start, stop)`` of ``url`` in turn through one
    ``range_streams.open(url, client=...)`` (``open_async`` in the async modes), with
    ``ExactReads`` (one request per read, for the exact byte range) unless told
    otherwise. An error ends the reads: it is the last outcome."""
    file_options.setdefault("strategy", rs.ExactReads())
    file_options.setdefault("retry", rs.RetryPolicy(attempts=2, backoff=0.0))

    def sync() -> tuple[Outcome, ...]:
        outcomes: list[Outcome] = []
        made = client(False)
        assert isinstance(made, httpx.Client)
        with made, rs.open(url, client=made, **file_options) as remote:
            for start, stop in spans:
                try:
                    remote.seek(start)
                    outcomes.append(Outcome(body=remote.read(stop - start)))
                except Exception as exc:
                    outcomes.append(_refused(exc))
                    break
        return tuple(outcomes)

    async def run_async() -> tuple[Outcome, ...]:
        outcomes: list[Outcome] = []
        made = client(True)
        assert isinstance(made, httpx.AsyncClient)
        async with made, rs.open_async(url, client=made, **file_options) as remote:
            for start, stop in spans:
                try:
                    await remote.seek(start)
                    outcomes.append(Outcome(body=await remote.read(stop - start)))
                except Exception as exc:
                    outcomes.append(_refused(exc))
                    break
        return tuple(outcomes)

    return in_mode(mode, sync, run_async)


Summary = tuple[Any, ...]


def summary(outcomes: Sequence[Outcome]) -> Summary:
    """Outcomes as a difference table spells them: ``(status, body)`` for an accepted
    answer (``body`` alone for a library read), the error's class name for a refusal."""
    return tuple(
        o.error if o.error is not None else (o.body if o.status is None else (o.status, o.body))
        for o in outcomes
    )


@dataclass(frozen=True)
class Known:
    """A listed difference from httpx: what ours does, why, and what httpx does
    (``httpx``: the summaries it may produce; None where it depends on how the bytes
    arrive, so it is not compared)."""

    reason: str
    ours: Summary
    httpx: tuple[Summary, ...] | None = None
