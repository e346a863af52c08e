"""The HQ overview and device health: per-store figures for a period of local days (1, 7, 28
or 90) against a comparison period, plus a trend.

Built to answer for thousands of stores: a period's per-store figures are sums of units (a
local date's daily rows, or a 7- or 28-day block) that gateway/period_cache.py keeps in memory
while their dates are unchanged, so a request reads today's rows, device health, the trend
and whatever changed since the last one; the rest is numpy sums and the store rows.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import repeat
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

from gateway import overview_rows as rows
from gateway.db import Database
from gateway.period_cache import (
    DWELL,
    EXITS,
    POS_HOURS,
    SEP,
    TRANSACTIONS,
    VISITORS,
    WIDTH,
    ZONE_VISITS,
    PeriodCache,
    concat,
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


@dataclass(frozen=True)
class _Layout:
    """What one registry snapshot fixes for every request: each store's zone and the head
    of its JSON row, by the chain's index (the registry is read again every few seconds;
    this is made again only when that gives a new snapshot)."""

    zones: list[ZoneInfo]
    zone_of: np.ndarray  # index into zones, per store of the chain
    heads: list[bytes]

    @classmethod
    def of(cls, ids: tuple[str, ...], meta: dict[str, StoreInfo]) -> _Layout:
        zones = list(dict.fromkeys(meta[s].tz for s in ids))
        number = {z: i for i, z in enumerate(zones)}
        return cls(zones, np.fromiter((number[meta[s].tz] for s in ids), np.intp, len(ids)),
                   [rows.head(s, meta[s]) for s in ids])


_layouts: weakref.WeakKeyDictionary[PeriodCache, tuple[object, _Layout]] = (
    weakref.WeakKeyDictionary())
_layouts_lock = threading.Lock()


def _layout(cache: PeriodCache, ids: tuple[str, ...], meta: dict[str, StoreInfo]) -> _Layout:
    with _layouts_lock:
        kept = _layouts.get(cache)
        if kept is not None and kept[0] is meta:
            return kept[1]
    made = _Layout.of(ids, meta)
    with _layouts_lock:
        _layouts[cache] = (meta, made)
    return made


def _group(layout: _Layout, picked: np.ndarray, day: date | None,
           now: datetime) -> dict[tuple[str, bool, str], np.ndarray]:
    """Positions in ``picked`` grouped by (local day, is that day today, local now
    'YYYY-MM-DDTHH:MM'): a handful of zones, thousands of stores."""
    groups: dict[tuple[str, bool, str], list[np.ndarray]] = defaultdict(list)
    zone = layout.zone_of[picked]
    for z in np.unique(zone).tolist():
        local_now = now.astimezone(layout.zones[z])
        d = day or local_now.date()
        is_today = d == local_now.date()
        # the minute matters only for today's comparison; otherwise group by local date
        stamp = local_now.strftime("%Y-%m-%dT%H:%M" if is_today else "%Y-%m-%d")
        groups[(d.isoformat(), is_today, stamp)].append(np.flatnonzero(zone == z))
    return {k: np.concatenate(v) for k, v in groups.items()}


def overview(conn: Database, registry: Registry, ids: list[str], day: date | None,
             trend_days: int, now: datetime, status_interval_s: float,
             days: int = 1, cache: PeriodCache | None = None) -> dict[str, Any]:
    """Figures over the ``days`` local days ending on ``day`` (each store's today when None).
    ``cache`` keeps the units between requests (``period_cache.cache_for``); without one,
    every unit is read. The stores come as JSON text already (msgspec.Raw): encode the
    answer with msgspec."""
    cache = cache or PeriodCache()
    chain = cache.chain(registry.stores)
    layout = _layout(cache, chain.ids, registry.stores)
    # the stores in store_id order (the chain's ids are sorted), each once
    picked = np.unique(np.fromiter(map(chain.index.get, ids, repeat(-1)), np.intp, len(ids)))
    picked = picked[picked >= 0]
    whole = len(picked) == len(chain.ids)
    scope: list[str] | None = None if whole else [chain.ids[i] for i in picked.tolist()]
    online, seen = _health(conn, scope, chain.index, now, status_interval_s)
    groups = _group(layout, picked, day, now)
    plans = {key: _Plan.of(key, days) for key in groups}
    spans = sorted({s for plan in plans.values() for s in plan.spans()})
    sums_of, hours = cache.figures(conn, chain, spans,
                                   [p.cut[0] for p in plans.values() if p.cut is not None],
                                   scope)
    sums = dict(zip(spans, sums_of, strict=True))
    period = np.zeros((len(picked), WIDTH))
    today = np.zeros((len(picked), WIDTH))
    last = np.zeros(len(picked))
    for key, at in groups.items():
        plan = plans[key]
        idx = picked[at]
        period[at] = sums[plan.period][idx]
        today[at] = sums[plan.today][idx]
        if plan.before:
            last[at] = sums[plan.before][idx, VISITORS]
        if plan.cut is not None:
            cut_day, hour, elapsed = plan.cut
            last[at] += cache.ended_by(hours[cut_day], len(chain.ids), hour, elapsed)[idx]
    occupancy = np.maximum(today[:, VISITORS] - today[:, EXITS], 0)
    up = online[picked]
    stores = rows.stores_json(
        layout.heads if whole else [layout.heads[i] for i in picked.tolist()],
        period[:, VISITORS], last,
        period[:, ZONE_VISITS], period[:, DWELL], period[:, TRANSACTIONS],
        period[:, POS_HOURS], occupancy, up.tolist(), seen[picked].tolist())
    summary_day = day or max((date.fromisoformat(d) for d, _, _ in groups),
                             default=now.date())
    visitors = int(period[:, VISITORS].astype(np.int64).sum())
    last_week = int(last.astype(np.int64).sum())
    return {
        "date": summary_day.isoformat(), "days": days,
        "period_start": (summary_day - timedelta(days=days - 1)).isoformat(),
        "visitors": visitors,
        "visitors_last_week": last_week, "change_pct": _change(visitors, last_week),
        "occupancy_now": int(occupancy.astype(np.int64).sum()),
        "stores_total": len(picked), "stores_online": int(up.sum()),
        "stores": msgspec.Raw(stores),
        "trend": _trend(conn, scope, summary_day, trend_days),
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


def _health(conn: Database, ids: StoreIds, index: dict[str, int], now: datetime,
            status_interval_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Per store of the chain (``index``): online (any device online and heard from since the
    cut-off) and when it was last heard from (None: never). Read as one row of the devices'
    texts, grouped here: a row per store made thousands of Python tuples, and SQLite's
    GROUP BY over 4,000 devices alone took ~3 ms."""
    cutoff = (now - timedelta(seconds=OFFLINE_AFTER_INTERVALS * status_interval_s))
    where, params = store_filter(ids)
    online = np.zeros(len(index), dtype=bool)
    seen = np.full(len(index), None, dtype=object)
    sql = (f"SELECT COUNT(*), {concat(conn, 'store_id', texts=True)}, "
           f"{concat(conn, 'received_at', texts=True)}, {concat(conn, _UP)} "
           f"FROM device_status WHERE {where}")
    count, stores, times, up = conn.tuples().execute(
        sql, [cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"), *params]).fetchone()
    if not count:
        return online, seen
    if not len(stores := stores.split(SEP)) == len(times := times.split(SEP)) == count:
        raise ValueError("device_status holds a store id or a time with a separator")
    at = np.fromiter(map(index.get, stores, repeat(-1)), np.intp, count)
    known = at >= 0
    at, heard = at[known], np.array(times)[known]
    online[at[np.frombuffer(up.encode(), np.uint8)[0::2][known] == ord("1")]] = True
    # the latest time per store: sorted by store, then time; a store's last row is its latest
    order = np.lexsort((heard, at))
    at, heard = at[order], heard[order]
    last = np.append(at[1:] != at[:-1], True)
    seen[at[last]] = heard[last].tolist()
    return online, seen


# a device's '1' when online and heard from since the cut-off (the statement's parameter)
_UP = "CASE WHEN state = 'online' AND received_at >= ? THEN '1' ELSE '0' END"


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
