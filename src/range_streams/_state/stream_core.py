"""The stream's data model, shared by ``RangeStream`` (sync) and ``AsyncRangeStream``.

Everything that needs I/O is a flow; the two public classes only choose the driver.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx
from ranges import Range, RangeDict

from .._core.errors import InvalidRangeError, RangeResponseError, StreamClosedError
from .._core.protocol import RemoteState
from .._core.registry import PruningLevel, Registry, Rekey, Replant, Trim, plan_overlap
from .._core.spans import Span, coerce_span
from .._core.urls import check_url
from .._flows.body import Body, BodyLimits, RetryPolicy
from .._flows.commands import Flow
from .._flows.requests import learn_length
from .response import RangeResponseBase
from .shared_cache import CacheChoice, resolve_cache

if TYPE_CHECKING:
    from .cache_session import CacheSession

__all__ = ["StreamCore"]

logger = logging.getLogger("range_streams")

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)
ByteRange = Range | tuple[int, int] | tuple[int, None]
EMPTY_RANGE = Range(0, 0)  # nothing requested: the 1.x default


def coerce_level(level: int | PruningLevel) -> PruningLevel:
    try:
        return PruningLevel(level)
    except ValueError:
        raise ValueError(
            f"pruning_level must be 0 (replant), 1 (burn) or 2 (strict), not {level!r}"
        ) from None


class StreamCore(Generic[ClientT]):
    """Ranges of one remote file, each a lazily read response."""

    response_class: type[RangeResponseBase]
    client_class: type[httpx.Client] | type[httpx.AsyncClient]

    def __init__(
        self,
        url: str,
        client: ClientT | None = None,
        byte_range: ByteRange = EMPTY_RANGE,
        pruning_level: int | PruningLevel = PruningLevel.replant,
        single_request: bool = False,
        chunk_size: int | None = None,
        raise_response: bool = True,
        *,
        retry: RetryPolicy | None = None,
        limits: BodyLimits | None = None,
        cache: CacheChoice = None,
    ) -> None:
        if client is not None and not isinstance(client, self.client_class):
            raise TypeError(
                f"{type(self).__name__} needs an {self.client_class.__module__}."
                f"{self.client_class.__name__}, not {type(client).__name__}"
            )
        self.remote = RemoteState(check_url(url), chunk_size=chunk_size)
        self.url = self.remote.url  # without any userinfo, which went into remote
        self.pruning_level = coerce_level(pruning_level)
        self.single_request = single_request
        self.chunk_size = chunk_size
        self.raise_response = raise_response
        self.retry = retry or RetryPolicy()
        self.limits = limits or BodyLimits()
        # A shared cache (SharedCache, or its directory): ranges are then read through
        # it and add() sends nothing ahead. Only when asked for here: 1.x's add() sends
        # its request at once, so RANGE_STREAMS_CACHE does not change that behind its back.
        settings = resolve_cache(cache) if cache is not None else None
        self.shared: CacheSession | None = None
        if settings is not None and not single_request:
            from .cache_session import CacheSession  # noqa: PLC0415 - only with a cache

            self.shared = CacheSession(self.remote, settings, retry=self.retry, limits=self.limits)
        self._owns_client = client is None
        self.client: ClientT = client if client is not None else self._make_client()
        self._registry: Registry[RangeResponseBase] = Registry()
        self._active: RangeResponseBase | None = None
        self._whole: Body | None = None  # single-request mode's one body
        self._closed = False
        self._internal_cache: tuple[int, RangeDict] | None = None
        self._version = 0
        span = coerce_span(byte_range if byte_range is not None else (0, 0))
        self._initial: tuple[Span, str] | None = None if _is_empty(span) else (span, "")

    def _make_client(self) -> ClientT:
        raise NotImplementedError

    def _run(self, flow: Flow[Any]) -> Any:
        raise NotImplementedError

    # ---- pure views -------------------------------------------------------------------

    def __repr__(self) -> str:
        ranges = ", ".join(str(r) for r in self._windows())
        return f"{type(self).__name__}({self.url!r}, ranges=[{ranges}])"

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def name(self) -> str:
        return PurePosixPath(httpx.URL(self.url).path).name

    @property
    def domain(self) -> str:
        return httpx.URL(self.url).netloc.decode("ascii")

    def _windows(self) -> list[Range]:
        return [Range(*e.value.window) for e in self._registry if not e.value.is_consumed()]

    def _external(self) -> RangeDict:
        return RangeDict(
            [
                (Range(*e.value.window), e.value)
                for e in self._registry
                if not e.value.is_consumed()
            ],
            identity=True,
        )

    def _internal(self) -> RangeDict:
        if self._internal_cache is None or self._internal_cache[0] != self._version:
            items = [(Range(e.key_start, e.key_stop), e.value) for e in self._registry]
            self._internal_cache = (self._version, RangeDict(items, identity=True))
        return self._internal_cache[1]

    def _active_response(self) -> RangeResponseBase:
        if self._active is None:
            raise InvalidRangeError("no active range: add() a range first")
        return self._active

    def _check_open(self) -> None:
        if self._closed:
            raise StreamClosedError(f"the stream for {self.url} is closed")

    # ---- flows ------------------------------------------------------------------------

    def _flush(self) -> Flow[None]:
        """Send the range given at construction, on first use."""
        self._check_open()
        if self._initial is not None:
            (span, name), self._initial = self._initial, None
            yield from self._add(span, True, name)

    def _total_bytes(self) -> Flow[int]:
        self._check_open()
        return (yield from self._length())

    def _length(self) -> Flow[int]:
        if self.shared is not None:
            return (yield from self.shared.size())
        return (yield from learn_length(self.remote))

    def _add(self, byte_range: Any, activate: bool, name: str) -> Flow[RangeResponseBase | None]:
        self._check_open()
        span = coerce_span(byte_range)
        if self._initial is not None:
            yield from self._flush()
        if self.remote.total is not None or span.needs_length or self.single_request:
            if self.remote.total is None and self.single_request:
                yield from self._open_whole()
            yield from self._length()
            span = Span(*self.remote.resolve(span))
        if _is_empty(span):
            return None
        if span.is_absolute:
            assert span.stop is not None
            existing = self._exact(span.start, span.stop)
            if existing is not None:  # already registered: no second request
                if activate:
                    self._active = existing
                return existing
            plan = self._plan(span.start, span.stop)
            response = self._new_response(span, name)
            if not self.single_request:
                try:
                    yield from _connect(response.body)
                except RangeResponseError as exc:
                    if self.raise_response:
                        raise
                    response.error = exc
        else:
            # A suffix: its position is known only from the answer, so send first.
            response = self._new_response(span, name)
            yield from response.body.open()
            assert response.body.start is not None and response.body.stop is not None
            if response.body.start == response.body.stop:
                return None
            try:
                plan = self._plan(response.body.start, response.body.stop)
            except Exception:
                yield from response._close()
                raise
        yield from self._apply(plan)
        self._registry.add(response.start, response.stop, response)
        self._version += 1
        if activate:
            self._active = response
        return response

    def _add_lazy(self, start: int, stop: int, name: str) -> Flow[RangeResponseBase]:
        """Register ``[start, stop)`` without a request: sent when first read. Used for
        ranges known from an index (a zip's members), where sending one request per
        entry up front is what made range-streams 1.x slow."""
        self._check_open()
        plan = self._plan(start, stop)
        response = self._new_response(Span(start, stop), name)
        yield from self._apply(plan)
        self._registry.add(start, stop, response)
        self._version += 1
        return response

    def _open_whole(self) -> Flow[None]:
        if self._whole is None:
            self._whole = Body(self.remote, Span(0, None), retry=self.retry, limits=self.limits)
            yield from self._whole.open()

    def _new_response(self, span: Span, name: str) -> RangeResponseBase:
        if self.single_request:
            assert self._whole is not None and span.stop is not None
            return self.response_class(self, self._whole, name=name, window=(span.start, span.stop))
        if self.shared is not None:
            return self.response_class(self, self.shared.body(span), name=name)
        body = Body(self.remote, span, retry=self.retry, limits=self.limits)
        return self.response_class(self, body, name=name)

    def _exact(self, start: int, stop: int) -> RangeResponseBase | None:
        entry = self._registry.containing(start)
        if entry is not None and entry.value.window == (start, stop) and entry.value.error is None:
            return entry.value
        return None

    def _plan(self, start: int, stop: int) -> list[Any]:
        windows = []
        for entry in self._registry.intersecting(start, stop):
            w_start, w_stop = entry.value.window
            windows.append((entry.key_start, entry.key_stop, w_start, w_stop))
        return plan_overlap(windows, start, stop, self.pruning_level)

    def _apply(self, plan: list[Any]) -> Flow[None]:
        replants: list[Replant] = []
        for action in plan:
            if isinstance(action, Rekey):
                self._registry.rekey(action.key, action.start)
                continue
            entry = self._registry.get(action.key)
            if isinstance(action, Trim):
                entry.value.tail_mark += entry.key_stop - action.stop
                entry.key_stop = action.stop
                continue
            self._registry.remove(action.key)
            yield from entry.value._close()
            if self._active is entry.value:
                self._active = None
            if isinstance(action, Replant):
                replants.append(action)
        for action in replants:
            # Sent lazily, when first read: the caller did not ask for these bytes now.
            response = self._new_response(Span(action.start, action.stop), "")
            self._registry.add(action.start, action.stop, response)
        if plan:
            self._version += 1
            if self._active is None and len(self._registry):
                self._active = list(self._registry)[-1].value
            logger.debug("overlap handled with %s: %s", self.pruning_level.name, plan)

    def _close_all(self) -> Flow[None]:
        if self._closed:
            return
        self._closed = True
        for entry in self._registry:
            yield from entry.value._close()
        if self._whole is not None:
            yield from self._whole.close()
        self._active = None


def _connect(body: Body) -> Flow[None]:
    """Send a body's request now (headers only), so add() reports errors at once."""
    has_bytes = body.start is not None and body.stop is not None and body.start < body.stop
    if has_bytes and not body.is_open and not body._sent:
        assert body.start is not None
        yield from body._reopen(body.start)


def _is_empty(span: Span) -> bool:
    return span.is_absolute and span.start == span.stop
