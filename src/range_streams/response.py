"""range-streams 1.x's ``range_streams.response`` module: ``RangeResponse``.

A range of a stream, read lazily with ``read``/``seek``/``tell``. 1.x's spelling
``RangeResponse(stream=..., range_request=..., range_name=...)`` still makes one over a
request sent on its own; see docs/Migration.md for what changed.
"""

from ._state.response import AsyncRangeResponse, RangeResponse

__all__ = ["AsyncRangeResponse", "RangeResponse"]
