"""range-streams: random-access, seekable files over HTTP range requests.

Read the tail of a 4 GB zip, one member, a PNG header or a parquet footer without
downloading the rest; every byte returned is the byte at that offset of one version
of the remote file, or an exception from ``RangeStreamError``'s tree says why not.
"""

from ranges import Range

from ._buffered import BufferedRangeFile, TextRangeFile
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
    NotFoundError,
    OverlapError,
    PartialContentStatusError,
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
from ._core.strategies import (
    Adaptive,
    BlockCache,
    ExactReads,
    Readahead,
    ReadPlanner,
    ReadStrategy,
)
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
    "Adaptive",
    "AsCompleted",
    "AsyncRangeFile",
    "AsyncRangeResponse",
    "AsyncRangeStream",
    "BatchPolicy",
    "BlockCache",
    "BufferedRangeFile",
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
    "NotFoundError",
    "OverlapError",
    "PartialContentStatusError",
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
    "ReadPlanner",
    "ReadStrategy",
    "Readahead",
    "RemoteFileChangedError",
    "RetriesExhaustedError",
    "RetryPolicy",
    "SharedCache",
    "StreamClosedError",
    "TextRangeFile",
    "__version__",
    "as_completed",
    "fetch_many",
    "make_async_client",
    "make_client",
    "open",
    "open_async",
    # range-streams 1.x's exports (made when first used: _LEGACY below)
    "AsyncFetcher",
    "RangeRequest",
    "async_utils",
    "codecs",
    "http_utils",
    "overlaps",
    "range_utils",
    "request",
    "response",
    "stream",
]

# range-streams 1.x exported these; they are imported on first use, so that a 2.x program
# does not pay for them. See docs/Migration.md.
_LEGACY = {
    "AsyncFetcher": ("async_utils", "AsyncFetcher"),
    "RangeRequest": ("request", "RangeRequest"),
    "async_utils": ("async_utils", None),
    "codecs": ("codecs", None),
    "http_utils": ("http_utils", None),
    "overlaps": ("overlaps", None),
    "range_utils": ("range_utils", None),
    "request": ("request", None),
    "response": ("response", None),
    "stream": ("stream", None),
}
_EXAMPLE_DATA_URL = "https://raw.githubusercontent.com/lmmx/range-streams/master/data/"
_EXAMPLE_URL = f"{_EXAMPLE_DATA_URL}example_text_file.txt"
_EXAMPLE_ZIP_URL = f"{_EXAMPLE_DATA_URL}example_text_file.txt.zip"
_EXAMPLE_TAR_URL = f"{_EXAMPLE_DATA_URL}data.tar"
_EXAMPLE_PNG_URL = f"{_EXAMPLE_DATA_URL}red_square_rgba_semitransparent.png"


def __getattr__(name: str) -> object:
    if name not in _LEGACY:
        raise AttributeError(f"module 'range_streams' has no attribute {name!r}")
    import importlib  # noqa: PLC0415 (only for the 1.x names)

    module_name, attribute = _LEGACY[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return module if attribute is None else getattr(module, attribute)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LEGACY))
