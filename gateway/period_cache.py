"""Per-store figures of the overview's periods, kept in the gateway's memory between requests.

A period is a sum of units: a local date's traffic (``rollup_day``) and POS (``pos_day``), and
an aligned 7- or 28-day block's traffic and POS (``rollup_block``, gateway/spans.py). A unit
is read once for every store of the chain into an array and kept while its dates are
unchanged. Whether they are is read at every request from ``overview_changes``: two counters
per local date (traffic, POS), bumped by database triggers in the transaction that changes
that date's rollups (``migrate``, migration 016), so a write by any gateway, a POS import or
retention is seen by every gateway's cache. A late window for a past day makes the next
request read that day's traffic and its two blocks' again (4,000 stores each); today's
traffic, changed by every ingest batch, is read at nearly every request (for a scoped
request, its stores only), today's POS when POS arrived. A unit is read as one aggregated
row of text (``_read_aggregated``): 4,000 rows as Python tuples cost ~10 ms of CPU.

The counters are read before the units, so a unit read while a write commits is at least as
new as the counter it is kept under: at worst read once more, never kept stale.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
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
MAX_CUTS = 8  # cuts of those kept (one per zone group and minute; 32 kB each)

# ("day" | "pos", "YYYY-MM-DD") or ("block" | "posblock", "<size>:<start>"): a block's traffic
# and its POS are two units, so a late window reads the traffic columns again, not the POS
Unit = tuple[str, str]
_BLOCKS = ("block", "posblock")
_POS = ("pos", "posblock")
Counters = Mapping[str, tuple[int, int]]  # local date -> (traffic, POS) change counters


def unit_dates(unit: Unit) -> list[str]:
    kind, key = unit
    if kind not in _BLOCKS:
        return [key]
    size, start = key.split(":")
    first = date.fromisoformat(start)
    return [(first + timedelta(days=i)).isoformat() for i in range(int(size))]


def span_units(first: date, last: date) -> list[Unit]:
    """[first, last] as the units whose sum it is: whole blocks and loose days."""
    keys, loose = decompose(first, last) if first < last else ([], [first.isoformat()])
    return [*((kind, k) for k in keys for kind in _BLOCKS),
            *((kind, d) for d in loose for kind in ("day", "pos"))]


def stamp(unit: Unit, counters: Counters) -> int:
    """The sum of the counters the unit depends on: they only grow, so any bump changes it."""
    which = 1 if unit[0] in _POS else 0
    return sum(counters.get(d, (0, 0))[which] for d in unit_dates(unit))


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
        self.scoped_reads = 0  # units read for a request's stores only (see _units)
        # the last cuts of last week's hour rows (ended_by), by rows object and minute
        self._cuts: OrderedDict[tuple[int, int, int, float],
                                tuple[HourRows, np.ndarray]] = OrderedDict()

    def chain(self, stores: Mapping[str, Any]) -> _Chain:
        """The cache for these stores (a registry's dict, compared by identity first)."""
        with self._lock:
            if stores is not self._stores:
                ids = tuple(sorted(stores))
                if ids != self._chain.ids:
                    self._chain = _Chain(ids, {s: i for i, s in enumerate(ids)})
                self._stores = stores
            return self._chain

    def held_bytes(self) -> int:
        """Memory held by the kept units and hour rows (their arrays)."""
        with self._lock:
            chain = self._chain
            units = sum(a.nbytes for _, a in chain.units.values())
            hours = sum(sum(getattr(r, f).nbytes for f in ("store", "hour", "visitors",
                                                             "mean_len"))
                        for _, r in chain.hours.values())
            return units + hours

    def figures(self, conn: Database, chain: _Chain, spans: list[tuple[date, date]],
                hour_days: Iterable[str] = (), scope: list[str] | None = None,
                ) -> tuple[list[np.ndarray], dict[str, HourRows]]:
        """Per-store sums, an (n stores, WIDTH) array, over each [first, last]; and the hour
        rows of ``hour_days``. One read of the counters for all of it: on a busy box every
        statement waits for the database's turn on a core. ``scope``: the request needs
        these stores only (see _units)."""
        plans = [span_units(a, b) for a, b in spans]
        needed = {u for plan in plans for u in plan}
        hour_days = sorted(set(hour_days))
        counters = read_counters(conn, [*(d for u in needed for d in unit_dates(u)),
                                        *hour_days])
        got = self._units(conn, chain, needed, counters, scope)
        n = len(chain.ids)
        sums = [sum((got[u] for u in plan), np.zeros((n, WIDTH))) for plan in plans]
        return sums, {d: self._hour_rows(conn, chain, d, counters.get(d, (0, 0))[0])
                      for d in hour_days}

    def _units(self, conn: Database, chain: _Chain, needed: set[Unit],
               counters: Counters, scope: list[str] | None) -> dict[Unit, np.ndarray]:
        """The units, from memory where their stamps still hold. A unit kept before and
        changed since (today's, under live ingest) is read for ``scope``'s stores only and
        not kept: a region's request reads its 200 stores' rows, not the chain's 4,000.
        Any other unit is read for the whole chain and kept."""
        stamps = {u: stamp(u, counters) for u in needed}
        got: dict[Unit, np.ndarray] = {}
        moved: set[Unit] = set()
        with self._lock:
            for u in needed:
                kept = chain.units.get(u)
                if kept is not None and kept[0] == stamps[u]:
                    chain.units.move_to_end(u)
                    got[u] = kept[1]
                elif kept is not None:
                    moved.add(u)
        live = sorted(moved) if scope is not None else []
        stale = sorted(needed - got.keys() - set(live))
        if live:
            got.update(read_units(conn, chain.index, live, scope))
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
        with self._lock:
            self.scoped_reads += len(live)
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

    def ended_by(self, rows: HourRows, n_stores: int, hour: int,
                 elapsed_s: float) -> np.ndarray:
        """``ended_by`` of these hour rows, kept for the last few (rows, minute): requests
        within a minute cut last week's day at the same time."""
        key = (id(rows), n_stores, hour, elapsed_s)
        with self._lock:
            found = self._cuts.get(key)  # the rows are held with it: their id is theirs
            if found is not None and found[0] is rows:
                return found[1]
        value = ended_by(rows, n_stores, hour, elapsed_s)
        value.flags.writeable = False
        with self._lock:
            self._cuts[key] = (rows, value)
            while len(self._cuts) > MAX_CUTS:
                self._cuts.popitem(last=False)
        return value


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


def _positions(index: dict[str, int], stores: Iterable[str], n: int) -> np.ndarray:
    """Each store id's index in the chain, -1 for a store not in the registry."""
    return np.fromiter(map(index.get, stores, repeat(-1)), dtype=np.intp, count=n)


def _fill(out: np.ndarray, slots: np.ndarray, stores: np.ndarray, cols: list[int],
          values: list[np.ndarray]) -> None:
    """Rows (unit slot, store index, figures...) into out[slot, store, col]; rows of stores
    not in the registry are left out, as the overview lists registered stores only."""
    known = stores >= 0
    for col, v in zip(cols, values, strict=True):
        out[slots[known], stores[known], col] = v[known]


# per kind of unit: its table, its key column, and its figures' columns with the column of
# a unit's array each goes to
_UNIT_TABLES: dict[str, tuple[str, str, list[tuple[str, int]]]] = {
    "day": ("rollup_day", "local_date", [("visitors", VISITORS), ("exits", EXITS),
                                         ("zone_visits", ZONE_VISITS),
                                         ("dwell_total_s", DWELL)]),
    "pos": ("pos_day", "local_date", [("transactions", TRANSACTIONS),
                                      ("pos_hours", POS_HOURS)]),
    "block": ("rollup_block", "block", [("visitors", VISITORS), ("zone_visits", ZONE_VISITS),
                                        ("dwell_total_s", DWELL)]),
    "posblock": ("rollup_block", "block", [("transactions", TRANSACTIONS),
                                           ("pos_hours", POS_HOURS)]),
}
_REAL = {"dwell_total_s"}
SCALE = 1152921504606846976  # 2**60


def _exact_parts(conn: Database, col: str) -> tuple[str, str, str]:
    """A REAL column as two integers whose text is exact, its whole part and its fraction
    times 2**60, and a condition under which they give the value back exactly: SQLite's
    text of a REAL keeps 15 digits, and even printf('%!.17g') is off in the last bit now and
    then. A double of magnitude >= 2**-8 has no bit below 2**-60, so its fraction times
    2**60 is an integer; below 4e18 its whole part fits in an integer. A value outside that
    (tiny but not 0, huge, not finite) fails the condition and its unit is read row by row."""
    if conn.engine == "postgresql":  # float8 constants: numeric would round to 15 digits
        scale = f"CAST({SCALE} AS DOUBLE PRECISION)"
        low, high = "CAST(0.00390625 AS DOUBLE PRECISION)", "CAST(4e18 AS DOUBLE PRECISION)"
        fits = f"abs({col}) < {high}"  # a bigint out of range would fail the statement
        hi = f"CASE WHEN {fits} THEN CAST(trunc({col}) AS BIGINT) ELSE 0 END"
        lo = (f"CASE WHEN {fits} THEN CAST(trunc(({col} - trunc({col})) * {scale}) AS BIGINT)"
              " ELSE 0 END")
    else:
        scale, low, high = f"{SCALE}.0", "0.00390625", "4e18"
        hi = f"CAST({col} AS INTEGER)"
        lo = f"CAST(({col} - CAST({col} AS INTEGER)) * {scale} AS INTEGER)"
    return hi, lo, f"{col} = 0 OR (abs({col}) >= {low} AND abs({col}) < {high})"


SEP = "\x1f"  # between texts in one aggregated row: no store id or time holds it


def concat(conn: Database, expr: str, texts: bool = False) -> str:
    """An aggregate joining ``expr`` of every row into one text: separated by commas
    (numbers) or, for ``texts``, by SEP, a control character no identifier may hold."""
    sep = ("chr(31)" if conn.engine == "postgresql" else "char(31)") if texts else "','"
    fn = "string_agg" if conn.engine == "postgresql" else "group_concat"
    return f"{fn}({expr}, {sep})"


def _aggregated_sql(conn: Database, kind: str, n_keys: int, scoped: bool) -> str:
    """One row per unit: its store ids and each figure as comma-separated text, aggregated
    by the engine (4,000 rows turned into Python tuples one by one cost ~10 ms of CPU; the
    text, ~1). Every aggregate of a group is fed the group's rows in the same order, so
    the i-th value of each list belongs to the i-th store id."""
    table, key, cols = _UNIT_TABLES[kind]
    text = "CAST({} AS TEXT)"
    parts, checks = [concat(conn, "store_id", texts=True)], []
    for col, _ in cols:
        if col in _REAL:
            hi, lo, exact = _exact_parts(conn, col)
            parts += [concat(conn, text.format(hi)), concat(conn, text.format(lo))]
            checks.append(f"CASE WHEN {exact} THEN 0 ELSE 1 END")
        else:
            parts.append(concat(conn, text.format(col)))
    inexact = f"SUM({' + '.join(checks)})" if checks else "0"
    return (f"SELECT {key}, COUNT(*), {inexact}, {', '.join(parts)} FROM {table} "
            f"WHERE {key} IN ({', '.join('?' * n_keys)}){_scope_sql(scoped)} GROUP BY {key}")


def _scope_sql(scoped: bool) -> str:
    """The condition limiting a unit's read to a request's stores (a JSON list parameter)."""
    return " AND store_id IN (SELECT value FROM json_each(?))" if scoped else ""


def _params(keys: list[str], scope: list[str] | None) -> list[Any]:
    """A unit read's parameters: its keys, then the scope's store ids if any."""
    return [*keys, *([json.dumps(scope)] if scope is not None else [])]


_INTEGERS = re.compile(r"-?[0-9]+(?:,-?[0-9]+)*")


def _numbers(text: str, n: int) -> np.ndarray | None:
    """n comma-separated integers (every column read is an integer, or a REAL's integer
    parts) as float64, parsed in C, as integers (4x as fast as floats); None for anything
    else, such as a REAL that SQLite let into an INTEGER column ("3.5")."""
    plain = text.replace(",", "")
    if "-" in plain:  # a negative value, rare: the full check
        ok = _INTEGERS.fullmatch(text) is not None
    else:  # digits and single commas only: each item an integer (a regex costs 0.5 ms)
        ok = (plain.isascii() and plain.isdigit() and text.count(",") == n - 1
              and ",," not in text and text[0] != "," and text[-1] != ",")
    if not ok:
        return None
    try:
        got = np.fromstring(text, dtype=np.int64, sep=",")
    except ValueError:  # an integer beyond int64
        return None
    return got.astype(np.float64) if len(got) == n else None


def _read_aggregated(conn: Database, kind: str, keys: list[str], index: dict[str, int],
                     scope: list[str] | None) -> dict[str, np.ndarray] | None:
    """Each unit's (n stores, WIDTH) array from one aggregated row per unit; None when a
    unit's text does not give its figures back exactly (then the rows are read)."""
    _, _, cols = _UNIT_TABLES[kind]
    out: dict[str, np.ndarray] = {}
    for row in conn.tuples().execute(
            _aggregated_sql(conn, kind, len(keys), scope is not None), _params(keys, scope)):
        key, count, inexact, ids_text, *texts = row
        ids = ids_text.split(SEP)
        if inexact or len(ids) != count:
            return None
        values = [_numbers(t, count) for t in texts]
        if any(v is None for v in values):
            return None
        stores = _positions(index, ids, count)
        known = stores >= 0
        a = np.zeros((len(index), WIDTH))
        it = iter(v for v in values if v is not None)
        for col, dest in cols:
            v = next(it)
            if col in _REAL:
                v = v + next(it) * (1.0 / SCALE)  # exact: see _exact_parts
            a[stores[known], dest] = v[known]
        out[key] = a
    return out


def _read_rows(conn: Database, kind: str, keys: list[str], index: dict[str, int],
               scope: list[str] | None) -> dict[str, np.ndarray]:
    """The same as _read_aggregated, row by row."""
    table, key, cols = _UNIT_TABLES[kind]
    got = _fetch(conn, f"SELECT {key}, store_id, {', '.join(c for c, _ in cols)} FROM {table} "
                 f"WHERE {key} IN ({', '.join('?' * len(keys))}){_scope_sql(scope is not None)}",
                 _params(keys, scope), ["key", "key", *(["n"] * len(cols))])
    slot = {k: i for i, k in enumerate(keys)}
    out = np.zeros((len(keys), len(index), WIDTH))
    _fill(out, np.fromiter(map(slot.__getitem__, got["f0"]), np.intp, len(got)),
          _positions(index, got["f1"], len(got)), [d for _, d in cols],
          [got[f"f{2 + i}"] for i in range(len(cols))])
    return {k: out[i] for i, k in enumerate(keys)}


def read_units(conn: Database, index: dict[str, int], units: list[Unit],
               scope: list[str] | None = None) -> dict[Unit, np.ndarray]:
    """Every store's figures for each unit (only ``scope``'s stores when given, the others
    0): one statement per table, whatever the count."""
    out: dict[Unit, np.ndarray] = {}
    for kind in _UNIT_TABLES:
        keys = [k for u, k in units if u == kind]
        if not keys:
            continue
        got = _read_aggregated(conn, kind, keys, index, scope)
        if got is None:
            got = _read_rows(conn, kind, keys, index, scope)
        zeros = np.zeros((len(index), WIDTH))
        out.update({(kind, k): _frozen(got.get(k, zeros)) for k in keys})
    return out


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
    idx = _positions(index, got["f0"], len(got))
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


def _watched_events() -> Iterator[tuple[str, str, str]]:
    """(trigger head "CREATE TRIGGER ... AFTER <event> ON <table>", the counter it bumps,
    the rows that carry the date: OLD for a delete, NEW otherwise) per watched event."""
    for table, events, counter in _WATCHED:
        for event in events:
            head = f"CREATE TRIGGER {table}_{event.lower()}_overview AFTER {event} ON {table}"
            yield head, counter, "OLD" if event == "DELETE" else "NEW"


def _sqlite_triggers(c: Database) -> None:
    # SQLite has row triggers only: once per row changed (a batch upserts one
    # rollup_chain_day row per local date)
    for head, counter, row in _watched_events():
        c.execute(
            f"{head} BEGIN INSERT INTO overview_changes (local_date, {counter}) "
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
    for head, counter, rows in _watched_events():
        c.execute(f"{head} REFERENCING {rows} TABLE AS changed FOR EACH STATEMENT "
                  f"EXECUTE FUNCTION overview_changed_{counter}()")
