"""`storesense bench query`: the HQ overview over a chain-sized database.

Generates the rollup rows directly in SQLite (recursive CTEs, no Python loop): ``--stores``
stores in four zones, ``--days`` of hourly rollups (12 open hours a day), the per-store daily
rollup derived from them, POS hours and a device status per store. Then times
``GET /api/v1/overview`` with an hq token through the real FastAPI app (in-process HTTP),
for a past date, for "today", for one region, and for "today" over 7 and 28 days. Prints
JSON with p50/p95 in ms and row counts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ZONES = (("Asia/Shanghai", 8), ("Asia/Tokyo", 9), ("Asia/Kolkata", 5.5), ("UTC", 0))
NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)  # 14:30 in Shanghai, a shopping afternoon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stores", type=int, default=4000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--db", type=Path, help="reuse/keep this database (generated if empty)")


def _generate(conn: Any, stores: int, days: int) -> None:
    """All rows in SQL: stores x days x 12 hours, fixed-offset zones (no DST, by design)."""
    start = (NOW - timedelta(days=days)).strftime("%Y-%m-%d")
    conn.execute("BEGIN")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1 < ?) "
        "INSERT INTO stores (store_id, name, name_zh, region, franchisee, timezone, "
        "open_hour, close_hour, updated_at) SELECT printf('st%05d', i), printf('Store %d', i),"
        " '', printf('region-%d', i % 20), printf('fr-%d', i % 300), "
        "CASE i % 4 WHEN 0 THEN 'Asia/Shanghai' WHEN 1 THEN 'Asia/Tokyo' "
        "WHEN 2 THEN 'Asia/Kolkata' ELSE 'UTC' END, 9, 21, '' FROM n", (stores,))
    offset = "CASE i % 4 WHEN 0 THEN 480 WHEN 1 THEN 540 WHEN 2 THEN 330 ELSE 0 END"
    conn.execute(
        f"""WITH RECURSIVE d(k) AS (SELECT 0 UNION ALL SELECT k+1 FROM d WHERE k+1 < ?),
             h(j) AS (SELECT 9 UNION ALL SELECT j+1 FROM h WHERE j < 20),
             s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i+1 < ?)
        INSERT INTO rollup_hour SELECT printf('st%05d', i),
          strftime('%Y-%m-%dT%H:%M:%SZ', date(?, '+' || k || ' days'), '+' || j || ' hours',
                   '-' || ({offset}) || ' minutes'),
          strftime('%Y-%m-%dT%H:00', date(?, '+' || k || ' days'), '+' || j || ' hours'),
          date(?, '+' || k || ' days'),
          20 + (i + j + k) % 30, 19 + (i + j + k) % 30, 20 + (i + j + k) % 30,
          19 + (i + j + k) % 30, 3600.0 * 4, 7200.0, 9, 120
        FROM s, d, h""", (days + 1, stores, start, start, start))
    conn.execute(
        "INSERT INTO rollup_day (store_id, local_date, in_count, out_count, visitors, exits, "
        "occ_sum, occ_secs, occ_max, windows, zone_visits, dwell_total_s) "
        "SELECT store_id, local_date, SUM(in_count), SUM(out_count), SUM(visitors), "
        "SUM(exits), SUM(occ_sum), SUM(occ_secs), MAX(occ_max), SUM(windows), "
        "SUM(visitors) / 2, SUM(visitors) * 20.0 FROM rollup_hour GROUP BY store_id, local_date")
    conn.execute(  # what ingest maintains alongside rollup_day
        "INSERT INTO rollup_chain_day SELECT local_date, SUM(visitors) FROM rollup_day "
        "GROUP BY local_date")
    conn.execute(
        "INSERT INTO pos SELECT store_id, local_hour, local_date, visitors / 4, visitors * 9.5 "
        "FROM rollup_hour")
    conn.execute(
        "INSERT INTO device_status SELECT store_id, 'box', 'online', ?, ?, "
        "'{\"cameras\": []}' FROM stores", (_utc(NOW), _utc(NOW)))
    conn.execute("COMMIT")


def _utc(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(client: Any, url: str, headers: dict[str, str], runs: int) -> dict[str, Any]:
    client.get(url, headers=headers)  # warm the page cache and the registry
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        r = client.get(url, headers=headers)
        ms.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
    ms.sort()
    body = r.json()
    return {"url": url, "p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[max(0, int(len(ms) * 0.95) - 1)], 1),
            "stores": body["stores_total"], "visitors": body["visitors"]}


def run(args: argparse.Namespace) -> int:
    import logging

    from fastapi.testclient import TestClient

    from gateway.api import create_app
    from gateway.auth import create_token
    from gateway.config import GatewaySettings
    from gateway.storage import Storage

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    with tempfile.TemporaryDirectory(prefix="storesense-benchq-") as tmp:
        db = args.db or Path(tmp) / "q.db"
        storage = Storage(db, clock=lambda: NOW)
        t0 = time.perf_counter()
        if storage._conn.execute("SELECT COUNT(*) FROM rollup_hour").fetchone()[0] == 0:
            _generate(storage._conn, args.stores, args.days)
        gen_s = time.perf_counter() - t0
        storage.reload_registry()
        token = create_token(storage, "bench", "hq")
        rows = {t: storage._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("rollup_hour", "rollup_day", "pos", "stores")}
        app = create_app(GatewaySettings(), storage, clock=lambda: NOW)
        h = {"Authorization": f"Bearer {token}"}
        with TestClient(app) as client:
            past = (NOW - timedelta(days=2)).date().isoformat()
            results = [_time(client, f"/api/v1/overview?date={past}", h, args.runs),
                       _time(client, "/api/v1/overview", h, args.runs),
                       _time(client, "/api/v1/overview?region=region-3", h, args.runs),
                       _time(client, "/api/v1/overview?days=7", h, args.runs),
                       _time(client, "/api/v1/overview?days=28", h, args.runs)]
        storage.close()
    print(json.dumps({"rows": rows, "generate_s": round(gen_s, 1), "queries": results}))
    return 0
