"""Camera configurations HQ published (and installers saved on site), versioned, with history.

Every configuration a camera was given is one row of ``camera_config_history``: a version
number per camera (1, 2, ...), the ``config_version`` text the message carries and the edge
reports back in its status, who made it (an API token's name, or the installer on the edge
box), when, and the CameraConfigMessage JSON itself. A rollback is a new row whose
configuration is an earlier one's (``rollback_of``): the edge applies any message that differs
from what it runs, so the same analytics under a new version number is applied again.

A row is first stored, then published retained on ``{prefix}/{store}/{camera}/config``
(gateway/config_publisher.py); ``published_at`` records the broker's acknowledgement. Only a
camera's latest row is ever published: an unpublished row with a newer one after it is
superseded, never sent late.

Installer configs arrive on ``.../reported`` (retained, so again at every reconnect): they are
validated like windows (payload store/camera must be the topic's, bounded size, the store
registered), recorded once (a repeat of the same config is not a new version) and left
unpublished, so the publisher makes them the retained config: an edge that reconnects then
gets back what its installer saved, not HQ's older version.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gateway.db import Database
from gateway.deadletters import Letter
from gateway.isolate import ingest_isolating
from gateway.rollups import utc_text
from gateway.storage import IngestResult, Storage
from storesense.config import describe_validation_error
from storesense.schema import AnalyticsConfig, CameraConfigMessage
from storesense.topics import Topics

MAX_REPORTED_BYTES = 64 * 1024  # a camera's config with 16 lines and 64 zones is ~20 kB
SOURCES = ("hq", "rollback", "installer")


def migrate(c: Database) -> None:
    """Migration 009 (gateway/migrations.py)."""
    for stmt in (
        """CREATE TABLE camera_config_history (
            id INTEGER PRIMARY KEY,
            store_id TEXT NOT NULL, camera_id TEXT NOT NULL,
            version INTEGER NOT NULL, config_version TEXT NOT NULL,
            source TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL,
            rollback_of INTEGER, payload TEXT NOT NULL, published_at TEXT,
            UNIQUE (store_id, camera_id, version))""",
        "CREATE INDEX camera_config_unpublished ON camera_config_history(store_id, camera_id) "
        "WHERE published_at IS NULL",
    ):
        c.execute(stmt)


@dataclass(frozen=True)
class Entry:
    id: int
    store_id: str
    camera_id: str
    version: int
    config_version: str
    source: str
    created_by: str
    created_at: str
    rollback_of: int | None
    payload: str
    published_at: str | None

    def message(self) -> CameraConfigMessage:
        return CameraConfigMessage.model_validate_json(self.payload)

    def public(self) -> dict[str, Any]:
        """The API's shape: the configuration as an object, not a string."""
        d = {k: v for k, v in self.__dict__.items() if k != "payload"}
        d["analytics"] = json.loads(self.payload)["analytics"]
        return d


_COLUMNS = ("id, store_id, camera_id, version, config_version, source, created_by, created_at, "
            "rollback_of, payload, published_at")


def _entry(row: Sequence[Any]) -> Entry:
    return Entry(*row)


def hq_version_text(version: int) -> str:
    """The config_version HQ's rows carry; an installer's keeps the edge's own text."""
    return f"hq-{version}"


def history(conn: Database, store_id: str, camera_id: str,
            limit: int = 200) -> list[Entry]:
    """Newest first."""
    return [_entry(r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM camera_config_history WHERE store_id=? AND camera_id=? "
        "ORDER BY version DESC LIMIT ?", (store_id, camera_id, limit))]


def get(conn: Database, store_id: str, camera_id: str, version: int) -> Entry | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM camera_config_history WHERE store_id=? AND camera_id=? "
        "AND version=?", (store_id, camera_id, version)).fetchone()
    return None if row is None else _entry(row)


def add(conn: Database, store_id: str, camera_id: str, analytics: AnalyticsConfig,
        source: str, created_by: str, now: str, rollback_of: int | None = None,
        config_version: str | None = None) -> Entry:
    """Store the camera's next version (in the caller's transaction); not yet published."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    version = int(conn.execute(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM camera_config_history "
        "WHERE store_id=? AND camera_id=?", (store_id, camera_id)).fetchone()[0])
    msg = CameraConfigMessage(store_id=store_id, camera_id=camera_id,
                              config_version=config_version or hq_version_text(version),
                              analytics=analytics)
    new_id = conn.execute(
        "INSERT INTO camera_config_history (store_id, camera_id, version, config_version, "
        "source, created_by, created_at, rollback_of, payload) VALUES (?,?,?,?,?,?,?,?,?) "
        "RETURNING id",
        (store_id, camera_id, version, msg.config_version, source, created_by, now,
         rollback_of, msg.model_dump_json())).fetchone()[0]
    row = conn.execute(f"SELECT {_COLUMNS} FROM camera_config_history WHERE id=?",
                       (new_id,)).fetchone()
    return _entry(row)


def mark_published(conn: Database, entry_id: int, now: str) -> None:
    conn.execute("UPDATE camera_config_history SET published_at=? WHERE id=?", (now, entry_id))


def to_publish(conn: Database) -> list[Entry]:
    """Each camera's latest row when it is not published yet (oldest first)."""
    return [_entry(r) for r in conn.execute(
        f"""SELECT {_COLUMNS} FROM camera_config_history h
            WHERE published_at IS NULL AND version = (
                SELECT MAX(version) FROM camera_config_history
                WHERE store_id=h.store_id AND camera_id=h.camera_id)
            ORDER BY id""")]


def running(conn: Database, store_id: str) -> list[dict[str, Any]]:
    """What each device of the store says each camera runs, from its stored status: the
    config_version it applied and why it refused the last one (config_error)."""
    out = []
    for device_id, state, received_at, payload in conn.execute(
            "SELECT device_id, state, received_at, payload FROM device_status WHERE store_id=? "
            "ORDER BY device_id", (store_id,)):
        for cam in json.loads(payload).get("cameras", []):
            out.append({"device_id": device_id, "device_state": state,
                        "received_at": received_at, "camera_id": cam.get("camera_id"),
                        "config_version": cam.get("config_version"),
                        "config_error": cam.get("config_error")})
    return out


def versions_by_text(conn: Database, store_id: str, camera_id: str) -> dict[str, int]:
    """config_version text -> the newest version number that carried it."""
    return {r[0]: int(r[1]) for r in conn.execute(
        "SELECT config_version, MAX(version) FROM camera_config_history WHERE store_id=? "
        "AND camera_id=? GROUP BY config_version", (store_id, camera_id))}


# ------------------------------------------------------------------ installer reports


def parse_reported(topics: Topics, topic: str, payload: bytes) -> CameraConfigMessage | str:
    """A reported config, or why it is refused (the dead-letter reason)."""
    parts = topics.parse(topic)
    if parts is None or parts[2] != "reported":
        return f"topic not under {topics.prefix}/<store>/<camera>/reported"
    if len(payload) > MAX_REPORTED_BYTES:
        return f"reported config of {len(payload)} bytes exceeds {MAX_REPORTED_BYTES}"
    try:
        msg = CameraConfigMessage.model_validate_json(payload)
    except ValidationError as e:
        return f"invalid reported config: {describe_validation_error(e)}"[:1000]
    except Exception as e:  # no input may stop the gateway
        return f"unreadable payload: {type(e).__name__}: {e}"[:1000]
    if (msg.store_id, msg.camera_id) != parts[:2]:
        return (f"topic says store/camera {parts[0]}/{parts[1]}, payload says "
                f"{msg.store_id}/{msg.camera_id}")
    return msg


def store_reported(storage: Storage, items: Sequence[tuple[str, bytes]]) -> IngestResult:
    """Record installer configs (valid, of a registered store, not seen before) in one
    transaction; the rest is dead-lettered with its reason."""
    storage.refresh_registry(max_age_s=1.0)
    now = utc_text(storage.clock())
    stored = dups = 0
    dead: list[Letter] = []
    with storage.transaction() as conn:
        for topic, payload in items:
            parsed = parse_reported(storage.topics, topic, payload)
            if isinstance(parsed, str):
                dead.append(Letter(topic, payload, parsed))
            elif parsed.store_id not in storage.registry.stores:
                dead.append(Letter(topic, payload, f"unknown store {parsed.store_id!r}"))
            elif _recorded(conn, parsed):
                dups += 1
            else:
                add(conn, parsed.store_id, parsed.camera_id, parsed.analytics, "installer",
                    f"installer at {parsed.store_id}/{parsed.camera_id}", now,
                    config_version=parsed.config_version)
                stored += 1
        storage.dead_letters.write(conn, dead, now)
    return IngestResult(stored, dups, len(dead))


def _recorded(conn: Database, msg: CameraConfigMessage) -> bool:
    """The same installer config is already a version: a retained report seen again."""
    return conn.execute(
        "SELECT 1 FROM camera_config_history WHERE store_id=? AND camera_id=? AND "
        "source='installer' AND payload=? LIMIT 1",
        (msg.store_id, msg.camera_id, msg.model_dump_json())).fetchone() is not None


def ingest_with_reported(storage: Storage, items: Sequence[tuple[str, bytes]]) -> IngestResult:
    """The ingest's batch: installer reports go to the history, the rest to storage.ingest
    (gateway/ingest.py calls this in place of ingest_isolating)."""
    reported = [(t, p) for t, p in items if t.endswith("/reported")]
    if not reported:
        return ingest_isolating(storage, items)
    rest = [(t, p) for t, p in items if not t.endswith("/reported")]
    result = store_reported(storage, reported)
    return result + ingest_isolating(storage, rest) if rest else result
