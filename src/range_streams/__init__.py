"""range-streams: random-access, seekable files over HTTP range requests.

Read the tail of a 4 GB zip, one member, a PNG header or a parquet footer without
downloading the rest; every byte returned is the byte at that offset of one version
of the remote file, or an exception from ``RangeStreamError``'s tree says why not.
"""

from ranges import Range

from ._content import RangeContent
from ._core.cache_stats import CacheStats
from ._core.errors import (
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
    RedirectError,
    RemoteFileChangedError,
    RetriesExhaustedError,
    StreamClosedError,
)
from ._core.registry import PruningLevel
from ._core.source import ByteSource, BytesSource
from ._core.strategies import BlockCache, ExactReads, Readahead, ReadStrategy
from ._flows.batch import BatchPolicy
from ._flows.body import BodyLimits, RetryPolicy
from ._many import AsCompleted, FetchResult, as_completed, fetch_many
from ._net.clients import make_async_client, make_client
from ._net.options import ClientOptions
from ._state.file_core import FileOptions
from ._state.response import AsyncRangeResponse, RangeResponse
from ._state.shared_cache import SharedCache
from .file import AsyncRangeFile, RangeFile, open, open_async
from .stream import AsyncRangeStream, RangeStream

__version__ = "2.0.0.dev0"

__all__ = [
    "AsCompleted",
    "AsyncRangeFile",
    "AsyncRangeResponse",
    "AsyncRangeStream",
    "BatchPolicy",
    "BlockCache",
    "BodyLimits",
    "ByteSource",
    "BytesSource",
    "CacheStats",
    "ClientOptions",
    "ContentEncodingError",
    "ContentRangeError",
    "ExactReads",
    "FetchResult",
    "FileOptions",
    "HTTPStatusError",
    "IncompleteBodyError",
    "InvalidRangeError",
    "InvalidURLError",
    "MultipartError",
    "OverlapError",
    "PruningLevel",
    "Range",
    "RangeContent",
    "RangeFile",
    "RangeNotSatisfiableError",
    "RangeNotSupportedError",
    "RangeResponse",
    "RangeResponseError",
    "RangeStream",
    "RangeStreamError",
    "RedirectError",
    "ReadStrategy",
    "Readahead",
    "RemoteFileChangedError",
    "RetriesExhaustedError",
    "RetryPolicy",
    "SharedCache",
    "StreamClosedError",
    "__version__",
    "as_completed",
    "fetch_many",
    "make_async_client",
    "make_client",
    "open",
    "open_async",
]
