"""Read side of the retail figures (issue 16): ``visitors()`` per store-local hour or day
with conversion per visitor and per group, ``queues()`` per queue zone with wait percentiles
merged from the windows' histograms, and the clamp that keeps demographics within visitors.
The tables are filled at ingest by gateway/retail_rollups.py.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from gateway.db import Database
from gateway.queries import StoreIds, dwell_percentile, store_filter
from gateway.retail_rollups import QUEUE_FIELDS, RETAIL_FIELDS


def _ratio(num: int | None, den: int) -> float | None:
    return round(num / den, 4) if num is not None and den > 0 else None


def visitors(conn: Database, ids: StoreIds, granularity: Literal["hour", "day"],
             start: date, end: date) -> list[dict[str, Any]]:
    """Per store-local period: passes, unique visitors, groups, staff passes, and with POS
    data transactions and conversion per visitor (transactions / unique visitors) and per
    group (transactions / groups)."""
    label = "local_hour" if granularity == "hour" else "local_date"
    where, params = store_filter(ids)
    span = [start.isoformat(), end.isoformat()]
    sums = ", ".join(f"SUM({f})" for f in RETAIL_FIELDS)
    rows = {r[0]: r[1:] for r in conn.execute(
        f"SELECT {label}, {sums} FROM retail_hour WHERE local_date BETWEEN ? AND ? "
        f"AND {where} GROUP BY {label}", [*span, *params])}
    tx = dict(conn.execute(
        f"SELECT {label}, SUM(transactions) FROM pos WHERE local_date BETWEEN ? AND ? "
        f"AND {where} GROUP BY {label}", [*span, *params]).fetchall())
    out = []
    for period in sorted(set(rows) | set(tx)):
        r = [int(x or 0) for x in rows.get(period, (0,) * len(RETAIL_FIELDS))]
        fig = dict(zip(RETAIL_FIELDS, r, strict=True))
        t = tx.get(period)
        out.append({"period": period, **fig,
                    "transactions": int(t) if t is not None else None,
                    "conversion_per_visitor": _ratio(t, fig["unique_visitors"]),
                    "conversion_per_group": _ratio(t, fig["groups"])})
    return out


def queues(conn: Database, store_id: str, start: date,
           end: date) -> list[dict[str, Any]]:
    """Per queue zone over the days: length (time-weighted mean, max), waits of served
    visits (p50, p90 from the merged histogram), abandoned and lost visits."""
    sums = ", ".join(f"MAX({f})" if f == "len_max" else f"SUM({f})" for f in QUEUE_FIELDS)
    rows = conn.execute(
        f"SELECT camera_id, zone, {sums} FROM queue_day WHERE store_id=? AND local_date "
        f"BETWEEN ? AND ? GROUP BY camera_id, zone ORDER BY camera_id, zone",
        (store_id, start.isoformat(), end.isoformat()))
    out = []
    for r in rows:
        served, abandoned, lost = int(r[2]), int(r[3]), int(r[4])
        hist = [int(x) for x in r[8:]]
        out.append({
            "camera_id": r[0], "zone": r[1],
            "length_avg": round(r[5] / r[6], 2) if r[6] else None,
            "length_max": int(r[7]),
            "served": served, "abandoned": abandoned, "lost": lost,
            "abandonment_rate": _ratio(abandoned, served + abandoned),
            "wait_p50_s": round(dwell_percentile(hist, 0.5), 1) if served else None,
            "wait_p90_s": round(dwell_percentile(hist, 0.9), 1) if served else None,
            "wait_histogram": hist,
        })
    return out
