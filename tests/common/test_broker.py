"""The brokers the product starts itself carry real MQTT traffic."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from storesense.broker import EmbeddedBroker, Mosquitto


def roundtrip(host: str, port: int, topic: str = "t/x") -> bytes:
    got: list[bytes] = []
    done = threading.Event()

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        got.append(m.payload)
        done.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.connect(host, port)
    sub.subscribe(topic, qos=1)
    sub.loop_start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect(host, port)
    pub.loop_start()
    try:
        for _ in range(50):
            pub.publish(topic, b"hello", qos=1).wait_for_publish(5)
            if done.wait(0.2):
                break
    finally:
        pub.loop_stop()
        sub.loop_stop()
    return got[0] if got else b""


def test_mosquitto_restart_keeps_port(tmp_path: Path) -> None:
    with Mosquitto(tmp_path) as b:
        port = b.port
        assert roundtrip(b.host, b.port) == b"hello"
        b.restart()
        assert b.port == port
        assert roundtrip(b.host, b.port) == b"hello"


def test_embedded_broker_carries_messages() -> None:
    b = EmbeddedBroker().start()
    try:
        assert roundtrip(b.host, b.port) == b"hello"
    finally:
        b.stop()
