"""range-streams 1.x's ``range_streams.http_utils`` module, with 1.x's meanings.

``range_header(Range(0, 2))`` is ``{"range": "bytes=0-1"}``; an empty range asks for
``bytes=0-`` (the whole file). The library's own requests are built by
``_core.range_headers``, which also writes suffix (``bytes=-N``) and multi-range headers.
"""

from ._core.errors import PartialContentStatusError
from ._core.legacy import byte_range_from_range_obj, detect_header_value
from ._core.legacy import legacy_range_header as range_header

__all__ = [
    "PartialContentStatusError",
    "byte_range_from_range_obj",
    "detect_header_value",
    "range_header",
]
