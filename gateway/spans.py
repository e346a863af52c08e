"""Rollups sized for the period: a span of local days as whole aligned blocks plus loose days.

The overview of 90 days for 4,000 stores summed 360,000 daily rows for the period and as many
for its comparison. ``rollup_block`` keeps the overview's figures per store for aligned blocks
of 7 and 28 days (block k of size S starts S*k days after Monday 1970-01-05, so a 28-day
block is four 7-day ones), maintained at ingest beside the daily rollup. Any span is then
at most 6 + 3 loose days and 7-day blocks at each end around its 28-day blocks: ~20 rows per
store for 90 days instead of 90, and 7 days cost at most 7. Pure: dates in, keys out.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

EPOCH = date(1970, 1, 5)  # a Monday
SIZES = (28, 7)  # largest first


def block_key(size: int, start: date) -> str:
    return f"{size}:{start.isoformat()}"


@lru_cache(maxsize=8192)
def blocks_of(day: str) -> tuple[str, ...]:
    """The keys of the blocks that contain local date ``day`` ('YYYY-MM-DD')."""
    d = date.fromisoformat(day)
    n = (d - EPOCH).days
    return tuple(block_key(s, EPOCH + timedelta(days=n - n % s)) for s in SIZES)


def decompose(first: date, last: date) -> tuple[list[str], list[str]]:
    """[first, last] as (block keys, loose dates), together covering each day once.
    The loose dates are at most two runs: before the first block and after the last."""
    keys: list[str] = []
    loose: list[str] = []
    d = first
    while d <= last:
        n = (d - EPOCH).days
        for size in SIZES:
            if n % size == 0 and d + timedelta(days=size - 1) <= last:
                keys.append(block_key(size, d))
                d += timedelta(days=size)
                break
        else:
            loose.append(d.isoformat())
            d += timedelta(days=1)
    return keys, loose
