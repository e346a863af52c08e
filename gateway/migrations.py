"""Versioned schema changes, in the spirit of sqlite-utils' Migrations.

Each migration has a name and runs once; the ``_migrations`` table records what ran, so
``apply`` is safe to call on every start and from several processes (it takes the write lock).
Never edit a released migration: append a new one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.db import Database
from storesense.schema import AGE_BANDS, GENDERS, utcnow

Migration = tuple[str, Callable[[Database], None]]

# rollup_day columns per demographic key, in schema order, "unknown" last in each group
DEMO_KEYS: tuple[tuple[str, str], ...] = (
    *(("age", b) for b in (*AGE_BANDS, "unknown")),
    *(("gender", g) for g in (*GENDERS, "unknown")),
)
DEMO_COLUMNS: tuple[str, ...] = tuple(f"demo_{i}" for i in range(len(DEMO_KEYS)))
HIST_COLS = ", ".join(f"h{i} INTEGER NOT NULL DEFAULT 0" for i in range(11))


def _script(c: Database, sql: str) -> None:
    # executescript() would COMMIT the migration's open transaction; run statement by statement.
    for stmt in sql.split(";"):
        if stmt.strip():
            c.execute(stmt)


def _m001_core(c: Database) -> None:
    _script(c,
        """
        CREATE TABLE windows (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT UNIQUE NOT NULL,
            store_id TEXT NOT NULL, camera_id TEXT NOT NULL,
            window_start TEXT NOT NULL, window_end TEXT NOT NULL,
            received_at TEXT NOT NULL, simulated INTEGER NOT NULL DEFAULT 0,
            payload TEXT NOT NULL);
        CREATE INDEX windows_store_start ON windows(store_id, window_start);
        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, topic TEXT NOT NULL,
            reason TEXT NOT NULL, payload BLOB);
        CREATE TABLE stores (
            store_id TEXT PRIMARY KEY, name TEXT NOT NULL, name_zh TEXT NOT NULL DEFAULT '',
            region TEXT NOT NULL DEFAULT '', franchisee TEXT NOT NULL DEFAULT '',
            timezone TEXT NOT NULL, open_hour INTEGER NOT NULL DEFAULT 9,
            close_hour INTEGER NOT NULL DEFAULT 21, floorplan BLOB, floorplan_type TEXT,
            updated_at TEXT NOT NULL);
        CREATE TABLE cameras (
            store_id TEXT NOT NULL, camera_id TEXT NOT NULL, role TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '', floorplan_points TEXT, homography TEXT,
            auto_registered INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, camera_id));
        CREATE TABLE device_status (
            store_id TEXT NOT NULL, device_id TEXT NOT NULL, state TEXT NOT NULL,
            sent_at TEXT NOT NULL, received_at TEXT NOT NULL, payload TEXT NOT NULL,
            PRIMARY KEY (store_id, device_id));
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL,
            token_sha256 TEXT UNIQUE NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);
        CREATE TABLE pos (
            store_id TEXT NOT NULL, local_hour TEXT NOT NULL, local_date TEXT NOT NULL,
            transactions INTEGER NOT NULL, revenue REAL,
            PRIMARY KEY (store_id, local_hour));
        CREATE INDEX pos_date ON pos(local_date, store_id);
        """
    )


def _m002_rollups(c: Database) -> None:
    # Hour rows are keyed by the UTC instant the local hour starts, so the repeated hour of a
    # fall-back day stays two rows; local_hour is the label the API groups by.
    counts = (
        "in_count INTEGER NOT NULL DEFAULT 0, out_count INTEGER NOT NULL DEFAULT 0, "
        "visitors INTEGER NOT NULL DEFAULT 0, exits INTEGER NOT NULL DEFAULT 0, "
        "occ_sum REAL NOT NULL DEFAULT 0, "
        "occ_secs REAL NOT NULL DEFAULT 0, occ_max INTEGER NOT NULL DEFAULT 0, "
        "windows INTEGER NOT NULL DEFAULT 0"
    )
    _script(c,
        f"""
        CREATE TABLE rollup_minute (
            store_id TEXT NOT NULL, camera_id TEXT NOT NULL, start_utc TEXT NOT NULL,
            local_minute TEXT NOT NULL, local_date TEXT NOT NULL, {counts},
            PRIMARY KEY (store_id, camera_id, start_utc));
        CREATE INDEX rollup_minute_date ON rollup_minute(local_date, store_id);
        CREATE TABLE rollup_hour (
            store_id TEXT NOT NULL, hour_utc TEXT NOT NULL, local_hour TEXT NOT NULL,
            local_date TEXT NOT NULL, {counts}, PRIMARY KEY (store_id, hour_utc));
        CREATE INDEX rollup_hour_date ON rollup_hour(local_date, store_id);
        CREATE TABLE rollup_day (
            store_id TEXT NOT NULL, local_date TEXT NOT NULL, {counts},
            zone_visits INTEGER NOT NULL DEFAULT 0, dwell_total_s REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, local_date));
        CREATE INDEX rollup_day_date ON rollup_day(local_date, store_id);
        CREATE TABLE zone_day (
            store_id TEXT NOT NULL, camera_id TEXT NOT NULL, zone TEXT NOT NULL,
            local_date TEXT NOT NULL, entries INTEGER NOT NULL DEFAULT 0,
            visits INTEGER NOT NULL DEFAULT 0, stops INTEGER NOT NULL DEFAULT 0,
            dwell_total_s REAL NOT NULL DEFAULT 0, {HIST_COLS},
            PRIMARY KEY (store_id, local_date, camera_id, zone));
        CREATE TABLE transition_day (
            store_id TEXT NOT NULL, local_date TEXT NOT NULL, from_zone TEXT NOT NULL,
            to_zone TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, local_date, from_zone, to_zone));
        CREATE TABLE demographics_day (
            store_id TEXT NOT NULL, local_date TEXT NOT NULL, dimension TEXT NOT NULL,
            key TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (store_id, local_date, dimension, key));
        CREATE TABLE heatmap_day (
            store_id TEXT NOT NULL, camera_id TEXT NOT NULL, local_date TEXT NOT NULL,
            cols INTEGER NOT NULL, rows INTEGER NOT NULL, cells TEXT NOT NULL,
            PRIMARY KEY (store_id, local_date, camera_id));
        """
    )


def _m003_lean_ingest(c: Database) -> None:
    # Minutes are served from the raw windows: a per-window rollup row doubled ingest writes.
    # Demographic keys are fixed by the schema (AGE_BANDS, GENDERS), so they become columns
    # of the daily rollup instead of ~13 upserted rows per store and batch.
    c.execute("DROP TABLE IF EXISTS rollup_minute")
    c.execute("DROP TABLE IF EXISTS demographics_day")
    for col in DEMO_COLUMNS:
        c.execute(f"ALTER TABLE rollup_day ADD COLUMN {col} INTEGER NOT NULL DEFAULT 0")


def _m004_covering_indexes(c: Database) -> None:
    # The overview reads one day of thousands of stores (daily figures, POS, and for "today"
    # last week's hours) and a 28-day trend: with the figures in the index those are
    # index-only scans instead of a row lookup per store and hour.
    for name, table, cols in (
        ("rollup_day_date", "rollup_day",
         "local_date, store_id, visitors, exits, zone_visits, dwell_total_s"),
        ("rollup_hour_date", "rollup_hour",
         "local_date, store_id, local_hour, visitors, occ_secs, windows"),
        ("pos_date", "pos", "local_date, store_id, transactions"),
    ):
        c.execute(f"DROP INDEX IF EXISTS {name}")
        c.execute(f"CREATE INDEX {name} ON {table}({cols})")


def _m005_chain_day(c: Database) -> None:
    # The HQ overview's trend is the whole chain's visitors per local date: one row per date
    # maintained at ingest instead of summing ~4,000 store rows a day for 28 days per request.
    # The device-health read (online flag and last seen per store) becomes index-only.
    _script(c,
        """
        CREATE TABLE rollup_chain_day (
            local_date TEXT PRIMARY KEY, visitors INTEGER NOT NULL DEFAULT 0);
        INSERT INTO rollup_chain_day (local_date, visitors)
            SELECT local_date, SUM(visitors) FROM rollup_day GROUP BY local_date;
        CREATE INDEX device_status_health ON device_status(store_id, state, received_at)
        """
    )


def _m006_no_windows_store_start(c: Database) -> None:
    # Every window insert wrote this index at a random place (one leaf per store in a batch),
    # as it does the unique message_id index, which is ordered the same way
    # ('<store>/<camera>/<start>'): minute queries now read ranges of that one instead.
    c.execute("DROP INDEX IF EXISTS windows_store_start")


def _m007_bounded_dead_letters(c: Database) -> None:
    # Dead letters were stored whole and for ever: a device sending 250 kB of junk grew the
    # file by gigabytes. Now junk keeps a prefix plus its size and sha256, floods are counted
    # per topic and minute instead of stored (gateway/deadletters.py), and windows refused
    # only because their store was not registered yet are marked (replay_store) to be stored
    # once it is. Rows from before keep their size; junk over 4 kB is cut like new junk.
    _script(c,
        """
        ALTER TABLE dead_letters ADD COLUMN size INTEGER;
        ALTER TABLE dead_letters ADD COLUMN sha256 TEXT;
        ALTER TABLE dead_letters ADD COLUMN replay_store TEXT;
        UPDATE dead_letters SET size = length(CAST(payload AS BLOB));
        UPDATE dead_letters SET replay_store = substr(reason, 16, length(reason) - 16)
            WHERE reason LIKE 'unknown store ''%''' AND topic LIKE '%/agg';
        UPDATE dead_letters SET payload = substr(CAST(payload AS BLOB), 1, 4096)
            WHERE replay_store IS NULL AND length(CAST(payload AS BLOB)) > 4096;
        CREATE INDEX dead_letters_received ON dead_letters(received_at);
        CREATE INDEX dead_letters_replay ON dead_letters(replay_store)
            WHERE replay_store IS NOT NULL;
        CREATE TABLE dead_letter_counts (
            topic TEXT NOT NULL, minute TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0, last_reason TEXT,
            PRIMARY KEY (topic, minute))
        """
    )


def _m008_token_expiry(c: Database) -> None:
    # Tokens never expired: a leaked one worked for good. NULL keeps the old ones unexpiring.
    _script(c, "ALTER TABLE tokens ADD COLUMN expires_at TEXT;")


def _m009_members_and_weather(c: Database) -> None:
    # POS hours may carry member and new-member transactions (NULL: not reported, so hours
    # imported before stay out of member figures instead of counting as 0 members); the
    # overview's POS read stays index-only with them in the covering index. Daily weather per
    # store and local date, upserted by the CSV import and the weather feed's push.
    _script(c,
        """
        ALTER TABLE pos ADD COLUMN members INTEGER;
        ALTER TABLE pos ADD COLUMN new_members INTEGER;
        DROP INDEX IF EXISTS pos_date;
        CREATE INDEX pos_date ON pos(local_date, store_id, transactions, members, new_members);
        CREATE TABLE weather_day (
            store_id TEXT NOT NULL, local_date TEXT NOT NULL, condition TEXT NOT NULL,
            precipitation_mm REAL, temperature_c REAL, source TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL, PRIMARY KEY (store_id, local_date));
        CREATE INDEX weather_day_date ON weather_day(local_date, store_id, condition)
        """
    )


def _m010_simulated_windows(c: Database) -> None:
    # Which figures are simulated (the demo's, or a test rig's) must show on every page: the
    # rollups count their simulated windows, and a partial index finds the store-days that
    # have any (none in a real chain, so it stays empty and costs ingest nothing). Windows
    # stored before are counted into the rollups here, by each store's local time.
    from gateway.rollups import local_keys  # rollups imports this module

    _script(c,
        """
        ALTER TABLE rollup_hour ADD COLUMN sim_windows INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE rollup_day ADD COLUMN sim_windows INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX rollup_day_simulated ON rollup_day(local_date, store_id, sim_windows,
            windows) WHERE sim_windows > 0
        """
    )
    zones = {s: ZoneInfo(z) for s, z in c.execute("SELECT store_id, timezone FROM stores")}
    hours: dict[tuple[str, str], int] = defaultdict(int)
    days: dict[tuple[str, str], int] = defaultdict(int)
    for store, start in c.execute(
            "SELECT store_id, window_start FROM windows WHERE simulated <> 0"):
        if store in zones:
            _, day, hour_utc = local_keys(datetime.fromisoformat(start), zones[store])
            hours[(store, hour_utc)] += 1
            days[(store, day)] += 1
    c.executemany("UPDATE rollup_hour SET sim_windows = ? WHERE store_id = ? AND hour_utc = ?",
                  [(n, *k) for k, n in hours.items()])
    c.executemany("UPDATE rollup_day SET sim_windows = ? WHERE store_id = ? AND local_date = ?",
                  [(n, *k) for k, n in days.items()])


def _m011_camera_config_history(c: Database) -> None:
    # Configurations HQ publishes to cameras (and installers save on site), versioned with
    # who and when, so a device's reported version can be named and rolled back.
    from gateway.config_history import migrate  # it imports storage, which imports us

    migrate(c)


def _m012_alerts(c: Database) -> None:
    # Alerts raised and resolved, their webhook deliveries, and each store's occupancy limit.
    from gateway.alerts_store import migrate  # it imports storage, which imports us

    migrate(c)


def _m013_retail_figures(c: Database) -> None:
    # Passes, unique visitors, groups and staff passes per store and local hour, and queues
    # per zone and local day (issue 16; gateway/retail_rollups.py).
    from gateway.retail_rollups import migrate

    migrate(c)
def _m014_period_blocks(c: Database) -> None:
    # Long overview periods (28, 90 days) summed a row per store and day; rollup_block keeps
    # aligned 7- and 28-day blocks (gateway/spans.py) and pos_day a POS row per store and
    # day, so any period reads ~20 rows per store. Filled from what is there.
    from gateway.rollups import rebuild_blocks

    _script(c,
        """
        CREATE TABLE rollup_block (
            block TEXT NOT NULL, store_id TEXT NOT NULL,
            visitors INTEGER NOT NULL DEFAULT 0, zone_visits INTEGER NOT NULL DEFAULT 0,
            dwell_total_s REAL NOT NULL DEFAULT 0, transactions INTEGER NOT NULL DEFAULT 0,
            pos_hours INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (block, store_id));
        CREATE TABLE pos_day (
            local_date TEXT NOT NULL, store_id TEXT NOT NULL,
            transactions INTEGER NOT NULL DEFAULT 0, pos_hours INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (local_date, store_id))
        """
    )
    rebuild_blocks(c)


HEAT_CHUNK = 1000  # heatmap rows converted per statement: memory stays flat on a chain's years


def _m015_heatmap_cells_binary(c: Database) -> None:
    # heatmap_day.cells: a JSON list -> float64 bytes (gateway/heat_cells.py). A portable
    # table swap (SQLite cannot change a column's type), rows copied in primary-key order a
    # chunk at a time.
    from gateway import heat_cells

    c.execute(
        "CREATE TABLE heatmap_cells_day (store_id TEXT NOT NULL, camera_id TEXT NOT NULL, "
        "local_date TEXT NOT NULL, cols INTEGER NOT NULL, rows INTEGER NOT NULL, "
        "cells BLOB NOT NULL, PRIMARY KEY (store_id, local_date, camera_id))")
    after: tuple[str, str, str] = ("", "", "")
    while True:
        chunk = c.execute(
            "SELECT store_id, local_date, camera_id, cols, rows, cells FROM heatmap_day "
            "WHERE (store_id, local_date, camera_id) > (?, ?, ?) "
            "ORDER BY store_id, local_date, camera_id LIMIT ?", (*after, HEAT_CHUNK)).fetchall()
        if not chunk:
            break
        c.executemany(
            "INSERT INTO heatmap_cells_day (store_id, camera_id, local_date, cols, rows, cells) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(r[0], r[2], r[1], r[3], r[4], heat_cells.encode(heat_cells.decode(r[5], r[3], r[4])))
             for r in chunk], distinct=True)
        after = (chunk[-1][0], chunk[-1][1], chunk[-1][2])
    c.execute("DROP TABLE heatmap_day")
    c.execute("ALTER TABLE heatmap_cells_day RENAME TO heatmap_day")


def _m016_overview_changes(c: Database) -> None:
    # The overview keeps past periods' per-store figures in the gateway's memory: a change
    # counter per local date, bumped by triggers whatever writes the rollups, says when to
    # read them again (gateway/period_cache.py).
    from gateway.period_cache import migrate

    migrate(c)


MIGRATIONS: list[Migration] = [
    ("001_core", _m001_core),
    ("002_rollups", _m002_rollups),
    ("003_lean_ingest", _m003_lean_ingest),
    ("004_covering_indexes", _m004_covering_indexes),
    ("005_chain_day", _m005_chain_day),
    ("006_no_windows_store_start", _m006_no_windows_store_start),
    ("007_bounded_dead_letters", _m007_bounded_dead_letters),
    ("008_token_expiry", _m008_token_expiry),
    ("009_members_and_weather", _m009_members_and_weather),
    ("010_simulated_windows", _m010_simulated_windows),
    ("011_camera_config_history", _m011_camera_config_history),
    ("012_alerts", _m012_alerts),
    ("013_retail_figures", _m013_retail_figures),
    ("014_period_blocks", _m014_period_blocks),
    ("015_heatmap_cells_binary", _m015_heatmap_cells_binary),
    ("016_overview_changes", _m016_overview_changes),
]


def apply(conn: Database, migrations: list[Migration] = MIGRATIONS) -> list[str]:
    """Run the migrations not yet recorded; returns their names. Idempotent. Each runs in
    a write transaction, which serialises two gateways starting together (either engine)."""
    with conn.transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    applied: list[str] = []
    for name, fn in migrations:
        with conn.transaction():
            if conn.execute("SELECT 1 FROM _migrations WHERE name=?", (name,)).fetchone():
                continue
            fn(conn)
            conn.execute(
                "INSERT INTO _migrations VALUES (?, ?)", (name, utcnow().isoformat())
            )
        applied.append(name)
    return applied
