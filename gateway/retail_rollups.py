"""Write side of the retail figures (issue 16): ``RetailBatch`` sums one ingest batch's new
windows beside the main rollups (gateway/rollups.py calls it) and upserts-adds them into
``retail_hour`` (passes, unique visitors, groups, staff passes per store and local hour) and
``queue_day`` (per queue zone and local day); ``migrate`` creates both (migration 013).

Like visitors, the hourly figures count on entrance cameras only. A window from a device that
does not compute them (fields None) counts every pass as a unique visitor and as its own
group: the figures then equal the passes rather than inventing a split.
"""

from __future__ import annotations

from collections import defaultdict

from gateway.db import Database, add_sets
from storesense.schema import DWELL_BIN_EDGES_S, WindowAggregate

N_BINS = len(DWELL_BIN_EDGES_S)
RETAIL_FIELDS = ("passes", "unique_visitors", "groups", "staff_in", "staff_out", "staff_tracks")
QUEUE_FIELDS = ("served", "abandoned", "lost", "len_sum", "len_secs", "len_max",
                *(f"h{i}" for i in range(N_BINS)))


class RetailBatch:
    def __init__(self) -> None:
        self.hour: dict[tuple[str, str], list[int]] = {}
        self.labels: dict[tuple[str, str], tuple[str, str]] = {}
        self.queue: dict[tuple[str, str, str, str], list[float]] = defaultdict(
            lambda: [0.0] * len(QUEUE_FIELDS))

    def add(self, w: WindowAggregate, hour_utc: str, hour: str, date_: str,
            entrance: bool) -> None:
        secs = (w.window_end - w.window_start).total_seconds()
        for q in w.queues:
            acc = self.queue[(w.store_id, date_, w.camera_id, q.zone)]
            acc[0] += q.served
            acc[1] += q.abandoned
            acc[2] += q.lost
            acc[3] += q.length.avg * secs
            acc[4] += secs
            acc[5] = max(acc[5], q.length.max)
            for i, n in enumerate(q.wait_histogram):
                acc[6 + i] += n
        if not entrance:
            return
        ins = sum(x.in_count for x in w.lines)
        staff = w.staff
        row = (ins, ins if w.unique_visitors is None else w.unique_visitors,
               ins if w.groups is None else w.groups,
               staff.in_count if staff else 0, staff.out_count if staff else 0,
               staff.tracks if staff else 0)
        key = (w.store_id, hour_utc)
        acc_h = self.hour.get(key)
        if acc_h is None:
            acc_h = self.hour[key] = [0] * len(RETAIL_FIELDS)
            self.labels[key] = (hour, date_)
        for i, n in enumerate(row):
            acc_h[i] += n

    def flush(self, conn: Database) -> None:
        cols = ("store_id", "hour_utc", "local_hour", "local_date", *RETAIL_FIELDS)
        # portable upserts (docs/gateway.md): conflict key named, stored row by its table,
        # keys sorted so two gateways' batches lock rows in one order
        sets = add_sets(RETAIL_FIELDS, "retail_hour")
        conn.executemany(
            f"INSERT INTO retail_hour ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT (store_id, hour_utc) DO UPDATE SET {sets}",
            [(*k, *self.labels[k], *v) for k, v in sorted(self.hour.items())], distinct=True)
        qsets = add_sets(QUEUE_FIELDS, "queue_day", maxed=("len_max",))
        conn.executemany(
            f"INSERT INTO queue_day (store_id, local_date, camera_id, zone, "
            f"{', '.join(QUEUE_FIELDS)}) VALUES ({', '.join('?' * (4 + len(QUEUE_FIELDS)))}) "
            f"ON CONFLICT (store_id, local_date, camera_id, zone) DO UPDATE SET {qsets}",
            [(*k, *v) for k, v in sorted(self.queue.items())], distinct=True)


def clamp_split(counts: dict[str, int], cap: int) -> dict[str, int]:
    """Counts scaled down to sum to at most ``cap`` (largest remainders keep the rounding
    honest); unchanged when they already fit."""
    total = sum(counts.values())
    if total <= cap:
        return dict(counts)
    cap = max(0, cap)
    exact = {k: n * cap / total for k, n in counts.items()}
    out = {k: int(v) for k, v in exact.items()}
    rest = cap - sum(out.values())
    for k in sorted(exact, key=lambda k: (out[k] - exact[k], k))[:rest]:
        out[k] += 1
    return out


def migrate(c: Database) -> None:
    """Migration 013: the tables above (empty: older windows carry none of these fields)."""
    fields = ", ".join(f"{f} INTEGER NOT NULL DEFAULT 0" for f in RETAIL_FIELDS)
    c.execute(
        f"CREATE TABLE retail_hour (store_id TEXT NOT NULL, hour_utc TEXT NOT NULL, "
        f"local_hour TEXT NOT NULL, local_date TEXT NOT NULL, {fields}, "
        f"PRIMARY KEY (store_id, hour_utc))")
    c.execute("CREATE INDEX retail_hour_date ON retail_hour(local_date, store_id)")
    qf = ", ".join(f"{f} REAL NOT NULL DEFAULT 0" if f in ("len_sum", "len_secs")
                   else f"{f} INTEGER NOT NULL DEFAULT 0" for f in QUEUE_FIELDS)
    c.execute(
        f"CREATE TABLE queue_day (store_id TEXT NOT NULL, local_date TEXT NOT NULL, "
        f"camera_id TEXT NOT NULL, zone TEXT NOT NULL, {qf}, "
        f"PRIMARY KEY (store_id, local_date, camera_id, zone))")
