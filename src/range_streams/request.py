"""range-streams 1.x's ``range_streams.request`` module: ``RangeRequest``.

One range request, sent when made and answered 206, read with ``iter_raw()`` or through
``RangeResponse(stream, range_request)``. Streams make their own; see
``RangeResponse.request`` and docs/Migration.md.
"""

from ._core.errors import PartialContentStatusError
from ._state.legacy_request import RangeRequest

__all__ = ["PartialContentStatusError", "RangeRequest"]
