"""The durable outbox: every window aggregate is committed here before it is published.

paho keeps unacknowledged QoS 1 messages in memory only, so a reboot, a crash or kill -9
would lose them. The outbox is a SQLite file on the device. A row the broker acknowledged
(PUBACK with a success reason code; a refused row stays and is retried) is marked ``sent``
and deleted only when the gateway confirms it committed the window (storesense.acks): a
broker acknowledges before it saves, so its crash can lose what it acknowledged. Without
confirmations (``outbox.confirm = false``) the PUBACK deletes the row. Rows are sent oldest
window first.

Durability: WAL with ``synchronous=FULL``. NORMAL in WAL mode survives a process crash but
may lose the last commits on a power cut, and a store's power is cut every night in some
chains. One fsync per window (one per camera per minute) costs nothing; acks are batched
by the caller only in the sense that losing an ack costs a duplicate, never a window.

Size bounds: when ``max_messages`` windows or ``max_bytes`` of payload are reached the
oldest windows are dropped first and the drop is counted (persisted), so status can say how
much HQ will never see.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from storesense.schema import WindowAggregate

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    window_start REAL NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (window_start, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
# Outboxes from before end-to-end confirmation have no "sent" column. Not durable in meaning:
# a sent row is sent again when unconfirmed; the flag keeps it out of the unsent queue.
_SENT = """
ALTER TABLE outbox ADD COLUMN sent INTEGER NOT NULL DEFAULT 0;
"""
_SENT_INDEX = "CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (sent, window_start, seq)"


@dataclass(frozen=True)
class Row:
    seq: int
    message_id: str
    topic: str
    payload: bytes


@dataclass(frozen=True)
class OutboxStats:
    depth: int
    dropped: int
    full: bool  # the bound was hit and oldest windows were dropped; cleared by the next ack
    bytes: int = 0
    error: str | None = None  # why the last write failed (e.g. DISK_FULL); None once one works


DISK_FULL = "outbox disk full"


def write_error(e: BaseException) -> str:
    """A short, stable description of a failed outbox write (one per state, for status)."""
    if isinstance(e, sqlite3.Error) and (
        getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        or "database or disk is full" in str(e)
    ):
        return DISK_FULL
    return f"outbox write failed: {type(e).__name__}: {e}"


class Outbox:
    """Thread-safe: camera threads put, the publisher reads, paho's thread acks."""

    def __init__(
        self, path: str | Path, max_messages: int = 50_000, max_bytes: int = 1 << 30,
    ) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError(f"outbox bounds must be >= 1, got {max_messages}, {max_bytes}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_messages, self.max_bytes = max_messages, max_bytes
        self._lock = threading.Lock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so each put is one transaction.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        columns = [r[1] for r in self._db.execute("PRAGMA table_info(outbox)")]
        if "sent" not in columns:
            self._db.executescript(_SENT)
        self._db.execute(_SENT_INDEX)
        n, size = self._db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox"
        ).fetchone()
        self._depth, self._bytes = int(n), int(size)
        self._dropped = self._meta("dropped")
        self._full = self._depth >= max_messages or self._bytes >= max_bytes
        self._error: str | None = None

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def meta(self, key: str) -> int:
        """A counter kept with the outbox (0 if never set): e.g. the clock epoch."""
        with self._lock:
            return self._meta(key)

    def set_meta(self, key: str, value: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def put(self, topic: str, window: WindowAggregate) -> int:
        """Commit one window; returns how many oldest windows were dropped to make room."""
        payload = window.to_json()
        start = window.window_start.timestamp()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Same id again (a restarted pipeline re-closing a window): first copy wins;
                # the gateway upserts on message_id, so repeats collapse there anyway.
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO outbox (message_id, topic, window_start, payload) "
                    "VALUES (?, ?, ?, ?)",
                    (window.message_id, topic, start, payload),
                )
                added = len(payload) if cur.rowcount else 0
                dropped, freed = self._drop_oldest_over_bound(cur.rowcount, added)
                self._db.execute("COMMIT")
            except BaseException as e:
                # SQLite has already rolled back after some errors (SQLITE_FULL among
                # them); a ROLLBACK then raised "cannot rollback - no transaction is
                # active", which hid the real cause
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._error = write_error(e)
                raise
            self._error = None
            self._depth += cur.rowcount - dropped
            self._bytes += added - freed
            self._dropped += dropped
            self._full = self._full or dropped > 0
            return dropped

    def _drop_oldest_over_bound(self, added_rows: int, added_bytes: int) -> tuple[int, int]:
        """Delete oldest rows until both bounds hold again; (rows, bytes) removed."""
        over_n = self._depth + added_rows - self.max_messages
        over_b = self._bytes + added_bytes - self.max_bytes
        if added_rows == 0 or (over_n <= 0 and over_b <= 0):
            return 0, 0
        victims: list[int] = []
        freed = 0
        cur = self._db.execute(
            "SELECT seq, length(payload) FROM outbox ORDER BY window_start, seq"
        )
        for seq, size in cur:  # lazily: usually one row
            if len(victims) >= over_n and freed >= over_b:
                break
            victims.append(int(seq))
            freed += int(size)
        cur.close()
        self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(v,) for v in victims])
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('dropped', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
            (len(victims),),
        )
        return len(victims), freed

    def oldest(
        self, limit: int, skip: frozenset[int] = frozenset(),
        skip_topics: frozenset[str] = frozenset(),
    ) -> list[Row]:
        """Up to ``limit`` rows in window-start order, leaving out seqs in ``skip`` (in flight)
        and rows of ``skip_topics`` (topics the publisher holds back, e.g. refused ones)."""
        marks = ",".join("?" * len(skip_topics))
        with self._lock:
            cur = self._db.execute(
                "SELECT seq, message_id, topic, payload FROM outbox "
                f"WHERE sent = 0 AND topic NOT IN ({marks}) ORDER BY sent, window_start, seq "
                "LIMIT ?",
                (*sorted(skip_topics), limit + len(skip)),
            )
            rows = [Row(int(s), str(m), str(t), bytes(p)) for s, m, t, p in cur]
        return [r for r in rows if r.seq not in skip][:limit]

    def get(self, seq: int) -> Row | None:
        with self._lock:
            r = self._db.execute(
                "SELECT seq, message_id, topic, payload FROM outbox WHERE seq = ?", (seq,)
            ).fetchone()
        return Row(int(r[0]), str(r[1]), str(r[2]), bytes(r[3])) if r else None

    def sent_seqs(self) -> list[int]:
        """Rows sent but never confirmed (before a restart), oldest window first."""
        with self._lock:
            cur = self._db.execute(
                "SELECT seq FROM outbox WHERE sent = 1 ORDER BY sent, window_start, seq")
            return [int(s) for (s,) in cur]

    def mark_sent(self, seq: int) -> bool:
        """The broker has it; keep it until the gateway confirms. False if the row is gone
        (confirmed before the PUBACK was handled, or dropped)."""
        with self._lock:
            cur = self._db.execute("UPDATE outbox SET sent = 1 WHERE seq = ?", (seq,))
            return cur.rowcount > 0

    def confirm(self, message_ids: list[str]) -> list[int]:
        """The gateway committed these windows: delete them (one transaction); their seqs."""
        if not message_ids:
            return []
        marks = ",".join("?" * len(message_ids))
        with self._lock:
            rows = self._db.execute(
                f"DELETE FROM outbox WHERE message_id IN ({marks}) "
                "RETURNING seq, length(payload)", message_ids,
            ).fetchall()
            if rows:
                self._depth -= len(rows)
                self._bytes -= sum(int(n) for _, n in rows)
                self._full = False
        return [int(s) for s, _ in rows]

    def ack(self, seq: int) -> None:
        """The broker has the message: forget it. Unknown seqs (dropped meanwhile) are fine."""
        with self._lock:
            # fetchall: a RETURNING statement commits only once stepped to its end.
            rows = self._db.execute(
                "DELETE FROM outbox WHERE seq = ? RETURNING length(payload)", (seq,)
            ).fetchall()
            if rows:
                self._depth -= 1
                self._bytes -= int(rows[0][0])
                self._full = False  # room again; set anew by the next put that must drop

    def stats(self) -> OutboxStats:
        with self._lock:
            return OutboxStats(self._depth, self._dropped, self._full, self._bytes, self._error)

    def close(self) -> None:
        with self._lock:
            self._db.close()
