"""The issue's check: an alert fired by stopping a real edge node and resolved by restarting
it. A real Mosquitto, `storesense gateway run` as a process (its alert task, offline after
6 s here), an edge node (real EdgeNode, MQTT and status; an idle camera) and a real HTTP
receiver for the webhook."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from edge.node.config import EdgeConfig
from edge.node.service import EdgeNode
from gateway.auth import create_token
from gateway.storage import Storage
from storesense.broker import free_port
from tests.brokers import Mosquitto
from tests.edge_node.helpers import NoAnalytics, NodeThread, NoFrames
from tests.gateway.helpers import store
from tests.gateway.mqtt_helpers import start_gateway, stop
from tests.gateway.test_alerts_webhook import Receiver
from tests.waiting import wait_until

pytestmark = pytest.mark.broker


class Node(NodeThread):
    def __init__(self, tmp: Path, broker: Mosquitto) -> None:
        cfg = EdgeConfig.model_validate({
            "store_id": "s1", "device_id": "edge1", "state_dir": str(tmp / "state"),
            "status_interval_s": 0.3, "demographics": False,
            "broker": {"host": broker.host, "port": broker.port, "keepalive_s": 5,
                       "reconnect_min_s": 0.5, "reconnect_max_s": 1.0},
            "cameras": [{"camera_id": "door", "source": "unused.mp4"}],
        })
        super().__init__(EdgeNode(cfg, lambda cam: NoFrames(), lambda cam, a: NoAnalytics()))


def _gateway_config(tmp: Path, broker: Mosquitto, db: Path, port: int, hook: str) -> Path:
    path = tmp / "gateway.toml"
    path.write_text("\n".join([
        f'db = "{db}"', "status_interval_s = 0.3",
        "[mqtt]", f'host = "{broker.host}"', f"port = {broker.port}",
        "[api]", f"port = {port}",
        "[alerts]", "interval_s = 0.2", "offline_minutes = 0.1",  # 6 s: 20 status intervals
        f'webhook_url = "{hook}"', "retry_initial_s = 0.2", ""]))
    return path


def test_stopping_a_node_raises_device_offline_once_restarting_resolves_it(
        tmp_path: Path, broker: Mosquitto) -> None:
    db = tmp_path / "gateway.db"
    storage = Storage(db)
    storage.upsert_stores([store("s1")])
    token = create_token(storage, "ops", "hq")
    storage.close()
    receiver = Receiver()
    port = free_port()
    gw = start_gateway(_gateway_config(tmp_path, broker, db, port, receiver.url),
                       tmp_path / "gateway.log", api=True)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=10,
                       headers={"Authorization": f"Bearer {token}"})
    node = Node(tmp_path, broker)
    try:
        def alerts() -> list[dict[str, object]]:
            try:
                r = api.get("/alerts", params={"store_id": "s1"})
            except httpx.TransportError:
                return []  # the gateway is still starting
            return list(r.json()) if r.status_code == 200 else []

        def device_seen() -> bool:
            try:
                return any(d["device_id"] == "edge1" for d in api.get("/devices").json())
            except httpx.TransportError:
                return False

        wait_until(device_seen, 60, "the node's status at the gateway")
        assert alerts() == [], alerts()
        node.close()  # its last status says offline
        wait_until(lambda: any(a["kind"] == "device_offline" for a in alerts()), 30,
                   "device_offline raised")
        (a,) = alerts()
        assert (a["subject"], a["resolved_at"]) == ("edge1", None)
        wait_until(lambda: len(receiver.got) == 1, 10, "the webhook's 'raised'")
        node = Node(tmp_path, broker)
        wait_until(lambda: alerts()[0]["resolved_at"] is not None, 30, "resolved")
        wait_until(lambda: len(receiver.got) == 2, 10, "the webhook's 'resolved'")
        assert [(g["event"], g["alert"]["id"], g["alert"]["kind"], g["alert"]["subject"])
                for g in receiver.got] == [("raised", a["id"], "device_offline", "edge1"),
                                           ("resolved", a["id"], "device_offline", "edge1")]
        assert len(alerts()) == 1, alerts()  # raised once, resolved once
    finally:
        node.close()
        stop(gw)
        api.close()
        receiver.close()
