"""Simulated stores and window aggregates for the demo and for tests of the storage side.

Everything made here is marked ``simulated=True`` in the message, so a dashboard or a data
platform can always tell measured traffic from demo traffic. Traffic follows a plausible
retail day (a midday and an evening peak, busier weekends) in each store's local time.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from storesense.schema import (
    AGE_BANDS,
    DWELL_BIN_EDGES_S,
    Demographics,
    Heatmap,
    LineCount,
    OccupancyStats,
    QueueStats,
    StaffCounts,
    Transition,
    WindowAggregate,
    ZoneStats,
    message_id,
)


@dataclass(frozen=True)
class DemoCamera:
    camera_id: str
    role: str  # "entrance" counts visitors on its lines; "floor" sees zones
    lines: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoStore:
    store_id: str
    name: str
    name_zh: str
    region: str
    franchisee: str
    timezone: str
    open_hour: int = 9
    close_hour: int = 21
    size: float = 1.0  # traffic multiplier
    cameras: tuple[DemoCamera, ...] = field(default_factory=tuple)


def _cams() -> tuple[DemoCamera, ...]:
    return (
        DemoCamera("entrance", "entrance", lines=("door",)),
        DemoCamera(
            "floor", "floor", zones=("promo-table", "new-arrivals", "checkout", "fitting-rooms")
        ),
    )


DEMO_STORES: tuple[DemoStore, ...] = (
    DemoStore("sh-001", "Shanghai Nanjing Rd", "上海南京路店", "East China", "huadong-retail",
              "Asia/Shanghai", 10, 22, 1.6, _cams()),
    DemoStore("hz-002", "Hangzhou West Lake", "杭州西湖店", "East China", "huadong-retail",
              "Asia/Shanghai", 10, 22, 1.1, _cams()),
    DemoStore("bj-003", "Beijing Wangfujing", "北京王府井店", "North China", "jingjin-partners",
              "Asia/Shanghai", 9, 21, 1.4, _cams()),
    DemoStore("tk-004", "Tokyo Shibuya", "东京涩谷店", "Japan", "kanto-franchise",
              "Asia/Tokyo", 10, 21, 1.3, _cams()),
    DemoStore("ldn-005", "London Oxford St", "伦敦牛津街店", "Europe", "uk-stores-ltd",
              "Europe/London", 9, 20, 1.0, _cams()),
    DemoStore("ny-006", "New York SoHo", "纽约苏荷店", "Americas", "us-east-llc",
              "America/New_York", 10, 21, 0.9, _cams()),
)


def hourly_rate(store: DemoStore, local: datetime) -> float:
    """Expected visitors per hour at a local time: zero when closed, two daily peaks."""
    h = local.hour + local.minute / 60
    if not store.open_hour <= h < store.close_hour:
        return 0.0
    peaks = 0.55 * math.exp(-((h - 13) ** 2) / 3) + 0.8 * math.exp(-((h - 18.5) ** 2) / 4)
    weekend = 1.35 if local.weekday() >= 5 else 1.0
    return 60.0 * store.size * weekend * (0.35 + peaks)


def _zone_stats(zone: str, visits: int, rng: np.random.Generator, occ_max: int) -> ZoneStats:
    mean_dwell = {"promo-table": 18.0, "new-arrivals": 25.0, "checkout": 70.0}.get(zone, 40.0)
    dwell = rng.exponential(mean_dwell, size=visits) if visits else np.zeros(0)
    edges = np.asarray(DWELL_BIN_EDGES_S[1:])
    hist = np.bincount(np.searchsorted(edges, dwell, side="right"), minlength=len(edges) + 1)
    avg = float(min(occ_max, dwell.sum() / 3600.0 * 4)) if visits else 0.0
    return ZoneStats(
        zone=zone,
        entries=visits,
        visits=visits,
        stops=int((dwell >= 5.0).sum()),
        dwell_total_s=float(dwell.sum()),
        dwell_mean_s=float(dwell.mean()) if visits else 0.0,
        dwell_p50_s=float(np.percentile(dwell, 50)) if visits else 0.0,
        dwell_p90_s=float(np.percentile(dwell, 90)) if visits else 0.0,
        dwell_histogram=[int(x) for x in hist],
        occupancy=OccupancyStats(avg=round(avg, 3), max=occ_max),
    )


def _heatmap(
    zones: tuple[str, ...], visits: dict[str, int], cols: int = 32, rows: int = 18
) -> Heatmap:
    yy, xx = np.mgrid[0:rows, 0:cols]
    grid = np.zeros((rows, cols))
    for i, z in enumerate(zones):
        cx, cy = (0.2 + 0.6 * (i % 2)) * cols, (0.3 + 0.45 * (i // 2)) * rows
        grid += visits.get(z, 0) * np.exp(-(((xx - cx) / 4) ** 2 + ((yy - cy) / 3) ** 2))
    return Heatmap(cols=cols, rows=rows, cells=[round(float(v), 2) for v in grid.ravel()])


def simulated_window(
    store: DemoStore, camera: DemoCamera, start: datetime, end: datetime,
    rng: np.random.Generator,
) -> WindowAggregate:
    """One plausible window for a camera; Poisson traffic from ``hourly_rate``."""
    local = start.astimezone(ZoneInfo(store.timezone))
    hours = (end - start).total_seconds() / 3600
    lam = hourly_rate(store, local) * hours
    visitors = int(rng.poisson(lam))
    occ = max(0, round(lam * 0.25))
    lines = [
        LineCount(line=name, in_count=visitors, out_count=int(rng.binomial(visitors, 0.97)))
        for name in camera.lines
    ]
    zone_visits = {z: int(rng.poisson(lam * p))
                   for z, p in zip(camera.zones, (0.45, 0.35, 0.3, 0.15), strict=False)}
    zones = [_zone_stats(z, n, rng, max(1, n // 4)) for z, n in zone_visits.items()]
    transitions = [
        Transition(from_zone=a, to_zone=b, count=n)
        for a, b in zip(camera.zones, camera.zones[1:], strict=False)
        if (n := int(rng.binomial(zone_visits.get(a, 0), 0.4))) > 0
    ]
    demo = Demographics()
    if visitors:
        # Simulated visitors always show their face, so "unknown" is 0 in both splits (and
        # both add up to the visitors); real windows have unknowns where no face was seen.
        ages = rng.multinomial(visitors, [0.22, 0.3, 0.2, 0.13, 0.09, 0.06])
        female = int(rng.binomial(visitors, 0.56))
        demo = Demographics(
            age_bands={b: int(n) for b, n in zip(AGE_BANDS, ages, strict=True)},
            genders={"female": female, "male": visitors - female},
        )
    mid = message_id(store.store_id, camera.camera_id, start)
    return WindowAggregate(
        message_id=mid,
        store_id=store.store_id,
        camera_id=camera.camera_id,
        window_start=start,
        window_end=end,
        frames=int((end - start).total_seconds() * 15),
        simulated=True,
        lines=lines,
        occupancy=OccupancyStats(avg=float(occ), max=occ + int(rng.poisson(1))),
        zones=zones,
        transitions=transitions,
        heatmap=_heatmap(camera.zones, zone_visits) if camera.zones else None,
        demographics=demo,
        **_retail(mid, camera, visitors, zone_visits.get("checkout", 0),
                  (end - start).total_seconds()),
    )


def _retail(mid: str, camera: DemoCamera, visitors: int, checkout: int,
            secs: float) -> dict[str, Any]:
    """Issue 16's figures: re-entries, groups and staff at the door, a queue at the till.
    Drawn from a generator of their own (seeded by the message id), so the traffic above is
    the same as before they existed."""
    rng = np.random.default_rng(zlib.crc32(mid.encode()))
    if camera.role == "entrance":
        unique = visitors - int(rng.binomial(visitors, 0.08))  # ~8 % come back within 30 min
        # about 1.6 people a group: couples, families, friends
        groups = max(1, round(visitors / rng.uniform(1.4, 1.8))) if visitors else 0
        staff = StaffCounts(in_count=int(rng.poisson(0.3)), out_count=int(rng.poisson(0.3)),
                            tracks=int(rng.poisson(0.2)))
        return {"unique_visitors": unique, "groups": min(groups, visitors), "staff": staff}
    if "checkout" not in camera.zones:
        return {}
    abandoned = int(rng.binomial(checkout, 0.07))
    served = checkout - abandoned
    waits = rng.gamma(2.0, 45.0, size=served)  # a minute and a half on average
    edges = np.asarray(DWELL_BIN_EDGES_S[1:])
    hist = np.bincount(np.searchsorted(edges, waits, side="right"), minlength=len(edges) + 1)
    length = float(waits.sum()) / secs  # people waiting at a time, on average
    return {"queues": [QueueStats(
        zone="checkout", length=OccupancyStats(avg=round(length, 3), max=math.ceil(length)
                                               + int(rng.poisson(1))),
        served=served, abandoned=abandoned, lost=int(rng.poisson(0.2)),
        wait_histogram=[int(x) for x in hist])]}


def history(
    stores: tuple[DemoStore, ...], end: datetime, days: int, window_s: int = 3600, seed: int = 0,
) -> Iterator[WindowAggregate]:
    """Windows for every camera of every store over ``days`` before ``end`` (UTC-aligned)."""
    rng = np.random.default_rng(seed)
    step = timedelta(seconds=window_s)
    t = end - timedelta(days=days)
    t = t.replace(minute=0, second=0, microsecond=0)
    while t + step <= end:
        for store in stores:
            if hourly_rate(store, t.astimezone(ZoneInfo(store.timezone))) == 0.0:
                continue
            for cam in store.cameras:
                yield simulated_window(store, cam, t, t + step, rng)
        t += step


def pos_transactions(
    stores: tuple[DemoStore, ...], end: datetime, days: int, seed: int = 1,
) -> Iterator[tuple[str, datetime, int, float]]:
    """(store_id, hour_start_utc, transactions, revenue) with a store-specific conversion."""
    rng = np.random.default_rng(seed)
    t = (end - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    while t < end:
        for i, store in enumerate(stores):
            rate = hourly_rate(store, t.astimezone(ZoneInfo(store.timezone)))
            if rate:
                n = int(rng.poisson(rate * (0.18 + 0.03 * i)))
                yield store.store_id, t, n, round(n * float(rng.normal(38.0, 4.0)), 2)
        t += timedelta(hours=1)
