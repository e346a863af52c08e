"""The HQ overview and device health: per-store figures for a period of local days (one day,
7 or 28) against a comparison period, plus a trend.

Built to answer for thousands of stores from the per-store daily rollup: a handful of
queries per distinct (local date, local hour) group of stores, never a scan of hours.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from gateway.db import Database
from gateway.queries import StoreIds, in_store_now, store_filter
from gateway.spans import decompose, runs
from gateway.storage import Registry, StoreInfo

OFFLINE_AFTER_INTERVALS = 3
PERIODS = (1, 7, 28, 90)  # overview period lengths in local days
T = TypeVar("T")


def devices(conn: Database, ids: StoreIds, now: datetime,
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
            # which detector (and other models) the device runs, and why HQ's last model
            # update was refused or rolled back (edge/node/model_update.py)
            "models": [{k: m.get(k) for k in ("name", "sha256")} for m in p.get("models", [])],
            "model_error": p.get("model_error"),
            "cameras": [{k: c.get(k) for k in ("camera_id", "state", "fps", "lag_s",
                                                "last_error")}
                        for c in p.get("cameras", [])],
        })
    return out


def _change(now_v: int, before: int) -> float | None:
    return round(100.0 * (now_v - before) / before, 1) if before else None


DayRow = tuple[int, int, int, float]  # visitors, exits, zone_visits, dwell_total_s


def _day_rows(conn: Database, ids: StoreIds, day: str) -> dict[str, DayRow]:
    where, params = store_filter(ids)
    return {r[0]: tuple(r[1:]) for r in conn.execute(
        f"SELECT store_id, visitors, exits, zone_visits, dwell_total_s FROM rollup_day "
        f"WHERE local_date=? AND {where}", [day, *params])}


def _partial_visitors(conn: Database, ids: StoreIds, day: str,
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
                   WHEN ? <= occ_secs / windows THEN 0
                   ELSE visitors * (? - occ_secs / windows) /
                                   (3600.0 - occ_secs / windows) END)
            FROM rollup_hour WHERE local_date=? AND local_hour <= ? AND windows > 0
            AND {where} GROUP BY store_id""", [hour, elapsed_s, elapsed_s, day, hour, *params])}


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


def overview(conn: Database, registry: Registry, ids: list[str], day: date | None,
             trend_days: int, now: datetime, status_interval_s: float,
             days: int = 1) -> dict[str, Any]:
    """Figures over the ``days`` local days ending on ``day`` (each store's today when None)."""
    all_ids: StoreIds = None if len(ids) == len(registry.stores) else ids
    health = _health(conn, all_ids, now, status_interval_s)
    meta = registry.stores
    stores: list[dict[str, Any]] = []
    everyone = len(ids) == len(registry.stores)
    groups = _group(registry, ids, day, now)
    # For the whole chain, per-date reads run once unfiltered and serve every zone group
    cache: dict[tuple[str, ...], Any] = {}
    for (d, is_today, local_now), group in groups.items():
        reads = _Reads(conn, None if everyone else group, cache if everyone else {})
        stores += _store_figures(conn, group, reads, date.fromisoformat(d), days, is_today,
                                 local_now, meta, health)
    stores.sort(key=lambda s: s["store_id"])
    summary_day = day or max((date.fromisoformat(d) for d, _, _ in groups),
                             default=now.date())
    visitors = sum(s["visitors"] for s in stores)
    last_week = sum(s["visitors_last_week"] for s in stores)
    return {
        "date": summary_day.isoformat(), "days": days,
        "period_start": (summary_day - timedelta(days=days - 1)).isoformat(),
        "visitors": visitors,
        "visitors_last_week": last_week, "change_pct": _change(visitors, last_week),
        "occupancy_now": sum(s["occupancy_now"] for s in stores),
        "stores_total": len(stores), "stores_online": sum(1 for s in stores if s["online"]),
        "stores": stores,
        "trend": _trend(conn, all_ids, summary_day, trend_days),
    }


def _health(conn: Database, ids: StoreIds, now: datetime,
            status_interval_s: float) -> dict[str, tuple[bool, str | None]]:
    cutoff = (now - timedelta(seconds=OFFLINE_AFTER_INTERVALS * status_interval_s))
    where, params = store_filter(ids)
    out: dict[str, tuple[bool, str | None]] = {}
    for s, online, seen in conn.execute(
        f"SELECT store_id, MAX(CASE WHEN state='online' AND received_at >= ? THEN 1 ELSE 0 END), "
        f"MAX(received_at) "
        f"FROM device_status WHERE {where} GROUP BY store_id",
        [cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"), *params]):
        out[s] = (bool(online), seen)
    return out


def _span_rows(conn: Database, ids: StoreIds, first: str,
               last: str) -> dict[str, DayRow]:
    """Figures summed over [first, last] in the DayRow shape (exits, meaningless summed
    over days, are 0: occupancy reads today's row): whole 7- and 28-day blocks from
    rollup_block, the loose days around them from rollup_day (gateway/spans.py)."""
    sql, params = _span_sql(ids, date.fromisoformat(first), date.fromisoformat(last),
                            ("rollup_day", "visitors, zone_visits, dwell_total_s"),
                            "visitors, zone_visits, dwell_total_s")
    return {r[0]: (r[1], 0, r[2], r[3]) for r in conn.execute(
        f"SELECT store_id, SUM(a), SUM(b), SUM(c) FROM ({sql}) AS parts GROUP BY store_id",
        params)}


def _span_sql(ids: StoreIds, first: date, last: date, days: tuple[str, str],
              block_cols: str) -> tuple[str, list[Any]]:
    """One SELECT per run of loose days (a BETWEEN on the date index) and one for the blocks
    (their keys inline: an IN list the planner reads along the primary key), UNION ALL,
    each giving store_id and three figures named a, b, c."""
    keys, loose = decompose(first, last)
    where, fparams = store_filter(ids)
    table, cols = days
    parts, params = [], []
    for a, b in runs(loose):
        parts.append(f"SELECT store_id, {_abc(cols)} FROM {table} "
                     f"WHERE local_date BETWEEN ? AND ? AND {where}")
        params += [a, b, *fparams]
    if keys:
        parts.append(f"SELECT store_id, {_abc(block_cols)} FROM rollup_block WHERE block IN "
                     f"({', '.join('?' * len(keys))}) AND {where}")
        params += [*keys, *fparams]
    return " UNION ALL ".join(parts), params


def _abc(cols: str) -> str:
    return ", ".join(f"{c.strip()} AS {n}" for c, n in zip(cols.split(","), "abc", strict=True))


def _day_tx(conn: Database, ids: StoreIds, day: str) -> dict[str, Any]:
    where, params = store_filter(ids)
    return dict(conn.execute(
        f"SELECT store_id, SUM(transactions) FROM pos WHERE local_date=? AND {where} "
        f"GROUP BY store_id", [day, *params]).fetchall())


def _span_tx(conn: Database, ids: StoreIds, first: date,
             last: date) -> dict[str, Any]:
    """Transactions per store over [first, last], from POS blocks and days like _span_rows;
    a store with no POS hour in the span has none (not 0)."""
    sql, params = _span_sql(ids, first, last, ("pos_day", "transactions, pos_hours, 0"),
                            "transactions, pos_hours, 0")
    return {s: n for s, n, hours in conn.execute(
        f"SELECT store_id, SUM(a), SUM(b) FROM ({sql}) AS parts GROUP BY store_id", params)
        if hours}


class _Reads:
    """Per-store reads of one zone group, memoised in ``cache``. For the whole chain ``ids``
    is None and the cache is shared, so zone groups on the same local dates read once."""

    def __init__(self, conn: Database, ids: StoreIds,
                 cache: dict[tuple[str, ...], Any]) -> None:
        self.conn, self.ids, self.cache = conn, ids, cache

    def _memo(self, key: tuple[str, ...], read: Callable[[], T]) -> T:
        if key not in self.cache:
            self.cache[key] = read()
        got: T = self.cache[key]
        return got

    def day(self, day: str) -> dict[str, DayRow]:
        return self._memo(("day", day), lambda: _day_rows(self.conn, self.ids, day))

    def span(self, first: date, last: date) -> dict[str, DayRow]:
        a, b = first.isoformat(), last.isoformat()
        if a == b:
            return self.day(a)
        return self._memo(("span", a, b), lambda: _span_rows(self.conn, self.ids, a, b))

    def tx(self, first: date, last: date) -> dict[str, Any]:
        a, b = first.isoformat(), last.isoformat()
        if a == b:
            return self._memo(("tx", a), lambda: _day_tx(self.conn, self.ids, a))
        return self._memo(("tx", a, b), lambda: _span_tx(self.conn, self.ids, first, last))


def _comparison_span(end: date, days: int) -> tuple[date, date]:
    """A single day compares with the same weekday a week earlier; N days with the N days
    before them, which for 7 and 28 also ends on the same weekday."""
    if days == 1:
        return end - timedelta(days=7), end - timedelta(days=7)
    return end - timedelta(days=2 * days - 1), end - timedelta(days=days)


def _comparison(conn: Database, ids: list[str], reads: _Reads, first: date,
                last: date, local_now: str | None) -> dict[str, int]:
    """Visitors per store over [first, last]. When the period ends today (``local_now`` is
    the local 'YYYY-MM-DDTHH:MM'), the last day counts only what had ended by that time of
    day, so a morning compares with a morning."""
    if local_now is None:
        return {s: r[0] for s, r in reads.span(first, last).items()}
    hour = last.isoformat() + local_now[10:13] + ":00"
    # the cut-off hour differs per zone group, so this read is always filtered to the group
    cut = _partial_visitors(conn, ids, last.isoformat(), hour, int(local_now[14:16]) * 60)
    if first == last:
        return cut
    out = {s: r[0] for s, r in reads.span(first, last - timedelta(days=1)).items()}
    for s, n in cut.items():
        out[s] = out.get(s, 0) + n
    return out


def _store_figures(
    conn: Database, ids: list[str], reads: _Reads, end: date, days: int,
    is_today: bool, local_now: str,
    meta: dict[str, StoreInfo], health: dict[str, tuple[bool, str | None]],
) -> list[dict[str, Any]]:
    """Store rows of one zone group, whose local now is ``local_now`` (see _group)."""
    first = end - timedelta(days=days - 1)
    period = reads.span(first, end)
    last = _comparison(conn, ids, reads, *_comparison_span(end, days),
                       local_now if is_today else None)
    tx = reads.tx(first, end)
    now_rows = reads.day(local_now[:10])  # occupancy is today's, whatever the period
    return _rows(ids, meta, health, period, last, tx, now_rows)


def _rows(ids: list[str], meta: dict[str, StoreInfo],
          health: dict[str, tuple[bool, str | None]], period: dict[str, DayRow],
          last: dict[str, int], tx: dict[str, Any],
          now_rows: dict[str, DayRow]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    unseen = (False, None)
    append = out.append
    for sid in ids:  # thousands of stores: no helper calls per store
        r, m, n, t = period.get(sid), meta[sid], now_rows.get(sid), tx.get(sid)
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
            "occupancy_now": in_store_now(int(n[0]), int(n[1])) if n else 0,
            "online": online, "last_seen": seen,
        })
    return out


def _trend(conn: Database, ids: StoreIds, end: date,
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
