"""MQTT subscriber: QoS 1, a persistent session, and acks only after the SQLite commit.

paho's network thread only queues (mid, topic, payload, DUP), a read's worth at a time
(gateway/mqtt_reader.py); a writer thread takes batches (up to ``batch_max`` messages or
``batch_ms``), commits them in one transaction, then acknowledges them in one write.
A gateway killed at any moment has acknowledged only what is committed, so the broker
redelivers the rest to the persistent session (fixed client id, clean_start False, session
expiry). Redeliveries of committed-but-unacked messages collapse on message_id.

Acks carry the connection generation they were received on: after a reconnect the broker
resends un-acked messages with fresh packet ids, and an old id must not ack a new message.

A message that makes the commit fail is split off and dead-lettered (gateway/isolate.py), so
the rest of its batch is stored and acked; only a failing database keeps a batch unacked.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.config import MqttSettings
from gateway.config_history import ingest_with_reported
from gateway.confirm import publish_confirmations
from gateway.mqtt_reader import BatchReadingClient, Publish
from gateway.storage import Storage
from storesense.topics import Topics

log = logging.getLogger(__name__)
Item = tuple[int, int, int, bool, str, bytes]  # generation, mid, qos, DUP, topic, payload
# A drained backlog keeps ~100,000 decoded messages alive (the received queue and a batch).
# At CPython's default (a collection every 700 new container objects) the collector kept
# rescanning them: 25-35 % of an ingest process's CPU. Ingest makes no reference cycles.
GC_GEN0_THRESHOLD = 100_000


def tune_interpreter(gil_switch_ms: float) -> None:
    """Settings for an ingest process, before it starts: the thread switch interval (see
    IngestSettings.gil_switch_ms) and a garbage collector that runs less often."""
    sys.setswitchinterval(gil_switch_ms / 1000.0)
    gc.freeze()  # what is loaded by now lives as long as the process: never rescan it
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    redelivered_copies: int = 0  # duplicates found by Storage.stored_copies, not decoded
    dead: int = 0
    batches: int = 0
    commit_errors: int = 0
    write_s: float = 0.0  # time spent validating and committing, for the benchmark
    last_commit_at: float = 0.0  # time.monotonic() at the last commit, for the benchmark


def _topic_text(topic: bytes) -> str:
    try:
        return topic.decode("utf-8")
    except UnicodeDecodeError:  # a topic that is not UTF-8 still gets dead-lettered
        return topic.decode("utf-8", "replace")


class Ingestor:
    def __init__(self, mqtt_settings: MqttSettings, storage: Storage,
                 batch_max: int = 20_000, batch_ms: float = 50.0) -> None:
        self.settings = mqtt_settings
        self.storage = storage
        self.topics = Topics(mqtt_settings.topic_prefix)
        self.batch_max, self.batch_s = batch_max, batch_ms / 1000.0
        self.stats = IngestStats()
        self.connected = threading.Event()  # set once the broker acknowledged SUBSCRIBE
        self.last_message_at: float | None = None  # wall time of the last read from the broker
        self._unreachable = False  # a failed connection was logged; the next success says so
        self._items: deque[Item] = deque()  # received, not yet committed
        self._arrived = threading.Condition()  # guards _items
        self._generation = 0
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer",
                                        daemon=True)
        self.client = self._make_client()

    def _make_client(self) -> BatchReadingClient:
        s = self.settings
        if s.protocol == "5":
            c = BatchReadingClient(CallbackAPIVersion.VERSION2, client_id=s.client_id,
                                   protocol=mqtt.MQTTv5, manual_ack=True)
        else:  # 3.1.1: a persistent session is clean_session=False (no expiry to set)
            c = BatchReadingClient(CallbackAPIVersion.VERSION2, client_id=s.client_id,
                                   protocol=mqtt.MQTTv311, clean_session=False,
                                   manual_ack=True)
        if s.username:
            c.username_pw_set(s.username, s.password)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 5)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message  # QoS 0 publishes (an edge's choice; not acked)
        c.on_publishes = self._on_publishes
        c.on_subscribe = lambda *_: self.connected.set()
        return c

    def subscriptions(self) -> list[str]:
        # .../reported: configs installers saved on the edge box (gateway/config_history.py)
        topics = [self.topics.all_aggregates(), self.topics.all_status(),
                  self.topics.reported("+", "+")]
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

    def health(self) -> dict[str, Any]:
        """For /api/v1/health: whether the broker is connected, and how long ago it last sent."""
        last = self.last_message_at
        return {"broker_connected": self.connected.is_set(),
                "broker": f"{self.settings.host}:{self.settings.port}",
                "last_message_age_s": None if last is None else round(time.time() - last, 1)}

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
        self._unreachable = False
        client.subscribe([(t, 1) for t in self.subscriptions()])
        log.info("connected to %s:%s, subscribed %s", self.settings.host,
                 self.settings.port, self.subscriptions())

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        if not self._unreachable:  # once per outage, not at every retry
            self._unreachable = True
            log.error("cannot reach the broker at %s:%s; retrying every few seconds",
                      self.settings.host, self.settings.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any,
                       _p: Any) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        topic = _topic_text(bytes(msg._topic))
        self._put([(self._generation, msg.mid, msg.qos, bool(msg.dup), topic,
                    bytes(msg.payload))])

    def _on_publishes(self, publishes: list[Publish]) -> None:
        g = self._generation
        self._put([(g, mid, 1, dup, _topic_text(topic), payload)
                   for mid, topic, payload, dup in publishes])

    def _put(self, items: list[Item]) -> None:
        self.last_message_at = time.time()
        with self._arrived:
            self._items.extend(items)
            self._arrived.notify()

    # ---------------------------------------------------------------- writer thread

    def _next_batch(self) -> list[Item]:
        """Up to batch_max items: wait 0.1 s for a first one, then up to batch_ms for more."""
        with self._arrived:
            if not self._items and not self._arrived.wait(0.1):
                return []
            deadline = time.monotonic() + self.batch_s
            while len(self._items) < self.batch_max:
                left = deadline - time.monotonic()
                if left <= 0 or not self._arrived.wait(left):
                    break
            items = self._items
            return [items.popleft() for _ in range(min(self.batch_max, len(items)))]

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and not self._items):
            batch = self._next_batch()
            if batch:
                self._commit_then_ack(batch)

    def _commit_then_ack(self, batch: list[Item]) -> None:
        t0 = time.perf_counter()
        while True:
            try:
                copies = self._stored_copies(batch)
                with self.storage.noting_message_ids() as decoded:
                    result = ingest_with_reported(
                        self.storage, [(t, p) for i, (_, _, _, _, t, p) in enumerate(batch)
                                       if i not in copies])
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
        s.duplicates += result.duplicates + len(copies)
        s.redelivered_copies += len(copies)
        s.dead += result.dead
        s.batches += 1
        s.last_commit_at = time.monotonic()
        generation = self._generation
        self.client.ack_many([mid for gen, mid, qos, _, _, _ in batch
                              if qos == 1 and gen == generation])
        # to the edges (gateway/confirm.py), with the ids the ingest read: batch holds the
        # payloads, so their id() keys still name them
        decoded.update((id(batch[i][-1]), mid) for i, mid in copies.items())
        publish_confirmations(self.client, self.topics, batch, decoded)

    def _stored_copies(self, batch: list[Item]) -> dict[int, str]:
        """{index in batch: message_id} of redelivered (DUP) windows already stored as they
        are: a gateway that died after its commit and before its acks left them."""
        dups = [i for i, item in enumerate(batch) if item[3]]
        if not dups:
            return {}
        found = self.storage.stored_copies([batch[i][-2:] for i in dups])
        return {dups[j]: mid for j, mid in found.items()}
