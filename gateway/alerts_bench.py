"""`python -m gateway.alerts_bench`: one alert evaluation over a chain-sized database.

Rows are generated in SQL as `storesense bench query` does (gateway/bench_query.py): stores in
four zones, hourly rollups 09:00-20:59, a device status per store, and an occupancy limit per
store (one in ten low enough to raise).
Times ``evaluate_once`` (facts read, judged, recorded) a few times at the generator's "now"
(a shopping afternoon in Shanghai) and prints JSON: the time of the first run (it raises)
and the median of the rest (nothing changes), and how many alerts were raised.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from gateway import alerts_store
from gateway.alerts import AlertSettings
from gateway.alerts_runner import evaluate_once
from gateway.bench_query import NOW
from gateway.db import Database
from gateway.rollups import utc_text
from gateway.storage import Storage


def _generate(conn: Database, stores: int, days: int) -> None:
    start = (NOW - timedelta(days=days)).strftime("%Y-%m-%d")
    offset = "CASE i % 4 WHEN 0 THEN 480 WHEN 1 THEN 540 WHEN 2 THEN 330 ELSE 0 END"
    conn.execute("BEGIN")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i+1 < ?) "
        "INSERT INTO stores (store_id, name, timezone, updated_at) SELECT printf('st%05d', i), "
        "'', CASE i % 4 WHEN 0 THEN 'Asia/Shanghai' WHEN 1 THEN 'Asia/Tokyo' "
        "WHEN 2 THEN 'Asia/Kolkata' ELSE 'UTC' END, '' FROM n", (stores,))
    conn.execute(
        f"""WITH RECURSIVE d(k) AS (SELECT 0 UNION ALL SELECT k+1 FROM d WHERE k+1 < ?),
             h(j) AS (SELECT 9 UNION ALL SELECT j+1 FROM h WHERE j < 20),
             s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i+1 < ?)
        INSERT INTO rollup_hour (store_id, hour_utc, local_hour, local_date, visitors, exits,
                                 windows)
        SELECT printf('st%05d', i),
          strftime('%Y-%m-%dT%H:%M:%SZ', date(?, '+' || k || ' days'), '+' || j || ' hours',
                   '-' || ({offset}) || ' minutes'),
          strftime('%Y-%m-%dT%H:00', date(?, '+' || k || ' days'), '+' || j || ' hours'),
          date(?, '+' || k || ' days'), 20 + (i + j + k) % 30, 19 + (i + j + k) % 30, 120
        FROM s, d, h""", (days + 1, stores, start, start, start))
    conn.execute(
        "INSERT INTO rollup_day (store_id, local_date, visitors, exits, windows) "
        "SELECT store_id, local_date, SUM(visitors), SUM(exits), SUM(windows) FROM rollup_hour "
        "GROUP BY store_id, local_date")
    conn.execute(
        "INSERT INTO device_status SELECT store_id, 'box', 'online', ?, ?, "
        "'{\"cameras\": []}' FROM stores", (utc_text(NOW), utc_text(NOW)))
    conn.execute("COMMIT")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stores", type=int, default=4000)
    ap.add_argument("--days", type=int, default=35, help="of hourly rollups (4 weeks + 1)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="storesense-alerts-") as tmp:
        storage = Storage(Path(tmp) / "a.db", clock=lambda: NOW)
        _generate(storage._conn, args.stores, args.days)
        with storage.transaction() as conn:
            for i, sid in enumerate(sorted(storage.reload_registry().stores)):
                alerts_store.set_limit(conn, sid, 5 if i % 10 == 0 else 1000, "bench", "")
        rules = AlertSettings()
        ms, raised = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            raised.append(len(evaluate_once(storage, rules, NOW).raised))
            ms.append((time.perf_counter() - t) * 1000)
        storage.close()
    print(json.dumps({"stores": args.stores, "days": args.days, "first_ms": round(ms[0], 1),
                      "steady_ms": round(statistics.median(ms[1:]), 1), "raised": raised}))


if __name__ == "__main__":
    main()
