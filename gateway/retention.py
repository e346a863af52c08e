"""How long the gateway keeps what: raw windows for days, hourly rollups for years, daily
rollups for good. Storage then grows with stores, not with minutes (docs/gateway.md has
the bytes per store-day and store-year on both engines).

Raw windows are deleted by ``received_at``, the gateway's own clock (a device's clock may be
wrong), in slices of seq so that no delete holds the write lock for long: seq follows
arrival, so the windows to delete are the seq range before the first one received after the
cut-off, found by bisection on the primary key (the table has no index on time, which would
cost every insert a second random index write).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gateway.db import Database

DELETE_SLICE = 20_000  # windows deleted per transaction at most


class RetentionSettings(BaseModel):
    """[retention] in gateway.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw_days: float = Field(
        7.0, ge=0.5, le=3650.0,
        description="raw windows (the minute charts and the feed's source) are kept this many "
        "days after they arrived; the feed must have pushed them by then")
    hourly_days: float = Field(
        1100.0, ge=1.0, le=36_500.0,
        description="hourly rollups (and POS hours) are kept this many days; daily rollups, "
        "zones, paths, demographics and heatmaps are kept for good")


def first_seq_after(conn: Database, cutoff: str) -> int | None:
    """The lowest seq of a window received at or after ``cutoff``, by bisection on seq
    (received_at grows with seq); None when every window is older."""
    row = conn.execute("SELECT MIN(seq), MAX(seq) FROM windows").fetchone()
    if row is None or row[0] is None:
        return None
    lo, hi = int(row[0]), int(row[1])

    def received(seq: int) -> tuple[int, str] | None:
        r = conn.execute("SELECT seq, received_at FROM windows WHERE seq >= ? ORDER BY seq "
                         "LIMIT 1", (seq,)).fetchone()
        return None if r is None else (int(r[0]), str(r[1]))

    last = received(hi)
    if last is None or last[1] < cutoff:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        got = received(mid)
        if got is not None and got[1] >= cutoff:
            hi = got[0] if got[0] <= mid else mid
        else:
            lo = mid + 1
    found = received(lo)
    return None if found is None else found[0]


def raw_slice(conn: Database, cutoff: str) -> int:
    """Delete up to DELETE_SLICE windows received before ``cutoff`` (caller holds the
    transaction); returns how many. Call until it returns 0."""
    keep_from = first_seq_after(conn, cutoff)
    oldest = conn.execute("SELECT MIN(seq) FROM windows").fetchone()[0]
    if oldest is None:
        return 0
    end = int(oldest) + DELETE_SLICE
    if keep_from is not None:
        end = min(end, keep_from)
    return int(conn.execute("DELETE FROM windows WHERE seq < ?", (end,)).rowcount)


def hourly(conn: Database, cutoff_date: str) -> int:
    """Delete hourly rollups and POS hours of local dates before ``cutoff_date``."""
    n = conn.execute("DELETE FROM rollup_hour WHERE local_date < ?", (cutoff_date,)).rowcount
    return int(n) + int(conn.execute("DELETE FROM pos WHERE local_date < ?",
                                     (cutoff_date,)).rowcount)
