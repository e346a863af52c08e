"""Spans of local days as aligned blocks plus loose days (gateway/spans.py): pure."""

from __future__ import annotations

from datetime import date, timedelta

from gateway.spans import EPOCH, blocks_of, decompose


def _days(key: str) -> list[str]:
    size, start = key.split(":")
    first = date.fromisoformat(start)
    return [(first + timedelta(days=i)).isoformat() for i in range(int(size))]


def test_every_span_is_covered_once_by_its_blocks_and_loose_days() -> None:
    for offset in range(0, 60, 5):
        first = date(2026, 1, 1) + timedelta(days=offset)
        for n in range(1, 200, 3):
            last = first + timedelta(days=n - 1)
            keys, loose = decompose(first, last)
            covered = loose + [d for k in keys for d in _days(k)]
            want = [(first + timedelta(days=i)).isoformat() for i in range(n)]
            assert sorted(covered) == want, (first, n)
            assert len(keys) + len(loose) <= 6 + 3 + n // 28 + 3 + 6


def test_a_day_belongs_to_the_blocks_a_span_uses() -> None:
    keys, _ = decompose(EPOCH, EPOCH + timedelta(days=34))
    assert keys == ["28:1970-01-05", "7:1970-02-02"]
    assert blocks_of("1970-02-03") == ("28:1970-02-02", "7:1970-02-02")
    assert all(k in blocks_of(d) for k in keys for d in _days(k))
