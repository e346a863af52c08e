"""Broker security with the shipped recipes: per-device ACL from make_auth.py, TLS from
make_tls.sh, against a real Mosquitto."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.node.config import BrokerConfig, EdgeConfig, TlsConfig
from edge.node.outbox import Outbox
from edge.node.outbox_publisher import OutboxPublisher
from edge.node.service import EdgeNode
from edge.node.transport import MqttTransport
from storesense.topics import Topics
from tests.brokers import Mosquitto
from tests.edge_node.helpers import Collector, NoAnalytics, NoFrames, wait_until, window

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "mosquitto"
TOPICS = Topics()


def _run_make_auth(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(DEPLOY / "make_auth.py"), str(tmp_path / "devices.csv"),
         str(tmp_path / "auth")],
        check=True, capture_output=True,
    )


def _make_auth(tmp_path: Path) -> dict[str, str]:
    devices = tmp_path / "devices.csv"
    devices.write_text("store_id,device_id,cameras\ns1,edge1,cam1;cam2\ns2,edge1,\n")
    out = tmp_path / "auth"
    _run_make_auth(tmp_path)
    with open(out / "secrets.csv") as f:
        creds = {r["user"]: r["password"] for r in csv.DictReader(f)}
    # Rerunning to add a device keeps every existing password.
    devices.write_text(devices.read_text() + "s3,edge7,\n")
    _run_make_auth(tmp_path)
    with open(out / "secrets.csv") as f:
        again = {r["user"]: r["password"] for r in csv.DictReader(f)}
    assert set(again) == {*creds, "edge7@s3"} and creds.items() <= again.items()
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
    intruder = _client(broker, "edge1@s2", creds["edge1@s2"])
    clients = [intruder]
    try:
        # Mosquitto 2.0 drops a denied MQTT 3.1.1 publish: 2.0.11 PUBACKs it (3.1.1 has no
        # reason codes) and closes the connection. It has decided once either happened.
        info = intruder.publish(TOPICS.aggregate("s1", "cam1"), b"forged", qos=1)
        wait_until(lambda: info.is_published() or not intruder.is_connected(), 10,
                   "the broker to handle the forged publish")
        same_device = _client(broker, "edge1@s2", creds["edge1@s2"])
        owner = _client(broker, "edge1@s1", creds["edge1@s1"])
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
    other = Collector(broker, TOPICS.config("s1", "cam1"), client_id="edge1@s2",
                      username="edge1@s2", password=creds["edge1@s2"])
    own = Collector(broker, TOPICS.config("s1", "cam1"), client_id="edge1@s1",
                    username="edge1@s1", password=creds["edge1@s1"])
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
    bad.username_pw_set("edge1@s1", "wrong")
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


# --------------------------------------------------------------------------- refused publishes






def _node(tmp_path: Path, broker: Mosquitto, store: str, cameras: list[str], user: str,
          password: str) -> EdgeNode:
    cfg = EdgeConfig.model_validate({
        "store_id": store, "device_id": "edge1", "state_dir": str(tmp_path / "state"),
        "status_interval_s": 0.5, "demographics": False,
        "broker": {"host": broker.host, "port": broker.port, "username": user,
                   "password": password, "keepalive_s": 5, "reconnect_min_s": 0.5,
                   "reconnect_max_s": 1.0},
        # a Collector stands in for the gateway: the PUBACK is the end of the line
        "outbox": {"confirm": False},
        "cameras": [{"camera_id": c, "source": "unused.mp4"} for c in cameras],
    })
    return EdgeNode(cfg, lambda cam: NoFrames(), lambda cam, analytics: NoAnalytics())


def _camera_error(col: Collector, camera_id: str) -> str | None:
    """The camera's last_error in the latest "online" status the collector received."""
    with col.lock:
        statuses = [json.loads(p) for t, p in col.messages if t.endswith("/status")]
    online = [st for st in statuses if st["state"] == "online"]
    if not online:
        return "no status yet"
    cam = next(c for c in online[-1]["cameras"] if c["camera_id"] == camera_id)
    return cam["last_error"]  # type: ignore[no-any-return]


def test_window_the_acl_refuses_stays_in_the_outbox_and_goes_once_allowed(
    secured, tmp_path: Path,
) -> None:
    """cam3 is missing from the device's ACL (cameras column cam1;cam2): its window is
    refused (MQTT 5 PUBACK 135), kept, reported in the camera's status, retried with
    backoff, and delivered once the operator adds the camera and reloads Mosquitto."""
    broker, creds = secured
    node = _node(tmp_path, broker, "s1", ["cam1", "cam3"], "edge1@s1", creds["edge1@s1"])
    node.transport.retry_min_s, node.transport.retry_max_s = 0.2, 0.4  # seconds, not minutes
    allowed, refused = window("s1", "cam1", 0), window("s1", "cam3", 0)
    for w in (allowed, refused):
        node.outbox.put(TOPICS.aggregate("s1", w.camera_id), w)
    gw = Collector(broker, "storesense/v1/#", client_id="gw", username="gateway",
                   password=creds["gateway"])
    stop = threading.Event()
    run = threading.Thread(target=node.run, args=(stop,))
    run.start()

    def delivered() -> list[str]:
        with gw.lock:
            return [json.loads(p)["message_id"] for t, p in gw.messages if t.endswith("/agg")]

    try:
        wait_until(lambda: delivered() == [allowed.message_id], 10, "cam1's window")
        wait_until(lambda: "Not authorized" in (_camera_error(gw, "cam3") or ""), 10,
                   "cam3's refusal in the status")
        assert _camera_error(gw, "cam3") == (
            f"publish of {refused.message_id} to {TOPICS.aggregate('s1', 'cam3')} "
            "refused by broker: Not authorized"
        )
        assert _camera_error(gw, "cam1") is None
        assert [r.message_id for r in node.outbox.oldest(10)] == [refused.message_id]
        # The operator adds cam3 to the device's row and reloads (SIGHUP re-reads the ACL).
        devices = tmp_path / "devices.csv"
        devices.write_text(devices.read_text().replace("cam1;cam2", "cam1;cam2;cam3"))
        _run_make_auth(tmp_path)
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: delivered() == [allowed.message_id, refused.message_id], 10,
                   "cam3's window after the ACL was fixed")
        wait_until(lambda: node.outbox.stats().depth == 0, 5, "the outbox to empty")
        wait_until(lambda: _camera_error(gw, "cam3") is None, 5, "the error to clear")
    finally:
        stop.set()
        run.join(15)
        gw.close()
    assert not run.is_alive()


def test_store_id_the_credentials_do_not_allow_keeps_windows_without_reconnect_loop(
    secured, tmp_path: Path,
) -> None:
    """A store id typo in edge.toml: every topic of the node is refused, status included, so
    HQ cannot be told; the node keeps its windows, says why in its own status, and does not
    reconnect in a loop (each refusal closes the connection in Mosquitto 2.0.11)."""
    broker, creds = secured
    node = _node(tmp_path, broker, "s9", ["cam1"], "edge1@s1", creds["edge1@s1"])
    w = window("s9", "cam1", 0)
    node.outbox.put(TOPICS.aggregate("s9", "cam1"), w)
    connects: list[float] = []
    on_connected = node.transport._on_connected
    assert on_connected is not None
    node.transport._on_connected = lambda: (connects.append(time.monotonic()), on_connected())
    stop = threading.Event()
    run = threading.Thread(target=node.run, args=(stop,))
    run.start()
    try:
        status_topic = TOPICS.status("s9", "edge1")
        wait_until(lambda: node.transport.refusal(status_topic) is not None
                   and node.transport.refusal(TOPICS.aggregate("s9", "cam1")) is not None,
                   10, "the status and the window to be refused")
        wait_until(node.transport.connected.is_set, 10, "the reconnect after the refusals")
        before = len(connects)
        # paho reconnects 1 s after each refusal: a status sent at every reconnect would
        # give 2 or 3 connections here; only the one after the last refusal may come.
        time.sleep(3.0)
        assert len(connects) <= before + 1
        cam = json.loads(node.status_payload())["cameras"][0]
        assert cam["last_error"] == (
            f"publish of {w.message_id} to {TOPICS.aggregate('s9', 'cam1')} "
            "refused by broker: Not authorized"
        )
        assert node.outbox.stats().depth == 1
    finally:
        stop.set()
        run.join(15)
    assert not run.is_alive()
