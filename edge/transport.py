"""MQTT transport: paho in its own thread, acknowledgements tracked, outbox drained in order.

``MqttTransport`` owns the paho client (MQTT 5, VERSION2 callbacks, automatic reconnect,
last will). ``OutboxPublisher`` is the single thread that takes rows from the outbox oldest
first and publishes them at QoS 1, at most ``max_inflight`` unacknowledged at once and at
most ``rate`` per second, so a whole chain reconnecting after an outage does not flood the
broker. A row is deleted from the outbox in paho's ``on_publish`` (PUBACK for QoS 1), and
only if the PUBACK's reason code is a success.

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
# A refused topic is tried again after RETRY_MIN_S, doubling up to RETRY_MAX_S: an ACL is
# fixed by a person, so seconds do not matter, and each refusal costs a reconnect.
RETRY_MIN_S = 10.0
RETRY_MAX_S = 300.0
# Nor in the first second of a connection: a refusal ends the connection (Mosquitto 2.0.11),
# so the status and topics the broker accepts go first.
RETRY_AFTER_CONNECT_S = 1.0


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes


@dataclass
class _Sent:
    """A publish handed to paho and not yet answered."""

    topic: str
    what: str  # names the message in errors
    at: float  # monotonic time it was handed to paho
    alone: bool  # its topic was not accepted yet, so nothing else may be sent meanwhile
    on_ack: Callable[[], None] | None
    on_refused: Callable[[str], None] | None


@dataclass
class _Hold:
    """A topic the broker refused: nothing is published to it before ``until``."""

    error: str
    delay: float
    since: float  # when (re)armed; refusals of publishes sent earlier change nothing
    until: float


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
        # only _lock, which is never held while calling into paho.
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pending: dict[int, _Sent] = {}
        self._early: dict[int, ReasonCode] = {}
        self._accepted: set[str] = set()  # topics the broker took a publish to
        self._holds: dict[str, _Hold] = {}  # topics it refused, until one gets through
        self.client = self._make_client(client_id, will)

    def _make_client(self, client_id: str, will: Will | None) -> mqtt.Client:
        # MQTT 5: clean_start=True in start() and no session expiry property (0), a fresh
        # session every connection, ended at disconnect, as clean_session=True is with
        # 3.1.1 (kept for brokers without 5). What was in flight at a disconnect is resent
        # by paho and, after a restart, by the outbox.
        b = self.broker
        if b.protocol == "5":
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                            protocol=mqtt.MQTTv5)
        else:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                            protocol=mqtt.MQTTv311, clean_session=True)
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
        b = self.broker
        if b.protocol == "5":
            self.client.connect_async(b.host, b.port, b.keepalive_s, clean_start=True)
        else:  # paho refuses clean_start for 3.1.1; clean_session was set on the client
            self.client.connect_async(b.host, b.port, b.keepalive_s)
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
                alone = topic not in self._accepted
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
        if any(s.alone for s in self._pending.values()):
            return False
        return topic in self._accepted or not self._pending

    def inflight(self) -> int:
        with self._lock:
            return len(self._pending)

    # ------------------------------------------------------------------ refused topics

    def held(self, topic: str) -> bool:
        """The broker refused ``topic`` and its retry time has not come yet."""
        with self._lock:
            hold = self._holds.get(topic)
            return hold is not None and hold.until > time.monotonic()

    def held_topics(self) -> frozenset[str]:
        now = time.monotonic()
        with self._lock:
            return frozenset(t for t, h in self._holds.items() if h.until > now)

    def refusal(self, topic: str) -> str | None:
        """Why the last publish to ``topic`` was refused, until one gets through."""
        with self._lock:
            hold = self._holds.get(topic)
            return hold.error if hold else None

    def _settle(self, sent: _Sent, reason: ReasonCode) -> None:
        # Success codes are < 128: 0, or 16 "No matching subscribers" (nobody listening
        # right now, but the broker took it; the gateway's persistent session queues).
        if not reason.is_failure:
            with self._lock:
                self._accepted.add(sent.topic)
                self._holds.pop(sent.topic, None)
            if sent.on_ack:
                sent.on_ack()
            return
        error = f"publish of {sent.what} to {sent.topic} refused by broker: {reason}"
        now = time.monotonic()
        with self._lock:
            self._accepted.discard(sent.topic)
            hold = self._holds.get(sent.topic)
            if hold is None:
                hold = self._holds[sent.topic] = _Hold(error, self.retry_min_s, now,
                                                       now + self.retry_min_s)
                retry_in: float | None = hold.delay
            elif sent.at >= hold.since:  # a retry after the hold, refused again: back off
                hold.delay = min(hold.delay * 2, self.retry_max_s)
                hold.error, hold.since, hold.until = error, now, now + hold.delay
                retry_in = hold.delay
            else:  # sent before the first refusal (in flight with it): nothing new
                retry_in = None
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
            earliest = time.monotonic() + RETRY_AFTER_CONNECT_S
            for hold in self._holds.values():
                hold.until = max(hold.until, earliest)
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

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._handler is None:
            return
        try:
            self._handler(msg.topic, bytes(msg.payload))
        except Exception:  # a bad handler must not kill paho's network thread
            log.exception("handling message on %s failed", msg.topic)


class OutboxPublisher:
    """One thread: outbox rows -> QoS 1 publishes, oldest window first, throttled.

    A row the broker refuses stays in the outbox; rows of other topics go on being sent,
    and the refused topic's rows wait, in order, until the transport's retry time for it.
    """

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
        """Wait until the outbox is empty (used at graceful stop); True if it is. Gives up
        early when all that is left waits for a refused topic's retry time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.outbox.stats().depth == 0:
                return True
            with self._wake:
                if not self._inflight and not self.outbox.oldest(
                    1, skip_topics=self.transport.held_topics()
                ):
                    return False
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
            if not self._send(row):
                self._stop.wait(0.5)  # paho refused (queue full?): do not spin

    def _next_row(self) -> Row | None:
        """The oldest row not in flight, once connected and below max_inflight; else wait."""
        with self._wake:
            ready = self.transport.connected.is_set() and len(self._inflight) < self.max_inflight
            if ready:
                # Refused topics wait for their retry time; the others keep their order.
                # A row of a topic not accepted yet may have to wait for what is in
                # flight (MqttTransport.may_publish): it is not overtaken meanwhile.
                rows = self.outbox.oldest(
                    1, frozenset(self._inflight), self.transport.held_topics()
                )
                if rows and self.transport.may_publish(rows[0].topic):
                    self._inflight.add(rows[0].seq)
                    return rows[0]
            self._wake.wait(0.5)
        return None

    def _send(self, row: Row) -> bool:
        def acked() -> None:
            self.outbox.ack(row.seq)
            with self._wake:
                self._inflight.discard(row.seq)
                self.published += 1
                self._wake.notify()

        def refused(error: str) -> None:
            # Keep the row: the transport holds its topic back and the row goes again
            # (oldest of its topic first) once the retry time has come.
            with self._wake:
                self._inflight.discard(row.seq)
                self._wake.notify()

        if self.transport.publish(row.topic, row.payload, what=row.message_id, on_ack=acked,
                                  on_refused=refused):
            return True
        with self._wake:
            self._inflight.discard(row.seq)
        return False
