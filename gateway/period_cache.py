"""Per-store figures of the overview's periods, kept in the gateway's memory between requests.

A period is a sum of units: a local date's traffic (``rollup_day``) and POS (``pos_day``), or
an aligned 7- or 28-day block of both (``rollup_block``, gateway/spans.py). A unit is read once
for every store of the chain into an array and kept while its dates are unchanged. Whether
they are is read at every request from ``overview_changes``: two counters per local date
(traffic, POS), bumped by database triggers in the transaction that changes that date's
rollups (``migrate``, migration 016), so a write by any gateway, a POS import or retention is
seen by every gateway's cache. A late window for a past day makes the next request read that
day and its two blocks again (4,000 rows each); today's traffic, changed by every ingest batch,
is read at nearly every request, today's POS when POS arrived.

The counters are read before the units, so a unit read while a write commits is at least as
new as the counter it is kept under: at worst read once more, never kept stale.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import repeat
from typing import Any

import numpy as np

from gateway.db import Database
from gateway.spans import decompose

# the columns of a unit's array, one row per store of the chain
VISITORS, EXITS, ZONE_VISITS, DWELL, TRANSACTIONS, POS_HOURS = range(6)
WIDTH = 6
MAX_UNITS = 256  # ~190 kB each for 4,000 stores: <= ~50 MB; a 90-day overview uses ~30
MAX_HOUR_DATES = 16  # dates of hour rows kept for "today"'s comparison (~1 MB each)

Unit = tuple[str, str]  # ("day" | "pos", "YYYY-MM-DD") or ("block", "<size>:<start>")
Counters = Mapping[str, tuple[int, int]]  # local date -> (traffic, POS) change counters


def unit_dates(unit: Unit) -> list[str]:
    kind, key = unit
    if kind != "block":
        return [key]
    size, start = key.split(":")
    first = date.fromisoformat(start)
    return [(first + timedelta(days=i)).isoformat() for i in range(int(size))]


def span_units(first: date, last: date) -> list[Unit]:
    """[first, last] as the units whose sum it is: whole blocks and loose days."""
    keys, loose = decompose(first, last) if first < last else ([], [first.isoformat()])
    return [*(("block", k) for k in keys), *((kind, d) for d in loose for kind in ("day", "pos"))]


def stamp(unit: Unit, counters: Counters) -> int:
    """The sum of the counters the unit depends on: they only grow, so any bump changes it."""
    kind = unit[0]
    return sum(n * (kind != "pos") + pos * (kind != "day")
               for n, pos in (counters.get(d, (0, 0)) for d in unit_dates(unit)))


@dataclass
class HourRows:
    """A local date's hour rows with windows, for the share of a day ended by a time."""

    store: np.ndarray  # index into the chain's stores
    hour: np.ndarray  # local hour of day, 0-23
    visitors: np.ndarray
    mean_len: np.ndarray  # mean window length in the hour, seconds


@dataclass
class _Chain:
    """What is cached for one set of stores (a new registry with other stores starts over)."""

    ids: tuple[str, ...]
    index: dict[str, int]
    units: OrderedDict[Unit, tuple[int, np.ndarray]] = field(default_factory=OrderedDict)
    hours: OrderedDict[str, tuple[int, HourRows]] = field(default_factory=OrderedDict)


class PeriodCache:
    """One per Storage (``cache_for``); thread-safe: requests run in a thread pool."""

    def __init__(self, max_units: int = MAX_UNITS) -> None:
        self.max_units = max_units
        self._lock = threading.Lock()
        self._chain = _Chain((), {})
        self._stores: object = None
        self.reads = 0  # units read from the database, for tests and the bench

    def chain(self, stores: Mapping[str, Any]) -> _Chain:
        """The cache for these stores (a registry's dict, compared by identity first)."""
        with self._lock:
            if stores is not self._stores:
                ids = tuple(sorted(stores))
                if ids != self._chain.ids:
                    self._chain = _Chain(ids, {s: i for i, s in enumerate(ids)})
                self._stores = stores
            return self._chain

    def figures(self, conn: Database, chain: _Chain, spans: list[tuple[date, date]],
                hour_days: Iterable[str] = ()) -> tuple[list[np.ndarray], dict[str, HourRows]]:
        """Per-store sums, an (n stores, WIDTH) array, over each [first, last]; and the hour
        rows of ``hour_days``. One read of the counters for all of it: on a busy box every
        statement waits for the database's turn on a core."""
        plans = [span_units(a, b) for a, b in spans]
        needed = {u for plan in plans for u in plan}
        hour_days = sorted(set(hour_days))
        counters = read_counters(conn, [*(d for u in needed for d in unit_dates(u)),
                                        *hour_days])
        got = self._units(conn, chain, needed, counters)
        n = len(chain.ids)
        sums = [sum((got[u] for u in plan), np.zeros((n, WIDTH))) for plan in plans]
        return sums, {d: self._hour_rows(conn, chain, d, counters.get(d, (0, 0))[0])
                      for d in hour_days}

    def _units(self, conn: Database, chain: _Chain, needed: set[Unit],
               counters: Counters) -> dict[Unit, np.ndarray]:
        stamps = {u: stamp(u, counters) for u in needed}
        got: dict[Unit, np.ndarray] = {}
        with self._lock:
            for u in needed:
                kept = chain.units.get(u)
                if kept is not None and kept[0] == stamps[u]:
                    chain.units.move_to_end(u)
                    got[u] = kept[1]
        stale = sorted(needed - got.keys())
        if stale:
            fresh = read_units(conn, chain.index, stale)
            with self._lock:
                self.reads += len(stale)
                for u in stale:
                    chain.units[u] = (stamps[u], fresh[u])
                    chain.units.move_to_end(u)
                while len(chain.units) > self.max_units:
                    chain.units.popitem(last=False)
            got.update(fresh)
        return got

    def _hour_rows(self, conn: Database, chain: _Chain, day: str, now: int) -> HourRows:
        """``day``'s hour rows with windows, read again when its traffic counter moved."""
        with self._lock:
            kept = chain.hours.get(day)
            if kept is not None and kept[0] == now:
                chain.hours.move_to_end(day)
                return kept[1]
        rows = read_hour_rows(conn, chain.index, day)
        with self._lock:
            self.reads += 1
            chain.hours[day] = (now, rows)
            while len(chain.hours) > MAX_HOUR_DATES:
                chain.hours.popitem(last=False)
        return rows


_caches: weakref.WeakKeyDictionary[object, PeriodCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(owner: object) -> PeriodCache:
    """The cache of one database's reader (the gateway's Storage), made on first use."""
    with _caches_lock:
        found = _caches.get(owner)
        if found is None:
            found = _caches[owner] = PeriodCache()
        return found


# ------------------------------------------------------------------ reads


def read_counters(conn: Database, dates: Iterable[str]) -> dict[str, tuple[int, int]]:
    days = sorted(set(dates))
    if not days:
        return {}
    return {d: (n, pos) for d, n, pos in conn.tuples().execute(
        "SELECT local_date, n, pos_n FROM overview_changes WHERE local_date BETWEEN ? AND ?",
        (days[0], days[-1]))}


def _fetch(conn: Database, sql: str, params: Any, kinds: list[str]) -> np.ndarray:
    """A statement's rows as a structured array, field i of kind kinds[i] ("key": text,
    "n": a figure). Consumed row by row: no list of thousands of row tuples that would
    live through the request's garbage collections into the oldest generation, whose
    collection then walks every object of the process (50-100 ms, every ~20 requests)."""
    dtype = np.dtype([(f"f{i}", object if k == "key" else np.float64)
                      for i, k in enumerate(kinds)])
    return np.fromiter(conn.tuples().execute(sql, params), dtype=dtype)


def _positions(index: dict[str, int], stores: np.ndarray) -> np.ndarray:
    """Each store id's index in the chain, -1 for a store not in the registry."""
    return np.array(list(map(index.get, stores, repeat(-1))), dtype=np.intp)


def _fill(out: np.ndarray, slots: np.ndarray, stores: np.ndarray, cols: list[int],
          values: list[np.ndarray]) -> None:
    """Rows (unit slot, store index, figures...) into out[slot, store, col]; rows of stores
    not in the registry are left out, as the overview lists registered stores only."""
    known = stores >= 0
    for col, v in zip(cols, values, strict=True):
        out[slots[known], stores[known], col] = v[known]


# per kind of unit: the statement reading every store's rows of some units (their keys in
# the IN list), and the columns its figures go to
_UNIT_READS: dict[str, tuple[str, list[int]]] = {
    "day": ("SELECT local_date, store_id, visitors, exits, zone_visits, dwell_total_s "
            "FROM rollup_day WHERE local_date IN ({})", [VISITORS, EXITS, ZONE_VISITS, DWELL]),
    "pos": ("SELECT local_date, store_id, transactions, pos_hours FROM pos_day "
            "WHERE local_date IN ({})", [TRANSACTIONS, POS_HOURS]),
    "block": ("SELECT block, store_id, visitors, zone_visits, dwell_total_s, transactions, "
              "pos_hours FROM rollup_block WHERE block IN ({})",
              [VISITORS, ZONE_VISITS, DWELL, TRANSACTIONS, POS_HOURS]),
}


def read_units(conn: Database, index: dict[str, int],
               units: list[Unit]) -> dict[Unit, np.ndarray]:
    """Every store's figures for each unit: one statement per table, whatever the count."""
    out = np.zeros((len(units), len(index), WIDTH))
    for kind, (sql, cols) in _UNIT_READS.items():
        keys = [k for u, k in units if u == kind]
        if not keys:
            continue
        slot = {k: i for i, (u, k) in enumerate(units) if u == kind}
        got = _fetch(conn, sql.format(", ".join("?" * len(keys))), keys,
                    ["key", "key", *(["n"] * len(cols))])
        _fill(out, np.array(list(map(slot.__getitem__, got["f0"])), dtype=np.intp),
              _positions(index, got["f1"]), cols, [got[f"f{2 + i}"] for i in range(len(cols))])
    return {u: _frozen(out[i]) for i, u in enumerate(units)}


def _frozen(a: np.ndarray) -> np.ndarray:
    """A unit's own copy, read-only: cached arrays are shared by concurrent requests, and a
    view would keep the whole batch read with it alive after the cache dropped the unit."""
    a = a.copy()
    a.flags.writeable = False
    return a


def read_hour_rows(conn: Database, index: dict[str, int], day: str) -> HourRows:
    got = _fetch(conn, "SELECT store_id, CAST(substr(local_hour, 12, 2) AS INTEGER), visitors, "
                "occ_secs / windows FROM rollup_hour WHERE local_date = ? AND windows > 0",
                (day,), ["key", "n", "n", "n"])
    idx = _positions(index, got["f0"])
    known = idx >= 0
    return HourRows(store=idx[known], hour=got["f1"].astype(np.intp)[known],
                    visitors=got["f2"][known], mean_len=got["f3"][known])


def ended_by(rows: HourRows, n_stores: int, hour: int, elapsed_s: float) -> np.ndarray:
    """Visitors per store in windows that had ended by ``hour``:00 + elapsed_s, local time.

    Whole hours before ``hour`` count fully. Of the hour itself, rollups keep no minutes, so
    with mean window length L the share of its windows ended by then is
    (elapsed - L) / (3600 - L): hourly windows count nothing, minute windows almost exactly
    the elapsed minutes, matching today, whose unfinished window has not arrived yet.
    Rounded per store to whole visitors. Pure: arrays in, array out.
    """
    length = rows.mean_len
    counts = (length < 3600) & (elapsed_s > length) & (rows.hour == hour)
    share = np.zeros_like(rows.visitors)
    # visitors * (elapsed - L) / (3600 - L), in that order, where the hour counts
    share[counts] = (rows.visitors[counts] * (elapsed_s - length[counts])
                     / (3600.0 - length[counts]))
    part = np.where(rows.hour < hour, rows.visitors, share)
    return np.rint(np.bincount(rows.store, weights=part, minlength=n_stores))


# ------------------------------------------------------------------ schema


# Tables whose change changes an overview figure, and the statements that bump their dates.
# rollup_day, rollup_hour and rollup_block change at ingest only together with
# rollup_chain_day (gateway/rollups.py upserts it for every local date of a batch, even when
# it adds 0 visitors), so one trigger there stands for the three: a trigger per store row of
# rollup_day made its upsert 2.2x as slow on SQLite (2.2 -> 4.9 us a row). Deleting rows
# (retention) does not touch rollup_chain_day: those deletes have triggers of their own.
# rollup_block is only ever rebuilt whole from the day rows (rebuild_blocks, by a migration
# or a bench's generator), to the same figures.
# (table, events, counter bumped): n for traffic, pos_n for POS
_WATCHED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("rollup_chain_day", ("INSERT", "UPDATE", "DELETE"), "n"),
    ("rollup_day", ("DELETE",), "n"),
    ("rollup_hour", ("DELETE",), "n"),
    ("pos_day", ("INSERT", "UPDATE", "DELETE"), "pos_n"),
)


def migrate(c: Database) -> None:
    c.execute("CREATE TABLE overview_changes (local_date TEXT PRIMARY KEY, "
              "n INTEGER NOT NULL DEFAULT 0, pos_n INTEGER NOT NULL DEFAULT 0)")
    if c.engine == "postgresql":
        _postgres_triggers(c)
    else:
        _sqlite_triggers(c)


def _sqlite_triggers(c: Database) -> None:
    # SQLite has row triggers only: once per row changed (a batch upserts one
    # rollup_chain_day row per local date)
    for table, events, counter in _WATCHED:
        for event in events:
            row = "OLD" if event == "DELETE" else "NEW"
            c.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_overview AFTER {event} ON {table} "
                f"BEGIN INSERT INTO overview_changes (local_date, {counter}) "
                f"VALUES ({row}.local_date, 1) ON CONFLICT (local_date) DO UPDATE SET "
                f"{counter} = overview_changes.{counter} + 1; END")


def _postgres_triggers(c: Database) -> None:
    # Statement triggers with the statement's rows as a table: one upsert per statement
    # (a multi-row INSERT of 1,000 rows), not one per row. search_path pinned: the function
    # finds the table of the schema it was made in, whichever session writes.
    for counter in ("n", "pos_n"):
        c.execute(
            f"CREATE FUNCTION overview_changed_{counter}() RETURNS trigger LANGUAGE plpgsql "
            f"SET search_path FROM CURRENT AS $$ BEGIN "
            f"INSERT INTO overview_changes (local_date, {counter}) SELECT DISTINCT "
            f"local_date, 1 FROM changed ON CONFLICT (local_date) DO UPDATE SET "
            f"{counter} = overview_changes.{counter} + 1; RETURN NULL; END $$")
    for table, events, counter in _WATCHED:
        for event in events:
            rows = "OLD" if event == "DELETE" else "NEW"
            c.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_overview AFTER {event} ON {table} "
                f"REFERENCING {rows} TABLE AS changed FOR EACH STATEMENT "
                f"EXECUTE FUNCTION overview_changed_{counter}()")
