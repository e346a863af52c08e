"""Hostile devices and wrong clocks through a REAL Mosquitto into real SQLite (issue 18).

Each test here failed on the code before its fix: the batch holding a year-9999 window was
retried for ever, a reused message_id was dropped silently, junk was stored whole, a million
visitors a minute were summed into the rollups, and windows of a store registered late
stayed dead letters.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import MqttSettings
from gateway.ingest import Ingestor
from gateway.storage import Storage
from storesense.broker import Mosquitto
from storesense.cli import main as cli
from tests.gateway.helpers import TOPICS, message, recent_day, store, window
from tests.gateway.mqtt_helpers import count, publish_all
from tests.waiting import wait_until

pytestmark = pytest.mark.broker
T = recent_day() + timedelta(hours=10)  # these gateways run on the real clock
ACCOUNTED = ("SELECT (SELECT COUNT(*) FROM dead_letters) + "
             "(SELECT COALESCE(SUM(count), 0) FROM dead_letter_counts)")


def _db(path: Path, *stores: tuple[str, str]) -> Path:
    s = Storage(path)
    s.upsert_stores([store(sid, tz=tz) for sid, tz in stores])
    s.close()
    return path


@contextmanager
def _ingestor(broker: Mosquitto, db: Path, client_id: str) -> Iterator[Ingestor]:
    storage = Storage(db)
    ing = Ingestor(MqttSettings(port=broker.port, client_id=client_id), storage)
    ing.start()
    try:
        assert ing.connected.wait(10)
        yield ing
    finally:
        ing.stop()
        storage.close()


def _no_redelivery_after_restart(broker: Mosquitto, db: Path, client_id: str,
                                 store_id: str) -> None:
    """A restart on the same session receives only a new window: everything was acked."""
    with _ingestor(broker, db, client_id) as again:
        publish_all(broker, [message(window(store_id, T + timedelta(hours=5)))])
        wait_until(lambda: again.stats.stored == 1, 20, "the new window")
        assert again.stats.received == 1


def _reasons(db: Path) -> list[str]:
    conn = sqlite3.connect(str(db))
    try:
        return [r[0] for r in conn.execute("SELECT reason FROM dead_letters ORDER BY id")]
    finally:
        conn.close()


def test_windows_at_the_ends_of_time_are_dead_lettered_and_their_batch_stored(
    broker: Mosquitto, tmp_path: Path,
) -> None:
    # 9999-12-31T20:00Z is in year 10000 in Shanghai; 0001-01-01T00:00Z is in year 0 in New
    # York: both passed validation and then broke the rollup, stalling every store's ingest
    db = _db(tmp_path / "g.db", ("sh", "Asia/Shanghai"), ("ny", "America/New_York"))
    good = [message(window(s, T + timedelta(minutes=i)))
            for i in range(50) for s in ("sh", "ny")]
    bad = [message(window("sh", datetime(9999, 12, 31, 20, tzinfo=UTC))),
           message(window("ny", datetime(1, 1, 1, tzinfo=UTC)))]
    with _ingestor(broker, db, "gw-time") as ing:
        publish_all(broker, good[:50] + bad + good[50:])  # one batch, bad ones in the middle
        wait_until(lambda: ing.stats.received == 102, 30, "all 102 deliveries")
        wait_until(lambda: ing.stats.stored == 100, 30, "the 100 valid windows stored")
        assert ing.stats.dead == 2
    reasons = _reasons(db)
    assert len(reasons) == 2 and all("implausible time" in r for r in reasons)
    assert "window_end 9999-12-31T20:01:00+00:00" in reasons[0]
    assert "after the gateway's clock" in reasons[0]
    assert "0001-01-01T00:00:00+00:00" in reasons[1] and "days before" in reasons[1]
    assert count(db, "SELECT SUM(visitors) FROM rollup_day") == 300
    _no_redelivery_after_restart(broker, db, "gw-time", "sh")


def test_a_message_that_breaks_the_commit_is_dead_lettered_and_the_rest_stored(
    broker: Mosquitto, tmp_path: Path,
) -> None:
    # Whatever else may make a write fail for one message (here a real SQLite trigger that
    # aborts the insert of one camera's window), the batch around it must not be retried
    # for ever: the message is split off and dead-lettered with the error, whole.
    db = _db(tmp_path / "g.db", ("s1", "UTC"))
    conn = sqlite3.connect(str(db))
    conn.execute("CREATE TRIGGER cursed BEFORE INSERT ON windows WHEN NEW.camera_id = 'cursed' "
                 "BEGIN SELECT RAISE(ABORT, 'cursed camera'); END")
    conn.close()
    msgs = [message(window("s1", T + timedelta(minutes=i))) for i in range(200)]
    culprit = message(window("s1", T, camera_id="cursed"))
    with _ingestor(broker, db, "gw-poison") as ing:
        publish_all(broker, [*msgs[:120], culprit, *msgs[120:]])
        wait_until(lambda: ing.stats.stored == 200, 30, "the 200 other windows stored")
        assert (ing.stats.received, ing.stats.dead) == (201, 1)
    conn = sqlite3.connect(str(db))
    (reason, payload), = conn.execute("SELECT reason, payload FROM dead_letters").fetchall()
    conn.close()
    assert "IntegrityError" in reason and "cursed camera" in reason
    assert bytes(payload) == culprit[1]  # kept whole
    assert count(db, "SELECT SUM(in_count) FROM rollup_day") == 600
    _no_redelivery_after_restart(broker, db, "gw-poison", "s1")


def test_a_reused_message_id_with_other_content_is_dead_lettered_and_the_first_kept(
    broker: Mosquitto, tmp_path: Path,
) -> None:
    db = _db(tmp_path / "g.db", ("s1", "UTC"))
    first = message(window("s1", T, ins=3))
    other = message(window("s1", T, ins=50))  # same message_id, other counts
    assert json.loads(first[1])["message_id"] == json.loads(other[1])["message_id"]
    with _ingestor(broker, db, "gw-reuse") as ing:
        publish_all(broker, [first, first, other])  # within one batch
        wait_until(lambda: ing.stats.received == 3, 20, "the first three")
        publish_all(broker, [other, first])  # and against the stored copy
        wait_until(lambda: ing.stats.received == 5, 20, "all five")
        assert (ing.stats.stored, ing.stats.duplicates, ing.stats.dead) == (1, 2, 2)
    assert _reasons(db) == ["message_id reused with different content (the first copy is "
                            "kept)"] * 2
    assert count(db, "SELECT SUM(in_count) FROM rollup_day") == 3
    conn = sqlite3.connect(str(db))
    assert conn.execute("SELECT payload FROM windows").fetchone()[0] == first[1].decode()
    conn.close()


def test_a_junk_flood_from_one_device_is_cut_counted_and_does_not_grow_the_database(
    broker: Mosquitto, tmp_path: Path,
) -> None:
    # the probe: one device sending 250 kB of junk a message grew the file by 2.9 GB in 30 s
    db = _db(tmp_path / "g.db", ("s1", "UTC"))
    junk = [bytes([i]) * 250_000 for i in range(120)]  # 30 MB, every payload different

    def size() -> int:
        return sum(p.stat().st_size for p in tmp_path.glob("g.db*") if p.is_file())

    with _ingestor(broker, db, "gw-junk") as ing:
        before = size()
        publish_all(broker, [(TOPICS.aggregate("s1", "door"), j) for j in junk])
        wait_until(lambda: count(db, ACCOUNTED) == len(junk), 60, "every junk message")
        assert ing.stats.dead == len(junk)
        grown = size() - before
    assert grown < 2_000_000, f"the database grew by {grown} bytes"
    conn = sqlite3.connect(str(db))
    rows = conn.execute("SELECT payload, size, sha256, reason FROM dead_letters").fetchall()
    counted = conn.execute("SELECT SUM(count), SUM(bytes) FROM dead_letter_counts").fetchone()
    conn.close()
    # a minute's budget (30) is stored; a flood that straddles a minute gets two budgets
    assert 30 <= len(rows) <= 60 and counted == (len(junk) - len(rows),
                                                 250_000 * (len(junk) - len(rows)))
    by_hash = {hashlib.sha256(j).hexdigest(): j for j in junk}
    for payload, n, sha, reason in rows:
        assert n == 250_000 and len(payload) == 4096 and reason
        assert by_hash[sha][:4096] == payload


def test_windows_with_impossible_counts_are_dead_lettered_not_summed(
    broker: Mosquitto, tmp_path: Path,
) -> None:
    stores = [(f"s{i}", "UTC") for i in range(20)]
    db = _db(tmp_path / "g.db", *stores)
    huge = [message(window(f"s{i % 20}", T + timedelta(minutes=i // 20), ins=1_000_000,
                           outs=0)) for i in range(200)]
    with _ingestor(broker, db, "gw-counts") as ing:
        publish_all(broker, [*huge, message(window("s0", T + timedelta(hours=3)))])
        wait_until(lambda: ing.stats.received == 201, 30, "all 201 deliveries")
        assert (ing.stats.stored, ing.stats.dead) == (1, 200)
    assert count(db, ACCOUNTED) == 200
    assert count(db, "SELECT SUM(in_count) FROM rollup_day") == 3
    assert all("implausible count: line 'door' 1000000 in" in r for r in _reasons(db))


def test_windows_of_a_store_registered_later_are_stored_then_once(
    broker: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    db = _db(tmp_path / "g.db", ("s1", "UTC"))
    early = [message(window(s, T + timedelta(minutes=i), ins=2, outs=0))
             for i in range(30) for s in ("late", "later")]
    with _ingestor(broker, db, "gw-late") as ing:
        publish_all(broker, early)
        wait_until(lambda: ing.stats.dead == 60, 20, "60 windows of unknown stores")
        assert count(db, "SELECT COUNT(*) FROM dead_letters WHERE replay_store = 'late'") == 30
        # registering the store replays its windows (the import CLI; PUT /stores alike)
        csv_file = tmp_path / "stores.csv"
        csv_file.write_text("store_id,name,timezone\nlate,Late,Asia/Tokyo\n")
        assert cli(["gateway", "import-stores", str(csv_file), "--db", str(db)]) == 0
        assert count(db, "SELECT COUNT(*) FROM windows WHERE store_id = 'late'") == 30
        assert count(db, "SELECT SUM(visitors) FROM rollup_day WHERE store_id = 'late'") == 60
        assert count(db, "SELECT COUNT(*) FROM dead_letters WHERE replay_store = 'late'") == 0
        # a store registered by other means: the command; again: nothing changes
        conn = sqlite3.connect(str(db))
        conn.execute("INSERT INTO stores (store_id, name, timezone, updated_at) "
                     "VALUES ('later', 'Later', 'UTC', '2026-01-01T00:00:00Z')")
        conn.commit()
        conn.close()
        capsys.readouterr()
        for _ in range(2):
            assert cli(["gateway", "replay-dead-letters", "--db", str(db)]) == 0
        outs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [o["stored"] for o in outs] == [30, 0]
        assert cli(["gateway", "replay-dead-letters", "--db", str(db), "--store", "nope"]) == 2
        # live windows of the now registered stores go straight in
        publish_all(broker, [message(window("late", T + timedelta(hours=2)))])
        wait_until(lambda: ing.stats.stored == 1, 20, "a live window of the late store")
    assert count(db, "SELECT COUNT(*) FROM dead_letters") == 0
    assert count(db, "SELECT SUM(visitors) FROM rollup_day WHERE store_id LIKE 'late%'") == 123

