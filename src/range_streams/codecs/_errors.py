"""The errors the codecs raise: a small subtree under ``RangeStreamError``.

::

    RangeStreamError
    └── CodecError ........................ a container could not be read as asked
        ├── ArchiveFormatError ............ corrupt, truncated, or not this format
        ├── MemberNotFoundError (KeyError)  no member by that name
        ├── UnsupportedMemberError ........ readable format, but a feature we do not
        │                                   decode (encryption, an unknown compression
        │                                   method, a missing optional dependency)
        └── ChecksumError ................. decoded data does not match its CRC-32

Decoder failures (``zlib.error``, ``lzma.LZMAError``, ...) are translated into
``ArchiveFormatError`` so that callers need only catch ``CodecError``.
"""

from __future__ import annotations

from .._core.errors import RangeStreamError

__all__ = [
    "ArchiveFormatError",
    "ChecksumError",
    "CodecError",
    "MemberNotFoundError",
    "UnsupportedMemberError",
]


class CodecError(RangeStreamError):
    """Base class of every error raised while decoding a container format."""


class ArchiveFormatError(CodecError):
    """The bytes are corrupt, truncated, or not in the format the reader expects."""


class MemberNotFoundError(CodecError, KeyError):
    """No member has the requested name. Also a ``KeyError``, as for a mapping."""

    def __str__(self) -> str:
        # KeyError.__str__ reprs its argument; a message reads better as given.
        return str(self.args[0]) if self.args else ""


class UnsupportedMemberError(CodecError):
    """The member uses a feature this reader does not decode."""


class ChecksumError(CodecError):
    """Decoded data does not match the checksum stored alongside it."""
