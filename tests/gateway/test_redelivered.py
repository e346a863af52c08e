"""Redelivered windows a gateway already stores: told apart by a lookup, not decoded again.

A gateway that dies between its commit and its acks leaves the broker holding the batch as
unacknowledged; the next connection of its session gets it back with the DUP flag set. Real
Mosquitto, both engines: a session takes the messages without acking them, then an ingestor
resumes it over a database that already stores some of them (some with other content)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import msgspec
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.config import MqttSettings
from gateway.ingest import Ingestor
from gateway.storage import REUSED_ID, Storage
from storesense.acks import decode_confirmation
from storesense.broker import Mosquitto
from tests.gateway.helpers import TOPICS, message, store, window
from tests.gateway.mqtt_helpers import publish_all
from tests.waiting import wait_until

pytestmark = pytest.mark.broker
T0 = datetime(2026, 11, 24, 9, tzinfo=UTC)  # believable to the storage fixture's clock
SESSION = "gw-redelivered"


def test_redelivered_copies_of_stored_windows_are_counted_without_decoding(
    broker: Mosquitto, storage: Storage,
) -> None:
    storage.upsert_stores([store(f"s{i}") for i in range(3)])
    wins = [window(f"s{i % 3}", T0 + timedelta(minutes=i // 3)) for i in range(60)]
    msgs = [message(w) for w in wins]
    # committed by the gateway that died: 40 of them, 10 of those with other content under
    # the same message_id (an edge that reused an id)
    kept = [msgspec.structs.replace(w, frames=w.frames - 1) if i >= 30 else w
            for i, w in enumerate(wins[:40])]
    assert storage.store_windows(kept).stored == 40  # stored as published, byte for byte

    dead_session = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=SESSION,
                               protocol=mqtt.MQTTv5, manual_ack=True)
    got: list[int] = []
    subscribed = threading.Event()
    dead_session.on_message = lambda _c, _u, m: got.append(m.mid)
    dead_session.on_subscribe = lambda *_: subscribed.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    dead_session.connect(broker.host, broker.port, clean_start=False, properties=props)
    dead_session.loop_start()
    dead_session.subscribe(TOPICS.all_aggregates(), qos=1)
    assert subscribed.wait(10)
    publish_all(broker, msgs)
    wait_until(lambda: len(got) == 60, 20, "the 60 windows at the session that dies")
    dead_session.disconnect()  # never acked: the broker keeps all 60 in flight
    dead_session.loop_stop()

    confirmed: list[str] = []
    edge = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edge", protocol=mqtt.MQTTv5)
    edge_ready = threading.Event()
    edge.on_message = lambda _c, _u, m: confirmed.extend(decode_confirmation(bytes(m.payload))[0])
    edge.on_subscribe = lambda *_: edge_ready.set()
    edge.connect(broker.host, broker.port)
    edge.loop_start()
    edge.subscribe(f"{TOPICS.prefix}/+/+/ack", qos=0)
    assert edge_ready.wait(10)

    ing = Ingestor(MqttSettings(port=broker.port, client_id=SESSION), storage)
    ing.start()
    try:
        wait_until(lambda: ing.stats.received == 60, 30, "the 60 redeliveries")
        s = ing.stats
        # 30 identical stored copies skipped by lookup; 20 new stored; 10 reused ids
        assert (s.redelivered_copies, s.duplicates, s.stored, s.dead) == (30, 30, 20, 10)
        conn = storage.read()
        assert conn.execute("SELECT COUNT(*) FROM windows").fetchone()[0] == 60
        assert conn.execute("SELECT SUM(windows) FROM rollup_day").fetchone()[0] == 60
        reasons = [r[0] for r in conn.execute("SELECT reason FROM dead_letters")]
        assert reasons == [REUSED_ID] * 10
        # every one of them is confirmed to its edge, the skipped copies too
        wait_until(lambda: len(confirmed) == 60, 10, "60 confirmations")
        assert sorted(confirmed) == sorted(w.message_id for w in wins)
    finally:
        ing.stop()
        edge.disconnect()
        edge.loop_stop()


def test_only_byte_identical_copies_on_their_own_topic_count(storage: Storage) -> None:
    storage.upsert_stores([store("s1"), store("s2")])
    w = window("s1", T0)
    topic, raw = message(w)
    storage.ingest([(topic, raw)])
    spaced = raw.replace(b'"frames":', b'"frames": ')  # the same window, other bytes
    other_topic = TOPICS.aggregate("s2", "door")
    unknown = message(window("s1", T0 + timedelta(minutes=1)))
    found = storage.stored_copies([(topic, raw), (topic, spaced), (other_topic, raw),
                                   unknown, (topic, b"not json"), (topic, raw)])
    assert found == {0: w.message_id, 5: w.message_id}
