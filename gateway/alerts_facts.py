"""The stored facts gateway/alerts.py judges: device status, hourly and daily rollups,
store limits. Reads only; no decisions here."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, timedelta

from gateway import alerts_store
from gateway.alerts import CameraFact, DeviceFact, Facts, OccupancyFact, TrafficFact
from gateway.db import Database, Executes
from gateway.storage import Registry


def read_facts(conn: Database, registry: Registry, now: datetime,
               weeks: int) -> Facts:
    return Facts(devices(conn, registry), traffic(conn, registry, now, weeks),
                 occupancy(conn, registry, now))


def _plain(conn: Database) -> Executes:
    """Plain tuples: sqlite3.Row per row costs more than the query here."""
    return conn.tuples()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def devices(conn: Database, registry: Registry) -> tuple[DeviceFact, ...]:
    out = []
    for store_id, device_id, state, sent_at, received_at, payload in _plain(conn).execute(
            "SELECT store_id, device_id, state, sent_at, received_at, payload "
            "FROM device_status ORDER BY store_id, device_id"):
        if store_id not in registry.stores:
            continue
        p = json.loads(payload)  # validated at ingest (storesense.schema.DeviceStatus)
        cams = tuple(CameraFact(c["camera_id"], c["state"], _instant(c["since"]))
                     for c in p.get("cameras", []))
        out.append(DeviceFact(store_id, device_id, state, _instant(received_at),
                              _instant(sent_at), int(p.get("outbox_depth", 0)), cams))
    return tuple(out)


def traffic(conn: Database, registry: Registry, now: datetime,
            weeks: int) -> tuple[TrafficFact, ...]:
    """Per store, grouped by its local day and hour: today's visitors in the complete local
    hours so far, and the same hours' on the last ``weeks`` same weekdays that had windows."""
    groups: dict[tuple[date, int], list[str]] = defaultdict(list)
    for s in registry.stores.values():
        local = now.astimezone(s.tz)
        groups[(local.date(), local.hour)].append(s.store_id)
    out = []
    for (day, hour), ids in sorted(groups.items()):
        days = [(day - timedelta(weeks=k)).isoformat() for k in range(weeks + 1)]
        sums = _hour_sums(conn, ids, days, hour)
        had = _days_with_windows(conn, ids, days[1:])
        for sid in ids:
            usual = tuple(sums.get((sid, d), 0) for d in days[1:] if (sid, d) in had)
            out.append(TrafficFact(sid, days[0], hour, sums.get((sid, days[0]), 0), usual))
    return tuple(out)


def _hour_sums(conn: Database, ids: list[str], days: list[str],
               hour: int) -> dict[tuple[str, str], int]:
    """Visitors per (store, local date) in local hours before ``hour``: one range of the
    (local_date, store_id, local_hour) index per store and day."""
    wanted = json.dumps(ids)
    out: dict[tuple[str, str], int] = {}
    for day in days:
        out.update(((r[0], day), int(r[1])) for r in _plain(conn).execute(
            "SELECT store_id, SUM(visitors) FROM rollup_hour WHERE local_date=? AND "
            "local_hour < ? AND store_id IN (SELECT value FROM json_each(?)) GROUP BY store_id",
            (day, f"{day}T{hour:02d}:00", wanted)))
    return out


def _days_with_windows(conn: Database, ids: list[str],
                       days: list[str]) -> set[tuple[str, str]]:
    """A day before the store was installed (or with its devices down) is no baseline."""
    return {(r[0], r[1]) for r in _plain(conn).execute(
        "SELECT store_id, local_date FROM rollup_day WHERE windows > 0 "
        "AND local_date IN (SELECT value FROM json_each(?)) "
        "AND store_id IN (SELECT value FROM json_each(?))", (json.dumps(days), json.dumps(ids)))}


def occupancy(conn: Database, registry: Registry,
              now: datetime) -> tuple[OccupancyFact, ...]:
    """Stores with a limit: today's visitors - exits by their local date (the overview's
    "in store now", gateway/overview.py)."""
    limits = {s: n for s, n in alerts_store.limits(conn).items() if s in registry.stores}
    by_day: dict[str, list[str]] = defaultdict(list)
    for sid in limits:
        by_day[now.astimezone(registry.stores[sid].tz).date().isoformat()].append(sid)
    inside: dict[str, int] = {}
    for day, ids in by_day.items():
        inside.update((r[0], max(0, int(r[1]) - int(r[2]))) for r in _plain(conn).execute(
            "SELECT store_id, visitors, exits FROM rollup_day WHERE local_date=? AND store_id "
            "IN (SELECT value FROM json_each(?))", (day, json.dumps(ids))))
    return tuple(OccupancyFact(sid, inside.get(sid, 0), n) for sid, n in sorted(limits.items()))
