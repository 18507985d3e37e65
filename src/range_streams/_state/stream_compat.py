"""range-streams 1.x's ``RangeStream`` methods, over the 2.x stream core.

``StreamCompat`` is the base of the sync ``RangeStream`` (1.x had no other): the
methods 1.x documented for inspecting and steering the registry (``overlap_whence``,
``handle_overlap``, ``register_range``, ``set_active_range``, ``burn_range``, ...) with
1.x's meanings, each answered from the sorted registry (``O(log n)`` lookups, as
``add`` and ``read`` are). 1.x's own plumbing for its single-request buffers is gone;
asking for it raises an ``AttributeError`` that names the replacement (``REMOVED``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import httpx
from ranges import Range, RangeDict

from .._core.errors import OverlapError, RemoteFileChangedError
from .._core.legacy import (
    detect_header_value,
    range_termini,
    ranges_in_reg_order,
    validate_range,
)
from .._core.protocol import RemoteState
from .._core.registry import Burn, Entry, PruningLevel, plan_overlap
from .._flows.requests import learn_length
from .legacy_request import RangeRequest
from .response import RangeResponse
from .stream_core import EMPTY_RANGE, ByteRange, StreamCore

__all__ = ["ASYNC_REPLACEMENT", "REMOVED", "StreamCompat"]

#: range-streams 1.x ``RangeStream`` attributes that are gone, and what replaced them.
REMOVED = {
    "set_length": "the length is learned from the server and pinned: read total_bytes",
    "simulate_request": "windows onto one GET are add() on RangeStream(url, single_request=True)",
    "get_async_monostream": "async streams are AsyncRangeStream",
    "_range_windows": "single-request windows are the registry's entries: see _ranges",
    "_length_checked": "total_bytes learns the length when first needed",
    "_length": "total_bytes learns the length when first needed",
}

ASYNC_REPLACEMENT = (
    "AsyncRangeStream (async with AsyncRangeStream(url) as stream: await stream.add(...))"
)


class StreamCompat(StreamCore[httpx.Client, RangeResponse]):
    """1.x's inspection and overlap-handling methods of the sync ``RangeStream``."""

    # Set on the streams ``AsyncFetcher`` gives its callback: their bytes are in memory,
    # so 1.x's async methods can run them without blocking the event loop.
    _loop_safe = False
    _source_url: str | None = None  # the URL as AsyncFetcher was given it

    def __getattr__(self, name: str) -> Any:
        if name in REMOVED:
            raise AttributeError(
                f"RangeStream.{name} is not in range-streams 2: {REMOVED[name]}"
                " (see docs/Migration.md)"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ---- views ------------------------------------------------------------------------

    def __ranges_repr__(self) -> str:
        self._run(self._flush())
        return ", ".join(str(r) for r in self._windows())

    @property
    def freely_requestable(self) -> bool:
        """Not in single-request mode: each range is its own request."""
        return not self.single_request

    @property
    def client_is_async(self) -> bool:
        return False

    @property
    def sync_client(self) -> httpx.Client:
        return self.client

    def set_client(self, client: httpx.Client | None, force_async: bool = False) -> None:
        """Use ``client`` for later requests (a new ``httpx.Client`` if None).

        A client made here is closed with the stream, as the constructor's would be.
        """
        if force_async or isinstance(client, httpx.AsyncClient):
            raise TypeError(f"an async stream is {ASYNC_REPLACEMENT}")
        if client is not None and not isinstance(client, httpx.Client):
            raise TypeError(f"{client=} is not an httpx.Client")
        if self._owns_client and self.client is not client:
            self.client.close()
        self._owns_client = client is None
        self.client = client if client is not None else self._make_client()

    def compute_external_ranges(self, use_windows: bool = False) -> RangeDict:
        """The external ``ranges`` (single-request windows are the entries themselves,
        so ``use_windows`` changes nothing)."""
        self._run(self._flush())
        return self._external()

    def check_is_subrange(self, rng: Range) -> None:
        total = self._run(learn_length(self.remote))
        if rng not in Range(0, total):
            raise ValueError(f"{rng} is not a sub-range of {Range(0, total)}")

    def check_range_integrity(self, use_windows: bool = False) -> None:
        """1.x's check that every key of ``_ranges`` is one range. The registry cannot
        break it; the ``RangeDict`` handed out as ``_ranges`` can, if it is edited, and
        that edit has no effect on the stream: this says so."""
        self._run(self._flush())
        broken = [rs for rs in self._internal().ranges() if len(rs.ranges()) != 1]
        if broken:
            raise ValueError(
                f"Each RangeSet must contain 1 Range: found {broken=} (the RangeDict given"
                " out as _ranges was edited; the stream's own registry is unchanged)"
            )

    def _holder(self, position: int, internal: bool) -> Range | None:
        """The internal key (or unread window) holding ``position``, if any."""
        entry = self._registry.containing(position)
        if entry is None:
            return None
        if internal:
            return Range(entry.key_start, entry.key_stop)
        start, stop = entry.value.window
        return Range(start, stop) if start <= position < stop else None

    def overlap_whence(
        self, rng: Range, internal: bool = False, use_windows: bool = False
    ) -> int | None:
        """Where ``rng`` overlaps a registered range: ``0`` at its head, ``1`` inside
        it, ``2`` at its tail, ``None`` if neither end of ``rng`` is in one (1.x's
        numbering, after ``io.SEEK_*``). ``internal`` judges keys instead of the unread
        windows. ValueError for an empty ``rng``."""
        self._run(self._flush())
        first, last = range_termini(validate_range(rng))
        head, tail = self._holder(first, internal), self._holder(last, internal)
        if head is not None and head == tail:
            return 1
        if head is not None:
            return 2
        if tail is not None:
            return 0
        return None

    # ---- the active range ------------------------------------------------------------

    def _entry_of(self, response: RangeResponse) -> Entry[RangeResponse] | None:
        entry = self._registry.containing(max(response.stop - 1, response.start))
        return entry if entry is not None and entry.value is response else None

    @property
    def _active_range(self) -> Any:
        """The active range's key in ``_ranges`` (None if there is no active range)."""
        self._run(self._flush())
        if self._dangling_active is not None:
            return self._dangling_active
        if self._active is None:
            return None
        entry = self._entry_of(self._active)
        return Range(entry.key_start, entry.key_stop) if entry else self._active.byte_range

    @_active_range.setter
    def _active_range(self, rng: Any) -> None:
        self.set_active_range(rng)

    def set_active_range(self, rng: Any) -> None:
        """Make the registered range holding ``rng`` the active one. Anything else is
        kept, and reported by the next use of ``active_range_response``, as in 1.x."""
        self._run(self._flush())
        if rng is None:
            self._activate(None)
            return
        if isinstance(rng, Range) and not rng.isempty():
            entry = self._registry.containing(rng.start)
            if entry is not None and rng.end <= entry.key_stop:
                self._activate(entry.value)
                return
        self._active = None
        self._dangling_active = rng

    # ---- registering and overlaps -----------------------------------------------------

    def register_range(
        self,
        rng: Range,
        value: RangeResponse,
        activate: bool = True,
        use_windows: bool = False,
    ) -> None:
        """Register ``value`` (a ``RangeResponse`` for ``rng`` of this file) under ``rng``,
        resolving overlaps by ``pruning_level`` first, as ``add`` does."""
        if not isinstance(getattr(self, "remote", None), RemoteState):
            raise ValueError("Stream length must be set before registering a range")
        rng = validate_range(rng, allow_empty=False)
        self.check_is_subrange(rng)
        if not isinstance(value, RangeResponse):
            raise TypeError(
                f"register_range registers a RangeResponse for {rng}, not"
                f" {type(value).__name__} (add() makes and registers one)"
            )
        if Range(*value.window) != rng:
            raise ValueError(f"the response reads {Range(*value.window)}, not {rng}")
        self._adopt_version(value.body.remote)
        self._run(self._flush())
        self._run(self._apply(self._plan(rng.start, rng.end), fallback=not activate))
        self._register(rng.start, rng.end, value)
        self._version += 1
        if activate:
            self._activate(value)

    def _adopt_version(self, remote: RemoteState) -> None:
        """A response read from its own request must be of the version this stream pins."""
        if remote is self.remote or remote.validators is None:
            return
        if self.remote.validators is None:
            self.remote.total, self.remote.validators = remote.total, remote.validators
            return
        why = self.remote.validators.mismatch(remote.validators)
        if why is not None:
            raise RemoteFileChangedError(f"{self.url} changed: {why}", url=self.url)

    def handle_overlap(self, rng: Range, internal: bool = False, use_windows: bool = False) -> None:
        """Make room for ``rng`` by ``pruning_level``, without registering it.

        Replant (0): a range whose head ``rng`` overlaps is burnt and its rest re-added
        (sent when first read); one whose tail it overlaps is cut short (a tail mark); one
        it covers, or lies inside, is burnt. Burn (1): every overlapped range is burnt.
        Strict (2): ``OverlapError`` (a ``ValueError``). ``internal`` judges the keys,
        read parts included, instead of the unread windows.
        """
        rng = validate_range(rng)
        if rng.isempty():
            raise ValueError("Range overlap not detected as the range is empty")
        self._run(self._flush())
        plan = self._plan(rng.start, rng.end, internal=internal)  # strict: OverlapError
        if self.pruning_level == PruningLevel.strict:
            # As 1.x: a strict stream refuses to handle any overlap, even a missing one.
            raise OverlapError("Range overlap not registered due to strict pruning policy")
        if not plan:
            info = f"{rng=} and ranges={ranges_in_reg_order(self._external())}"
            raise ValueError(f"Range overlap not detected at termini {info}")
        self._run(self._apply(plan))

    def ext2int(self, ext_rng: Range) -> Range:
        """The internal key of the range whose unread window is ``ext_rng``."""
        self._run(self._flush())
        entry = self._registry.containing(ext_rng.start)
        if entry is None or Range(*entry.value.window) != ext_rng:
            raise ValueError("Looked up a non-existent key in the internal RangeDict")
        return Range(entry.key_start, entry.key_stop)

    def burn_range(self, overlapped_ext_rng: Range) -> None:
        """Close and forget the range whose unread window is ``overlapped_ext_rng``; the
        most recently registered range becomes the active one (None if none is left)."""
        key = self.ext2int(overlapped_ext_rng)
        self._run(self._apply([Burn(key.start)], fallback=False))
        self._activate(self._most_recent())

    # ---- requests ---------------------------------------------------------------------

    def send_request(self, byte_range: Range) -> RangeRequest:
        """Send a range request for ``byte_range`` of this file, outside the registry
        (``add`` registers one); it reads the version this stream pins."""
        self._check_open()
        rng = validate_range(byte_range)
        return RangeRequest._send(self.remote, self.client, rng, self._run)

    def send_head_request(self) -> None:
        """Learn the file's length. Deprecated: range-streams 2 sends ``GET bytes=0-0``,
        never HEAD (presigned URLs refuse HEAD, and compression makes it lie)."""
        warnings.warn(
            "RangeStream.send_head_request learns the length with GET bytes=0-0, not HEAD;"
            " read total_bytes instead",
            DeprecationWarning,
            stacklevel=2,
        )
        self._check_open()
        self._run(learn_length(self.remote))

    def check_response_length(self, headers: Mapping[str, Any], req: str) -> int:
        """A response's Content-Length as an int (KeyError if it has none)."""
        return int(detect_header_value(headers, "content-length", f"{req} request response"))

    def get_monostream(self) -> None:
        """Send the whole-file request now: single-request mode's one GET (otherwise the
        whole file as one range, not made active)."""
        self._check_open()
        if self.single_request:
            self._run(self._open_whole())
            self._run(learn_length(self.remote))
            return
        total = self._run(learn_length(self.remote))
        self._run(self._add(Range(0, total), False, ""))

    def add_window(
        self, byte_range: ByteRange = EMPTY_RANGE, activate: bool = True, name: str = ""
    ) -> None:
        """1.x's single-request ``add``: a window onto the one GET."""
        if not self.single_request:
            raise ValueError(
                "add_window is for single-request streams (single_request=True); use add()"
            )
        self._run(self._add(byte_range, activate, name))

    def _plan(self, start: int, stop: int, internal: bool = False) -> list[Any]:
        if not internal:
            return super()._plan(start, stop)
        keys = [
            (e.key_start, e.key_stop, e.key_start, e.key_stop)
            for e in self._registry.intersecting(start, stop)
        ]
        return plan_overlap(keys, start, stop, self.pruning_level)
