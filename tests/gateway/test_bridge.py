"""deploy/chain/bridge-region.conf, as written, between a real region Mosquitto and a real
HQ Mosquitto: a store's windows published to its region reach the gateway at HQ, the
gateway's confirmations come back down to the region, and windows sent while HQ's broker
is down are delivered once it is back."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.config import MqttSettings
from gateway.ingest import Ingestor
from gateway.storage import Storage
from storesense.broker import Mosquitto, free_port
from tests.gateway.helpers import TOPICS, message, recent_day, store, window
from tests.gateway.mqtt_helpers import publish_all
from tests.waiting import wait_until

pytestmark = pytest.mark.broker
BRIDGE = Path(__file__).resolve().parents[2] / "deploy" / "chain" / "bridge-region.conf"
T0 = recent_day()


def _bridge_to(hq: Mosquitto) -> str:
    """The deploy file with HQ's address pointed at the test's HQ broker (no TLS here)."""
    text = BRIDGE.read_text()
    text, n = re.subn(r"(?m)^address .*$", f"address {hq.host}:{hq.port}", text)
    assert n == 1
    return text


def test_region_broker_bridges_windows_to_hq_and_confirmations_back(tmp_path: Path) -> None:
    hq = Mosquitto(tmp_path / "hq", port=free_port()).start()
    region = Mosquitto(tmp_path / "region", extra=_bridge_to(hq)).start()
    storage = Storage(tmp_path / "g.db")
    storage.upsert_stores([store("r1")])
    gateway = Ingestor(MqttSettings(port=hq.port, client_id="hq-gw", shared_group="hq"),
                       storage)
    acks: list[str] = []
    edge = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="r1-edge", protocol=mqtt.MQTTv5)
    subscribed = threading.Event()
    edge.on_subscribe = lambda *_: subscribed.set()
    edge.on_message = lambda _c, _u, m: acks.append(m.topic)
    try:
        gateway.start()
        assert gateway.connected.wait(10)
        wait_until(lambda: "bridge-region-REGION" in hq.log_path.read_text(), 20, "bridge up")
        edge.connect(region.host, region.port)
        edge.loop_start()
        edge.subscribe(TOPICS.ack("r1", "door"), qos=0)
        assert subscribed.wait(10)
        first = [message(window("r1", T0 + timedelta(minutes=i))) for i in range(50)]
        publish_all(region, first)  # to the REGION broker, as a store would
        wait_until(lambda: gateway.stats.stored == 50, 30, "windows at HQ")
        wait_until(lambda: len(acks) > 0, 20, "confirmations back in the region")
        hq.stop()  # HQ's broker goes away; the region keeps what its stores send
        later = [message(window("r1", T0 + timedelta(minutes=50 + i))) for i in range(50)]
        publish_all(region, later, client_id="r1-later")
        hq.start()
        wait_until(lambda: gateway.stats.stored == 100, 60, "the outage's windows at HQ")
        assert storage.read().execute("SELECT COUNT(*) FROM windows").fetchone()[0] == 100
    finally:
        edge.loop_stop()
        gateway.stop()
        storage.close()
        region.stop()
        hq.stop()
