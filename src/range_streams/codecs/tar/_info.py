"""``TarInfo``: one member, named as ``tarfile.TarInfo`` names things."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TarInfo"]

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
