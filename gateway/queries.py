"""Read side of the API: series and per-store figures from the rollup tables.

Every function takes a read connection and the store ids already resolved against the
caller's scope (``None`` means every store, used only for an unfiltered hq call).
Multi-store series are summed by store-local label: "10:00" is 10:00 in each store's zone.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import numpy as np

from gateway import floorplan, heat_cells
from gateway.db import Database
from gateway.migrations import DEMO_COLUMNS, DEMO_KEYS
from gateway.storage import Registry
from gateway.suppress import MIN_CELL, suppress
from storesense.schema import AGE_BANDS, DWELL_BIN_EDGES_S, GENDERS, window_key

Granularity = Literal["minute", "hour", "day"]
StoreIds = list[str] | None

_SOURCES: dict[str, tuple[str, str]] = {  # granularity -> (table, label column)
    "hour": ("rollup_hour", "local_hour"),
    "day": ("rollup_day", "local_date"),
}


def store_filter(ids: StoreIds, col: str = "store_id") -> tuple[str, list[Any]]:
    if ids is None:
        return "1=1", []
    return f"{col} IN (SELECT value FROM json_each(?))", [json.dumps(ids)]


def traffic(conn: Database, ids: StoreIds, granularity: Granularity,
            start: date, end: date, registry: Registry | None = None) -> list[dict[str, Any]]:
    """in/out/visitors per local period, and ``in_store``: the people in the store at the end
    of the period, by the one definition the live figure uses too (``IN_STORE`` below).
    Occupancy avg/max: people in the cameras' view (time-weighted average and the most one
    camera saw in one window), another measure, summed over stores. ``windows`` and
    ``simulated_windows`` say how much of a period is simulated data.
    Minutes come from the raw windows (``registry`` gives zones and camera roles)."""
    if granularity == "minute":
        return minute_traffic(conn, registry or Registry(), ids, start, end)
    table, label = _SOURCES[granularity]
    where, params = store_filter(ids)
    rows = conn.execute(
        f"""SELECT period, SUM(i), SUM(o), SUM(v), SUM(occ), SUM(mx), SUM(inside), SUM(n),
                   SUM(sim) FROM (
              SELECT {label} AS period, SUM(in_count) i, SUM(out_count) o, SUM(visitors) v,
                     SUM(occ_sum) / NULLIF(SUM(occ_secs), 0) occ, MAX(occ_max) mx,
                     {IN_STORE.format(label=label)} inside,
                     SUM(windows) n, SUM(sim_windows) sim
              FROM {table} WHERE local_date BETWEEN ? AND ? AND {where}
              GROUP BY store_id, period) AS per_store
            GROUP BY period ORDER BY period""",
        [start.isoformat(), end.isoformat(), *params],
    )
    return [
        {"period": r[0], "in": int(r[1]), "out": int(r[2]), "visitors": int(r[3]),
         "in_store": int(r[6]),
         "occupancy_avg": round(r[4], 2) if r[4] is not None else None,
         "occupancy_max": int(r[5]), "windows": int(r[7]), "simulated_windows": int(r[8])}
        for r in rows
    ]


# People in the store: entrance ins minus outs since the store's local day began, clamped at
# 0, per store (docs/dashboards.md says why this and not the cameras' view). Over one store's
# rows of a local date in label order, the running sum at a row is the figure at the end of
# that period; the overview's "in store now" is the same sum over today's rollup_day row.
_RUNNING = ("SUM(SUM(visitors) - SUM(exits)) OVER (PARTITION BY store_id, "
            "substr({label}, 1, 10) ORDER BY {label})")
IN_STORE = f"CASE WHEN {_RUNNING} > 0 THEN {_RUNNING} ELSE 0 END"  # max(0, ...), portably


def in_store_now(visitors: int, exits: int) -> int:
    """The live figure from today's totals so far: IN_STORE at the latest period."""
    return max(0, visitors - exits)


# windows has one index, the unique message_id '<store>/<camera>/<window key>': the cameras
# that have windows are found in it by skipping from one camera's ids to the next ('0' is the
# character after '/', so '<store>/<camera>0' is past all of that camera's ids, and
# '<store>0' past the store's), then each camera's windows in the span are one range of it.
# The `cameras` registry is not used: a store re-imported without a camera keeps its windows.
_MINUTE_WINDOWS = """
WITH RECURSIVE cams(store_id, camera_id) AS (
    SELECT s.store_id, (SELECT w.camera_id FROM windows AS w
                        WHERE w.message_id > s.store_id || '/'
                        AND w.message_id < s.store_id || '0' ORDER BY w.message_id LIMIT 1)
    FROM stores AS s WHERE {where}
    UNION ALL
    SELECT c.store_id, (SELECT w.camera_id FROM windows AS w
                        WHERE w.message_id >= c.store_id || '/' || c.camera_id || '0'
                        AND w.message_id < c.store_id || '0' ORDER BY w.message_id LIMIT 1)
    FROM cams AS c WHERE c.camera_id IS NOT NULL)
SELECT w.store_id, w.camera_id, w.payload FROM cams AS c JOIN windows AS w
    ON w.message_id >= c.store_id || '/' || c.camera_id || '/' || ?
    AND w.message_id < c.store_id || '/' || c.camera_id || '/' || ?
"""


def minute_traffic(conn: Database, registry: Registry, ids: StoreIds, start: date,
                   end: date) -> list[dict[str, Any]]:
    """Per local minute of window_start, from the windows themselves (no minute rollup)."""
    # zones run from UTC-12 to UTC+14: this UTC span covers the local dates in every zone
    lo = datetime.combine(start, time(), UTC) - timedelta(hours=14)
    hi = datetime.combine(end + timedelta(days=1), time(), UTC) + timedelta(hours=12)
    where, params = store_filter(ids, "s.store_id")
    # per (store, label): in, out, visitors, exits, occupancy-seconds, seconds, max, windows,
    # simulated windows
    per: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0, 0.0, 0, 0, 0])
    for store_id, camera_id, payload in conn.execute(
        _MINUTE_WINDOWS.format(where=where), [*params, window_key(lo), window_key(hi)]):
        info = registry.stores.get(store_id)
        if info is None:
            continue
        w = json.loads(payload)
        local = datetime.fromisoformat(w["window_start"]).astimezone(info.tz)
        if not start <= local.date() <= end:
            continue
        acc = per[(store_id, local.strftime("%Y-%m-%dT%H:%M"))]
        ins = sum(x["in_count"] for x in w["lines"])
        outs = sum(x["out_count"] for x in w["lines"])
        secs = (datetime.fromisoformat(w["window_end"]) - local).total_seconds()
        entrance = registry.roles.get((store_id, camera_id)) == "entrance"
        acc[0] += ins
        acc[1] += outs
        acc[2] += ins if entrance else 0
        acc[3] += outs if entrance else 0
        acc[4] += w["occupancy"]["avg"] * secs
        acc[5] += secs
        acc[6] = max(acc[6], w["occupancy"]["max"])
        acc[7] += 1
        acc[8] += 1 if w.get("simulated") else 0
    return _sum_by_label(per)


def _sum_by_label(per: dict[tuple[str, str], list[float]]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    net: dict[tuple[str, str], float] = defaultdict(float)  # (store, local date): ins - outs
    for (store, label), (i, o, v, x, occ, secs, mx, n, sim) in sorted(
            per.items(), key=lambda kv: kv[0][1]):
        net[(store, label[:10])] += v - x
        p = out.setdefault(label, {"period": label, "in": 0, "out": 0, "visitors": 0,
                                   "in_store": 0, "occupancy_avg": 0.0, "occupancy_max": 0,
                                   "windows": 0, "simulated_windows": 0})
        p["in"] += int(i)
        p["out"] += int(o)
        p["visitors"] += int(v)
        p["in_store"] += in_store_now(int(net[(store, label[:10])]), 0)
        p["occupancy_avg"] = round(p["occupancy_avg"] + (occ / secs if secs else 0.0), 2)
        p["occupancy_max"] += int(mx)
        p["windows"] += int(n)
        p["simulated_windows"] += int(sim)
    return list(out.values())


def conversion(conn: Database, ids: StoreIds, granularity: Literal["hour", "day"],
               start: date, end: date) -> list[dict[str, Any]]:
    """Visitors and POS transactions per local period; conversion null without POS data."""
    table, label = _SOURCES[granularity]
    pos_label = "local_hour" if granularity == "hour" else "local_date"
    where, params = store_filter(ids)
    span = [start.isoformat(), end.isoformat()]
    visitors = dict(conn.execute(
        f"SELECT {label}, SUM(visitors) FROM {table} WHERE local_date BETWEEN ? AND ? "
        f"AND {where} GROUP BY {label}", [*span, *params]).fetchall())
    tx = dict(conn.execute(
        f"SELECT {pos_label}, SUM(transactions) FROM pos WHERE local_date BETWEEN ? AND ? "
        f"AND {where} GROUP BY {pos_label}", [*span, *params]).fetchall())
    out = []
    for period in sorted(set(visitors) | set(tx)):
        v, t = int(visitors.get(period) or 0), tx.get(period)
        conv = round(t / v, 4) if t is not None and v > 0 else None
        out.append({"period": period, "visitors": v,
                    "transactions": int(t) if t is not None else None, "conversion": conv})
    return out


def dwell_percentile(hist: list[int], q: float) -> float:
    """Percentile of a DWELL_BIN_EDGES_S histogram, linear inside a bin; the open last bin
    answers its lower edge (a lower bound)."""
    total = sum(hist)
    if total == 0:
        return 0.0
    target, cum = q * total, 0.0
    edges = DWELL_BIN_EDGES_S
    for i, n in enumerate(hist):
        if n and cum + n >= target:
            if i + 1 >= len(edges):
                return float(edges[i])
            return float(edges[i] + (target - cum) / n * (edges[i + 1] - edges[i]))
        cum += n
    return float(edges[-1])


def zones(conn: Database, store_id: str, start: date,
          end: date) -> list[dict[str, Any]]:
    hcols = ", ".join(f"SUM(h{i})" for i in range(len(DWELL_BIN_EDGES_S)))
    rows = conn.execute(
        f"SELECT camera_id, zone, SUM(entries), SUM(visits), SUM(stops), SUM(dwell_total_s), "
        f"{hcols} FROM zone_day WHERE store_id=? AND local_date BETWEEN ? AND ? "
        f"GROUP BY camera_id, zone ORDER BY camera_id, zone",
        (store_id, start.isoformat(), end.isoformat()))
    out = []
    for r in rows:
        visits, total, hist = int(r[3]), float(r[5]), [int(x) for x in r[6:]]
        out.append({
            "camera_id": r[0], "zone": r[1], "entries": int(r[2]), "visits": visits,
            "stops": int(r[4]), "stop_rate": round(r[4] / visits, 4) if visits else None,
            "dwell_mean_s": round(total / visits, 2) if visits else None,
            "dwell_p50_s": round(dwell_percentile(hist, 0.5), 2) if visits else None,
            "dwell_p90_s": round(dwell_percentile(hist, 0.9), 2) if visits else None,
            "dwell_total_s": round(total, 2),
        })
    return out


def transitions(conn: Database, store_id: str, start: date,
                end: date) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT from_zone, to_zone, SUM(count) n FROM transition_day WHERE store_id=? AND "
        "local_date BETWEEN ? AND ? GROUP BY from_zone, to_zone ORDER BY n DESC, from_zone",
        (store_id, start.isoformat(), end.isoformat()))
    return [{"from_zone": r[0], "to_zone": r[1], "count": int(r[2])} for r in rows]


def heatmap(conn: Database, store_id: str, start: date, end: date,
            camera_id: str | None) -> dict[str, Any] | None:
    """Summed seconds per cell over the days; None when the camera has no heatmap.

    ``space`` is "floor" when the camera has a homography (the cells are then on the floor
    plan, ``outside_s`` the seconds that fell off it) and "frame" otherwise."""
    rows = conn.execute(
        "SELECT camera_id, cols, rows, cells FROM heatmap_day WHERE store_id=? AND "
        "local_date BETWEEN ? AND ? AND (CAST(? AS TEXT) IS NULL OR camera_id=?) "
        "ORDER BY camera_id, "
        "local_date", (store_id, start.isoformat(), end.isoformat(), camera_id, camera_id),
    ).fetchall()
    if not rows:
        return None
    cam, cols, nrows = rows[0][0], rows[0][1], rows[0][2]
    total = np.zeros(cols * nrows)
    for r in rows:
        if (r[0], r[1], r[2]) == (cam, cols, nrows):  # one camera, one grid size
            total += heat_cells.decode(r[3], cols, nrows)
    cells: list[float] = total.tolist()
    found = conn.execute("SELECT homography FROM cameras WHERE store_id=? AND camera_id=?",
                         (store_id, cam)).fetchone()
    space, outside = "frame", 0.0
    if found is not None and found[0]:
        cells, outside = floorplan.to_floor(cells, cols, nrows, json.loads(found[0]))
        space = "floor"
    return {"camera_id": cam, "cols": cols, "rows": nrows, "space": space,
            "cells": [round(c, 2) for c in cells], "max": round(max(cells), 2),
            "total_s": round(sum(cells), 2), "outside_s": round(outside, 2)}


def demographics(conn: Database, store_id: str, start: date,
                 end: date) -> dict[str, Any]:
    """Counts per age band and gender; cells below MIN_CELL are null and listed, with their
    complements (gateway/suppress.py): ``visitors`` is the total of each dimension."""
    sums, unique_visitors = _demographics_within_visitors(conn, store_id, start, end)
    suppressed: list[str] = []

    def cells(dim: str, keys: tuple[str, ...], name: str) -> dict[str, int | None]:
        out, hidden = suppress({k: sums.get((dim, k), 0) for k in (*keys, "unknown")},
                               MIN_CELL)
        suppressed.extend(f"{name}.{k}" for k in hidden)
        return out

    visitors = sum(n for (dim, _), n in sums.items() if dim == "gender")
    return {"min_cell": MIN_CELL, "visitors": visitors, "unique_visitors": unique_visitors,
            "age_bands": cells("age", AGE_BANDS, "age_bands"),
            "genders": cells("gender", GENDERS, "genders"), "suppressed": suppressed}


def _demographics_within_visitors(
    conn: Database, store_id: str, start: date, end: date,
) -> tuple[dict[tuple[str, str], int], int]:
    """The demographic sums over the days, each day's split clamped to that day's unique
    visitors (entrance passes minus re-entries), and those visitors. A device may send more
    votes than people (a hostile one, or one from before the vote per visitor of issue 16):
    the day's split is then scaled down (gateway/retail_rollups.clamp_split), not refused."""
    from gateway.retail_rollups import clamp_split

    rows = conn.execute(
        f"SELECT d.visitors - COALESCE((SELECT SUM(r.passes - r.unique_visitors) "
        f"FROM retail_hour r WHERE r.store_id = d.store_id AND r.local_date = d.local_date), "
        f"0), {', '.join(f'd.{c}' for c in DEMO_COLUMNS)} FROM rollup_day d "
        f"WHERE d.store_id=? AND d.local_date BETWEEN ? AND ?",
        (store_id, start.isoformat(), end.isoformat())).fetchall()
    sums = dict.fromkeys(DEMO_KEYS, 0)
    unique_visitors = 0
    for cap, *counts in rows:
        unique_visitors += int(cap)
        day = dict(zip(DEMO_KEYS, (int(n) for n in counts), strict=True))
        for dim in ("age", "gender"):
            split = clamp_split({k: n for (d, k), n in day.items() if d == dim}, int(cap))
            for k, n in split.items():
                sums[(dim, k)] += n
    return sums, unique_visitors


def dead_letters(conn: Database, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, received_at, topic, reason, payload FROM dead_letters "
        "ORDER BY id DESC LIMIT ?", (limit,))
    out = []
    for r in rows:
        p = r[4]
        text = p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p or "")
        out.append({"id": r[0], "received_at": r[1], "topic": r[2], "reason": r[3],
                    "payload": text[:4000]})
    return out
