"""MQTT transport: paho in its own thread, acknowledgements tracked, outbox drained in order.

``MqttTransport`` owns the paho client (VERSION2 callbacks, automatic reconnect, last will).
``OutboxPublisher`` is the single thread that takes rows from the outbox oldest first and
publishes them at QoS 1, at most ``max_inflight`` unacknowledged at once and at most
``rate`` per second, so a whole chain reconnecting after an outage does not flood the broker.
A row is deleted from the outbox in paho's ``on_publish`` (PUBACK for QoS 1).

Messages published but not acknowledged when the connection drops stay in paho's memory and
paho resends them (DUP) after reconnecting; we keep their mids, so they are neither lost nor
sent twice by us. After a process restart the outbox still holds them and they are sent
again: at-least-once, and the gateway collapses repeats on ``message_id``.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import BrokerConfig, read_password
from edge.outbox import Outbox, Row
from storesense.errors import ConfigError

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]
PACING_BURST = 5  # sends that may follow each other without pause to make up for lateness


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes


class MqttTransport:
    """A connected-or-reconnecting paho client with per-publish acknowledgement callbacks."""

    def __init__(
        self,
        broker: BrokerConfig,
        client_id: str,
        *,
        will: Will | None = None,
        subscriptions: list[str] | None = None,
        on_message: MessageHandler | None = None,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.broker = broker
        self.connected = threading.Event()
        self.last_error: str | None = None
        self._subscriptions = list(subscriptions or [])
        self._handler = on_message
        self._on_connected = on_connected
        # mid -> callback run on PUBACK; "early" holds mids acknowledged before publish()
        # returned to us (paho can receive the PUBACK on its thread in between).
        self._lock = threading.Lock()
        self._pending: dict[int, Callable[[], None] | None] = {}
        self._early: set[int] = set()
        self.client = self._make_client(client_id, will)

    def _make_client(self, client_id: str, will: Will | None) -> mqtt.Client:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        b = self.broker
        if b.username:
            c.username_pw_set(b.username, read_password(b))
        if b.tls:
            for field, path in (("ca_file", b.tls.ca_file), ("cert_file", b.tls.cert_file),
                                ("key_file", b.tls.key_file)):
                if path is not None and not path.is_file():
                    raise ConfigError(f"broker.tls.{field}: {path} is not a readable file")
            try:
                c.tls_set(
                    ca_certs=str(b.tls.ca_file),
                    certfile=str(b.tls.cert_file) if b.tls.cert_file else None,
                    keyfile=str(b.tls.key_file) if b.tls.key_file else None,
                    cert_reqs=ssl.CERT_REQUIRED,
                )
            except (OSError, ValueError) as e:  # not PEM, key does not match the cert
                raise ConfigError(f"broker.tls: cannot load the CA, cert or key: {e}") from e
            c.tls_insecure_set(b.tls.insecure)
        if will:
            c.will_set(will.topic, will.payload, qos=1, retain=True)
        c.reconnect_delay_set(int(max(1, b.reconnect_min_s)), int(b.reconnect_max_s))
        # We bound in-flight messages ourselves (OutboxPublisher); paho must not queue them.
        c.max_inflight_messages_set(0)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        return c

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background; paho's thread retries until the broker answers."""
        self.client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive_s)
        self.client.loop_start()

    def stop(self, last: Will | None = None, timeout: float = 5.0) -> None:
        """Publish ``last`` (e.g. offline status), wait briefly for its ack, disconnect."""
        if last is not None and self.connected.is_set():
            done = threading.Event()
            self.publish(last.topic, last.payload, retain=True, on_ack=done.set)
            done.wait(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    # ------------------------------------------------------------------ publishing

    def publish(
        self, topic: str, payload: bytes, *, retain: bool = False,
        on_ack: Callable[[], None] | None = None,
    ) -> bool:
        """QoS 1 publish; ``on_ack`` runs on paho's thread once the broker has it.

        Returns False if paho refused it outright (then ``on_ack`` never runs). A publish
        made while disconnected is kept by paho and sent after reconnecting.
        """
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.last_error = f"publish to {topic} failed: {mqtt.error_string(info.rc)}"
            return False
        with self._lock:
            acked_already = info.mid in self._early
            if acked_already:
                self._early.discard(info.mid)
            else:
                self._pending[info.mid] = on_ack
        if acked_already and on_ack:
            on_ack()
        return True

    def inflight(self) -> int:
        with self._lock:
            return len(self._pending)

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
        reason: ReasonCode, properties: Any,
    ) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused connection: {reason}"
            log.warning("%s", self.last_error)
            return
        log.info("connected to %s:%s", self.broker.host, self.broker.port)
        self.last_error = None
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        self.connected.set()
        if self._on_connected:
            self._on_connected()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
        reason: ReasonCode, properties: Any,
    ) -> None:
        self.connected.clear()
        if reason.is_failure:
            self.last_error = f"disconnected: {reason}"
            log.warning("%s; paho reconnects", self.last_error)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any,
    ) -> None:
        with self._lock:
            if mid in self._pending:
                cb = self._pending.pop(mid)
            else:
                self._early.add(mid)
                return
        if cb:
            cb()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._handler is None:
            return
        try:
            self._handler(msg.topic, bytes(msg.payload))
        except Exception:  # a bad handler must not kill paho's network thread
            log.exception("handling message on %s failed", msg.topic)


class OutboxPublisher:
    """One thread: outbox rows -> QoS 1 publishes, oldest window first, throttled."""

    def __init__(
        self, outbox: Outbox, transport: MqttTransport, *, rate: float = 50.0,
        max_inflight: int = 20,
    ) -> None:
        self.outbox = outbox
        self.transport = transport
        self.rate = rate
        self.max_inflight = max_inflight
        self._inflight: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
        self.published = 0

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """New rows in the outbox or a reconnect: look again now rather than at the timeout."""
        with self._wake:
            self._wake.notify()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.notify()
        self._thread.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Wait until the outbox is empty (used at graceful stop); True if it is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.stats().depth == 0:
                return True
            self.notify()
            time.sleep(0.05)
        return self.outbox.stats().depth == 0

    def _run(self) -> None:
        next_send = time.monotonic()
        while not self._stop.is_set():
            row = self._next_row()
            if row is None:
                continue
            if self.rate > 0:
                # Pace sends. A late wake-up (loaded CPU) may be made up by at most
                # PACING_BURST back-to-back sends; an idle spell earns nothing more.
                period = 1.0 / self.rate
                now = time.monotonic()
                if next_send > now and self._stop.wait(next_send - now):
                    return
                next_send = max(next_send, time.monotonic() - PACING_BURST * period) + period
            if not self._send(row.seq, row.topic, row.payload):
                self._stop.wait(0.5)  # paho refused (queue full?): do not spin

    def _next_row(self) -> Row | None:
        """The oldest row not in flight, once connected and below max_inflight; else wait."""
        with self._wake:
            ready = self.transport.connected.is_set() and len(self._inflight) < self.max_inflight
            if ready:
                rows = self.outbox.oldest(1, frozenset(self._inflight))
                if rows:
                    self._inflight.add(rows[0].seq)
                    return rows[0]
            self._wake.wait(0.5)
        return None

    def _send(self, seq: int, topic: str, payload: bytes) -> bool:
        def acked() -> None:
            self.outbox.ack(seq)
            with self._wake:
                self._inflight.discard(seq)
                self.published += 1
                self._wake.notify()

        if self.transport.publish(topic, payload, on_ack=acked):
            return True
        with self._wake:
            self._inflight.discard(seq)
        return False
