"""After a batch is committed, tell each edge which of its windows the gateway now holds.

One publish per camera topic in the batch, to ``{prefix}/{store}/{camera}/ack``, listing
the batch's message ids of that topic (storesense.acks). The edge keeps a window until its
id is confirmed and sends unconfirmed ones again, so what a broker crash loses (it PUBACKs
before it saves) comes back; the gateway collapses repeats on message_id and confirms them
again. Confirmed = committed: stored, a repeat of a stored window, or dead-lettered (a
retry of an invalid window cannot help).

The confirmation goes to the topic the window arrived on, which the broker's ACL let only
that store's device write, never to a store named in the payload: a device cannot make the
gateway confirm another store's windows.

QoS 0: a lost confirmation costs one resend, which is confirmed again, and the edge has no
persistent session, so QoS 1 would not reach a disconnected edge either. QoS 1 would cost a
PUBACK round trip per camera per batch through paho's in-flight window (20), whose queue
paho walks on every PUBACK: thousands of cameras per batch when a backlog drains.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import paho.mqtt.client as mqtt

from storesense.acks import MAX_ID_CHARS, encode_confirmations, message_id_of
from storesense.topics import Topics


def confirmations(topics: Topics, items: Iterable[tuple[str, bytes]],
                  decoded: Mapping[int, str] | None = None) -> list[tuple[str, bytes]]:
    """(ack topic, payload) for the windows among committed (topic, payload) items.

    ``decoded``: message ids the ingest already read, by ``id()`` of the payload object
    (Storage.noting_message_ids); other payloads are read here. Either way a payload's id
    is the one ``message_id_of`` reads (the same msgspec decoder semantics: the last of
    repeated keys), so the confirmations do not depend on it."""
    known = decoded or {}
    by_topic: dict[str, list[str]] = {}
    for topic, payload in items:
        if not topic.endswith("/agg"):
            continue
        parts = topics.parse(topic)
        if parts is None:
            continue
        mid = known.get(id(payload))
        if mid is None or not 0 < len(mid) <= MAX_ID_CHARS:
            mid = message_id_of(payload)
        if mid is not None:
            by_topic.setdefault(topics.ack(parts[0], parts[1]), []).append(mid)
    now = time.time()  # lets an edge see its own clock is off (docs/mqtt.md)
    return [(t, p) for t, ids in by_topic.items() for p in encode_confirmations(ids, now)]


def publish_confirmations(client: mqtt.Client, topics: Topics,
                          batch: Sequence[tuple[Any, ...]],
                          decoded: Mapping[int, str] | None = None) -> None:
    """The ingest hook: ``batch`` items end with (topic, payload) and are committed."""
    for topic, payload in confirmations(topics, ((i[-2], i[-1]) for i in batch), decoded):
        client.publish(topic, payload, qos=0)
