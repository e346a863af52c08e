"""Outbox -> MQTT through a real Mosquitto: outages, ordering, throttling; 3.1.1 to amqtt."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

from edge.node.config import BrokerConfig
from edge.node.outbox import Outbox
from edge.node.outbox_publisher import PACING_BURST, OutboxPublisher
from edge.node.transport import MqttTransport
from storesense.broker import EmbeddedBroker
from storesense.topics import Topics
from tests.brokers import Mosquitto
from tests.edge_node.helpers import Collector, wait_until, window

TOPICS = Topics()


def _plain(broker: Mosquitto) -> BrokerConfig:
    return BrokerConfig(
        host=broker.host, port=broker.port, keepalive_s=5, reconnect_min_s=0.5,
        reconnect_max_s=1.0,
    )


def _edge(tmp_path: Path, broker: Mosquitto, rate: float, inflight: int = 10):
    outbox = Outbox(tmp_path / "outbox.sqlite")
    transport = MqttTransport(_plain(broker), "edge-test")
    pub = OutboxPublisher(outbox, transport, rate=rate, max_inflight=inflight)
    transport._on_connected = pub.notify
    return outbox, transport, pub


def _first_arrival_ids(col: Collector) -> list[str]:
    seen: dict[str, None] = {}
    for p in col.payloads():
        seen.setdefault(json.loads(p)["message_id"], None)
    return list(seen)


def test_broker_outage_loses_nothing_and_keeps_window_order(
    tmp_path: Path, broker: Mosquitto
) -> None:
    col = Collector(broker, TOPICS.all_aggregates())
    outbox, transport, pub = _edge(tmp_path, broker, rate=0, inflight=5)
    transport.start()
    pub.start()
    wins = [window("s1", "cam1", i) for i in range(60)]
    topic = TOPICS.aggregate("s1", "cam1")
    stop_producer = threading.Event()

    def produce() -> None:  # one window closes every 30 ms, through the outage
        for w in wins:
            outbox.put(topic, w)
            pub.notify()
            if stop_producer.wait(0.03):
                return

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        wait_until(lambda: len(col.payloads()) >= 10, 10, "first windows before the outage")
        broker.stop()
        wait_until(lambda: not transport.connected.is_set(), 10, "edge to notice the outage")
        depth_during = outbox.stats().depth
        wait_until(lambda: outbox.stats().depth > depth_during + 5, 10, "backlog to build")
        subs = col.subscriptions
        broker.start()
        col.wait_resubscribed(subs)
        producer.join(10)
        wait_until(lambda: len(_first_arrival_ids(col)) == len(wins), 30, "every window")
        wait_until(lambda: outbox.stats().depth == 0, 10, "outbox to empty after acks")
    finally:
        stop_producer.set()
        producer.join(5)
        pub.stop()
        transport.stop()
        col.close()
    assert _first_arrival_ids(col) == [w.message_id for w in wins]


def test_backlog_replay_is_throttled_to_the_configured_rate(
    tmp_path: Path, broker: Mosquitto
) -> None:
    col = Collector(broker, TOPICS.all_aggregates())
    outbox, transport, pub = _edge(tmp_path, broker, rate=40.0)
    wins = [window("s1", "cam1", i) for i in range(60)]
    for w in wins:  # a backlog, as after an outage
        outbox.put(TOPICS.aggregate("s1", "cam1"), w)
    transport.start()
    t0 = time.monotonic()
    pub.start()
    try:
        wait_until(lambda: len(_first_arrival_ids(col)) == len(wins), 20, "the backlog")
        elapsed = time.monotonic() - t0
    finally:
        pub.stop()
        transport.stop()
        col.close()
    # 60 messages at 40/s: 59 intervals of 25 ms, of which PACING_BURST may be made up.
    assert elapsed >= (59 - PACING_BURST) / 40.0
    assert _first_arrival_ids(col) == [w.message_id for w in wins]


def test_never_more_in_flight_than_the_brokers_receive_maximum(tmp_path: Path) -> None:
    # Mosquitto announces max_inflight_messages as Receive Maximum in its CONNACK
    with Mosquitto(tmp_path / "broker", extra="max_inflight_messages 3") as broker:
        assert broker.proc is not None
        transport = MqttTransport(_plain(broker), "edge-quota")
        transport.start()
        try:
            wait_until(transport.connected.is_set, 10, "connected")
            assert transport.send_quota == 3
            topic = TOPICS.aggregate("s1", "cam1")
            acked = threading.Event()
            assert transport.publish(topic, b"first", on_ack=acked.set)  # a new topic: alone
            assert acked.wait(10)
            broker.proc.send_signal(signal.SIGSTOP)  # no PUBACK comes back meanwhile
            try:
                sent = [transport.publish(topic, b"%d" % i) for i in range(5)]
                assert (sent, transport.inflight()) == ([True] * 3 + [False] * 2, 3)
            finally:
                broker.proc.send_signal(signal.SIGCONT)
            wait_until(lambda: transport.inflight() == 0, 10, "the three answered")
            assert transport.publish(topic, b"after")
        finally:
            transport.stop()


def test_mqtt_3_1_1_for_a_broker_without_5(tmp_path: Path) -> None:
    """The demo's embedded broker (amqtt) refuses MQTT 5 connections; protocol = "3.1.1"."""
    broker = EmbeddedBroker().start()
    try:
        outbox = Outbox(tmp_path / "outbox.sqlite")
        cfg = BrokerConfig(host=broker.host, port=broker.port, protocol="3.1.1")
        transport = MqttTransport(cfg, "edge-311")
        pub = OutboxPublisher(outbox, transport, rate=0)
        outbox.put(TOPICS.aggregate("s1", "cam1"), window("s1", "cam1", 0))
        transport.start()
        pub.start()
        try:
            wait_until(lambda: outbox.stats().depth == 0, 10, "the window acknowledged")
        finally:
            pub.stop()
            transport.stop()
    finally:
        broker.stop()
