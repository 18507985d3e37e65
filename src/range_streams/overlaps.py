"""range-streams 1.x's ``range_streams.overlaps`` module, with 1.x's meanings.

Both functions look at a ``RangeDict`` (a stream's ``ranges`` or ``_ranges``); a stream's
own ``overlap_whence`` answers the same from its registry, without building one.
"""

from ._core.legacy import get_range_containing, overlap_whence

__all__ = ["get_range_containing", "overlap_whence"]
