"""edge.node.resend with plain numbers, and the outbox's sent/confirm bookkeeping on real SQLite."""

from __future__ import annotations

from pathlib import Path

from edge.node.outbox import Outbox
from edge.node.resend import ResendTracker
from storesense.acks import decode_confirmation, encode_confirmations, message_id_of
from storesense.topics import Topics
from tests.edge_node.helpers import window

TOPIC = Topics().aggregate("s1", "cam1")


def test_a_window_overtaken_by_a_confirmed_later_one_goes_again_at_once() -> None:
    r = ResendTracker(timeout_s=300, grace_s=30)
    r.sent(1, now=0)
    r.sent(2, now=10)
    r.sent(3, now=100)
    assert r.due(now=101) is None
    r.confirmed([3])  # sent 100 s after 1 and 90 s after 2: those two are missing
    assert r.due(now=101) == 1
    r.sent(1, now=101)  # sent again: tracked anew, behind the others
    assert r.due(now=101) == 2
    r.sent(2, now=101)
    assert r.due(now=102) is None


def test_within_the_grace_a_later_confirmation_does_not_resend() -> None:
    r = ResendTracker(timeout_s=300, grace_s=30)
    r.sent(1, now=0)
    r.sent(2, now=20)
    r.confirmed([2])  # ingest workers may commit out of order
    assert r.due(now=21) is None


def test_timeouts_double_while_nothing_is_confirmed_and_reset_after() -> None:
    r = ResendTracker(timeout_s=10, max_timeout_s=40, grace_s=30)
    r.sent(1, now=0)
    r.sent(2, now=1)
    r.sent(3, now=15)
    assert r.due(now=9) is None
    assert r.due(now=12) == 1  # a round: everything sent by now - 10 (1 and 2)
    r.sent(1, now=12)
    assert r.due(now=12) == 2
    r.sent(2, now=12)
    assert r.due(now=12) is None  # 3 (sent at 15) is not in the round
    assert r.timeout_s == 20
    assert r.due(now=34) is None
    assert r.due(now=35) == 3  # 15 + 20; the round takes 1 and 2 (sent at 12) too
    for seq in (3, 1, 2):
        assert r.due(now=35) == seq
        r.sent(seq, now=35)
    assert r.due(now=35) is None and r.timeout_s == 40
    assert r.due(now=74) is None and r.due(now=75) == 3
    assert r.timeout_s == 40  # capped
    r.confirmed([2])
    assert r.timeout_s == 10 and len(r) == 2


def test_outbox_keeps_sent_rows_until_confirmed_and_reports_them_after_reopen(
    tmp_path: Path,
) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    ws = [window("s1", "cam1", i) for i in range(3)]
    for w in ws:
        ob.put(TOPIC, w)
    rows = ob.oldest(3)
    seqs = [r.seq for r in rows]
    assert ob.mark_sent(seqs[0]) and ob.mark_sent(seqs[1])
    assert [r.seq for r in ob.oldest(3)] == [seqs[2]]  # sent rows leave the queue
    assert ob.stats().depth == 3  # ... but not the outbox
    ob.close()
    ob = Outbox(tmp_path / "o.sqlite")
    assert ob.sent_seqs() == seqs[:2]
    assert ob.confirm([ws[0].message_id, "s1/cam1/unknown/v1"]) == [seqs[0]]
    assert ob.stats().depth == 2
    assert not ob.mark_sent(seqs[0])  # confirmed before its PUBACK was handled
    row = ob.get(seqs[1])
    assert row is not None and row.message_id == ws[1].message_id


def test_confirmation_payloads_round_trip_in_bounded_chunks() -> None:
    ids = [f"s1/cam1/{i}/v1" for i in range(1200)]
    payloads = encode_confirmations(ids, now=1_800_000_000.5)
    assert len(payloads) == 3
    decoded = [decode_confirmation(p) for p in payloads]
    assert [i for ids_, _ in decoded for i in ids_] == ids
    assert {now for _, now in decoded} == {1_800_000_000.5}
    assert message_id_of(window("s1", "cam1", 0).to_json()) == window("s1", "cam1", 0).message_id
    assert message_id_of(b"not json") is None
