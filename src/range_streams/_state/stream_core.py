"""The stream's data model, shared by ``RangeStream`` (sync) and ``AsyncRangeStream``.

Everything that needs I/O is a flow; the two public classes only choose the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx
from ranges import Range, RangeDict

from .._core.errors import InvalidRangeError, RangeResponseError, StreamClosedError
from .._core.protocol import RemoteState
from .._core.registry import (
    Entry,
    PruningLevel,
    Registry,
    Rekey,
    Replant,
    Trim,
    plan_overlap,
)
from .._core.spans import Span, coerce_span
from .._core.urls import check_url
from .._flows.body import Body, BodyLimits, RetryPolicy
from .._flows.commands import Flow
from .._flows.requests import learn_length
from .._net.options import ClientOptions
from .response import RangeResponseBase
from .settings import configure_remote, resolve_client_options
from .shared_cache import CacheChoice, resolve_cache

if TYPE_CHECKING:
    from .cache_session import CacheSession

__all__ = ["StreamCore"]

logger = logging.getLogger("range_streams")

ClientT = TypeVar("ClientT", httpx.Client, httpx.AsyncClient)
ResponseT = TypeVar("ResponseT", bound=RangeResponseBase)
ByteRange = Range | tuple[int, int] | tuple[int, None]
EMPTY_RANGE = Range(0, 0)  # nothing requested: the 1.x default


class StreamCore(Generic[ClientT, ResponseT]):
    """Ranges of one remote file, each a lazily read response."""

    response_class: type[ResponseT]
    client_class: type[httpx.Client] | type[httpx.AsyncClient]

    def __init__(
        self,
        url: str,
        client: ClientT | None = None,
        byte_range: ByteRange = EMPTY_RANGE,
        pruning_level: int | PruningLevel = PruningLevel.replant,
        single_request: bool = False,
        *,  # RangeStream takes 1.x's force_async here: no positional call means two things
        chunk_size: int | None = None,
        raise_response: bool = True,
        retry: RetryPolicy | None = None,
        limits: BodyLimits | None = None,
        cache: CacheChoice = None,
        client_options: ClientOptions | None = None,
        **settings: Any,
    ) -> None:
        if client is not None and not isinstance(client, self.client_class):
            raise TypeError(
                f"{type(self).__name__} needs an {self.client_class.__module__}."
                f"{self.client_class.__name__}, not {type(client).__name__}"
            )
        # Request options (headers=, auth=, ... or one ClientOptions): see _state.settings.
        self.client_options = resolve_client_options(
            client, client_options, settings, type(self).__name__
        )
        self.remote = configure_remote(
            RemoteState(check_url(url), chunk_size=chunk_size), self.client_options
        )
        self.url = self.remote.url  # without any userinfo, which went into remote
        self.pruning_level = pruning_level  # the setter coerces and checks it
        self.single_request = single_request
        self.chunk_size = chunk_size
        self.raise_response = raise_response
        self.retry = retry or RetryPolicy()
        self.limits = limits or BodyLimits()
        # A shared cache (SharedCache, or its directory): ranges are then read through
        # it and add() sends nothing ahead. Only when asked for here: 1.x's add() sends
        # its request at once, so RANGE_STREAMS_CACHE does not change that behind its back.
        shared_cache = resolve_cache(cache) if cache is not None else None
        self.shared: CacheSession | None = None
        if shared_cache is not None and not single_request:
            from .cache_session import CacheSession  # noqa: PLC0415 - only with a cache

            self.shared = CacheSession(
                self.remote, shared_cache, retry=self.retry, limits=self.limits
            )
        self._owns_client = client is None
        self.client: ClientT = client if client is not None else self._make_client()
        self._registry: Registry[ResponseT] = Registry()
        self._active: ResponseT | None = None
        # What ``set_active_range`` was given when no range matched it: reported by the
        # next use of the active range, as range-streams 1.x reported it.
        self._dangling_active: object = None
        self._whole: Body | None = None  # single-request mode's one body
        self._closed = False
        self._internal_cache: tuple[int, RangeDict] | None = None
        self._version = 0
        self._registrations = 0
        span = coerce_span(byte_range if byte_range is not None else (0, 0))
        self._initial: tuple[Span, str] | None = None if _is_empty(span) else (span, "")
        # Run once, after the constructor's range is sent, by the first use of the
        # registry (a codec stream registers its members' ranges then, not before).
        self._on_first_use: Callable[[], None] | None = None

    def _make_client(self) -> ClientT:
        raise NotImplementedError

    def _run(self, flow: Flow[Any]) -> Any:
        raise NotImplementedError

    def list_ranges(self) -> list[Range]:
        """The unread part of each range, sorted by position (each face says whether it
        sends the constructor's range first)."""
        raise NotImplementedError

    # ---- pure views -------------------------------------------------------------------

    def __repr__(self) -> str:
        # range-streams 1.x's format: the unread ranges, the file name and its host (a
        # range given to the constructor is shown, though it is sent on first use).
        windows: list[Range] = self._windows()
        if self._initial is not None and self._initial[0].is_absolute:
            span = self._initial[0]
            windows = sorted([*windows, Range(span.start, span.stop)])
        ranges = ", ".join(str(r) for r in windows)
        return f"{type(self).__name__} \u2836 {ranges} @@ '{self.name}' from {self.domain}"

    @property
    def pruning_level(self) -> PruningLevel:
        """The overlap policy (0 replant, 1 burn, 2 strict), applied to every later
        ``add``. Set it to an int or a ``PruningLevel``; anything else raises here."""
        return self._pruning_level

    @pruning_level.setter
    def pruning_level(self, level: int | PruningLevel) -> None:
        self._pruning_level = PruningLevel.coerce(level)

    @property
    def is_closed(self) -> bool:
        """Whether ``close()`` was called, or every registered range's response is
        closed (as range-streams 1.x reported it; a stream with no ranges is open)."""
        if self._closed:
            return True
        entries = list(self._registry)
        return bool(entries) and all(e.value.is_closed for e in entries)

    @property
    def name(self) -> str:
        """The file name: the last segment of the URL's path."""
        name = self.__dict__.get("_name")
        if name is None:
            name = self.__dict__["_name"] = PurePosixPath(httpx.URL(self.url).path).name
        return name

    @property
    def domain(self) -> str:
        return httpx.URL(self.url).netloc.decode("ascii")

    @property
    def known_total_bytes(self) -> int | None:
        """The file's length if a response has told it already, else None (no I/O)."""
        return self.remote.total

    def isempty(self) -> bool:
        """Whether no range has unread bytes left (from ``list_ranges``)."""
        return not self.list_ranges()

    @property
    def spanning_range(self) -> Range:
        """From the first unread byte of any range to the last (``Range(0, 0)`` if none),
        from ``list_ranges``."""
        windows = self.list_ranges()
        return Range(windows[0].start, windows[-1].end) if windows else Range(0, 0)

    def _windows(self) -> list[Range]:
        return [Range(*e.value.window) for e in self._registry if not e.value.is_consumed()]

    def _in_registration_order(self) -> list[Entry[ResponseT]]:
        return sorted(self._registry, key=lambda e: e.value._seq)

    def _external(self) -> RangeDict:
        """The unread windows, iterated in registration order (as 1.x's RangeDict was)."""
        return RangeDict(
            [
                (Range(*e.value.window), e.value)
                for e in self._in_registration_order()
                if not e.value.is_consumed()
            ],
            identity=True,
        )

    def _internal(self) -> RangeDict:
        if self._internal_cache is None or self._internal_cache[0] != self._version:
            items = [
                (Range(e.key_start, e.key_stop), e.value) for e in self._in_registration_order()
            ]
            self._internal_cache = (self._version, RangeDict(items, identity=True))
        return self._internal_cache[1]

    def _active_response(self) -> ResponseT:
        if self._active is None:
            if self._dangling_active is not None:
                raise InvalidRangeError(
                    "Cannot get active range response"
                    f" (self._active_range={self._dangling_active!r}): no range is registered"
                    " there"
                )
            raise InvalidRangeError(
                "Cannot get active range response (no active range): add() a range first"
            )
        return self._active

    def _activate(self, response: ResponseT | None) -> None:
        self._active = response
        self._dangling_active = None

    def _check_open(self) -> None:
        if self._closed:
            raise StreamClosedError(f"the stream for {self.url} is closed")

    # ---- flows ------------------------------------------------------------------------

    def _flush(self) -> Flow[None]:
        """Send the range given at construction, on first use (then the first-use hook)."""
        self._check_open()
        hook, self._on_first_use = self._on_first_use, None
        if self._initial is not None:
            (span, name), self._initial = self._initial, None
            yield from self._add(span, True, name)
        if hook is not None:
            try:
                hook()
            except BaseException:
                self._on_first_use = hook  # tried again by the next use
                raise

    def _total_bytes(self) -> Flow[int]:
        self._check_open()
        return (yield from self._length())

    def _total_range(self) -> Flow[Range]:
        return Range(0, (yield from self._total_bytes()))

    def _length(self) -> Flow[int]:
        if self.shared is not None:
            return (yield from self.shared.size())
        return (yield from learn_length(self.remote))

    def _add(self, byte_range: Any, activate: bool, name: str) -> Flow[ResponseT | None]:
        self._check_open()
        span = coerce_span(byte_range)
        if self._initial is not None or self._on_first_use is not None:
            yield from self._flush()
        if self.remote.total is not None or span.needs_length or self.single_request:
            if self.single_request:
                yield from self._open_whole()  # the one GET, whether or not the length is known
            yield from self._length()
            span = Span(*self.remote.resolve(span))
        if _is_empty(span):
            return None
        if span.is_absolute:
            assert span.stop is not None
            existing = self._exact(span.start, span.stop)
            if existing is not None:  # already registered: no second request
                if activate:
                    self._activate(existing)
                return existing
            plan = self._plan(span.start, span.stop)
            response = self._new_response(span, name)
            if not self.single_request:
                try:
                    yield from response.body.send_now()  # add() reports errors at once
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
        yield from self._apply(plan, fallback=not activate)
        self._register(response.start, response.stop, response)
        self._version += 1
        if activate:
            self._activate(response)
        return response

    def _add_lazy(self, start: int, stop: int, name: str) -> Flow[ResponseT]:
        """Register ``[start, stop)`` without a request: sent when first read. Used for
        ranges known from an index (a zip's members), where sending one request per
        entry up front is what made range-streams 1.x slow."""
        self._check_open()
        plan = self._plan(start, stop)
        if self.single_request:
            yield from self._open_whole()  # the one GET every window reads from
        response = self._new_response(Span(start, stop), name)
        yield from self._apply(plan)
        self._register(start, stop, response)
        self._version += 1
        return response

    def _open_whole(self) -> Flow[None]:
        if self._whole is None:
            self._whole = Body(self.remote, Span(0, None), retry=self.retry, limits=self.limits)
            yield from self._whole.open()

    def _new_response(self, span: Span, name: str) -> ResponseT:
        if self.single_request:
            assert self._whole is not None and span.stop is not None
            return self.response_class(self, self._whole, name=name, window=(span.start, span.stop))
        if self.shared is not None:
            return self.response_class(self, self.shared.body(span), name=name)
        body = Body(self.remote, span, retry=self.retry, limits=self.limits)
        return self.response_class(self, body, name=name)

    def _exact(self, start: int, stop: int) -> ResponseT | None:
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

    def _register(self, start: int, stop: int, response: ResponseT) -> None:
        """Add an entry; ``_seq`` keeps the order of registration, which 1.x's RangeDicts
        (``ranges``, ``_ranges``) iterated in."""
        self._registrations += 1
        response._seq = self._registrations
        self._registry.add(start, stop, response)

    def _most_recent(self) -> ResponseT | None:
        """The range registered last (1.x's "most recent range"): ``O(n)``, used only
        when an overlap burns the active range and nothing else will replace it."""
        entries = list(self._registry)
        return max(entries, key=lambda e: e.value._seq).value if entries else None

    def _apply(self, plan: list[Any], fallback: bool = True) -> Flow[None]:
        """Carry out an overlap plan. If it burns the active range, the most recently
        registered one becomes active (unless ``fallback`` is False: the caller is about
        to activate another)."""
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
                self._activate(None)
            if isinstance(action, Replant):
                replants.append(action)
        for action in replants:
            # Sent lazily, when first read: the caller did not ask for these bytes now.
            response = self._new_response(Span(action.start, action.stop), "")
            self._register(action.start, action.stop, response)
        if plan:
            self._version += 1
            if fallback and self._active is None and self._dangling_active is None:
                self._active = self._most_recent()
            logger.debug("overlap handled with %s: %s", self.pruning_level.name, plan)

    def _close_all(self) -> Flow[None]:
        if self._closed:
            return
        self._closed = True
        for entry in self._registry:
            yield from entry.value._close()
        if self._whole is not None:
            yield from self._whole.close()
        self._activate(None)


def _is_empty(span: Span) -> bool:
    return span.is_absolute and span.start == span.stop
