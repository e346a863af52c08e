"""HQ's camera configurations, published retained at QoS 1 (gateway/config_history.py).

Its own MQTT connection, not the ingest's: in deploy/mosquitto the ingest user may write
only confirmations, and the user that may write ``.../config`` is ``hq`` (make_auth.py), so
``[config_publish]`` in gateway.toml names that user; with a broker that has users and no
``[config_publish] username``, nothing is published (gateway/service.py says so at start):
logging in as the ingest's user would take over its session. Only the API process runs it.

A row is stored before it is published. The API publishes at once and waits for the
broker's PUBACK; whatever is left unpublished (broker down, refused, an installer's report
recorded by an ingest process) is published by ``run_forever`` every ``interval_s``, the
camera's latest row only. A retained message sent twice is harmless: the edge applies a
config only when it differs from what it runs.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel, ConfigDict, Field

from gateway import config_history
from gateway.rollups import utc_text
from gateway.storage import Storage
from storesense.topics import Topics

log = logging.getLogger(__name__)


class ConfigPublishSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str | None = Field(
        None, description="broker user allowed to write .../config ('hq' in deploy/mosquitto); "
        "default: [mqtt]'s")
    password: str | None = None
    client_id: str = Field("storesense-gateway-config", min_length=1, max_length=128)
    ack_timeout_s: float = Field(5.0, gt=0.0, le=120.0,
                                 description="how long a publish waits for the broker's ack")
    interval_s: float = Field(2.0, ge=0.1, le=600.0,
                              description="how often unpublished configurations are retried")


class ConfigPublisher:
    """A paho client of its own; ``publish`` is safe from any thread."""

    def __init__(self, mqtt_settings: Any, settings: ConfigPublishSettings,
                 storage: Storage) -> None:
        self.settings, self.storage = settings, storage
        self.topics = Topics(mqtt_settings.topic_prefix)
        self._mqtt = mqtt_settings
        self._lock = threading.Lock()  # one publish at a time: the API and the retry loop
        self._refused: dict[int, str] = {}  # mid -> reason code the broker answered
        v5 = mqtt_settings.protocol == "5"
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
        user = settings.username or mqtt_settings.username
        if user:
            c.username_pw_set(user, settings.password if settings.username
                              else mqtt_settings.password)
        c.reconnect_delay_set(1, 5)
        c.on_publish = self._on_publish
        self.client = c

    def start(self) -> None:
        self.client.connect_async(self._mqtt.host, self._mqtt.port, self._mqtt.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):  # MQTT 5: e.g. "Not authorized" by the ACL
            self._refused[mid] = str(reason)

    def publish(self, entry: config_history.Entry) -> str | None:
        """Publish the row retained and mark it published; None, or why it was not."""
        if not self.connected:
            return "the gateway is not connected to the broker; it will publish when it is"
        topic = self.topics.config(entry.store_id, entry.camera_id)
        with self._lock:
            info = self.client.publish(topic, entry.payload.encode(), qos=1, retain=True)
            try:
                info.wait_for_publish(self.settings.ack_timeout_s)
            except (RuntimeError, ValueError) as e:
                return f"publish failed: {e}"
            if not info.is_published():
                return "the broker did not acknowledge the publish in time; retrying"
            refused = self._refused.pop(info.mid, None)
        if refused:
            return f"the broker refused the publish: {refused}"
        with self.storage.transaction() as conn:
            config_history.mark_published(conn, entry.id, utc_text(self.storage.clock()))
        return None

    def publish_pending(self) -> int:
        """Publish each camera's latest row that is not yet published; returns how many."""
        done = 0
        for entry in config_history.to_publish(self.storage.read()):
            why = self.publish(entry)
            if why is None:
                done += 1
                log.info("published config %s/%s version %d (%s)", entry.store_id,
                         entry.camera_id, entry.version, entry.source)
            else:
                log.warning("config %s/%s version %d not published: %s", entry.store_id,
                            entry.camera_id, entry.version, why)
                break  # the broker is away or refusing: the next round tries again
        return done

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.interval_s):
            try:
                self.publish_pending()
            except Exception:  # a database hiccup must not end the loop
                log.exception("publishing pending configurations failed")
