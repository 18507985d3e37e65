"""``TarInfo``: one member, named as ``tarfile.TarInfo`` names things."""

from __future__ import annotations

from dataclasses import dataclass, field

from ranges import Range

__all__ = ["TarInfo"]

_BLOCK = 512

REGULAR_TYPES = ("0", "\0", "7", "S")
SUPPORTED_TYPES = (*REGULAR_TYPES, "1", "2", "3", "4", "5", "6")


@dataclass(frozen=True, slots=True)
class TarInfo:
    """A member with PAX, GNU long-name and sparse information already applied.

    ``size`` is the member's real size (for a sparse file, with its holes);
    ``stored_size`` is how many data bytes the archive holds for it, starting at
    ``data_offset``. ``header_offset`` is where its first header block starts
    (a PAX or long-name block, when it has one). ``sparse`` lists the
    ``(offset, length)`` runs of data in a sparse file, else ``None``.

    range-streams 1.x's ``TarredFileInfo`` names are aliases here (``filename``,
    ``filename_length``, ``padded_size``, ``file_range``).
    """

    name: str
    size: int
    type: str
    mode: int
    uid: int
    gid: int
    mtime: float
    linkname: str
    uname: str
    gname: str
    devmajor: int
    devminor: int
    header_offset: int
    data_offset: int
    stored_size: int
    sparse: tuple[tuple[int, int], ...] | None = None
    pax_headers: dict[str, str] = field(default_factory=dict, compare=False)

    def isreg(self) -> bool:
        return self.type in REGULAR_TYPES

    def isfile(self) -> bool:
        return self.isreg()

    def isdir(self) -> bool:
        return self.type == "5"

    def issym(self) -> bool:
        return self.type == "2"

    def islnk(self) -> bool:
        return self.type == "1"

    def issparse(self) -> bool:
        return self.sparse is not None

    def isdev(self) -> bool:
        return self.type in ("3", "4", "6")

    # ---- range-streams 1.x's TarredFileInfo names ---------------------------------------

    @property
    def filename(self) -> str:
        return self.name

    @property
    def filename_length(self) -> int:
        return len(self.name)

    @property
    def padded_size(self) -> int:
        """The member's whole extent in the archive: its header block(s), its data and
        the padding to the next 512-byte block."""
        stored = -(-self.stored_size // _BLOCK) * _BLOCK
        return self.data_offset - self.header_offset + stored

    @property
    def file_range(self) -> Range:
        """Where the member's data lies in the archive, ``[start, end)``."""
        return Range(self.data_offset, self.data_offset + self.stored_size)
