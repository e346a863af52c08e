"""k-anonymity for demographic counts leaving the gateway (API, pages, data-platform feed).

A cell (people of one age band, or one gender) with fewer than ``MIN_CELL`` people is
suppressed: with 1 to 4 people in it, a store manager who saw who came in could tell who the
one woman over 65 was. Zero cells are suppressed with them (the API always did so, and
"fewer than 5" reads that way to a reader).

Complementary suppression: the total of a dimension is always known to the reader (the API
returns it; in the feed it is the sum of the other dimension, since everyone has one age band
and one gender, "unknown" included), so one suppressed cell is that total minus the shown
ones. Whenever the suppressed cells of a dimension add up to 1..MIN_CELL-1 people, the
smallest shown cell is suppressed as well, so that what total minus shown gives is at least
MIN_CELL people spread over at least two cells. Suppressed cells that add up to 0 need no
complement: that difference says that nobody is in them, which identifies nobody.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MIN_CELL = 5


def suppress(counts: Mapping[str, int], k: int = MIN_CELL) -> tuple[dict[str, int | None],
                                                                    list[str]]:
    """(cells with suppressed ones None, the suppressed keys in the cells' order)."""
    hidden = {key for key, n in counts.items() if n < k}
    shown = sorted((n, key) for key, n in counts.items() if key not in hidden)
    for _, key in shown:
        if not 0 < sum(counts[h] for h in hidden) < k:
            break
        hidden.add(key)  # the smallest shown cell: the least lost that covers the rest
    cells = {key: (None if key in hidden else n) for key, n in counts.items()}
    return cells, [key for key in counts if key in hidden]


def suppress_dimensions(demographics: Mapping[str, Any],
                        k: int = MIN_CELL) -> tuple[dict[str, Any], list[str]]:
    """Every dimension of a demographics object (each value that is a mapping of counts)
    suppressed; other values are kept. Returns (object, ["<dimension>.<key>", ...])."""
    out: dict[str, Any] = {}
    suppressed: list[str] = []
    for dim, value in demographics.items():
        if isinstance(value, Mapping) and all(isinstance(n, int) for n in value.values()):
            out[dim], keys = suppress(value, k)
            suppressed += [f"{dim}.{key}" for key in keys]
        else:
            out[dim] = value
    return out, suppressed
