"""Remote model update end to end: a real gateway (uvicorn, SQLite, ingest) where HQ uploads
and publishes a model, a real Mosquitto, and a running edge node (real pipeline on real
video) that fetches it over HTTP, checks it, swaps it, and keeps it or rolls back."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import paho.mqtt.client as mqtt
import pytest
from onnx import TensorProto, helper, numpy_helper
from paho.mqtt.enums import CallbackAPIVersion

from dashboards.demo import serve
from edge.node.config import EdgeConfig
from edge.node.model_update import collapsed
from edge.node.service import EdgeNode, real_parts
from gateway.auth import create_token
from gateway.config import GatewaySettings
from gateway.ingest import Ingestor
from gateway.storage import Storage
from models.registry import spec
from storesense.topics import Topics
from tests.brokers import Mosquitto
from tests.edge_node.helpers import Collector, NodeThread
from tests.waiting import wait_until

pytestmark = [pytest.mark.broker, pytest.mark.video]
TOPICS = Topics()
YOLOX = spec("yolox_nano").sha256
BYTETRACK = spec("bytetrack_nano_mot17").sha256


@dataclass
class Gateway:
    url: str
    storage: Storage
    client: httpx.Client
    models_dir: Path

    def upload(self, name: str, content: bytes) -> dict[str, Any]:
        r = self.client.post("/models", params={"name": name}, content=content,
                             headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.text
        return dict(r.json())

    def publish(self, sha256: str) -> dict[str, Any]:
        r = self.client.post(f"/models/{sha256}/publish",
                             json={"store_id": "s1", "device_id": "edge1"})
        assert r.status_code == 200, r.text
        return dict(r.json())

    def device(self) -> dict[str, Any] | None:
        r = self.client.get("/devices")
        assert r.status_code == 200, r.text
        return next((d for d in r.json() if d["device_id"] == "edge1"), None)


@pytest.fixture
def gateway(tmp_path: Path, broker: Mosquitto) -> Iterator[Gateway]:
    settings = GatewaySettings.model_validate({
        "db": str(tmp_path / "gw" / "gateway.db"), "status_interval_s": 0.5,
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": "gw-ingest"}})
    settings.db.parent.mkdir(parents=True)
    storage = Storage(settings.db)
    storage.upsert_stores([{"store_id": "s1", "name": "Store 1", "timezone": "UTC"}])
    token = create_token(storage, "hq", "hq")
    ingest = Ingestor(settings.mqtt, storage, 100, 20.0)
    ingest.start()
    try:
        with serve(storage, settings) as url, httpx.Client(
                base_url=url + "/api/v1", timeout=30,
                headers={"Authorization": f"Bearer {token}"}) as client:
            yield Gateway(url, storage, client, settings.db.parent / "models")
    finally:
        ingest.stop()
        storage.close()


class Node(NodeThread):
    def __init__(self, tmp: Path, broker: Mosquitto, models_dir: Path, video: Path,
                 gateway_url: str) -> None:
        self.cfg = EdgeConfig.model_validate({
            "store_id": "s1", "device_id": "edge1", "state_dir": str(tmp / "state"),
            "models_dir": str(models_dir), "status_interval_s": 0.5, "demographics": False,
            "broker": {"host": broker.host, "port": broker.port, "keepalive_s": 5,
                       "reconnect_min_s": 0.5, "reconnect_max_s": 1.0},
            "outbox": {"confirm": False},
            "detector": {"model": "yolox_nano"},
            "model_update": {"gateway_url": gateway_url, "check_frames": 15},
            "cameras": [{"camera_id": "door", "source": str(video), "loop": True,
                         "analytics": {"window_s": 10, "identity": {"reid": False}}}],
        })
        super().__init__(EdgeNode(self.cfg, *real_parts(self.cfg)))


@pytest.fixture
def video(tmp_path: Path, eval_dir: Path) -> Path:
    return eval_dir / "PETS09-S2L1" / "video.mp4"


@pytest.fixture
def status(broker: Mosquitto) -> Iterator[Collector]:
    c = Collector(broker, TOPICS.status("s1", "edge1"), client_id="status-watch")
    yield c
    c.close()


def models_of(status: Collector) -> dict[str, str]:
    payloads = [p for p in status.payloads() if p]
    if not payloads:
        return {}
    return {m["name"]: m["sha256"] for m in json.loads(payloads[-1]).get("models", [])}


def model_error(status: Collector) -> str | None:
    payloads = [p for p in status.payloads() if p]
    return json.loads(payloads[-1]).get("model_error") if payloads else None


def blind_detector() -> bytes:
    """A valid ONNX graph with yolox_nano's input and output that finds no one."""
    zeros = numpy_helper.from_array(np.zeros((1, 10, 85), np.float32), "zeros")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
         helper.make_node("Mul", ["mean", "zeros"], ["output"])],
        "blind", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 416, 416])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10, 85])], [zeros])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def test_collapse_rule() -> None:
    assert collapsed(0.0, 6.9, 0.25, 0.5)
    assert not collapsed(3.1, 6.9, 0.25, 0.5)  # 0.45 of before: the worst a healthy swap gave
    assert not collapsed(0.0, 0.3, 0.25, 0.5)  # a quiet hour cannot judge a model


def test_model_swap_is_seen_in_the_device_status_and_on_devices(
    tmp_path: Path, broker: Mosquitto, gateway: Gateway, models_dir: Path, video: Path,
    status: Collector,
) -> None:
    record = gateway.upload("bytetrack_nano_mot17",
                            (models_dir / "bytetrack_nano_mot17.onnx").read_bytes())
    assert record["sha256"] == BYTETRACK
    node = Node(tmp_path, broker, models_dir, video, gateway.url)
    try:
        wait_until(lambda: models_of(status).get("yolox_nano") == YOLOX, 30, "the first model")
        sent = gateway.publish(BYTETRACK)
        assert sent["topic"] == TOPICS.model("s1", "edge1")
        wait_until(lambda: models_of(status) == {"bytetrack_nano_mot17": BYTETRACK}, 30,
                   "the swapped model in the status")
        state = node.cfg.model_dir / "state.json"
        wait_until(lambda: state.exists() and json.loads(state.read_text())["kept"], 30,
                   "the new model judged and kept")
        assert model_error(status) is None
        wait_until(lambda: (d := gateway.device()) is not None and d["models"] == [
            {"name": "bytetrack_nano_mot17", "sha256": BYTETRACK}], 15, "/devices to show it")
    finally:
        node.close()
    # a restart runs the model it kept
    again = Node(tmp_path, broker, models_dir, video, gateway.url)
    try:
        pipeline: Any = again.node.workers["door"].pipeline
        wait_until(lambda: pipeline.detector.sha256 == BYTETRACK, 30,
                   "the kept model after a restart")
    finally:
        again.close()


def test_a_model_that_fails_to_load_is_rolled_back(
    tmp_path: Path, broker: Mosquitto, gateway: Gateway, models_dir: Path, video: Path,
    status: Collector,
) -> None:
    corrupt = b"this is not an onnx graph " * 4000
    record = gateway.upload("yolox_nano", corrupt)
    assert record["sha256"] == hashlib.sha256(corrupt).hexdigest()  # the sha256 matches
    node = Node(tmp_path, broker, models_dir, video, gateway.url)
    try:
        wait_until(lambda: models_of(status).get("yolox_nano") == YOLOX, 30, "the first model")
        gateway.publish(record["sha256"])
        wait_until(lambda: "cannot be loaded" in (model_error(status) or ""), 30,
                   "the refusal in the status")
        assert models_of(status) == {"yolox_nano": YOLOX}
        wait_until(lambda: "cannot be loaded" in ((gateway.device() or {}).get("model_error")
                                                  or ""), 15, "/devices to show the refusal")
        # remembered: the retained message coming again at a reconnect is not retried
        state = json.loads((node.cfg.model_dir / "state.json").read_text())
        assert record["sha256"] in state["refused"] and state["kept"] is None
    finally:
        node.close()
    # after a restart the retained message comes again: refused at once, with its reason
    (gateway.models_dir / f"{record['sha256']}.onnx").unlink()  # a retry would show as 404
    seen = len(status.payloads())
    again = Node(tmp_path, broker, models_dir, video, gateway.url)
    try:
        def after_restart() -> list[dict[str, Any]]:
            return [json.loads(p) for p in status.payloads()[seen:] if p]

        wait_until(lambda: any("cannot be loaded" in (s.get("model_error") or "")
                               for s in after_restart()), 30, "the remembered refusal")
        assert all("404" not in (s.get("model_error") or "") for s in after_restart())
    finally:
        again.close()


def test_a_file_whose_sha256_does_not_match_is_never_loaded(
    tmp_path: Path, broker: Mosquitto, gateway: Gateway, models_dir: Path, video: Path,
    status: Collector,
) -> None:
    good = (models_dir / "yolox_nano.onnx").read_bytes()
    record = gateway.upload("yolox_nano", good + b"\0")  # another file, its own sha256
    # the gateway's copy changes after the message was made (disk fault, tampering)
    stored = gateway.models_dir / f"{record['sha256']}.onnx"
    stored.write_bytes(good + b"\1")
    node = Node(tmp_path, broker, models_dir, video, gateway.url)
    try:
        wait_until(lambda: models_of(status).get("yolox_nano") == YOLOX, 30, "the first model")
        gateway.publish(record["sha256"])
        wait_until(lambda: "does not match" in (model_error(status) or ""), 30,
                   "the refusal in the status")
        assert models_of(status) == {"yolox_nano": YOLOX}
        assert list(node.cfg.model_dir.glob("*.onnx")) == []
        assert list(node.cfg.model_dir.glob("*.part")) == []
    finally:
        node.close()


def test_a_model_whose_detections_collapse_is_rolled_back(
    tmp_path: Path, broker: Mosquitto, gateway: Gateway, models_dir: Path, video: Path,
    status: Collector,
) -> None:
    record = gateway.upload("yolox_nano", blind_detector())
    node = Node(tmp_path, broker, models_dir, video, gateway.url)
    try:
        wait_until(lambda: models_of(status).get("yolox_nano") == YOLOX, 30, "the first model")
        gateway.publish(record["sha256"])
        wait_until(lambda: "collapsed" in (model_error(status) or ""), 60,
                   "the rollback in the status")
        assert models_of(status) == {"yolox_nano": YOLOX}
        pipeline: Any = node.node.workers["door"].pipeline
        assert pipeline.detector.sha256 == YOLOX
    finally:
        node.close()


def test_download_link_is_good_for_one_device_only(gateway: Gateway, models_dir: Path) -> None:
    record = gateway.upload("yolox_nano", (models_dir / "yolox_nano.onnx").read_bytes())
    url = gateway.publish(record["sha256"])["message"]["url"]
    assert httpx.get(gateway.url + url, timeout=30).content == \
        (models_dir / "yolox_nano.onnx").read_bytes()
    other = url.replace("device=edge1", "device=edge2")
    assert httpx.get(gateway.url + other, timeout=30).status_code == 403
    # uploads and publishing need an hq token
    assert httpx.post(gateway.url + "/api/v1/models", params={"name": "yolox_nano"},
                      content=b"x").status_code == 401
    shutil.rmtree(gateway.models_dir)
    assert httpx.get(gateway.url + url, timeout=30).status_code in (403, 404)


def test_broker_acl_for_model_and_reported_topics(tmp_path: Path) -> None:
    """deploy/mosquitto/make_auth.py: the `models` user writes model updates, a device reads
    only its own and writes its cameras' reported configs, and cannot forge a model update."""
    (tmp_path / "devices.csv").write_text("store_id,device_id,cameras\ns1,edge1,door\n"
                                          "s1,edge2,\n")
    deploy = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
    subprocess.run([sys.executable, str(deploy / "make_auth.py"), str(tmp_path / "devices.csv"),
                    str(tmp_path / "auth")], check=True, capture_output=True)
    with open(tmp_path / "auth" / "secrets.csv") as f:
        creds = {r["user"]: r["password"] for r in csv.DictReader(f)}
    extra = (f"password_file {tmp_path / 'auth' / 'passwd'}\n"
             f"acl_file {tmp_path / 'auth' / 'acl'}\n")
    with Mosquitto(tmp_path / "broker", extra=extra, allow_anonymous=False) as broker:
        hq = Collector(broker, "storesense/v1/#", client_id="gateway", username="gateway",
                       password=creds["gateway"])
        clients = []
        try:
            models = _client(broker, "models", creds["models"])
            clients.append(models)
            for device in ("edge1", "edge2"):
                models.publish(TOPICS.model("s1", device), device.encode(), qos=1,
                               retain=True).wait_for_publish(10)
            edge1 = Collector(broker, "storesense/v1/s1/+/model", client_id="edge1@s1",
                              username="edge1@s1", password=creds["edge1@s1"])
            try:
                wait_until(lambda: edge1.payloads() == [b"edge1"], 10, "edge1's own update")
                edge1.client.publish(TOPICS.reported("s1", "door"), b"{}", qos=1,
                                     retain=True).wait_for_publish(10)
                wait_until(lambda: (TOPICS.reported("s1", "door"), b"{}") in hq.messages, 10,
                           "the reported config at HQ")
                forged = edge1.client.publish(TOPICS.model("s1", "edge2"), b"forged", qos=1)
                wait_until(lambda: forged.is_published() or not edge1.client.is_connected(),
                           10, "the broker to handle the forged update")
            finally:
                edge1.close()
            time.sleep(0.5)
            assert b"forged" not in hq.payloads()
            assert edge1.payloads() == [b"edge1"]
        finally:
            for c in clients:
                c.disconnect()
                c.loop_stop()
            hq.close()


def _client(broker: Mosquitto, user: str, password: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311)
    c.username_pw_set(user, password)
    connected = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: connected.set() if not rc.is_failure else None
    c.connect(broker.host, broker.port, 10)
    c.loop_start()
    assert connected.wait(10), f"{user} could not connect"
    return c
