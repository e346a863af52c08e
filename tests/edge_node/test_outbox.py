"""The outbox on a real SQLite file: order, ack, size bound, survival of a reopen."""

from __future__ import annotations

import json
from pathlib import Path

from edge.node.outbox import Outbox
from tests.edge_node.helpers import window


def test_rows_come_out_in_window_order_and_leave_only_on_ack(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    for i in (3, 1, 2):  # closed out of order (two cameras), sent by window start
        ob.put("t", window("s1", "c1", i))
    rows = ob.oldest(10)
    assert [json.loads(r.payload)["frames"] for r in rows] == [1, 2, 3]
    assert ob.oldest(10, frozenset({rows[0].seq}))[0].seq == rows[1].seq
    ob.ack(rows[0].seq)
    assert ob.stats().depth == 2
    assert [r.seq for r in ob.oldest(10)] == [rows[1].seq, rows[2].seq]


def test_rows_of_held_back_topics_are_left_out_in_order(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    for i, topic in enumerate(["refused", "ok", "refused", "ok"]):
        ob.put(topic, window("s1", topic, i))
    assert [r.topic for r in ob.oldest(10, skip_topics=frozenset({"refused"}))] == ["ok", "ok"]
    assert [r.topic for r in ob.oldest(1)] == ["refused"]  # still the oldest once retried


def test_same_message_id_is_stored_once(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ob.put("t", window("s1", "c1", 1))
    ob.put("t", window("s1", "c1", 1))
    assert ob.stats().depth == 1


def test_size_bound_drops_oldest_and_counts_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path, max_messages=3)
    dropped = [ob.put("t", window("s1", "c1", i)) for i in range(5)]
    assert dropped == [0, 0, 0, 1, 1]
    stats = ob.stats()
    assert (stats.depth, stats.dropped, stats.full) == (3, 2, True)
    assert [json.loads(r.payload)["frames"] for r in ob.oldest(10)] == [2, 3, 4]
    ob.close()
    again = Outbox(path, max_messages=3)
    assert again.stats() == stats
    again.ack(again.oldest(1)[0].seq)
    assert not again.stats().full


def test_committed_rows_survive_without_close(tmp_path: Path) -> None:
    """A put is committed when it returns: a second connection (as after kill -9) sees it."""
    path = tmp_path / "o.sqlite"
    ob = Outbox(path)
    ob.put("t", window("s1", "c1", 7))
    other = Outbox(path)
    assert [json.loads(r.payload)["frames"] for r in other.oldest(5)] == [7]


def test_byte_bound_drops_oldest_until_the_new_window_fits(tmp_path: Path) -> None:
    one = len(window("s1", "c1", 0).to_json())
    ob = Outbox(tmp_path / "o.sqlite", max_bytes=int(one * 3.5))
    dropped = [ob.put("t", window("s1", "c1", i)) for i in range(6)]
    assert dropped == [0, 0, 0, 1, 1, 1]
    stats = ob.stats()
    assert (stats.depth, stats.dropped, stats.full) == (3, 3, True)
    assert stats.bytes <= one * 3.5
    assert [json.loads(r.payload)["frames"] for r in ob.oldest(10)] == [3, 4, 5]
