"""range-streams: random-access, seekable files over HTTP range requests.

Read the tail of a 4 GB zip, one member, a PNG header or a parquet footer without
downloading the rest; every byte returned is the byte at that offset of one version
of the remote file, or an exception from ``RangeStreamError``'s tree says why not.
"""

from ranges import Range

from ._body import BodyLimits, RetryPolicy
from ._errors import (
    ContentEncodingError,
    ContentRangeError,
    HTTPStatusError,
    IncompleteBodyError,
    InvalidRangeError,
    InvalidURLError,
    MultipartError,
    OverlapError,
    RangeNotSatisfiableError,
    RangeNotSupportedError,
    RangeResponseError,
    RangeStreamError,
    RemoteFileChangedError,
    RetriesExhaustedError,
    StreamClosedError,
)
from ._registry import PruningLevel
from ._response import AsyncRangeResponse, RangeResponse
from .stream import AsyncRangeStream, RangeStream

__version__ = "2.0.0.dev0"

__all__ = [
    "AsyncRangeResponse",
    "AsyncRangeStream",
    "BodyLimits",
    "ContentEncodingError",
    "ContentRangeError",
    "HTTPStatusError",
    "IncompleteBodyError",
    "InvalidRangeError",
    "InvalidURLError",
    "MultipartError",
    "OverlapError",
    "PruningLevel",
    "Range",
    "RangeNotSatisfiableError",
    "RangeNotSupportedError",
    "RangeResponse",
    "RangeResponseError",
    "RangeStream",
    "RangeStreamError",
    "RemoteFileChangedError",
    "RetriesExhaustedError",
    "RetryPolicy",
    "StreamClosedError",
    "__version__",
]
