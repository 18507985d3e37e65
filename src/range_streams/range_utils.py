"""range-streams 1.x's ``range_streams.range_utils`` module, with 1.x's meanings.

Note ``range_len``: as in 1.x it is the last position minus the first (``Range(0, 3)``
gives 2), not the number of bytes; ``len(range(r.start, r.end))`` is that.
"""

from ._core.legacy import (
    most_recent_range,
    range_len,
    range_max,
    range_min,
    range_span,
    range_termini,
    ranges_in_reg_order,
    response_ranges_in_reg_order,
    validate_range,
)

#: 1.x's switch for which responses keep ``told``; every response has it now.
ALWAYS_SET_TOLD = True

__all__ = [
    "ALWAYS_SET_TOLD",
    "most_recent_range",
    "range_len",
    "range_max",
    "range_min",
    "range_span",
    "range_termini",
    "ranges_in_reg_order",
    "response_ranges_in_reg_order",
    "validate_range",
]
