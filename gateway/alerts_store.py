"""Alert state in the gateway database: alerts, their webhook deliveries, store limits.

An alert is one row from the moment it is raised until it is resolved; a partial unique
index on ``key`` among unresolved rows makes "raised once" a property of the table, so two
evaluations racing (or a restart between evaluation and commit) cannot raise it twice. Each
raise and each resolve adds one delivery row for the webhook, written in the same
transaction, so a crash never loses or repeats a notification (gateway/alerts_webhook.py).

Occupancy limits live in a table of their own, not in the store record: a store import (the
chain's master data, gateway/registry.py) replaces whole records, and an operational
setting made at HQ must survive the next import.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.alerts import Alert, Changes
from gateway.db import Database


def migrate(c: Database) -> None:
    """Migration 012 (gateway/migrations.py)."""
    for stmt in (
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY, key TEXT NOT NULL, kind TEXT NOT NULL,
            store_id TEXT NOT NULL, subject TEXT NOT NULL, raised_at TEXT NOT NULL,
            resolved_at TEXT, detail TEXT NOT NULL)""",
        "CREATE UNIQUE INDEX alerts_open ON alerts(key) WHERE resolved_at IS NULL",
        "CREATE INDEX alerts_store ON alerts(store_id, raised_at)",
        """CREATE TABLE alert_deliveries (
            id INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL, event TEXT NOT NULL,
            payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at TEXT NOT NULL,
            delivered_at TEXT, last_error TEXT)""",
        "CREATE INDEX alert_deliveries_pending ON alert_deliveries(id) "
        "WHERE delivered_at IS NULL",
        """CREATE TABLE store_limits (
            store_id TEXT PRIMARY KEY, occupancy_limit INTEGER NOT NULL,
            updated_at TEXT NOT NULL, updated_by TEXT NOT NULL)""",
    ):
        c.execute(stmt)


def open_keys(conn: Database) -> set[str]:
    return {r[0] for r in conn.execute("SELECT key FROM alerts WHERE resolved_at IS NULL")}


def apply(conn: Database, changes: Changes, now: str) -> None:
    """Write raises and resolves and their deliveries (the caller holds the transaction)."""
    for a in changes.raised:
        new = conn.execute(
            "INSERT INTO alerts (key, kind, store_id, subject, raised_at, detail) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING id",
            (a.key, a.kind, a.store_id, a.subject, now, json.dumps(a.detail))).fetchone()
        if new is not None:
            _deliver(conn, int(new[0]), "raised", now)
    for key in changes.resolved:
        row = conn.execute("SELECT id FROM alerts WHERE key=? AND resolved_at IS NULL",
                           (key,)).fetchone()
        if row is not None:
            conn.execute("UPDATE alerts SET resolved_at=? WHERE id=?", (now, row[0]))
            _deliver(conn, int(row[0]), "resolved", now)


def _deliver(conn: Database, alert_id: int, event: str, now: str) -> None:
    row = _row(conn, alert_id)
    payload = json.dumps({"event": event, "alert": row}, separators=(",", ":"))
    conn.execute("INSERT INTO alert_deliveries (alert_id, event, payload, next_at) "
                 "VALUES (?,?,?,?)", (alert_id, event, payload, now))


_COLS = "id, key, kind, store_id, subject, raised_at, resolved_at, detail"


def _row(conn: Database, alert_id: int) -> dict[str, Any]:
    r = conn.execute(f"SELECT {_COLS} FROM alerts WHERE id=?", (alert_id,)).fetchone()
    return _public(r)


def _public(r: Any) -> dict[str, Any]:
    d = dict(zip(_COLS.split(", "), tuple(r), strict=True))
    d["detail"] = json.loads(d["detail"])
    return d


def listing(conn: Database, store_ids: list[str], state: str,
            limit: int) -> list[dict[str, Any]]:
    """Alerts of the stores, open first then newest; state: open, resolved or all."""
    where = {"open": "resolved_at IS NULL", "resolved": "resolved_at IS NOT NULL",
             "all": "1=1"}[state]
    rows = conn.execute(
        f"SELECT {_COLS} FROM alerts WHERE {where} AND store_id IN "
        "(SELECT value FROM json_each(?)) ORDER BY resolved_at IS NOT NULL, raised_at DESC, "
        "id DESC LIMIT ?", (json.dumps(store_ids), limit))
    return [_public(r) for r in rows]


# ------------------------------------------------------------------ deliveries


def due(conn: Database, now: str, limit: int = 100) -> list[tuple[int, str, int]]:
    """(id, payload, attempts) of undelivered notifications, in the order they were made,
    up to the first one not due yet (a later one must not overtake it)."""
    out = []
    for r in conn.execute("SELECT id, payload, attempts, next_at FROM alert_deliveries "
                          "WHERE delivered_at IS NULL ORDER BY id LIMIT ?", (limit,)):
        if r[3] > now:
            break
        out.append((int(r[0]), str(r[1]), int(r[2])))
    return out


def delivered(conn: Database, delivery_id: int, now: str) -> None:
    conn.execute("UPDATE alert_deliveries SET delivered_at=?, attempts=attempts+1, "
                 "last_error=NULL WHERE id=?", (now, delivery_id))


def failed(conn: Database, delivery_id: int, error: str, next_at: str) -> None:
    conn.execute("UPDATE alert_deliveries SET attempts=attempts+1, last_error=?, next_at=? "
                 "WHERE id=?", (error[:500], next_at, delivery_id))


def delivery_log(conn: Database, alert_id: int) -> list[dict[str, Any]]:
    return [dict(zip(("event", "attempts", "delivered_at", "last_error"), tuple(r),
                     strict=True)) for r in conn.execute(
        "SELECT event, attempts, delivered_at, last_error FROM alert_deliveries "
        "WHERE alert_id=? ORDER BY id", (alert_id,))]


# ------------------------------------------------------------------ limits


def limits(conn: Database) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in conn.execute(
        "SELECT store_id, occupancy_limit FROM store_limits")}


def set_limit(conn: Database, store_id: str, limit: int | None, who: str,
              now: str) -> None:
    if limit is None:
        conn.execute("DELETE FROM store_limits WHERE store_id=?", (store_id,))
        return
    conn.execute("INSERT INTO store_limits VALUES (?,?,?,?) ON CONFLICT (store_id) DO UPDATE SET "
                 "occupancy_limit=excluded.occupancy_limit, updated_at=excluded.updated_at, "
                 "updated_by=excluded.updated_by", (store_id, limit, now, who))


__all__ = ["Alert", "Changes", "apply", "due", "listing", "migrate", "open_keys"]
