"""Dead letters: what the gateway refused, kept for operators, bounded against floods.

A device sending 250 kB of junk a message once grew the database by 2.9 GB in 30 s, because
every refusal was stored whole. Now:

- junk keeps its reason, topic, size, sha256 and at most ``payload_bytes`` of the payload;
  windows refused only because their store is not registered yet are kept whole (they are
  small, valid, and replayed when the store is registered: ``replay_rows``);
- past ``per_minute`` letters a minute from one topic (one camera or device), the rest of
  that minute is only counted, in ``dead_letter_counts`` (topic, minute, count, bytes);
  windows of unregistered stores have their own, larger budget, ``unknown_store_per_minute``.
  The budget is per ingest process (``[ingest] workers`` multiplies it);
- rows older than ``retention_days`` and beyond the newest ``max_rows`` are deleted (``prune``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from gateway.db import Database

PRUNE_EVERY_S = 60.0  # retention runs at most this often per process


class DeadLetterSettings(BaseModel):
    """[dead_letters] in gateway.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    payload_bytes: int = Field(
        4096, ge=0, le=1_048_576,
        description="bytes of a refused payload kept (its size and sha256 are always kept); "
        "windows of a not yet registered store are kept whole, for replay")
    per_minute: int = Field(
        30, ge=1, le=100_000,
        description="dead letters stored per topic (one camera or device) per minute; the "
        "rest of the minute are only counted in dead_letter_counts")
    unknown_store_per_minute: int = Field(
        600, ge=1, le=100_000,
        description="the same for windows of a store not registered yet (kept whole for "
        "replay, so a store that goes live before its registry entry loses nothing)")
    retention_days: float = Field(
        14.0, ge=0.1, le=3650.0, description="dead letters older than this are deleted")
    max_rows: int = Field(
        100_000, ge=100, le=100_000_000,
        description="at most this many dead letters are kept, the newest")


class Letter(NamedTuple):
    topic: str
    payload: bytes
    reason: str
    replay_store: str | None = None  # set for a window refused only as of an unknown store
    whole: bool = False  # keep the whole payload (a valid window the database refused)


def _minute(now: str) -> str:
    return now[:16]  # 'YYYY-MM-DDTHH:MM' of the storage format


class DeadLetters:
    """Writes and prunes dead letters under one process's per-topic budget."""

    def __init__(self, settings: DeadLetterSettings | None = None) -> None:
        self.settings = settings or DeadLetterSettings()
        self._minute = ""
        self._used: dict[tuple[str, bool], int] = {}  # (topic, replayable) -> stored this minute
        self.pruned_at: datetime | None = None  # by the storage's clock

    def write(self, conn: Database, letters: Sequence[Letter], now: str) -> None:
        """Store or count each letter (caller holds the transaction)."""
        if not letters:
            return
        if _minute(now) != self._minute:
            self._minute, self._used = _minute(now), {}
        rows, counted = [], []
        for letter in letters:
            if self._admit(letter):
                rows.append(self._row(letter, now))
            else:
                counted.append((letter.topic, self._minute, len(letter.payload), letter.reason))
        conn.executemany(
            "INSERT INTO dead_letters (received_at, topic, reason, payload, size, sha256, "
            "replay_store) VALUES (?,?,?,?,?,?,?)", rows)
        conn.executemany(
            "INSERT INTO dead_letter_counts (topic, minute, count, bytes, last_reason) "
            "VALUES (?, ?, 1, ?, ?) ON CONFLICT (topic, minute) DO UPDATE SET "
            "count = dead_letter_counts.count + 1, "
            "bytes = dead_letter_counts.bytes + excluded.bytes, "
            "last_reason = excluded.last_reason", counted)

    def _admit(self, letter: Letter) -> bool:
        replayable = letter.replay_store is not None
        key = (letter.topic, replayable)
        used = self._used.get(key, 0)
        s = self.settings
        if used >= (s.unknown_store_per_minute if replayable else s.per_minute):
            return False
        self._used[key] = used + 1
        return True

    def _row(self, letter: Letter, now: str) -> tuple[object, ...]:
        p = letter.payload
        whole = letter.whole or letter.replay_store is not None
        kept = p if whole else p[: self.settings.payload_bytes]
        return (now, letter.topic, _clean(letter.reason), kept, len(p),
                hashlib.sha256(p).hexdigest(), letter.replay_store)

    def prune(self, conn: Database, cutoff: str) -> int:
        """Delete letters received before ``cutoff`` and all but the newest max_rows."""
        n = conn.execute("DELETE FROM dead_letters WHERE received_at < ?", (cutoff,)).rowcount
        conn.execute("DELETE FROM dead_letter_counts WHERE minute < ?", (_minute(cutoff),))
        row = conn.execute("SELECT id FROM dead_letters ORDER BY id DESC LIMIT 1 OFFSET ?",
                           (self.settings.max_rows,)).fetchone()
        if row is not None:
            n += conn.execute("DELETE FROM dead_letters WHERE id <= ?", (row[0],)).rowcount
        return n


def _clean(text: str) -> str:
    """A reason may quote an exception's text; keep it valid UTF-8 for SQLite."""
    return text.encode("utf-8", "replace").decode("utf-8")


def replay_rows(conn: Database, stores: Sequence[str],
                ) -> list[tuple[int, str, bytes, str]]:
    """(id, topic, payload, received_at) of windows held back only as of these stores."""
    return [(r[0], r[1], r[2].encode() if isinstance(r[2], str) else bytes(r[2]), r[3])
            for r in conn.execute(
        "SELECT id, topic, payload, received_at FROM dead_letters WHERE replay_store IN "
        "(SELECT value FROM json_each(?)) ORDER BY received_at, id", (json.dumps(list(stores)),))]
