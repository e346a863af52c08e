"""MQTT transport: paho in its own thread, each QoS 1 publish answered by a callback.

``MqttTransport`` owns the paho client (built in edge.node.mqtt_client: MQTT 5, VERSION2
callbacks, automatic reconnect, last will) and tells whoever published a message whether
the broker's PUBACK accepted or refused it. ``edge.node.outbox_publisher`` feeds it the outbox.

MQTT 5 because of that reason code: for a 3.1.1 client a broker can only PUBACK a publish
its ACL denies (Mosquitto 2.0 does), which looked like delivery and deleted the window. With
MQTT 5 the PUBACK says 135 "Not authorized"; the row stays, the refusal shows in the
camera's status, and the topic is retried with backoff until the ACL or credentials are
fixed. Mosquitto 2.0.11 also closes the connection right after refusing, which is why a
publish to a topic the broker has not accepted yet goes alone (see ``MqttTransport.may_publish``).

Messages published but not acknowledged when the connection drops stay in paho's memory and
paho resends them (DUP) after reconnecting; we keep their mids, so they are neither lost nor
sent twice by us. After a process restart the outbox still holds them and they are sent
again: at-least-once, and the gateway collapses repeats on ``message_id``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge.node.config import BrokerConfig
from edge.node.mqtt_client import Will, connect_async, make_client
from edge.node.topic_verdicts import RETRY_MAX_S, RETRY_MIN_S, TopicVerdicts

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]
# MQTT 5: a CONNACK without Receive Maximum allows 65,535 unacknowledged QoS 1 publishes.
DEFAULT_RECEIVE_MAXIMUM = 65_535


@dataclass
class _Sent:
    """A publish handed to paho and not yet answered."""

    topic: str
    what: str  # names the message in errors
    at: float  # monotonic time it was handed to paho
    alone: bool  # its topic was not accepted yet, so nothing else may be sent meanwhile
    on_ack: Callable[[], None] | None
    on_refused: Callable[[str], None] | None


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
        self.retry_min_s, self.retry_max_s = RETRY_MIN_S, RETRY_MAX_S
        # mid -> publish awaiting its PUBACK; "early" holds the PUBACK reasons of mids
        # answered before publish() returned to us (paho's thread can get it in between).
        # _send_lock makes may_publish + paho's publish one step; paho's callbacks take
        # only _lock, which is never held while calling into paho. _lock also guards
        # _verdicts, as may_publish weighs them against what is pending.
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pending: dict[int, _Sent] = {}
        self._early: dict[int, ReasonCode] = {}
        self._verdicts = TopicVerdicts()
        # The broker's Receive Maximum (CONNACK): more publishes awaiting PUBACK than that is
        # a protocol error, which a broker may answer by closing the connection (MQTT 5
        # 3.3.4). Mosquitto announces its max_inflight_messages here (20 by default).
        self.send_quota = DEFAULT_RECEIVE_MAXIMUM
        self.client = self._make_client(client_id, will)

    def _make_client(self, client_id: str, will: Will | None) -> mqtt.Client:
        c = make_client(self.broker, client_id, will)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        return c

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background; paho's thread retries until the broker answers."""
        connect_async(self.client, self.broker)
        self.client.loop_start()

    def stop(self, last: Will | None = None, timeout: float = 5.0) -> None:
        """Publish ``last`` (e.g. offline status), wait briefly for its answer, disconnect."""
        if last is not None and self.connected.is_set():
            done = threading.Event()
            deadline = time.monotonic() + timeout
            # publish() can say "not now" while a lone publish is answered (may_publish).
            while not self.publish(
                last.topic, last.payload, retain=True, what="the goodbye status",
                on_ack=done.set, on_refused=lambda error: done.set(),
            ) and time.monotonic() < deadline:
                time.sleep(0.05)
            done.wait(max(0.0, deadline - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    # ------------------------------------------------------------------ publishing

    def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, what: str = "a message",
        on_ack: Callable[[], None] | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> bool:
        """QoS 1 publish; on paho's thread, ``on_ack`` runs once the broker has it, or
        ``on_refused(error)`` if the broker's PUBACK refused it (reason code >= 128).

        Returns False if it was not sent: ``may_publish`` said not now (try again shortly)
        or paho refused it outright; then neither callback runs. A publish made while
        disconnected is kept by paho and sent after reconnecting.
        """
        with self._send_lock:
            with self._lock:
                if not self._may_publish(topic):
                    return False
                alone = not self._verdicts.accepted(topic)
            sent = _Sent(topic, what, time.monotonic(), alone, on_ack, on_refused)
            info = self.client.publish(topic, payload, qos=1, retain=retain)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self.last_error = f"publish to {topic} failed: {mqtt.error_string(info.rc)}"
                return False
            with self._lock:
                early = self._early.pop(info.mid, None)
                if early is None:
                    self._pending[info.mid] = sent
        if early is not None:
            self._settle(sent, early)
        return True

    def may_publish(self, topic: str) -> bool:
        """Whether a publish to ``topic`` may be sent now.

        Not while the broker's Receive Maximum (``send_quota``) publishes await their PUBACK.
        A topic the broker has not accepted yet goes alone: only when nothing else awaits
        its PUBACK, and nothing else is sent until it is answered. Mosquitto 2.0.11 closes
        the connection right after refusing a publish; if the client had sent more that
        the broker had not read, that close is a TCP reset, which can discard the refusal
        before paho reads it. paho then resends the refused message first after every
        reconnect, and the node would reconnect for ever without learning why.
        """
        with self._lock:
            return self._may_publish(topic)

    def _may_publish(self, topic: str) -> bool:  # with self._lock held
        if len(self._pending) >= self.send_quota:
            return False
        if any(s.alone for s in self._pending.values()):
            return False
        return self._verdicts.accepted(topic) or not self._pending

    def inflight(self) -> int:
        with self._lock:
            return len(self._pending)

    # ------------------------------------------------------------------ refused topics

    def held(self, topic: str) -> bool:
        """The broker refused ``topic`` and its retry time has not come yet."""
        with self._lock:
            return self._verdicts.held(topic)

    def held_topics(self) -> frozenset[str]:
        with self._lock:
            return self._verdicts.held_topics()

    def refusal(self, topic: str) -> str | None:
        """Why the last publish to ``topic`` was refused, until one gets through."""
        with self._lock:
            return self._verdicts.refusal(topic)

    def _settle(self, sent: _Sent, reason: ReasonCode) -> None:
        # Success codes are < 128: 0, or 16 "No matching subscribers" (nobody listening
        # right now, but the broker took it; the gateway's persistent session queues).
        if not reason.is_failure:
            with self._lock:
                self._verdicts.accept(sent.topic)
            if sent.on_ack:
                sent.on_ack()
            return
        error = f"publish of {sent.what} to {sent.topic} refused by broker: {reason}"
        with self._lock:
            retry_in = self._verdicts.refuse(
                sent.topic, error, sent.at, self.retry_min_s, self.retry_max_s
            )
        self.last_error = error
        if retry_in is not None:
            log.warning("%s; not published to again for %.1f s", error, retry_in)
        if sent.on_refused:
            sent.on_refused(error)

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
        with self._lock:
            self._verdicts.after_connect()
            self.send_quota = getattr(properties, "ReceiveMaximum", DEFAULT_RECEIVE_MAXIMUM)
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
            sent = self._pending.pop(mid, None)
            if sent is None:
                self._early[mid] = reason
                return
        self._settle(sent, reason)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
        properties: Any,
    ) -> None:
        # One SUBSCRIBE per topic (_on_connect). A refused one (ACL: e.g. the gateway's
        # confirmations on an ACL from before them) would otherwise go unnoticed.
        if any(r.is_failure for r in reasons):
            self.last_error = f"broker refused a subscription: {reasons}"
            log.warning("%s", self.last_error)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._handler is None:
            return
        try:
            self._handler(msg.topic, bytes(msg.payload))
        except Exception:  # a bad handler must not kill paho's network thread
            log.exception("handling message on %s failed", msg.topic)
