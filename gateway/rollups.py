"""Store-local rollups maintained incrementally at ingest.

A window belongs to the local hour and day of its ``window_start`` in the store's time
zone. Hour rows are keyed by the UTC instant at which that local hour starts, so a fall-back
day keeps its repeated hour as two rows (25 rows) and a spring-forward day has 23; half-hour
zones (Asia/Kolkata) work because the local hour is floored in local time, not in UTC.

``RollupBatch`` sums the windows of one ingest batch in memory and then upserts with
``x = x + excluded.x`` in the caller's transaction. Only windows that were newly inserted are
added, so a redelivered window never counts twice.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np

from gateway import heat_cells
from gateway.db import Database, add_sets, postgres_sql
from gateway.migrations import DEMO_COLUMNS, DEMO_KEYS
from gateway.retail_rollups import RetailBatch
from gateway.spans import blocks_of
from storesense.schema import WindowAggregate

N_BINS = 11
# exits: out_count on entrance cameras, so people in the store = visitors - exits since the
# local day started (gateway/queries.py); sim_windows: windows marked simulated
COUNT_FIELDS = ("in_count", "out_count", "visitors", "exits", "occ_sum", "occ_secs", "occ_max",
                "windows", "sim_windows")
DEMO_INDEX = {key: i for i, key in enumerate(DEMO_KEYS)}
_DAY_EXTRA = ("zone_visits", "dwell_total_s", *DEMO_COLUMNS)
_VISITORS = COUNT_FIELDS.index("visitors")
_ZV = len(COUNT_FIELDS)  # index of zone_visits in a day accumulator
_DEMO0 = _ZV + 2
_DAY_LEN = len(COUNT_FIELDS) + len(_DAY_EXTRA)
_AGE_AT = {k: _DEMO0 + i for (dim, k), i in DEMO_INDEX.items() if dim == "age"}
_GENDER_AT = {k: _DEMO0 + i for (dim, k), i in DEMO_INDEX.items() if dim == "gender"}


# A batch holds thousands of windows sharing a few window starts, so formatting is cached.
# Cache keys are UTC datetimes: two local times that differ only by DST fold compare equal
# and hash alike, so a zone-aware key would mix up the repeated hour.
def utc_text(t: datetime) -> str:
    """The storage format of instants: 'YYYY-MM-DDTHH:MM:SSZ'."""
    return _utc_text(t.astimezone(UTC))


@lru_cache(maxsize=65536)
def _utc_text(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def local_keys(start: datetime, tz: ZoneInfo) -> tuple[str, str, str]:
    """(local hour label, local date, UTC start of the local hour)."""
    return _local_keys(start.astimezone(UTC), tz)


@lru_cache(maxsize=65536)
def _local_keys(start: datetime, tz: ZoneInfo) -> tuple[str, str, str]:
    local = start.astimezone(tz)
    hour_start = local.replace(minute=0, second=0, microsecond=0)  # keeps the DST fold
    label = local.strftime("%Y-%m-%dT%H:00")
    return label, label[:10], utc_text(hour_start)


class RollupBatch:
    """Sums of one batch of new windows, keyed like the rollup tables' primary keys."""

    def __init__(self) -> None:
        self.hour: dict[tuple[str, str], list[float]] = {}
        self.hour_labels: dict[tuple[str, str], tuple[str, str]] = {}
        self.day: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * _DAY_LEN)
        self.zone: dict[tuple[str, str, str, str], list[float]] = defaultdict(
            lambda: [0.0] * (4 + N_BINS))
        self.transition: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self.heat: dict[tuple[str, str, str], tuple[int, int, heat_cells.Cells]] = {}
        self.retail = RetailBatch()  # passes, unique visitors, groups, staff, queues

    def add(self, w: WindowAggregate, tz: ZoneInfo, entrance: bool) -> None:
        # Inlined (no helper calls, no per-field loops): this runs once per ingested window.
        hour, date, hour_utc = local_keys(w.window_start, tz)
        s = w.store_id
        ins = outs = 0
        for x in w.lines:
            ins += x.in_count
            outs += x.out_count
        secs = (w.window_end - w.window_start).total_seconds()
        occ_sum, mx = w.occupancy.avg * secs, w.occupancy.max
        vis, ex = (ins, outs) if entrance else (0, 0)
        sim = 1 if w.simulated else 0
        key = (s, hour_utc)
        hour_acc = self.hour.get(key)
        if hour_acc is None:
            hour_acc = self.hour[key] = [0.0] * len(COUNT_FIELDS)
            self.hour_labels[key] = (hour, date)
        day = self.day[(s, date)]
        for acc in (hour_acc, day):  # the count fields, alike in both
            acc[0] += ins
            acc[1] += outs
            acc[2] += vis
            acc[3] += ex
            acc[4] += occ_sum
            acc[5] += secs
            if mx > acc[6]:
                acc[6] = mx
            acc[7] += 1
            acc[8] += sim
        # zone totals and demographics follow
        for z in w.zones:
            day[_ZV] += z.visits
            day[_ZV + 1] += z.dwell_total_s
            acc = self.zone[(s, date, w.camera_id, z.zone)]
            for i, v in enumerate((z.entries, z.visits, z.stops, z.dwell_total_s,
                                   *z.dwell_histogram)):
                acc[i] += v
        for t in w.transitions:
            self.transition[(s, date, t.from_zone, t.to_zone)] += t.count
        if entrance:  # a vote per visitor: only where visitors are counted (issue 16)
            for k, n in w.demographics.age_bands.items():
                day[_AGE_AT[k]] += n
            for k, n in w.demographics.genders.items():
                day[_GENDER_AT[k]] += n
        self.retail.add(w, hour_utc, hour, date, entrance)
        if w.heatmap is not None:
            self._add_heat((s, date, w.camera_id), w.heatmap.cols, w.heatmap.rows,
                           w.heatmap.cells)

    def _add_heat(self, key: tuple[str, str, str], cols: int, rows: int,
                  cells: list[float]) -> None:
        grid = heat_cells.grid(cells)
        old = self.heat.get(key)
        if old is None or (old[0], old[1]) != (cols, rows):
            # a camera whose grid size changed mid-day keeps only the newer grid
            self.heat[key] = (cols, rows, grid.copy())
            return
        np.add(old[2], grid, out=old[2])

    def flush(self, conn: Database) -> None:
        """Upsert-add everything into the rollup tables (caller holds the transaction)."""
        _upsert_counts(conn, "rollup_hour", ("store_id", "hour_utc"),
                       ("local_hour", "local_date"), self.hour, self.hour_labels)
        self._flush_day(conn)
        self._flush_details(conn)
        _flush_heat(conn, self.heat)
        self.retail.flush(conn)


    def _flush_day(self, conn: Database) -> None:
        fields = (*COUNT_FIELDS, *_DAY_EXTRA)
        conn.executemany(
            f"INSERT INTO rollup_day (store_id, local_date, {', '.join(fields)}) "
            f"VALUES (?, ?, {', '.join('?' * len(fields))}) "
            f"ON CONFLICT (store_id, local_date) DO UPDATE SET {_add_sets(fields, 'rollup_day')}",
            [(*k, *v) for k, v in sorted(self.day.items())], distinct=True,
        )
        add_blocks(conn, {k: (v[_VISITORS], v[_ZV], v[_ZV + 1], 0, 0)
                          for k, v in self.day.items()})
        chain: dict[str, float] = defaultdict(float)  # rollup_chain_day: the chain's visitors
        for (_, date), v in self.day.items():
            chain[date] += v[_VISITORS]
        conn.executemany(
            "INSERT INTO rollup_chain_day (local_date, visitors) VALUES (?, ?) "
            "ON CONFLICT (local_date) DO UPDATE SET visitors = "
            "rollup_chain_day.visitors + excluded.visitors",
            sorted(chain.items()),
        )

    def _flush_details(self, conn: Database) -> None:
        zf = ("entries", "visits", "stops", "dwell_total_s", *(f"h{i}" for i in range(N_BINS)))
        conn.executemany(
            f"INSERT INTO zone_day (store_id, local_date, camera_id, zone, {', '.join(zf)}) "
            f"VALUES (?, ?, ?, ?, {', '.join('?' * len(zf))}) "
            f"ON CONFLICT (store_id, local_date, camera_id, zone) DO UPDATE SET "
            f"{_add_sets(zf, 'zone_day')}",
            [(*k, *v) for k, v in sorted(self.zone.items())], distinct=True,
        )
        conn.executemany(
            "INSERT INTO transition_day VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (store_id, local_date, from_zone, to_zone) DO UPDATE SET "
            "count = transition_day.count + excluded.count",
            [(*k, v) for k, v in sorted(self.transition.items())],
        )


def _add_sets(fields: tuple[str, ...], table: str) -> str:
    return add_sets(fields, table, maxed=("occ_max",))


def _upsert_counts(
    conn: Database, table: str, keys: tuple[str, ...], labels: tuple[str, ...],
    sums: dict[tuple[str, str], list[float]], label_values: dict[tuple[str, str], tuple[str, str]],
) -> None:
    cols = (*keys, *labels, *COUNT_FIELDS)
    conn.executemany(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {_add_sets(COUNT_FIELDS, table)}",
        [(*k, *label_values[k], *v) for k, v in sorted(sums.items())], distinct=True,
    )


def _flush_heat(
    conn: Database, heat: dict[tuple[str, str, str], tuple[int, int, heat_cells.Cells]]
) -> None:
    """Add the batch's grids to the stored ones: a read of the rows concerned per local date
    in the batch (one or two) and one multi-row upsert (the caller's write transaction keeps
    other writers out between)."""
    stores_by_date: dict[str, set[str]] = defaultdict(set)
    for store, date, _ in heat:
        stores_by_date[date].add(store)
    stored = {(r[0], r[1], r[2]): (r[3], r[4], r[5])
              for date, stores in sorted(stores_by_date.items())
              for r in _stored_heat(conn, date, sorted(stores))}
    rows = []
    for key, (cols, nrows, cells) in sorted(heat.items()):
        old = stored.get(key)
        if old is not None and (old[0], old[1]) == (cols, nrows):
            cells = cells + heat_cells.decode(old[2], cols, nrows)
        store, date, camera = key
        # three decimals, as the JSON rows before migration 015 kept: the edge sends cells
        # in three decimals, so its sums lose nothing, and the API answers as it did
        rows.append((store, camera, date, cols, nrows, heat_cells.encode(np.round(cells, 3))))
    if conn.engine == "postgresql" and len(rows) > 1:
        _upsert_heat_copied(conn, rows)
        return
    conn.executemany(
        f"INSERT INTO heatmap_day ({', '.join(_HEAT_COLUMNS)}) "
        f"VALUES (?, ?, ?, ?, ?, ?) {_HEAT_CONFLICT}", rows, distinct=True)


_HEAT_COLUMNS = ("store_id", "camera_id", "local_date", "cols", "rows", "cells")
_HEAT_CONFLICT = ("ON CONFLICT (store_id, local_date, camera_id) DO UPDATE "
                  "SET cols=excluded.cols, rows=excluded.rows, cells=excluded.cells")


def _upsert_heat_copied(conn: Database, rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: the grids COPYed into a temporary table (emptied at commit, rolled back
    with the transaction), then upserted from it in one statement. A multi-row INSERT of
    4,000 24 kB grids cost the client ~90-106 us of CPU a grid (psycopg sending 24 MB
    statements) and the server 170-175; this ~10 and ~150 (measured 2026-12-06)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS heat_in (LIKE heatmap_day) "
                 "ON COMMIT DELETE ROWS")
    conn.insert_many("heat_in", _HEAT_COLUMNS, rows)
    columns = ", ".join(_HEAT_COLUMNS)
    conn.execute(f"INSERT INTO heatmap_day ({columns}) SELECT {columns} FROM heat_in "
                 f"{_HEAT_CONFLICT}")


_STORED_HEAT = ("SELECT store_id, local_date, camera_id, cols, rows, cells FROM heatmap_day "
                "WHERE local_date = ? AND store_id IN (SELECT value FROM json_each(?))")


def _stored_heat(conn: Database, date: str, stores: list[str]) -> Iterable[Sequence[Any]]:
    """The stored grids of ``stores`` on ``date``. PostgreSQL sends them in binary: as text
    a 24 kB grid is 48 kB of hex that the server writes and the client parses (measured
    2026-12-06, 4,000 64x48 grids: 85-120 against 34-45 us of client CPU a grid, 48-55
    against 20-28 us of the server's)."""
    params = (date, json.dumps(stores))
    if conn.engine == "postgresql":
        return cast(Iterable[Sequence[Any]],
                    conn.raw.execute(postgres_sql(_STORED_HEAT), params, binary=True))
    return cast(Iterable[Sequence[Any]], conn.execute(_STORED_HEAT, params))


# visitors, zone_visits, dwell_total_s, transactions, pos_hours (POS hours stored: a store
# with none has no POS, which is not 0 transactions)
BlockSums = tuple[float, float, float, float, float]
_BLOCK_FIELDS = ("visitors", "zone_visits", "dwell_total_s", "transactions", "pos_hours")


def add_blocks(conn: Database, days: dict[tuple[str, str], BlockSums]) -> None:
    """Add per (store, local date) sums into the 7- and 28-day blocks holding each date
    (gateway/spans.py); caller holds the transaction."""
    _upsert_blocks(conn, _block_sums(days.items()))


def _block_sums(days: Iterable[tuple[tuple[str, str], Sequence[float]]],
                sums: dict[tuple[str, str], list[float]] | None = None,
                at: int = 0) -> dict[tuple[str, str], list[float]]:
    """Per (block, store): the day figures added at positions ``at``.. of BlockSums."""
    sums = {} if sums is None else sums
    for (store, day), v in days:
        for key in blocks_of(day):
            acc = sums.get((key, store))
            if acc is None:
                acc = sums[(key, store)] = [0.0] * len(_BLOCK_FIELDS)
            for i, x in enumerate(v):
                acc[at + i] += x
    return sums


def _upsert_blocks(conn: Database, sums: dict[tuple[str, str], list[float]]) -> None:
    conn.executemany(
        f"INSERT INTO rollup_block (block, store_id, {', '.join(_BLOCK_FIELDS)}) "
        f"VALUES (?, ?, {', '.join('?' * len(_BLOCK_FIELDS))}) "
        f"ON CONFLICT (block, store_id) DO UPDATE SET {_add_sets(_BLOCK_FIELDS, 'rollup_block')}",
        [(*k, *v) for k, v in sorted(sums.items())], distinct=True)


def rebuild_blocks(conn: Database, pos_day: bool = True) -> None:
    """rollup_block (and pos_day from pos, unless told) from rollup_day and pos_day (a
    migration; data generated in bulk), streaming the daily rows: memory grows with
    blocks, not days."""
    conn.execute("DELETE FROM rollup_block")
    if pos_day:
        conn.execute("DELETE FROM pos_day")
        conn.execute("INSERT INTO pos_day (local_date, store_id, transactions, pos_hours) SELECT "
                     "local_date, store_id, SUM(transactions), COUNT(*) FROM pos "
                     "GROUP BY local_date, store_id")
    sums = _block_sums(((r[0], r[1]), r[2:]) for r in conn.execute(
        "SELECT store_id, local_date, visitors, zone_visits, dwell_total_s FROM rollup_day"))
    _block_sums((((r[0], r[1]), r[2:]) for r in conn.execute(
        "SELECT store_id, local_date, transactions, pos_hours FROM pos_day")), sums, at=3)
    _upsert_blocks(conn, sums)
