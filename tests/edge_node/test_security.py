"""Broker security with the shipped recipes: per-device ACL from make_auth.py, TLS from
make_tls.sh, against a real Mosquitto."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import BrokerConfig, TlsConfig
from edge.outbox import Outbox
from edge.transport import MqttTransport, OutboxPublisher
from storesense.topics import Topics
from tests.brokers import Mosquitto
from tests.edge_node.helpers import Collector, wait_until, window

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "mosquitto"
TOPICS = Topics()


def _make_auth(tmp_path: Path) -> dict[str, str]:
    devices = tmp_path / "devices.csv"
    devices.write_text("store_id,device_id,cameras\ns1,edge1,cam1;cam2\ns2,edge1,\n")
    out = tmp_path / "auth"
    subprocess.run(
        [sys.executable, str(DEPLOY / "make_auth.py"), str(devices), str(out)],
        check=True, capture_output=True,
    )
    with open(out / "secrets.csv") as f:
        creds = {r["user"]: r["password"] for r in csv.DictReader(f)}
    # Rerunning to add a device keeps every existing password.
    devices.write_text(devices.read_text() + "s3,edge7,\n")
    subprocess.run(
        [sys.executable, str(DEPLOY / "make_auth.py"), str(devices), str(out)],
        check=True, capture_output=True,
    )
    with open(out / "secrets.csv") as f:
        again = {r["user"]: r["password"] for r in csv.DictReader(f)}
    assert set(again) == {*creds, "s3.edge7"} and creds.items() <= again.items()
    return creds


def _client(broker: Mosquitto, user: str, password: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311)
    c.username_pw_set(user, password)
    connected = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: connected.set() if not rc.is_failure else None
    c.connect(broker.host, broker.port, 10)
    c.loop_start()
    assert connected.wait(10), f"{user} could not connect"
    return c


def _publish_acked(c: mqtt.Client, topic: str, payload: bytes) -> None:
    info = c.publish(topic, payload, qos=1)
    info.wait_for_publish(10)  # PUBACK: the broker has decided about this message
    assert info.is_published()


@pytest.fixture
def secured(tmp_path: Path):
    creds = _make_auth(tmp_path)
    auth = tmp_path / "auth"
    extra = f"password_file {auth / 'passwd'}\nacl_file {auth / 'acl'}\n"
    with Mosquitto(tmp_path / "broker", extra=extra, allow_anonymous=False) as b:
        yield b, creds


def test_device_cannot_publish_under_another_store(secured) -> None:
    broker, creds = secured
    hq = Collector(broker, "storesense/v1/#", client_id="gw", username="gateway",
                   password=creds["gateway"])
    intruder = _client(broker, "s2.edge1", creds["s2.edge1"])
    clients = [intruder]
    try:
        # Mosquitto 2.0 drops a denied MQTT 3.1.1 publish: it either PUBACKs it or closes
        # the connection. Either way it has decided once one of the two happened.
        info = intruder.publish(TOPICS.aggregate("s1", "cam1"), b"forged", qos=1)
        wait_until(lambda: info.is_published() or not intruder.is_connected(), 10,
                   "the broker to handle the forged publish")
        same_device = _client(broker, "s2.edge1", creds["s2.edge1"])
        owner = _client(broker, "s1.edge1", creds["s1.edge1"])
        clients += [same_device, owner]
        _publish_acked(same_device, TOPICS.aggregate("s2", "cam9"), b"own store")
        _publish_acked(owner, TOPICS.aggregate("s1", "cam1"), b"genuine")
        wait_until(lambda: len(hq.payloads()) >= 2, 10, "the allowed publishes")
        assert sorted(hq.payloads()) == [b"genuine", b"own store"]
    finally:
        for c in clients:
            c.disconnect()
            c.loop_stop()
        hq.close()


def test_device_reads_only_its_own_config_and_needs_its_password(secured) -> None:
    broker, creds = secured
    hq = _client(broker, "hq", creds["hq"])
    hq.publish(TOPICS.config("s1", "cam1"), b"s1 config", qos=1, retain=True).wait_for_publish(5)
    other = Collector(broker, TOPICS.config("s1", "cam1"), client_id="s2.edge1",
                      username="s2.edge1", password=creds["s2.edge1"])
    own = Collector(broker, TOPICS.config("s1", "cam1"), client_id="s1.edge1",
                    username="s1.edge1", password=creds["s1.edge1"])
    try:
        wait_until(lambda: own.payloads() == [b"s1 config"], 10, "the device's own config")
        assert other.payloads() == []
    finally:
        for col in (own, other):
            col.close()
        hq.disconnect()
        hq.loop_stop()
    refused = threading.Event()
    bad = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="x", protocol=mqtt.MQTTv311)
    bad.username_pw_set("s1.edge1", "wrong")
    bad.on_connect = lambda c, u, f, rc, p: refused.set() if rc.is_failure else None
    bad.connect(broker.host, broker.port, 10)
    bad.loop_start()
    try:
        assert refused.wait(10)
    finally:
        bad.loop_stop()


def test_edge_transport_over_tls_with_a_private_ca(tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    subprocess.run(
        ["sh", str(DEPLOY / "make_tls.sh"), str(tls), "localhost", "127.0.0.1"],
        check=True, capture_output=True,
    )
    extra = (f"cafile {tls / 'ca.crt'}\ncertfile {tls / 'server.crt'}\n"
             f"keyfile {tls / 'server.key'}\n")
    with Mosquitto(tmp_path / "broker", extra=extra) as broker:
        col = Collector(broker, TOPICS.all_aggregates(), ca_certs=str(tls / "ca.crt"))
        outbox = Outbox(tmp_path / "outbox.sqlite")
        cfg = BrokerConfig(
            host=broker.host, port=broker.port, tls=TlsConfig(ca_file=tls / "ca.crt")
        )
        transport = MqttTransport(cfg, "edge-tls")
        pub = OutboxPublisher(outbox, transport, rate=0)
        w = window("s1", "cam1", 0)
        outbox.put(TOPICS.aggregate("s1", "cam1"), w)
        transport.start()
        pub.start()
        try:
            wait_until(lambda: len(col.payloads()) == 1, 15, "the window over TLS")
            assert json.loads(col.payloads()[0])["message_id"] == w.message_id
            wait_until(lambda: outbox.stats().depth == 0, 5, "the ack over TLS")
        finally:
            pub.stop()
            transport.stop()
            col.close()
