"""``.conda`` packages over a ``ByteSource``: metadata without the payload."""

from ._reader import INFO_MAX_SIZE, PKG_MAX_SIZE, CondaReader

__all__ = ["INFO_MAX_SIZE", "PKG_MAX_SIZE", "CondaReader"]
