"""Storage on a real SQLite file: idempotent ingest, dead letters, registry, migrations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway import migrations
from gateway import storage as storage_module
from gateway.storage import Storage
from storesense.cli import main as cli
from tests.gateway.conftest import PINNED_NOW
from tests.gateway.helpers import TOPICS, message, store, window
from tests.waiting import wait_until

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _count(s: Storage, sql: str) -> int:
    return int(s.read().execute(sql).fetchone()[0])


def test_duplicates_store_once_and_count_once(storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    msgs = [message(window("s1", T0 + timedelta(minutes=i))) for i in range(5)]
    first = storage.ingest(msgs + msgs[:2])  # redelivery inside one batch
    again = storage.ingest(msgs)  # and in a later batch
    assert (first.stored, first.duplicates, again.stored, again.duplicates) == (5, 2, 0, 5)
    assert _count(storage, "SELECT COUNT(*) FROM windows") == 5
    assert _count(storage, "SELECT SUM(in_count) FROM rollup_day") == 15
    assert _count(storage, "SELECT SUM(windows) FROM rollup_hour") == 5
    seqs = [r[0] for r in storage.read().execute("SELECT seq FROM windows ORDER BY seq")]
    assert seqs == sorted(set(seqs))


def test_every_kind_of_bad_message_is_dead_lettered_with_reason(storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    good = window("s1", T0)
    topic, raw = message(good)
    doc = json.loads(raw)
    cases = {
        "bad json": (topic, b"{not json"),
        "binary": (topic, bytes(range(256))),
        "version": (topic, json.dumps({**doc, "schema_version": 2}).encode()),
        "negative": (topic, json.dumps({**doc, "frames": -1}).encode()),
        "huge": (topic, json.dumps({**doc, "frames": 10**30}).encode()),
        "wrong type": (topic, json.dumps({**doc, "lines": "many"}).encode()),
        "unknown store": message(window("nowhere", T0)),
        "topic mismatch": (TOPICS.aggregate("s1", "other"), raw),
        "bad topic": ("elsewhere/x", raw),
        "empty": (topic, b""),
    }
    result = storage.ingest(list(cases.values()))
    assert (result.stored, result.dead) == (0, len(cases))
    rows = storage.read().execute("SELECT topic, reason, payload FROM dead_letters").fetchall()
    assert len(rows) == len(cases)
    reasons = " | ".join(r["reason"] for r in rows)
    for needle in ("schema_version", "frames", "unknown store 'nowhere'", "payload says"):
        assert needle in reasons
    assert all(r["reason"] and r["topic"] for r in rows)
    assert bytes(rows[1]["payload"]) == bytes(range(256))


def test_unknown_camera_of_known_store_registers_itself(storage: Storage) -> None:
    storage.upsert_stores([store("s1", cameras=False)])
    storage.store_windows([window("s1", T0, camera_id="door2"),
                           window("s1", T0, camera_id="shelf", ins=0, outs=0)])
    roles = dict(storage.read().execute("SELECT camera_id, role FROM cameras").fetchall())
    assert roles == {"door2": "entrance", "shelf": "floor"}
    assert _count(storage, "SELECT SUM(visitors) FROM rollup_day") == 3


def test_status_upserts_latest_and_unknown_store_dead_letters(storage: Storage) -> None:
    from storesense.schema import DeviceStatus

    storage.upsert_stores([store("s1")])
    on = DeviceStatus(store_id="s1", device_id="d1", state="online", sent_at=T0)
    off = DeviceStatus(store_id="s1", device_id="d1", state="offline", sent_at=T0)
    stranger = DeviceStatus(store_id="zz", device_id="d1", state="online", sent_at=T0)
    r = storage.ingest([(TOPICS.status("s1", "d1"), on.to_json()),
                        (TOPICS.status("s1", "d1"), off.to_json()),
                        (TOPICS.status("zz", "d1"), stranger.to_json())])
    assert r.dead == 1
    states = storage.read().execute("SELECT state FROM device_status").fetchall()
    assert [s[0] for s in states] == ["offline"]


def test_migrations_are_recorded_and_safe_to_rerun(tmp_path: Path) -> None:
    a = Storage(tmp_path / "g.db")
    a.upsert_stores([store("s1")])
    b = Storage(tmp_path / "g.db")  # a second process opening the same file
    assert migrations.apply(b._conn) == []
    names = [r[0] for r in b.read().execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [n for n, _ in migrations.MIGRATIONS]
    assert "s1" in b.registry.stores
    a.close()
    b.close()


def test_import_stores_cli_csv_and_json(tmp_path: Path, capsys: object) -> None:
    db = tmp_path / "g.db"
    csv_file = tmp_path / "stores.csv"
    csv_file.write_text(
        "store_id,name,name_zh,region,franchisee,timezone,open_hour,close_hour\n"
        "a1,Alpha,阿尔法,Europe,f1,Europe/Paris,9,20\n"
        "b2,Beta,,Asia,f2,Asia/Tokyo,,\n", encoding="utf-8")
    assert cli(["gateway", "import-stores", str(csv_file), "--db", str(db)]) == 0
    json_file = tmp_path / "stores.json"
    json_file.write_text(json.dumps([{"store_id": "c3", "name": "C", "timezone": "UTC",
                                      "cameras": [{"camera_id": "d", "role": "entrance"}]}]))
    assert cli(["gateway", "import-stores", str(json_file), "--db", str(db)]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("store_id,name,timezone\nx,X,Mars/Olympus\n")
    assert cli(["gateway", "import-stores", str(bad), "--db", str(db)]) == 2
    s = Storage(db)
    assert sorted(s.registry.stores) == ["a1", "b2", "c3"]
    assert s.list_stores(["a1"])[0]["name_zh"] == "阿尔法"
    assert s.registry.roles[("c3", "d")] == "entrance"
    s.close()


def test_example_config_is_valid_and_documents_every_field() -> None:
    from gateway.config import GatewaySettings, load

    example = Path(__file__).resolve().parents[2] / "deploy" / "gateway.example.toml"
    settings = load(example)
    assert settings == GatewaySettings()  # the example shows the defaults
    text = example.read_text()
    for section in (settings, settings.mqtt, settings.ingest, settings.api, settings.feed,
                    settings.checks, settings.dead_letters, settings.retention):
        for name in type(section).model_fields:
            if name not in ("mqtt", "ingest", "api", "feed", "checks", "dead_letters",
                            "retention"):
                assert name in text, f"{name} is not documented in the example"


def test_token_cli_create_list_revoke(tmp_path: Path, capsys) -> None:
    from gateway.auth import authenticate, hash_token
    from tests.gateway.helpers import store

    db = tmp_path / "g.db"
    s = Storage(db)
    s.upsert_stores([store("a1", franchisee="f1")])  # a scope must name a registered franchisee
    s.close()
    args = ["gateway", "token", "create", "--db", str(db), "--name", "fr", "--scope",
            "franchisee:f1"]
    assert cli(args) == 0
    token = capsys.readouterr().out.strip()
    assert cli([*args[:-1], "planet:mars"]) == 2  # a bad scope names the field
    s = Storage(db)
    who = authenticate(s, token)
    assert who is not None and (who.kind, who.value) == ("franchisee", "f1")
    stored = [r[0] for r in s.read().execute("SELECT token_sha256 FROM tokens")]
    assert stored == [hash_token(token)]
    s.close()
    assert cli(["gateway", "token", "list", "--db", str(db)]) == 0
    assert '"scope": "franchisee:f1"' in capsys.readouterr().out
    assert cli(["gateway", "token", "revoke", "--db", str(db), "--name", "fr"]) == 0
    s = Storage(db)
    assert authenticate(s, token) is None
    s.close()


def _commit_grows_wal(s: Storage, wal: Path) -> bool:
    before = wal.stat().st_size
    s.dead_letter("t", b"x", "probe")  # one small commit
    return wal.stat().st_size > before


def test_the_wal_is_checkpointed_off_the_write_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(storage_module, "CHECKPOINT_S", 0.05)
    monkeypatch.setattr(storage_module, "WAL_RESTART_PAGES", 100)
    db = tmp_path / "g.db"
    s = Storage(db, clock=lambda: PINNED_NOW)
    try:
        assert s._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        s.upsert_stores([store("s1")])
        size, wal = db.stat().st_size, db.with_name("g.db-wal")
        s.ingest([message(window("s1", T0 + timedelta(minutes=i))) for i in range(2000)])
        assert wal.stat().st_size > 100 * 4096
        # no commit checkpoints (autocheckpoint 0), yet the checkpointer thread copies the
        # WAL into the database file while the connection stays open; once it has, the next
        # commit starts the WAL over. (The forced RESTART past WAL_RESTART_PAGES matters
        # only under writers that never pause: see the 1M-window bench in docs/gateway.md.)
        wait_until(lambda: db.stat().st_size > size, 10, "the WAL copied into the database")
        wait_until(lambda: not _commit_grows_wal(s, wal), 10, "the WAL started over")
        assert _count(s, "SELECT COUNT(*) FROM windows") == 2000
    finally:
        s.close()
