"""`storesense bench query`: the HQ overview over a chain-sized database, either engine.

Generates the rollup rows directly in SQL (recursive CTEs in SQLite, generate_series in
PostgreSQL, no Python loop): ``--stores`` stores in four zones, ``--days`` of hourly rollups
(12 open hours a day), the per-store daily rollup derived from them, POS hours, a device
status per store, and the period blocks and POS days the way migration 014 fills them.
Then times ``GET /api/v1/overview`` with an hq token through the real FastAPI app
(in-process HTTP), for a past date, for "today", for one region, one franchisee over 28
days, and for "today" over 7, 28 and 90 days. Before each request a write transaction
touches each zone's local today (with ``--late`` yesterday too) as an ingest batch does, so
the overview's cache of past units
(gateway/period_cache.py) reads today again every time, and yesterday with ``--late``, as
under live ingest and late windows. Prints JSON with p50/p95 in ms, the first request of
each (right after start for the first one: nothing cached, unless ``--warm`` ran the
gateway's start-up warm-up first, whose time and memory it prints), the load average, row
counts, and bytes per table (storage per store-year of rollups).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.db import Database, is_postgres
from gateway.footprint import table_bytes
from gateway.pg_local import PostgresServer
from gateway.rollups import rebuild_blocks

ZONES = (("Asia/Shanghai", 8), ("Asia/Tokyo", 9), ("Asia/Kolkata", 5.5), ("UTC", 0))
NOW = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)  # 14:30 in Shanghai, a shopping afternoon


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stores", type=int, default=4000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--db", help="reuse/keep this database, a SQLite file or a "
                        "PostgreSQL URL (generated if empty)")
    parser.add_argument("--hourly-days", type=int, default=14,
                        help="the last days generated as hours and POS hours (the overview "
                        "reads hours of the last 8 days only); older days as days")
    parser.add_argument("--late", action="store_true",
                        help="also touch yesterday before every request (late windows "
                        "arriving all the time)")
    parser.add_argument("--warm", action="store_true",
                        help="run the gateway's start-up warm-up (gateway/overview_warmup.py) "
                        "in its thread and wait for it before the first request; prints "
                        "what it read, its time and memory")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite",
                        help="without --db: a SQLite file, or a PostgreSQL server started "
                        "for the run")


def _generate(conn: Database, stores: int, days: int, hourly: int) -> None:
    """All rows in SQL: stores x days, the last ``hourly`` days also as 12 hours and POS
    hours; fixed-offset zones (no DST, by design)."""
    hourly = min(hourly, days)
    with conn.transaction():
        if conn.engine == "sqlite":
            _generate_sqlite(conn, stores, days, hourly)
        else:
            _generate_postgres(conn, stores, days, hourly)
        _derive(conn, NOW - timedelta(days=hourly))
    if conn.engine == "postgresql":
        conn.execute("VACUUM ANALYZE")  # the planner's statistics, as autovacuum would


def _generate_postgres(conn: Database, stores: int, days: int, hourly: int) -> None:
    start = (NOW - timedelta(days=days)).strftime("%Y-%m-%d")
    recent = (NOW - timedelta(days=hourly)).strftime("%Y-%m-%d")
    zone = ("CASE i % 4 WHEN 0 THEN 'Asia/Shanghai' WHEN 1 THEN 'Asia/Tokyo' "
            "WHEN 2 THEN 'Asia/Kolkata' ELSE 'UTC' END")
    conn.raw.execute((  # psycopg's own placeholders: a literal % is %%
        "INSERT INTO stores (store_id, name, name_zh, region, franchisee, timezone, "
        "open_hour, close_hour, updated_at) SELECT 'st' || lpad(i::text, 5, '0'), "
        f"'Store ' || i, '', 'region-' || (i % 20), 'fr-' || (i % 300), {zone}, 9, 21, '' "
        "FROM generate_series(0, %s - 1) AS i").replace(" % ", " %% "), (stores,))
    offset = "CASE i % 4 WHEN 0 THEN 480 WHEN 1 THEN 540 WHEN 2 THEN 330 ELSE 0 END"
    conn.raw.execute(
        f"""INSERT INTO rollup_hour ({_HOUR_COLS}) SELECT 'st' || lpad(i::text, 5, '0'),
          to_char(%s::timestamp + make_interval(days => k, hours => j)
                  - make_interval(mins => {offset}), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
          to_char(%s::timestamp + make_interval(days => k, hours => j), 'YYYY-MM-DD"T"HH24:00'),
          to_char(%s::date + k, 'YYYY-MM-DD'),
          20 + (i + j + k) % 30, 19 + (i + j + k) % 30, 20 + (i + j + k) % 30,
          19 + (i + j + k) % 30, 3600.0 * 4, 7200.0, 9, 120
        FROM generate_series(0, %s - 1) AS i, generate_series(0, %s) AS k,
             generate_series(9, 20) AS j""".replace(" % ", " %% "),
        (recent, recent, recent, stores, hourly))
    conn.raw.execute(
        f"""INSERT INTO rollup_day (store_id, local_date, {_DAY_COLS})
        SELECT 'st' || lpad(i::text, 5, '0'), to_char(%s::date + k, 'YYYY-MM-DD'),
          {_DAY_VALUES}
        FROM generate_series(0, %s - 1) AS i, generate_series(0, %s - 1) AS k""".replace(
            " % ", " %% "), (start, stores, days - hourly))


def _derive(conn: Database, hourly_from: datetime) -> None:
    """What ingest maintains beside the hourly rows, from them (same SQL on both engines);
    POS of the older days as days."""
    conn.execute(
        "INSERT INTO rollup_day (store_id, local_date, in_count, out_count, visitors, exits, "
        "occ_sum, occ_secs, occ_max, windows, zone_visits, dwell_total_s) "
        "SELECT store_id, local_date, SUM(in_count), SUM(out_count), SUM(visitors), "
        "SUM(exits), SUM(occ_sum), SUM(occ_secs), MAX(occ_max), SUM(windows), "
        "SUM(visitors) / 2, SUM(visitors) * 20.0 FROM rollup_hour GROUP BY store_id, local_date")
    conn.execute(
        "INSERT INTO rollup_chain_day SELECT local_date, SUM(visitors) FROM rollup_day "
        "GROUP BY local_date")
    conn.execute(
        "INSERT INTO pos (store_id, local_hour, local_date, transactions, revenue) "
        "SELECT store_id, local_hour, local_date, visitors / 4, visitors * 9.5 FROM rollup_hour")
    conn.execute(
        "INSERT INTO device_status SELECT store_id, 'box', 'online', ?, ?, "
        "'{\"cameras\": []}' FROM stores", (_utc(NOW), _utc(NOW)))
    conn.execute("INSERT INTO pos_day (local_date, store_id, transactions, pos_hours) "
                 "SELECT local_date, store_id, SUM(transactions), COUNT(*) FROM pos "
                 "GROUP BY local_date, store_id")
    conn.execute("INSERT INTO pos_day (local_date, store_id, transactions, pos_hours) "
                 "SELECT local_date, store_id, visitors / 4, 12 FROM rollup_day "
                 "WHERE local_date < ?", (hourly_from.strftime("%Y-%m-%d"),))
    rebuild_blocks(conn, pos_day=False)


def _generate_sqlite(conn: Database, stores: int, days: int, hourly: int) -> None:
    start = (NOW - timedelta(days=days)).strftime("%Y-%m-%d")
    recent = (NOW - timedelta(days=hourly)).strftime("%Y-%m-%d")
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
        INSERT INTO rollup_hour ({_HOUR_COLS}) SELECT printf('st%05d', i),
          strftime('%Y-%m-%dT%H:%M:%SZ', date(?, '+' || k || ' days'), '+' || j || ' hours',
                   '-' || ({offset}) || ' minutes'),
          strftime('%Y-%m-%dT%H:00', date(?, '+' || k || ' days'), '+' || j || ' hours'),
          date(?, '+' || k || ' days'),
          20 + (i + j + k) % 30, 19 + (i + j + k) % 30, 20 + (i + j + k) % 30,
          19 + (i + j + k) % 30, 3600.0 * 4, 7200.0, 9, 120
        FROM s, d, h""", (hourly + 1, stores, recent, recent, recent))
    conn.execute(
        f"""WITH RECURSIVE d(k) AS (SELECT 0 UNION ALL SELECT k+1 FROM d WHERE k+1 < ?),
             s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i+1 < ?)
        INSERT INTO rollup_day (store_id, local_date, {_DAY_COLS})
        SELECT printf('st%05d', i), date(?, '+' || k || ' days'), {_DAY_VALUES} FROM s, d""",
        (days - hourly, stores, start))


_HOUR_COLS = ("store_id, hour_utc, local_hour, local_date, in_count, out_count, visitors, "
              "exits, occ_sum, occ_secs, occ_max, windows")
# the older days, generated as days (their hours are not read by the overview): a day's
# figures like twelve of the hours above
_DAY_COLS = ("in_count, out_count, visitors, exits, occ_sum, occ_secs, occ_max, windows, "
             "zone_visits, dwell_total_s")
_DAY_VALUES = ("400 + (i + k) % 97, 390 + (i + k) % 97, 400 + (i + k) % 97, "
               "390 + (i + k) % 97, 172800.0, 86400.0, 9, 1440, (400 + (i + k) % 97) / 2, "
               "(400 + (i + k) % 97) * 20.0")


# rows a store adds in a year with the default retention, 12 open hours a day (days, the
# 7- and 28-day blocks, hours and POS hours kept 1,100 days, i.e. all year)
ROWS_PER_STORE_YEAR = {"rollup_day": 365, "pos_day": 365, "rollup_block": 365 / 7 + 365 / 28,
                       "rollup_hour": 365 * 12, "pos": 365 * 12}


def _utc(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _touch(conn: Database, dates: list[str]) -> None:
    """What an ingest batch does to the overview's change counters of these dates (it
    upserts their rollup_chain_day rows), without changing a figure."""
    with conn.transaction():
        conn.executemany("UPDATE rollup_chain_day SET visitors = visitors + 0 "
                         "WHERE local_date = ?", [(d,) for d in dates])


def _time(client: Any, url: str, headers: dict[str, str], runs: int,
          before: Callable[[], None]) -> dict[str, Any]:
    ms, cpu = [], []
    for _ in range(runs + 1):  # the first: units not read yet by an earlier request
        before()
        t, c = time.perf_counter(), time.process_time()
        r = client.get(url, headers=headers)
        ms.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
    first, ms = ms[0], sorted(ms[1:])
    body = r.json()
    return {"url": url, "p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[max(0, int(len(ms) * 0.95) - 1)], 1),
            "first_ms": round(first, 1),
            # this process's CPU (every thread: client, app, database driver; SQLite's
            # work included, not a PostgreSQL server's): what load multiplies
            "cpu_ms_p50": round(statistics.median(cpu[1:]), 1),
            "stores": body["stores_total"], "visitors": body["visitors"]}


def _warm_up(storage: Any, status_interval_s: float) -> dict[str, Any]:
    """The gateway's start-up warm-up as ``gateway run`` starts it (its own thread), waited
    for: its wall and CPU time (the process's, every thread) and what it keeps."""
    from gateway import overview_warmup
    from gateway.period_cache import cache_for

    t, c = time.perf_counter(), time.process_time()
    overview_warmup.start(storage, lambda: NOW, status_interval_s).join()
    cache = cache_for(storage)
    return {"s": round(time.perf_counter() - t, 2), "cpu_s": round(time.process_time() - c, 2),
            "units": cache.reads, "mb_kept": round(cache.held_bytes() / 1e6, 1)}


def run(args: argparse.Namespace) -> int:
    import logging

    from fastapi.testclient import TestClient

    from gateway.api import create_app
    from gateway.auth import create_token
    from gateway.config import GatewaySettings
    from gateway.storage import Storage

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    with tempfile.TemporaryDirectory(prefix="storesense-benchq-") as tmp, \
            contextlib.ExitStack() as stack:
        db: str | Path = args.db or Path(tmp) / "q.db"
        if not args.db and args.engine == "postgresql":
            db = stack.enter_context(PostgresServer(durable=True)).new_database_url()
        elif not is_postgres(db):
            db = Path(db)
        storage = Storage(db, clock=lambda: NOW)
        t0 = time.perf_counter()
        if storage._conn.execute("SELECT COUNT(*) FROM rollup_hour").fetchone()[0] == 0:
            _generate(storage._conn, args.stores, args.days, args.hourly_days)
        gen_s = time.perf_counter() - t0
        size = table_bytes(storage._conn)
        storage.reload_registry()
        token = create_token(storage, "bench", "hq")
        rows = {t: storage._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("rollup_hour", "rollup_day", "rollup_block", "pos", "pos_day",
                          "stores")}
        app = create_app(GatewaySettings(), storage, clock=lambda: NOW)
        h = {"Authorization": f"Bearer {token}"}
        today = sorted({NOW.astimezone(ZoneInfo(z)).date() for z, _ in ZONES})
        touched = [d.isoformat() for d in today]
        if args.late:
            touched += [(d - timedelta(days=1)).isoformat() for d in today]
        load = [os.getloadavg()[0]]
        warm = _warm_up(storage, GatewaySettings().status_interval_s) if args.warm else None
        with TestClient(app) as client:
            past = (NOW - timedelta(days=2)).date().isoformat()
            results = [_time(client, url, h, args.runs, lambda: _touch(storage._conn, touched))
                       for url in (f"/api/v1/overview?date={past}", "/api/v1/overview",
                                   "/api/v1/overview?region=region-3",
                                   "/api/v1/overview?franchisee=fr-7&days=28",
                                   "/api/v1/overview?days=7", "/api/v1/overview?days=28",
                                   "/api/v1/overview?days=90",
                                   f"/api/v1/overview?date={past}&days=90")]
        load.append(os.getloadavg()[0])
        storage.close()
    per_row = {t: round(size.get(t, 0) / n, 1) for t, n in rows.items() if n}
    print(json.dumps({"engine": storage.engine, "late": args.late, "touched": touched,
                      "warm_up": warm,
                      "load_1min": [round(x, 2) for x in load],
                      "rows": rows, "generate_s": round(gen_s, 1),
                      "bytes": size, "bytes_per_row": per_row,
                      "rollup_bytes_per_store_year": round(sum(
                          per_row.get(t, 0) * n for t, n in ROWS_PER_STORE_YEAR.items())),
                      "queries": results}))
    return 0
