"""``.conda`` packages over a ``ByteSource``: metadata without the payload."""

from ._reader import INFO_MAX_SIZE, PKG_MAX_SIZE, CondaReader

__all__ = ["INFO_MAX_SIZE", "PKG_MAX_SIZE", "CondaReader"]


def __getattr__(name: str) -> object:
    # range-streams 1.x's import path ``range_streams.codecs.conda.CondaStream``; imported
    # late, as the stream classes import this package.
    if name == "CondaStream":
        from .. import _streams  # noqa: PLC0415

        return _streams.CondaStream
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
