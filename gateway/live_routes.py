"""What keeps the dashboards current and honest: a change marker the pages poll, so they
update by themselves, and which stores' figures in a span are simulated.

Polling, not server-sent events (docs/dashboards.md): EventSource cannot send the bearer
token the API takes, so a stream would need the token in its URL (kept in logs and history)
or a cookie (and then CSRF defences); and every open stream would hold one of the gateway's
``limit_concurrency`` connections for as long as a page is open. A poll is one small,
authenticated, bounded request: two indexed reads.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from fastapi import APIRouter

from gateway.queries import store_filter
from gateway.routes import Day, NowDep, SelectionDep, StorageDep, Who, _ids, _span, _store_today
from gateway.storage import Storage

router = APIRouter()


@router.get("/live")
def live(who: Who, storage: StorageDep, sel: SelectionDep) -> dict[str, str]:
    """An opaque marker that changes when a window is stored anywhere or a device of the
    selection reports: a page refetches its figures only when it changed. It is a hash, so
    a scoped token learns that the chain ingested something, not how much."""
    ids = _ids(storage, who, sel)
    conn = storage.read()
    seq = conn.execute("SELECT MAX(seq) FROM windows").fetchone()[0]
    where, params = store_filter(ids)
    n, last = conn.execute(
        f"SELECT COUNT(*), MAX(received_at) FROM device_status WHERE {where}", params).fetchone()
    marker = f"{seq}|{n}|{last}".encode()
    return {"version": hashlib.sha256(marker).hexdigest()[:16]}


@router.get("/simulated")
def simulated(who: Who, storage: StorageDep, now: NowDep, sel: SelectionDep,
              start: Day | None = None, end: Day | None = None) -> dict[str, Any]:
    """Stores of the selection with simulated windows in the local dates [start, end], with
    how many of their windows are simulated; a real chain answers an empty list. Without
    dates, each store's own local today: a chain spans time zones, and the UTC date is the
    day before or after some stores' today."""
    ids = _ids(storage, who, sel)
    if start is not None or end is not None:
        first, last = _span(start, end, now.date())
        return {"start": first.isoformat(), "end": last.isoformat(),
                "stores": simulated_stores(storage, ids, first, last)}
    by_today: dict[date, list[str]] = {}
    for store_id in ids:
        if store_id in storage.registry.stores:
            by_today.setdefault(_store_today(storage, store_id, now), []).append(store_id)
    found = [entry for day, group in by_today.items()
             for entry in simulated_stores(storage, group, day, day)]
    days = sorted(by_today) or [now.date()]
    return {"start": days[0].isoformat(), "end": days[-1].isoformat(),
            "stores": sorted(found, key=lambda e: e["store_id"])}


def simulated_stores(storage: Storage, ids: list[str], first: date,
                     last: date) -> list[dict[str, Any]]:
    conn = storage.read()
    where, params = store_filter(ids)
    span = [first.isoformat(), last.isoformat()]
    # sim_windows > 0 reads the partial index rollup_day_simulated (migration 010), empty in
    # a real chain; all windows are then summed for the few stores it found
    sim = dict(conn.execute(
        f"SELECT store_id, SUM(sim_windows) FROM rollup_day WHERE local_date BETWEEN ? AND ? "
        f"AND sim_windows > 0 AND {where} GROUP BY store_id", [*span, *params]).fetchall())
    if not sim:
        return []
    where, params = store_filter(sorted(sim))
    total = dict(conn.execute(
        f"SELECT store_id, SUM(windows) FROM rollup_day WHERE local_date BETWEEN ? AND ? "
        f"AND {where} GROUP BY store_id", [*span, *params]).fetchall())
    return [{"store_id": s, "simulated_windows": int(n), "windows": int(total.get(s) or n)}
            for s, n in sorted(sim.items())]
