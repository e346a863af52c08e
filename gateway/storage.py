"""The gateway database: one SQLite file (WAL), one write path, versioned migrations.

Writes go through ``transaction()`` (a process-wide lock plus ``BEGIN IMMEDIATE``, so two
gateway processes sharing the file serialise cleanly). Reads use one connection per thread,
which WAL lets run beside the writer. ``ingest`` is the hot path: validate a batch, dead-letter
the invalid, insert-or-ignore the windows on ``message_id`` and add the new ones to the
rollups, all in ONE transaction, so a batch is either wholly stored or not at all.
Windows must also be believable (gateway/plausible.py: time against the gateway's clock,
counts against what a camera can see); dead letters are bounded (gateway/deadletters.py).
"""

from __future__ import annotations

import fcntl
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway import db, migrations, retention
from gateway.deadletters import (
    PRUNE_EVERY_S,
    DeadLetters,
    DeadLetterSettings,
    Letter,
    replay_rows,
)
from gateway.plausible import Checker, CheckSettings, status_reason
from gateway.registry import CameraRecord, StoreRecord
from gateway.retention import RetentionSettings
from gateway.rollups import RollupBatch, utc_text
from gateway.validate import Rejected, decode_window, parse_message, same_content
from storesense.schema import DeviceStatus, WindowAggregate, utcnow
from storesense.topics import Topics

log = logging.getLogger(__name__)
Synchronous = db.Synchronous
REGISTRY_RELOAD_S = 1.0  # another process may have registered a store; look again this often
CHECKPOINT_S = 1.0  # the WAL is copied into the database file this often, off the write path
WAL_RESTART_PAGES = 16_384  # 64 MiB of 4 KiB pages: past this, start the WAL over
REUSED_ID = "message_id reused with different content (the first copy is kept)"
REPLAY_CHUNK = 5_000  # dead letters replayed per transaction
WINDOW_COLUMNS = ("message_id", "store_id", "camera_id", "window_start", "window_end",
                  "received_at", "simulated", "payload")


@dataclass(frozen=True)
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    dead: int = 0

    def __add__(self, other: IngestResult) -> IngestResult:
        return IngestResult(self.stored + other.stored, self.duplicates + other.duplicates,
                            self.dead + other.dead)


@dataclass(frozen=True)
class StoreInfo:
    store_id: str
    tz: ZoneInfo
    region: str
    franchisee: str
    name: str = ""
    name_zh: str = ""


@dataclass
class Registry:
    """In-memory snapshot of stores and camera roles, used at ingest and for scoping."""

    stores: dict[str, StoreInfo] = field(default_factory=dict)
    roles: dict[tuple[str, str], str] = field(default_factory=dict)
    loaded_at: float = 0.0


class Storage:
    """The database of one gateway. Thread-safe; several processes may share the file."""

    def __init__(self, path: str | Path, topics: Topics | None = None,
                 synchronous: Synchronous = "NORMAL",
                 clock: Callable[[], datetime] = utcnow, checks: CheckSettings | None = None,
                 dead_letters: DeadLetterSettings | None = None,
                 retention: RetentionSettings | None = None) -> None:
        # a SQLite file, or a PostgreSQL URL (gateway/db.py): the chain's shared engine
        self.target: str | Path = path if db.is_postgres(path) else Path(path)
        self.engine: db.Engine = "postgresql" if db.is_postgres(path) else "sqlite"
        # stamps received_at and is what windows' times are judged against; injectable so
        # tests can pin it
        self.clock = clock
        self.checker = Checker(checks)
        self.dead_letters = DeadLetters(dead_letters)
        self.retention = retention or RetentionSettings()
        self.topics = topics or Topics()
        self._synchronous: Synchronous = synchronous
        self._conn = db.connect(self.target, synchronous)
        self._lock = threading.RLock()
        self._lock_file = (open(self.path.with_name(self.path.name + ".writelock"), "a")  # noqa: SIM115
                           if self.engine == "sqlite" else None)
        self._local = threading.local()
        self._readers: list[db.Database] = []
        with self._writers_queued():
            migrations.apply(self._conn)
        self._closing = threading.Event()
        self._checkpointer = self._start_checkpointer() if self.engine == "sqlite" else None
        self.registry = Registry()
        self.reload_registry()

    # ------------------------------------------------------------------ connections

    @property
    def path(self) -> Path:
        """The SQLite file (PostgreSQL has none)."""
        if not isinstance(self.target, Path):
            raise AttributeError("a PostgreSQL storage has no file path")
        return self.target

    @contextmanager
    def transaction(self) -> Iterator[db.Database]:
        """One write transaction; nested use joins the outer one."""
        with self._lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            with self._writers_queued(), self._conn.transaction():
                yield self._conn

    @contextmanager
    def _writers_queued(self) -> Iterator[None]:
        """Hold the file lock every writing process queues on (with self._lock held).

        Writers in other processes (ingest workers) queue on it and it wakes them at once;
        SQLite's own busy handler polls with sleeps of up to 100 ms. PostgreSQL's writers
        queue on an advisory lock instead (gateway/db.py), taken in the transaction."""
        if self._lock_file is None:
            yield
            return
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def read(self) -> db.Database:
        """This thread's read connection (WAL readers do not block the writer; PostgreSQL
        readers are autocommit, so each statement sees every commit)."""
        conn: db.Database | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = db.connect(self.target, self._synchronous, rows=True)
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    def _start_checkpointer(self) -> threading.Thread:
        """Copy the WAL into the database file from a thread of its own.

        SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages,
        which a batch of 20,000 windows always does: every commit then also copied and
        fsynced the database while holding the write lock that the other ingest processes
        wait on (about 9 of 13 us a message of commit). A PASSIVE checkpoint copies only
        what no reader still needs and never blocks writers. But with writers committing
        all the time it seldom catches up with the last commit, and only then may the WAL
        start over: in a 1M-window drain it grew to 2 GB and every lookup in it slowed. So
        past WAL_RESTART_PAGES the writers are held (file lock) for a RESTART checkpoint,
        which has little left to copy by then.
        """
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        conn = db.connect_sqlite(self.path, self._synchronous)

        def loop() -> None:
            try:
                while not self._closing.wait(CHECKPOINT_S):
                    _, wal_pages, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if wal_pages > WAL_RESTART_PAGES:
                        with self._lock, self._writers_queued():
                            conn.execute("PRAGMA wal_checkpoint(RESTART)")
            finally:
                conn.close()

        thread = threading.Thread(target=loop, name="wal-checkpoint", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        self._closing.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
        with self._lock:
            for c in self._readers:
                c.close()
            self._readers.clear()
            self._conn.close()
            if self._lock_file is not None:
                self._lock_file.close()

    # ------------------------------------------------------------------ registry

    def reload_registry(self) -> Registry:
        stores = {
            r[0]: StoreInfo(r[0], ZoneInfo(r[1]), r[2], r[3], r[4], r[5])
            for r in self._conn.execute(
                "SELECT store_id, timezone, region, franchisee, name, name_zh FROM stores")
        }
        roles = {(r[0], r[1]): r[2] for r in self._conn.execute(
            "SELECT store_id, camera_id, role FROM cameras")}
        self.registry = Registry(stores, roles, time.monotonic())
        return self.registry

    def refresh_registry(self, max_age_s: float) -> None:
        if time.monotonic() - self.registry.loaded_at > max_age_s:
            self.reload_registry()

    def list_stores(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Store records with their cameras, in the shape GET /stores answers."""
        conn = self.read()
        wanted = json.dumps(list(ids))
        cams: dict[str, list[dict[str, Any]]] = {}
        for c in conn.execute(
            "SELECT store_id, camera_id, role, name FROM cameras WHERE store_id IN "
            "(SELECT value FROM json_each(?)) ORDER BY store_id, camera_id", (wanted,)):
            cams.setdefault(c[0], []).append({"camera_id": c[1], "role": c[2], "name": c[3]})
        rows = conn.execute(
            "SELECT store_id, name, name_zh, region, franchisee, timezone, open_hour, "
            "close_hour, floorplan IS NOT NULL AS has_floorplan FROM stores WHERE store_id IN "
            "(SELECT value FROM json_each(?)) ORDER BY store_id", (wanted,))
        return [{**dict(r), "has_floorplan": bool(r["has_floorplan"]),
                 "cameras": cams.get(r["store_id"], [])} for r in rows]

    def set_floorplan(self, store_id: str, image: bytes, content_type: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE stores SET floorplan=?, floorplan_type=? WHERE store_id=?",
                         (image, content_type, store_id))

    def get_floorplan(self, store_id: str) -> tuple[bytes, str] | None:
        row = self.read().execute(
            "SELECT floorplan, floorplan_type FROM stores WHERE store_id=?", (store_id,)
        ).fetchone()
        return None if row is None or row[0] is None else (bytes(row[0]), str(row[1]))

    def upsert_stores(self, records: Iterable[StoreRecord | dict[str, Any]]) -> int:
        recs = [r if isinstance(r, StoreRecord) else StoreRecord.model_validate(r)
                for r in records]
        now = utc_text(self.clock())
        with self.transaction() as conn:
            for r in recs:
                self._upsert_store(conn, r, now)
        self.reload_registry()
        try:  # the registration stands even if this fails: replay-dead-letters retries it
            self.replay_dead_letters([r.store_id for r in recs])
        except Exception:
            log.exception("replaying dead letters of newly registered stores failed")
        return len(recs)

    @staticmethod
    def _upsert_store(conn: db.Database, r: StoreRecord, now: str) -> None:
        conn.execute(
            "INSERT INTO stores (store_id, name, name_zh, region, franchisee, timezone, "
            "open_hour, close_hour, updated_at) VALUES (?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (store_id) DO UPDATE SET name=excluded.name, name_zh=excluded.name_zh, "
            "region=excluded.region, franchisee=excluded.franchisee, "
            "timezone=excluded.timezone, open_hour=excluded.open_hour, "
            "close_hour=excluded.close_hour, updated_at=excluded.updated_at",
            (r.store_id, r.name, r.name_zh, r.region, r.franchisee, r.timezone,
             r.open_hour, r.close_hour, now),
        )
        if r.cameras is not None:
            conn.execute("DELETE FROM cameras WHERE store_id=?", (r.store_id,))
            for c in r.cameras:
                _insert_camera(conn, r.store_id, c, auto=False)

    # ------------------------------------------------------------------ ingest

    def ingest(self, items: Sequence[tuple[str, bytes]]) -> IngestResult:
        """Validate and store one batch of (topic, raw payload) in one transaction."""
        result = self._ingest(items, self.clock())
        self._prune_now_and_then()
        return result

    @contextmanager
    def noting_message_ids(self) -> Iterator[dict[int, str]]:
        """While open, ``ingest`` in this thread notes the message_id of every window it
        decodes, under ``id()`` of its payload object: the ingest's confirmations to the
        edges (gateway/confirm.py) then need not read each payload again (a 64x48 window's
        id lies before 19 kB that a decoder must skip). The keys name payloads only while
        the caller keeps them alive, as a batch being confirmed is."""
        notes: dict[int, str] = {}
        self._local.notes = notes
        try:
            yield notes
        finally:
            self._local.notes = None

    def _ingest(self, items: Sequence[tuple[str, bytes]], judged_at: datetime) -> IngestResult:
        """``ingest``, with windows' times judged against ``judged_at``."""
        windows: list[tuple[WindowAggregate, str]] = []
        statuses: list[tuple[DeviceStatus, str]] = []
        dead: list[Letter] = []
        believable = self.checker.window
        notes: dict[int, str] | None = getattr(self._local, "notes", None)
        for topic, payload in items:
            parsed = parse_message(self.topics, topic, payload)
            if isinstance(parsed, Rejected):
                dead.append(Letter(topic, payload, parsed.reason))
            elif isinstance(parsed, WindowAggregate):
                if notes is not None:
                    notes[id(payload)] = parsed.message_id
                reason = believable(parsed, judged_at)
                if reason is None:
                    windows.append((parsed, payload.decode("utf-8", "replace")))
                else:
                    dead.append(Letter(topic, payload, reason))
            elif (reason := status_reason(parsed)) is not None:
                dead.append(Letter(topic, payload, reason))
            else:
                statuses.append((parsed, payload.decode("utf-8", "replace")))
        return self._write_batch(windows, statuses, dead)

    def stored_copies(self, items: Sequence[tuple[str, bytes]]) -> dict[int, str]:
        """Which of ``items`` repeat a stored window byte for byte, on the topic of its store
        and camera: {index: message_id}. For messages the broker redelivers (DUP): after a
        gateway dies between its commit and its acks, the next one gets back up to a whole
        batch of windows it already stores, and telling them apart here costs a lookup
        instead of decoding 19 kB each (docs/gateway.md). A copy found here is what
        ``ingest`` would count as a duplicate; anything else is left to ``ingest``.

        The id is only looked for in the text (``_quoted_message_id``): a wrong guess just
        finds no identical stored payload, as identical bytes have the same message_id."""
        wanted: dict[str, list[int]] = {}
        for i, (_, payload) in enumerate(items):
            mid = _quoted_message_id(payload)
            if mid is not None:
                wanted.setdefault(mid, []).append(i)
        if not wanted:
            return {}
        found: dict[int, str] = {}
        for mid, store_id, camera_id, stored in _stored_rows(
                self.read(), list(wanted), "store_id, camera_id, payload"):
            topic, raw = self.topics.aggregate(store_id, camera_id), stored.encode()
            found.update((i, mid) for i in wanted[mid] if items[i] == (topic, raw))
        return found

    def store_windows(self, windows: Iterable[WindowAggregate]) -> IngestResult:
        """Store already-validated windows (seeding, tests), same rules as ``ingest`` except
        the plausibility checks: seeded history is older than any ingest horizon."""
        return self._write_batch([(w, w.to_json().decode()) for w in windows], [], [])

    def dead_letter(self, topic: str, payload: bytes | str, reason: str,
                    whole: bool = False) -> None:
        raw = payload.encode() if isinstance(payload, str) else payload
        with self.transaction() as conn:
            self.dead_letters.write(conn, [Letter(topic, raw, reason, whole=whole)],
                                    utc_text(self.clock()))

    def _prune_now_and_then(self) -> None:
        """Dead-letter retention, at most every PRUNE_EVERY_S by the storage's clock."""
        now, last = self.clock(), self.dead_letters.pruned_at
        if last is not None and (now - last).total_seconds() < PRUNE_EVERY_S:
            return
        self.dead_letters.pruned_at = now
        cutoff = now - timedelta(days=self.dead_letters.settings.retention_days)
        with self.transaction() as conn:
            self.dead_letters.prune(conn, utc_text(cutoff))
        self.prune_retained(now)

    def prune_retained(self, now: datetime) -> int:
        """Raw windows and hourly rollups past their retention (gateway/retention.py), a
        slice per transaction so ingest waits at most one slice; returns rows deleted."""
        raw_cutoff = utc_text(now - timedelta(days=self.retention.raw_days))
        deleted = 0
        while True:
            with self.transaction() as conn:
                n = retention.raw_slice(conn, raw_cutoff)
            deleted += n
            if n == 0:
                break
        hour_cutoff = (now - timedelta(days=self.retention.hourly_days)).date().isoformat()
        with self.transaction() as conn:
            deleted += retention.hourly(conn, hour_cutoff)
        return deleted

    def replay_dead_letters(self, store_ids: Iterable[str] | None = None) -> IngestResult:
        """Store the windows dead-lettered only because their store was unknown, for the
        given stores (default: every registered one) that are registered now. Idempotent:
        a replayed letter is deleted in the transaction that stores its window, and a window
        already stored collapses on its message_id. Times are judged as of the letter's
        arrival, so a window that was believable then still is."""
        known = self.reload_registry().stores
        wanted = sorted(known if store_ids is None else set(store_ids) & known.keys())
        total = IngestResult()
        if not wanted:
            return total
        for received_at, group in groupby(replay_rows(self.read(), wanted),
                                          key=lambda r: r[3]):
            rows = list(group)
            for i in range(0, len(rows), REPLAY_CHUNK):
                total += self._replay(rows[i:i + REPLAY_CHUNK],
                                      datetime.fromisoformat(received_at))
        return total

    def _replay(self, rows: list[tuple[int, str, bytes, str]], judged_at: datetime,
                ) -> IngestResult:
        with self.transaction() as conn:
            conn.execute("DELETE FROM dead_letters WHERE id IN (SELECT value FROM json_each(?))",
                         (json.dumps([r[0] for r in rows]),))
            return self._ingest([(topic, payload) for _, topic, payload, _ in rows], judged_at)

    def _write_batch(
        self, windows: list[tuple[WindowAggregate, str]],
        statuses: list[tuple[DeviceStatus, str]], dead: list[Letter],
    ) -> IngestResult:
        try:
            return self._write_once(windows, statuses, list(dead), recheck=True)
        except _RegistryChanged:
            # registered since this process read the registry, and the registration's replay
            # ran before this batch's letters existed: store the windows now instead
            self.reload_registry()
            return self._write_once(windows, statuses, list(dead), recheck=False)

    def _write_once(
        self, windows: list[tuple[WindowAggregate, str]],
        statuses: list[tuple[DeviceStatus, str]], dead: list[Letter], recheck: bool,
    ) -> IngestResult:
        now = utc_text(self.clock())
        self._refresh_for({w.store_id for w, _ in windows} | {s.store_id for s, _ in statuses})
        fresh, extra = self._unique_known(windows, dead)
        # Rows and rollup sums are computed before taking the write lock, so other ingest
        # processes wait only for SQL, not for Python arithmetic.
        rows, batch, cams = self._prepare(list(fresh.values()), now)
        unknown = {x.replay_store for x in dead if x.replay_store} if recheck else set()
        with self.transaction() as conn:
            if unknown and _registered(conn, unknown):  # first, before anything is written
                raise _RegistryChanged
            seen = self._already_stored(conn, list(fresh)) if fresh else {}
            dups = self._copies(fresh, seen, extra, dead) if seen or extra else 0
            if seen:  # redeliveries of committed windows: rare, so simply recompute
                fresh = {k: v for k, v in fresh.items() if k not in seen}
                rows, batch, cams = self._prepare(list(fresh.values()), now)
            for store_id, cam in cams:
                _insert_camera(conn, store_id, cam, auto=True)
            # Writers queue (gateway/db.py), so the copies another gateway committed were
            # seen above and none can appear before this commit: the rows are inserted
            # without ON CONFLICT (on PostgreSQL, COPYed straight into the table), and the
            # unique message_id fails the batch rather than count a window twice.
            conn.insert_many("windows", WINDOW_COLUMNS, rows)
            batch.flush(conn)
            self._upsert_statuses(conn, statuses, now, dead)
            self.dead_letters.write(conn, dead, now)
        for store_id, cam in cams:
            self.registry.roles[(store_id, cam.camera_id)] = cam.role
        return IngestResult(len(fresh), dups, len(dead))

    def _refresh_for(self, store_ids: set[str]) -> None:
        stale = time.monotonic() - self.registry.loaded_at > REGISTRY_RELOAD_S
        if stale and not store_ids <= self.registry.stores.keys():
            self.reload_registry()

    def _unique_known(
        self, windows: list[tuple[WindowAggregate, str]], dead: list[Letter],
    ) -> tuple[dict[str, tuple[WindowAggregate, str]], list[tuple[WindowAggregate, str]]]:
        """Windows of known stores, the first per message_id, and the batch's other copies.
        Unknown stores are dead-lettered, marked for replay when the store is registered."""
        fresh: dict[str, tuple[WindowAggregate, str]] = {}
        extra: list[tuple[WindowAggregate, str]] = []
        for w, raw in windows:
            if w.store_id not in self.registry.stores:
                topic = self.topics.aggregate(w.store_id, w.camera_id)
                dead.append(Letter(topic, raw.encode(), f"unknown store {w.store_id!r}",
                                   replay_store=w.store_id))
            elif w.message_id in fresh:
                extra.append((w, raw))
            else:
                fresh[w.message_id] = (w, raw)
        return fresh, extra

    @staticmethod
    def _already_stored(conn: db.Database, ids: list[str]) -> dict[str, str]:
        """message_id -> stored payload, for the ids already stored."""
        return {r[0]: r[1] for r in _stored_rows(conn, ids, "payload")}

    def _copies(self, fresh: dict[str, tuple[WindowAggregate, str]], seen: dict[str, str],
                extra: list[tuple[WindowAggregate, str]], dead: list[Letter]) -> int:
        """Sort second copies of a message_id: the same content is a duplicate (counted,
        returned), other content is dead-lettered. The copy that counts is the stored one,
        else the batch's first."""
        dups = 0
        copies: list[tuple[tuple[WindowAggregate, str], str | tuple[WindowAggregate, str]]]
        copies = [(fresh[mid], stored) for mid, stored in seen.items()]
        copies += [((w, raw), seen.get(w.message_id) or fresh[w.message_id]) for w, raw in extra]
        for (w, raw), kept in copies:
            if _same(w, raw, kept):
                dups += 1
            else:
                dead.append(Letter(self.topics.aggregate(w.store_id, w.camera_id),
                                   raw.encode(), REUSED_ID))
        return dups

    def _prepare(
        self, windows: list[tuple[WindowAggregate, str]], now: str,
    ) -> tuple[list[tuple[Any, ...]], RollupBatch, list[tuple[str, CameraRecord]]]:
        """Insert rows, rollup sums and cameras to auto-register, for new windows."""
        batch = RollupBatch()
        new_cams: dict[tuple[str, str], CameraRecord] = {}
        rows = []
        for w, raw in windows:
            key = (w.store_id, w.camera_id)
            role = self.registry.roles.get(key)
            if role is None:
                # an unregistered camera of a known store registers itself: lines mean a door
                cam = new_cams.get(key) or CameraRecord(
                    camera_id=w.camera_id, role="entrance" if w.lines else "floor")
                new_cams[key] = cam
                role = cam.role
            batch.add(w, self.registry.stores[w.store_id].tz, role == "entrance")
            rows.append((w.message_id, w.store_id, w.camera_id, utc_text(w.window_start),
                         utc_text(w.window_end), now, int(w.simulated), raw))
        return rows, batch, [(k[0], c) for k, c in new_cams.items()]

    def _upsert_statuses(
        self, conn: db.Database, statuses: list[tuple[DeviceStatus, str]], now: str,
        dead: list[Letter],
    ) -> None:
        for s, raw in statuses:
            if s.store_id not in self.registry.stores:
                topic = self.topics.status(s.store_id, s.device_id)
                dead.append(Letter(topic, raw.encode(), f"unknown store {s.store_id!r}"))
                continue
            # the last status received wins: a last will carries its connect-time sent_at
            conn.execute(
                "INSERT INTO device_status VALUES (?,?,?,?,?,?) "
                "ON CONFLICT (store_id, device_id) DO UPDATE SET state=excluded.state, "
                "sent_at=excluded.sent_at, received_at=excluded.received_at, "
                "payload=excluded.payload",
                (s.store_id, s.device_id, s.state, utc_text(s.sent_at), now, raw),
            )


def _insert_camera(conn: db.Database, store_id: str, c: CameraRecord,
                   auto: bool) -> None:
    conn.execute(
        "INSERT INTO cameras VALUES (?,?,?,?,?,?,?) ON CONFLICT (store_id, camera_id) DO "
        "UPDATE SET role=excluded.role, name=excluded.name, "
        "floorplan_points=excluded.floorplan_points, homography=excluded.homography, "
        "auto_registered=excluded.auto_registered",
        (store_id, c.camera_id, c.role, c.name,
         json.dumps(c.floorplan_points) if c.floorplan_points else None,
         json.dumps(c.homography) if c.homography else None, int(auto)),
    )


class _RegistryChanged(Exception):
    """A store this batch dead-letters as unknown is registered by now."""


def _registered(conn: db.Database, store_ids: set[str]) -> bool:
    return conn.execute("SELECT 1 FROM stores WHERE store_id IN (SELECT value FROM "
                        "json_each(?)) LIMIT 1", (json.dumps(sorted(store_ids)),)).fetchone() \
        is not None


def _stored_rows(conn: db.Database, ids: list[str], columns: str) -> list[tuple[Any, ...]]:
    """(message_id, *columns) of the stored windows among ``ids``; ``columns`` is this
    module's own text, never input."""
    return list(conn.execute(
        f"SELECT message_id, {columns} FROM windows WHERE message_id IN "
        "(SELECT value FROM json_each(?))", (json.dumps(ids),)))


_ID_KEY = b'"message_id":"'


def _quoted_message_id(payload: bytes) -> str | None:
    """The first ``"message_id":"..."`` in the text, if plain (no escapes), else None."""
    start = payload.find(_ID_KEY)
    if start < 0:
        return None
    start += len(_ID_KEY)
    end = payload.find(b'"', start, start + 4 * 256 + 1)
    if end < 0 or b"\\" in payload[start:end]:
        return None
    try:
        return payload[start:end].decode()
    except UnicodeDecodeError:
        return None


def _same(w: WindowAggregate, raw: str, kept: str | tuple[WindowAggregate, str]) -> bool:
    """Same window content as the copy kept (stored payload, or the batch's first copy): the
    same bytes (a redelivery), else the same decoded fields."""
    if isinstance(kept, tuple):
        return kept[1] == raw or same_content(kept[0], w)
    if kept == raw:
        return True
    try:
        return same_content(decode_window(kept.encode()), w)
    except Exception:  # a row stored under older rules: only identical bytes are the same
        return False
