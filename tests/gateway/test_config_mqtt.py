"""Configuration from HQ end to end on the deployed broker (deploy/mosquitto: passwords and
ACL): the gateway's publisher, its ingest and a running edge node (real EdgeNode, its MQTT,
remote-config and status code; an idle camera). Published retained, applied by the node,
reported back in its status; rolled back; an installer's report recorded and made the
retained config; the ingest user may not publish configs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.node.config import EdgeConfig
from edge.node.service import EdgeNode
from gateway import config_history as ch
from gateway.config import MqttSettings
from gateway.config_publisher import ConfigPublisher, ConfigPublishSettings
from gateway.ingest import Ingestor
from gateway.rollups import utc_text
from gateway.storage import Storage
from storesense.schema import AnalyticsConfig, CameraConfigMessage
from storesense.topics import Topics
from tests.edge_node.deploy_broker import DeployedMosquitto, make_auth
from tests.edge_node.helpers import Collector, NoAnalytics, NoFrames
from tests.gateway.helpers import store
from tests.waiting import wait_until

TOPICS = Topics()
pytestmark = pytest.mark.broker
LINE = {"name": "door", "points": [0.1, 0.5, 0.9, 0.5]}


class Site:
    """Broker, gateway (storage, ingest, publisher) and one running edge node."""

    def __init__(self, tmp: Path, broker: DeployedMosquitto, creds: dict[str, str]) -> None:
        self.broker, self.creds = broker, creds
        self.storage = Storage(tmp / "gateway.db")
        self.storage.upsert_stores([store("s1")])
        m = MqttSettings(host=broker.host, port=broker.port, client_id="gateway",
                         username="gateway", password=creds["gateway"])
        self.ingest = Ingestor(m, self.storage, batch_ms=5)
        self.ingest.start()
        self.publisher = ConfigPublisher(m, ConfigPublishSettings(
            username="hq", password=creds["hq"], client_id="hq"), self.storage)
        self.publisher.start()
        cfg = EdgeConfig.model_validate({
            "store_id": "s1", "device_id": "edge1", "state_dir": str(tmp / "state"),
            "status_interval_s": 0.3, "demographics": False,
            "broker": {"host": broker.host, "port": broker.port, "username": "edge1@s1",
                       "password": creds["edge1@s1"], "keepalive_s": 5,
                       "reconnect_min_s": 0.5, "reconnect_max_s": 1.0},
            "cameras": [{"camera_id": "door", "source": "unused.mp4"}],
        })
        self.node = EdgeNode(cfg, lambda cam: NoFrames(), lambda cam, a: NoAnalytics())
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.node.run, args=(self.stop,))
        self.thread.start()
        wait_until(lambda: self.ingest.connected.is_set() and self.publisher.connected, 20,
                   "gateway connections")

    def running(self) -> str | None:
        """The config_version the node reports for its camera, from the stored status."""
        run = ch.running(self.storage.read(), "s1")
        return run[0]["config_version"] if run else None

    def publish(self, analytics: dict[str, Any], source: str = "hq",
                rollback_of: int | None = None) -> ch.Entry:
        with self.storage.transaction() as conn:
            e = ch.add(conn, "s1", "door", AnalyticsConfig.model_validate(analytics), source,
                       "ops", utc_text(self.storage.clock()), rollback_of=rollback_of)
        assert self.publisher.publish(e) is None
        return e

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.publisher.stop()
        self.ingest.stop()
        self.storage.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    # gateway-1 (a second ingest process's user, which may read everything) checks what is
    # retained: the broker makes the user name the client id, so "gateway" would take over
    # the ingest's session
    creds = make_auth(tmp_path, "store_id,device_id,cameras\ns1,edge1,door\n",
                      "--gateway-workers", "2")
    with DeployedMosquitto(tmp_path) as broker:
        s = Site(tmp_path, broker, creds)
        try:
            yield s
        finally:
            s.close()


def retained(site: Site, topic: str) -> list[bytes]:
    """What a newcomer subscribing to ``topic`` gets: the retained message."""
    c = Collector(site.broker, topic, client_id="gateway-1", username="gateway-1",
                  password=site.creds["gateway-1"])
    try:
        wait_until(lambda: bool(c.payloads()), 10, f"retained message on {topic}")
        return c.payloads()
    finally:
        c.close()


def test_published_applied_reported_and_rolled_back(site: Site) -> None:
    v1 = site.publish({"lines": [LINE], "window_s": 60})
    (payload,) = retained(site, TOPICS.config("s1", "door"))
    assert CameraConfigMessage.model_validate_json(payload) == v1.message()
    wait_until(lambda: site.running() == "hq-1", 20, "the node to run hq-1")
    assert ch.get(site.storage.read(), "s1", "door", 1).published_at is not None  # type: ignore[union-attr]
    site.publish({"lines": [LINE], "window_s": 20})
    wait_until(lambda: site.running() == "hq-2", 20, "the node to run hq-2")
    assert site.node.workers["door"].applied.analytics.window_s == 20  # type: ignore[union-attr]
    site.publish(v1.message().analytics.model_dump(), "rollback", rollback_of=1)
    wait_until(lambda: site.running() == "hq-3", 20, "the node to run the rollback")
    assert site.node.workers["door"].applied.analytics == v1.message().analytics  # type: ignore[union-attr]


def test_a_rejected_config_shows_with_the_nodes_reason(site: Site) -> None:
    site.publish({"lines": [LINE]})
    wait_until(lambda: site.running() == "hq-1", 20, "hq-1")
    # valid for the gateway, refused by the node: the camera is not the payload's
    bad = json.dumps({**json.loads(ch.get(site.storage.read(), "s1", "door", 1).payload),  # type: ignore[union-attr]
                      "camera_id": "other", "config_version": "x"}).encode()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hq", protocol=mqtt.MQTTv5)
    c.username_pw_set("hq", site.creds["hq"])
    c.connect(site.broker.host, site.broker.port)
    c.loop_start()
    c.publish(TOPICS.config("s1", "door"), bad, qos=1, retain=True).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()

    def error() -> str | None:
        run = ch.running(site.storage.read(), "s1")
        return run[0]["config_error"] if run else None

    wait_until(lambda: bool(error()), 20, "the node's rejection in its status")
    assert "camera 'other'" in (error() or "") and site.running() == "hq-1"


def test_an_installer_report_is_recorded_and_becomes_the_retained_config(site: Site) -> None:
    site.publish({"lines": [LINE], "window_s": 60})
    wait_until(lambda: site.running() == "hq-1", 20, "hq-1")
    saved = CameraConfigMessage(store_id="s1", camera_id="door", config_version="inst-7",
                                analytics=AnalyticsConfig.model_validate(
                                    {"lines": [LINE], "window_s": 15}))
    # what the node sends after its installer page saved (edge/node/service.py)
    site.node.transport.publish(TOPICS.reported("s1", "door"), saved.model_dump_json().encode(),
                                retain=True, what="reported config")
    wait_until(lambda: len(ch.history(site.storage.read(), "s1", "door")) == 2, 20,
               "the report in the history")
    e = ch.history(site.storage.read(), "s1", "door")[0]
    assert (e.version, e.source, e.config_version) == (2, "installer", "inst-7")
    assert site.publisher.publish_pending() == 1
    (payload,) = retained(site, TOPICS.config("s1", "door"))
    assert CameraConfigMessage.model_validate_json(payload) == saved
    wait_until(lambda: site.running() == "inst-7", 20, "the node to run the installer's")
    assert site.publisher.publish_pending() == 0


def test_the_ingest_user_may_not_publish_configs(site: Site) -> None:
    m = MqttSettings(host=site.broker.host, port=site.broker.port, username="gateway-1",
                     password=site.creds["gateway-1"])
    wrong = ConfigPublisher(m, ConfigPublishSettings(client_id="gateway-1"), site.storage)
    wrong.start()
    try:
        wait_until(lambda: wrong.connected, 10, "connected")
        with site.storage.transaction() as conn:
            e = ch.add(conn, "s1", "door", AnalyticsConfig(), "hq", "ops", "2026-01-01T00:00:00Z")
        why = wrong.publish(e)
        assert why is not None and "refused" in why and "authori" in why.lower()
        assert ch.get(site.storage.read(), "s1", "door", 1).published_at is None  # type: ignore[union-attr]
    finally:
        wrong.stop()
