"""Ingest through a REAL Mosquitto into real SQLite: redeliveries, SIGKILL, shared groups."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.config import MqttSettings
from gateway.ingest import Ingestor
from gateway.storage import Storage
from storesense.broker import Mosquitto
from storesense.schema import DeviceStatus
from tests.gateway.helpers import TOPICS, message, recent_day, store, window
from tests.gateway.mqtt_helpers import (
    count,
    publish_all,
    start_gateway,
    stop,
    write_config,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.broker
T0 = recent_day()  # the gateways here run on the real clock
STORES = [f"s{i}" for i in range(20)]


def _messages(n: int) -> list[tuple[str, bytes]]:
    """n distinct entrance windows spread over 20 stores, one minute apart per store."""
    return [message(window(STORES[i % 20], T0 + timedelta(minutes=i // 20), ins=2, outs=1))
            for i in range(n)]


def _registered_db(path: Path) -> Path:
    s = Storage(path)
    s.upsert_stores([store(sid) for sid in STORES])
    s.close()
    return path


@contextmanager
def _running_ingestor(broker: Mosquitto, tmp_path: Path,
                      client_id: str) -> Iterator[tuple[Storage, Ingestor]]:
    """An ingestor subscribed to ``broker`` over a registered database; stopped after."""
    storage = Storage(_registered_db(tmp_path / "g.db"))
    ing = Ingestor(MqttSettings(port=broker.port, client_id=client_id), storage)
    ing.start()
    try:
        assert ing.connected.wait(10)
        yield storage, ing
    finally:
        ing.stop()
        storage.close()


def test_publish_properties_are_skipped_and_payloads_kept(broker: Mosquitto,
                                                          tmp_path: Path) -> None:
    # the MQTT 5 fast path skips PUBLISH properties by their length: with properties long
    # enough for a two-byte length, every payload must still arrive byte for byte
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = 3600
    props.ContentType = "application/json"
    props.UserProperty = [("edge-build", "x" * 150), ("site", "s1")]
    with _running_ingestor(broker, tmp_path, "gw-props") as (storage, ing):
        msgs = _messages(40)
        publish_all(broker, msgs, properties=props)
        wait_until(lambda: ing.stats.received == 40, 30, "all 40 deliveries")
        assert (ing.stats.stored, ing.stats.dead) == (40, 0)
        stored = {r[0]: r[1] for r in storage.read().execute(
            "SELECT message_id, payload FROM windows")}
        for _, raw in msgs:
            mid = json.loads(raw)["message_id"]
            assert stored[mid] == raw.decode()


def test_redeliveries_and_duplicates_store_once(broker: Mosquitto, tmp_path: Path) -> None:
    with _running_ingestor(broker, tmp_path, "gw-dup") as (storage, ing):
        msgs = _messages(300)
        publish_all(broker, msgs + msgs[:100] + msgs[50:60])  # edge redeliveries
        wait_until(lambda: ing.stats.received == 410, 30, "all 410 deliveries")
        assert (ing.stats.stored, ing.stats.duplicates, ing.stats.dead) == (300, 110, 0)
        conn = storage.read()
        assert conn.execute("SELECT COUNT(*) FROM windows").fetchone()[0] == 300
        assert conn.execute("SELECT SUM(visitors) FROM rollup_day").fetchone()[0] == 600
        on = DeviceStatus(store_id="s1", device_id="box", state="online", sent_at=T0)
        publish_all(broker, [(TOPICS.status("s1", "box"), on.to_json())])
        wait_until(lambda: conn.execute("SELECT COUNT(*) FROM device_status").fetchone()[0]
                   == 1, 10, "device status")


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_committed_messages_are_acked_so_a_restart_gets_no_redeliveries(
    broker: Mosquitto, tmp_path: Path, protocol: str
) -> None:
    storage = Storage(_registered_db(tmp_path / "g.db"))
    settings = MqttSettings(port=broker.port, client_id=f"gw-ack-{protocol}", protocol=protocol)
    msgs = _messages(1500)  # more than one read and one ack write
    first = Ingestor(settings, storage)
    first.start()
    try:
        assert first.connected.wait(10)
        publish_all(broker, msgs[:1000])
        wait_until(lambda: first.stats.stored == 1000, 30, "the first 1000 windows")
    finally:
        first.stop()
    again = Ingestor(settings, storage)  # same persistent session
    again.start()
    try:
        assert again.connected.wait(10)
        # the broker resends un-acked messages before new ones: when the new ones are all
        # in, any redelivery would have been received first
        publish_all(broker, msgs[1000:])
        wait_until(lambda: again.stats.stored == 500, 30, "the next 500 windows")
        assert (again.stats.received, again.stats.duplicates) == (500, 0)
    finally:
        again.stop()
        storage.close()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_sigkill_under_load_loses_nothing(
    broker: Mosquitto, tmp_path: Path, protocol: str
) -> None:
    db = _registered_db(tmp_path / "g.db")
    config = write_config(tmp_path / "gw.toml", broker, db, "gw-kill", protocol=protocol)
    n = 20_000
    msgs = _messages(n)
    gw = start_gateway(config, tmp_path / "gw.log")
    try:
        # the session must exist before publishing, or the broker has nowhere to queue
        wait_until(lambda: "subscribed" in (tmp_path / "gw.log").read_text(), 20, "subscribe")
        publish_all(broker, msgs[: n // 2], client_id="pub1")
        wait_until(lambda: count(db, "SELECT COUNT(*) FROM windows") > 2000, 60, "ingest")
        gw.send_signal(signal.SIGKILL)
        gw.wait(10)
        at_kill = count(db, "SELECT COUNT(*) FROM windows")
        publish_all(broker, msgs[n // 2:], client_id="pub2")  # queued for the dead session
        gw = start_gateway(config, tmp_path / "gw.log")
        wait_until(lambda: count(db, "SELECT COUNT(*) FROM windows") == n, 120,
                   f"all {n} windows (had {at_kill} at the kill)")
        assert at_kill < n
        assert count(db, "SELECT COUNT(DISTINCT message_id) FROM windows") == n
        assert count(db, "SELECT SUM(in_count) FROM rollup_day") == 2 * n  # nothing twice
        assert count(db, "SELECT COUNT(*) FROM dead_letters") == 0
    finally:
        stop(gw)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_two_gateways_on_a_shared_subscription_split_and_store_once(
    broker: Mosquitto, tmp_path: Path, protocol: str,
) -> None:
    """Two processes, two database files: each got a share, no message in both, union is
    everything (a disjoint split is what a shared group promises)."""
    dbs = [_registered_db(tmp_path / f"g{i}.db") for i in range(2)]
    procs = [start_gateway(write_config(tmp_path / f"gw{i}.toml", broker, db, f"gw-{i}",
                                        group="ingest", protocol=protocol),
                           tmp_path / f"gw{i}.log")
             for i, db in enumerate(dbs)]
    try:
        for i in range(2):
            wait_until(lambda i=i: "subscribed" in (tmp_path / f"gw{i}.log").read_text(), 20,
                       f"gateway {i} subscribed")
        n = 4000
        publish_all(broker, _messages(n))
        wait_until(lambda: sum(count(d, "SELECT COUNT(*) FROM windows") for d in dbs) >= n,
                   60, "both gateways storing")
        for p in procs:
            stop(p)
        ids = [_ids(d) for d in dbs]
        assert all(ids), "each gateway should get a share"
        assert not ids[0] & ids[1]
        assert len(ids[0] | ids[1]) == n
    finally:
        for p in procs:
            stop(p)


def _ids(db: Path) -> set[str]:
    import sqlite3

    conn = sqlite3.connect(str(db))
    try:
        return {r[0] for r in conn.execute("SELECT message_id FROM windows")}
    finally:
        conn.close()


def test_gateway_run_with_two_ingest_workers_stores_each_message_once(
    broker: Mosquitto, tmp_path: Path,
) -> None:
    db = _registered_db(tmp_path / "g.db")
    config = write_config(tmp_path / "gw.toml", broker, db, "gw", group="ingest")
    config.write_text(config.read_text() + "[ingest]\nworkers = 2\n")
    gw = start_gateway(config, tmp_path / "gw.log")
    try:
        wait_until(lambda: all(f"as gw-w{i} " in broker.log_path.read_text()
                               for i in range(2)), 30, "both workers connected")
        n = 4000
        publish_all(broker, _messages(n))
        wait_until(lambda: count(db, "SELECT COUNT(*) FROM windows") == n, 60, "all stored")
        stop(gw)
        assert gw.returncode == 0
        assert count(db, "SELECT SUM(in_count) FROM rollup_day") == 2 * n
    finally:
        stop(gw)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_messages_published_while_the_gateway_is_away_are_queued_for_it(
    broker: Mosquitto, tmp_path: Path, protocol: str,
) -> None:
    storage = Storage(_registered_db(tmp_path / "g.db"))
    settings = MqttSettings(port=broker.port, client_id="gw-away", protocol=protocol)
    msgs = _messages(200)
    first = Ingestor(settings, storage)
    first.start()
    try:
        assert first.connected.wait(10)
        wait_until(lambda: "gw-away" in broker.log_path.read_text(), 10, "connected")
        publish_all(broker, msgs[:100])
        wait_until(lambda: first.stats.received == 100, 20, "first half")
    finally:
        first.stop()
    publish_all(broker, msgs[100:])  # nobody connected: the broker keeps them in the session
    second = Ingestor(settings, storage)
    second.start()
    try:
        wait_until(lambda: second.stats.stored == 100, 20, "second half from the session")
        assert storage.read().execute("SELECT COUNT(*) FROM windows").fetchone()[0] == 200
    finally:
        second.stop()
        storage.close()


DEVICE = """
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from storesense.schema import DeviceStatus, utcnow
from storesense.topics import Topics
port, topic = int(sys.argv[1]), Topics().status("s1", "box")
def status(state):
    return DeviceStatus(store_id="s1", device_id="box", state=state,
                        sent_at=utcnow()).to_json()
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="box")
c.will_set(topic, status("offline"), qos=1, retain=True)
c.connect("127.0.0.1", port, keepalive=60)
c.loop_start()
c.publish(topic, status("online"), qos=1, retain=True).wait_for_publish(10)
print("online", flush=True)
time.sleep(60)
"""


def test_device_vanishing_is_shown_offline_by_its_last_will(
    broker: Mosquitto, tmp_path: Path,
) -> None:
    import subprocess
    import sys

    storage = Storage(_registered_db(tmp_path / "g.db"))
    ing = Ingestor(MqttSettings(port=broker.port, client_id="gw-will"), storage)
    ing.start()
    device = subprocess.Popen([sys.executable, "-c", DEVICE, str(broker.port)],
                              stdout=subprocess.PIPE)
    try:
        assert ing.connected.wait(10)
        assert device.stdout is not None and device.stdout.readline().strip() == b"online"

        def state() -> str | None:
            row = storage.read().execute("SELECT state FROM device_status").fetchone()
            return None if row is None else str(row[0])

        wait_until(lambda: state() == "online", 10, "online status")
        device.kill()  # no goodbye: the broker publishes the will
        wait_until(lambda: state() == "offline", 15, "last will offline")
    finally:
        device.kill()
        device.wait(5)
        ing.stop()
        storage.close()
