"""Test helpers: real WindowAggregate messages and a subscriber that records what arrives."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.node.service import EdgeNode
from storesense.schema import OccupancyStats, WindowAggregate, message_id
from tests.brokers import Mosquitto
from tests.waiting import wait_until

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


class NodeThread:
    """EdgeNode.run in a thread, as `storesense edge run` runs it in the main thread."""

    def __init__(self, node: EdgeNode) -> None:
        self.node = node
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.node.run, args=(self.stop,))
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def window(store: str, camera: str, i: int, window_s: int = 10) -> WindowAggregate:
    """The i-th window of a camera, synthetic timestamps, otherwise a real message."""
    start = T0 + timedelta(seconds=i * window_s)
    return WindowAggregate(
        message_id=message_id(store, camera, start), store_id=store, camera_id=camera,
        window_start=start, window_end=start + timedelta(seconds=window_s), frames=i,
        occupancy=OccupancyStats(avg=0.5, max=1),
    )


class Collector:
    """A subscriber with a persistent session (clean_session=False, QoS 1), recording
    (topic, payload) in arrival order; the broker queues for it while it is away."""

    def __init__(
        self, broker: Mosquitto, topic: str, *, client_id: str = "collector",
        username: str | None = None, password: str | None = None, **tls: Any,
    ) -> None:
        self.topic = topic
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.subscriptions = 0  # SUBACKs so far: one per (re)connect
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        if username:
            c.username_pw_set(username, password)
        if tls:
            c.tls_set(**tls)
        c.on_connect = lambda cl, *_: cl.subscribe(topic, qos=1)
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.reconnect_delay_set(1, 2)
        self.client = c
        c.connect_async(broker.host, broker.port, 10)
        c.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError(f"collector could not subscribe to {topic}")

    def _on_subscribe(self, *args: Any) -> None:
        self.subscriptions += 1
        self.subscribed.set()

    def wait_resubscribed(self, before: int, timeout: float = 15) -> None:
        """After a broker restart: wait until this subscriber is back (session resumed)."""
        wait_until(lambda: self.subscriptions > before, timeout, f"{self.topic} resubscribed")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [p for _, p in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class NoFrames:
    """A camera that delivers nothing: tests that use it put their windows in the outbox."""

    state, since, last_error = "ok", 0.0, None
    dropped_frames = frames_total = 0
    fps, ended = 0.0, False

    def read(self, timeout: float | None = None) -> None:
        threading.Event().wait(timeout or 0.0)

    def close(self) -> None:
        pass


class NoAnalytics:
    """A pipeline that closes no window (subclasses override ``process``)."""

    def process(self, image: Any, t: float) -> list[WindowAggregate]:
        return []

    def reconfigure(self, config: Any) -> None:
        pass

    def flush(self, t: float) -> list[WindowAggregate]:
        return []

    def model_infos(self) -> list[Any]:
        return []
