"""The confirmations to the edges (gateway/confirm.py) built from the message ids the ingest
noted while decoding a batch (Storage.noting_message_ids) are the ones read again from the
payloads: stored, repeated, dead-lettered and unreadable windows alike, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from gateway.bench import payload, store_ids
from gateway.confirm import confirmations
from gateway.storage import Storage
from storesense.acks import decode_confirmation
from tests.gateway.helpers import TOPICS, message, store, window

DAY = datetime(2026, 11, 23, 10, tzinfo=UTC)


def _confirmed(pairs: list[tuple[str, bytes]]) -> dict[str, list[str]]:
    return {topic: decode_confirmation(p)[0] for topic, p in pairs}


def _batch() -> list[tuple[str, bytes]]:
    ok = [message(window("s1", DAY + timedelta(minutes=i))) for i in range(3)]
    floor = message(window("s1", DAY, "floor", 0, 0))
    unknown_store = message(window("nobody", DAY))
    bad = msgspec.json.decode(ok[0][1])
    bad.update(frames=-1, message_id=bad["message_id"].replace("s1/door", "s1/door/x"))
    invalid = (ok[0][0], msgspec.json.encode(bad))  # rejected, but its id is readable
    other_topic = (TOPICS.aggregate("s1", "floor"), ok[1][1])  # payload of another camera
    status = (TOPICS.status("s1", "dev1"), b'{"message_id": "not a window"}')
    heat = payload(0, store_ids(1), (8, 6))  # a window of another store: dead-lettered
    again = (ok[0][0], bytes(bytearray(ok[0][1])))  # a redelivery: equal bytes, new object
    return [*ok, floor, again, unknown_store, invalid, other_topic, status,
            (ok[2][0], b"not json"), heat]


def test_the_ids_noted_at_ingest_confirm_what_reading_the_payloads_again_does(
        storage: Storage) -> None:
    storage.upsert_stores([store("s1")])
    items = _batch()
    with storage.noting_message_ids() as decoded:
        result = storage.ingest(items)
    assert (result.stored, result.duplicates) == (4, 1)
    # every window the ingest decoded is noted, nothing else (the rejected ones are read again)
    assert sorted(decoded.values()) == sorted(
        msgspec.json.decode(items[i][1])["message_id"] for i in (0, 1, 2, 3, 4, 5, 10))
    noted = _confirmed(confirmations(TOPICS, items, decoded))
    assert noted == _confirmed(confirmations(TOPICS, items))
    assert sum(len(ids) for ids in noted.values()) == 9  # all but the status and "not json"


def test_a_noted_id_is_the_one_confirmed_and_is_taken_for_its_payload_object_only() -> None:
    topic, raw = message(window("s1", DAY))
    twin = bytes(bytearray(raw))  # equal bytes, another object: read from its payload
    got = _confirmed(confirmations(TOPICS, [(topic, raw), (topic, twin)], {id(raw): "noted"}))
    assert got == {TOPICS.ack("s1", "door"): ["noted", msgspec.json.decode(raw)["message_id"]]}
