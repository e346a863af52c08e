"""The HQ overview and device health: per-store figures for a period of local days (1, 7, 28
or 90) against a comparison period, plus a trend.

Built to answer for thousands of stores: a period's per-store figures are sums of units (a
local date's daily rows, or a 7- or 28-day block) that gateway/period_cache.py keeps in memory
while their dates are unchanged, so a request reads today's rows, device health, the trend
and whatever changed since the last one; the rest is numpy sums and the store rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from gateway.db import Database
from gateway.period_cache import (
    DWELL,
    EXITS,
    POS_HOURS,
    TRANSACTIONS,
    VISITORS,
    ZONE_VISITS,
    PeriodCache,
    ended_by,
)
from gateway.queries import StoreIds, store_filter
from gateway.storage import Registry, StoreInfo

OFFLINE_AFTER_INTERVALS = 3
PERIODS = (1, 7, 28, 90)  # overview period lengths in local days
Span = tuple[date, date]


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
             days: int = 1, cache: PeriodCache | None = None) -> dict[str, Any]:
    """Figures over the ``days`` local days ending on ``day`` (each store's today when None).
    ``cache`` keeps the units between requests (``period_cache.cache_for``); without one,
    every unit is read."""
    cache = cache or PeriodCache()
    all_ids: StoreIds = None if len(ids) == len(registry.stores) else ids
    health = _health(conn, all_ids, now, status_interval_s)
    chain = cache.chain(registry.stores)
    groups = _group(registry, ids, day, now)
    plans = {key: _Plan.of(key, days) for key in groups}
    spans = sorted({s for plan in plans.values() for s in plan.spans()})
    sums_of, hours = cache.figures(conn, chain, spans,
                                   [p.cut[0] for p in plans.values() if p.cut is not None])
    sums = dict(zip(spans, sums_of, strict=True))
    stores: list[dict[str, Any]] = []
    for key, group in groups.items():
        plan = plans[key]
        idx = np.fromiter((chain.index[s] for s in group), np.intp, len(group))
        last = sums[plan.before][idx, VISITORS] if plan.before else np.zeros(len(group))
        if plan.cut is not None:
            cut_day, hour, elapsed = plan.cut
            last = last + ended_by(hours[cut_day], len(chain.ids), hour, elapsed)[idx]
        stores += _rows(group, registry.stores, health, sums[plan.period][idx], last,
                        sums[plan.today][idx])
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


@dataclass(frozen=True)
class _Plan:
    """What one zone group reads: its period, the comparison's days counted in full, the
    comparison's last day cut at the local time (date, hour, seconds into the hour) when the
    period ends today, and today (occupancy is today's, whatever the period)."""

    period: Span
    before: Span | None
    cut: tuple[str, int, float] | None
    today: Span

    @classmethod
    def of(cls, group: tuple[str, bool, str], days: int) -> _Plan:
        d, is_today, local_now = group
        end = date.fromisoformat(d)
        first, last = _comparison_span(end, days)
        today = date.fromisoformat(local_now[:10])
        if not is_today:
            return cls((end - timedelta(days=days - 1), end), (first, last), None,
                       (today, today))
        # a morning compares with the same morning: whole hours before, and of the current
        # hour the share of its windows ended by now (period_cache.ended_by)
        cut = (last.isoformat(), int(local_now[11:13]), int(local_now[14:16]) * 60.0)
        before = (first, last - timedelta(days=1)) if first < last else None
        return cls((end - timedelta(days=days - 1), end), before, cut, (today, today))

    def spans(self) -> list[Span]:
        return [self.period, self.today, *([self.before] if self.before else [])]


def _rows(ids: list[str], meta: dict[str, StoreInfo], health: Health, period: np.ndarray,
          last: np.ndarray, today: np.ndarray) -> list[dict[str, Any]]:
    """The group's store rows from its per-store arrays (period and today: period_cache's
    columns; last: the comparison's visitors), in ``ids`` order."""
    visitors = period[:, VISITORS].astype(np.int64).tolist()
    zone_visits = period[:, ZONE_VISITS].tolist()
    dwell = period[:, DWELL].tolist()
    tx = period[:, TRANSACTIONS].astype(np.int64).tolist()
    # a store with no POS hour in the period has no transactions (None), not 0
    has_pos = (period[:, POS_HOURS] > 0).tolist()
    before = last.astype(np.int64).tolist()
    # in_store_now (gateway/queries.py) of today's totals, for every store at once
    inside = np.maximum(today[:, VISITORS] - today[:, EXITS], 0).astype(np.int64).tolist()
    out: list[dict[str, Any]] = []
    online, seen = health
    append = out.append
    for sid, v, zv, dw, t, pos, lw, occ in zip(ids, visitors, zone_visits, dwell, tx, has_pos,
                                               before, inside, strict=True):
        m = meta[sid]  # thousands of stores: no helper calls per store
        append({
            "store_id": sid, "name": m.name, "name_zh": m.name_zh, "region": m.region,
            "franchisee": m.franchisee, "visitors": v, "visitors_last_week": lw,
            "change_pct": round(100.0 * (v - lw) / lw, 1) if lw else None,
            "transactions": t if pos else None,
            "conversion": round(t / v, 4) if pos and v else None,
            "avg_dwell_s": round(dw / zv, 1) if zv else None,
            "occupancy_now": occ, "online": sid in online, "last_seen": seen.get(sid),
        })
    return out


Health = tuple[set[str], dict[str, str]]  # stores online, each store's last status time


def _health(conn: Database, ids: StoreIds, now: datetime, status_interval_s: float) -> Health:
    # a set and a dict of strings, not a (online, seen) tuple per store: thousands of tuples
    # living through the request would be walked by the oldest generation's collections
    cutoff = (now - timedelta(seconds=OFFLINE_AFTER_INTERVALS * status_interval_s))
    where, params = store_filter(ids)
    online: set[str] = set()
    seen: dict[str, str] = {}
    for s, up, last in conn.tuples().execute(
        f"SELECT store_id, MAX(CASE WHEN state='online' AND received_at >= ? THEN 1 ELSE 0 END), "
        f"MAX(received_at) "
        f"FROM device_status WHERE {where} GROUP BY store_id",
        [cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"), *params]):
        seen[s] = last
        if up:
            online.add(s)
    return online, seen


def _comparison_span(end: date, days: int) -> tuple[date, date]:
    """A single day compares with the same weekday a week earlier; N days with the N days
    before them, which for 7 and 28 also ends on the same weekday."""
    if days == 1:
        return end - timedelta(days=7), end - timedelta(days=7)
    return end - timedelta(days=2 * days - 1), end - timedelta(days=days)


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
