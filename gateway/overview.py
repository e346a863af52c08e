"""The HQ overview and device health: per-store figures for a local day plus a trend.

Built to answer for thousands of stores from the per-store daily rollup: a handful of
queries per distinct (local date, local hour) group of stores, never a scan of hours.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.queries import StoreIds, store_filter
from gateway.storage import Registry, StoreInfo

OFFLINE_AFTER_INTERVALS = 3


def devices(conn: sqlite3.Connection, ids: StoreIds, now: datetime,
            status_interval_s: float) -> list[dict[str, Any]]:
    where, params = store_filter(ids)
    cutoff = (now - timedelta(seconds=OFFLINE_AFTER_INTERVALS * status_interval_s))
    cutoff_text = cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for r in conn.execute(
        f"SELECT store_id, device_id, state, received_at, payload FROM device_status "
        f"WHERE {where} ORDER BY store_id, device_id", params):
        p = json.loads(r[4])
        out.append({
            "store_id": r[0], "device_id": r[1], "state": r[2],
            "online": r[2] == "online" and r[3] >= cutoff_text, "last_seen": r[3],
            "outbox_depth": p.get("outbox_depth", 0),
            "outbox_dropped": p.get("outbox_dropped", 0),
            "cameras": [{k: c.get(k) for k in ("camera_id", "state", "fps", "lag_s",
                                                "last_error")}
                        for c in p.get("cameras", [])],
        })
    return out


def _change(now_v: int, before: int) -> float | None:
    return round(100.0 * (now_v - before) / before, 1) if before else None


DayRow = tuple[int, int, int, float]  # visitors, exits, zone_visits, dwell_total_s


def _day_rows(conn: sqlite3.Connection, ids: StoreIds, day: str) -> dict[str, DayRow]:
    where, params = store_filter(ids)
    cur = conn.cursor()
    cur.row_factory = None  # plain tuples: thousands of rows
    return {r[0]: r[1:] for r in cur.execute(
        f"SELECT store_id, visitors, exits, zone_visits, dwell_total_s FROM rollup_day "
        f"WHERE local_date=? AND {where}", [day, *params])}


def _partial_visitors(conn: sqlite3.Connection, ids: StoreIds, day: str,
                      hour: str, elapsed_s: float) -> dict[str, int]:
    """Visitors of ``day`` in windows that had ended by the local time ``hour`` + elapsed_s.

    Whole hours before ``hour`` count fully. Of the hour itself, rollups keep no minutes, so
    with mean window length L (from the rollup) the share of its windows ended by then is
    (elapsed - L) / (3600 - L): hourly windows count nothing, minute windows almost exactly
    the elapsed minutes, matching today, whose unfinished window has not arrived yet.
    """
    where, params = store_filter(ids)
    return {s: round(n) for s, n in conn.execute(
        f"""SELECT store_id, SUM(CASE WHEN local_hour < ? THEN visitors
                   WHEN occ_secs / windows >= 3600 THEN 0
                   ELSE visitors * MAX(0.0, (? - occ_secs / windows) /
                                       (3600.0 - occ_secs / windows)) END)
            FROM rollup_hour WHERE local_date=? AND local_hour <= ? AND windows > 0
            AND {where} GROUP BY store_id""", [hour, elapsed_s, day, hour, *params])}


def _scalar_by_store(conn: sqlite3.Connection, sql: str, ids: StoreIds,
                     day: str) -> dict[str, Any]:
    where, params = store_filter(ids)
    return dict(conn.execute(sql.format(where=where), [day, *params]).fetchall())


def _group(registry: Registry, ids: list[str], day: date | None,
           now: datetime) -> dict[tuple[str, bool, str], list[str]]:
    """Stores grouped by (local day, is that day today, local now 'YYYY-MM-DDTHH:MM')."""
    groups: dict[tuple[str, bool, str], list[str]] = defaultdict(list)
    keys: dict[ZoneInfo, tuple[str, bool, str]] = {}  # a handful of zones, thousands of stores
    stores = registry.stores
    for sid in ids:
        tz = stores[sid].tz
        key = keys.get(tz)
        if key is None:
            local_now = now.astimezone(tz)
            d = day or local_now.date()
            is_today = d == local_now.date()
            # the minute matters only for today's comparison; otherwise group by local date
            stamp = local_now.strftime("%Y-%m-%dT%H:%M" if is_today else "%Y-%m-%d")
            key = keys[tz] = (d.isoformat(), is_today, stamp)
        groups[key].append(sid)
    return groups


def overview(conn: sqlite3.Connection, registry: Registry, ids: list[str], day: date | None,
             trend_days: int, now: datetime, status_interval_s: float) -> dict[str, Any]:
    all_ids: StoreIds = None if len(ids) == len(registry.stores) else ids
    health = _health(conn, all_ids, now, status_interval_s)
    meta = registry.stores
    stores: list[dict[str, Any]] = []
    everyone = len(ids) == len(registry.stores)
    groups = _group(registry, ids, day, now)
    # For the whole chain, per-date reads run once unfiltered and serve every zone group
    cache: dict[tuple[str, str], dict[str, Any]] = {}
    for (d, is_today, local_now), group in groups.items():
        sql_ids = None if everyone else group
        stores += _store_figures(conn, group, sql_ids, d, is_today, local_now, meta, health,
                                 cache if everyone else {})
    stores.sort(key=lambda s: s["store_id"])
    summary_day = day or max((date.fromisoformat(d) for d, _, _ in groups),
                             default=now.date())
    visitors = sum(s["visitors"] for s in stores)
    last_week = sum(s["visitors_last_week"] for s in stores)
    return {
        "date": summary_day.isoformat(), "visitors": visitors,
        "visitors_last_week": last_week, "change_pct": _change(visitors, last_week),
        "occupancy_now": sum(s["occupancy_now"] for s in stores),
        "stores_total": len(stores), "stores_online": sum(1 for s in stores if s["online"]),
        "stores": stores,
        "trend": _trend(conn, all_ids, summary_day, trend_days),
    }


def _health(conn: sqlite3.Connection, ids: StoreIds, now: datetime,
            status_interval_s: float) -> dict[str, tuple[bool, str | None]]:
    cutoff = (now - timedelta(seconds=OFFLINE_AFTER_INTERVALS * status_interval_s))
    where, params = store_filter(ids)
    out: dict[str, tuple[bool, str | None]] = {}
    for s, online, seen in conn.execute(
        f"SELECT store_id, MAX(state='online' AND received_at >= ?), MAX(received_at) "
        f"FROM device_status WHERE {where} GROUP BY store_id",
        [cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"), *params]):
        out[s] = (bool(online), seen)
    return out


def _store_figures(
    conn: sqlite3.Connection, ids: list[str], sql_ids: StoreIds, d: str, is_today: bool,
    local_now: str,
    meta: dict[str, StoreInfo], health: dict[str, tuple[bool, str | None]],
    cache: dict[tuple[str, str], dict[str, Any]],
) -> list[dict[str, Any]]:
    def day_rows(day: str) -> dict[str, DayRow]:
        if ("day", day) not in cache:
            cache["day", day] = _day_rows(conn, sql_ids, day)
        return cache["day", day]

    week_ago = (date.fromisoformat(d) - timedelta(days=7)).isoformat()
    today = day_rows(d)
    if is_today:
        hour = week_ago + local_now[10:13] + ":00"
        # per zone group: the cut-off hour differs, so this one is filtered to the group
        last = _partial_visitors(conn, ids if sql_ids is None else sql_ids, week_ago, hour,
                                 int(local_now[14:16]) * 60)
    else:
        last = {s: r[0] for s, r in day_rows(week_ago).items()}
    if ("tx", d) not in cache:
        cache["tx", d] = _scalar_by_store(
            conn, "SELECT store_id, SUM(transactions) FROM pos WHERE local_date=? AND {where} "
            "GROUP BY store_id", sql_ids, d)
    tx = cache["tx", d]
    now_rows = today if is_today else day_rows(local_now[:10])
    out: list[dict[str, Any]] = []
    unseen = (False, None)
    append = out.append
    for sid in ids:  # thousands of stores: no helper calls per store
        r, m, n, t = today.get(sid), meta[sid], now_rows.get(sid), tx.get(sid)
        v = int(r[0]) if r else 0
        lw = last.get(sid, 0)
        online, seen = health.get(sid, unseen)
        append({
            "store_id": sid, "name": m.name, "name_zh": m.name_zh, "region": m.region,
            "franchisee": m.franchisee, "visitors": v, "visitors_last_week": lw,
            "change_pct": round(100.0 * (v - lw) / lw, 1) if lw else None,
            "transactions": int(t) if t is not None else None,
            "conversion": round(t / v, 4) if t is not None and v else None,
            "avg_dwell_s": round(r[3] / r[2], 1) if r and r[2] else None,
            "occupancy_now": max(0, int(n[0]) - int(n[1])) if n else 0,
            "online": online, "last_seen": seen,
        })
    return out


def _trend(conn: sqlite3.Connection, ids: StoreIds, end: date,
           days: int) -> list[dict[str, Any]]:
    start = end - timedelta(days=days - 1)
    span = [start.isoformat(), end.isoformat()]
    if ids is None:  # the whole chain: one maintained row per date (rollup_chain_day)
        got = dict(conn.execute(
            "SELECT local_date, visitors FROM rollup_chain_day "
            "WHERE local_date BETWEEN ? AND ?", span))
    else:
        where, params = store_filter(ids)
        got = dict(conn.execute(
            f"SELECT local_date, SUM(visitors) FROM rollup_day WHERE local_date BETWEEN ? AND ? "
            f"AND {where} GROUP BY local_date", [*span, *params]))
    return [{"date": (start + timedelta(days=i)).isoformat(),
             "visitors": int(got.get((start + timedelta(days=i)).isoformat(), 0))}
            for i in range(days)]
