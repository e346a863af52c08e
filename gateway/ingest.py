"""MQTT subscriber: QoS 1, a persistent session, and acks only after the SQLite commit.

paho's network thread only queues (mid, topic, payload); a writer thread takes batches (up to
``batch_max`` messages or ``batch_ms``), commits them in one transaction, then acknowledges
each message. A gateway killed at any moment has acknowledged only what is committed, so the
broker redelivers the rest to the persistent session (fixed client id, clean_start False,
session expiry). Redeliveries of committed-but-unacked messages collapse on message_id.

Acks carry the connection generation they were received on: after a reconnect the broker
resends un-acked messages with fresh packet ids, and an old id must not ack a new message.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.config import MqttSettings
from gateway.storage import Storage
from storesense.topics import Topics

log = logging.getLogger(__name__)
READ_CHUNK = 256 * 1024  # bytes per recv(): ~500 aggregates of a backlog in one syscall
READ_PACKETS = 4096  # packets handled per select() before paho gets to write (acks)
Item = tuple[int, int, int, str, bytes]  # generation, mid, qos, topic, payload


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    batches: int = 0
    commit_errors: int = 0
    write_s: float = 0.0  # time spent validating and committing, for the benchmark


def _topic_of(msg: mqtt.MQTTMessage) -> str:
    try:
        return msg.topic
    except UnicodeDecodeError:  # a topic that is not UTF-8 still gets dead-lettered
        return bytes(msg._topic).decode("utf-8", "replace")


def _varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    """An MQTT variable byte integer at ``pos``: (value, position after it)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ValueError("malformed variable byte integer")


class _BufferedClient(mqtt.Client):
    """paho with buffered socket reads and a lean MQTT 5 QoS 1 PUBLISH decoder.

    Stock paho reads each packet's header with one ``recv(1)`` per byte and handles one
    packet per ``select()``, which at thousands of messages a second costs as much CPU as
    validating them. This reads up to READ_CHUNK bytes per syscall and handles every complete
    packet in the buffer before selecting again. The bytes are the same; paho's acks and
    reconnects are untouched (a reconnect starts with an empty buffer), and so is its parsing
    of every packet but MQTT 5 QoS 1 PUBLISH (see ``_handle_publish``).
    """

    _rbuf: bytes = b""
    _rpos: int = 0

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf, self._rpos = b"", 0  # never parse a dead connection's leftovers
        return super().reconnect()

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(READ_CHUNK)  # BlockingIOError when nothing is there
            if not data:
                return data  # EOF: paho reports the connection lost
            self._rbuf, self._rpos = data, 0
        start = self._rpos
        self._rpos = min(start + bufsize, len(self._rbuf))
        return self._rbuf[start:self._rpos]

    def message_callback_add(self, sub: str, callback: Any) -> None:
        raise NotImplementedError("the ingestor takes every message through on_message")

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        # no per-topic callbacks exist (see message_callback_add): skip paho's walk of its
        # topic matcher for every message and call on_message directly
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                on_message(self, self._userdata, message)

    def _handle_publish(self) -> MQTTErrorCode:
        header, packet = self._in_packet["command"], self._in_packet["packet"]
        if self._protocol != mqtt.MQTTv5 or (header & 0x06) != 0x02 or not self._manual_ack:
            return super()._handle_publish()
        # Stock paho builds a Properties object for every MQTT 5 PUBLISH, ~27 us here: more
        # than decoding and validating the window. The gateway reads no publish property
        # (it allows no topic aliases), so this skips their bytes: topic, packet id,
        # properties length, payload.
        end = 2 + int.from_bytes(packet[:2], "big")
        topic = bytes(packet[2:end])
        mid = int.from_bytes(packet[end:end + 2], "big")
        props_len, start = _varint(packet, end + 2)
        message = mqtt.MQTTMessage(mid=mid, topic=topic)
        message.qos, message.dup, message.retain = 1, bool(header & 0x08), bool(header & 0x01)
        message.payload = bytes(packet[start + props_len:])
        message.timestamp = time.monotonic()
        self._handle_on_message(message)
        return MQTTErrorCode.MQTT_ERR_SUCCESS  # manual ack: acked after the commit

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        for _ in range(READ_PACKETS):
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:  # buffer and socket both empty
                return MQTTErrorCode.MQTT_ERR_SUCCESS
        if self._rpos < len(self._rbuf) and self._sockpairW is not None:
            # packets are left in our buffer, which select() cannot see: wake it at once
            with contextlib.suppress(BlockingIOError):
                self._sockpairW.send(b"0")
        return MQTTErrorCode.MQTT_ERR_SUCCESS


class Ingestor:
    def __init__(self, mqtt_settings: MqttSettings, storage: Storage,
                 batch_max: int = 2000, batch_ms: float = 50.0) -> None:
        self.settings = mqtt_settings
        self.storage = storage
        self.topics = Topics(mqtt_settings.topic_prefix)
        self.batch_max, self.batch_s = batch_max, batch_ms / 1000.0
        self.stats = IngestStats()
        self.connected = threading.Event()  # set once the broker acknowledged SUBSCRIBE
        self._queue: queue.Queue[Item] = queue.Queue()
        self._generation = 0
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer",
                                        daemon=True)
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        if s.protocol == "5":
            c = _BufferedClient(CallbackAPIVersion.VERSION2, client_id=s.client_id,
                                protocol=mqtt.MQTTv5, manual_ack=True)
        else:  # 3.1.1: a persistent session is clean_session=False (no expiry to set)
            c = _BufferedClient(CallbackAPIVersion.VERSION2, client_id=s.client_id,
                                protocol=mqtt.MQTTv311, clean_session=False,
                                manual_ack=True)
        if s.username:
            c.username_pw_set(s.username, s.password)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 5)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = lambda *_: self.connected.set()
        return c

    def subscriptions(self) -> list[str]:
        topics = [self.topics.all_aggregates(), self.topics.all_status()]
        group = self.settings.shared_group
        return [self.topics.shared(group, t) for t in topics] if group else topics

    def start(self) -> None:
        s = self.settings
        if s.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
            props.ReceiveMaximum = s.receive_maximum
            self.client.connect_async(s.host, s.port, s.keepalive_s, clean_start=False,
                                      properties=props)
        else:
            self.client.connect_async(s.host, s.port, s.keepalive_s)
        self._writer.start()
        self.client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit and ack what is queued, then disconnect (the session stays on the broker)."""
        self._stop.set()
        self._writer.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()

    # ---------------------------------------------------------------- paho thread

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any,
                    _p: Any = None) -> None:
        if reason.is_failure:
            log.error("broker refused connection: %s", reason)
            return
        self._generation += 1
        client.subscribe([(t, 1) for t in self.subscriptions()])
        log.info("connected to %s:%s, subscribed %s", self.settings.host,
                 self.settings.port, self.subscriptions())

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any,
                       _p: Any) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._queue.put((self._generation, msg.mid, msg.qos, _topic_of(msg), bytes(msg.payload)))

    # ---------------------------------------------------------------- writer thread

    def _next_batch(self) -> list[Item]:
        try:
            batch = [self._queue.get(timeout=0.1)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.batch_s
        while len(batch) < self.batch_max:
            left = deadline - time.monotonic()
            try:
                batch.append(self._queue.get_nowait() if left <= 0 else
                             self._queue.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._next_batch()
            if batch:
                self._commit_then_ack(batch)

    def _commit_then_ack(self, batch: list[Item]) -> None:
        t0 = time.perf_counter()
        while True:
            try:
                result = self.storage.ingest([(t, p) for _, _, _, t, p in batch])
                break
            except Exception:  # disk full, lock timeout...: keep the batch, do not ack
                self.stats.commit_errors += 1
                log.exception("commit of %d messages failed; retrying", len(batch))
                if self._stop.wait(1.0):
                    return  # unacked: the broker redelivers them to the session
        s = self.stats
        s.write_s += time.perf_counter() - t0
        s.received += len(batch)
        s.stored += result.stored
        s.duplicates += result.duplicates
        s.dead += result.dead
        s.batches += 1
        generation = self._generation
        for gen, mid, qos, _, _ in batch:
            if qos > 0 and gen == generation:
                self.client.ack(mid, qos)
