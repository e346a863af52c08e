"""Camera configs sent by HQ as retained MQTT messages: validated, applied, kept on disk."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from pydantic import ValidationError

from edge.node.camera_worker import CameraWorker
from storesense.config import describe_validation_error
from storesense.errors import ConfigError
from storesense.schema import CameraConfigMessage

log = logging.getLogger(__name__)


def parse_remote_config(payload: bytes, store_id: str, camera_id: str) -> CameraConfigMessage:
    """Validate a retained config message for this camera; ConfigError says why not."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"remote config is not valid JSON: {e}") from e
    try:
        msg = CameraConfigMessage.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"remote config invalid: {describe_validation_error(e)}") from e
    if (msg.store_id, msg.camera_id) != (store_id, camera_id):
        raise ConfigError(
            f"remote config is for store {msg.store_id!r} camera {msg.camera_id!r}, "
            f"this is store {store_id!r} camera {camera_id!r}"
        )
    return msg


def offer_remote_config(worker: CameraWorker, payload: bytes, store_id: str) -> None:
    """Queue a config message on its camera's worker, or record there why it was refused."""
    if not payload:  # HQ cleared the retained config: keep what runs now
        return
    try:
        msg = parse_remote_config(payload, store_id, worker.camera_id)
    except ConfigError as e:
        worker.reject_config(str(e))
        return
    if msg != worker.applied:  # retained configs come again on every reconnect
        worker.reconfigure(msg)


class RemoteConfigStore:
    """The last applied remote config per camera, on disk, so a reboot keeps it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def path(self, camera_id: str) -> Path:
        return self.dir / f"{camera_id}.json"

    def save(self, msg: CameraConfigMessage) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path(msg.camera_id).with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(msg.model_dump_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path(msg.camera_id))  # atomic: old or new file, never half

    def load(self, store_id: str, camera_id: str) -> CameraConfigMessage | None:
        p = self.path(camera_id)
        if not p.exists():
            return None
        try:
            return parse_remote_config(p.read_bytes(), store_id, camera_id)
        except ConfigError as e:  # a corrupt file must not stop the node: use edge.toml
            log.warning("ignoring saved remote config %s: %s", p, e)
            return None
