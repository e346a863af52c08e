"""Detector models HQ sends to devices: upload, list, publish to a device, download.

    POST /api/v1/models?name=yolox_nano          hq: the file as the body; kept as <sha256>.onnx
    GET  /api/v1/models                          hq: what was uploaded
    POST /api/v1/models/{sha256}/publish         hq: {"store_id", "device_id"}: retained
                                                 ModelUpdateMessage on .../{device}/model
    GET  /api/v1/models/{sha256}/file?store=&device=&sig=   the device's download

A device has no API token: its download URL carries an HMAC of (sha256, store, device) under a
key only this gateway holds, and reaches it only on the device's own model topic, which the
broker ACL lets no other device read. A URL is good for that device and that file only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import paho.mqtt.client as mqtt
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from gateway.config import GatewaySettings, ModelSettings
from gateway.errors import ApiError
from gateway.routes import HQ, StorageDep, _json_body, get_settings
from gateway.scope import check_store
from models.registry import AUTO_DETECTORS
from storesense.config import describe_validation_error
from storesense.schema import IDENT_PATTERN, ModelUpdateMessage
from storesense.topics import Topics

router = APIRouter()
SHA256 = re.compile(r"^[0-9a-f]{64}$")
KEY_FILE = "download.key"
PUBLISH_TIMEOUT_S = 10.0
SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]


def model_dir(settings: GatewaySettings) -> Path:
    return settings.models.dir or settings.db.parent / "models"


def _key(directory: Path) -> bytes:
    """The download key, made once (mode 600) and kept beside the models."""
    path = directory / KEY_FILE
    directory.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    return key


def signature(key: bytes, sha256: str, store_id: str, device_id: str) -> str:
    return hmac.new(key, f"{sha256}/{store_id}/{device_id}".encode(), "sha256").hexdigest()


def download_path(key: bytes, sha256: str, store_id: str, device_id: str) -> str:
    query = urlencode({"store": store_id, "device": device_id,
                       "sig": signature(key, sha256, store_id, device_id)})
    return f"/api/v1/models/{sha256}/file?{query}"


def _sha(sha256: str) -> str:
    if not SHA256.match(sha256):
        raise ApiError(422, "invalid_request", "sha256 must be 64 lowercase hex digits")
    return sha256


def _record(directory: Path, sha256: str) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads((directory / f"{sha256}.json").read_text())
    except (OSError, ValueError) as e:
        raise ApiError(404, "not_found", f"no model with sha256 {sha256}") from e
    return record


@router.post("/models")
async def upload_model(request: Request, who: HQ, settings: SettingsDep,
                       name: Annotated[str, Query(pattern=IDENT_PATTERN)]) -> dict[str, Any]:
    if name not in AUTO_DETECTORS:
        raise ApiError(422, "invalid_request", f"name {name!r}: the file is decoded as this "
                       f"detector, one of {list(AUTO_DETECTORS)}")
    body = await _bounded_body(request, settings.models)
    digest = hashlib.sha256(body).hexdigest()
    directory = model_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "sha256": digest, "bytes": len(body), "uploaded_by": who.name,
              "uploaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write(directory / f"{digest}.onnx", body)
    _write(directory / f"{digest}.json", json.dumps(record).encode())
    return record


async def _bounded_body(request: Request, models: ModelSettings) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > models.max_bytes:
            raise ApiError(413, "too_large", f"model larger than {models.max_bytes} bytes")
    if not body:
        raise ApiError(422, "invalid_request", "the body must be the model file")
    return bytes(body)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@router.get("/models")
def list_models(_: HQ, settings: SettingsDep) -> list[dict[str, Any]]:
    directory = model_dir(settings)
    if not directory.is_dir():
        return []
    return sorted((json.loads(p.read_text()) for p in directory.glob("*.json")),
                  key=lambda r: str(r["uploaded_at"]))


@router.post("/models/{sha256}/publish")
async def publish_model(sha256: str, request: Request, who: HQ, settings: SettingsDep,
                        storage: StorageDep) -> dict[str, Any]:
    directory = model_dir(settings)
    record = _record(directory, _sha(sha256))
    body = await _json_body(request)
    if not isinstance(body, dict) or set(body) != {"store_id", "device_id"}:
        raise ApiError(422, "invalid_request", "body must be {\"store_id\", \"device_id\"}")
    check_store(storage, who, str(body["store_id"]))
    try:
        msg = ModelUpdateMessage(
            store_id=body["store_id"], device_id=body["device_id"],
            update_id=f"{record['name']}-{sha256[:12]}-"
                      f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}",
            name=record["name"], sha256=sha256, bytes=record["bytes"],
            url=download_path(_key(directory), sha256, body["store_id"], body["device_id"]))
    except ValidationError as e:
        raise ApiError(422, "invalid_request", describe_validation_error(e)) from e
    topic = Topics(settings.mqtt.topic_prefix).model(msg.store_id, msg.device_id)
    why = publish_retained(settings, topic, msg.model_dump_json().encode())
    if why is not None:
        raise ApiError(503, "unavailable", f"model update not published: {why}")
    return {"topic": topic, "message": msg.model_dump()}


def publish_retained(settings: GatewaySettings, topic: str, payload: bytes) -> str | None:
    """QoS 1, retained, on a connection of its own (as [models] names it); None when the
    broker acknowledged it, else why not."""
    m, ms = settings.mqtt, settings.models
    v5 = m.protocol == "5"
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=ms.client_id,
                    protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    user, password = (ms.mqtt_username, ms.mqtt_password) if ms.mqtt_username \
        else (m.username, m.password)
    if user:
        c.username_pw_set(user, password)
    connected, refused = threading.Event(), []

    def on_connect(cl: Any, u: Any, f: Any, rc: Any, p: Any) -> None:
        if rc.is_failure:
            refused.append(str(rc))
        connected.set()

    def on_publish(cl: Any, u: Any, mid: int, rc: Any, p: Any) -> None:
        if getattr(rc, "is_failure", False):  # MQTT 5: e.g. "Not authorized" by the ACL
            refused.append(str(rc))

    c.on_connect, c.on_publish = on_connect, on_publish
    try:
        c.connect(m.host, m.port, m.keepalive_s)
    except OSError as e:
        return f"cannot reach the broker at {m.host}:{m.port}: {e}"
    c.loop_start()
    try:
        if not connected.wait(PUBLISH_TIMEOUT_S) or refused:
            return f"the broker refused the connection: {refused or 'no answer'}"
        info = c.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(PUBLISH_TIMEOUT_S)
        if not info.is_published():
            return "the broker did not acknowledge the publish in time"
        return f"the broker refused the publish: {refused}" if refused else None
    except (RuntimeError, ValueError) as e:
        return f"publish failed: {e}"
    finally:
        c.disconnect()
        c.loop_stop()


@router.get("/models/{sha256}/file")
def download_model(sha256: str, settings: SettingsDep,
                   store: Annotated[str, Query(pattern=IDENT_PATTERN)],
                   device: Annotated[str, Query(pattern=IDENT_PATTERN)],
                   sig: Annotated[str, Query(max_length=64)]) -> FileResponse:
    directory = model_dir(settings)
    expected = signature(_key(directory), _sha(sha256), store, device)
    if not hmac.compare_digest(sig.encode(), expected.encode()):
        raise ApiError(403, "forbidden", "this download link is not valid for that device")
    path = directory / f"{sha256}.onnx"
    if not path.is_file():
        raise ApiError(404, "not_found", f"no model with sha256 {sha256}")
    return FileResponse(path, media_type="application/octet-stream")
